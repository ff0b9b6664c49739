"""STUN server decisions: request + where it came from + which socket got it ->
which socket answers, where to, and the reply bytes (or silence).

A full server has four sockets, A1:P1, A1:P2, A2:P1, A2:P2 (RFC 5780 §4.1,
RFC 3489 §8.1); one address (or one port) makes it binding-only. Clients with
the magic cookie get RFC 8489 §10.1.3 / RFC 5780 §6.1 answers: XOR-MAPPED-
ADDRESS, MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS, SOFTWARE, FINGERPRINT
when the request had one, PADDING echoed, RESPONSE-PORT honoured. Clients
without the cookie get RFC 3489 §11.2 answers: their 16-byte transaction id,
MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS and nothing whose length is not
a multiple of 4 (pystun3 and the Vovida client do not skip padding).

CHANGE-REQUEST picks the answering socket; OTHER-ADDRESS / CHANGED-ADDRESS is
always the other address and the other port relative to the receiving socket.
A CHANGE-REQUEST that a binding-only server cannot honour gets silence, never
an error (pystun3 loops on errors and would misread the NAT type otherwise).

Never an amplifier: replies go only to the requester's own IP (RESPONSE-PORT
changes the port only), each source IP has a token bucket (`stun.rate_limit`
requests/s), optional attributes are dropped when the reply would exceed
AMPLIFICATION x the request size, and anything that is not framed like a STUN
request gets silence. Unknown comprehension-required attributes: 420 with
UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1.1); malformed STUN requests: 400.

Fast path: a bare Binding request (20 bytes, no attributes: what phones and
most clients send) always gets the same answer from a given source on a given
socket except for the transaction id (IPv4 XOR-MAPPED-ADDRESS depends on the
magic cookie only, and no FINGERPRINT is added). `handle_bare` keeps those
answers in a bounded memo and splices the request's transaction id in.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from netboot.ratelimit import TokenBuckets
from netboot.stun import codec
from netboot.stun.codec import (
    AddressAttribute,
    ChangeRequest,
    ErrorCode,
    Fingerprint,
    Padding,
    ResponsePort,
    Software,
    StunMessage,
    UnknownAttributes,
)
from netboot.wire import DecodeError

AMPLIFICATION = 4
BURST_SECONDS = 0.5  # a bucket holds this many seconds' worth of requests
MIN_BURST = 20.0
MAX_SOURCES = 65536
MAX_BARE = 65536  # memoised bare-request answers (source, socket, cookie or not)
BARE_HEAD = b"\x00\x01\x00\x00"  # Binding request, length 0
BARE_SIZE = 20

# Comprehension-required attributes we accept in a request (the rest -> 420).
UNDERSTOOD = frozenset(
    {
        codec.MAPPED_ADDRESS,
        codec.CHANGE_REQUEST,
        codec.USERNAME,  # no authentication here: ignored
        codec.MESSAGE_INTEGRITY,
        codec.PADDING,
        codec.RESPONSE_PORT,
        codec.ERROR_CODE,
        codec.UNKNOWN_ATTRIBUTES,
        codec.XOR_MAPPED_ADDRESS,
    }
)
# An RFC 3489 client may ask for its answer elsewhere (RESPONSE-ADDRESS): that is
# the reflection attack RFC 8489 removed; we understand it and answer the source.
UNDERSTOOD_CLASSIC = UNDERSTOOD | {codec.RESPONSE_ADDRESS}

SocketId = tuple[int, int]  # (address index, port index)
Endpoint = tuple[IPv4Address, int]


@dataclass(frozen=True)
class Site:
    addresses: tuple[IPv4Address, ...]
    ports: tuple[int, ...]
    software: str = "netboot"

    @property
    def full(self) -> bool:
        """Four sockets (NAT-type tests possible) rather than binding-only."""
        return len(self.addresses) >= 2 and len(self.ports) >= 2

    @property
    def sockets(self) -> tuple[SocketId, ...]:
        if self.full:
            return ((0, 0), (0, 1), (1, 0), (1, 1))
        return ((0, 0),)

    def endpoint(self, sock: SocketId) -> Endpoint:
        return self.addresses[sock[0]], self.ports[sock[1]]


@dataclass(frozen=True)
class Reply:
    socket: SocketId
    destination: Endpoint
    data: bytes
    kind: str  # "binding", "classic", "error-400", "error-420"


def _pad4(text: str) -> str:
    """Space-pad so the UTF-8 length is a multiple of 4 (RFC 3489 clients)."""
    return text + " " * (-len(text.encode()) & 3)


def _error(
    request_type: int, tid: bytes, code: int, reason: str, extra: tuple[codec.Attribute, ...] = ()
) -> StunMessage:
    method_bits = request_type & 0x3EEF
    return StunMessage(method_bits | 0x0110, tid, (ErrorCode(code, _pad4(reason)), *extra))


def respond(
    request: StunMessage, source: Endpoint, local: SocketId, site: Site, request_size: int
) -> Reply | None:
    """The answer to one decoded datagram received on socket `local`, or None."""
    if request.message_class != 0:
        return None  # indications and responses are never answered
    here = local
    if request.method != 1:
        if request.classic:
            return None
        msg = _error(request.type, request.transaction_id, 400, "Bad Request: not Binding")
        return Reply(here, source, codec.encode(msg), "error-400")
    understood = UNDERSTOOD_CLASSIC if request.classic else UNDERSTOOD
    unknown = tuple(
        dict.fromkeys(
            t
            for a in request.attributes
            if (t := codec.attribute_type(a)) < 0x8000 and t not in understood
        )
    )
    if unknown:
        listed = unknown
        if request.classic and len(listed) % 2:
            listed = (*listed, listed[-1])  # RFC 3489 §11.2.3: an even count
        msg = _error(
            request.type,
            request.transaction_id,
            420,
            "Unknown Attribute",
            (UnknownAttributes(listed),),
        )
        return Reply(here, source, codec.encode(msg), "error-420")

    change = request.get(ChangeRequest) or ChangeRequest()
    response_port = request.get(ResponsePort)
    padding = request.get(Padding)
    if response_port is not None and padding is not None:
        msg = _error(
            request.type, request.transaction_id, 400, "Bad Request: PADDING with RESPONSE-PORT"
        )
        return Reply(here, source, codec.encode(msg), "error-400")
    if (change.change_ip or change.change_port) and not site.full:
        return None  # cannot honour it; an error would mislead classic clients
    answer = (
        1 - here[0] if change.change_ip else here[0],
        1 - here[1] if change.change_port else here[1],
    )
    origin = site.endpoint(answer)
    other = site.endpoint((1 - here[0], 1 - here[1])) if site.full else None
    destination = (source[0], response_port.port) if response_port is not None else source
    if destination[1] == 0:
        return None

    ip, port = source
    essential: list[codec.Attribute]
    if request.classic:
        essential = [
            AddressAttribute(codec.MAPPED_ADDRESS, ip, port),
            AddressAttribute(codec.SOURCE_ADDRESS, *origin),
        ]
        if other is not None:
            essential.append(AddressAttribute(codec.CHANGED_ADDRESS, *other))
        optional: list[codec.Attribute] = [Software(_pad4(site.software))]
        tail: list[codec.Attribute] = []
        kind = "classic"
    else:
        essential = [
            AddressAttribute(codec.XOR_MAPPED_ADDRESS, ip, port),
            AddressAttribute(codec.MAPPED_ADDRESS, ip, port),
            AddressAttribute(codec.RESPONSE_ORIGIN, *origin),
        ]
        if other is not None:
            essential.append(AddressAttribute(codec.OTHER_ADDRESS, *other))
        if padding is not None:
            essential.append(Padding(padding.length))
        optional = [Software(site.software)]
        tail = [Fingerprint()] if request.get(Fingerprint) is not None else []
        kind = "binding"
    tid = request.transaction_id
    data = codec.encode(StunMessage(codec.BINDING_RESPONSE, tid, (*essential, *optional, *tail)))
    if len(data) > AMPLIFICATION * request_size:
        data = codec.encode(StunMessage(codec.BINDING_RESPONSE, tid, (*essential, *tail)))
    return Reply(answer, destination, data, kind)


def respond_malformed(
    data: bytes, error: DecodeError, source: Endpoint, local: SocketId
) -> Reply | None:
    """A datagram the codec rejected: 400 if it is framed as a Binding request
    with the magic cookie (the client is speaking STUN but got it wrong), else
    silence (garbage, other protocols, a bad FINGERPRINT = not STUN)."""
    if isinstance(error, codec.FingerprintMismatch):
        return None
    header = codec.peek_header(data)
    if header is None or header.type != codec.BINDING_REQUEST:
        return None
    if len(header.transaction_id) != 12:
        return None
    msg = _error(header.type, header.transaction_id, 400, "Bad Request")
    return Reply(local, source, codec.encode(msg), "error-400")


def is_bare(data: bytes) -> bool:
    """A Binding request with no attributes (RFC 5389 or RFC 3489 framing)."""
    return len(data) == BARE_SIZE and data[:4] == BARE_HEAD


class RateLimiter(TokenBuckets[int]):
    """STUN's token bucket per source IP (as an int: hashing an IPv4Address
    is slow): `BURST_SECONDS` of `rate`, at least `MIN_BURST`; at most
    `MAX_SOURCES` buckets (netboot.ratelimit)."""

    def __init__(self, rate: float) -> None:
        super().__init__(rate, max(MIN_BURST, rate * BURST_SECONDS), MAX_SOURCES)


class StunEngine:
    """`respond` / `respond_malformed` behind the per-source rate limit."""

    def __init__(self, site: Site, rate_limit: float) -> None:
        self.site = site
        self.rate_limit = rate_limit
        self.limiter = RateLimiter(rate_limit)
        # (source IP as int, port, socket, cookie or not) -> reply template, kind
        self._bare: dict[tuple[int, int, SocketId, bool], tuple[bytes, str] | None] = {}

    def handle_bare(
        self, data: bytes, source: Endpoint, local: SocketId, now: float
    ) -> tuple[bytes, str] | None:
        """`handle` for a bare Binding request (`is_bare(data)`): the reply bytes
        and kind, always sent from `local` back to `source`; None: silence."""
        ip = int(source[0])
        if not self.limiter.allow(ip, now):
            return None
        key = (ip, source[1], local, data[4:8] == codec.COOKIE_BYTES)
        try:
            template = self._bare[key]
        except KeyError:
            template = self._bare_template(data, source, local)
            if len(self._bare) >= MAX_BARE:
                self._bare.clear()
            self._bare[key] = template
        if template is None:
            return None
        answer, kind = template
        return answer[:4] + data[4:20] + answer[20:], kind

    def _bare_template(
        self, data: bytes, source: Endpoint, local: SocketId
    ) -> tuple[bytes, str] | None:
        try:
            request = codec.decode(data)
        except DecodeError:  # cannot happen for a bare header, but never memoise a guess
            return None
        reply = respond(request, source, local, self.site, len(data))
        if reply is None:
            return None
        if reply.socket != local or reply.destination != source:
            raise AssertionError("a bare Binding request is answered in place")
        return reply.data, reply.kind

    def handle(
        self, request: StunMessage, size: int, source: Endpoint, local: SocketId, now: float
    ) -> Reply | None:
        if not self.limiter.allow(int(source[0]), now):
            return None
        return respond(request, source, local, self.site, size)

    def handle_malformed(
        self, data: bytes, error: DecodeError, source: Endpoint, local: SocketId, now: float
    ) -> Reply | None:
        if codec.peek_header(data) is None or not self.limiter.allow(int(source[0]), now):
            return None
        return respond_malformed(data, error, source, local)

    def reconfigure(self, rate_limit: float) -> None:
        """A reload: a new rate limit starts from fresh buckets; the same one
        keeps them (addresses and ports are the transport's socket keys)."""
        if rate_limit != self.rate_limit:
            self.rate_limit = rate_limit
            self.limiter = RateLimiter(rate_limit)

    def datagram(
        self, data: bytes, source: Endpoint, local: SocketId, now: float
    ) -> tuple[Reply | None, str | None]:
        """One datagram that is not a bare Binding request: the reply (None:
        silence) and, when it did not decode, why (logged and counted)."""
        try:
            msg = codec.decode(data)
        except DecodeError as exc:
            return self.handle_malformed(data, exc, source, local, now), str(exc)
        return self.handle(msg, len(data), source, local, now), None


def listening(site: Site) -> str:
    """The start-up line's tail: the endpoints and what they allow."""
    mode = "NAT-type tests" if site.full else "binding only"
    where = ", ".join(f"{ip}:{port}" for ip, port in map(site.endpoint, site.sockets))
    return f"{where} ({mode})"


def tally(kinds: list[str], sent: int) -> dict[str, int]:
    """Responses per kind for the metric after a sendmmsg that sent `sent` of
    the replies of `kinds`: all by kind, or a partial send under the first kind."""
    if sent == len(kinds):
        return {kind: kinds.count(kind) for kind in dict.fromkeys(kinds)}
    return {kinds[0]: sent} if sent else {}


class Endpoints:
    """Parsed source addresses, memoised (parsing an IPv4Address per datagram
    is slow) within a budget: a full table is cleared, not grown."""

    def __init__(self, budget: int = MAX_SOURCES) -> None:
        self.budget = budget
        self._hosts: dict[str, IPv4Address] = {}
        self._sockaddrs: dict[bytes, Endpoint] = {}

    def host(self, host: str) -> IPv4Address:
        ip = self._hosts.get(host)
        if ip is None:
            if len(self._hosts) > 4096:
                self._hosts.clear()
            ip = self._hosts[host] = IPv4Address(host)
        return ip

    def sockaddr(self, key: bytes) -> Endpoint:
        """sockaddr_in's port and address bytes (network order) -> endpoint."""
        source = self._sockaddrs.get(key)
        if source is None:
            if len(self._sockaddrs) >= self.budget:
                self._sockaddrs.clear()
            source = (IPv4Address(key[2:6]), int.from_bytes(key[:2], "big"))
            self._sockaddrs[key] = source
        return source
