"""Network-namespace test harness: the project's own test hosts.

The namespace primitives live in `netboot.lab.netns` (the `netboot lab`
command uses them too); this module re-exports them for the tests and adds
`NetbootServer`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from netboot.lab.netns import (
    Lab,
    Netns,
    netns_unavailable,
    settled,
    stop_process,
    wait_for,
)

REPO = Path(__file__).resolve().parent.parent

__all__ = [
    "REPO",
    "Lab",
    "NetbootServer",
    "Netns",
    "Segment",
    "netns_unavailable",
    "server_config",
    "stop_process",
    "udhcpc_lease",
    "wait_for",
]

# The services netboot/config.py turns on when a config says nothing of them.
ON_UNLESS_TOLD = ("dhcp", "pnp", "tftp", "http", "lldp")

TomlValue = str | int | float | bool


def _toml(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else str(value)


def server_config(
    body: str = "",
    *,
    state: Path | str,
    address: str | None = None,
    interface: str = "eth0",
    url: str | None = None,
    root: Path | str | None = None,
    **appliance: TomlValue,
) -> str:
    """A `netboot serve` config for a test or a bench: the `[appliance]` table
    (`interface`, `address`, `state_dir` and `appliance`'s other keys), the
    `[provisioning]` table when `url` or `root` is given, then `body` (TOML),
    then `enabled = false` for every service on by default that `body` opens no
    table for: a config names only the services it runs (an empty `[tftp]`
    table runs TFTP with its defaults)."""
    head = {"interface": interface, "address": address, "state_dir": str(state), **appliance}
    lines = ["[appliance]"] + [f"{k} = {_toml(v)}" for k, v in head.items() if v is not None]
    if url is not None or root is not None:
        lines.append("[provisioning]")
        lines += [f"{k} = {_toml(str(v))}" for k, v in (("url", url), ("root", root)) if v]
    opened = tomllib.loads(body)
    off = [f"[{name}]\nenabled = false" for name in ON_UNLESS_TOLD if name not in opened]
    return "\n".join([*lines, body.strip("\n"), *off]) + "\n"


class Segment:
    """One Ethernet segment of lab hosts: a namespace per role, its `eth0` on
    the wire with the role's address (CIDR, or None) and MAC when given. Two
    hosts share a veth pair; more hang off a bridge `br0` in a switch namespace
    `sw` (ports p0, p1, ... in the hosts' order), which passes LLDP on like a
    phone switch."""

    def __init__(
        self,
        lab: Lab,
        hosts: Mapping[str, str | None],
        *,
        macs: Mapping[str, str] | None = None,
        switch: bool | None = None,
    ) -> None:
        self.lab = lab
        self.hosts = {role: lab.netns(role) for role in hosts}
        if switch is None:
            switch = len(hosts) != 2
        if switch:
            self.sw: Netns | None = lab.netns("sw")
            ports = [f"p{i}" for i in range(len(hosts))]
            for port, (role, addr) in zip(ports, hosts.items(), strict=True):
                lab.link(self.hosts[role], "eth0", self.sw, port, addr)
            lab.bridge(self.sw, "br0", ports)
        else:
            self.sw = None
            (a, a_addr), (b, b_addr) = hosts.items()
            lab.link(self.hosts[a], "eth0", self.hosts[b], "eth0", a_addr, b_addr)
        for role, mac in (macs or {}).items():
            self.hosts[role].run(["ip", "link", "set", "eth0", "address", mac])

    def __getitem__(self, role: str) -> Netns:
        return self.hosts[role]

    def server(self, role: str, path: Path, config: str) -> NetbootServer:
        """`netboot serve` in `role`'s namespace with `config` written to `path`
        (not started)."""
        path.write_text(config)
        return NetbootServer(self.lab, self.hosts[role], path)


def udhcpc_lease(
    ns: Netns,
    workdir: Path,
    interface: str = "eth0",
    args: Sequence[str] = (),
    *,
    configure: bool = False,
    timeout: float = 40,
) -> dict[str, str]:
    """One lease with busybox udhcpc, a real DHCP client (quits once bound, fails
    when no lease comes): the variables its script sees on `bound` (`ip`, `mask`,
    `router`, `serverid`, unknown options as `optNNN` in hex). `configure` also
    puts the address on the interface, as a phone would."""
    out = workdir / f"udhcpc-{interface}.env"
    out.unlink(missing_ok=True)
    script = workdir / f"udhcpc-{interface}.sh"
    add = 'ip addr add "$ip/$mask" dev "$interface" && ' if configure else ""
    script.write_text(f'#!/bin/sh\n[ "$1" = bound ] && {add}env | sort > {out}\nexit 0\n')
    script.chmod(0o755)
    command = ["busybox", "udhcpc", "-i", interface, "-f", "-q", "-n", "-t", "5", "-T", "2"]
    ns.run([*command, "-s", str(script), *args], timeout=timeout)
    return dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)


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
            return settled(self.log()[offset:])  # this run's, not an earlier one's

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
