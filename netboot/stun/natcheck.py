"""`netboot nat-check`: which kind of NAT is between this host and a STUN server,
and what that means for the phones.

The classic RFC 3489 §10.1 test sequence runs through pystun3 (the chosen client
library) on its own socket: test I to the primary address, test II asking for
an answer from the other IP and port, test I again to CHANGED-ADDRESS, test III
asking for the other port. Its known bugs are worked around here: it is given
the real source address (with 0.0.0.0 an open network reads as Full Cone), and
its socket is wrapped so that an error response or a stray datagram ends the
test as "no answer" instead of looping forever or raising KeyError.

Where the server answers with OTHER-ADDRESS (RFC 5780), the mapping and
filtering behaviour are measured too (RFC 5780 §4.3 and §4.4), each on a fresh
socket so one test's traffic cannot open the NAT for the next. Names are
resolved with dnspython (`_stun._udp` SRV first when no port is given).

Exit code: 0 phones can use STUN through this NAT, 1 STUN will not help
(symmetric NAT or symmetric UDP firewall), 2 the check itself failed.

`--save` writes a completed result to `<state_dir>/nat-check.json`; the config
renderer then takes the phones' STUN and Rport settings from it (`saved_check`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netboot.stun import codec
from netboot.stun.codec import ChangeRequest, StunMessage
from netboot.wire import DecodeError

DEFAULT_PORT = 3478
SAVE_FILE = "nat-check.json"  # under appliance.state_dir
REFRESH = 50  # STUN Refresh Time, seconds (PLANET guide 6.2 default)
EXIT_USABLE, EXIT_NOT_USABLE, EXIT_FAILED = 0, 1, 2

# pystun3 result -> (code, label, phones can use STUN, advice)
TYPES: dict[str, tuple[str, str, bool]] = {
    "Open Internet": ("open-internet", "open internet (no NAT)", True),
    "Full Cone": ("full-cone", "full cone NAT", True),
    "Restric NAT": ("restricted-cone", "restricted cone NAT", True),
    "Restric Port NAT": ("port-restricted-cone", "port-restricted cone NAT", True),
    "Symmetric NAT": ("symmetric", "symmetric NAT", False),
    "Symmetric UDP Firewall": ("symmetric-udp-firewall", "symmetric UDP firewall", False),
    "Blocked": ("blocked", "no answer (UDP blocked or no STUN server)", False),
}


def advice(code: str, server: str, port: int) -> str:
    where = server if port == DEFAULT_PORT else f"{server}:{port}"
    if code == "open-internet":
        return (
            "open internet: the phones' own address is public; STUN is not needed "
            "(SIP1 NAT Type = 0), keep Rport on (SIP1 Enable Rport = 1)"
        )
    if code in ("full-cone", "restricted-cone", "port-restricted-cone"):
        name = {"full-cone": "full cone", "restricted-cone": "restricted cone"}.get(
            code, "port-restricted cone"
        )
        return (
            f"{name}: enable STUN (SIP1 NAT Type = 1) with this server "
            f"(STUN Server = {server}, STUN Port = {port}, STUN Refresh Time = {REFRESH}); "
            "keep Rport on (SIP1 Enable Rport = 1)"
        )
    if code == "symmetric":
        return (
            "symmetric NAT: STUN will not help; keep Rport on (SIP1 Enable Rport = 1) "
            "and use an SBC or a SIP ALG-free path"
        )
    if code == "symmetric-udp-firewall":
        return (
            "symmetric UDP firewall (no NAT, but only replies get in): STUN will not help; "
            "keep Rport on (SIP1 Enable Rport = 1), keep registrations short (under 60 s), "
            "or open the firewall for SIP and RTP"
        )
    if code == "blocked":
        return (
            f"no STUN answer from {where}: UDP is blocked on the way, or no STUN server runs there"
        )
    return f"the NAT test against {where} did not complete: {code}"


@dataclass
class Result:
    server: str
    server_ip: str
    server_port: int
    source_ip: str
    nat_type: str
    label: str
    stun_usable: bool
    public_ip: str | None
    public_port: int | None
    mapping: str | None = None  # RFC 5780: endpoint-independent, address-dependent, ...
    filtering: str | None = None
    advice: str = ""
    phone_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.stun_usable:
            return EXIT_USABLE
        if self.nat_type in ("symmetric", "symmetric-udp-firewall"):
            return EXIT_NOT_USABLE
        return EXIT_FAILED


class CheckError(Exception):
    """The check could not run (name does not resolve, no route, ...)."""


# --- pystun3 with its bugs fenced off ---------------------------------------------


class _ErrorResponse(Exception):
    pass


class GuardedSocket:
    """The socket pystun3 talks through. pystun3 resends forever when it gets
    anything but a matching Binding success response, and dies on message types
    it does not know. Here stray and late datagrams are skipped, and an error
    response makes the next (re)send of that transaction fail with gaierror,
    which pystun3 reports as "no response"."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.tid = b""
        self.failed_tid = b""
        self.errors: list[str] = []

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        tid = data[4:20]
        if tid == self.failed_tid:
            raise socket.gaierror("the server answered with an error: not retrying")
        self.tid = tid
        return self.sock.sendto(data, address)

    def recvfrom(self, size: int) -> tuple[bytes, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no STUN answer")
            self.sock.settimeout(remaining)
            data, address = self.sock.recvfrom(size)
            if len(data) < 20 or data[4:20] != self.tid:
                continue
            kind = int.from_bytes(data[:2], "big")
            if kind == codec.BINDING_ERROR:
                self.failed_tid = self.tid
                try:
                    err = codec.decode(data).get(codec.ErrorCode)
                    self.errors.append(f"{err.code} {err.reason.strip()}" if err else "error")
                except DecodeError:
                    self.errors.append("malformed error response")
                raise _ErrorResponse(self.errors[-1])
            if kind == codec.BINDING_RESPONSE and codec.peek_header(data) is not None:
                return data, address


def classic_test(
    server_ip: str, port: int, source_ip: str, timeout: float
) -> tuple[str, str | None, int | None]:
    """pystun3's NAT type, public IP and port, on a fresh socket."""
    import stun  # pystun3

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((source_ip, 0))
        guarded = GuardedSocket(sock, timeout)
        stun._initialize()
        first = stun.stun_test(guarded, server_ip, port, source_ip, sock.getsockname()[1])
        if not first["Resp"]:
            return "Blocked", None, None
        nat_type, _ = stun.get_nat_type(
            guarded, source_ip, sock.getsockname()[1], stun_host=server_ip, stun_port=port
        )
        return str(nat_type), first["ExternalIP"], first["ExternalPort"]
    finally:
        sock.close()


# --- RFC 5780 behaviour discovery ------------------------------------------------


def _transact(
    sock: socket.socket,
    server: tuple[str, int],
    attrs: tuple[codec.Attribute, ...],
    timeout: float,
    tries: int = 3,
) -> StunMessage | None:
    tid = os.urandom(12)
    data = codec.encode(StunMessage(codec.BINDING_REQUEST, tid, (*attrs, codec.Fingerprint())))
    for _ in range(tries):
        sock.sendto(data, server)
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                reply, _ = sock.recvfrom(2048)
            except TimeoutError:
                break
            try:
                msg = codec.decode(reply)
            except DecodeError:
                continue
            if msg.transaction_id == tid:
                return msg if msg.type == codec.BINDING_RESPONSE else None
    return None


def _mapped(msg: StunMessage | None) -> tuple[str, int] | None:
    if msg is None:
        return None
    attr = msg.address(codec.XOR_MAPPED_ADDRESS) or msg.address(codec.MAPPED_ADDRESS)
    return (str(attr.address), attr.port) if attr else None


def behaviour_test(
    server_ip: str, port: int, source_ip: str, timeout: float
) -> tuple[str | None, str | None]:
    """(mapping, filtering) per RFC 5780 §4.3/§4.4, or (None, None) if unsupported."""

    def fresh() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((source_ip, 0))
        return s

    with fresh() as sock:
        first = _transact(sock, (server_ip, port), (), timeout)
        other = first.address(codec.OTHER_ADDRESS) if first else None
        if first is None or other is None:
            return None, None
        alt_ip, alt_port = str(other.address), other.port
        m1 = _mapped(first)
        m2 = _mapped(_transact(sock, (alt_ip, port), (), timeout))
        mapping: str | None
        if m2 is None:
            mapping = None
        elif m2 == m1:
            mapping = "endpoint-independent"
        else:
            m3 = _mapped(_transact(sock, (alt_ip, alt_port), (), timeout))
            mapping = "address-dependent" if m3 == m2 else "address-and-port-dependent"
    with fresh() as sock:
        if _transact(sock, (server_ip, port), (), timeout) is None:
            return mapping, None
        if _transact(sock, (server_ip, port), (ChangeRequest(True, True),), timeout, 2):
            filtering = "endpoint-independent"
        elif _transact(sock, (server_ip, port), (ChangeRequest(False, True),), timeout, 2):
            filtering = "address-dependent"
        else:
            filtering = "address-and-port-dependent"
    return mapping, filtering


# --- resolution and the command ---------------------------------------------------


def resolve(server: str) -> tuple[str, str, int]:
    """HOST[:PORT] -> (host as given, IPv4 address, port)."""
    host, sep, port_text = server.rpartition(":")
    if not sep:
        host, port_text = server, ""
    port: int | None = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise CheckError(f"bad port in {server!r}")
        port = int(port_text)
    try:
        return host, str(ipaddress.IPv4Address(host)), port or DEFAULT_PORT
    except ValueError:
        pass
    import dns.exception
    import dns.resolver

    try:
        if port is None:
            try:
                srv = dns.resolver.resolve(f"_stun._udp.{host}", "SRV", lifetime=3)
                best = min(srv, key=lambda r: (r.priority, -r.weight))
                target = str(best.target).rstrip(".")
                port = int(best.port)
                answer = dns.resolver.resolve(target, "A", lifetime=3)
                return host, str(next(iter(answer))), port
            except dns.exception.DNSException:
                pass
        answer = dns.resolver.resolve(host, "A", lifetime=5)
        return host, str(next(iter(answer))), port or DEFAULT_PORT
    except dns.exception.DNSException as exc:
        raise CheckError(f"cannot resolve {host}: {exc}") from None


def route_source(server_ip: str, port: int) -> str:
    """The local address the kernel would use to reach the server."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((server_ip, port))
        except OSError as exc:
            raise CheckError(f"no route to {server_ip}: {exc.strerror}") from None
        return str(s.getsockname()[0])


def run_check(server: str, source_ip: str | None, timeout: float = 0.5) -> Result:
    host, server_ip, port = resolve(server)
    source = source_ip or route_source(server_ip, port)
    raw_type, public_ip, public_port = classic_test(server_ip, port, source, timeout)
    code, label, usable = TYPES.get(raw_type, ("incomplete", raw_type, False))
    mapping = filtering = None
    if code != "blocked":
        mapping, filtering = behaviour_test(server_ip, port, source, timeout)
    result = Result(
        server=host,
        server_ip=server_ip,
        server_port=port,
        source_ip=source,
        nat_type=code,
        label=label,
        stun_usable=usable,
        public_ip=public_ip,
        public_port=public_port,
        mapping=mapping,
        filtering=filtering,
        advice=advice(code, host, port),
    )
    if code != "blocked":
        result.phone_settings = {
            "STUN Server": host if usable else "",
            "STUN Port": port,
            "STUN Refresh Time": REFRESH,
            "SIP1 NAT Type": 1 if usable and code != "open-internet" else 0,
            "SIP1 Enable Rport": 1,
        }
    return result


# --- the saved result, for the config renderer --------------------------------------


@dataclass(frozen=True)
class SavedCheck:
    """What the renderer needs from a saved check."""

    nat_type: str  # a code of TYPES ("symmetric", "port-restricted-cone", ...)
    stun_usable: bool
    server: str
    port: int
    refresh: int = REFRESH


def save(result: Result, state_dir: Path) -> Path:
    """Write the result as JSON (atomically) where the renderer looks for it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / SAVE_FILE
    tmp = path.with_name(f".{SAVE_FILE}.tmp")
    record = {**asdict(result), "exit_code": result.exit_code, "checked_at": time.time()}
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def saved_check(path: Path) -> SavedCheck | None:
    """The saved result at `path`; None when absent, unreadable or inconclusive.
    `nat_type` may be a code or pystun3's own wording ("Symmetric NAT")."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    raw = str(data.get("nat_type") or "")
    codes = {code: usable for code, _, usable in TYPES.values()}
    by_name = {name.lower(): code for name, (code, _, _) in TYPES.items()}
    raw = by_name.get(raw.lower(), raw)
    if raw not in codes or raw == "blocked":
        return None
    settings = data.get("phone_settings")
    refresh = settings.get("STUN Refresh Time") if isinstance(settings, dict) else None
    port = data.get("server_port")
    return SavedCheck(
        nat_type=raw,
        stun_usable=codes[raw],
        server=str(data.get("server") or ""),
        port=port if isinstance(port, int) and 0 < port < 65536 else DEFAULT_PORT,
        refresh=refresh if isinstance(refresh, int) and refresh > 0 else REFRESH,
    )
