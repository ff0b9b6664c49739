#!/usr/bin/env python3
"""STUN Binding throughput: netboot vs coturn, same load generator, same run.

Each server runs alone in a namespace joined by a veth pair to a client
namespace; both listen on two addresses (203.0.113.10/.11, ports 3478/3479,
the full RFC 5780 layout). The load generator (this file, `load` mode, run in
the client namespace) keeps a window of RFC 5389 Binding requests in flight
on several UDP sockets, built in advance with unique transaction ids, and
counts a request as answered only when a Binding success response with its
transaction id comes back. Every run is bounded in requests and seconds.

Printed per server: requests/s answered, loss, server CPU seconds (utime +
stime of every thread, /proc/<pid>/stat) and CPU time per 1000 requests,
answered requests per CPU second (the rate per core; coturn runs several
threads), peak RSS (/proc/<pid>/status), and the ratios netboot/coturn.
Run as root:

    sudo /opt/netboot/bin/python bench/stun.py [--seconds 8] [--sockets 8] [--window 64] [--procs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.netns import (  # noqa: E402
    Lab,
    NetbootServer,
    Netns,
    Segment,
    server_config,
    stop_process,
    wait_for,
)

A1, A2 = "203.0.113.10", "203.0.113.11"
CLIENT = "203.0.113.50"
P1, P2 = 3478, 3479
COOKIE = b"\x21\x12\xa4\x42"
BINDING_REQUEST = b"\x00\x01\x00\x00" + COOKIE
BINDING_RESPONSE = b"\x01\x01"

NETBOOT_CONFIG = f"""
[stun]
enabled = true
addresses = ["{A1}", "{A2}"]
ports = [{P1}, {P2}]
rate_limit = 100000000  # the bench's few sources would hit the per-source limit
"""


# --- the load generator (runs in the client namespace) ---------------------------


def load(
    host: str, port: int, seconds: float, limit: int, nsock: int, window: int
) -> dict[str, float]:
    """Closed loop: `window` requests in flight per socket, a new one sent for
    each answer; a socket silent for STALL seconds counts its window lost and
    sends a fresh one. Stops at `limit` requests or after `seconds`."""
    stall = 0.05
    socks: list[socket.socket] = []
    for _ in range(nsock):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((CLIENT, 0))
        s.connect((host, port))  # send/recv, and only the server's answers get in
        s.setblocking(False)
        socks.append(s)
    per_sock = max(window * 4, limit // nsock + window)
    # Every request prebuilt: the 12-byte transaction id is socket index + sequence.
    pools = [
        [BINDING_REQUEST + i.to_bytes(4, "big") + n.to_bytes(8, "big") for n in range(per_sock)]
        for i in range(nsock)
    ]
    pending: list[set[bytes]] = [set() for _ in range(nsock)]
    next_n = [0] * nsock
    last_seen = [0.0] * nsock
    sent = answered = lost = 0
    by_fd = {s.fileno(): i for i, s in enumerate(socks)}
    ep = select.epoll()
    for s in socks:
        ep.register(s.fileno(), select.EPOLLIN)

    def fill(i: int, count: int) -> None:
        nonlocal sent
        s, pool, out = socks[i], pools[i], pending[i]
        n = next_n[i]
        count = min(count, limit - sent, per_sock - n)
        for _ in range(count):
            req = pool[n]
            try:
                s.send(req)
            except BlockingIOError:
                break
            out.add(req[8:20])
            n += 1
        sent += n - next_n[i]
        next_n[i] = n

    start = time.monotonic()
    deadline = start + seconds
    for i in range(nsock):
        last_seen[i] = start
        fill(i, window)
    now = start
    while now < deadline and (sent < limit or any(pending)):
        events = ep.poll(stall)
        now = time.monotonic()
        for fd, _ in events:
            i = by_fd[fd]
            s, out = socks[i], pending[i]
            got = 0
            while True:
                try:
                    data = s.recv(2048)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:
                    continue
                tid = data[8:20]
                if data[:2] == BINDING_RESPONSE and data[4:8] == COOKIE and tid in out:
                    out.discard(tid)
                    got += 1
            if got:
                answered += got
                last_seen[i] = now
                fill(i, got)
        for i in range(nsock):
            if now - last_seen[i] > stall:
                lost += len(pending[i])
                pending[i].clear()
                last_seen[i] = now
                fill(i, window)
    elapsed = time.monotonic() - start
    # A short drain: answers still on their way are counted, the rest are lost.
    drain_end = time.monotonic() + 0.2
    while any(pending) and time.monotonic() < drain_end:
        for fd, _ in ep.poll(0.02):
            i = by_fd[fd]
            while True:
                try:
                    data = socks[i].recv(2048)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                if data[8:20] in pending[i]:
                    pending[i].discard(data[8:20])
                    answered += 1
    lost += sum(len(p) for p in pending)
    for s in socks:
        s.close()
    return {"sent": sent, "answered": answered, "lost": lost, "seconds": elapsed}


# --- the servers and the measurement ------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of all the process's threads."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    status = Path(f"/proc/{pid}/status").read_text()

    def kb(key: str) -> float:
        match = re.search(rf"{key}:\s+(\d+)", status)
        return int(match.group(1)) / 1024 if match else 0.0

    return kb("VmRSS"), kb("VmHWM")


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def load_argv(args: argparse.Namespace, seconds: float, limit: int) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "load",
        *("--host", A1, "--port", str(P1), "--seconds", str(seconds), "--limit", str(limit)),
        *("--sockets", str(args.sockets), "--window", str(args.window)),
    ]


def measure(cli: Netns, pid: int, args: argparse.Namespace) -> dict[str, float]:
    # A short warm-up first (caches, the kernel's neighbour entries, coturn's threads).
    cli.run(load_argv(args, 1.0, 20_000), timeout=60)
    argv = load_argv(args, args.seconds, args.limit // args.procs)
    cpu0 = cpu_seconds(pid)
    gens = [
        cli.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(args.procs)
    ]
    outs = [g.communicate(timeout=args.seconds + 60) for g in gens]
    cpu = cpu_seconds(pid) - cpu0
    parts = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    result: dict[str, float] = {k: sum(p[k] for p in parts) for k in ("sent", "answered", "lost")}
    result["seconds"] = max(p["seconds"] for p in parts)
    rss, hwm = memory_mb(pid)
    answered = result["answered"]
    result.update(
        rate=answered / result["seconds"],
        loss=result["lost"] / max(result["sent"], 1),
        cpu=cpu,
        cpu_ms_per_1000=1000 * cpu / max(answered, 1) * 1000,
        per_cpu_second=answered / cpu if cpu > 0 else float("inf"),
        rss_mb=rss,
        hwm_mb=hwm,
        threads=threads(pid),
    )
    return result


def bed(lab: Lab, name: str) -> tuple[Netns, Netns]:
    wire = Segment(lab, {f"{name}-s": f"{A1}/24", f"{name}-c": f"{CLIENT}/24"})
    wire[f"{name}-s"].run(["ip", "addr", "add", f"{A2}/24", "dev", "eth0"])
    return wire[f"{name}-s"], wire[f"{name}-c"]


def bench_netboot(lab: Lab, tmp: Path, args: argparse.Namespace) -> dict[str, float]:
    srv, cli = bed(lab, "nb")
    config = tmp / "netboot.toml"
    config.write_text(server_config(NETBOOT_CONFIG, state=tmp / "state"))
    server = NetbootServer(lab, srv, config).start()
    assert server.proc is not None
    try:
        return measure(cli, server.proc.pid, args)  # `ip netns exec` execs: netboot's pid
    finally:
        server.stop()


def bench_coturn(lab: Lab, tmp: Path, args: argparse.Namespace) -> dict[str, float]:
    srv, cli = bed(lab, "ct")
    argv = [
        "turnserver",
        "-n",  # no config file: only what is given here
        "--stun-only",
        "--no-cli",
        "--no-tcp",
        "--no-tls",
        "--no-dtls",
        "--no-tcp-relay",
        "-L",
        A1,
        "-L",
        A2,
        "-p",
        str(P1),
        "--alt-listening-port",
        str(P2),
        "--relay-ip",
        A1,
        "--pidfile",
        str(tmp / "turnserver.pid"),
        "--log-file",
        str(tmp / "turnserver.log"),
        "--simple-log",
        "--no-stdout-log",
    ]
    proc = lab.spawn(srv, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: f"{A2}:{P2} " in srv.run(["ss", "-uln"]).stdout, 15, "coturn to listen")
        return measure(cli, proc.pid, args)
    finally:
        stop_process(proc)


def report(results: dict[str, dict[str, float]]) -> None:
    print()
    head = f"{'server':<9}{'answered/s':>11}{'loss':>8}{'CPU s':>7}{'CPU ms/1000':>12}"
    print(head + f"{'per CPU s':>11}{'RSS MB':>8}{'peak MB':>8}{'threads':>8}")
    for name, r in results.items():
        print(
            f"{name:<9}{r['rate']:>11.0f}{r['loss']:>8.2%}{r['cpu']:>7.2f}"
            f"{r['cpu_ms_per_1000']:>12.1f}{r['per_cpu_second']:>11.0f}"
            f"{r['rss_mb']:>8.1f}{r['hwm_mb']:>8.1f}{r['threads']:>8.0f}"
        )
    if "netboot" in results and "coturn" in results:
        nb, ct = results["netboot"], results["coturn"]
        print(
            f"netboot / coturn: {nb['rate'] / max(ct['rate'], 1):.2f}x answered/s, "
            f"{nb['per_cpu_second'] / max(ct['per_cpu_second'], 1):.2f}x per CPU second "
            f"(target >= 1.00), {nb['rss_mb'] / max(ct['rss_mb'], 0.1):.2f}x RSS"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", nargs="?", choices=("bench", "load"), default="bench")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each run")
    parser.add_argument("--limit", type=int, default=2_000_000, help="requests per run at most")
    parser.add_argument("--sockets", type=int, default=8, help="client UDP sockets")
    parser.add_argument("--window", type=int, default=64, help="requests in flight per socket")
    parser.add_argument("--procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--host", default=A1)
    parser.add_argument("--port", type=int, default=P1)
    parser.add_argument("--only", choices=("netboot", "coturn"), action="append")
    args = parser.parse_args()
    if args.mode == "load":
        result = load(args.host, args.port, args.seconds, args.limit, args.sockets, args.window)
        print(json.dumps(result))
        return 0
    if shutil.which("turnserver") is None:
        print("bench/stun.py: turnserver not found (sudo ./install.sh --test)", file=sys.stderr)
        return 1
    servers = {"netboot": bench_netboot, "coturn": bench_coturn}
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="nb-bench-stun-") as tmp_name, Lab() as lab:
        for name in args.only or list(servers):
            tmp = Path(tmp_name) / name
            tmp.mkdir()
            print(
                f"[{name}] {args.procs} x {args.sockets} sockets x {args.window} in flight, "
                f"{args.seconds:g} s (at most {args.limit} requests)",
                flush=True,
            )
            results[name] = r = servers[name](lab, tmp, args)
            print(
                f"[{name}] {r['answered']:.0f} of {r['sent']:.0f} answered in "
                f"{r['seconds']:.2f} s: {r['rate']:.0f}/s, {r['cpu']:.2f} CPU s",
                flush=True,
            )
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
