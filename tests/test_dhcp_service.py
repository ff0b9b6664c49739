"""DhcpCore (dhcp/service.py), the DHCP service's decisions, on a stepped
clock and a recording DhcpIO: no socket, no sleep."""

from __future__ import annotations

import itertools
import logging
import tomllib
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from netboot import metrics
from netboot.clock import SteppedClock
from netboot.config import parse_config
from netboot.dhcp import codec
from netboot.dhcp.codec import DhcpMessage
from netboot.dhcp.engine import Reply
from netboot.dhcp.service import MAX_REHANDLE, DhcpCore
from netboot.events import AckWithheld, AddressConflict, Event, LeaseAcked
from netboot.health import NOT_RUNNING, RUNNING, STARTING
from netboot.state.leases import LeaseStore
from netboot.statedisk import HEALTH, StateWriteError
from tests.test_dhcp_engine import CONFIG as ENGINE_CONFIG

SERVER = int(IPv4Address("192.168.10.2"))
OUR_MAC = bytes.fromhex("020000000001")
ROGUE_MAC = bytes.fromhex("52540012ab01")
ROGUE_IP = int(IPv4Address("192.168.10.3"))
PHONE = bytes.fromhex("00304f000001")
# test_dhcp_engine's config with the conflict check on (each test says otherwise)
CONFIG = ENGINE_CONFIG.replace("ping_check = false\n", "ping_timeout_ms = 300\n")


class FakeIO:
    """What the transport would have sent, in order."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.guard: list[bytes] = []
        self.arp: list[int] = []  # target addresses of ARP probes
        self.icmp: list[int] = []
        self.opened = 0
        self.wakes = 0
        self.changes = 0
        self.fail_arp = False

    def send(self, reply: Reply) -> None:
        self.replies.append(reply)

    def send_guard(self, interface: str, frame: bytes) -> None:
        self.guard.append(frame)

    def send_arp(self, interface: str, frame: bytes) -> None:
        if self.fail_arp:
            raise OSError(101, "Network is unreachable")
        self.arp.append(int.from_bytes(frame[-4:], "big"))

    def send_icmp(self, ip: int, packet: bytes) -> None:
        self.icmp.append(ip)

    def open(self) -> None:
        self.opened += 1

    def wake(self) -> None:
        self.wakes += 1

    def status_changed(self) -> None:
        self.changes += 1


class Events:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def record(self, event: Event) -> None:
        self.events.append(event)


def make(tmp_path: Path, extra: str = "") -> tuple[DhcpCore, FakeIO, Events, SteppedClock]:
    config = parse_config(tomllib.loads(CONFIG.replace("[dhcp]\n", "[dhcp]\n" + extra)))
    io, events, clock = FakeIO(), Events(), SteppedClock(1000.0)
    wall = itertools.count(1_700_000_000)  # the engine's wall clock: moves on each read
    core = DhcpCore(
        config.dhcp,
        config.provisioning.url,
        LeaseStore(tmp_path),
        events,
        {"eth0": (OUR_MAC, SERVER)},
        io,
        clock,
        lambda: float(next(wall)),
        icmp_id=0x1234,
    )
    return core, io, events, clock


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[DhcpCore, FakeIO, Events, SteppedClock]]:
    """A core past its guard window (nobody else answered), serving."""
    core, io, events, clock = make(tmp_path, "ping_check = false\n")
    core.start()
    clock.advance(6)
    assert core.serving and io.opened == 1
    yield core, io, events, clock
    core.stop()
    core.leases.close()


def request_frame(kind: int, requested: int | None = None, giaddr: int = 0) -> bytes:
    options = {53: bytes((kind,))}
    if requested is not None:
        options[50] = requested.to_bytes(4, "big")
        options[54] = SERVER.to_bytes(4, "big")
    msg = DhcpMessage(
        op=codec.BOOTREQUEST, xid=7, chaddr=PHONE, giaddr=giaddr, hops=1 if giaddr else 0,
        options=options,
    )  # fmt: skip
    return codec.build_udp_frame(
        PHONE, codec.BROADCAST_MAC, 0, 0xFFFFFFFF, 68, 67, codec.encode(msg)
    )


def rogue_offer(xid: int) -> bytes:
    msg = DhcpMessage(
        op=codec.BOOTREPLY,
        xid=xid,
        chaddr=OUR_MAC,
        yiaddr=int(IPv4Address("192.168.10.150")),
        options={53: bytes((codec.OFFER,)), 54: ROGUE_IP.to_bytes(4, "big")},
    )
    return codec.build_udp_frame(
        ROGUE_MAC, OUR_MAC, ROGUE_IP, 0xFFFFFFFF, 67, 68, codec.encode(msg)
    )


def probe_xid(frame: bytes) -> int:
    return codec.decode(codec.parse_udp_frame(frame).payload).xid


# ------------------------------------------------------------------ guard


def test_serves_after_a_quiet_window(tmp_path: Path) -> None:
    core, io, _, clock = make(tmp_path)
    core.start()
    assert core.health.state == STARTING and "probing" in core.health.detail
    assert len(io.guard) == 1 and io.opened == 0  # the first DISCOVER, not serving yet
    clock.advance(1.0)
    assert len(io.guard) == 2  # sent again 1 s in
    clock.advance(3.9)
    assert io.opened == 0
    clock.advance(0.2)
    assert io.opened == 1 and core.serving
    assert core.health.state == RUNNING and core.health.alarm == ""
    assert io.changes == 1
    core.stop()
    assert clock.pending == 0
    core.leases.close()


def test_no_window_serves_at_once(tmp_path: Path) -> None:
    core, io, _, _ = make(tmp_path, "guard_probe = 0\n")
    core.start()
    assert core.serving and io.opened == 1 and io.guard == []
    core.stop()
    core.leases.close()


def test_authoritative_refuses_then_serves_when_the_other_is_gone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    core, io, _, clock = make(tmp_path, "guard_interval = 0\n")
    caplog.set_level(logging.INFO, "netboot.dhcp")
    core.start()
    core.guard_frame("eth0", rogue_offer(probe_xid(io.guard[0])))
    assert "ANOTHER DHCP SERVER IS ON THE SEGMENT" in caplog.text
    clock.advance(5.1)
    assert io.opened == 0 and not core.serving
    assert core.health.state == NOT_RUNNING and "192.168.10.3" in core.health.detail
    assert core.rogue_servers()[0]["server_id"] == "192.168.10.3"
    assert "not serving while another DHCP server answers" in caplog.text
    # the rogue is gone: the next round (every 30 s while refused) gets no answer
    clock.advance(40)
    assert io.opened == 1 and core.serving and core.health.state == RUNNING
    assert "the other DHCP server is gone; serving now" in caplog.text
    core.stop()
    core.leases.close()


def test_sighting_while_serving_raises_the_alarm_and_it_clears(
    served: tuple[DhcpCore, FakeIO, Events, SteppedClock],
) -> None:
    core, io, _, clock = served
    changes = io.changes
    core.guard_frame("eth0", rogue_offer(0x55))
    assert core.health.state == RUNNING and "192.168.10.3" in core.health.alarm
    assert io.changes == changes + 1
    core.guard_frame("eth0", b"\x00" * 20)  # malformed: not a server, ignored
    clock.advance(core.guard.hold + 2 * 30)
    assert core.health.alarm == "" and core.rogue_servers() == []
    assert core.serving


# ------------------------------------------------------------------ requests


def test_discover_is_offered_and_own_frames_dropped(
    served: tuple[DhcpCore, FakeIO, Events, SteppedClock],
) -> None:
    core, io, _, _ = served
    core.receive("eth0", PHONE, request_frame(codec.DISCOVER))  # "our own" MAC: dropped
    assert io.replies == []
    core.receive("eth0", OUR_MAC, request_frame(codec.DISCOVER))
    assert [r.message.msg_type for r in io.replies] == [codec.OFFER]
    core.receive("eth0", OUR_MAC, b"\x00" * 30)  # malformed: counted, dropped
    assert len(io.replies) == 1


def test_ack_waits_for_disk_and_a_failed_commit_withholds_it(
    served: tuple[DhcpCore, FakeIO, Events, SteppedClock],
) -> None:
    core, io, events, _ = served
    core.receive("eth0", OUR_MAC, request_frame(codec.DISCOVER))
    offered = io.replies[-1].message.yiaddr
    core.receive("eth0", OUR_MAC, request_frame(codec.REQUEST, offered))
    core.flush()
    assert len(io.replies) == 1 and io.wakes >= 1  # the ACK waits for the commit
    batch, replies = core.take_commit()
    assert [lease.ip for lease in batch] == [offered] and len(replies) == 1
    core.not_durable(batch, replies, StateWriteError("leases", "disk-full", "no space"))
    try:
        assert len(io.replies) == 1  # not sent
        withheld = [e for e in events.events if isinstance(e, AckWithheld)]
        assert len(withheld) == 1 and withheld[0].reason == "disk-full"
        assert withheld[0].ip == str(IPv4Address(offered))
        assert core.leases.staged == 1  # staged again for the next commit
    finally:
        HEALTH.ok("leases")
    # the client asks again; this time the commit works
    core.receive("eth0", OUR_MAC, request_frame(codec.REQUEST, offered))
    batch, replies = core.take_commit()
    core.leases.commit(batch)
    core.committed(batch, replies)
    assert io.replies[-1].message.msg_type == codec.ACK
    assert any(
        isinstance(e, LeaseAcked) and e.ip == str(IPv4Address(offered)) for e in events.events
    )


def test_messages_are_counted_by_direction_and_type_after_each_batch(
    served: tuple[DhcpCore, FakeIO, Events, SteppedClock],
) -> None:
    """netboot_dhcp_messages_total: every message in and out, counted once
    its batch is over (a read batch's `flush`, a commit's `committed`)."""
    core, io, _, _ = served

    def count(direction: str, kind: str) -> float:
        value = metrics.REGISTRY.get_sample_value(
            "netboot_dhcp_messages_total", {"direction": direction, "type": kind}
        )
        return value or 0.0

    before = {
        k: count(*k)
        for k in [("in", "DISCOVER"), ("in", "REQUEST"), ("out", "OFFER"), ("out", "ACK")]
    }
    for _ in range(3):
        core.receive("eth0", OUR_MAC, request_frame(codec.DISCOVER))
    offered = io.replies[-1].message.yiaddr
    core.receive("eth0", OUR_MAC, request_frame(codec.REQUEST, offered))
    core.flush()
    batch, replies = core.take_commit()
    core.leases.commit(batch)
    core.committed(batch, replies)
    after = {k: count(*k) for k in before}
    assert {k: after[k] - before[k] for k in before} == {
        ("in", "DISCOVER"): 3,
        ("in", "REQUEST"): 1,
        ("out", "OFFER"): 3,
        ("out", "ACK"): 1,
    }


# ------------------------------------------------------------------ conflict checks


def test_conflict_check_quarantines_an_answered_address(tmp_path: Path) -> None:
    core, io, events, clock = make(tmp_path, "guard_probe = 0\n")
    core.start()
    core.receive("eth0", OUR_MAC, request_frame(codec.DISCOVER))
    core.receive("eth0", OUR_MAC, request_frame(codec.DISCOVER))  # waits on the same check
    assert len(io.arp) == 1 and io.replies == []
    first = io.arp[0]
    squatter = bytes.fromhex("aabbccddeeff")
    core.arp_frame("eth0", codec.build_arp_request(squatter, first, SERVER))
    conflicts = [e for e in events.events if isinstance(e, AddressConflict)]
    assert conflicts == [AddressConflict(mac="aa:bb:cc:dd:ee:ff", ip=str(IPv4Address(first)))]
    assert len(io.arp) == 2 and io.arp[1] != first  # both requests wait on the next address
    clock.advance(0.29)
    assert io.replies == []
    clock.advance(0.02)  # nobody answered within ping_timeout_ms: offered
    assert [r.message.yiaddr for r in io.replies] == [io.arp[1], io.arp[1]]
    core.stop()
    core.leases.close()


def test_relayed_request_is_checked_by_icmp_echo(tmp_path: Path) -> None:
    core, io, _, _ = make(tmp_path, "guard_probe = 0\n")
    core.start()
    relay = int(IPv4Address("192.168.10.1"))
    core.receive("eth0", OUR_MAC, request_frame(codec.DISCOVER, giaddr=relay))
    assert len(io.icmp) == 1 and io.arp == []
    target = io.icmp[0]
    echo_reply = bytes((0x45,)) + bytes(19) + bytes((0, 0, 0, 0)) + (0x1234).to_bytes(2, "big")
    core.icmp_reply(target, echo_reply + bytes(2))
    lease = core.leases.get(target)  # declined: kept out of the pool
    assert lease is not None and lease.state == "declined" and lease.mac == "00:00:00:00:00:00"
    assert len(io.icmp) == 2 and io.icmp[1] != target  # the next address is checked
    core.stop()
    core.leases.close()


def test_a_probe_that_cannot_be_sent_offers_anyway(tmp_path: Path) -> None:
    core, io, _, clock = make(tmp_path, "guard_probe = 0\n")
    core.start()
    io.fail_arp = True
    core.receive("eth0", OUR_MAC, request_frame(codec.DISCOVER))
    assert io.replies == []  # not from inside the failed send
    clock.advance(0)
    assert [r.message.msg_type for r in io.replies] == [codec.OFFER]
    core.stop()
    core.leases.close()


# ------------------------------------------------------------------ link down


def test_receive_failures_log_once_until_the_link_works(
    served: tuple[DhcpCore, FakeIO, Events, SteppedClock], caplog: pytest.LogCaptureFixture
) -> None:
    core, _, _, _ = served
    caplog.set_level(logging.WARNING, "netboot.dhcp")
    down = OSError(100, "Network is down")
    for _ in range(5):
        core.recv_failed("eth0", "DHCP", down)
    assert caplog.text.count("cannot receive DHCP on eth0: Network is down") == 1
    assert core.down == {"eth0"}
    core.recv_ok("eth0")
    core.recv_ok("eth0")
    assert caplog.text.count("receiving on eth0 again") == 1 and core.down == set()


def test_a_request_waits_on_at_most_three_checks(tmp_path: Path) -> None:
    """Every address answers: after MAX_REHANDLE conflicts the request is
    dropped rather than checked again (a squatted pool cannot keep it in the
    table); the client's next DISCOVER starts over."""
    core, io, events, _ = make(tmp_path, "guard_probe = 0\n")
    core.start()
    core.receive("eth0", OUR_MAC, request_frame(codec.DISCOVER))
    squatter = bytes.fromhex("aabbccddeeff")
    for _ in range(MAX_REHANDLE):
        core.arp_frame("eth0", codec.build_arp_request(squatter, io.arp[-1], SERVER))
    assert len(io.arp) == MAX_REHANDLE and len(core.probes) == 0 and io.replies == []
    assert sum(isinstance(e, AddressConflict) for e in events.events) == MAX_REHANDLE
    core.receive("eth0", OUR_MAC, request_frame(codec.DISCOVER))  # the client asks again
    assert len(io.arp) == MAX_REHANDLE + 1 and io.arp[-1] not in io.arp[:-1]
    core.stop()
    core.leases.close()
