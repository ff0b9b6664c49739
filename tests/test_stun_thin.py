"""What moved out of the STUN transport into the engine: decoding a datagram
(reply and the reason it was bad), the reload of the rate limit, the metric
tally of a sendmmsg and the bounded address memo, on a stepped clock."""

from __future__ import annotations

from ipaddress import IPv4Address

from netboot.clock import SteppedClock
from netboot.stun import codec
from netboot.stun.engine import Endpoints, Site, StunEngine, listening, tally
from tests.test_stun_engine import CLIENT, FULL, TID12, req


def test_datagram_replies_and_says_why_a_bad_one_was_dropped() -> None:
    clock = SteppedClock(10.0)
    engine = StunEngine(FULL, rate_limit=1.0)
    reply, bad = engine.datagram(req(TID12), CLIENT, (0, 0), clock.now())
    assert bad is None and reply is not None and reply.destination == CLIENT
    assert codec.decode(reply.data).transaction_id == codec.decode(req(TID12)).transaction_id
    reply, bad = engine.datagram(b"\x00\x01garbage", CLIENT, (0, 0), clock.now())
    assert reply is None and bad  # garbage: silence, but a reason to log


def test_reconfigure_keeps_or_renews_the_buckets() -> None:
    clock = SteppedClock()
    engine = StunEngine(FULL, rate_limit=1.0)
    data = req(TID12)
    while engine.datagram(data, CLIENT, (0, 0), clock.now())[0] is not None:
        pass  # spend the burst
    engine.reconfigure(1.0)  # same limit: still spent
    assert engine.datagram(data, CLIENT, (0, 0), clock.now())[0] is None
    clock.advance(1.0)  # one token back
    assert engine.datagram(data, CLIENT, (0, 0), clock.now())[0] is not None
    engine.reconfigure(5.0)  # a new limit: fresh buckets
    assert engine.rate_limit == 5.0
    assert engine.datagram(data, CLIENT, (0, 0), clock.now())[0] is not None


def test_tally_of_a_full_and_a_partial_send() -> None:
    kinds = ["binding", "classic", "binding"]
    assert tally(kinds, 3) == {"binding": 2, "classic": 1}
    assert tally(kinds, 2) == {"binding": 2}
    assert tally(kinds, 0) == {}


def test_endpoints_memo_is_bounded() -> None:
    memo = Endpoints(budget=2)
    key = (5060).to_bytes(2, "big") + IPv4Address("10.0.0.7").packed
    assert memo.sockaddr(key) == (IPv4Address("10.0.0.7"), 5060)
    assert memo.sockaddr(key) is memo.sockaddr(key)
    for i in range(5):
        memo.sockaddr(i.to_bytes(2, "big") + bytes(4))
    assert len(memo._sockaddrs) <= 2
    assert memo.host("192.0.2.1") == IPv4Address("192.0.2.1")


def test_listening_line() -> None:
    one = Site((IPv4Address("192.0.2.1"),), (3478,))
    assert listening(one) == "192.0.2.1:3478 (binding only)"
    assert listening(FULL).endswith("(NAT-type tests)") and listening(FULL).count(":") == 4
