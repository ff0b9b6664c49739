#!/usr/bin/env python3
"""Boot storm (issue 18): every phone of a site boots at once after a power cut.

Runs `netboot lab --phones N --json` for each N (default 1000, 5000, 10000),
each bounded in time, and prints per run: phones provisioned, the fleet's time
(first phone powered on to last one done), p50/p99 of a phone's boot, retries
(DHCP retransmissions and downloads tried again, as the firmware does),
netboot's peak RSS and CPU seconds, and the median of each boot step (where
the time goes). Goal: 10 000 phones all provisioned in < 60 s.

The lab phones run every step a real one does (LLDP-MED, DHCP untagged then
in the voice VLAN, SIP PnP or DHCP options, common and own file by TFTP or
HTTP, the config applied, Action URLs, STUN); see netboot/lab/phone.py.

Run as root:  /opt/netboot/bin/python bench/storm.py [--phones 1000,5000,10000]
              [--limit 600] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STEPS = ("dhcp", "lldp", "dhcp-voice", "pnp", "common", "own", "apply", "action", "stun")


def run(phones: int, limit: float, log: Path | None = None) -> dict[str, Any]:
    """One lab run; its summary and the per-step medians (or why it failed)."""
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "netboot", "lab", "--phones", str(phones), "--json"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=limit,
        )
    except subprocess.TimeoutExpired:
        return {"phones": phones, "error": f"not done within {limit:.0f} s"}
    wall = time.monotonic() - started
    if log is not None:  # the lab's stderr: on failures, the end of netboot's log
        log.write_text(proc.stderr)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = proc.stderr.strip().splitlines()[-5:]
        return {"phones": phones, "error": f"exit {proc.returncode}: {' | '.join(tail)}"}
    results = report.pop("results")
    steps = {
        step: round(statistics.median(r["steps"][step] for r in results if step in r["steps"]), 3)
        for step in STEPS
        if any(step in r["steps"] for r in results)
    }
    by_vendor: dict[str, dict[str, Any]] = {}  # where each family's time goes
    for vendor in sorted({r["vendor"] for r in results}):
        mine = [r for r in results if r["vendor"] == vendor]
        by_vendor[vendor] = {
            "phones": len(mine),
            "provisioned": sum(r["result"] == "ok" for r in mine),
            "retries": sum(r["retries"] for r in mine),
            "step_p50": {
                step: round(
                    statistics.median(r["steps"][step] for r in mine if step in r["steps"]), 3
                )
                for step in STEPS
                if any(step in r["steps"] for r in mine)
            },
        }
    errors: dict[str, int] = {}
    for r in results:
        if r["result"] != "ok":
            kind = re.sub(r"[0-9a-fA-F]{12}|\d+(\.\d+)+", "N", r["error"])[:90]
            errors[kind] = errors.get(kind, 0) + 1
    return {
        **report,
        "wall_seconds": round(wall, 1),
        "step_p50": steps,
        "by_vendor": by_vendor,
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", default="1000,5000,10000", help="comma-separated fleet sizes")
    parser.add_argument("--limit", type=float, default=600, help="seconds per run at most")
    parser.add_argument("--json", action="store_true", help="the summaries as JSON")
    parser.add_argument(
        "--log", type=Path, help="write each run's lab stderr (netboot's log tail) to LOG.N"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/storm.py: needs root (netboot lab creates namespaces)", file=sys.stderr)
        return 2
    sizes = [int(n) for n in args.phones.split(",") if n.strip()]
    out = []
    print(
        f"{'phones':>7} {'provisioned':>11} {'fleet s':>8} {'p50 s':>6} {'p99 s':>6} "
        f"{'retries':>7} {'RSS MB':>7} {'CPU netboot s':>13} {'CPU lab s':>9}  step p50 / errors"
    )
    for n in sizes:
        r = run(n, args.limit, args.log.with_suffix(f".{n}") if args.log else None)
        out.append(r)
        if "error" in r:
            print(f"{n:>7}  FAILED: {r['error']}")
            continue
        rss = (r.get("server_peak_rss_kb") or 0) / 1024
        steps = " ".join(f"{k}={v}" for k, v in r["step_p50"].items())
        print(
            f"{n:>7} {r['provisioned']:>11} {r['fleet_seconds']:>8.1f} {r['p50_seconds']:>6.2f} "
            f"{r['p99_seconds']:>6.2f} {r.get('retries', 0):>7} {rss:>7.1f} "
            f"{r.get('server_cpu_seconds')!s:>13} {r.get('lab_cpu_seconds')!s:>9}  {steps}"
            + "".join(
                f"\n{'':>9}{v['provisioned']}/{v['phones']} {name}, retries {v['retries']}: "
                + " ".join(f"{k}={t}" for k, t in v["step_p50"].items())
                for name, v in r["by_vendor"].items()
            )
            + (
                f"\n{'':>9}budgets that bit: "
                + (", ".join(f"{k} {v:.0f}" for k, v in limited.items()) or "none")
                if (limited := r.get("server_limited")) is not None
                else ""
            )
            + "".join(f"\n{'':>9}{count} x {kind}" for kind, count in r["errors"].items()),
            flush=True,
        )
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
    return 0 if all(r.get("provisioned") == r["phones"] for r in out) else 1


if __name__ == "__main__":
    sys.exit(main())
