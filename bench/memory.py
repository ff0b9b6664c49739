#!/usr/bin/env python3
"""Memory and start-up of `netboot serve`: resident set size idle, after a
DHCP load, with 100 k leases on disk, and the time from exec to READY.

Each case starts a fresh server in a namespace of its own (a veth pair to a
client namespace), on the same configuration as bench/dhcp.py plus, in the
`+lldp` cases, LLDP-MED advertising a voice VLAN (the LLDP/CDP codec is the
largest import). READY is the `netboot: ready:` log line (what systemd's
READY=1 follows); "settled" is the end of DHCP's start-up probe for other
servers. RSS is VmRSS from /proc once settled (peak: VmHWM). Run as root:

    sudo /opt/netboot/bin/python bench/memory.py [--leases 100000] [--cases 100k-leases ...]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.dhcp import Bed, netboot_config, rate_run  # noqa: E402
from netboot.config import RegistryConfig  # noqa: E402
from netboot.events import LeaseAcked  # noqa: E402
from netboot.registry import Registry  # noqa: E402
from netboot.state.leases import Lease, LeaseStore  # noqa: E402
from tests.netns import Lab  # noqa: E402

LLDP_ON = "[lldp]\nenabled = true\nvoice_vlan = 100\n"


def status_kb(pid: int, key: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"{key}:\s+(\d+)", text)
    return int(match.group(1)) if match else 0


def seed_leases(state: Path, count: int) -> None:
    """`count` bound leases in the pool, written as the server writes them."""
    store = LeaseStore(state)
    base = 0x0A410001  # 10.65.0.1, the pool's start
    now = time.time()
    rows = [
        Lease(
            base + i,
            "02:aa:" + ":".join(f"{b:02x}" for b in i.to_bytes(4, "big")),
            "bound",
            now + 3600,
            f"phone{i}",
            "",
            now,
        )
        for i in range(count)
    ]
    for start in range(0, count, 20000):
        store.commit(rows[start : start + 20000])
    store.close()
    # And their phones' `ack` events, as a server that gave them out has
    # (without them, start-up reconciles every lease into the registry).
    registry = Registry(state, RegistryConfig(max_phones=count + 1000, max_queued=count + 1000))
    for lease in rows:
        registry.record(LeaseAcked(mac=lease.mac, ip=str(lease.address)), now=now)
    registry.flush()
    registry.close()


def one_case(
    lab: Lab, tmp: Path, name: str, lldp: bool, leases: int, load: bool
) -> dict[str, float]:
    bed = Bed(lab, name)
    state = tmp / f"{name}-state"
    state.mkdir()
    if leases:
        seed_leases(state, leases)
    text = netboot_config(state, ping_check=False, services=LLDP_ON if lldp else "")
    server = bed.wire.server(f"{name}-s", tmp / f"{name}.toml", text)
    wall, start = time.time(), time.monotonic()
    server.start(ready_timeout=60)
    assert server.proc is not None
    pid = server.proc.pid
    result = {"settled_s": time.monotonic() - start}
    # READY from exec: the ready line's own time stamp (ms) against the wall
    # clock just before the spawn.
    ready_line = next(line for line in server.log().splitlines() if "netboot: ready:" in line)
    result["ready_s"] = _stamp(ready_line[:23]) - wall
    result["rss_mb"] = status_kb(pid, "VmRSS") / 1024
    if load:
        rate_run(bed.cli, 3, 1000, 7)
        result["rss_after_3000_leases_mb"] = status_kb(pid, "VmRSS") / 1024
    result["peak_rss_mb"] = status_kb(pid, "VmHWM") / 1024
    server.stop()
    return result


def _stamp(text: str) -> float:
    return time.mktime(time.strptime(text[:19], "%Y-%m-%d %H:%M:%S")) + int(text[20:23]) / 1000


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leases", type=int, default=100_000)
    parser.add_argument(
        "--cases", nargs="+", metavar="CASE", help="only these cases (default: all, by name)"
    )
    args = parser.parse_args()
    cases = [
        ("idle", False, 0, True),
        ("idle+lldp", True, 0, False),
        (f"{args.leases // 1000}k-leases", False, args.leases, True),
        (f"{args.leases // 1000}k-leases+lldp", True, args.leases, False),
    ]
    if args.cases:
        unknown = sorted(set(args.cases) - {case[0] for case in cases})
        if unknown:
            parser.error(f"unknown case(s) {', '.join(unknown)}: {', '.join(c[0] for c in cases)}")
        cases = [case for case in cases if case[0] in args.cases]
    with tempfile.TemporaryDirectory(prefix="nb-mem-") as tmp_name, Lab() as lab:
        tmp = Path(tmp_name)
        print(f"{'case':<22}{'RSS MB':>8}{'peak MB':>9}{'READY s':>9}{'settled s':>11}  notes")
        for n, (label, lldp, leases, load) in enumerate(cases):
            r = one_case(lab, tmp, f"m{n}", lldp, leases, load)
            note = (
                f"RSS {r['rss_after_3000_leases_mb']:.0f} MB after 3000 DHCP exchanges"
                if load
                else ""
            )
            print(
                f"{label:<22}{r['rss_mb']:>8.1f}{r['peak_rss_mb']:>9.1f}{r['ready_s']:>9.2f}{r['settled_s']:>11.2f}  {note}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
