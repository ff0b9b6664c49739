"""Network namespaces as lab hosts: the project's own test hosts and `netboot lab`.

Every namespace a `Lab` makes carries a unique prefix and is removed by
`close()`, whatever happens. Interfaces are created inside the namespaces
(`ip -n A link add eth0 type veth peer name eth0 netns B`), so nothing ever
touches this machine's own interfaces.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_counter = itertools.count()
CLONE_NEWNET = 0x40000000


def netns_unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "needs iproute2"
    return None


def wait_for(
    predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds.

    The value returned is the predicate's truthy result, so never None: a
    predicate typed `-> X | None` gives an `X` back.
    """
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the condition may not be checkable yet
            last_exc = exc
        if time.monotonic() > deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


def settled(log: str) -> bool:
    """`netboot serve`'s log says it is ready and no service is still starting
    (DHCP probes for other servers a few seconds after READY): the latest
    `ready: ...` / `status: ...` line names nothing `starting`."""
    status = [
        line.split("netboot: ready: ", 1)[-1].split("netboot: status: ", 1)[-1]
        for line in log.splitlines()
        if "netboot: ready: " in line or "netboot: status: " in line
    ]
    return bool(status) and " starting" not in status[-1]


class Netns:
    def __init__(self, name: str) -> None:
        self.name = name

    def argv(self, cmd: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(
        self, cmd: Sequence[str] | str, check: bool = True, timeout: float = 30, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        proc = subprocess.run(
            self.argv(argv), capture_output=True, text=True, timeout=timeout, check=False, **kw
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"[{self.name}] {argv} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def popen(self, cmd: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.argv(cmd), start_new_session=True, **kw)

    def batch(self, commands: Sequence[str], timeout: float = 60) -> None:
        """Run many `ip` commands in one `ip -batch` (one process, one netlink socket)."""
        if not commands:
            return
        proc = subprocess.run(
            ["ip", "-n", self.name, "-batch", "-"],
            input="\n".join(commands) + "\n",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise OSError(f"[{self.name}] ip -batch failed: {proc.stderr.strip()}")

    def enter(self) -> None:
        """Move the calling thread (before it starts others: the process) into this namespace."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns into {self.name}: {os.strerror(err)}")
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"Netns({self.name})"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=15)


class Lab:
    """A set of namespaces joined by veth pairs (and bridges), torn down on close."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or f"nbt{os.getpid() % 100000}x{next(_counter)}"
        self.namespaces: list[Netns] = []
        self.processes: list[subprocess.Popen[Any]] = []

    def netns(self, role: str) -> Netns:
        ns = Netns(f"{self.prefix}-{role}")
        self.namespaces.append(ns)  # first: an interrupt during `add` still removes it
        _ip("netns", "add", ns.name)
        ns.run(["ip", "link", "set", "lo", "up"])
        return ns

    def link(
        self,
        a: Netns,
        a_if: str,
        b: Netns,
        b_if: str,
        a_addr: str | None = None,
        b_addr: str | None = None,
    ) -> None:
        """A veth pair: `a_if` in `a`, `b_if` in `b`, both up, optional CIDR addresses."""
        _ip(
            "-n", a.name, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name
        )
        for ns, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            if addr:
                ns.run(["ip", "addr", "add", addr, "dev", ifname])
            ns.run(["ip", "link", "set", ifname, "up"])

    def bridge(self, ns: Netns, name: str, ports: Sequence[str]) -> str:
        """A bridge in `ns` over `ports` (already there): no STP, no multicast
        snooping, and LLDP (01:80:c2:00:00:0e) forwarded like a phone switch's
        would deliver it to each port."""
        ns.run(
            [
                "ip", "link", "add", name, "type", "bridge", "stp_state", "0",
                "forward_delay", "0", "mcast_snooping", "0", "group_fwd_mask", "0x4000",
            ]
        )  # fmt: skip
        for port in ports:
            ns.run(["ip", "link", "set", port, "master", name])
        ns.run(["ip", "link", "set", name, "up"])
        return name

    def vlan(self, ns: Netns, parent: str, vid: int, addr: str | None = None) -> str:
        name = f"{parent}.{vid}"
        ns.run(["ip", "link", "add", "link", parent, "name", name, "type", "vlan", "id", str(vid)])
        if addr:
            ns.run(["ip", "addr", "add", addr, "dev", name])
        ns.run(["ip", "link", "set", name, "up"])
        return name

    def spawn(self, ns: Netns, cmd: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        proc = ns.popen(cmd, **kw)
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.processes:
            stop_process(proc)
        for ns in reversed(self.namespaces):
            # Kill anything still running inside before deleting the namespace.
            pids = subprocess.run(
                ["ip", "netns", "pids", ns.name], capture_output=True, text=True, check=False
            ).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, check=False)
        self.namespaces.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop_process(
    proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10
) -> int | None:
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return proc.poll()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=5)
