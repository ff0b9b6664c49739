"""Network-namespace test harness: the project's own test hosts.

Every namespace a test makes carries a unique prefix and is removed when the
test ends, whatever happens. Interfaces are created inside the namespaces
(`ip -n A link add eth0 type veth peer name eth0 netns B`), so nothing ever
touches this machine's own interfaces.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_counter = itertools.count()
REPO = Path(__file__).resolve().parent.parent


def netns_unavailable() -> str | None:
    """Why namespace tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "needs iproute2"
    return None


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
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

    def __repr__(self) -> str:
        return f"Netns({self.name})"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=15)


class Lab:
    """A set of namespaces joined by veth pairs (and bridges), torn down on close."""

    def __init__(self) -> None:
        self.prefix = f"nbt{os.getpid() % 100000}x{next(_counter)}"
        self.namespaces: list[Netns] = []
        self.processes: list[subprocess.Popen[Any]] = []

    def netns(self, role: str) -> Netns:
        ns = Netns(f"{self.prefix}-{role}")
        _ip("netns", "add", ns.name)
        self.namespaces.append(ns)
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


class NetbootServer:
    """`netboot serve` running inside a namespace, its log in a file."""

    def __init__(self, lab: Lab, ns: Netns, config_path: Path) -> None:
        self.lab = lab
        self.ns = ns
        self.config_path = config_path
        self.log_path = config_path.with_suffix(".log")
        self.proc: subprocess.Popen[Any] | None = None

    def start(self, ready_timeout: float = 20) -> NetbootServer:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = self.lab.spawn(
            self.ns,
            [sys.executable, "-m", "netboot.cli", "serve", "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        log.close()

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"netboot exited {self.proc.returncode}:\n{self.log()}")
            return " ready: " in self.log()[offset:]  # this run's, not an earlier one's

        wait_for(ready, ready_timeout, "netboot serve to be ready")
        return self

    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        assert self.proc is not None
        return stop_process(self.proc, sig)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "netboot.cli", *args, "-c", str(self.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"netboot {args} exited {proc.returncode}: {proc.stderr}")
        return proc
