"""The TFTP request desk (tftp/requests.py) on a stepped clock, without sockets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from netboot import metrics
from netboot.app import build_context
from netboot.clock import SteppedClock
from netboot.config import parse_config
from netboot.provisioning.files import Resolved
from netboot.registry import Registry
from netboot.state.leases import LeaseStore
from netboot.tftp import codec
from netboot.tftp.requests import FIRST_WAIT, Desk, Peer, Pending
from netboot.tftp.session import ReadSession

PHONE: Peer = ("10.0.0.5", 2000)
OTHER: Peer = ("10.0.0.6", 2001)


@dataclass
class FakeTransfer:
    """A transfer as the transport's: `finish` ends it once, through the desk."""

    desk: Desk[FakeTransfer]
    peer: Peer
    session: ReadSession
    outcome: Resolved
    threaded: bool = False
    again: int = 0
    closed: bool = False

    def request_again(self) -> None:
        self.again += 1

    def finish(self) -> None:
        if not self.closed:
            self.closed = True
            self.desk.ended(self)


@dataclass
class FakePort:
    replies: list[tuple[Peer, codec.Message]] = field(default_factory=list)
    launched: list[tuple[Peer, Pending]] = field(default_factory=list)

    def reply(self, peer: Peer, packet: bytes) -> None:
        self.replies.append((peer, codec.decode(packet)))

    def launch(self, peer: Peer, pending: Pending) -> None:
        self.launched.append((peer, pending))


@dataclass
class Bench:
    desk: Desk[FakeTransfer]
    port: FakePort
    clock: SteppedClock
    root: Path

    def rrq(self, name: str, peer: Peer = PHONE, mode: str = "octet") -> None:
        self.desk.request(codec.encode(codec.ReadRequest(name, mode)), peer)

    def open(self, peer: Peer = PHONE) -> FakeTransfer:
        """Carry out the last launch as the transport does."""
        launched, pending = self.port.launched.pop()
        assert launched == peer
        session = self.desk.prepare(peer, pending)
        assert session is not None
        transfer = FakeTransfer(self.desk, peer, session, pending.outcome)
        transfer.threaded = self.desk.threaded(session)
        self.desk.started(transfer)
        session.start(self.clock.now())
        return transfer


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "state").mkdir()
    raw: dict[str, dict[str, Any]] = {
        "appliance": {"interface": "lo", "state_dir": str(tmp_path / "state")},
        "provisioning": {"root": str(root)},
        "tftp": {"timeout": 0.5, "retries": 2, "max_sessions": 1},
        "dhcp": {"enabled": False},
        "http": {"enabled": False},
    }
    config = parse_config(raw)
    registry = Registry(config.appliance.state_dir)
    ctx = build_context(config, registry, LeaseStore(config.appliance.state_dir))
    port, clock = FakePort(), SteppedClock(100.0)
    yield Bench(Desk(config.tftp, ctx.files, port, clock), port, clock, root)
    registry.close()


def limited(budget: str) -> float:
    value: float = metrics.LIMITED.labels("tftp", budget)._value.get()
    return value


def test_refusals_answered_from_the_listening_port(bench: Bench) -> None:
    desk, port = bench.desk, bench.port
    desk.request(codec.encode(codec.WriteRequest("x.cfg")), PHONE)
    desk.request(codec.encode(codec.Ack(3)), PHONE)
    bench.rrq("x.cfg", mode="mail")
    bench.rrq("nope.cfg")
    bench.rrq("../etc/passwd")
    desk.request(b"\x00\x09junk", PHONE)  # bad input: counted, no answer
    codes = [msg.code for _, msg in port.replies if isinstance(msg, codec.Error)]
    assert codes == [
        codec.ERR_ACCESS,
        codec.ERR_UNKNOWN_TID,
        codec.ERR_ILLEGAL,
        codec.ERR_NOT_FOUND,
        codec.ERR_ACCESS,
    ]
    assert port.launched == [] and desk.admission.by_host == {}


def test_a_repeated_rrq_goes_to_its_running_transfer(bench: Bench) -> None:
    (bench.root / "a.cfg").write_bytes(b"x" * 700)
    bench.rrq("a.cfg")
    bench.rrq("a.cfg")  # again while it is being opened: nothing new
    assert len(bench.port.launched) == 1
    transfer = bench.open()
    assert not transfer.threaded and transfer.session.size == 700
    bench.rrq("a.cfg")
    assert transfer.again == 1 and bench.port.launched == [] and bench.port.replies == []


def test_netascii_memory_budget_and_its_return(bench: Bench) -> None:
    (bench.root / "big.cfg").write_bytes(b"line\n" * 2_000)  # 12 kB as netascii
    desk = bench.desk
    desk.memory_budget = 30_000
    desk.admission.max_sessions = 2
    bench.rrq("big.cfg", mode="netascii")
    first = bench.open()
    assert desk.held == {PHONE: 12_000}
    busy = limited("memory")
    bench.rrq("big.cfg", OTHER, mode="netascii")
    _, pending = bench.port.launched.pop()
    assert desk.prepare(OTHER, pending) is None
    assert bench.port.replies == [(OTHER, codec.Error(codec.ERR_UNDEFINED, "busy"))]
    assert limited("memory") == busy + 1 and desk.admission.by_host == {PHONE[0]: 1}
    first.finish()
    assert desk.held == {} and desk.admission.by_host == {}


def test_long_transfers_get_a_thread_while_one_is_free(bench: Bench) -> None:
    (bench.root / "fw.bin").write_bytes(b"\0" * 512 * 70)
    desk = bench.desk
    desk.admission.max_sessions = 4
    desk.max_threads = 1
    bench.rrq("fw.bin")
    first = bench.open()
    bench.rrq("fw.bin", OTHER)
    second = bench.open(OTHER)
    assert first.threaded and not second.threaded and desk.threads == 1
    first.finish()
    assert desk.threads == 0


def test_a_silent_transfer_makes_room_for_a_waiting_request(bench: Bench) -> None:
    """max_sessions 1: the second request waits (no answer); once the first
    client has stayed silent for the grace time, the stepped clock's timer
    ends it and starts the waiting one."""
    (bench.root / "a.cfg").write_bytes(b"x" * 100)
    bench.rrq("a.cfg")
    silent = bench.open()
    bench.rrq("a.cfg", OTHER)
    assert bench.port.launched == [] and bench.port.replies == []
    assert bench.clock.pending == 1
    bench.clock.advance(FIRST_WAIT - 0.1)
    assert not silent.closed and bench.port.launched == []
    bench.clock.advance(0.2)
    assert silent.closed and silent.session.failed == "evicted"
    assert [peer for peer, _ in bench.port.launched] == [OTHER]
    assert bench.desk.transfers == {} and bench.desk.admission.by_host == {OTHER[0]: 1}


def served(result: str) -> float:
    value: float = metrics.FILES_SERVED.labels("tftp", result)._value.get()
    return value


def test_endings_are_counted_and_the_slot_given_back(bench: Bench) -> None:
    (bench.root / "a.cfg").write_bytes(b"x" * 100)
    ok, unanswered = served("ok"), served("unanswered")
    bench.rrq("a.cfg")
    answered = bench.open()
    assert answered.session.ack(1, bench.clock.now()) == [] and answered.session.done
    answered.finish()
    assert served("ok") == ok + 1 and bench.desk.admission.by_host == {}
    bench.rrq("a.cfg", OTHER)
    quiet = bench.open(OTHER)
    deadline = quiet.session.deadline
    assert deadline is not None
    assert quiet.session.on_timer(deadline) == [] and quiet.session.failed == "timeout"
    quiet.finish()
    assert served("unanswered") == unanswered + 1 and served("ok") == ok + 1
    assert bench.desk.transfers == {} and bench.desk.admission.by_host == {}


def test_reconfigure_changes_the_next_sessions_and_the_budgets(bench: Bench) -> None:
    (bench.root / "a.cfg").write_bytes(b"x" * 100)
    raw: dict[str, dict[str, Any]] = {
        "appliance": {"interface": "lo", "state_dir": "/nonexistent"},
        "provisioning": {"root": str(bench.root)},
        "tftp": {"timeout": 2.0, "retries": 4, "max_sessions": 3},
        "dhcp": {"enabled": False},
    }
    bench.desk.reconfigure(parse_config(raw).tftp)
    assert bench.desk.admission.max_sessions == 3
    bench.rrq("a.cfg")
    transfer = bench.open()
    assert transfer.session.timeout == 2.0 and transfer.session.retries == 4
