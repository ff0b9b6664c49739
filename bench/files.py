#!/usr/bin/env python3
"""Config-file serving: netboot vs tftpd-hpa (TFTP) and `python3 -m http.server` (HTTP).

One server namespace runs all of them side by side on one veth pair (netboot
TFTP on 69 and HTTP on 80, in.tftpd on 6969, http.server on 8000), the client
namespace runs the real clients. Per server, same run, same files:

- TFTP 32 MB with blksize 1428: curl (lock-step, RFC 1350/2348), and a small
  RFC 7440 client here asking windowsize 16 (tftpd-hpa 5.2 does not implement
  windowsize and falls back to lock-step: the ratio shows what windowsize buys);
- TFTP 200 small files at once: `curl -Z --parallel-max 200`;
- HTTP 32 MB and 200 small files at once, with curl (the reference is the
  standard library's ThreadingHTTPServer as `python3 -m http.server` runs it,
  its listen backlog raised from 5 to 256 so that 200 connections at once
  measure the server, not SYN retransmissions).

Every load is bounded in count and time; namespaces are removed at the end.
Run as root:  /opt/netboot/bin/python bench/files.py [--size-mb 32] [--small 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.netns import Lab, Netns, Segment, server_config, wait_for  # noqa: E402

SERVER = "10.66.0.1"
CLIENT = "10.66.0.2"

NETBOOT_CONFIG = """
[tftp]
enabled = true
port = 69
[http]
enabled = true
port = 80
https_port = 0
"""


def pair(
    repeat: int, ours: Callable[[], float], ref: Callable[[], float]
) -> tuple[float | None, float | None]:
    """Best times of two loads run alternately (the shared machine's load
    drifts: alternating gives both the same conditions). Each callable returns
    the seconds its client took (the content check afterwards is not timed);
    a server that fails a run is reported as failed (None), not timed."""
    times: tuple[list[float], list[float]] = ([], [])
    failed = [False, False]
    for _ in range(repeat):
        for i, (who, load) in enumerate((("netboot", ours), ("reference", ref))):
            if failed[i]:
                continue
            try:
                times[i].append(load())
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"  ({who} failed: {str(exc).splitlines()[0][:150]})")
                failed[i] = True
    a, b = (None if failed[i] or not times[i] else min(times[i]) for i in range(2))
    return a, b


def rate(mb: int, seconds: float | None) -> float | None:
    return None if seconds is None else mb / seconds


def run(ns: Netns, argv: list[str], timeout: float = 120) -> float:
    """Run a client in the namespace; the seconds it took."""
    start = time.perf_counter()
    proc = ns.run(argv, timeout=timeout, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]}... exited {proc.returncode}: {proc.stderr[-400:]}")
    return elapsed


# `python3 -m http.server` (ThreadingHTTPServer, SimpleHTTPRequestHandler), with
# a listen backlog of 256 instead of 5: with 5, 200 connections at once are
# reset or wait seconds for SYN retransmissions, which measures the backlog.
HTTP_SERVER = """
import functools, http.server, sys
http.server.ThreadingHTTPServer.request_queue_size = 256
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[3])
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), handler).serve_forever()
"""

# ---------------------------------------------------------------- an RFC 7440 client

WINDOW_CLIENT = r"""
import socket, struct, sys, time
host, port, name, blksize, window, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.settimeout(1.0)
opts = [b"blksize", str(blksize).encode(), b"tsize", b"0"]
if window > 1:
    opts += [b"windowsize", str(window).encode()]
rrq = b"\0\1" + name.encode() + b"\0octet\0" + b"".join(o + b"\0" for o in opts)
s.sendto(rrq, (host, port))
deadline = time.monotonic() + 120
buf = bytearray(blksize + 4)
view = memoryview(buf)
parts = []
expected = 1
inwin = 0
tid = None
acked_opts = False
while time.monotonic() < deadline:
    try:
        n, addr = s.recvfrom_into(buf)
    except socket.timeout:
        if tid is None:
            s.sendto(rrq, (host, port)); continue
        s.sendto(struct.pack("!HH", 4, (expected - 1) & 0xFFFF), tid); inwin = 0; continue
    if tid is None:
        tid = addr
    op = buf[1]
    if op == 6:  # OACK: windowsize may be refused (absent)
        o = bytes(buf[2:n]).split(b"\0")
        d = dict(zip(o[0::2], o[1::2]))
        if b"windowsize" not in d:
            window = 1
        if b"blksize" not in d:
            blksize = 512
        s.sendto(b"\0\4\0\0", tid); continue
    if op == 5:
        sys.exit("error " + bytes(buf[4:n]).decode(errors="replace"))
    if op != 3:
        continue
    block = buf[2] << 8 | buf[3]
    if block != expected & 0xFFFF:
        if inwin:  # a gap: ACK the last in-order block (RFC 7440 sec. 4)
            s.sendto(struct.pack("!HH", 4, (expected - 1) & 0xFFFF), tid); inwin = 0
        continue
    parts.append(bytes(view[4:n]))
    expected += 1
    inwin += 1
    last = n - 4 < blksize
    if last or inwin >= window:
        s.sendto(struct.pack("!HH", 4, block), tid); inwin = 0
    if last:
        break
else:
    sys.exit("timed out")
open(out, "wb").write(b"".join(parts))
"""


# ---------------------------------------------------------------- the bench


class Bed:
    def __init__(self, lab: Lab, tmp: Path, size_mb: int, small: int) -> None:
        self.lab = lab
        self.tmp = tmp
        wire = Segment(lab, {"srv": f"{SERVER}/24", "cli": f"{CLIENT}/24"})
        self.srv, self.cli = wire["srv"], wire["cli"]
        self.root = tmp / "root"
        self.root.mkdir()
        os.chmod(tmp, 0o755)
        os.chmod(self.root, 0o755)
        self.big = self.root / "firmware.bin"
        self.big.write_bytes(os.urandom(size_mb * 1024 * 1024))
        self.small = small
        # Many phones at once come from many addresses (netboot allows
        # tftp.max_sessions_per_source = 8 transfers per address): the small
        # files are fetched from one client address each.
        if small > 240:
            raise SystemExit("--small: at most 240 (one client address each in a /24)")
        self.cli.run(
            ["ip", "-batch", "-"],
            input="".join(f"address add {client_ip(i)}/24 dev eth0\n" for i in range(small)),
        )
        for i in range(small):
            (self.root / f"f0phone{i}hw1.100.cfg").write_bytes(os.urandom(1500 + i))
        self.out = tmp / "out"
        self.out.mkdir()
        text = server_config(NETBOOT_CONFIG, state=tmp / "state", root=self.root)
        self.netboot = wire.server("srv", tmp / "netboot.toml", text).start()
        lab.spawn(
            self.srv,
            ["in.tftpd", "-L", "-u", "root", "-s", "-a", f"{SERVER}:6969", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        lab.spawn(
            self.srv,
            [sys.executable, "-c", HTTP_SERVER, SERVER, "8000", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.window_client = tmp / "window_client.py"
        self.window_client.write_text(WINDOW_CLIENT)
        wait_for(self._http_up, 20, "http.server to listen")

    def _http_up(self) -> bool:
        return (
            self.cli.run(
                ["curl", "-sf", "-o", "/dev/null", f"http://{SERVER}:8000/"], check=False
            ).returncode
            == 0
        )

    def check(self, path: Path, expected: Path) -> None:
        if path.read_bytes() != expected.read_bytes():
            raise RuntimeError(f"{path.name}: content differs from {expected.name}")
        path.unlink()

    def tftp_big_curl(self, port: int) -> float:
        out = self.out / "big"
        url = f"tftp://{SERVER}:{port}/{self.big.name}"
        took = run(self.cli, ["curl", "-sS", "--tftp-blksize", "1428", "-o", str(out), url])
        self.check(out, self.big)
        return took

    def tftp_big_window(self, port: int, window: int) -> float:
        out = self.out / "bigw"
        argv = [sys.executable, str(self.window_client), SERVER, str(port), self.big.name]
        took = run(self.cli, [*argv, "1428", str(window), str(out)])
        self.check(out, self.big)
        return took

    def small_parallel(self, scheme: str, port: int) -> float:
        urls = [f"{scheme}://{SERVER}:{port}/f0phone{i}hw1.100.cfg" for i in range(self.small)]
        argv = ["curl", "-sS", "-Z", "--parallel-max", str(self.small), "--parallel-immediate"]
        for i, url in enumerate(urls):
            if i:
                argv.append("--next")
            argv += ["--interface", client_ip(i), "-o", str(self.out / f"s{i}"), url]
        took = run(self.cli, argv)
        for i in range(self.small):
            self.check(self.out / f"s{i}", self.root / f"f0phone{i}hw1.100.cfg")
        return took

    def http_big(self, port: int) -> float:
        out = self.out / "bighttp"
        url = f"http://{SERVER}:{port}/{self.big.name}"
        took = run(self.cli, ["curl", "-sS", "-o", str(out), url])
        self.check(out, self.big)
        return took


def client_ip(i: int) -> str:
    """The address of small-file client `i` (one phone each)."""
    return f"10.66.0.{10 + i}"


def row(label: str, ours: float | None, ref: float | None, unit: str, higher: bool) -> None:
    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:10.2f}"

    ratio = "n/a"
    if ours is not None and ref is not None and ours > 0 and ref > 0:
        ratio = f"{(ours / ref) if higher else (ref / ours):.2f}x"
    print(f"{label:<44} {fmt(ours)} {fmt(ref)} {unit:<6} {ratio}")


def bench_tftp(bed: Bed, mb: int, small: int, r: int) -> None:
    print("TFTP (reference: tftpd-hpa 5.2)")
    loads = [
        ("curl", lambda port: bed.tftp_big_curl(port)),
        ("no windowsize (py)", lambda port: bed.tftp_big_window(port, 1)),
        ("windowsize 16 (py*)", lambda port: bed.tftp_big_window(port, 16)),
    ]
    for label, load in loads:
        t_ours, t_ref = pair(r, functools.partial(load, 69), functools.partial(load, 6969))
        row(f"  {mb} MB, blksize 1428, {label}", rate(mb, t_ours), rate(mb, t_ref), "MB/s", True)
    t_ours, t_ref = pair(
        r, lambda: bed.small_parallel("tftp", 69), lambda: bed.small_parallel("tftp", 6969)
    )
    row(f"  {small} small files at once, curl -Z", t_ours, t_ref, "s", False)
    print("  (*) tftpd-hpa 5.2 has no windowsize: it answers lock-step")


def bench_http(bed: Bed, mb: int, small: int, r: int) -> None:
    print("HTTP (reference: python3 http.server, ThreadingHTTPServer, listen backlog 256)")
    t_ours, t_ref = pair(r, lambda: bed.http_big(80), lambda: bed.http_big(8000))
    row(f"  {mb} MB, curl", rate(mb, t_ours), rate(mb, t_ref), "MB/s", True)
    t_ours, t_ref = pair(
        r, lambda: bed.small_parallel("http", 80), lambda: bed.small_parallel("http", 8000)
    )
    row(f"  {small} small files at once, curl -Z", t_ours, t_ref, "s", False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=32)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("tftp", "http"), help="run one protocol's loads")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/files.py: run as root (network namespaces)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="netboot-bench-files-") as tmpdir, Lab() as lab:
        bed = Bed(lab, Path(tmpdir), args.size_mb, args.small)
        print(f"{'':<44} {'netboot':>10} {'reference':>10} {'unit':<6} ratio (>1: netboot better)")
        if args.only in (None, "tftp"):
            bench_tftp(bed, args.size_mb, args.small, args.repeat)
        if args.only in (None, "http"):
            bench_http(bed, args.size_mb, args.small, args.repeat)
        bed.netboot.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
