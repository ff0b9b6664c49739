#!/usr/bin/env python3
"""LLDP advertiser cost at idle and under a storm of 500 LLDP-MED endpoints,
and whether DHCP stays responsive meanwhile: netboot vs lldpd, same run.

The appliance runs alone in a namespace joined by a veth pair to a "segment"
namespace. There a sender plays `--endpoints` phones (distinct MACs, lldpd's
own LLDP-MED endpoint frame with inventory) that all send one LLDPDU at once,
once a second for `--rounds` rounds (a whole floor of phones booting together
and each in fast start), while a relay agent (as perfdhcp in bench/dhcp.py)
sends DISCOVERs from new MACs one at a time at a modest fixed rate: the
DISCOVER->OFFER latency p50/p99 at rest and during a second storm. Printed: CPU seconds and memory of netboot (DHCP + LLDP + CDP in one
process) at idle and over the storm, LLDPDUs it sent during the storm (fast
start is capped at 1 frame/s per interface), phones recorded; the same CPU and
memory figures for lldpd (reference, `max-neighbors` raised to the storm size)
under the same storm, and the ratio. Every load is bounded in count and time;
namespaces are removed at the end. Run as root:

    sudo /opt/netboot/bin/python bench/lldp.py [--idle 10] [--endpoints 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.netns import Lab, NetbootServer, Netns, Segment, server_config, wait_for  # noqa: E402
from tests.test_lldp_codec import LLDPD_PHONE  # noqa: E402

SERVER_IP = "10.64.0.1"
RELAY_IP = "10.64.0.2"
APPLIANCE_MAC = "02:00:5e:00:00:01"
PHONE_MAC = bytes.fromhex("00304f113af8")  # the one in LLDPD_PHONE
TICK = os.sysconf("SC_CLK_TCK")

NETBOOT_CONFIG = """
[dhcp]
subnet = "10.64.0.0/16"
pool = "10.64.1.1-10.64.254.250"
router = "10.64.0.1"
lease_time = 3600
ping_check = false
[lldp]
voice_vlan = 100
priority = 5
dscp = 46
signaling_dscp = 26
interval = 30
cdp = true
"""

LLDPD_CONFIG = """
configure system max-neighbors {neighbors}
configure med policy application voice vlan 100 priority voice dscp 46 tagged
configure med policy application voice-signaling vlan 100 priority voice dscp 26 tagged
"""

# Sends every frame of the file (hex, one a line) once per round, rounds 1 s
# apart; prints the seconds each round took to send.
STORM = """
import socket, sys, time
frames = [bytes.fromhex(x) for x in open(sys.argv[1]).read().split()]
rounds = int(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
start = time.monotonic()
for r in range(rounds):
    t0 = time.monotonic()
    for f in frames:
        while True:
            try:
                s.send(f)
                break
            except BlockingIOError:
                time.sleep(0.001)
    print("round %d sent %d in %.3f s" % (r, len(frames), time.monotonic() - t0), flush=True)
    time.sleep(max(0.0, start + r + 1 - time.monotonic()))
"""

# A relay agent (giaddr = its own address, RFC 2131 §4.1) sending one
# DISCOVER at a time, each from a new MAC, at a fixed rate; prints the
# DISCOVER->OFFER latencies (ms) and the count unanswered within 1 s as JSON.
PROBE = """
import json, os, socket, struct, sys, time
relay, server, count, rate, base = sys.argv[1:6]
count, rate, base = int(count), float(rate), int(base)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((relay, 67))
giaddr = socket.inet_aton(relay)
latencies, lost = [], 0
start = time.monotonic()
for i in range(count):
    xid = int.from_bytes(os.urandom(4), "big")
    mac = bytes([0x02, 0xD0, base, 0, i >> 8, i & 0xFF])
    header = struct.pack("!BBBBIHH4s4s4s4s16s", 1, 1, 6, 1, xid, 0, 0,
                         bytes(4), bytes(4), bytes(4), giaddr, mac.ljust(16, b"\\0"))
    packet = header + bytes(192) + b"\\x63\\x82\\x53\\x63\\x35\\x01\\x01\\xff"
    t0 = time.monotonic()
    s.sendto(packet.ljust(300, b"\\0"), (server, 67))
    deadline = t0 + 1.0
    while True:
        s.settimeout(max(0.0, deadline - time.monotonic()))
        try:
            reply = s.recv(2048)
        except TimeoutError:
            lost += 1
            break
        if len(reply) > 240 and reply[0] == 2 and reply[4:8] == struct.pack("!I", xid):
            latencies.append(1000 * (time.monotonic() - t0))
            break
    time.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")
print(json.dumps({"count": count, "answered": len(latencies), "lost": lost,
                  "p50_ms": pick(0.50), "p99_ms": pick(0.99),
                  "max_ms": latencies[-1] if latencies else float("nan")}))
"""

# Counts the LLDP frames from one source MAC until killed, one line each.
COUNTER = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88CC))
s.bind(("eth0", 0x88CC))
src = bytes.fromhex(sys.argv[1].replace(":", ""))
print("ready", flush=True)
while True:
    if s.recv(9216)[6:12] == src:
        print("frame", flush=True)
"""


class Bed:
    """Appliance and segment share one link (10.63.0.0/24); perfdhcp's relay
    address is routed behind the segment side, as in bench/dhcp.py."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.wire = Segment(
            lab,
            {f"{name}-s": "10.63.0.1/24", f"{name}-c": "10.63.0.2/24"},
            macs={f"{name}-s": APPLIANCE_MAC},
        )
        self.srv, self.seg = self.wire[f"{name}-s"], self.wire[f"{name}-c"]
        self.srv.run(["ip", "addr", "add", f"{SERVER_IP}/32", "dev", "eth0"])
        self.srv.run(["ip", "route", "add", "10.64.0.0/16", "via", "10.63.0.2"])
        self.seg.run(["ip", "addr", "add", f"{RELAY_IP}/32", "dev", "eth0"])
        self.seg.run(["ip", "route", "add", f"{SERVER_IP}/32", "via", "10.63.0.1"])


def storm_frames(path: Path, endpoints: int, base: int = 0) -> None:
    """One LLDPDU per endpoint, MACs 02:be:<base>:00:xx:xx (new to the appliance)."""
    lines = []
    for i in range(endpoints):
        mac = bytes([0x02, 0xBE, base, 0x00, i >> 8, i & 0xFF])
        lines.append(LLDPD_PHONE.replace(PHONE_MAC, mac).hex())
    path.write_text("\n".join(lines) + "\n")


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime in clock ticks (this kernel keeps no finer schedstat)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def memory_mb(pids: list[int], key: str) -> float:
    total = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        match = re.search(rf"{key}:\s+(\d+)", status)
        total += int(match.group(1)) if match else 0
    return total / 1024


def ns_pids(ns: Netns, comm: str) -> list[int]:
    pids = subprocess.run(
        ["ip", "netns", "pids", ns.name], capture_output=True, text=True, check=True
    ).stdout.split()
    out = []
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
                out.append(int(pid))
        except OSError:
            continue
    return out


def dhcp_delays(seg: Netns, count: int, rate: int, base: int) -> dict[str, Any]:
    """`count` relayed DISCOVERs at `rate`/s from new MACs: DISCOVER->OFFER
    latency p50/p99/max (ms) and how many went unanswered within 1 s."""
    proc = seg.run(
        [sys.executable, "-c", PROBE, RELAY_IP, SERVER_IP, str(count), str(rate), str(base)],
        check=False,
        timeout=count / rate + 30,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"DHCP probe failed:\n{proc.stdout}{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


class Storm:
    def __init__(self, lab: Lab, seg: Netns, frames: Path, rounds: int, log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = lab.spawn(
                seg, [sys.executable, "-c", STORM, str(frames), str(rounds)], stdout=out
            )

    def wait(self, timeout: float) -> str:
        self.proc.wait(timeout=timeout)
        return self.log.read_text()


def counter(lab: Lab, seg: Netns, log: Path) -> Path:
    with log.open("wb") as out:
        lab.spawn(seg, [sys.executable, "-c", COUNTER, APPLIANCE_MAC], stdout=out)
    wait_for(lambda: log.read_text().startswith("ready"), 15, "the frame counter")
    return log


def frames_counted(log: Path) -> int:
    return log.read_text().count("frame\n")


def recorded(server: NetbootServer, base: int, endpoints: int) -> int:
    """Phones of storm `base` in the registry, once all are there (or 30 s)."""
    prefix = f"02:be:{base:02x}:"

    def count() -> int:
        listing = json.loads(server.cli("phones", "--json").stdout)
        return sum(1 for p in listing if p["mac"].startswith(prefix))

    try:
        return wait_for(lambda: (n := count()) == endpoints and n, 30, "phones", interval=0.2)
    except AssertionError:
        return count()


def bench_netboot(lab: Lab, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    bed = Bed(lab, "nb")
    text = server_config(
        NETBOOT_CONFIG,
        state=tmp / "nb-state",
        address=SERVER_IP,
        url=f"http://{SERVER_IP}/$mac.cfg",
        name="netboot-bench",
    )
    server = bed.wire.server("nb-s", tmp / "netboot.toml", text).start()
    assert server.proc is not None
    pids = [server.proc.pid]  # `ip netns exec` execs: the pid is netboot's
    r: dict[str, Any] = {}

    time.sleep(1.0)  # let start-up (imports, first frames) settle before measuring idle
    c0, w0 = cpu_seconds(pids), time.monotonic()
    time.sleep(args.idle)
    r["idle_cpu_pct"] = 100 * (cpu_seconds(pids) - c0) / (time.monotonic() - w0)
    r["idle_rss_mb"] = memory_mb(pids, "VmRSS")

    c0 = cpu_seconds(pids)
    r["dhcp_quiet"] = dhcp_delays(bed.seg, args.dhcp_count, args.dhcp_rate, 1)
    r["dhcp_cpu_s"] = cpu_seconds(pids) - c0

    # The storm alone: what LLDP costs.
    frames = tmp / "storm.hex"
    storm_frames(frames, args.endpoints, base=0)
    sent = counter(lab, bed.seg, tmp / "nb-counter.log")
    before_frames = frames_counted(sent)
    c0, w0 = cpu_seconds(pids), time.monotonic()
    storm = Storm(lab, bed.seg, frames, args.rounds, tmp / "nb-storm.log")
    r["storm_log"] = storm.wait(timeout=args.rounds + 60)
    # until the appliance has caught up (its phones are in the registry)
    r["phones_recorded"] = recorded(server, 0, args.endpoints)
    r["storm_cpu_s"] = cpu_seconds(pids) - c0
    r["storm_wall_s"] = time.monotonic() - w0
    r["storm_rss_mb"] = memory_mb(pids, "VmRSS")
    r["peak_rss_mb"] = memory_mb(pids, "VmHWM")
    r["lldp_sent_in_storm"] = frames_counted(sent) - before_frames

    # A second storm of endpoints new again, while DHCP is measured.
    storm_frames(frames, args.endpoints, base=1)
    storm = Storm(lab, bed.seg, frames, args.rounds, tmp / "nb-storm2.log")
    c0 = cpu_seconds(pids)
    r["dhcp_storm"] = dhcp_delays(bed.seg, args.dhcp_count, args.dhcp_rate, 2)
    storm.wait(timeout=args.rounds + 60)
    recorded(server, 1, args.endpoints)
    r["both_cpu_s"] = cpu_seconds(pids) - c0

    bad = re.findall(r"Traceback|ERROR", server.log())
    r["errors_in_log"] = len(bad)
    server.stop()
    return r


def bench_lldpd(lab: Lab, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    bed = Bed(lab, "ld")
    workdir = Path(tempfile.mkdtemp(prefix="netboot-lldpd-"))
    os.chmod(workdir, 0o755)  # lldpd drops privileges: its socket dir must be readable
    try:
        conf = workdir / "lldpd.conf"
        conf.write_text(LLDPD_CONFIG.format(neighbors=args.endpoints + 10))
        sock = workdir / "lldpd.socket"
        with (tmp / "lldpd.log").open("wb") as log:
            lab.spawn(
                bed.srv,
                ["lldpd", "-d", "-u", str(sock), "-O", str(conf), "-I", "eth0", "-M", "4"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(sock.exists, 15, "lldpd's socket")
        pids = wait_for(lambda: ns_pids(bed.srv, "lldpd"), 10, "lldpd's processes")
        r: dict[str, Any] = {}
        time.sleep(1.0)
        c0, w0 = cpu_seconds(pids), time.monotonic()
        time.sleep(args.idle)
        r["idle_cpu_pct"] = 100 * (cpu_seconds(pids) - c0) / (time.monotonic() - w0)
        r["idle_rss_mb"] = memory_mb(pids, "VmRSS")
        frames = tmp / "storm.hex"
        storm_frames(frames, args.endpoints)
        c0, w0 = cpu_seconds(pids), time.monotonic()
        storm = Storm(lab, bed.seg, frames, args.rounds, tmp / "ld-storm.log")
        r["storm_log"] = storm.wait(timeout=args.rounds + 60)
        r["storm_cpu_s"] = cpu_seconds(pids) - c0
        r["storm_wall_s"] = time.monotonic() - w0
        r["storm_rss_mb"] = memory_mb(pids, "VmRSS")
        r["peak_rss_mb"] = memory_mb(pids, "VmHWM")
        stats = bed.srv.run(
            ["lldpcli", "-u", str(sock), "-f", "json", "show", "statistics"], timeout=60
        ).stdout
        counters = json.loads(stats)["lldp"]["interface"]["eth0"]

        def counter_value(name: str) -> int:
            return int(counters[name][name]) if isinstance(counters[name], dict) else 0

        r["rx"] = int(counters["rx"]["rx"])
        r["tx"] = int(counters["tx"]["tx"])
        r["neighbors"] = counter_value("insert_cnt") - counter_value("delete_cnt")
        return r
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=10.0, help="idle window, seconds")
    parser.add_argument("--endpoints", type=int, default=500, help="simulated phones (<= 65536)")
    parser.add_argument("--rounds", type=int, default=5, help="storm rounds, 1 s apart")
    parser.add_argument("--dhcp-rate", type=int, default=40, help="DISCOVERs/s of the probe")
    parser.add_argument("--dhcp-count", type=int, default=200, help="DISCOVERs per probe run")
    parser.add_argument("--only", choices=("netboot", "lldpd"))
    args = parser.parse_args()
    if not 1 <= args.endpoints <= 65536 or not 1 <= args.rounds <= 60:
        parser.error("--endpoints 1..65536, --rounds 1..60")
    if not 1 <= args.dhcp_count <= 65536 or not 1 <= args.dhcp_rate <= 1000:
        parser.error("--dhcp-count 1..65536, --dhcp-rate 1..1000")
    if os.geteuid() != 0:
        parser.error("needs root (namespaces)")

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="netboot-bench-lldp-") as tmpname:
        tmp = Path(tmpname)
        with Lab() as lab:
            if args.only in (None, "netboot"):
                results["netboot"] = bench_netboot(lab, tmp, args)
        with Lab() as lab:
            if args.only in (None, "lldpd"):
                results["lldpd"] = bench_lldpd(lab, tmp, args)

    # Wall-clock latencies stretch with whatever else the cores run.
    one, five, fifteen = os.getloadavg()
    print(f"load average at the end: {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min)")
    storm = f"{args.endpoints} endpoints x {args.rounds} rounds 1 s apart"
    for name, r in results.items():
        print(f"== {name}")
        print(f"  idle: CPU {r['idle_cpu_pct']:.2f} %, RSS {r['idle_rss_mb']:.1f} MB")
        print(
            f"  storm ({storm}): CPU {r['storm_cpu_s']:.2f} s over {r['storm_wall_s']:.1f} s"
            f" ({100 * r['storm_cpu_s'] / r['storm_wall_s']:.1f} %),"
            f" RSS {r['storm_rss_mb']:.1f} MB, peak {r['peak_rss_mb']:.1f} MB"
        )
        last = r["storm_log"].strip().splitlines()
        print(f"  sender: {last[0] if last else '?'} ... {last[-1] if last else '?'}")
        if name == "netboot":
            q, s = r["dhcp_quiet"], r["dhcp_storm"]
            print(
                f"  LLDPDUs sent during the storm: {r['lldp_sent_in_storm']};"
                f" phones recorded: {r['phones_recorded']}/{args.endpoints};"
                f" errors in log: {r['errors_in_log']}"
            )
            print(
                f"  CPU: DHCP alone {r['dhcp_cpu_s']:.2f} s, DHCP during a second storm"
                f" {r['both_cpu_s']:.2f} s"
            )
            for label, d in (("at rest", q), ("during the storm", s)):
                print(
                    f"  DHCP {label} ({d['count']} relayed DISCOVERs at {args.dhcp_rate}/s):"
                    f" DISCOVER->OFFER p50 {d['p50_ms']:.2f} ms, p99 {d['p99_ms']:.2f} ms,"
                    f" max {d['max_ms']:.1f} ms, {d['lost']} unanswered"
                )
            print(
                f"  DHCP storm/rest: p50 {s['p50_ms'] / q['p50_ms']:.2f}x,"
                f" p99 {s['p99_ms'] / q['p99_ms']:.2f}x"
            )
        else:
            print(
                f"  frames taken in: {r['rx']}/{args.endpoints * args.rounds} (the rest dropped"
                f" at its socket), neighbours: {r['neighbors']}, LLDPDUs it sent since start: {r['tx']}"
            )
    if "netboot" in results and "lldpd" in results:
        nb, ld = results["netboot"], results["lldpd"]
        if ld["storm_cpu_s"] > 0:
            cpu = f"storm CPU {nb['storm_cpu_s'] / ld['storm_cpu_s']:.1f}x"
        else:
            cpu = f"storm CPU >= {nb['storm_cpu_s'] * TICK:.0f}x (lldpd under one clock tick)"
        print(
            f"netboot / lldpd: {cpu}, peak RSS {nb['peak_rss_mb'] / ld['peak_rss_mb']:.1f}x"
            " (netboot's process also holds its DHCP server and the Python runtime)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
