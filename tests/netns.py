"""Network-namespace test harness: the project's own test hosts.

The namespace primitives live in `netboot.lab.netns` (the `netboot lab`
command uses them too); this module re-exports them for the tests and adds
`NetbootServer`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
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
    "netns_unavailable",
    "stop_process",
    "udhcpc_lease",
    "wait_for",
]


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
