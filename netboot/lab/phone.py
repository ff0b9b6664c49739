"""A simulated IP phone, booting the way its vendor's firmware does.

The sequence (FIELD-NOTES "DHCP", "SIP Plug-and-Play", "LLDP-MED and CDP"):

1. LLDP-MED: send the phone's own LLDPDU (endpoint class III, inventory) and
   listen for the switch's network policy; a tagged voice policy (T=1) gives
   the voice VLAN (TIA-1057 §10.2.3), CDP's VoIP VLAN reply likewise.
2. DHCP (RFC 2131 §3.1): DISCOVER -> OFFER -> REQUEST -> ACK, with the
   vendor's option 60 and parameter request list, retransmitting with
   back-off (§4.1). Learned a voice VLAN: the whole exchange runs again,
   802.1Q-tagged in that VLAN (the answers must come back tagged in it),
   and the ACK must come from the appliance's voice scope. The lab's phones
   keep their data lease as their source address for the steps below (their
   namespace cannot have a VLAN interface either).
3. The provisioning URL from the first option, in the vendor's order, that
   the server sent; none: SIP PnP (RFC 3261 SUBSCRIBE to 224.0.1.75:5060,
   `Event: ua-profile`) and the URL from the NOTIFY body.
4. The common file of its model, then its own file (the URL, `$mac`
   substituted), by the URL's scheme: HTTP GET or TFTP RRQ (RFC 1350).
   Each must arrive, and the own file must be the one written for this MAC.
5. The Action URL events a phone sends once it runs: setup completed, then
   registration succeeded.
6. Optionally (the lab's appliance runs STUN): a STUN Binding request
   (RFC 8489 §6.1, magic cookie, FINGERPRINT) from the phone's address, as a
   phone configured with a STUN server sends before registering; the
   XOR-MAPPED-ADDRESS must be the phone's own address and port (no NAT
   between a phone and an appliance in its VLAN).

The shared wire (one raw socket for every phone's DHCP, the LLDP listener,
the address plumber) lives in `segment.py`; a phone is only its state and
this sequence. Every step is timed; the first failing step ends the boot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import cast
from urllib.parse import quote, urlsplit

from netboot.dhcp import codec
from netboot.dhcp.codec import DhcpMessage
from netboot.lab.apply import Applied, ConfigRejected, apply_files, layout_for, next_file
from netboot.lab.segment import DhcpMux, build_lldp_med
from netboot.lab.webui import ActiveUriLog
from netboot.stun import codec as stun
from netboot.vendors import (
    VendorProfile,
    avaya,
    cisco,
    fanvil,
    gigaset,
    grandstream,
    panasonic,
    polycom,
    snom,
    yealink,
)
from netboot.wire import DecodeError, format_mac


@dataclass(frozen=True)
class Vendor:
    """A lab phone's identity: what its firmware sends and asks for, taken from
    its family's profile (`netboot.vendors`, each fact with its source there)."""

    name: str
    oui: bytes
    model: str
    firmware: str
    manufacturer: str
    vendor_class: bytes  # DHCP option 60 (b"": the firmware sends none)
    prl: bytes  # DHCP option 55
    url_options: tuple[int, ...]  # the order in which its firmware reads them
    common_file: str
    pnp_user_agent: str
    pnp_user: str = "MAC{mac}"  # the SUBSCRIBE's user part, {mac} = 12 hex digits
    pnp_port: int = 5060  # 0: a random source port (and rport)
    pnp_from_tag: bool = True
    own_file: str = "{mac}.cfg"  # its per-MAC name when it was given a directory
    mac_macro: str | None = "$mac"  # the macro it fills in itself in a URL
    http_user_agent: str = ""  # its firmware's User-Agent form (profile Identity)
    fetches_common: bool = True  # False: only its per-MAC file (the first of its order)
    default_file: str = ""  # what it asks a bare TFTP server (option 66, no 67) for

    def user_agent(self, mac: bytes) -> str:
        if self.http_user_agent:
            return self.http_user_agent.format(
                model=self.model, firmware=self.firmware, mac=mac.hex(), MAC=mac.hex().upper()
            )
        return f"{self.manufacturer} {self.model} {self.firmware} {mac.hex()}"

    def own_name(self, mac: bytes) -> str:
        return self.own_file.replace("{mac}", mac.hex()).replace("{MAC}", mac.hex().upper())

    def own_url(self, url: str, mac: bytes) -> str:
        """Where this firmware fetches its own file from, given `url`: the
        URL with its own macro filled in, or its per-MAC name in a directory."""
        if url.endswith("/"):
            return url + self.own_name(mac)
        if self.mac_macro == "{mac}":
            return url.replace("{mac}", mac.hex().upper())
        if self.mac_macro == "[MAC]":  # Gigaset
            return url.replace("[MAC]", mac.hex().upper())
        if self.mac_macro == "{MAC}":  # Panasonic
            return url.replace("{MAC}", mac.hex().upper())
        return url.replace("$mac", mac.hex()).replace("$MA", mac.hex())


def vendor_from_profile(profile: VendorProfile, common_file: str) -> Vendor:
    ident = profile.identity
    if ident is None:
        raise ValueError(f"{profile.name}: no lab identity")
    return Vendor(
        name=profile.name,
        oui=bytes.fromhex(profile.ouis[0].replace(":", "")),
        model=ident.model,
        firmware=ident.firmware,
        manufacturer=ident.manufacturer,
        vendor_class=ident.vendor_class,
        prl=ident.prl,
        url_options=ident.url_options,
        common_file=common_file,
        pnp_user_agent=ident.pnp_user_agent,
        pnp_user=ident.pnp_user,
        pnp_port=ident.pnp_port,
        pnp_from_tag=ident.pnp_from_tag,
        own_file=ident.own_file or next(t for t in profile.mac_files if "*" not in t),
        mac_macro=profile.mac_macro,
        http_user_agent=ident.http_user_agent,
        fetches_common=ident.fetches_common,
        default_file=ident.default_file,
    )


VENDORS: dict[str, Vendor] = {
    # PLANET VIP phones are Fanvil-built: no option 60, option 43 mode (PLANET guide 2.2.2).
    "planet": vendor_from_profile(fanvil.PLANET, "f0VIP-2140PThw1.100.cfg"),
    # Yealink: a custom option (128-254) before 66 before 43, each a server directory.
    "yealink": vendor_from_profile(yealink.YEALINK, "y000000000096.cfg"),
    # Snom: 66 (with 67 as the file name when 66 is a bare server); without it, SIP PnP.
    "snom": vendor_from_profile(snom.SNOM, "snomD785.htm"),
    # Grandstream: 66 is a server path; it asks for cfg<mac>.xml and stops there.
    "grandstream": vendor_from_profile(grandstream.GRANDSTREAM, "cfg.xml"),
    # Polycom: 160 then 66, a server; the master 000000000000.cfg names its next file.
    "polycom": vendor_from_profile(polycom.POLYCOM, "000000000000.cfg"),
    # Cisco SPA: 66 is a TFTP server; it asks for /spa$PSN.cfg, whose
    # Profile_Rule_B names its $MA.xml.
    "cisco-spa": vendor_from_profile(cisco.CISCO_SPA, "spa504G.cfg"),
    # Gigaset N870: a URL with its own [MAC]; it asks for that file only.
    "gigaset": vendor_from_profile(gigaset.GIGASET, "gigaset-N870-site.xml"),
    # Panasonic: 160 > 159 > 66, a URL with its own {MAC}.
    "panasonic": vendor_from_profile(panasonic.PANASONIC, "KX-HDV130.cfg"),
    # Avaya J100: option 242 names the HTTP server; 46xxsettings.txt GETs $MACADDR.cfg.
    "avaya": vendor_from_profile(avaya.AVAYA, "46xxsettings.txt"),
}


class StepFailed(Exception):
    """A boot step did not do what a real phone needs: the phone fails."""


@dataclass
class PhoneResult:
    mac: str
    vendor: str
    model: str
    ip: str = ""
    voice_ip: str = ""
    leases: list[str] = field(default_factory=list)  # the appliance's, for this MAC
    vlan: int | None = None
    vlan_source: str = "none"
    url: str = ""
    url_source: str = ""
    steps: dict[str, float] = field(default_factory=dict)
    appliance: list[str] = field(default_factory=list)  # the appliance's events, checked
    ok: bool = False
    error: str = ""
    started: float = 0.0
    finished: float = 0.0
    retries: int = 0  # DHCP retransmissions and file downloads tried again

    @property
    def total(self) -> float:
        return self.finished - self.started if self.finished else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "mac": self.mac,
            "vendor": self.vendor,
            "model": self.model,
            "ip": self.ip,
            "voice_ip": self.voice_ip,
            "leases": self.leases,
            "vlan": self.vlan,
            "vlan_source": self.vlan_source,
            "url": self.url,
            "url_source": self.url_source,
            "steps": {k: round(v, 4) for k, v in self.steps.items()},
            "appliance": self.appliance,
            "total": round(self.total, 4),
            "retries": self.retries,
            "result": "ok" if self.ok else "failed",
            "error": self.error,
        }


def phone_mac(vendor: Vendor, index: int, salt: int) -> bytes:
    """OUI of the vendor, then a per-lab salt byte and the phone's index."""
    return vendor.oui + bytes((salt & 0xFF,)) + struct.pack("!H", index & 0xFFFF)


def expected_own_file(mac: bytes, vendor: Vendor) -> bytes:
    """What the lab writes as this phone's own file (and the phone checks)."""
    mac_text = mac.hex()
    return (
        f"<<VOIP CONFIG FILE>>Version:2.0000000000\n"
        f"<GLOBAL CONFIG MODULE>\nHost Name          :{vendor.name}-{mac_text}\n"
        f"<SIP CONFIG MODULE>\nSIP1 Display Name  :lab {mac_text}\n"
        f"SIP1 Register User :{mac_text}\n<<END OF FILE>>\n"
    ).encode()


def expected_common_file(vendor: Vendor) -> bytes:
    return (
        f"<<VOIP CONFIG FILE>>Version:2.0000000000\n"
        f"<GLOBAL CONFIG MODULE>\nModel              :{vendor.model}\n<<END OF FILE>>\n"
    ).encode()


# ------------------------------------------------------------------ retries and back-off

# DHCP (RFC 2131 §4.1): "the delay before the first retransmission SHOULD be 4
# seconds randomized by the value of a uniform random number chosen from the
# range -1 to +1 ... The delay before the next retransmission SHOULD be 8
# seconds randomized ... up to a maximum of 64 seconds."
DHCP_FIRST_WAIT = 4.0
DHCP_MAX_WAIT = 64.0

# A file download that fails (no answer, a TFTP ERROR such as "busy", an HTTP
# 5xx, a refused or reset connection, one closed before the whole answer) is
# tried again after a pause, a few times, as
# Yealink firmware does: `static.auto_provision.attempt_before_failed` attempts
# with `static.auto_provision.retry_delay_after_file_transfer_failed` seconds
# between them (Yealink Auto Provisioning Guide; the key names as in the
# exported configs of T4x/T5x firmware). PLANET/Fanvil and Snom document no
# such knob; the lab gives them the same behaviour.
FETCH_ATTEMPTS = 3
FETCH_RETRY_DELAY = 5.0
# Within one TFTP download the client retransmits its last packet when no
# answer came within its timeout (RFC 1350 §2), then gives up the transfer:
# 10 times, as U-Boot's TFTP client does (net/tftp.c TIMEOUT_COUNT), every
# second (a phone's application client is quicker than U-Boot's 5 s).
TFTP_CLIENT_TIMEOUT = 1.0
TFTP_CLIENT_RETRIES = 10


def dhcp_backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after transmission number `attempt` (0: the first)
    of a DHCP message before sending it again (RFC 2131 §4.1)."""
    base: float = min(DHCP_FIRST_WAIT * 2.0**attempt, DHCP_MAX_WAIT)
    jitter: float = (rng or random).uniform(-1.0, 1.0)
    return base + jitter


class Retryable(StepFailed):
    """A download failure the firmware tries again after a pause."""


# ------------------------------------------------------------------ file fetching


async def http_get(url: str, source_ip: str, user_agent: str, timeout: float) -> tuple[int, bytes]:
    """One HTTP/1.1 GET from `source_ip` (the phone's lease), Connection: close."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, local_addr=(source_ip, 0)), timeout
    )
    try:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: {user_agent}\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode())
        data = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:  # closed before the answer: a failed transfer, tried again
        raise Retryable(f"GET {url}: no complete HTTP response")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise StepFailed(f"GET {url}: bad status line {lines[0]!r}") from None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if len(body) < length:  # cut off: a failed transfer, tried again
            raise Retryable(f"GET {url}: {len(body)} of {length} bytes")
        body = body[:length]
    return status, body


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


class _TftpClient(asyncio.DatagramProtocol):
    """An RFC 1350 read in octet mode, lock-step, 512-byte blocks, driven by
    the datagrams themselves: each DATA is acknowledged as it arrives (no
    task or queue per block: a lab runs thousands of these at once), one
    timer retransmits the last packet after `timeout` without progress, up
    to `retries` times (RFC 1350 §2)."""

    def __init__(self, server: tuple[str, int], name: str, timeout: float, retries: int) -> None:
        self.server = server
        self.name = name
        self.timeout = timeout
        self.retries = retries
        self.request = struct.pack("!H", 1) + name.encode() + b"\x00octet\x00"
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[bytes] = self.loop.create_future()
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None
        self.last: tuple[bytes, tuple[str, int]] = (self.request, server)
        self.out = bytearray()
        self.expected = 1
        self.tries = 0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._send(self.request, self.server)

    def _send(self, packet: bytes, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.last = (packet, to)
        self.transport.sendto(packet, to)
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(self.timeout, self._expired)

    def _expired(self) -> None:
        self.tries += 1
        if self.tries > self.retries:
            self._end(Retryable(f"TFTP {self.name}: no answer from {self.server[0]}"))
        elif not self.done.done():
            self._send(*self.last)

    def _end(self, outcome: bytes | Exception) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.done.done():
            return
        if isinstance(outcome, Exception):
            self.done.set_exception(outcome)
        else:
            self.done.set_result(outcome)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.done.done():
            return
        if self.peer is None and addr[0] == self.server[0]:
            self.peer = addr
        if addr != self.peer or len(data) < 4:
            return
        opcode, number = struct.unpack("!HH", data[:4])
        if opcode == 5:
            text = data[4:].split(b"\x00")[0].decode(errors="replace")
            failure = StepFailed if number == 1 else Retryable  # not found: no use retrying
            self._end(failure(f"TFTP {self.name}: error {number} {text}"))
            return
        if opcode != 3:
            return
        if number == self.expected & 0xFFFF:
            self.out += data[4:]
            self.expected += 1
            self.tries = 0
        self._send(struct.pack("!HH", 4, number), addr)
        if number == (self.expected - 1) & 0xFFFF and len(data) - 4 < 512:
            self._end(bytes(self.out))

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error about a packet of ours: the timer decides


async def tftp_get(
    server: str, port: int, name: str, source_ip: str, timeout: float, retries: int = 5
) -> bytes:
    """An RFC 1350 read in octet mode, lock-step, 512-byte blocks."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _TftpClient((server, port), name, timeout, retries),
        local_addr=(source_ip, 0),
        family=socket.AF_INET,
    )
    try:
        return await proto.done
    finally:
        if proto.timer is not None:
            proto.timer.cancel()
        transport.close()


# ------------------------------------------------------------------ SIP PnP

PNP_GROUP = "224.0.1.75"


class _SipEndpoint(asyncio.DatagramProtocol):
    """The phone's SIP port. It answers every NOTIFY with 200 as it arrives,
    retransmissions too (RFC 3261 §17.2.1: the notifier resends until it
    hears the 200, so a phone keeps answering while its socket is open)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (CPython's selector datagram transport does not subclass DatagramTransport)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode(errors="replace")
        if text.startswith("NOTIFY ") and self.transport is not None:
            self.transport.sendto(response_to(text), addr)
        self.queue.put_nowait((text, addr))


def _sip_headers(text: str) -> tuple[str, dict[str, list[str]], str]:
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], headers, body


def build_subscribe(
    vendor: Vendor, mac: bytes, ip: str, port: int, call_id: str, branch: str, tag: str
) -> bytes:
    """The vendor's ua-profile SUBSCRIBE (FIELD-NOTES "SIP Plug-and-Play")."""
    user = vendor.pnp_user.format(mac=mac.hex())
    uri = f"sip:{user}@{PNP_GROUP}"
    rport = ";rport" if vendor.pnp_port != 5060 else ""
    from_tag = f";tag={tag}" if vendor.pnp_from_tag else ""  # PLANET sends none
    return (
        f"SUBSCRIBE {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{branch}{rport}\r\n"
        f"From: <{uri}>{from_tag}\r\n"
        f"To: <{uri}>\r\n"
        f"Call-ID: {call_id}@{ip}\r\n"
        "CSeq: 1 SUBSCRIBE\r\n"
        f"Contact: <sip:{ip}:{port}>\r\n"
        f'Event: ua-profile;profile-type="device";vendor="{vendor.manufacturer}";'
        f'model="{vendor.model}";version="{vendor.firmware}"\r\n'
        "Expires: 0\r\nAccept: application/url\r\n"
        f"User-Agent: {vendor.pnp_user_agent}\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def response_to(request: str, status: str = "200 OK") -> bytes:
    """A final response echoing Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2)."""
    _, headers, _ = _sip_headers(request)
    out = [f"SIP/2.0 {status}"]
    for name, label in (("via", "Via"), ("from", "From"), ("to", "To"),
                        ("call-id", "Call-ID"), ("cseq", "CSeq")):  # fmt: skip
        out.extend(f"{label}: {value}" for value in headers.get(name, []))
    return ("\r\n".join(out) + "\r\nContent-Length: 0\r\n\r\n").encode()


async def pnp_subscribe(
    vendor: Vendor, mac: bytes, ip: str, timeout: float
) -> tuple[str, asyncio.DatagramTransport]:
    """SUBSCRIBE to 224.0.1.75:5060 from the phone's address; wait for the
    200 and the NOTIFY (answered 200 by the endpoint), return its body (the
    URL, "" when no NOTIFY came within `timeout`) and the SIP socket, which
    the phone keeps open, answering retransmitted NOTIFYs, until it closes
    it. Retransmits the SUBSCRIBE with timer E (0.5 s doubling to 4 s) until
    the 200 arrives."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, vendor.pnp_port))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    transport, proto = await loop.create_datagram_endpoint(_SipEndpoint, sock=sock)
    try:
        port = sock.getsockname()[1]
        token = os.urandom(6).hex()
        subscribe = build_subscribe(vendor, mac, ip, port, token, token, token[:8])
        deadline = time.monotonic() + timeout
        answered = False
        wait = 0.5
        next_send = time.monotonic()
        while (left := deadline - time.monotonic()) > 0:
            if not answered and time.monotonic() >= next_send:
                transport.sendto(subscribe, (PNP_GROUP, 5060))
                next_send = time.monotonic() + wait
                wait = min(wait * 2, 4.0)
            until = left if answered else min(left, max(0.0, next_send - time.monotonic()))
            try:
                text, _ = await asyncio.wait_for(proto.queue.get(), until)
            except TimeoutError:
                continue
            first, headers, body = _sip_headers(text)
            if first.startswith("SIP/2.0 "):
                if first.split()[1].startswith("2") and "SUBSCRIBE" in " ".join(
                    headers.get("cseq", [])
                ):
                    answered = True
                continue
            if first.startswith("NOTIFY ") and (url := body.strip()):
                return url, transport
        return "", transport
    except BaseException:
        transport.close()
        raise


# ------------------------------------------------------------------ STUN


class _StunClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait(data)


async def stun_binding(server: tuple[str, int], source_ip: str, timeout: float) -> tuple[str, int]:
    """One Binding request from `source_ip`, retransmitted at 0.5, 1, 2 ... s
    (RFC 8489 §6.2.1); the XOR-MAPPED-ADDRESS of the success response, after
    checking the answer belongs to this request and the mapped address is ours."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _StunClient, local_addr=(source_ip, 0), family=socket.AF_INET
    )
    try:
        own_port = transport.get_extra_info("sockname")[1]
        tid = os.urandom(12)
        request = stun.encode(stun.StunMessage(stun.BINDING_REQUEST, tid, (stun.Fingerprint(),)))
        deadline = time.monotonic() + timeout
        wait = 0.5
        while (left := deadline - time.monotonic()) > 0:
            transport.sendto(request, server)
            until = time.monotonic() + min(wait, left)
            wait = min(wait * 2, 4.0)
            while (remaining := until - time.monotonic()) > 0:
                try:
                    data = await asyncio.wait_for(proto.queue.get(), remaining)
                except TimeoutError:
                    break
                try:
                    reply = stun.decode(data)
                except DecodeError:
                    continue
                if reply.transaction_id != tid:
                    continue
                if reply.type != stun.BINDING_RESPONSE:
                    raise StepFailed(f"STUN {server[0]}: answer type {reply.type:#06x}")
                mapped = reply.address(stun.XOR_MAPPED_ADDRESS)
                if mapped is None:
                    raise StepFailed(f"STUN {server[0]}: no XOR-MAPPED-ADDRESS")
                got = (str(mapped.address), mapped.port)
                if got != (source_ip, own_port):
                    raise StepFailed(f"STUN mapped {got[0]}:{got[1]}, not {source_ip}:{own_port}")
                return got
        raise StepFailed(f"STUN {server[0]}:{server[1]}: no answer within {timeout:.0f} s")
    finally:
        transport.close()


# ------------------------------------------------------------------ the phone


@dataclass(frozen=True)
class VoiceScope:
    """Who answers DHCP in a voice VLAN: the appliance's address there and the subnet."""

    server: IPv4Address
    network: IPv4Network


@dataclass
class PhoneEnv:
    """What the lab hands every phone: the wire and the knobs."""

    dhcp: DhcpMux
    untagged_if: str
    # (interface, ip) -> done: the lease becomes the phone's source address
    plumb: Callable[[str, str], Awaitable[None]]
    # voice VLAN -> the scope that must answer the tagged DHCP (none: untagged only)
    voice_scopes: dict[int, VoiceScope] = field(default_factory=dict)
    # the segment's voice VLAN and how it was learned, waiting at most `seconds`
    lldp_wait: Callable[[float], Awaitable[tuple[int | None, str]]] | None = None
    lldp_send: Callable[[bytes], None] | None = None
    lldp_required: bool = False  # the lab advertises a voice VLAN: a phone must learn it
    # (mac, vendor, ip, timeout) -> URL from the NOTIFY ("" when none came)
    # and the phone's SIP socket (open until `Phone.close`)
    pnp: (
        Callable[[bytes, Vendor, str, float], Awaitable[tuple[str, asyncio.BaseTransport]]] | None
    ) = None
    action_url: str = ""  # with $mac/$ip/$model, {event}
    action_events: tuple[str, ...] = ()
    fetch_files: bool = True  # False: this build serves no files (DHCP only)
    stun_server: tuple[str, int] | None = None  # a Binding request after boot
    timeout: float = 20.0
    # MAC -> the SIP user the lab's inventory gives it: these phones fetch files
    # netboot rendered, apply them (apply.py) and report to the Action URLs they read
    lines: dict[bytes, str] = field(default_factory=dict)


class Phone:
    def __init__(self, vendor: Vendor, mac: bytes, env: PhoneEnv) -> None:
        self.vendor = vendor
        self.mac = mac
        self.env = env
        self.result = PhoneResult(format_mac(mac), vendor.name, vendor.model)
        self.hostname = f"{vendor.name}-{mac.hex()[-6:]}"
        self.sip: asyncio.BaseTransport | None = None
        self.applied: Applied | None = None  # the config it runs (apply.py)
        self.active_uri = ActiveUriLog()

    def close(self) -> None:
        """Power off: the SIP socket (kept open after PnP) closes."""
        if self.sip is not None:
            self.sip.close()
            self.sip = None

    async def boot(self) -> PhoneResult:
        r = self.result
        r.started = time.monotonic()
        step = "start"
        try:
            # The phone announces itself (LLDP-MED endpoint) as its link comes
            # up and runs DHCP untagged while the switch answers.
            if self.env.lldp_send is not None:
                self.env.lldp_send(
                    build_lldp_med(
                        self.mac, self.hostname, self.vendor.model,
                        self.vendor.firmware, self.vendor.manufacturer,
                    )
                )  # fmt: skip
            step = "dhcp"
            t = time.monotonic()
            interface = self.env.untagged_if
            ack = await self.dhcp(interface, None)
            r.steps["dhcp"] = time.monotonic() - t
            vlan: int | None = None
            if self.env.lldp_wait is not None:
                step = "lldp"
                t = time.monotonic()
                vlan, r.vlan_source = await self.env.lldp_wait(self.env.timeout)
                if vlan is None and self.env.lldp_required:
                    raise StepFailed(f"no voice VLAN heard within {self.env.timeout:.0f} s")
                r.vlan = vlan
                r.steps["lldp"] = time.monotonic() - t
            if self.env.voice_scopes and vlan is not None:
                step = "dhcp-voice"
                t = time.monotonic()
                r.voice_ip = await self.voice_dhcp(interface, vlan)
                r.steps["dhcp-voice"] = time.monotonic() - t
            r.ip = str(IPv4Address(ack.yiaddr))
            await self.env.plumb(interface, r.ip)

            step = "url"
            url, source = self.url_from(ack)
            if not url and self.env.pnp is not None:
                step = "pnp"
                t = time.monotonic()
                url, self.sip = await self.env.pnp(self.mac, self.vendor, r.ip, self.env.timeout)
                source = "pnp"
                r.steps["pnp"] = time.monotonic() - t
            if not url:
                raise StepFailed("no provisioning URL in DHCP and none by SIP PnP")
            r.url, r.url_source = url, source
            if not self.env.fetch_files:
                r.ok = True
                return r

            step = "common"
            t = time.monotonic()
            own_url = self.vendor.own_url(url, self.mac)
            base = own_url.rsplit("/", 1)[0]
            applies = self.mac in self.env.lines
            common = b""
            if self.vendor.fetches_common or not applies:
                common = await self.fetch(f"{base}/{self.vendor.common_file}")
            if applies:  # the file its firmware reads next, as the common file names it
                layout = layout_for(self.vendor.name, self.vendor.firmware)
                own_url = next_file(layout, common, self.mac.hex(), base) or own_url
            if not applies and common != expected_common_file(self.vendor):
                raise StepFailed(f"common file {self.vendor.common_file}: unexpected content")
            if common:
                r.steps["common"] = time.monotonic() - t

            step = "own"
            t = time.monotonic()
            own = await self.fetch(own_url)
            if not applies and own != expected_own_file(self.mac, self.vendor):
                raise StepFailed(f"own file {own_url}: not the file written for {r.mac}")
            r.steps["own"] = time.monotonic() - t
            if applies:
                step = "apply"
                t = time.monotonic()
                await self.apply(common, own, own_url, interface)
                r.steps["apply"] = time.monotonic() - t

            if self.env.action_url:
                step = "action"
                t = time.monotonic()
                for event in self.env.action_events:
                    if self.applied is not None and event not in self.applied.action_urls:
                        continue  # its firmware has no such event (its profile's action_keys)
                    if self.applied is not None:  # the URL its config gave for the event
                        target = self.applied.action_url(
                            event, self.mac.hex(), r.ip, self.vendor.model
                        )
                    else:
                        target = self.substitute(self.env.action_url.replace("{event}", event))
                    status, _ = await http_get(
                        target, r.ip, self.vendor.user_agent(self.mac), self.env.timeout
                    )
                    if status != 200:
                        raise StepFailed(f"Action URL {event}: HTTP {status}")
                r.steps["action"] = time.monotonic() - t
            if self.env.stun_server is not None:
                step = "stun"
                t = time.monotonic()
                await stun_binding(self.env.stun_server, r.ip, self.env.timeout)
                r.steps["stun"] = time.monotonic() - t
            r.ok = True
        except StepFailed as exc:
            r.error = f"{step}: {exc}"
        except (OSError, TimeoutError) as exc:
            r.error = f"{step}: {type(exc).__name__} {exc}".strip()
        finally:
            r.finished = time.monotonic()
        return r

    async def apply(self, common: bytes, own: bytes, own_url: str, interface: str) -> None:
        """Run with what the files say (apply.py): a file the firmware cannot
        use fails the phone; then the own file must be this phone's line, and
        a voice VLAN the config names that the phone is not in yet moves it
        there (DHCP again, tagged)."""
        layout = layout_for(self.vendor.name, self.vendor.firmware)
        try:
            applied = apply_files(layout, common, own, self.env.action_events)
        except ConfigRejected as exc:
            raise StepFailed(f"config rejected: {exc}") from None
        if applied.sip_user != self.env.lines[self.mac]:
            raise StepFailed(f"own file {own_url}: not the file written for {self.result.mac}")
        self.applied = applied
        r = self.result
        if applied.vlan is not None and applied.vlan != r.vlan and self.env.voice_scopes:
            try:
                r.voice_ip = await self.voice_dhcp(interface, applied.vlan)
            except StepFailed as exc:
                raise StepFailed(f"moving to VLAN {applied.vlan} of its config: {exc}") from None
            r.vlan, r.vlan_source = applied.vlan, "config"

    async def voice_dhcp(self, interface: str, vlan: int) -> str:
        """DHCP again, tagged in `vlan`: the ACK must come from that VLAN's
        scope (server identifier and address inside its subnet)."""
        scope = self.env.voice_scopes.get(vlan)
        if scope is None:
            raise StepFailed(f"VLAN {vlan} advertised, but no DHCP scope is expected there")
        ack = await self.dhcp(interface, vlan)
        server_id = ack.options.get(54, b"")
        if server_id != scope.server.packed:
            got = IPv4Address(server_id) if len(server_id) == 4 else server_id.hex()
            raise StepFailed(f"VLAN {vlan} ACK from server {got}, not {scope.server}")
        address = IPv4Address(ack.yiaddr)
        if address not in scope.network:
            raise StepFailed(f"VLAN {vlan} lease {address} is outside {scope.network}")
        return str(address)

    def substitute(self, text: str) -> str:
        return (
            text.replace("$mac", self.mac.hex())
            .replace("$ip", self.result.ip)
            .replace("$model", quote(self.vendor.model))
        )

    def url_from(self, ack: DhcpMessage) -> tuple[str, str]:
        for code in self.vendor.url_options:
            value = ack.options.get(code)
            if not value:
                continue
            text = value.decode(errors="replace").strip("\x00 ")
            if "://" in text:
                return text, f"option {code}"
            if "HTTPSRVR=" in text:  # Avaya SSON: HTTPSRVR=host,HTTPDIR=/path/
                fields = dict(p.partition("=")[::2] for p in text.split(","))
                path = "/" + fields.get("HTTPDIR", "").strip("/")
                return f"http://{fields['HTTPSRVR']}{path.rstrip('/')}/", f"option {code}"
            if code == 66 and text:  # a bare TFTP server; 67 names the file
                name = ack.options.get(67, b"").decode(errors="replace").strip("\x00 ")
                if name:
                    return f"tftp://{text}/{name.lstrip('/')}", "options 66+67"
                if self.vendor.default_file:  # Cisco SPA: /spa$PSN.cfg
                    return f"tftp://{text}/{self.vendor.default_file}", "option 66"
        return "", ""

    async def fetch(self, url: str) -> bytes:
        """`url`'s body, tried FETCH_ATTEMPTS times FETCH_RETRY_DELAY apart
        when the download fails in a way a retry may mend."""
        attempt = 1
        while True:
            try:
                return await self._fetch_once(url)
            except (Retryable, OSError, TimeoutError) as exc:
                if attempt >= FETCH_ATTEMPTS:
                    raise StepFailed(f"{exc} (after {attempt} attempts)") from None
            attempt += 1
            self.result.retries += 1
            await asyncio.sleep(FETCH_RETRY_DELAY * random.uniform(0.9, 1.1))

    async def _fetch_once(self, url: str) -> bytes:
        parts = urlsplit(url)
        if parts.scheme == "http":
            status, body = await http_get(
                url, self.result.ip, self.vendor.user_agent(self.mac), self.env.timeout
            )
            if status >= 500:
                raise Retryable(f"GET {url}: HTTP {status}")
            if status != 200:
                raise StepFailed(f"GET {url}: HTTP {status}")
            return body
        if parts.scheme == "tftp":
            return await tftp_get(
                parts.hostname or "",
                parts.port or 69,
                parts.path.lstrip("/"),
                self.result.ip,
                timeout=TFTP_CLIENT_TIMEOUT,
                retries=TFTP_CLIENT_RETRIES,
            )
        raise StepFailed(f"cannot fetch {url}: scheme {parts.scheme!r}")

    async def dhcp(self, interface: str, vlan: int | None) -> DhcpMessage:
        """DISCOVER/OFFER/REQUEST/ACK with back-off (RFC 2131 §4.1: 4, 8, 16 ... 64 s, ±1 s)."""
        xid = int.from_bytes(os.urandom(4), "big")
        inbox: asyncio.Queue[tuple[DhcpMessage, int | None]] = asyncio.Queue()
        self.env.dhcp.waiting[xid] = inbox.put_nowait
        deadline = time.monotonic() + self.env.timeout
        try:
            chaddr = self.mac + b"\x00" * 10
            common = {
                61: b"\x01" + self.mac,
                57: struct.pack("!H", 1500),
                12: self.hostname.encode(),
                55: self.vendor.prl,
            }
            if self.vendor.vendor_class:  # PLANET firmware sends none
                common[60] = self.vendor.vendor_class
            discover = DhcpMessage(
                op=codec.BOOTREQUEST,
                xid=xid,
                chaddr=chaddr,
                options={53: bytes((codec.DISCOVER,)), **common},
            )
            offer = await self._exchange(interface, vlan, discover, codec.OFFER, inbox, deadline)
            server_id = offer.options.get(54, b"")
            request = DhcpMessage(
                op=codec.BOOTREQUEST,
                xid=xid,
                chaddr=chaddr,
                options={
                    53: bytes((codec.REQUEST,)),
                    50: struct.pack("!I", offer.yiaddr),
                    54: server_id,
                    **common,
                },
            )
            ack = await self._exchange(interface, vlan, request, codec.ACK, inbox, deadline)
            return ack
        finally:
            self.env.dhcp.waiting.pop(xid, None)

    async def _exchange(
        self,
        interface: str,
        vlan: int | None,
        msg: DhcpMessage,
        want: int,
        inbox: asyncio.Queue[tuple[DhcpMessage, int | None]],
        deadline: float,
    ) -> DhcpMessage:
        attempt = 0
        while True:
            self.env.dhcp.send(interface, self.mac, msg, vlan)
            until = min(time.monotonic() + dhcp_backoff(attempt), deadline)
            while (left := until - time.monotonic()) > 0:
                try:
                    reply, reply_vlan = await asyncio.wait_for(inbox.get(), left)
                except TimeoutError:
                    break
                if reply.mac_bytes != self.mac or reply_vlan != vlan:
                    continue
                if reply.msg_type == codec.NAK:
                    raise StepFailed("DHCPNAK")
                if reply.msg_type == want:
                    return reply
            if time.monotonic() >= deadline:
                name = codec.TYPE_NAMES.get(want, str(want))
                raise StepFailed(f"no DHCP{name} within {self.env.timeout:.0f} s")
            attempt += 1
            self.result.retries += 1
