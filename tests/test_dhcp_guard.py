"""The rogue-DHCP guard's decisions, with a stepped clock."""

from __future__ import annotations

import itertools
from ipaddress import IPv4Address

import pytest

from netboot.dhcp import codec
from netboot.dhcp.codec import DhcpMessage
from netboot.dhcp.guard import (
    MAX_SERVERS,
    PROBE,
    PROBING,
    REFUSE,
    SERVE,
    ProbeSend,
    RogueGuard,
)
from netboot.health import NOT_RUNNING, RUNNING, STARTING, Health, settled, status_text

OUR_MAC = bytes.fromhex("020000000001")
OUR_IP = int(IPv4Address("192.168.10.2"))
ROGUE_MAC = bytes.fromhex("52540012ab01")
ROGUE_IP = int(IPv4Address("192.168.10.3"))


def make_guard(refuse: bool = True, probe: float = PROBE, interval: float = 300.0) -> RogueGuard:
    xids = itertools.count(1000)
    return RogueGuard(
        ("eth0",),
        frozenset({OUR_MAC}),
        frozenset({OUR_IP}),
        refuse_when_found=refuse,
        probe=probe,
        interval=interval,
        xid_source=lambda: next(xids),
    )


def reply(xid: int, kind: int = codec.OFFER, server: int = ROGUE_IP) -> DhcpMessage:
    return DhcpMessage(
        op=codec.BOOTREPLY,
        xid=xid,
        chaddr=OUR_MAC,
        yiaddr=int(IPv4Address("192.168.10.150")),
        options={53: bytes((kind,)), 54: server.to_bytes(4, "big")},
    )


def run_until(guard: RogueGuard, now: float, end: float) -> tuple[float, list[ProbeSend]]:
    """Step the clock from wakeup to wakeup up to `end`; every DISCOVER sent."""
    sent: list[ProbeSend] = []
    while True:
        wake = guard.next_wakeup()
        if wake > end:
            return now, sent
        now = max(now, wake)
        sent += guard.due(now)


def test_start_probe_sends_twice_and_serves_when_nobody_answers() -> None:
    guard = make_guard()
    guard.begin(0.0)
    assert guard.verdict == PROBING
    first = guard.due(0.0)
    assert first == [ProbeSend("eth0", 1000)]
    assert guard.due(0.5) == []
    assert guard.due(1.0) == [ProbeSend("eth0", 1000)]  # resent, same xid (RFC 2131 §4.1)
    assert guard.due(4.9) == []
    assert guard.verdict == PROBING
    guard.due(PROBE)
    assert guard.verdict == SERVE
    # next active probe: one interval later
    assert guard.next_wakeup() == PROBE + 300.0


def test_dnsmasq_answering_after_its_ping_check_is_found_and_refused() -> None:
    guard = make_guard()
    guard.begin(100.0)
    guard.due(100.0)
    # dnsmasq: OFFER 3 s after the DISCOVER (its ping check); the window covers it.
    seen = guard.heard("eth0", ROGUE_MAC, ROGUE_IP, reply(1000), 103.0)
    assert seen is not None and seen.new and seen.answered_probe
    assert seen.server.server_id == "192.168.10.3"
    assert seen.server.mac == "52:54:00:12:ab:01"
    assert seen.server.offered == "192.168.10.150"
    assert "192.168.10.3 (MAC 52:54:00:12:ab:01) on eth0, OFFER 192.168.10.150" in (
        seen.server.describe()
    )
    assert guard.verdict == PROBING  # decided only at the end of the window
    run_until(guard, 103.0, 100.0 + PROBE)
    assert guard.verdict == REFUSE


def test_found_but_ignore_other_servers_serves_with_alarm() -> None:
    guard = make_guard(refuse=False)
    guard.begin(0.0)
    guard.due(0.0)
    guard.heard("eth0", ROGUE_MAC, ROGUE_IP, reply(1000), 1.2)
    run_until(guard, 1.2, PROBE)
    assert guard.verdict == SERVE
    assert [s.server_id for s in guard.active(PROBE)] == ["192.168.10.3"]


def test_refused_rechecks_and_serves_once_a_round_goes_unanswered() -> None:
    guard = make_guard()
    guard.begin(0.0)
    guard.due(0.0)
    guard.heard("eth0", ROGUE_MAC, ROGUE_IP, reply(1000), 3.0)
    now, _ = run_until(guard, 3.0, PROBE)
    assert guard.verdict == REFUSE
    # next round 30 s later, answered again: still refused
    now, sent = run_until(guard, now, PROBE + 30.0 + 1.0)
    assert [p.xid for p in sent] == [1001, 1001]
    guard.heard("eth0", ROGUE_MAC, ROGUE_IP, reply(1001), now + 2.0)
    now, _ = run_until(guard, now + 2.0, PROBE + 30.0 + PROBE)
    assert guard.verdict == REFUSE
    # the round after: nobody answers -> serve, and the server is forgotten
    now, sent = run_until(guard, now, 2 * (PROBE + 30.0) + PROBE)
    assert sent and guard.verdict == SERVE
    assert guard.active(now) == []


def test_replies_from_ourselves_and_requests_are_ignored() -> None:
    guard = make_guard()
    guard.begin(0.0)
    assert guard.heard("eth0", OUR_MAC, OUR_IP, reply(1000, server=OUR_IP), 0.1) is None
    # another MAC but our server identifier (a second interface of ours)
    assert guard.heard("eth0", ROGUE_MAC, OUR_IP, reply(1000, server=OUR_IP), 0.1) is None
    request = DhcpMessage(op=codec.BOOTREQUEST, xid=1, chaddr=ROGUE_MAC, options={53: b"\x01"})
    assert guard.heard("eth0", ROGUE_MAC, 0, request, 0.1) is None
    # an INFORM-shaped reply type that no server sends to clients is not a sighting
    odd = reply(7, kind=codec.REQUEST)
    assert guard.heard("eth0", ROGUE_MAC, ROGUE_IP, odd, 0.2) is None
    run_until(guard, 0.2, PROBE)
    assert guard.verdict == SERVE


def test_passive_sighting_after_start_raises_alarm_and_it_clears_after_hold() -> None:
    guard = make_guard()
    guard.begin(0.0)
    run_until(guard, 0.0, PROBE)
    assert guard.verdict == SERVE
    # a client's ACK from a server that appeared later, no probe round open
    seen = guard.heard("eth0", ROGUE_MAC, ROGUE_IP, reply(55, codec.ACK), 100.0)
    assert seen is not None and seen.new and not seen.answered_probe
    assert seen.server.last_kind == "ACK"
    again = guard.heard("eth0", ROGUE_MAC, ROGUE_IP, reply(56, codec.OFFER), 110.0)
    assert again is not None and not again.new and again.server.replies == 2
    assert guard.verdict == SERVE  # serving goes on: an alarm, not a stop
    assert len(guard.active(110.0 + guard.hold)) == 1
    assert guard.cleared(110.0 + guard.hold) == []
    late = 110.0 + guard.hold + 1
    assert guard.active(late) == []
    assert [s.server_id for s in guard.cleared(late)] == ["192.168.10.3"]
    assert guard.servers == {}
    # back again later: a new alarm
    back = guard.heard("eth0", ROGUE_MAC, ROGUE_IP, reply(57), late + 10)
    assert back is not None and back.new


def test_active_rounds_while_serving_find_a_unicasting_server() -> None:
    guard = make_guard(interval=60.0)
    guard.begin(0.0)
    now, _ = run_until(guard, 0.0, PROBE)
    now, sent = run_until(guard, now, PROBE + 60.0 + 0.1)
    assert sent == [ProbeSend("eth0", 1001)]
    assert guard.probe_xid == 1001
    seen = guard.heard("eth0", ROGUE_MAC, ROGUE_IP, reply(1001), now + 3.0)
    assert seen is not None and seen.answered_probe
    run_until(guard, now + 3.0, PROBE + 60.0 + PROBE)
    assert guard.verdict == SERVE  # found while serving: still serving
    assert guard.hold >= 2 * 60.0  # a server re-found every round keeps its alarm


def test_passive_only_and_no_start_probe() -> None:
    guard = make_guard(probe=0, interval=0)
    guard.begin(0.0)
    assert guard.verdict == SERVE
    assert guard.next_wakeup() == float("inf")
    assert guard.due(1e6) == []


def test_server_table_has_a_budget() -> None:
    guard = make_guard()
    guard.begin(0.0)
    run_until(guard, 0.0, PROBE)
    for i in range(MAX_SERVERS + 10):
        mac = bytes.fromhex("5254001200") + bytes((i,))
        guard.heard("eth0", mac, ROGUE_IP + i, reply(9, server=ROGUE_IP + i), 10.0 + i)
    assert len(guard.servers) == MAX_SERVERS
    assert guard.untracked == 10
    assert guard.replies == MAX_SERVERS + 10


def test_status_text_says_exactly_what_runs() -> None:
    class S:
        def __init__(self, name: str, health: Health | None = None) -> None:
            self.name = name
            if health is not None:
                self.health = health

    refused = S("dhcp", Health(NOT_RUNNING, "refused: another DHCP server answers: 192.168.10.3"))
    text = status_text([refused, S("tftp"), S("http")])
    assert text == (
        "serving tftp, http; dhcp NOT running (refused: another DHCP server answers: 192.168.10.3)"
    )
    probing = S("dhcp", Health(STARTING, "probing for other DHCP servers for 5 s"))
    assert status_text([probing, S("tftp")]) == (
        "serving tftp; dhcp starting (probing for other DHCP servers for 5 s)"
    )
    assert not settled([probing])
    alarm = S("dhcp", Health(RUNNING, "eth0", "another DHCP server on the segment: x"))
    assert status_text([alarm]) == "serving dhcp; dhcp ALARM: another DHCP server on the segment: x"
    assert settled([alarm, refused])


@pytest.mark.parametrize("kind", [codec.OFFER, codec.ACK, codec.NAK])
def test_every_server_answer_counts(kind: int) -> None:
    guard = make_guard()
    guard.begin(0.0)
    assert guard.heard("eth0", ROGUE_MAC, ROGUE_IP, reply(1, kind), 0.5) is not None
