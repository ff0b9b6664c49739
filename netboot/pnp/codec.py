"""SIP messages for Plug-and-Play: bytes <-> `SipMessage`, and what a PnP
SUBSCRIBE says about the phone that sent it.

A SIP message (RFC 3261 §7) is a start line (a request line `METHOD URI
SIP/2.0` or a status line `SIP/2.0 CODE REASON`), header lines `Name: value`
(§7.3; compact one-letter names §7.3.3, continuation lines folded §7.3.1,
several values of a header may share one line separated by commas §7.3.1),
an empty line and a body whose length is given by Content-Length (§18.3:
over UDP, a body shorter than announced means the message is discarded;
bytes beyond it are ignored).

Phones looking for a provisioning server (RFC 6080 §4 and the vendors'
variants) multicast `SUBSCRIBE sip:...@224.0.1.75` with `Event: ua-profile`
whose parameters name the vendor (Panasonic writes `vender`), the model and
the firmware version. The phone's MAC sits in the user part of the
Request-URI, From or To, each vendor spelling it its own way:
PLANET/Fanvil `MAC=00304fa99948`, Snom `MAC%3a000413...`, Yealink
`MAC001565...`, Grandstream `MAC%3A000b82...`. Old Snom firmware sends
`vendor="OEM"`: then the vendor comes from the MAC's OUI.

The parser is tolerant (LF-only line ends, stray spaces around `=`, missing
tags and branches) and raises only `DecodeError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from netboot import vendors
from netboot.wire import DecodeError, format_mac

MAX_MESSAGE = 65535

# RFC 3261 §7.3.3 compact forms, plus RFC 3265 (o, u) and RFC 3515 (r).
COMPACT = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "e": "Content-Encoding",
    "k": "Supported",
    "s": "Subject",
    "o": "Event",
    "u": "Allow-Events",
    "r": "Refer-To",
}
_CANONICAL = {
    name.lower(): name
    for name in (
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Length",
        "Content-Type",
        "Content-Encoding",
        "Supported",
        "Subject",
        "Event",
        "Allow-Events",
        "Refer-To",
        "Max-Forwards",
        "User-Agent",
        "Server",
        "Expires",
        "Accept",
        "Allow",
        "Subscription-State",
        "Record-Route",
        "Route",
    )
}
# Headers whose values may be joined with commas on one line (§7.3.1); only
# these are split, so a comma inside User-Agent or a URL stays intact.
_LIST_HEADERS = frozenset({"Via", "Contact", "Route", "Record-Route"})

_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~\-]+$")
_STATUS_LINE = re.compile(r"^SIP/2\.0\s+(\d{3})(?:\s+(.*))?$", re.IGNORECASE)
_REQUEST_LINE = re.compile(r"^([A-Za-z0-9.!%*_+`'~\-]+)\s+(\S+)\s+SIP/2\.0$", re.IGNORECASE)


def canonical_name(name: str) -> str:
    """`v` -> `Via`, `call-id` -> `Call-ID`; unknown names are kept as sent."""
    low = name.lower()
    if low in COMPACT:
        return COMPACT[low]
    return _CANONICAL.get(low, name)


@dataclass(frozen=True)
class SipMessage:
    """A request (`method` and `uri` set) or a response (`status` set)."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def header(self, name: str) -> str | None:
        """The first value of a header (by canonical name), or None."""
        want = canonical_name(name)
        for key, value in self.headers:
            if key == want:
                return value
        return None

    def values(self, name: str) -> list[str]:
        """Every value of a header, comma-joined lists split (Via, Contact)."""
        want = canonical_name(name)
        out: list[str] = []
        for key, value in self.headers:
            if key != want:
                continue
            out.extend(split_list(value) if want in _LIST_HEADERS else [value])
        return out


def _split_outside(text: str, separator: str) -> list[str]:
    """`text` cut at each `separator` that is outside quotes and angle brackets."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for index, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def split_list(value: str) -> list[str]:
    """Split `a, b` at commas outside quotes and angle brackets."""
    return [p for p in (part.strip() for part in _split_outside(value, ",")) if p]


# ---------------------------------------------------------------- bytes <-> message


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def decode(data: bytes) -> SipMessage:
    """One SIP message from one datagram; DecodeError if it is not one."""
    if len(data) > MAX_MESSAGE:
        raise DecodeError(f"message too long ({len(data)} bytes)")
    data = data.lstrip(b"\r\n")  # RFC 3261 §7.5: ignore empty lines before the start line
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, rest = data.partition(b"\n\n")
    if not sep:
        # A message with no body may arrive without its final empty line.
        head, rest = data.rstrip(b"\r\n"), b""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or not lines[0].strip():
        raise DecodeError("empty message")
    start = lines[0].strip()
    if "\x00" in text:
        raise DecodeError("NUL byte in the header")
    if _CONTROL.search(text.replace("\r\n", "\n")):
        # RFC 3261 §25.1: a header value holds no CR, LF or other control
        # character outside a line fold; a bare CR echoed into our 200 or
        # NOTIFY would split a header line at the receiver.
        raise DecodeError("control character in the header")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not headers:
                raise DecodeError("continuation line before any header")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or not _TOKEN.match(name):
            raise DecodeError(f"bad header line: {line[:60]!r}")
        headers.append((canonical_name(name), value.strip()))
    body = rest
    lengths = [v for k, v in headers if k == "Content-Length"]
    if lengths:
        raw_length = lengths[0]
        if not raw_length.isdigit():
            raise DecodeError(f"bad Content-Length: {raw_length[:20]!r}")
        length = int(raw_length)
        if length > len(rest):
            raise DecodeError(f"body shorter than Content-Length ({len(rest)} < {length})")
        body = rest[:length]
    status_match = _STATUS_LINE.match(start)
    if status_match:
        return SipMessage(
            status=int(status_match.group(1)),
            reason=(status_match.group(2) or "").strip(),
            headers=tuple(headers),
            body=body,
        )
    request_match = _REQUEST_LINE.match(start)
    if request_match:
        return SipMessage(
            method=request_match.group(1).upper(),
            uri=request_match.group(2),
            headers=tuple(headers),
            body=body,
        )
    raise DecodeError(f"not a SIP start line: {start[:60]!r}")


def encode(msg: SipMessage) -> bytes:
    """The message on the wire; Content-Length always matches the body."""
    if msg.method is not None:
        lines = [f"{msg.method} {msg.uri} SIP/2.0"]
    else:
        lines = [f"SIP/2.0 {msg.status} {msg.reason}".rstrip()]
    lines.extend(f"{name}: {value}" for name, value in msg.headers if name != "Content-Length")
    lines.append(f"Content-Length: {len(msg.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + msg.body


def request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> SipMessage:
    """A request whose Content-Length header matches its body (decode(encode(m)) == m)."""
    clean = [(canonical_name(k), v) for k, v in headers if canonical_name(k) != "Content-Length"]
    clean.append(("Content-Length", str(len(body))))
    return SipMessage(method=method.upper(), uri=uri, headers=tuple(clean), body=body)


def response(
    status: int, reason: str, headers: list[tuple[str, str]], body: bytes = b""
) -> SipMessage:
    clean = [(canonical_name(k), v) for k, v in headers if canonical_name(k) != "Content-Length"]
    clean.append(("Content-Length", str(len(body))))
    return SipMessage(status=status, reason=reason, headers=tuple(clean), body=body)


# ---------------------------------------------------------------- header values


def parse_params(text: str) -> tuple[str, dict[str, str]]:
    """`value;a=1;b="x y";c` -> ("value", {"a": "1", "b": "x y", "c": ""}).
    Parameter names are lowercased; quotes are removed; spaces around `=`
    (the PLANET guide's NOTIFY sample has them) are tolerated."""
    parts = _split_outside(text, ";")
    params: dict[str, str] = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if not key:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        params.setdefault(key, value)
    return parts[0].strip(), params


@dataclass(frozen=True)
class NameAddr:
    """A From/To/Contact value: `"name" <uri>;tag=x` or `uri;tag=x`."""

    display: str
    uri: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")


def parse_name_addr(value: str) -> NameAddr:
    value = value.strip()
    if "<" in value:
        display, _, rest = value.partition("<")
        uri, close, tail = rest.partition(">")
        if not close:
            raise DecodeError(f"unclosed '<' in {value[:60]!r}")
        _, params = parse_params(";" + tail.lstrip(";").strip() if tail.strip() else "")
        return NameAddr(display.strip().strip('"'), uri.strip(), params)
    # Without brackets, parameters after the URI belong to the header (§20.10).
    uri, params = parse_params(value)
    if not uri:
        raise DecodeError("empty address")
    return NameAddr("", uri, params)


@dataclass(frozen=True)
class SipUri:
    scheme: str
    user: str
    host: str
    port: int | None
    params: dict[str, str] = field(default_factory=dict)


def parse_uri(uri: str) -> SipUri:
    """`sip:user@host:port;params` (user optional). DecodeError if not sip(s)."""
    scheme, colon, rest = uri.strip().partition(":")
    if not colon or scheme.lower() not in ("sip", "sips"):
        raise DecodeError(f"not a SIP URI: {uri[:60]!r}")
    rest = rest.split("?", 1)[0]
    hostport, params = parse_params(rest)
    user = ""
    if "@" in hostport:
        user, _, hostport = hostport.rpartition("@")
    host, port = _split_hostport(hostport)
    return SipUri(scheme.lower(), user, host, port, params)


def _split_hostport(text: str) -> tuple[str, int | None]:
    text = text.strip()
    if text.startswith("["):
        host, _, tail = text[1:].partition("]")
        port_text = tail.lstrip(":")
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise DecodeError(f"no host in {text[:60]!r}")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise DecodeError(f"bad port in {text[:60]!r}")
    return host, int(port_text)


@dataclass(frozen=True)
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")


def parse_via(value: str) -> Via:
    """`SIP/2.0/UDP host:port;branch=...;rport` (RFC 3261 §20.42)."""
    main, params = parse_params(value)
    protocol, _, sent_by = main.partition(" ")
    pieces = [p.strip() for p in protocol.split("/")]
    if len(pieces) != 3 or pieces[0].upper() != "SIP":
        # Tolerate `SIP / 2.0 / UDP host` written with spaces.
        compact = main.replace(" ", "")
        match = re.match(r"^SIP/[\d.]+/([A-Za-z]+)(.+)$", compact, re.IGNORECASE)
        if not match:
            raise DecodeError(f"bad Via: {value[:60]!r}")
        transport, sent_by = match.group(1), match.group(2)
    else:
        transport = pieces[2]
    host, port = _split_hostport(sent_by)
    return Via(transport.upper(), host, port, params)


def parse_cseq(value: str) -> tuple[int, str]:
    number, _, method = value.strip().partition(" ")
    if not number.isdigit() or not method.strip():
        raise DecodeError(f"bad CSeq: {value[:40]!r}")
    return int(number), method.strip().upper()


# ---------------------------------------------------------------- PnP facts

_MAC_IN_USER = re.compile(
    r"(?:^|[^a-z0-9])mac(?:=|%3a|:|%3d)?((?:[0-9a-f]{2}(?::|-|%3a)?){5}[0-9a-f]{2})(?![0-9a-f])",
    re.IGNORECASE,
)


def mac_from_uri(uri: str) -> str | None:
    """The MAC in a PnP URI's user part, in any vendor's spelling, canonical."""
    try:
        user = parse_uri(uri).user
    except DecodeError:
        user = uri
    match = _MAC_IN_USER.search(user)
    if not match:
        return None
    digits = re.sub(r"%3a|[:\-]", "", match.group(1), flags=re.IGNORECASE)
    return format_mac(bytes.fromhex(digits))


def vendor_from_mac(mac: str | None) -> str | None:
    """The family label of the MAC's OUI (`netboot.vendors` profiles), if known."""
    profile = vendors.by_oui(mac)
    return profile.label if profile is not None else None


@dataclass(frozen=True)
class UaProfile:
    """What a PnP SUBSCRIBE tells about the phone."""

    mac: str | None
    vendor: str | None
    model: str | None
    firmware: str | None
    profile_type: str | None
    user_agent: str | None
    vendor_from_oui: bool = False


def ua_profile(msg: SipMessage) -> UaProfile | None:
    """The phone's facts if `msg` is a `SUBSCRIBE` for `Event: ua-profile`,
    else None. Never raises for a SUBSCRIBE that lacks pieces: a missing MAC
    or vendor is None."""
    if msg.method != "SUBSCRIBE":
        return None
    event = msg.header("Event")
    if event is None:
        return None
    package, params = parse_params(event)
    if package.strip().lower() != "ua-profile":
        return None
    mac = None
    for candidate in (msg.header("From"), msg.header("To")):
        if candidate is None:
            continue
        try:
            mac = mac_from_uri(parse_name_addr(candidate).uri)
        except DecodeError:
            mac = None
        if mac:
            break
    if mac is None and msg.uri:
        mac = mac_from_uri(msg.uri)
    vendor = params.get("vendor") or params.get("vender") or None
    from_oui = False
    if vendor is None or vendor.upper() == "OEM":
        oui_vendor = vendor_from_mac(mac)
        if oui_vendor is not None:
            vendor, from_oui = oui_vendor, True
    return UaProfile(
        mac=mac,
        vendor=vendor,
        model=params.get("model") or None,
        firmware=params.get("version") or params.get("firmware") or None,
        profile_type=params.get("profile-type") or None,
        user_agent=msg.header("User-Agent"),
        vendor_from_oui=from_oui,
    )
