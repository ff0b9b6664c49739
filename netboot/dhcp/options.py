"""DHCP option table (RFC 2132 and the vendor options phones use).

One table, code -> (name, kind); `encode_value` turns a config value into the
option's bytes by its kind, `describe` turns bytes back into something a person
reads. Unknown codes are text when given text and raw bytes otherwise.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
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


def vendor_class_text(raw: bytes) -> str:
    """Option 60 as text. Plain text is returned as is; binary forms (Polycom's
    RFC 3925 style: enterprise number then length-prefixed data) are turned into
    their printable strings so substring matching works on them too."""
    try:
        text = raw.decode("ascii")
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    parts: list[str] = []
    if len(raw) >= 5:
        enterprise = int.from_bytes(raw[:4], "big")
        parts.append(f"enterprise:{enterprise}")
        rest = raw[4:]
        # Sub-options: either (len, data) or (code, len, data); pull printable runs.
    else:
        rest = raw
    run = bytearray()
    for byte in rest:
        if 32 <= byte < 127:
            run.append(byte)
        else:
            if len(run) >= 2:
                parts.append(run.decode())
            run.clear()
    if len(run) >= 2:
        parts.append(run.decode())
    return " ".join(parts)


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
