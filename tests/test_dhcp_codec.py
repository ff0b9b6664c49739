"""DHCP codec: hex fixtures, scapy-built packets, round trips, and any bytes in."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from netboot.dhcp import codec
from netboot.dhcp.codec import DhcpMessage
from netboot.wire import DecodeError

MAC = bytes.fromhex("00304f113af8")

# A DISCOVER in the shape udhcpc sends (header, cookie, then options 53, 61,
# 57, 55, 60, END), written out byte by byte; padding after END omitted.
DISCOVER_HEX = (
    "01010600"
    "3a5c1e0b"
    "0000"
    "0000"  # op htype hlen hops, xid, secs, flags
    "00000000"
    "00000000"
    "00000000"
    "00000000"  # ciaddr yiaddr siaddr giaddr
    "00304f113af8"
    + "00" * 10
    + "00" * 64
    + "00" * 128  # chaddr, sname, file
    + "63825363"  # magic cookie
    "350101"  # 53 DHCPDISCOVER
    "3d070100304f113af8"  # 61 client id: htype 1 + MAC
    "3902024e"  # 57 max message size 590
    "3707"
    "01032a06420f1c"  # 55 PRL: 1 3 42 6 66 15 28
    "3c0b"
    + b"PLANET VIP2".hex()  # 60 vendor class
    + "ff"
)


def _fix_fixture() -> bytes:
    return bytes.fromhex(DISCOVER_HEX)


def test_hex_fixture_decodes() -> None:
    msg = codec.decode(_fix_fixture())
    assert msg.op == codec.BOOTREQUEST
    assert msg.xid == 0x3A5C1E0B
    assert msg.mac == "00:30:4f:11:3a:f8"
    assert msg.msg_type == 1
    assert msg.max_message_size == 590
    assert list(msg.param_request_list) == [1, 3, 42, 6, 66, 15, 28]
    assert msg.options[60] == b"PLANET VIP2"
    assert msg.options[61] == b"\x01" + MAC
    assert list(msg.options) == [53, 61, 57, 55, 60]


def test_encode_pads_to_bootp_minimum_and_ends_options() -> None:
    msg = DhcpMessage(op=2, xid=7, chaddr=MAC, options={53: b"\x02"})
    data = codec.encode(msg)
    assert len(data) == codec.MIN_BOOTP
    assert data[codec.HEADER_LEN : codec.HEADER_LEN + 4] == codec.MAGIC
    assert data[codec.HEADER_LEN + 4 : codec.HEADER_LEN + 8] == b"\x35\x01\x02\xff"
    assert codec.decode(data) == DhcpMessage(
        op=2, xid=7, chaddr=MAC.ljust(16, b"\x00"), options={53: b"\x02"}
    )


def test_scapy_request_decodes() -> None:
    pkt = BOOTP(op=1, xid=0x1234, chaddr=MAC, flags=0x8000, giaddr="10.1.2.1") / DHCP(
        options=[
            ("message-type", "request"),
            ("requested_addr", "192.168.10.120"),
            ("server_id", "192.168.10.2"),
            ("vendor_class_id", b"Yealink SIP-T46U"),
            ("param_req_list", [1, 3, 6, 66, 43]),
            "end",
        ]
    )
    msg = codec.decode(bytes(pkt))
    assert msg.msg_type == 3
    assert msg.broadcast
    assert msg.giaddr == int.from_bytes(bytes([10, 1, 2, 1]), "big")
    assert msg.requested_ip == int.from_bytes(bytes([192, 168, 10, 120]), "big")
    assert msg.server_id == int.from_bytes(bytes([192, 168, 10, 2]), "big")
    assert msg.options[60] == b"Yealink SIP-T46U"


def test_our_reply_parses_in_scapy() -> None:
    url = b"http://192.168.10.2/$mac.cfg"
    msg = DhcpMessage(
        op=2,
        xid=99,
        chaddr=MAC,
        yiaddr=0xC0A80A78,
        siaddr=0xC0A80A02,
        options={53: b"\x05", 54: bytes([192, 168, 10, 2]), 66: url, 160: url},
    )
    pkt = BOOTP(codec.encode(msg))
    assert pkt.xid == 99
    assert pkt.yiaddr == "192.168.10.120"
    opts: dict[str, Any] = dict(o for o in pkt[DHCP].options if isinstance(o, tuple))
    assert opts["message-type"] == 5
    assert opts["tftp_server_name"] == url
    assert opts["v4-captive-portal"] == url  # scapy's name for option 160


def test_long_option_split_and_joined_rfc3396() -> None:
    value = bytes(range(256)) * 2  # 512 bytes: three chunks on the wire
    data = codec.encode(DhcpMessage(op=2, xid=1, options={53: b"\x05", 43: value}))
    assert data.count(b"\x2b\xff") >= 2
    assert codec.decode(data).options[43] == value


def test_overloaded_file_and_sname_fields_rfc2132_9_3() -> None:
    raw = bytearray(codec.encode(DhcpMessage(op=1, xid=5, options={53: b"\x01", 52: b"\x03"})))
    file_off = 236 - 128
    sname_off = file_off - 64
    raw[file_off : file_off + 6] = b"\x42\x03abc\xff"  # 66 "abc" in file
    raw[sname_off : sname_off + 5] = b"\x0c\x02hx\xff"  # 12 "hx" in sname
    msg = codec.decode(bytes(raw))
    assert msg.options[66] == b"abc"
    assert msg.options[12] == b"hx"
    assert 52 not in msg.options
    assert msg.file == b"" and msg.sname == b""


HEAD = b"\x01\x01\x06" + b"\x00" * (codec.HEADER_LEN - 3)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "too short"),
        (b"\x01" * 239, "too short"),
        (b"\x03" + HEAD[1:] + codec.MAGIC, "bad op"),
        (b"\x01\x01\x11" + HEAD[3:] + codec.MAGIC, "bad hlen"),
        (HEAD + b"\x00\x00\x00\x00", "magic"),
        (HEAD + codec.MAGIC + b"\x35\x05\x01", "runs past"),
        (HEAD + codec.MAGIC + b"\x35", "truncated"),
        (HEAD + codec.MAGIC + b"\x34\x01\x07\xff", "overload"),
    ],
    ids=["empty", "short", "op", "hlen", "magic", "length", "truncated", "overload"],
)
def test_malformed_is_a_decode_error(data: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        codec.decode(data)


def test_missing_end_is_tolerated() -> None:
    data = HEAD + codec.MAGIC + b"\x35\x01\x01"
    assert codec.decode(data).msg_type == 1


option_values = st.dictionaries(
    st.integers(1, 254).filter(lambda c: c != codec.OPT_OVERLOAD),
    st.binary(min_size=0, max_size=600),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    op=st.sampled_from([1, 2]),
    xid=st.integers(0, 2**32 - 1),
    chaddr=st.binary(min_size=16, max_size=16),
    secs=st.integers(0, 65535),
    flags=st.integers(0, 65535),
    addrs=st.tuples(*[st.integers(0, 2**32 - 1)] * 4),
    sname=st.binary(max_size=64).map(lambda b: b.rstrip(b"\x00")),
    file=st.binary(max_size=128).map(lambda b: b.rstrip(b"\x00")),
    options=option_values,
)
def test_round_trip(
    op: int,
    xid: int,
    chaddr: bytes,
    secs: int,
    flags: int,
    addrs: tuple[int, int, int, int],
    sname: bytes,
    file: bytes,
    options: dict[int, bytes],
) -> None:
    # Empty values are legal on the wire (length 0) and must survive too.
    msg = DhcpMessage(
        op=op,
        xid=xid,
        chaddr=chaddr,
        secs=secs,
        flags=flags,
        ciaddr=addrs[0],
        yiaddr=addrs[1],
        siaddr=addrs[2],
        giaddr=addrs[3],
        sname=sname,
        file=file,
        options=options,
    )
    assert codec.decode(codec.encode(msg)) == msg


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=700))
def test_any_bytes_give_a_message_or_decode_error(data: bytes) -> None:
    try:
        msg = codec.decode(data)
    except DecodeError:
        return
    assert msg.op in (1, 2)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=400))
def test_any_options_after_a_valid_header(tail: bytes) -> None:
    data = codec.encode(DhcpMessage(op=1, xid=1), min_size=0)[: codec.HEADER_LEN + 4] + tail
    try:
        msg = codec.decode(data)
    except DecodeError:
        return
    assert all(isinstance(v, bytes) for v in msg.options.values())


def test_udp_frame_round_trip_matches_scapy() -> None:
    payload = codec.encode(DhcpMessage(op=2, xid=3, chaddr=MAC, options={53: b"\x02"}))
    frame = codec.build_udp_frame(MAC, b"\x02" * 6, 0xC0A80A02, 0xFFFFFFFF, 67, 68, payload)
    pkt = Ether(frame)
    assert pkt[IP].src == "192.168.10.2" and pkt[IP].dst == "255.255.255.255"
    assert pkt[UDP].sport == 67 and pkt[UDP].dport == 68
    # scapy recomputes both checksums; ours must agree.
    ip_sum, udp_sum = pkt[IP].chksum, pkt[UDP].chksum
    del pkt[IP].chksum, pkt[UDP].chksum
    again = Ether(bytes(pkt))
    assert (again[IP].chksum, again[UDP].chksum) == (ip_sum, udp_sum)
    parsed = codec.parse_udp_frame(frame)
    assert parsed.payload == payload
    assert parsed.dst_port == 68


def test_parse_udp_frame_from_scapy() -> None:
    frame = bytes(
        Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(op=1, xid=42, chaddr=MAC)
        / DHCP(options=[("message-type", "discover"), "end"])
    )
    parsed = codec.parse_udp_frame(frame)
    assert parsed.src_mac == MAC
    msg = codec.decode(parsed.payload)
    assert (msg.xid, msg.msg_type) == (42, 1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_frame_parses_or_decode_error(frame: bytes) -> None:
    with contextlib.suppress(DecodeError):
        codec.parse_udp_frame(frame)
    with contextlib.suppress(DecodeError):
        codec.parse_arp(frame)


def test_arp_request_parses_back() -> None:
    frame = codec.build_arp_request(MAC, 0, 0xC0A80A64)
    arp = codec.parse_arp(frame)
    assert arp.target_ip == 0xC0A80A64
    assert arp.sender_mac == MAC
    assert struct.unpack("!H", frame[12:14])[0] == codec.ETH_P_ARP


def test_icmp_echo_probe_and_its_reply() -> None:
    echo = codec.build_icmp_echo(0x1234, 7)
    assert echo[0] == 8 and codec.checksum(echo) == 0  # a valid RFC 792 checksum
    ip_header = bytes([0x45]) + bytes(19)
    reply = ip_header + bytes([0]) + echo[1:]  # type 0: echo reply, same id
    assert codec.icmp_echo_reply_id(reply) == 0x1234
    assert codec.icmp_echo_reply_id(ip_header + echo) is None  # a request is not a reply
    assert codec.icmp_echo_reply_id(ip_header + b"\x00\x00") is None  # truncated
    assert codec.icmp_echo_reply_id(b"") is None
