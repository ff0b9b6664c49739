"""DHCP option values: config values to bytes, the URL options, option 60 text."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netboot.config import OptionValue
from netboot.dhcp import options

URL = "http://192.168.10.2/$mac.cfg"


@pytest.mark.parametrize(
    ("code", "value", "wire"),
    [
        (42, "192.168.10.1", bytes([192, 168, 10, 1])),
        (6, "192.168.10.1, 8.8.8.8", bytes([192, 168, 10, 1, 8, 8, 8, 8])),
        (6, ("1.1.1.1", "9.9.9.9"), bytes([1, 1, 1, 1, 9, 9, 9, 9])),
        (51, 3600, b"\x00\x00\x0e\x10"),
        (57, 1500, b"\x05\xdc"),
        (2, -3600, b"\xff\xff\xf1\xf0"),  # time offset is signed
        (66, "tftp.example", b"tftp.example"),
        (200, "hex:01:02:ff", b"\x01\x02\xff"),
        (43, {1: "ab", 2: "c"}, b"\x01\x02ab\x02\x01c"),
    ],
    ids=["ip", "ips-text", "ips-list", "u32", "u16", "i32", "text", "hex", "suboptions"],
)
def test_encode_value(code: int, value: OptionValue, wire: bytes) -> None:
    assert options.encode_value(code, value) == wire


@pytest.mark.parametrize("code", [66, 43, 160, 128, 200, 254])
def test_url_options_carry_the_url_as_text(code: int) -> None:
    assert options.url_option_value(code, URL, None) == URL.encode()


def test_option_150_is_the_url_host_or_this_server() -> None:
    assert options.url_option_value(150, URL, None) == bytes([192, 168, 10, 2])
    named = "tftp://provisioning.example/x.cfg"
    fallback = IPv4Address("192.0.2.9")
    assert options.url_option_value(150, named, fallback) == fallback.packed
    with pytest.raises(ValueError, match="150"):
        options.url_option_value(150, named, None)


def test_suboption_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="sub-option 255"):
        options.encode_suboptions({255: "x"})
    with pytest.raises(ValueError, match="sub-option 1"):
        options.encode_suboptions({1: "x" * 256})


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"PLANET VIP-2140PT", "PLANET VIP-2140PT"),
        (b"yealink SIP-T46U", "yealink SIP-T46U"),
        # Polycom's RFC 3925 form as its admin guide prints an IP 601's option
        # (enterprise 13885, length, code/length/value sub-options, 0xff);
        # more real forms in tests/data/vendors/option60.tsv (test_vendors.py).
        (
            b"\x00\x00\x36\x3d\x6f\x01\x07Polycom\x02\x15SoundPointIP-SPIP_601"
            b"\x03\x102345-11605-001,2\x04\x1cSIP/Tip.XXXX/08-Jun-07 10:44"
            b"\x05\x1dBR/3.1.0.XXXX/28-Apr-05 13:30\xff",
            "enterprise:13885 Polycom SoundPointIP-SPIP_601 2345-11605-001,2"
            " SIP/Tip.XXXX/08-Jun-07 10:44 BR/3.1.0.XXXX/28-Apr-05 13:30",
        ),
        # Cisco's text class ends in a NUL: still text (wazo_cisco_sip).
        (b"Cisco Systems, Inc. IP Phone CP-7945G\x00", "Cisco Systems, Inc. IP Phone CP-7945G"),
        # Lengths that do not add up are not RFC 3925: printable runs only.
        (b"\x00\x00\x36\x3d\x1d\x04\x0cPolycom-VVX", "6= Polycom-VVX"),
    ],
    ids=["planet", "yealink", "polycom-rfc3925", "cisco-nul", "not-rfc3925"],
)
def test_vendor_class_text(raw: bytes, text: str) -> None:
    assert options.vendor_class_text(raw) == text


@given(st.binary(max_size=255))
def test_vendor_class_text_never_fails(raw: bytes) -> None:
    assert options.vendor_class_text(raw).isprintable()


@pytest.mark.parametrize(
    ("code", "value", "text"),
    [
        (3, bytes([10, 0, 0, 1]), "10.0.0.1"),
        (6, bytes([10, 0, 0, 1, 10, 0, 0, 2]), "10.0.0.1,10.0.0.2"),
        (51, b"\x00\x00\x0e\x10", "3600"),
        (66, URL.encode(), URL),
        (43, b"\x01\x02\xff", "0102ff"),
    ],
)
def test_describe(code: int, value: bytes, text: str) -> None:
    assert options.describe(code, value) == text


def test_option_names() -> None:
    assert options.option_name(66) != "option-66"
    assert options.option_name(200) == "private-200"
    assert options.option_name(99) == "option-99"
