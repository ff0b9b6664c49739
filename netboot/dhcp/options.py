"""DHCP option table (RFC 2132 and the vendor options phones use).

One table, code -> (name, kind); `encode_value` turns a config value into the
option's bytes by its kind, `describe` turns bytes back into something a person
reads. Unknown codes are text when given text and raw bytes otherwise.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from urllib.parse import urlsplit

from netboot.config import OptionValue

# kind: ip (one address), ips (list), u8, u16, u32, i32, str, bool, bytes
OPTIONS: dict[int, tuple[str, str]] = {
    1: ("subnet-mask", "ip"),
    2: ("time-offset", "i32"),
    3: ("router", "ips"),
    4: ("time-server", "ips"),
    6: ("dns-server", "ips"),
    7: ("log-server", "ips"),
    12: ("hostname", "str"),
    15: ("domain-name", "str"),
    26: ("mtu", "u16"),
    28: ("broadcast", "ip"),
    42: ("ntp-server", "ips"),
    43: ("vendor-specific", "bytes"),
    44: ("netbios-ns", "ips"),
    50: ("requested-ip", "ip"),
    51: ("lease-time", "u32"),
    52: ("overload", "u8"),
    53: ("message-type", "u8"),
    54: ("server-id", "ip"),
    55: ("parameter-request-list", "bytes"),
    56: ("message", "str"),
    57: ("max-message-size", "u16"),
    58: ("renewal-time", "u32"),
    59: ("rebinding-time", "u32"),
    60: ("vendor-class", "bytes"),
    61: ("client-id", "bytes"),
    66: ("tftp-server-name", "str"),
    67: ("bootfile-name", "str"),
    81: ("client-fqdn", "bytes"),
    82: ("relay-agent-info", "bytes"),
    100: ("tz-posix", "str"),
    101: ("tz-database", "str"),
    119: ("domain-search", "bytes"),
    120: ("sip-server", "bytes"),
    121: ("classless-route", "bytes"),
    124: ("vi-vendor-class", "bytes"),
    125: ("vi-vendor-specific", "bytes"),
    150: ("tftp-server-address", "ips"),
    159: ("provisioning-server-path", "str"),
    160: ("provisioning-url", "str"),
}


def option_name(code: int) -> str:
    entry = OPTIONS.get(code)
    if entry is not None:
        return entry[0]
    return f"private-{code}" if 128 <= code <= 254 else f"option-{code}"


def _ips(values: Iterable[str | IPv4Address]) -> bytes:
    return b"".join(IPv4Address(v).packed for v in values)


def encode_value(code: int, value: OptionValue) -> bytes:
    """Config value -> option bytes, by the option's kind (ValueError if it does not fit)."""
    kind = OPTIONS.get(code, ("", "str"))[1]
    if isinstance(value, dict):
        return encode_suboptions(value)
    if isinstance(value, tuple):
        if kind in ("ips", "ip"):
            return _ips(value)
        return b"".join(v.encode() for v in value)
    if isinstance(value, bool):
        return b"\x01" if value else b"\x00"
    if isinstance(value, int):
        if kind == "u8":
            return struct.pack("!B", value)
        if kind == "u16":
            return struct.pack("!H", value)
        if kind == "i32":
            return struct.pack("!i", value)
        return struct.pack("!I", value)
    if kind in ("ips", "ip"):
        return _ips(v.strip() for v in value.split(","))
    if value.startswith("hex:"):
        return bytes.fromhex(value[4:].replace(":", ""))
    return value.encode()


def encode_suboptions(sub: dict[int, str]) -> bytes:
    """Vendor sub-options (option 43 TLV form, as Mitel/Aastra and Siemens read it)."""
    out = bytearray()
    for code, text in sub.items():
        data = text.encode()
        if not 1 <= code <= 254 or len(data) > 255:
            raise ValueError(f"sub-option {code} does not fit")
        out += bytes((code, len(data))) + data
    return bytes(out)


def url_option_value(code: int, url: str, fallback_ip: IPv4Address | None) -> bytes:
    """The provisioning URL as option `code` carries it: text for 66/43/160/128-254,
    a list of IPv4 addresses for 150 (Cisco: the URL's host, else this server)."""
    if code == 150:
        host = urlsplit(url).hostname or ""
        try:
            return IPv4Address(host).packed
        except ValueError:
            if fallback_ip is None:
                raise ValueError("option 150 needs an IPv4 address and none is known") from None
            return fallback_ip.packed
    return url.encode()


@dataclass(frozen=True)
class VendorClass:
    """Option 60 decoded: its text, and the RFC 3925 enterprise number when the
    bytes really are that binary form."""

    text: str
    enterprise: int | None = None


def _printable_runs(data: bytes) -> list[str]:
    runs: list[str] = []
    run = bytearray()
    for byte in data:
        if 32 <= byte < 127:
            run.append(byte)
            continue
        if len(run) >= 2:
            runs.append(run.decode())
        run.clear()
    if len(run) >= 2:
        runs.append(run.decode())
    return runs


def _items(data: bytes, tagged: bool) -> list[bytes] | None:
    """`data` split into (code, len, value) sub-options (`tagged`, Polycom's
    form, ended by an optional 0xff) or RFC 3925 (len, value) items; None when
    the lengths do not add up exactly."""
    out: list[bytes] = []
    i = 0
    while i < len(data):
        if tagged:
            if data[i] == 0xFF and i == len(data) - 1:
                return out
            if i + 2 > len(data):
                return None
            size, i = data[i + 1], i + 2
        else:
            size, i = data[i], i + 1
        if size == 0 or i + size > len(data):
            return None
        out.append(data[i : i + size])
        i += size
    return out


def _rfc3925(raw: bytes) -> tuple[int, list[bytes]] | None:
    """RFC 3925 §3 form: enterprise number (4 octets), data length (1), data.
    Polycom puts (code, len, value) sub-options in the data and may close them
    with 0xff after the counted length (Polycom admin guide, "Parsing Vendor ID
    Information"); RFC 3925 puts (len, value) items."""
    if len(raw) < 6:
        return None
    enterprise = int.from_bytes(raw[:4], "big")
    size = raw[4]
    data = raw[5 : 5 + size]
    tail = raw[5 + size :]
    if enterprise == 0 or len(data) != size or tail not in (b"", b"\xff"):
        return None
    for tagged in (True, False):
        items = _items(data + tail if tagged else data, tagged)
        if items:
            return enterprise, items
    return None


def decode_vendor_class(raw: bytes) -> VendorClass:
    """Option 60 as text. A text class stays text, trailing NULs dropped (Cisco
    sends "Cisco Systems, Inc. IP Phone CP-7945G\\0", wazo_cisco_sip); the RFC
    3925 form only when the bytes really are enterprise number + counted data
    (Polycom: enterprise 13885); anything else as its printable runs."""
    body = raw.rstrip(b"\x00")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if text and text.isprintable():
        return VendorClass(text)
    parsed = _rfc3925(raw)
    if parsed is not None:
        enterprise, items = parsed
        strings = [s for item in items for s in _printable_runs(item)]
        return VendorClass(" ".join([f"enterprise:{enterprise}", *strings]), enterprise)
    return VendorClass(" ".join(_printable_runs(raw)))


def vendor_class_text(raw: bytes) -> str:
    """Option 60 as printable text (see `decode_vendor_class`)."""
    return decode_vendor_class(raw).text


def describe(code: int, value: bytes) -> str:
    kind = OPTIONS.get(code, ("", "bytes"))[1]
    try:
        if kind == "ip" and len(value) == 4:
            return str(IPv4Address(value))
        if kind == "ips" and value and len(value) % 4 == 0:
            return ",".join(str(IPv4Address(value[i : i + 4])) for i in range(0, len(value), 4))
        if kind in ("u8", "u16", "u32") and len(value) in (1, 2, 4):
            return str(int.from_bytes(value, "big"))
        if kind == "str" or (value and value.decode("ascii").isprintable()):
            return value.decode("ascii", "replace")
    except (UnicodeDecodeError, ValueError):
        pass
    return value.hex()
