"""STUN messages on the wire (RFC 8489/5389, RFC 5780, and classic RFC 3489).

A STUN message is a 20-byte header (type, length, magic cookie 0x2112A442 and
a 96-bit transaction id; RFC 8489 §5) followed by TLV attributes whose values
are padded to a multiple of 4 bytes while the length field counts only the
value (§14). RFC 3489 clients have no cookie: their transaction id is the whole
128 bits after the length (RFC 3489 §11.1), so `transaction_id` is 16 bytes for
them and 12 bytes otherwise. XOR-MAPPED-ADDRESS is XORed with the 16 bytes that
follow the length field (cookie + transaction id, §14.2). FINGERPRINT is the
CRC-32 of everything before it, with the header length already counting it,
XOR 0x5354554E (§14.7); `decode` verifies it and `encode` computes it, so the
`Fingerprint` attribute carries no value. Attributes this codec does not model
(USERNAME, MESSAGE-INTEGRITY, PRIORITY, ...) are kept as `RawAttribute`.
"""

from __future__ import annotations

import builtins
import struct
import zlib
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import TypeVar

from netboot.wire import DecodeError, Reader, Writer

MAGIC_COOKIE = 0x2112A442
COOKIE_BYTES = struct.pack("!I", MAGIC_COOKIE)
FINGERPRINT_XOR = 0x5354554E

# message types (method | class bits)
BINDING_REQUEST = 0x0001
BINDING_INDICATION = 0x0011
BINDING_RESPONSE = 0x0101
BINDING_ERROR = 0x0111

# attribute types
MAPPED_ADDRESS = 0x0001
RESPONSE_ADDRESS = 0x0002
CHANGE_REQUEST = 0x0003
SOURCE_ADDRESS = 0x0004
CHANGED_ADDRESS = 0x0005
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
REFLECTED_FROM = 0x000B
XOR_MAPPED_ADDRESS = 0x0020
PADDING = 0x0026
RESPONSE_PORT = 0x0027
SOFTWARE = 0x8022
ALTERNATE_SERVER = 0x8023
FINGERPRINT = 0x8028
RESPONSE_ORIGIN = 0x802B
OTHER_ADDRESS = 0x802C

ADDRESS_TYPES = frozenset(
    {
        MAPPED_ADDRESS,
        RESPONSE_ADDRESS,
        SOURCE_ADDRESS,
        CHANGED_ADDRESS,
        REFLECTED_FROM,
        XOR_MAPPED_ADDRESS,
        ALTERNATE_SERVER,
        RESPONSE_ORIGIN,
        OTHER_ADDRESS,
    }
)
XOR_TYPES = frozenset({XOR_MAPPED_ADDRESS})
KNOWN_CODEC_TYPES = ADDRESS_TYPES | {
    CHANGE_REQUEST,
    RESPONSE_PORT,
    PADDING,
    SOFTWARE,
    ERROR_CODE,
    UNKNOWN_ATTRIBUTES,
    FINGERPRINT,
}

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class AddressAttribute:
    """MAPPED-, XOR-MAPPED-, SOURCE-, CHANGED-, OTHER-ADDRESS, RESPONSE-ORIGIN, ..."""

    type: int
    address: IPAddress
    port: int


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    change_ip: bool = False
    change_port: bool = False


@dataclass(frozen=True, slots=True)
class ResponsePort:
    port: int


@dataclass(frozen=True, slots=True)
class Padding:
    length: int


@dataclass(frozen=True, slots=True)
class Software:
    text: str


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: int  # 300..699
    reason: str


@dataclass(frozen=True, slots=True)
class UnknownAttributes:
    types: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """Present or not; the CRC is checked by decode and computed by encode."""


@dataclass(frozen=True, slots=True)
class RawAttribute:
    type: int
    value: bytes


Attribute = (
    AddressAttribute
    | ChangeRequest
    | ResponsePort
    | Padding
    | Software
    | ErrorCode
    | UnknownAttributes
    | Fingerprint
    | RawAttribute
)


_A = TypeVar("_A")


@dataclass(frozen=True, slots=True)
class StunMessage:
    type: int
    transaction_id: bytes  # 12 bytes (RFC 5389+) or 16 bytes (RFC 3489, no cookie)
    attributes: tuple[Attribute, ...] = ()

    @property
    def classic(self) -> bool:
        return len(self.transaction_id) == 16

    @property
    def method(self) -> int:
        return (self.type & 0x000F) | ((self.type & 0x00E0) >> 1) | ((self.type & 0x3E00) >> 2)

    @property
    def message_class(self) -> int:
        """0 request, 1 indication, 2 success response, 3 error response."""
        return ((self.type >> 4) & 1) | ((self.type >> 7) & 2)

    def get(self, kind: builtins.type[_A]) -> _A | None:
        for attr in self.attributes:
            if isinstance(attr, kind):
                return attr
        return None

    def address(self, attr_type: int) -> AddressAttribute | None:
        for attr in self.attributes:
            if isinstance(attr, AddressAttribute) and attr.type == attr_type:
                return attr
        return None


class FingerprintMismatch(DecodeError):
    """FINGERPRINT present but wrong: by RFC 8489 §7.3 the datagram is not STUN."""


def attribute_type(attr: Attribute) -> int:
    if isinstance(attr, AddressAttribute | RawAttribute):
        return attr.type
    return _CLASS_TYPES[type(attr)]


_CLASS_TYPES: dict[type, int] = {
    ChangeRequest: CHANGE_REQUEST,
    ResponsePort: RESPONSE_PORT,
    Padding: PADDING,
    Software: SOFTWARE,
    ErrorCode: ERROR_CODE,
    UnknownAttributes: UNKNOWN_ATTRIBUTES,
    Fingerprint: FINGERPRINT,
}


@dataclass(frozen=True, slots=True)
class Header:
    type: int
    length: int
    transaction_id: bytes


def peek_header(data: bytes) -> Header | None:
    """The header if `data` is framed like a STUN message (first two bits zero,
    length a multiple of 4 matching the datagram), else None."""
    if len(data) < 20 or data[0] & 0xC0:
        return None
    msg_type, length = struct.unpack_from("!HH", data)
    if length & 3 or length + 20 != len(data):
        return None
    tid = data[8:20] if data[4:8] == COOKIE_BYTES else data[4:20]
    return Header(msg_type, length, tid)


def _decode_address(attr_type: int, value: bytes, key: bytes) -> AddressAttribute:
    r = Reader(value)
    r.u8()
    family = r.u8()
    port = r.u16()
    if family == 1:
        raw = r.take(4)
    elif family == 2:
        raw = r.take(16)
    else:
        raise DecodeError(f"attribute 0x{attr_type:04x}: unknown address family {family}")
    if r.remaining:
        raise DecodeError(f"attribute 0x{attr_type:04x}: {r.remaining} extra bytes")
    if attr_type in XOR_TYPES:
        port ^= MAGIC_COOKIE >> 16
        raw = bytes(a ^ b for a, b in zip(raw, key, strict=False))
    address: IPAddress = IPv4Address(raw) if family == 1 else IPv6Address(raw)
    return AddressAttribute(attr_type, address, port)


def _decode_attribute(attr_type: int, value: bytes, key: bytes) -> Attribute:
    if attr_type in ADDRESS_TYPES:
        return _decode_address(attr_type, value, key)
    if attr_type == CHANGE_REQUEST:
        if len(value) != 4:
            raise DecodeError(f"CHANGE-REQUEST: length {len(value)}, expected 4")
        flags = struct.unpack("!I", value)[0]
        return ChangeRequest(bool(flags & 4), bool(flags & 2))
    if attr_type == RESPONSE_PORT:
        if len(value) not in (2, 4):
            raise DecodeError(f"RESPONSE-PORT: length {len(value)}, expected 4")
        return ResponsePort(struct.unpack_from("!H", value)[0])
    if attr_type == PADDING:
        return Padding(len(value))
    if attr_type == SOFTWARE:
        try:
            return Software(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise DecodeError("SOFTWARE: not UTF-8") from None
    if attr_type == ERROR_CODE:
        if len(value) < 4:
            raise DecodeError("ERROR-CODE: shorter than 4 bytes")
        cls, number = value[2] & 0x07, value[3]
        if not 3 <= cls <= 6 or number > 99:
            raise DecodeError(f"ERROR-CODE: bad code {cls}{number:02d}")
        try:
            reason = value[4:].decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("ERROR-CODE: reason not UTF-8") from None
        return ErrorCode(cls * 100 + number, reason)
    if attr_type == UNKNOWN_ATTRIBUTES:
        if len(value) % 2:
            raise DecodeError("UNKNOWN-ATTRIBUTES: odd length")
        return UnknownAttributes(struct.unpack(f"!{len(value) // 2}H", value))
    return RawAttribute(attr_type, value)


def decode(data: bytes) -> StunMessage:
    """Parse one STUN datagram; DecodeError (or FingerprintMismatch) if malformed."""
    header = peek_header(data)
    if header is None:
        raise DecodeError("not a STUN message (bad header or length)")
    classic = len(header.transaction_id) == 16
    key = data[4:20]
    r = Reader(data, 20)
    attributes: list[Attribute] = []
    while r.remaining:
        start = r.pos
        attr_type = r.u16()
        length = r.u16()
        value = r.take(length)
        pad = (-length) & 3
        if pad:
            r.take(pad)
        if attr_type == FINGERPRINT and not classic:
            if length != 4:
                raise DecodeError("FINGERPRINT: length must be 4")
            if r.remaining:
                raise DecodeError("attributes after FINGERPRINT")
            expected = (zlib.crc32(data[:start]) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
            if struct.unpack("!I", value)[0] != expected:
                raise FingerprintMismatch("FINGERPRINT does not match")
            attributes.append(Fingerprint())
            break
        attributes.append(_decode_attribute(attr_type, value, key))
    return StunMessage(header.type, header.transaction_id, tuple(attributes))


def _encode_value(attr: Attribute, key: bytes) -> bytes:
    if isinstance(attr, AddressAttribute):
        raw = attr.address.packed
        port = attr.port
        if attr.type in XOR_TYPES:
            port ^= MAGIC_COOKIE >> 16
            raw = bytes(a ^ b for a, b in zip(raw, key, strict=False))
        return struct.pack("!BBH", 0, 1 if attr.address.version == 4 else 2, port) + raw
    if isinstance(attr, ChangeRequest):
        return struct.pack("!I", (4 if attr.change_ip else 0) | (2 if attr.change_port else 0))
    if isinstance(attr, ResponsePort):
        return struct.pack("!HH", attr.port, 0)
    if isinstance(attr, Padding):
        return bytes(attr.length)
    if isinstance(attr, Software):
        return attr.text.encode("utf-8")
    if isinstance(attr, ErrorCode):
        return struct.pack("!HBB", 0, attr.code // 100, attr.code % 100) + attr.reason.encode()
    if isinstance(attr, UnknownAttributes):
        return struct.pack(f"!{len(attr.types)}H", *attr.types)
    if isinstance(attr, RawAttribute):
        return attr.value
    raise TypeError(f"cannot encode {attr!r}")  # Fingerprint is handled by encode()


def encode(msg: StunMessage) -> bytes:
    """Serialize; values are padded with zeros to 4 bytes (callers that answer
    RFC 3489 clients pass values whose length is already a multiple of 4)."""
    if len(msg.transaction_id) == 12:
        head = COOKIE_BYTES + msg.transaction_id
    elif len(msg.transaction_id) == 16:
        head = msg.transaction_id
    else:
        raise ValueError("transaction id must be 12 or 16 bytes")
    body = Writer()
    fingerprint = False
    for attr in msg.attributes:
        if isinstance(attr, Fingerprint):
            fingerprint = True
            break
        value = _encode_value(attr, head)
        body.u16(attribute_type(attr)).u16(len(value)).raw(value)
        if len(value) & 3:
            body.raw(bytes(-len(value) & 3))
    payload = body.getvalue()
    if not fingerprint:
        return struct.pack("!HH", msg.type, len(payload)) + head + payload
    data = struct.pack("!HH", msg.type, len(payload) + 8) + head + payload
    crc = (zlib.crc32(data) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
    return data + struct.pack("!HHI", FINGERPRINT, 4, crc)
