"""PnP responder decisions, table-driven, with a stepped clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from ipaddress import IPv4Network

import pytest

from netboot.config import PnpRule
from netboot.pnp import codec
from netboot.pnp.engine import T1, T2, TIMER_F, PnpResponder, Report, Send, Site, report
from tests.test_pnp_codec import GRANDSTREAM, PLANET, SNOM, YEALINK

LAN = IPv4Network("192.168.0.0/16")
URL = "http://192.168.1.2/$mac.cfg"


def site(**kw: object) -> Site:
    base: dict[str, object] = {
        "url": URL,
        "local_ip": "192.168.1.2",
        "local_port": 5060,
        "allowed_sources": (LAN,),
    }
    base.update(kw)
    return Site(**base)  # type: ignore[arg-type]


def counter() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"t{next(numbers)}"


def responder(**kw: object) -> PnpResponder:
    known = kw.pop("known_macs", frozenset())
    return PnpResponder(site(**kw), known_macs=known, token=counter())  # type: ignore[arg-type]


def decode(send: Send) -> codec.SipMessage:
    return codec.decode(send.data)


# ---------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("raw", "source", "reply_to", "top_via_suffix", "notify_to"),
    [
        # No rport: source address, Via port (§18.2.2).
        (PLANET, ("192.168.1.45", 5060), ("192.168.1.45", 5060), "", ("192.168.1.45", 5060)),
        # No rport, source differs from sent-by: received= added, Via port kept.
        (
            PLANET,
            ("192.168.7.7", 33000),
            ("192.168.7.7", 5060),
            ";received=192.168.7.7",
            ("192.168.1.45", 5060),
        ),
        # rport: back to the source port, filled in (RFC 3581 §4).
        (
            SNOM,
            ("192.168.10.31", 40001),
            ("192.168.10.31", 40001),
            ";rport=40001;received=192.168.10.31",
            ("192.168.10.31", 1029),
        ),
        # Yealink sends from 5059.
        (YEALINK, ("192.168.10.40", 5059), ("192.168.10.40", 5059), "", ("192.168.10.40", 5059)),
        # Grandstream: rport and a branch, port 5080, Contact with a transport parameter.
        (
            GRANDSTREAM,
            ("192.168.10.50", 5080),
            ("192.168.10.50", 5080),
            ";rport=5080;received=192.168.10.50",
            ("192.168.10.50", 5080),
        ),
    ],
    ids=["planet", "planet-moved", "snom-rport", "yealink", "grandstream"],
)
def test_answer_routing(
    raw: bytes,
    source: tuple[str, int],
    reply_to: tuple[str, int],
    top_via_suffix: str,
    notify_to: tuple[str, int],
) -> None:
    r = responder()
    sub = codec.decode(raw)
    out = r.receive(sub, source, 100.0)
    assert out.refused is None
    assert len(out.sends) == 2
    ok_send, notify_send = out.sends
    assert ok_send.dest == reply_to
    assert notify_send.dest == notify_to
    ok = decode(ok_send)
    assert (ok.status, ok.reason) == (200, "OK")
    sent_via = sub.values("Via")[0]
    expected_via = [p for p in sent_via.split(";") if p != "rport"]
    assert ok.values("Via")[0] == ";".join(expected_via) + top_via_suffix
    assert ok.values("Via")[1:] == sub.values("Via")[1:]
    for name in ("From", "Call-ID", "CSeq"):
        assert ok.header(name) == sub.header(name)
    assert ok.header("To") == f"{sub.header('To')};tag=t1"
    assert ok.header("Expires") == "0"
    assert ok.header("Contact") == "<sip:192.168.1.2:5060>"


def test_notify_is_rfc3261_in_dialog() -> None:
    r = responder()
    sub = codec.decode(SNOM)
    out = r.receive(sub, ("192.168.10.31", 1029), 0.0)
    ok, notify = (decode(s) for s in out.sends)
    assert notify.method == "NOTIFY"
    assert notify.uri == "sip:192.168.10.31:1029"
    via = codec.parse_via(notify.values("Via")[0])
    assert len(notify.values("Via")) == 1
    assert (via.host, via.port) == ("192.168.1.2", 5060)
    assert via.branch is not None and via.branch.startswith("z9hG4bK")
    # Tags swapped: our From is their To with the tag of our 200 OK.
    our_from = codec.parse_name_addr(notify.header("From") or "")
    assert our_from.tag == codec.parse_name_addr(ok.header("To") or "").tag == "t1"
    assert our_from.uri == codec.parse_name_addr(sub.header("To") or "").uri
    assert notify.header("To") == sub.header("From")
    assert codec.parse_name_addr(notify.header("To") or "").tag == "o7yv0f7pyl"
    assert notify.header("Call-ID") == sub.header("Call-ID")
    assert codec.parse_cseq(notify.header("CSeq") or "") == (1, "NOTIFY")
    assert notify.header("Event") == sub.header("Event")
    assert notify.header("Subscription-State") == "terminated;reason=timeout"
    assert notify.header("Content-Type") == "application/url"
    assert notify.header("Max-Forwards") == "70"
    # Snom does not fill in $mac: netboot does.
    # Snom's own macro, which the phone fills in (Snom SIP PnP capture: NOTIFY
    # body ".../sipphoneconfig.xml?mac={mac}"), and its per-MAC XML (wazo_snom).
    assert notify.body == b"http://192.168.1.2/{mac}.xml"
    assert out.url == "http://192.168.1.2/{mac}.xml"


def test_planet_keeps_dollar_mac() -> None:
    out = responder().receive(codec.decode(PLANET), ("192.168.1.45", 5060), 0.0)
    assert decode(out.sends[1]).body == URL.encode()
    assert out.profile is not None and out.profile.vendor == "PLANET"


# ---------------------------------------------------------------- who gets answered


SNOM_MAC = "00:04:13:29:1a:4b"


@pytest.mark.parametrize(
    ("kw", "source", "refused"),
    [
        ({}, ("192.168.10.31", 1029), None),
        ({}, ("10.9.9.9", 1029), "source"),
        ({"allowed_sources": ()}, ("192.168.10.31", 1029), "source"),
        ({"policy": "discover"}, ("192.168.10.31", 1029), "discover"),
        ({"policy": "known"}, ("192.168.10.31", 1029), "unknown-mac"),
        ({"policy": "known", "known_macs": frozenset({SNOM_MAC})}, ("192.168.10.31", 1029), None),
        ({"url": ""}, ("192.168.10.31", 1029), "no-url"),
    ],
)
def test_policy(kw: dict[str, object], source: tuple[str, int], refused: str | None) -> None:
    out = responder(**kw).receive(codec.decode(SNOM), source, 0.0)
    assert out.refused == refused
    assert bool(out.sends) is (refused is None)
    if refused not in ("source",):
        assert out.profile is not None and out.profile.mac == SNOM_MAC


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (PLANET, "http://p/planet-2140.cfg"),
        (SNOM, "http://p/snom-by-prefix"),
        (YEALINK, "http://p/yealink/001565a1b2c3.cfg"),
        (GRANDSTREAM, "http://192.168.1.2/"),
    ],
    ids=["planet", "snom", "yealink", "grandstream"],
)
def test_rules_first_match(raw: bytes, expected: str) -> None:
    rules = (
        PnpRule(url="http://p/planet-2140.cfg", vendor="planet", model="VIP-2140PT"),
        PnpRule(url="http://p/planet-other.cfg", vendor="PLANET"),
        PnpRule(url="http://p/snom-by-prefix", mac_prefix=bytes.fromhex("000413")),
        PnpRule(url="http://p/yealink/$mac.cfg", vendor="Yealink"),
        PnpRule(url="http://p/never", vendor="Yealink"),
    )
    r = responder(rules=rules)
    msg = codec.decode(raw)
    via = codec.parse_via(msg.values("Via")[0])
    out = r.receive(msg, (via.host, via.port or 5060), 0.0)
    assert out.url == expected
    assert decode(out.sends[1]).body == expected.encode()


def test_other_messages_ignored() -> None:
    r = responder()
    options = codec.decode(b"OPTIONS sip:x SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n")
    assert r.receive(options, ("192.168.1.9", 5060), 0.0).refused == "not-subscribe"
    presence = codec.decode(SNOM.replace(b"ua-profile", b"presence"))
    assert r.receive(presence, ("192.168.1.9", 5060), 0.0).refused == "not-ua-profile"
    stray = codec.decode(b"SIP/2.0 200 OK\r\nCSeq: 1 NOTIFY\r\nCall-ID: nobody\r\n\r\n")
    assert r.receive(stray, ("192.168.1.9", 5060), 0.0).sends == ()


def test_rate_limit_per_source() -> None:
    r = responder(rate_limit=1.0, burst=3.0)

    def subscribe(n: int, ip: str, now: float) -> str | None:
        raw = SNOM.replace(b"3d5e3c1b2d4f", f"call{n}".encode())
        return r.receive(codec.decode(raw), (ip, 5060), now).refused

    results = [subscribe(n, "192.168.10.31", 0.0) for n in range(5)]
    assert results == [None, None, None, "rate", "rate"]
    assert subscribe(10, "192.168.10.32", 0.0) is None  # another source has its own bucket
    assert subscribe(11, "192.168.10.31", 0.5) == "rate"
    assert subscribe(12, "192.168.10.31", 1.0) is None  # one token back after 1 s


def test_contact_outside_allowed_sources_is_not_followed() -> None:
    raw = PLANET.replace(b"Contact: <sip:192.168.1.45:5060>", b"Contact: <sip:8.8.8.8:53>")
    out = responder().receive(codec.decode(raw), ("192.168.1.45", 5060), 0.0)
    assert out.sends[1].dest == ("192.168.1.45", 5060)


# ---------------------------------------------------------------- retransmission


def test_retransmitted_subscribe_gets_same_ok_and_no_second_notify() -> None:
    r = responder()
    sub = codec.decode(YEALINK)
    first = r.receive(sub, ("192.168.10.40", 5059), 0.0)
    again = r.receive(sub, ("192.168.10.40", 5059), 0.4)
    assert again.retransmission
    assert again.sends == (first.sends[0],)
    assert r.pending_notifies == 1
    # A new SUBSCRIBE (next CSeq) is a new request and gets a new NOTIFY.
    nxt = codec.decode(YEALINK.replace(b"CSeq: 1 SUBSCRIBE", b"CSeq: 2 SUBSCRIBE"))
    assert len(r.receive(nxt, ("192.168.10.40", 5059), 0.6).sends) == 2
    # Past Timer J the cached answer is gone: it is a new subscription again.
    later = r.receive(sub, ("192.168.10.40", 5059), 40.0)
    assert not later.retransmission and len(later.sends) == 2


def _step(r: PnpResponder, until: float, step: float = 0.05) -> tuple[list[float], list[str]]:
    times: list[float] = []
    expired: list[str] = []
    for i in range(int(until / step) + 1):
        now = round(i * step, 3)
        sends, gone = r.poll(now)
        times.extend(now for _ in sends)
        expired.extend(e.mac or "" for e in gone)
    return times, expired


def test_notify_timers_e_and_f() -> None:
    r = responder()
    out = r.receive(codec.decode(PLANET), ("192.168.1.45", 5060), 0.0)
    times, expired = _step(r, 40.0)
    expected = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert times == pytest.approx(expected)
    assert expired == ["00:30:4f:a9:99:48"]
    assert r.pending_notifies == 0
    assert r.next_deadline() is None
    assert out.sends[1].data  # the retransmitted bytes are the first NOTIFY's
    assert T1 == 0.5 and T2 == 4.0 and TIMER_F == 32.0


def _answer(notify: codec.SipMessage, status: int, mangle_via: bool = False) -> codec.SipMessage:
    via = notify.values("Via")[0]
    if mangle_via:
        via = "SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKother"
    return codec.response(
        status,
        "OK" if status == 200 else "Trying",
        [
            ("Via", via),
            ("From", notify.header("From") or ""),
            ("To", (notify.header("To") or "") + ";tag=phone"),
            ("Call-ID", notify.header("Call-ID") or ""),
            ("CSeq", notify.header("CSeq") or ""),
        ],
    )


@pytest.mark.parametrize("mangle_via", [False, True])
def test_final_response_stops_retransmission(mangle_via: bool) -> None:
    r = responder()
    out = r.receive(codec.decode(PLANET), ("192.168.1.45", 5060), 0.0)
    notify = decode(out.sends[1])
    sends, _ = r.poll(0.5)
    assert [s.data for s in sends] == [out.sends[1].data]
    done = r.receive(_answer(notify, 200, mangle_via), ("192.168.1.45", 5060), 1.2)
    assert done.answered == "00:30:4f:a9:99:48" and done.status == 200
    times, expired = _step(r, 40.0)
    assert times == [] and expired == []


def test_provisional_response_slows_to_t2() -> None:
    r = responder()
    out = r.receive(codec.decode(PLANET), ("192.168.1.45", 5060), 0.0)
    notify = decode(out.sends[1])
    assert r.receive(_answer(notify, 100), ("192.168.1.45", 5060), 0.1).status == 100
    times, expired = _step(r, 40.0)
    # First retransmission still at 0.5 (armed before), then every T2.
    assert times == pytest.approx([0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5])
    assert expired == ["00:30:4f:a9:99:48"]


def test_malformed_required_headers_raise_decode_error() -> None:
    from netboot.wire import DecodeError

    r = responder()
    no_callid = codec.decode(PLANET.replace(b"Call-ID: ", b"X-Call-ID: "))
    with pytest.raises(DecodeError):
        r.receive(no_callid, ("192.168.1.45", 5060), 0.0)
    bad_via = codec.decode(PLANET.replace(b"SIP/2.0/UDP 192.168.1.45:5060", b"bogus"))
    with pytest.raises(DecodeError):
        r.receive(bad_via, ("192.168.1.45", 5060), 0.0)


def test_one_notify_in_flight_per_destination() -> None:
    r = responder()
    first = r.receive(codec.decode(PLANET), ("192.168.1.45", 5060), 0.0)
    again = PLANET.replace(b"322432620212850", b"999")  # a new subscription, same phone
    second = r.receive(codec.decode(again), ("192.168.1.45", 5060), 0.2)
    assert len(second.sends) == 2 and r.pending_notifies == 1
    sends, _ = r.poll(0.7)
    assert [s.data for s in sends] == [second.sends[1].data] != [first.sends[1].data]
    other = YEALINK
    r.receive(codec.decode(other), ("192.168.10.40", 5059), 0.8)
    assert r.pending_notifies == 2


# ---------------------------------------------------------------- hostile segment


def _subscribe(n: int, base: bytes = SNOM) -> codec.SipMessage:
    return codec.decode(base.replace(b"3d5e3c1b2d4f", f"call{n}".encode()))


def test_an_unconfirmed_destination_gets_one_notify_and_no_retransmission() -> None:
    """A spoofed SUBSCRIBE buys its victim the 200 and one NOTIFY, not twelve
    datagrams; a lease holder, or an address that answered before, gets the
    usual Timer E retransmissions."""
    r = responder()
    nobody: Callable[[str], str | None] = lambda ip: None  # noqa: E731
    out = r.receive(codec.decode(PLANET), ("192.168.1.45", 5060), 0.0, nobody)
    assert len(out.sends) == 2 and r.take_limited() == ["notify-unconfirmed"]
    assert r.next_deadline() == TIMER_F  # no Timer E
    times, expired = _step(r, 40.0)
    assert times == [] and len(expired) == 1
    # A lease holder: retransmitted.
    leased: Callable[[str], str | None] = lambda ip: (  # noqa: E731
        "00:30:4f:a9:99:48" if ip == "192.168.1.45" else None
    )
    r.receive(codec.decode(PLANET), ("192.168.1.45", 5060), 100.0, leased)
    assert r.take_limited() == []
    sends, _ = r.poll(100.5)
    assert len(sends) == 1


def test_an_address_that_answered_is_confirmed_later() -> None:
    r = responder()
    nobody: Callable[[str], str | None] = lambda ip: None  # noqa: E731
    out = r.receive(_subscribe(1), ("192.168.10.31", 5060), 0.0, nobody)
    notify = decode(out.sends[1])
    r.receive(_answer(notify, 200), ("192.168.10.31", 1029), 0.2)
    r.receive(_subscribe(2), ("192.168.10.31", 5060), 50.0, nobody)
    sends, _ = r.poll(50.5)
    assert len(sends) == 1  # retransmitted: the phone proved its address


def test_icmp_unreachable_ends_the_notify() -> None:
    r = responder()
    out = r.receive(codec.decode(PLANET), ("192.168.1.45", 5060), 0.0)
    [gone] = r.unreachable(out.sends[1].dest)
    assert gone.dest == ("192.168.1.45", 5060) and r.pending_notifies == 0
    assert r.poll(0.5) == ([], [])
    assert r.unreachable(("192.168.1.99", 5060)) == []


def test_only_sources_on_the_link_are_answered() -> None:
    r = responder(on_link=(IPv4Network("192.168.10.0/24"),))
    assert r.receive(_subscribe(1), ("192.168.1.45", 5060), 0.0).refused == "off-link"
    assert r.receive(_subscribe(2), ("192.168.10.31", 5060), 0.0).refused is None


def test_full_tables_evict_the_oldest_entry_instead_of_refusing() -> None:
    """Issue 16: 10 000 SUBSCRIBEs from 248 spoofed sources filled the 4096
    answers for good and a real phone got "busy". Now the oldest entries go."""
    r = responder(max_tracked=16, rate_limit=1000.0, burst=1000.0)
    nobody: Callable[[str], str | None] = lambda ip: None  # noqa: E731
    for n in range(100):
        ip = f"192.168.20.{n % 40 + 1}"
        out = r.receive(_subscribe(n), (ip, 5060), n * 0.01, nobody)
        assert out.refused is None
    limited = r.take_limited()
    assert limited.count("answers-evicted") == 84
    assert limited.count("buckets-evicted") == 100 - 16
    assert len(r._answers) == 16 and len(r._buckets) == 16 and r.pending_notifies <= 16
    phone = r.receive(codec.decode(PLANET), ("192.168.1.45", 5060), 1.0)
    assert phone.refused is None and len(phone.sends) == 2


def test_buckets_forget_in_time_order() -> None:
    r = responder(rate_limit=1.0, burst=1.0)
    r.receive(_subscribe(1), ("192.168.10.31", 5060), 0.0)
    r.receive(_subscribe(2), ("192.168.10.32", 5060), 30.0)
    r.receive(_subscribe(3), ("192.168.10.33", 5060), 61.0)  # .31 is 61 s old: gone
    assert r._buckets.keys() == ["192.168.10.32 any", "192.168.10.33 any"]


def test_subscribes_forged_in_a_phones_address_do_not_starve_it() -> None:
    """The flood uses the phone's own address with other MACs: its bucket
    drains, but the lease holder's SUBSCRIBE (its MAC) has a bucket of its own."""
    r = responder(rate_limit=1.0, burst=2.0)
    phone_mac = "00:04:13:29:1a:4b"  # SNOM's MAC
    lease: Callable[[str], str | None] = lambda ip: (  # noqa: E731
        phone_mac if ip == "192.168.10.31" else None
    )
    forged = SNOM.replace(b"000413291a4b", b"02aabbccddee")
    refused = [
        r.receive(_subscribe(n, forged), ("192.168.10.31", 5060), 0.0, lease).refused
        for n in range(5)
    ]
    assert refused == [None, None, "rate", "rate", "rate"]
    assert r.receive(_subscribe(9), ("192.168.10.31", 5060), 0.0, lease).refused is None


# ---------------------------------------------------------------- reports


def test_report_of_an_answered_subscribe_records_subscribe_and_notify() -> None:
    source = ("192.168.10.31", 1029)
    out = responder().receive(codec.decode(SNOM), source, 0.0)
    said = report("SUBSCRIBE", out, source)
    assert said.answered and said.refused is None
    assert [(r.mac, r.kind) for r in said.records] == [
        (SNOM_MAC, "subscribe"),
        (SNOM_MAC, "notify"),
    ]
    assert said.records[0].facts()["ip"] == "192.168.10.31"
    assert said.records[1].detail() == {"url": out.url, "to": "192.168.10.31:1029"}
    assert len(said.lines) == 1 and "NOTIFY" in said.lines[0]


@pytest.mark.parametrize("refused_source", [("10.9.9.9", 1029)])
def test_report_of_a_spoofable_refusal_records_nothing(refused_source: tuple[str, int]) -> None:
    out = responder().receive(codec.decode(SNOM), refused_source, 0.0)
    said = report("SUBSCRIBE", out, refused_source)
    assert (said.refused, said.records, said.lines, said.answered) == ("source", (), (), False)


def test_report_of_a_retransmission_records_nothing() -> None:
    r = responder()
    source = ("192.168.10.31", 1029)
    r.receive(codec.decode(SNOM), source, 0.0)
    again = r.receive(codec.decode(SNOM), source, 0.1)
    assert again.retransmission
    assert report("SUBSCRIBE", again, source) == Report()


def test_report_of_a_discover_policy_records_the_phone_without_answering() -> None:
    source = ("192.168.10.31", 1029)
    out = responder(policy="discover").receive(codec.decode(SNOM), source, 0.0)
    said = report("SUBSCRIBE", out, source)
    assert said.refused == "discover" and not said.answered
    assert [(r.kind, r.detail().get("refused")) for r in said.records] == [
        ("subscribe", "discover")
    ]
