#!/usr/bin/env python3
"""A hostile phone segment (issue 16): reflection figures and a real client's
latency under each flood.

One segment in namespaces (tests/hostile.py `HostileSite`): netboot, a phone,
an attacker and a victim host on a bridge. Everything is bounded in count and
time; nothing leaves the namespaces.

1. Amplification. The attacker sends requests whose source is the victim's
   address; the victim holds the target port open without reading it (a
   host that drops silently: no ICMP unreachable to stop anything) and counts
   what arrives from netboot for `--window` seconds. Printed: bytes out of the
   attacker and into the victim at the IP layer, and their ratio.
2. Latency. The phone's own request, alone and then while a flood runs:
   a udhcpc lease during a DISCOVER flood from random MACs, a tftp-hpa
   download during 2200 spoofed RRQs, a curl GET during 1100 slow
   connections, and sipp's SUBSCRIBE -> NOTIFY after 3000 spoofed SUBSCRIBEs.

Run as root from the repository:

    sudo /opt/netboot/bin/python bench/hostile.py [--window 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.hostile import SERVER, VICTIM, HostileSite  # noqa: E402
from tests.netns import Lab, netns_unavailable, udhcpc_lease, wait_for  # noqa: E402

AMPLIFIERS = [
    # (label, attack, extra args, victim port)
    ("PnP SUBSCRIBE (no lease, never answered)", "pnp-flood", ["--count", "1"], 5060),
    ("TFTP RRQ, no options (RFC 1350: DATA 1)", "tftp-plain", ["--count", "1"], 30000),
    ("TFTP RRQ with blksize+tsize (OACK)", "tftp-oack", ["--count", "1"], 31000),
    ("DHCP INFORM, ciaddr = the victim (in scope)", "dhcp-inform", ["--count", "1"], 68),
    ("STUN bare Binding request", "stun-spoof", ["--count", "1"], 32000),
]


def amplification(site: HostileSite, window: float) -> list[dict[str, Any]]:
    rows = []
    for label, attack, extra, port in AMPLIFIERS:
        watch = site.attack("watch", "--seconds", str(window), "--port", str(port), ns=site.victim)
        assert watch.stdout is not None and "ready" in watch.stdout.readline()
        sent = site.result(site.attack(attack, *extra, "--source", VICTIM))
        seen = site.result(watch, timeout=window + 30)
        ratio = seen["bytes_in"] / sent["bytes_out"] if sent["bytes_out"] else 0.0
        rows.append(
            {
                "request": label,
                "bytes_out": sent["bytes_out"],
                "packets_in": seen["packets"],
                "bytes_in": seen["bytes_in"],
                "ratio": round(ratio, 2),
            }
        )
    return rows


def _sipp_notify(site: HostileSite, tmp: Path) -> float:
    from tests.test_pnp_netns import (
        ANSWER_NOTIFY,
        RECV_NOTIFY,
        RECV_OK,
        SNOM,
        SUBSCRIBE,
        scenario,
    )

    xml = scenario(
        SUBSCRIBE.format(via_extra="", **SNOM),
        RECV_OK,
        RECV_NOTIFY,
        ANSWER_NOTIFY.format(server=SERVER),
    )
    path = tmp / "phone.xml"
    path.write_text(xml)
    started = time.monotonic()
    proc = site.phone.run(
        ["sipp", "-sf", str(path), "224.0.1.75:5060", "-i", site.phone_ip, "-p", "5060",
         "-m", "1", "-nd", "-timeout", "15s", "-timeout_error", "-nostdin"],
        check=False,
        timeout=40,
    )  # fmt: skip
    took = time.monotonic() - started
    return took if proc.returncode == 0 else float("inf")


def _lease_time(site: HostileSite, tmp: Path) -> float:
    started = time.monotonic()
    try:
        udhcpc_lease(site.phone, tmp, configure=False)
    except Exception:  # no lease: the row says inf
        return float("inf")
    return time.monotonic() - started


def _flood_done(site: HostileSite) -> None:
    seen: list[float] = []

    def quiet() -> bool:
        seen.append(
            site.metric("netboot_pnp_answers_total")
            + site.metric("netboot_pnp_refused_total", reason="rate")
        )
        return len(seen) > 2 and seen[-1] == seen[-2] == seen[-3]

    wait_for(quiet, 60, "netboot to work through the flood", interval=0.3)


def latency(site: HostileSite, tmp: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(what: str, alone: float, flooded: float, attack: str) -> None:
        rows.append(
            {
                "client": what,
                "alone_s": round(alone, 3),
                "under_attack_s": round(flooded, 3),
                "attack": attack,
            }
        )

    alone = _lease_time(site, tmp)
    flood = site.attack("dhcp-discover", "--count", "2000")
    row("udhcpc lease", alone, _lease_time(site, tmp), "2000 DISCOVERs from random MACs")
    site.result(flood)

    alone, _ = site.tftp_get()
    flood = site.attack("tftp-flood", "--count", "2200")
    flooded, ok = site.tftp_get()
    site.result(flood)
    row(
        "tftp-hpa 256 KiB", alone, flooded if ok else float("inf"), "2200 spoofed RRQs, timeout=255"
    )

    alone, _ = site.http_get()
    slow = site.attack("slowloris", "--count", "1100", "--hold", "6", "--port", "80")
    time.sleep(1.0)  # let the slow connections pile up first
    flooded, status = site.http_get()
    site.result(slow, timeout=60)
    row("curl GET", alone, flooded if status == 200 else float("inf"), "1100 slow connections")

    alone = _sipp_notify(site, tmp)
    site.result(site.attack("pnp-flood", "--count", "3000", "--sources", "248"))
    _flood_done(site)
    row(
        "sipp SUBSCRIBE->NOTIFY",
        alone,
        _sipp_notify(site, tmp),
        "3000 spoofed SUBSCRIBEs (248 sources)",
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=10.0, help="seconds the victim listens")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    why = netns_unavailable()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        site = HostileSite(lab, tmp, stun=True)
        site.lease()
        amp = amplification(site, args.window)
        lat = latency(site, tmp)
        fds = site.fds()
        rss = site.rss_kib()
        log = site.server.log()
    result: dict[str, Any] = {
        "amplification": amp,
        "latency": lat,
        "server": {"fds_after": fds, "rss_kib_after": rss, "tracebacks": log.count("Traceback")},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Amplification towards a spoofed victim ({args.window:g} s window, IP bytes):")
    print(f"  {'request':46} {'out':>6} {'in':>6} {'pkts':>4} {'ratio':>6}")
    for r in amp:
        print(
            f"  {r['request']:46} {r['bytes_out']:>6} {r['bytes_in']:>6}"
            f" {r['packets_in']:>4} {r['ratio']:>6}"
        )
    print("Real client latency, alone and under attack (seconds):")
    for r in lat:
        print(f"  {r['client']:24} {r['alone_s']:>7} {r['under_attack_s']:>8}   {r['attack']}")
    print(
        f"Server afterwards: {fds} open files, {rss // 1024} MiB RSS,"
        f" {result['server']['tracebacks']} tracebacks logged"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
