"""What moved out of the PnP transport: the ended-NOTIFY decision (engine
`ended`), the inventory refresh (pnp/known.py) and the send backlog
(pnp/sockets.py Sender)."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from pathlib import Path

from netboot.clock import SteppedClock
from netboot.config import ApplianceConfig, Config, PnpPolicy
from netboot.events import PnpTimedOut
from netboot.pnp.engine import TIMER_F, Expired, PnpResponder, Send, ended
from netboot.pnp.known import KnownMacs
from netboot.pnp.sockets import MAX_BACKLOG, Sender
from tests.test_pnp_codec import SNOM
from tests.test_pnp_engine import SNOM_MAC, site

PHONE = ("192.168.10.31", 5060)


def test_timer_f_on_a_stepped_clock_ends_the_notify_with_a_record() -> None:
    from netboot.pnp import codec

    clock = SteppedClock(500.0)
    engine = PnpResponder(site())
    engine.receive(codec.decode(SNOM), PHONE, clock.now(), lambda ip: SNOM_MAC)
    clock.advance(TIMER_F - 0.5)
    assert engine.poll(clock.now())[1] == []
    clock.advance(1.0)
    (gone,) = engine.poll(clock.now())[1]
    said = ended(gone)
    assert said.key == "expired"
    to = f"{gone.dest[0]}:{gone.dest[1]}"
    assert gone.mac == SNOM_MAC and gone.dest[0] == PHONE[0]
    assert said.record == PnpTimedOut(mac=SNOM_MAC, url=gone.url, to=to)
    assert "got no answer in 32 s" in said.line


def test_a_notify_without_mac_or_unreachable_records_nothing() -> None:
    anon = Expired(None, "http://x/", ("10.0.0.9", 5062))
    assert ended(anon).record is None
    assert "(no MAC)" in ended(anon).line
    icmp = ended(Expired("00:04:13:aa:bb:cc", "http://x/", ("10.0.0.9", 5062)), unreachable=True)
    assert (icmp.key, icmp.record) == ("unreachable", None)
    assert icmp.line.startswith("pnp: 10.0.0.9:5062 (00:04:13:aa:bb:cc) is unreachable")


def test_known_macs_reread_only_when_the_file_changes(tmp_path: Path) -> None:
    inv = tmp_path / "phones.csv"
    inv.write_text("00:04:13:aa:bb:cc,D785,1001,x,A\n")
    config = Config(appliance=ApplianceConfig(interface="eth0", state_dir=tmp_path))
    known = KnownMacs()
    assert known.refresh(config) is None  # policy "all": nothing read
    config = replace(
        config,
        pnp=replace(config.pnp, policy=PnpPolicy.KNOWN),
        phones=replace(config.phones, inventory=inv),
    )
    first = known.refresh(config)
    assert first is not None and first.macs == known.macs and len(known.macs) == 1
    assert known.refresh(config) is None  # unchanged
    inv.write_text(
        "00:04:13:aa:bb:cc,D785,1001,x,A\n00:04:13:aa:bb:cd,D785,1002,x,B\nnot-a-mac,D785,1003,x,C\n"
    )
    second = known.refresh(config)
    assert second is not None and len(second.macs) == 2 and second.macs == known.macs


class _FullSocket:
    """A socket whose buffer is full until `room` is set."""

    def __init__(self) -> None:
        self.room = False
        self.sent: list[bytes] = []
        self.r, self.w = socket.socketpair()

    def sendto(self, data: bytes, dest: tuple[str, int]) -> int:
        if not self.room:
            raise BlockingIOError
        self.sent.append(data)
        return len(data)

    def fileno(self) -> int:
        return self.w.fileno()


def test_sender_keeps_order_and_bounds_the_backlog() -> None:
    async def run() -> None:
        sock = _FullSocket()
        try:
            await fill_then_drain(sock)
        finally:
            sock.r.close()
            sock.w.close()

    async def fill_then_drain(sock: _FullSocket) -> None:
        out = Sender(sock)
        errors: list[Send] = []
        for i in range(MAX_BACKLOG + 5):
            out.send(Send(str(i).encode(), PHONE), lambda s, e: errors.append(s))
        assert len(out.backlog) == MAX_BACKLOG  # the oldest dropped
        sock.room = True
        out.send(Send(b"last", PHONE), lambda s, e: errors.append(s))  # after what waits
        for _ in range(100):
            if not out.backlog:
                break
            await asyncio.sleep(0)
        # 4102 queued behind a full buffer: the 6 oldest dropped, order kept.
        assert sock.sent[0] == b"6" and sock.sent[-1] == b"last"
        assert len(sock.sent) == MAX_BACKLOG and errors == []
        out.close()

    asyncio.run(run())


def test_check_warns_of_a_known_policy_nobody_can_pass(tmp_path: Path) -> None:
    from netboot.pnp.known import check

    config = Config(appliance=ApplianceConfig(interface="eth0", state_dir=tmp_path))
    known = replace(config, pnp=replace(config.pnp, policy=PnpPolicy.KNOWN))
    assert any("needs phones.inventory" in p for p in check(known))
    inv = tmp_path / "phones.csv"
    inv.write_text("not-a-mac,D785,1001,x,A\n")
    empty = replace(known, phones=replace(known.phones, inventory=inv))
    assert any("lists no valid phone" in p for p in check(empty))
    inv.write_text("00:04:13:aa:bb:cc,D785,1001,x,A\n")
    assert not any("pnp.policy" in p for p in check(empty))
    nobody = replace(config, pnp=replace(config.pnp, allowed_sources=()))
    assert check(nobody) == ["pnp.allowed_sources: empty, so no phone is answered"]
