#!/usr/bin/env python3
"""DHCP throughput and avalanche: netboot vs dnsmasq vs Kea, same run, same load.

Each server runs alone in a namespace joined by a veth pair to a client
namespace where perfdhcp (package kea-admin) plays a relay (giaddr = its own
address, port 67 both ways). Printed per server: 4-way exchanges completed per
second (ACKs counted over the run, not perfdhcp's diluted "Rate:"), with
perfdhcp's average REQUEST -> ACK delay and the replies the client's kernel
dropped because perfdhcp's socket buffer was full (sent by the server, but
counted by perfdhcp as unanswered), and the time for 200 clients at once (`--scenario avalanche -R 200`). Every load is
bounded in time; namespaces are removed at the end. Run as root:

    sudo /opt/netboot/bin/python bench/dhcp.py [--seconds 10] [--rate 6000] [--only netboot]
    sudo /opt/netboot/bin/python bench/dhcp.py --interleave   # netboot and Kea, rung by rung
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.netns import Lab, Netns, Segment, server_config, stop_process, wait_for  # noqa: E402

SERVER_IP = "10.64.0.1"
RELAY_IP = "10.64.0.2"
URL = "http://10.64.0.1/$mac.cfg"
RATES = (250, 500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12000, 16000)

NETBOOT_DHCP = """
[dhcp]
subnet = "10.64.0.0/10"
pool = "10.65.0.1-10.127.255.250"
router = "10.64.0.1"
dns = ["10.64.0.1"]
lease_time = 3600
url_options = [66, 160]
"""


def netboot_config(state: Path, *, ping_check: bool = True, services: str = "") -> str:
    """netboot's DHCP alone (`services`: TOML tables of others to run)."""
    body = NETBOOT_DHCP + ("" if ping_check else "ping_check = false\n") + services
    return server_config(body, state=state, address=SERVER_IP, url=URL)


def kea_config(tmp: Path) -> dict[str, object]:
    return {
        "Dhcp4": {
            "interfaces-config": {"interfaces": ["eth0"], "dhcp-socket-type": "udp"},
            "lease-database": {
                "type": "memfile",
                "persist": True,
                "name": str(tmp / "kea-leases.csv"),
                "lfc-interval": 0,
            },
            "valid-lifetime": 3600,
            "subnet4": [
                {
                    "subnet": "10.64.0.0/10",
                    "pools": [{"pool": "10.65.0.1 - 10.127.255.250"}],
                    "option-data": [
                        {"name": "routers", "data": "10.64.0.1"},
                        {"name": "domain-name-servers", "data": "10.64.0.1"},
                        {"name": "tftp-server-name", "data": URL, "always-send": True},
                    ],
                }
            ],
            "loggers": [
                {
                    "name": "kea-dhcp4",
                    "severity": "WARN",
                    "output_options": [{"output": str(tmp / "kea.log")}],
                }
            ],
        }
    }


class Bed:
    """Server and relay share a transit link (10.63.0.0/24); the relay's
    address on the phones' subnet (10.64.0.2, perfdhcp's giaddr) is behind it,
    as in a routed site, so probes of pool addresses do not flood the
    server's neighbour table."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.wire = Segment(lab, {f"{name}-s": "10.63.0.1/24", f"{name}-c": "10.63.0.2/24"})
        self.srv, self.cli = self.wire[f"{name}-s"], self.wire[f"{name}-c"]
        self.srv.run(["ip", "addr", "add", f"{SERVER_IP}/32", "dev", "eth0"])
        self.srv.run(["ip", "route", "add", "10.64.0.0/10", "via", "10.63.0.2"])
        self.cli.run(["ip", "addr", "add", f"{RELAY_IP}/32", "dev", "eth0"])
        self.cli.run(["ip", "route", "add", f"{SERVER_IP}/32", "via", "10.63.0.1"])


def perfdhcp(cli: Netns, args: list[str], timeout: float) -> str:
    proc = cli.run(
        ["perfdhcp", "-4", "-l", RELAY_IP, *args, SERVER_IP], check=False, timeout=timeout
    )
    return proc.stdout + proc.stderr


def client_buffer_drops(cli: Netns) -> int:
    """UDP datagrams the client namespace's kernel dropped on a full socket
    receive buffer (perfdhcp's own socket: replies the server did send)."""
    snmp = cli.run(["cat", "/proc/net/snmp"]).stdout.splitlines()
    udp = [line.split()[1:] for line in snmp if line.startswith("Udp:")]
    return int(dict(zip(udp[0], udp[1], strict=True))["RcvbufErrors"])


@dataclass
class Rung:
    acks: int
    sent: int  # DISCOVERs
    ack_delay_ms: float  # perfdhcp's average REQUEST -> ACK delay
    client_drops: int  # replies lost in perfdhcp's full receive buffer

    @property
    def done(self) -> float:
        return self.acks / self.sent if self.sent else 0.0


def rate_run(cli: Netns, seconds: int, rate: int, base: int) -> Rung:
    """One rung, clients from a MAC base of their own."""
    mac = f"mac=02:{base:02x}:00:00:00:00"
    before = client_buffer_drops(cli)
    out = perfdhcp(
        cli,
        ["-r", str(rate), "-R", str(rate * seconds + 1), "-p", str(seconds), "-b", mac],
        timeout=seconds + 30,
    )
    received = [int(x) for x in re.findall(r"received packets: (\d+)", out)]
    sent = [int(x) for x in re.findall(r"sent packets: (\d+)", out)]
    delays = [float(x) for x in re.findall(r"avg delay: ([\d.]+) ms", out)]
    if len(received) < 2:
        raise RuntimeError(f"perfdhcp output not understood:\n{out}")
    # second exchange: REQUEST/ACK
    ack_delay = delays[1] if len(delays) > 1 else float("nan")
    return Rung(received[1], sent[0], ack_delay, client_buffer_drops(cli) - before)


AVALANCHE_LIMIT = 90.0


def avalanche(cli: Netns) -> float:
    """Seconds until 200 clients at once are all served (inf past the limit)."""
    start = time.monotonic()
    try:
        out = perfdhcp(
            cli,
            ["--scenario", "avalanche", "-R", "200", "-b", "mac=02:ff:00:00:00:00"],
            timeout=AVALANCHE_LIMIT,
        )
    except subprocess.TimeoutExpired:
        return float("inf")
    elapsed = time.monotonic() - start
    match = re.search(r"received packets: (\d+)", out)
    if match is None:
        raise RuntimeError(f"perfdhcp avalanche output not understood:\n{out}")
    return elapsed


def bench_netboot(lab: Lab, tmp: Path, seconds: int, rate: int) -> dict[str, float]:
    """The sweep with ping_check off (an offer otherwise waits ping_timeout_ms
    for its probe, and perfdhcp counts the exchanges still waiting when its
    period ends as drops); the avalanche with the default ping check."""
    bed = Bed(lab, "nb")
    config = tmp / "netboot.toml"

    shed = 0.0

    def fresh(step: int) -> Callable[[], object]:
        # HTTP on too (idle): its /metrics says whether the registry shed events.
        text = netboot_config(tmp / f"nb-state-{step}", ping_check=False, services="[http]\n")
        server = bed.wire.server("nb-s", config, text).start()

        def stop() -> None:
            nonlocal shed
            shed += _rung_shed(registry_shed(bed.cli))
            server.stop()

        return stop

    result = _sweep(bed, seconds, rate, fresh)
    result["registry_shed"] = shed
    server = bed.wire.server("nb-s", config, netboot_config(tmp / "nb-state")).start()
    result["avalanche_s"] = avalanche(bed.cli)
    assert server.proc is not None
    status = Path(f"/proc/{_child_pid(server.proc.pid)}/status").read_text()
    result["rss_mb"] = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    server.stop()
    # The ACK count must match leases that reached the disk, not just packets.
    from netboot.state.leases import read_leases

    result["leases_on_disk"] = sum(
        1
        for state in tmp.glob("nb-state*")
        for lease in read_leases(state)
        if lease.state == "bound"
    )
    return result


def _child_pid(pid: int) -> int:
    # `ip netns exec` execs the command, so the pid is netboot's own.
    return pid


def _start_dnsmasq(lab: Lab, bed: Bed, tmp: Path, ping: bool) -> subprocess.Popen[bytes]:
    argv = [
        "dnsmasq",
        "-d",
        "-q",
        "--conf-file=/dev/null",
        "--port=0",
        "--interface=eth0",
        "--bind-interfaces",
        "--dhcp-range=10.65.0.1,10.127.255.250,255.192.0.0,1h",
        f"--dhcp-leasefile={tmp / 'dnsmasq.leases'}",
        "--dhcp-authoritative",
        f"--dhcp-option-force=66,{URL}",
        f"--pid-file={tmp / 'dnsmasq.pid'}",
        "--log-facility=/dev/null",
    ]
    if not ping:
        argv.append("--no-ping")
    proc = lab.spawn(bed.srv, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: ":67 " in bed.srv.run(["ss", "-uln"]).stdout, 10, "dnsmasq to listen")
    return proc


def bench_dnsmasq(lab: Lab, tmp: Path, seconds: int, rate: int) -> dict[str, float]:
    """The rate sweep with --no-ping (with its default ping check dnsmasq blocks
    3 s per new address and completes nothing at any rate); the avalanche with
    the default ping check, as it ships."""
    bed = Bed(lab, "dm")

    def fresh(step: int) -> Callable[[], object]:
        (tmp / "dnsmasq.leases").unlink(missing_ok=True)
        proc = _start_dnsmasq(lab, bed, tmp, ping=False)
        return lambda: stop_process(proc)

    result = _sweep(bed, seconds, rate, fresh)
    proc = _start_dnsmasq(lab, bed, tmp, ping=True)
    result["avalanche_s"] = avalanche(bed.cli)
    stop_process(proc)
    return result


def bench_kea(lab: Lab, tmp: Path, seconds: int, rate: int) -> dict[str, float]:
    bed = Bed(lab, "kea")

    def fresh(step: int) -> Callable[[], object]:
        rung = tmp / f"rung-{step}"
        rung.mkdir()
        proc = _start_kea(lab, bed, rung)
        return lambda: stop_process(proc)

    result = _sweep(bed, seconds, rate, fresh)
    proc = _start_kea(lab, bed, tmp)
    result["avalanche_s"] = avalanche(bed.cli)
    stop_process(proc)
    return result


def _start_kea(lab: Lab, bed: Bed, tmp: Path) -> subprocess.Popen[bytes]:
    conf = tmp / "kea.json"
    conf.write_text(json.dumps(kea_config(tmp)))
    env_cmd = [
        "env",
        f"KEA_PIDFILE_DIR={tmp}",
        f"KEA_LOCKFILE_DIR={tmp}",
        "KEA_LOGGER_DESTINATION=/dev/null",
        "kea-dhcp4",
        "-c",
        str(conf),
    ]
    proc = lab.spawn(bed.srv, env_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: ":67 " in bed.srv.run(["ss", "-uln"]).stdout, 10, "kea to listen")
    return proc


def interleaved(lab: Lab, tmp: Path, seconds: int, max_rate: int) -> dict[str, dict[str, float]]:
    """netboot and Kea side by side (`--interleave`): each rung is offered to
    one and then the other (which goes first alternates), each on a fresh
    server, so that a change in what else the machine runs falls on both
    alike instead of on whichever server's sweep came second. No avalanche."""
    beds = {"netboot": Bed(lab, "nb"), "kea": Bed(lab, "kea")}
    sweeps = {"netboot": Sweep("netboot"), "kea": Sweep("kea")}
    shed = 0.0

    def netboot(step: int) -> Callable[[], object]:
        # HTTP on too (idle): its /metrics says whether the registry shed events.
        text = netboot_config(tmp / f"nb-state-{step}", ping_check=False, services="[http]\n")
        server = beds["netboot"].wire.server("nb-s", tmp / "netboot.toml", text).start()

        def stop() -> None:
            nonlocal shed
            shed += _rung_shed(registry_shed(beds["netboot"].cli))
            server.stop()

        return stop

    def kea(step: int) -> Callable[[], object]:
        rung = tmp / f"kea-{step}"
        rung.mkdir()
        proc = _start_kea(lab, beds["kea"], rung)
        return lambda: stop_process(proc)

    fresh: dict[str, Fresh] = {"netboot": netboot, "kea": kea}
    for step, rate in enumerate(r for r in RATES if r <= max_rate):
        order = ("netboot", "kea") if step % 2 == 0 else ("kea", "netboot")
        for name in order:
            if sweeps[name].over:
                continue
            stop = fresh[name](step)
            try:
                sweeps[name].add(rate, seconds, rate_run(beds[name].cli, seconds, rate, step))
            finally:
                stop()
        if all(sweep.over for sweep in sweeps.values()):
            break
    print(
        f"    netboot's registry events dropped (registry.max_queued; written only in DHCP's gaps): {shed:.0f}",
        flush=True,
    )
    return {name: sweep.result() for name, sweep in sweeps.items()}


def _rung_shed(count: float) -> float:
    """Say under the rung's line when netboot's registry dropped events in it."""
    if count:
        print(f"{'':>21}(registry: {count:.0f} events dropped at registry.max_queued)", flush=True)
    return count


def registry_shed(cli: Netns) -> float:
    """netboot's registry events dropped at registry.max_queued so far (its
    /metrics; events are dropped only as they are recorded, during the rung)."""
    text = cli.run(["curl", "-s", "-m", "10", f"http://{SERVER_IP}/metrics"]).stdout
    match = re.search(r'^netboot_registry_pruned_total\{reason="queued"\} (\S+)$', text, re.M)
    if match is None:
        raise RuntimeError(f"netboot's /metrics has no registry counter:\n{text[:500]}")
    return float(match.group(1))


Fresh = Callable[[int], Callable[[], object]]


class Sweep:
    """Rising rates offered to one server; the clean rate is the highest at
    which >= 99% of the exchanges completed. Over once fewer than 90% complete."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.clean = 0.0
        self.best = 0.0
        self.acks = 0
        self.over = False

    def add(self, rate: int, seconds: int, rung: Rung) -> None:
        per_second, done = rung.acks / seconds, rung.done
        self.acks += rung.acks
        who = f"{self.label:>8} " if self.label else ""
        print(
            f"    {who}offered {rate:>6}/s: {per_second:>7.0f} ACKs/s ({done:.1%} completed; "
            f"ACK delay avg {rung.ack_delay_ms:.0f} ms; {rung.client_drops} replies lost "
            "in perfdhcp's full socket buffer)",
            flush=True,
        )
        self.best = max(self.best, per_second)
        if done >= 0.99:
            self.clean = per_second
        if done < 0.90:
            self.over = True

    def result(self) -> dict[str, float]:
        return {"exchanges_per_s": self.clean, "peak_acks_per_s": self.best, "acks": self.acks}


def _sweep(bed: Bed, seconds: int, max_rate: int, fresh: Fresh) -> dict[str, float]:
    """The ladder, a fresh server per rung (`fresh(step)` starts one on empty
    state and returns how to stop it): no rung inherits the leases, history
    or unfinished work of the one before."""
    sweep = Sweep()
    for step, rate in enumerate(r for r in RATES if r <= max_rate):
        stop = fresh(step)
        try:
            sweep.add(rate, seconds, rate_run(bed.cli, seconds, rate, step))
        finally:
            stop()
        if sweep.over:
            break
    return sweep.result()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=int, default=4, help="length of each step of the rate sweep"
    )
    parser.add_argument(
        "--rate", type=int, default=16000, help="highest offered DISCOVER rate of the sweep"
    )
    parser.add_argument("--only", choices=("netboot", "dnsmasq", "kea"), action="append")
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="netboot and Kea only, each rung offered to both in turn (no avalanche)",
    )
    args = parser.parse_args()
    for tool in ("perfdhcp", "dnsmasq", "kea-dhcp4"):
        if shutil.which(tool) is None:
            print(f"bench/dhcp.py: {tool} not found (sudo ./install.sh --test)", file=sys.stderr)
            return 1
    servers = {"netboot": bench_netboot, "dnsmasq": bench_dnsmasq, "kea": bench_kea}
    chosen = args.only or list(servers)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="nb-bench-") as tmp_name, Lab() as lab:
        if args.interleave:
            print(
                f"[netboot, kea] rate sweep ({args.seconds} s a step, up to {args.rate}/s), "
                "each rung offered to both in turn",
                flush=True,
            )
            results = interleaved(lab, Path(tmp_name), args.seconds, args.rate)
            chosen = []
        for name in chosen:
            tmp = Path(tmp_name) / name
            tmp.mkdir()
            print(
                f"[{name}] rate sweep ({args.seconds} s a step, up to {args.rate}/s), then a 200-client avalanche",
                flush=True,
            )
            results[name] = servers[name](lab, tmp, args.seconds, args.rate)
            r = results[name]
            print(
                f"[{name}] {r['exchanges_per_s']:.0f} clean exchanges/s (peak {r['peak_acks_per_s']:.0f} ACKs/s), "
                f"avalanche of 200 in {r['avalanche_s']:.2f} s"
                + (f", peak RSS {r['rss_mb']:.0f} MB" if "rss_mb" in r else "")
                + (
                    f", {r['leases_on_disk']:.0f} bound leases on disk"
                    if "leases_on_disk" in r
                    else ""
                )
                + (
                    f", {r['registry_shed']:.0f} registry events dropped (registry.max_queued)"
                    if "registry_shed" in r
                    else ""
                ),
                flush=True,
            )
    print()
    print(f"{'server':<10}{'clean exch/s':>14}{'peak ACK/s':>12}{'avalanche s':>14}")
    nan = float("nan")
    for name, r in results.items():
        print(
            f"{name:<10}{r['exchanges_per_s']:>14.0f}{r['peak_acks_per_s']:>12.0f}"
            f"{r.get('avalanche_s', nan):>14.2f}"
        )
    if "netboot" in results:
        nb = results["netboot"]
        for ref in ("dnsmasq", "kea"):
            if ref in results and results[ref]["exchanges_per_s"]:
                ratio = nb["exchanges_per_s"] / results[ref]["exchanges_per_s"]
                peak = nb["peak_acks_per_s"] / max(results[ref]["peak_acks_per_s"], 1)
                line = f"netboot / {ref}: {ratio:.2f}x clean exchanges/s, {peak:.2f}x peak"
                if "avalanche_s" in nb and "avalanche_s" in results[ref]:
                    faster = results[ref]["avalanche_s"] / nb["avalanche_s"]
                    line += f", avalanche {faster:.2f}x faster"
                print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
