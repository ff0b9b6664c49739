"""TFTP codec: hex fixtures, scapy-built packets, malformed input, Hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netboot.tftp import codec
from netboot.wire import DecodeError

FIXTURES = [
    # RRQ "00304f113af8.cfg" octet blksize 1428 tsize 0
    (
        "0001" + b"00304f113af8.cfg".hex() + "00" + b"octet".hex() + "00"
        "626c6b73697a6500313432380074"
        "73697a65003000",
        codec.ReadRequest("00304f113af8.cfg", "octet", (("blksize", "1428"), ("tsize", "0"))),
    ),
    (
        "0002" + b"up.bin".hex() + "00" + b"netascii".hex() + "00",
        codec.WriteRequest("up.bin", "netascii"),
    ),
    ("00030001" + "68656c6c6f", codec.Data(1, b"hello")),
    ("0003ffff", codec.Data(0xFFFF, b"")),
    ("00040000", codec.Ack(0)),
    ("0004fffe", codec.Ack(0xFFFE)),
    ("00050001" + b"File not found".hex() + "00", codec.Error(1, "File not found")),
    ("0005000800", codec.Error(8, "")),
    (
        "0006" + b"blksize".hex() + "00" + b"1428".hex() + "00",
        codec.OptionAck((("blksize", "1428"),)),
    ),
    ("0006", codec.OptionAck(())),
]


@pytest.mark.parametrize(("hexdata", "message"), FIXTURES)
def test_fixture_round_trip(hexdata: str, message: codec.Message) -> None:
    raw = bytes.fromhex(hexdata)
    assert codec.decode(raw) == message
    assert codec.encode(message) == raw


def test_error_without_terminating_nul_is_accepted() -> None:
    assert codec.decode(b"\x00\x05\x00\x02denied") == codec.Error(2, "denied")


def test_option_lookup_is_case_insensitive() -> None:
    request = codec.ReadRequest("f", "octet", (("BlkSize", "1024"), ("TSIZE", "0")))
    assert request.option("blksize") == "1024"
    assert request.option("tsize") == "0"
    assert request.option("windowsize") is None


def test_scapy_built_packets_decode() -> None:
    tftp = pytest.importorskip("scapy.layers.tftp")
    rrq = bytes(
        tftp.TFTP()
        / tftp.TFTP_RRQ(filename=b"f0VIP-2140PThw1.100.cfg", mode=b"octet")
        / tftp.TFTP_Options(
            options=[
                tftp.TFTP_Option(oname=b"blksize", value=b"1428"),
                tftp.TFTP_Option(oname=b"windowsize", value=b"8"),
            ]
        )
    )
    assert codec.decode(rrq) == codec.ReadRequest(
        "f0VIP-2140PThw1.100.cfg", "octet", (("blksize", "1428"), ("windowsize", "8"))
    )
    assert codec.decode(bytes(tftp.TFTP() / tftp.TFTP_ACK(block=7))) == codec.Ack(7)
    assert codec.decode(bytes(tftp.TFTP() / tftp.TFTP_DATA(block=2) / b"xyz")) == codec.Data(
        2, b"xyz"
    )
    err = bytes(tftp.TFTP() / tftp.TFTP_ERROR(errorcode=2, errormsg=b"access violation"))
    assert codec.decode(err) == codec.Error(2, "access violation")
    ours = codec.encode(codec.OptionAck((("blksize", "1428"), ("tsize", "99"))))
    parsed = tftp.TFTP(ours)
    assert parsed.op == 6
    assert [(o.oname, o.value) for o in parsed[tftp.TFTP_OACK].options] == [
        (b"blksize", b"1428"),
        (b"tsize", b"99"),
    ]


@pytest.mark.parametrize(
    ("hexdata", "why"),
    [
        ("", "0 bytes"),
        ("00", "1 bytes"),
        ("0003", "shorter than 4"),
        ("000400", "shorter than 4"),
        ("0004000100", "ACK of 5 bytes"),
        ("0001", "without filename"),
        ("0001" + b"file".hex(), "not NUL-terminated"),
        ("0001" + b"file".hex() + "00", "without filename and mode"),
        ("0001" + "00" + b"octet".hex() + "00", "empty filename"),
        ("0001" + b"f".hex() + "00" + "00", "empty mode"),
        ("0001" + b"f".hex() + "00" + b"octet".hex() + "00" + b"blksize".hex() + "00", "no value"),
        (
            "0001" + b"f".hex() + "00" + b"octet".hex() + "00" + "00" + b"1".hex() + "00",
            "empty option",
        ),
        ("0005000100410042", "NUL inside"),
        ("000500", "shorter than 4"),
        ("0006" + b"blksize".hex(), "not NUL-terminated"),
        ("0007", "unknown TFTP opcode 7"),
        ("0000", "unknown TFTP opcode 0"),
    ],
)
def test_malformed_packets(hexdata: str, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        codec.decode(bytes.fromhex(hexdata))


def test_encode_refuses_nul_in_strings() -> None:
    with pytest.raises(ValueError):
        codec.encode(codec.ReadRequest("a\0b"))


def test_hot_path_helpers_match_encode() -> None:
    assert codec.data_packet(0x1_0002, b"ab") == codec.encode(codec.Data(2, b"ab"))
    assert codec.error_packet(2, "no") == codec.encode(codec.Error(2, "no"))


# ---------------------------------------------------------------- Hypothesis

text = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=40)
nonempty = st.text(st.characters(min_codepoint=1, max_codepoint=255), min_size=1, max_size=40)
options = st.lists(st.tuples(nonempty, text), max_size=6).map(tuple)
blocks = st.integers(0, 0xFFFF)

messages = st.one_of(
    st.builds(codec.ReadRequest, nonempty, nonempty, options),
    st.builds(codec.WriteRequest, nonempty, nonempty, options),
    st.builds(codec.Data, blocks, st.binary(max_size=1500)),
    st.builds(codec.Ack, blocks),
    st.builds(codec.Error, blocks, text),
    st.builds(codec.OptionAck, options),
)


@given(messages)
def test_round_trip(message: codec.Message) -> None:
    assert codec.decode(codec.encode(message)) == message


@given(st.binary(max_size=600))
def test_any_bytes_decode_or_raise_decode_error(raw: bytes) -> None:
    try:
        message = codec.decode(raw)
    except DecodeError:
        return
    # Whatever decodes re-encodes to something that decodes to the same message.
    assert codec.decode(codec.encode(message)) == message


@given(st.sampled_from([1, 2, 5, 6]), st.binary(max_size=200))
def test_any_body_after_a_known_opcode(opcode: int, body: bytes) -> None:
    try:
        message = codec.decode(opcode.to_bytes(2, "big") + body)
    except DecodeError:
        return
    assert codec.encode(message)[:2] == opcode.to_bytes(2, "big")
