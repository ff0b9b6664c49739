"""ARP-probe quarantine is given back, oldest first, when the pool runs dry
(issue 16): one host that answered every probe cannot keep new phones out
after it has gone silent."""

from __future__ import annotations

import tomllib
from ipaddress import IPv4Address
from pathlib import Path

from netboot import metrics
from netboot.config import parse_config
from netboot.dhcp.engine import DhcpEngine
from tests.test_dhcp_engine import ACK, CONFIG, DISCOVER, OFFER, REQUEST, SERVER, Clock, ip, msg

SQUATTER = bytes.fromhex("02aabbccddee")


def probing_engine(tmp_path: Path) -> DhcpEngine:
    from netboot.state.leases import LeaseStore

    config = parse_config(tomllib.loads(CONFIG.replace("ping_check = false", "ping_check = true")))
    return DhcpEngine(
        config.dhcp, config.provisioning.url, LeaseStore(tmp_path), {"eth0": ip(SERVER)}
    )


def quarantine_whole_pool(eng: DhcpEngine, clock: Clock) -> list[int]:
    """A host answers the probe of every address the pool has (4: .100-.103)."""
    order = []
    for n in range(4):
        decision = eng.handle(msg(DISCOVER, f"00:30:4f:00:01:{n:02x}"), "eth0", clock.step(1))
        assert decision.probe is not None, decision.note
        eng.probe_result(decision.probe, SQUATTER, clock.now)
        order.append(decision.probe)
    return order


def test_dry_pool_reclaims_the_oldest_quarantine_first(tmp_path: Path) -> None:
    eng = probing_engine(tmp_path)
    clock = Clock()
    order = quarantine_whole_pool(eng, clock)
    assert sorted(order) == [ip(f"192.168.10.{n}") for n in range(100, 104)]
    assert all(eng.leases.get(a).state == "declined" for a in order)  # type: ignore[union-attr]
    before = metrics.DHCP_QUARANTINE_RECLAIMED._value.get()

    # Quarantine lasts decline_hold (600 s); 10 s later the pool is dry. A new
    # phone's DISCOVER gets the oldest quarantined address, probed again first.
    phone = "00:30:4f:00:02:01"
    decision = eng.handle(msg(DISCOVER, phone), "eth0", clock.step(10))
    assert decision.probe == order[0]
    assert metrics.DHCP_QUARANTINE_RECLAIMED._value.get() == before + 1
    # The squatter is gone: nobody answers; the phone gets it and keeps it.
    eng.probe_result(order[0], None, clock.now)
    offer = eng.handle(msg(DISCOVER, phone), "eth0", clock.now)
    assert offer.reply is not None and offer.reply.message.msg_type == OFFER, offer.note
    assert offer.reply.message.yiaddr == order[0]
    ack = eng.handle(
        msg(REQUEST, phone, requested=str(IPv4Address(order[0])), server=SERVER), "eth0", clock.now
    )
    assert ack.reply is not None and ack.reply.message.msg_type == ACK, ack.note
    lease = eng.leases.get(order[0])
    assert lease is not None and lease.mac == phone and lease.state == "bound"


def test_a_host_still_answering_is_quarantined_again_and_the_next_oldest_is_tried(
    tmp_path: Path,
) -> None:
    eng = probing_engine(tmp_path)
    clock = Clock()
    order = quarantine_whole_pool(eng, clock)
    phone = "00:30:4f:00:02:02"
    first = eng.handle(msg(DISCOVER, phone), "eth0", clock.step(5))
    assert first.probe == order[0]
    eng.probe_result(order[0], SQUATTER, clock.now)  # still there
    again = eng.handle(msg(DISCOVER, phone), "eth0", clock.now)
    assert again.probe == order[1]  # the next oldest, not the one just re-quarantined
    lease = eng.leases.get(order[0])
    assert lease is not None and lease.state == "declined" and lease.expires > clock.now


def test_no_reclaim_while_a_free_address_is_left(tmp_path: Path) -> None:
    eng = probing_engine(tmp_path)
    clock = Clock()
    decision = eng.handle(msg(DISCOVER, "00:30:4f:00:01:01"), "eth0", clock.step(1))
    assert decision.probe is not None
    eng.probe_result(decision.probe, SQUATTER, clock.now)
    nxt = eng.handle(msg(DISCOVER, "00:30:4f:00:01:02"), "eth0", clock.step(1))
    assert nxt.probe is not None and nxt.probe != decision.probe
    lease = eng.leases.get(decision.probe)
    assert lease is not None and lease.state == "declined"
