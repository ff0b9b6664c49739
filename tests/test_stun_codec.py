"""STUN codec: RFC 5769 test vectors, classic RFC 3489 framing, round trips, garbage."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netboot.stun import codec
from netboot.stun.codec import (
    AddressAttribute,
    ChangeRequest,
    ErrorCode,
    Fingerprint,
    Padding,
    RawAttribute,
    ResponsePort,
    Software,
    StunMessage,
    UnknownAttributes,
)
from netboot.wire import DecodeError

# RFC 5769 §2.1-2.3 (short-term credential password "VOkJxbRl1RmTxUk/WvJxBt")
TID = bytes.fromhex("b7e7a701bc34d686fa87dfae")
PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"
SAMPLE_REQUEST = bytes.fromhex(
    "000100582112a442b7e7a701bc34d686fa87dfae"
    "802200105354554e207465737420636c69656e74"
    "002400046e0001ff"
    "80290008932ff9b151263b36"
    "000600096576746a3a68367659202020"
    "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
    "80280004e57a3bcf"
)
SAMPLE_IPV4_RESPONSE = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000080001a147e112a643"
    "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96"
)
SAMPLE_IPV6_RESPONSE = bytes.fromhex(
    "010100482112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9"
    "00080014a382954e4be67bf11784c97c8292c275bfe3ed41"
    "80280004c8fb0b4c"
)


def _integrity_ok(data: bytes, key: bytes) -> bool:
    """Check the vector's MESSAGE-INTEGRITY independently of the codec."""
    at = data.index(bytes.fromhex("00080014"), 20)
    signed = data[:2] + struct.pack("!H", at - 20 + 24) + data[4:at]
    return hmac.compare_digest(hmac.new(key, signed, hashlib.sha1).digest(), data[at + 4 : at + 24])


def test_rfc5769_sample_request() -> None:
    assert _integrity_ok(SAMPLE_REQUEST, PASSWORD)
    msg = codec.decode(SAMPLE_REQUEST)
    assert msg.type == codec.BINDING_REQUEST
    assert msg.method == 1 and msg.message_class == 0
    assert msg.transaction_id == TID and not msg.classic
    assert msg.attributes[0] == Software("STUN test client")
    assert msg.attributes[1] == RawAttribute(0x0024, bytes.fromhex("6e0001ff"))
    assert msg.attributes[2] == RawAttribute(0x8029, bytes.fromhex("932ff9b151263b36"))
    assert msg.attributes[3] == RawAttribute(codec.USERNAME, b"evtj:h6vY")
    assert msg.attributes[4] == RawAttribute(codec.MESSAGE_INTEGRITY, SAMPLE_REQUEST[-28:-8])
    assert msg.attributes[-1] == Fingerprint()
    # Only the padding bytes (spaces in the vector, zeros from us) and so the
    # FINGERPRINT differ on re-encode.
    again = codec.encode(msg)
    assert len(again) == len(SAMPLE_REQUEST)
    assert codec.decode(again) == msg


@pytest.mark.parametrize(
    ("vector", "address"),
    [
        (SAMPLE_IPV4_RESPONSE, IPv4Address("192.0.2.1")),
        (SAMPLE_IPV6_RESPONSE, IPv6Address("2001:db8:1234:5678:11:2233:4455:6677")),
    ],
)
def test_rfc5769_sample_responses(vector: bytes, address: IPv4Address | IPv6Address) -> None:
    assert _integrity_ok(vector, PASSWORD)
    msg = codec.decode(vector)
    assert msg.type == codec.BINDING_RESPONSE and msg.message_class == 2
    assert msg.get(Software) == Software("test vector")
    assert msg.address(codec.XOR_MAPPED_ADDRESS) == AddressAttribute(
        codec.XOR_MAPPED_ADDRESS, address, 32853
    )
    # the XOR-MAPPED-ADDRESS bytes we produce are the vector's bytes
    xma = codec.encode(StunMessage(msg.type, TID, (msg.attributes[1],)))
    assert xma[20:] == vector[36 : 36 + len(xma) - 20]


def test_fingerprint_mismatch_is_a_decode_error() -> None:
    broken = SAMPLE_IPV4_RESPONSE[:-1] + bytes([SAMPLE_IPV4_RESPONSE[-1] ^ 1])
    with pytest.raises(codec.FingerprintMismatch):
        codec.decode(broken)
    with pytest.raises(DecodeError):
        codec.decode(broken)


def test_fingerprint_computed_on_encode() -> None:
    msg = StunMessage(codec.BINDING_REQUEST, TID, (Software("x"), Fingerprint()))
    data = codec.encode(msg)
    crc = struct.unpack("!I", data[-4:])[0]
    import zlib

    assert crc == (zlib.crc32(data[:-8]) ^ 0x5354554E) & 0xFFFFFFFF
    assert codec.decode(data) == msg


def test_classic_request_from_rfc3489_client() -> None:
    # what pystun3 sends for "change IP and port": no cookie, 16-byte tid
    tid = bytes.fromhex("0123456789abcdef0123456789abcdef")
    data = bytes.fromhex("00010008") + tid + bytes.fromhex("0003000400000006")
    msg = codec.decode(data)
    assert msg.classic and msg.transaction_id == tid
    assert msg.attributes == (ChangeRequest(change_ip=True, change_port=True),)
    assert codec.encode(msg) == data


def test_classic_response_layout() -> None:
    tid = bytes(range(16))
    msg = StunMessage(
        codec.BINDING_RESPONSE,
        tid,
        (
            AddressAttribute(codec.MAPPED_ADDRESS, IPv4Address("198.51.100.7"), 40000),
            AddressAttribute(codec.CHANGED_ADDRESS, IPv4Address("203.0.113.11"), 3479),
        ),
    )
    data = codec.encode(msg)
    assert data[4:20] == tid
    assert data[20:32] == bytes.fromhex("000100080001") + struct.pack("!H", 40000) + bytes(
        [198, 51, 100, 7]
    )
    assert data[32:44] == bytes.fromhex("000500080001") + struct.pack("!H", 3479) + bytes(
        [203, 0, 113, 11]
    )


@pytest.mark.parametrize(
    ("hexdata", "why"),
    [
        ("", "empty"),
        ("0001000021", "short header"),
        ("c00100002112a442" + "00" * 12, "top bits set"),
        ("000100042112a442" + "00" * 12, "length beyond datagram"),
        ("000100062112a442" + "00" * 12 + "000000020000", "length not multiple of 4"),
        ("000100082112a442" + "00" * 12 + "00010008" + "0000", "attribute truncated"),
        ("0001000c2112a442" + "00" * 12 + "0001000800030001" + "01020304", "family 3"),
        ("000100082112a442" + "00" * 12 + "8022000141000000"[:16], "fine"),
        ("000100082112a442" + "00" * 12 + "00030002" + "0000", "change-request length"),
        ("000100082112a442" + "00" * 12 + "80220003ff000000", "software not utf-8"),
        ("000100082112a442" + "00" * 12 + "0009000400000501", "error class 5 ok"),
        ("000100082112a442" + "00" * 12 + "0009000400000701", "error class 7"),
        ("000100082112a442" + "00" * 12 + "000a000300010200", "odd unknown-attributes"),
        ("000100102112a442" + "00" * 12 + "8028000400000000" + "8022000041414141", "after fp"),
    ],
)
def test_malformed(hexdata: str, why: str) -> None:
    data = bytes.fromhex(hexdata)
    if why in ("fine", "error class 5 ok"):
        codec.decode(data)
        return
    with pytest.raises(DecodeError):
        codec.decode(data)


def test_peek_header() -> None:
    h = codec.peek_header(SAMPLE_REQUEST)
    assert h is not None and h.type == 1 and h.transaction_id == TID
    assert codec.peek_header(SAMPLE_REQUEST[:-1]) is None
    assert codec.peek_header(b"GET / HTTP/1.1\r\n\r\n\r\n") is None


# --- Hypothesis --------------------------------------------------------------

ipv4 = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
ipv6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
ports = st.integers(0, 65535)
text = st.text(max_size=40)

attributes = st.one_of(
    st.builds(AddressAttribute, st.sampled_from(sorted(codec.ADDRESS_TYPES)), ipv4 | ipv6, ports),
    st.builds(ChangeRequest, st.booleans(), st.booleans()),
    st.builds(ResponsePort, ports),
    st.builds(Padding, st.integers(0, 64)),
    st.builds(Software, text),
    st.builds(ErrorCode, st.integers(300, 699), text),
    st.builds(UnknownAttributes, st.lists(st.integers(0, 65535), max_size=6).map(tuple)),
    st.builds(
        RawAttribute,
        st.integers(0, 65535).filter(lambda t: t not in codec.KNOWN_CODEC_TYPES),
        st.binary(max_size=40),
    ),
)


@st.composite
def messages(draw: st.DrawFn) -> StunMessage:
    tid = draw(st.binary(min_size=12, max_size=12) | st.binary(min_size=16, max_size=16))
    if len(tid) == 16 and tid[:4] == codec.MAGIC_COOKIE.to_bytes(4, "big"):
        tid = b"\0" + tid[1:]
    attrs = draw(st.lists(attributes, max_size=8))
    if len(tid) == 12 and draw(st.booleans()):
        attrs.append(Fingerprint())
    return StunMessage(draw(st.integers(0, 0x3FFF)), tid, tuple(attrs))


@given(messages())
@settings(max_examples=300)
def test_round_trip(msg: StunMessage) -> None:
    data = codec.encode(msg)
    assert len(data) % 4 == 0
    assert codec.decode(data) == msg
    assert codec.encode(codec.decode(data)) == data


@given(st.binary(max_size=200))
@settings(max_examples=500)
def test_any_bytes_message_or_decode_error(data: bytes) -> None:
    try:
        msg = codec.decode(data)
    except DecodeError:
        return
    assert isinstance(msg, StunMessage)


@given(messages(), st.integers(20, 400), st.integers(0, 255))
@settings(max_examples=300)
def test_mutated_messages_message_or_decode_error(msg: StunMessage, at: int, byte: int) -> None:
    data = bytearray(codec.encode(msg))
    if at < len(data):
        data[at] = byte
    with contextlib.suppress(DecodeError):
        codec.decode(bytes(data))
