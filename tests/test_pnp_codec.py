"""SIP codec and PnP facts: vendor SUBSCRIBEs as phones send them (PLANET guide
§2.2.1, field notes), tolerant forms, Hypothesis round trip and any-bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netboot.pnp import codec
from netboot.pnp.codec import SipMessage
from netboot.wire import DecodeError


def crlf(text: str) -> bytes:
    return text.strip("\n").replace("\n", "\r\n").encode() + b"\r\n\r\n"


# PLANET VIP-2140PT, verbatim from the PLANET admin guide §2.2.1 (no From tag).
PLANET = crlf("""
SUBSCRIBE sip:MAC=00304fa99948@224.0.1.75 SIP/2.0
Via: SIP/2.0/UDP 192.168.1.45:5060;branch=z9hG4bK3102710241234624733
From: <sip:MAC=00304fa99948@224.0.1.75>
To: <sip:MAC=00304fa99948@224.0.1.75>
Call-ID: 322432620212850-163241588724467@192.168.1.45
CSeq: 1 SUBSCRIBE
Contact: <sip:192.168.1.45:5060>
Max-Forwards: 70
User-Agent: PLANET VIP-2140PT
Expires: 0
Event:ua-profile;profile-type="device";vendor="PLANET";model="VIP-2140PT";version="2.0.3.2991"
Accept: application/url
Content-Length: 0
""")

# Old Snom firmware: random source port, rport without value, no branch, OEM.
SNOM = crlf("""
SUBSCRIBE sip:MAC%3a000413291a4b@224.0.1.75 SIP/2.0
Via: SIP/2.0/UDP 192.168.10.31:1029;rport
From: <sip:MAC%3a000413291a4b@224.0.1.75>;tag=o7yv0f7pyl
To: <sip:MAC%3a000413291a4b@224.0.1.75>
Call-ID: 3d5e3c1b2d4f@192.168.10.31
CSeq: 1 SUBSCRIBE
Max-Forwards: 70
Contact: <sip:192.168.10.31:1029>
Event: ua-profile;profile-type="device";vendor="OEM";model="OEM";version="7.3.30"
Expires: 0
Content-Length: 0
""")

YEALINK = crlf("""
SUBSCRIBE sip:MAC001565a1b2c3@224.0.1.75:5060 SIP/2.0
Via: SIP/2.0/UDP 192.168.10.40:5059;branch=z9hG4bK1719316522
From: <sip:MAC001565a1b2c3@224.0.1.75:5060>;tag=1316787457
To: <sip:MAC001565a1b2c3@224.0.1.75:5060>
Call-ID: 1003813580@192.168.10.40
CSeq: 1 SUBSCRIBE
Contact: <sip:192.168.10.40:5059>
Accept: application/url
Max-Forwards: 70
User-Agent: Yealink SIP-T46S 66.85.0.5
Expires: 0
Event: ua-profile;profile-type="all";vendor="Yealink";model="T46S";version="66.85.0.5"
Content-Length: 0
""")

GRANDSTREAM = crlf("""
SUBSCRIBE sip:MAC%3A000B8234ABCD@224.0.1.75 SIP/2.0
Via: SIP/2.0/UDP 192.168.10.50:5080;branch=z9hG4bK1646312339;rport
From: <sip:MAC%3A000B8234ABCD@224.0.1.75>;tag=1250219187
To: <sip:MAC%3A000B8234ABCD@224.0.1.75>
Call-ID: 1720963347-5080-1@BA.C.BA.AFA
CSeq: 20000 SUBSCRIBE
Contact: <sip:192.168.10.50:5080;transport=udp>
Max-Forwards: 70
User-Agent: Grandstream GXP2170 1.0.11.3
Event: ua-profile;profile-type="device";vendor="Grandstream";model="GXP2170";version="1.0.11.3"
Expires: 0
Content-Length: 0
""")

# Panasonic spells the parameter `vender`; the MAC is only in the From.
PANASONIC = crlf("""
SUBSCRIBE sip:224.0.1.75 SIP/2.0
Via: SIP/2.0/UDP 192.168.10.60:5060;branch=z9hG4bK2bc0ad7e
From: "KX-UT123" <sip:MAC%3a0080f0aabbcc@192.168.10.60>;tag=4d2c
To: <sip:224.0.1.75>
Call-ID: 7aa1@192.168.10.60
CSeq: 1 SUBSCRIBE
Contact: <sip:192.168.10.60:5060>
Event: ua-profile;profile-type="device";vender="Panasonic";model="KX-UT123";version="01.133"
Content-Length: 0
""")

# AudioCodes: application profile, no MAC anywhere.
AUDIOCODES = crlf("""
SUBSCRIBE sip:224.0.1.75 SIP/2.0
Via: SIP/2.0/UDP 192.168.10.70:5060;branch=z9hG4bKac1
From: <sip:anonymous@192.168.10.70>;tag=1
To: <sip:224.0.1.75>
Call-ID: ac1@192.168.10.70
CSeq: 1 SUBSCRIBE
Contact: <sip:192.168.10.70>
Event: ua-profile;profile-type="application";vendor="AudioCodes";model="420HD";version="2.2.8"
Content-Length: 0
""")


@pytest.mark.parametrize(
    ("raw", "mac", "vendor", "model", "firmware", "from_oui"),
    [
        (PLANET, "00:30:4f:a9:99:48", "PLANET", "VIP-2140PT", "2.0.3.2991", False),
        (SNOM, "00:04:13:29:1a:4b", "Snom", "OEM", "7.3.30", True),
        (YEALINK, "00:15:65:a1:b2:c3", "Yealink", "T46S", "66.85.0.5", False),
        (GRANDSTREAM, "00:0b:82:34:ab:cd", "Grandstream", "GXP2170", "1.0.11.3", False),
        (PANASONIC, "00:80:f0:aa:bb:cc", "Panasonic", "KX-UT123", "01.133", False),
        (AUDIOCODES, None, "AudioCodes", "420HD", "2.2.8", False),
    ],
)
def test_vendor_subscribes(
    raw: bytes, mac: str | None, vendor: str, model: str, firmware: str, from_oui: bool
) -> None:
    msg = codec.decode(raw)
    assert msg.method == "SUBSCRIBE"
    profile = codec.ua_profile(msg)
    assert profile is not None
    assert (profile.mac, profile.vendor, profile.model, profile.firmware) == (
        mac,
        vendor,
        model,
        firmware,
    )
    assert profile.vendor_from_oui is from_oui


def test_planet_headers() -> None:
    msg = codec.decode(PLANET)
    assert msg.uri == "sip:MAC=00304fa99948@224.0.1.75"
    assert msg.header("call-id") == "322432620212850-163241588724467@192.168.1.45"
    assert codec.parse_cseq(msg.header("CSeq") or "") == (1, "SUBSCRIBE")
    via = codec.parse_via(msg.values("Via")[0])
    assert (via.transport, via.host, via.port, via.branch) == (
        "UDP",
        "192.168.1.45",
        5060,
        "z9hG4bK3102710241234624733",
    )
    assert "rport" not in via.params
    frm = codec.parse_name_addr(msg.header("From") or "")
    assert frm.tag is None
    assert msg.body == b""


def test_snom_rport_and_tag() -> None:
    msg = codec.decode(SNOM)
    via = codec.parse_via(msg.values("Via")[0])
    assert via.params == {"rport": ""}
    assert via.branch is None
    assert codec.parse_name_addr(msg.header("From") or "").tag == "o7yv0f7pyl"


def test_compact_forms_lf_only_and_multiple_via() -> None:
    raw = (
        b"SUBSCRIBE sip:MAC=00304f010203@224.0.1.75 SIP/2.0\n"
        b"v: SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bKa, SIP/2.0/UDP 10.0.0.8;branch=z9hG4bKb\n"
        b"Via: SIP / 2.0 / UDP 10.0.0.7:5070 ;branch=z9hG4bKc\n"
        b"f: <sip:MAC=00304f010203@224.0.1.75>;tag=x\n"
        b"t: <sip:MAC=00304f010203@224.0.1.75>\n"
        b"i: abc@10.0.0.9\n"
        b"CSeq: 7 SUBSCRIBE\n"
        b"m: <sip:10.0.0.9:5062>\n"
        b'o: ua-profile ; vendor = "PLANET" ; model="VIP-1"\n'
        b' ;version="1.2"\n'
        b"l: 5\n"
        b"\n"
        b"hello and more"
    )
    msg = codec.decode(raw)
    vias = [codec.parse_via(v) for v in msg.values("Via")]
    assert [(v.host, v.port, v.branch) for v in vias] == [
        ("10.0.0.9", 5062, "z9hG4bKa"),
        ("10.0.0.8", None, "z9hG4bKb"),
        ("10.0.0.7", 5070, "z9hG4bKc"),
    ]
    assert msg.header("Call-ID") == "abc@10.0.0.9"
    assert msg.body == b"hello"
    profile = codec.ua_profile(msg)
    assert profile is not None
    assert (profile.vendor, profile.model, profile.firmware) == ("PLANET", "VIP-1", "1.2")
    assert profile.mac == "00:30:4f:01:02:03"


def test_status_line_and_reencode() -> None:
    raw = crlf("""
SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKn1;rport=5060
From: <sip:MAC=00304f010203@224.0.1.75>;tag=ours
To: <sip:MAC=00304f010203@224.0.1.75>
Call-ID: n1
CSeq: 1 NOTIFY
Content-Length: 0
""")
    msg = codec.decode(raw)
    assert (msg.status, msg.reason, msg.method) == (200, "OK", None)
    assert codec.encode(msg) == raw
    assert codec.decode(codec.encode(msg)) == msg


def test_notify_with_body_encodes_content_length() -> None:
    msg = codec.request(
        "NOTIFY",
        "sip:10.0.0.2:5060",
        [("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx"), ("c", "application/url")],
        b"http://10.0.0.1/$mac.cfg",
    )
    wire = codec.encode(msg)
    assert b"Content-Type: application/url\r\n" in wire
    assert b"Content-Length: 24\r\n\r\nhttp://10.0.0.1/$mac.cfg" in wire
    assert codec.decode(wire) == msg


@pytest.mark.parametrize(
    "uri",
    [
        "sip:MAC=00304fa99948@224.0.1.75",
        "sip:MAC%3a00304fa99948@224.0.1.75",
        "sip:MAC%3A00304FA99948@224.0.1.75",
        "sip:MAC00304fa99948@224.0.1.75:5060",
        "sip:MAC:00:30:4f:a9:99:48@224.0.1.75",
        "sip:mac=00-30-4f-a9-99-48@224.0.1.75",
    ],
)
def test_mac_spellings(uri: str) -> None:
    assert codec.mac_from_uri(uri) == "00:30:4f:a9:99:48"


@pytest.mark.parametrize(
    "uri",
    [
        "sip:224.0.1.75",
        "sip:MAC=00304fa999@224.0.1.75",  # too short
        "sip:MAC=00304fa9994899@224.0.1.75",  # too long
        "sip:machine00304fa99948@h",
        "sip:00304fa99948@224.0.1.75",  # no MAC marker
    ],
)
def test_not_a_mac(uri: str) -> None:
    assert codec.mac_from_uri(uri) is None


def test_not_pnp() -> None:
    options = crlf("""
OPTIONS sip:10.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK1
CSeq: 1 OPTIONS
Content-Length: 0
""")
    assert codec.ua_profile(codec.decode(options)) is None
    presence = SNOM.replace(b"Event: ua-profile", b"Event: presence")
    assert codec.ua_profile(codec.decode(presence)) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"HELLO\r\n\r\n",
        b"SIP/2.0 2000 OK\r\n\r\n",
        b"INVITE sip:x SIP/3.0\r\n\r\n",
        b"SUBSCRIBE sip:x SIP/2.0\r\nno colon here\r\n\r\n",
        b"SUBSCRIBE sip:x SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
        b"SUBSCRIBE sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n",
        b"SUBSCRIBE sip:x SIP/2.0\r\nVia: a\x00b\r\n\r\n",
        b"SUBSCRIBE sip:x SIP/2.0\r\n" + b"X: " + b"a" * 70000 + b"\r\n\r\n",
    ],
)
def test_garbage(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.decode(raw)


@pytest.mark.parametrize(
    ("func", "value"),
    [
        (codec.parse_via, "HTTP/1.1 host"),
        (codec.parse_via, "SIP/2.0/UDP host:99999"),
        (codec.parse_uri, "tel:+123"),
        (codec.parse_uri, "sip:@"),
        (codec.parse_name_addr, "<sip:x"),
        (codec.parse_cseq, "one SUBSCRIBE"),
    ],
)
def test_bad_header_values(func: object, value: str) -> None:
    with pytest.raises(DecodeError):
        func(value)  # type: ignore[operator]


# ---------------------------------------------------------------- properties

_token = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.",
    min_size=1,
    max_size=12,
)
_value = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters="\x85\u2028\u2029"
    ),
    max_size=40,
).map(str.strip)
_headers = st.lists(
    st.tuples(_token.map(codec.canonical_name), _value).filter(lambda h: h[0] != "Content-Length"),
    max_size=8,
)


@st.composite
def _messages(draw: st.DrawFn) -> SipMessage:
    headers = draw(_headers)
    body = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        method = draw(_token.filter(lambda t: t.upper() == t and t[0].isalpha()))
        uri = "sip:" + draw(_token)
        return codec.request(method, uri, headers, body)
    reason = draw(_value)
    return codec.response(draw(st.integers(100, 699)), reason, headers, body)


@given(_messages())
@settings(max_examples=200)
def test_roundtrip(msg: SipMessage) -> None:
    assert codec.decode(codec.encode(msg)) == msg


@given(st.binary(max_size=600))
@settings(max_examples=300)
def test_any_bytes(data: bytes) -> None:
    try:
        msg = codec.decode(data)
    except DecodeError:
        return
    codec.ua_profile(msg)  # must not raise either
    codec.encode(msg)


@given(st.sampled_from([PLANET, SNOM, YEALINK, GRANDSTREAM, PANASONIC]), st.data())
@settings(max_examples=200)
def test_mutated_subscribes(raw: bytes, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(raw) - 1))
    replacement = data.draw(st.binary(min_size=0, max_size=4))
    mutated = raw[:index] + replacement + raw[index + 1 :]
    try:
        msg = codec.decode(mutated)
    except DecodeError:
        return
    codec.ua_profile(msg)


@pytest.mark.parametrize("header", [b"From", b"Call-ID", b"Event"])
@pytest.mark.parametrize("control", [b"\r", b"\x0b", b"\x0c", b"\x1b", b"\x7f"])
def test_control_characters_in_a_header_value_are_refused(header: bytes, control: bytes) -> None:
    """A bare CR inside From/Call-ID/Event used to be echoed into the 200 and
    the NOTIFY, splitting a header line at the receiver (issue 16)."""
    lines = PLANET.split(b"\r\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(header + b":"))
    lines[index] += control + b"X-Injected: 1"
    with pytest.raises(DecodeError, match="control character"):
        codec.decode(b"\r\n".join(lines))


def test_a_tab_in_a_header_value_is_fine() -> None:
    msg = codec.decode(PLANET.replace(b"Event:ua-profile", b"Event:\tua-profile"))
    assert (msg.header("Event") or "").startswith("ua-profile;")


def test_a_subscribe_keeps_the_vendor_as_the_phone_wrote_it() -> None:
    """Newer Snom firmware writes `vendor="snom"`: the profile keeps it as
    written (PnP rules match the phone's own spelling, `vendor = "Linksys"`
    too); the registry gives the phone its family's one name."""
    raw = SNOM.replace(b'vendor="OEM";model="OEM"', b'vendor="snom";model="D785"')
    assert raw != SNOM
    profile = codec.ua_profile(codec.decode(raw))
    assert profile is not None
    assert (profile.vendor, profile.model, profile.vendor_from_oui) == ("snom", "D785", False)
