"""DHCP engine decisions (RFC 2131), table-driven, on a stepped clock.

No sockets: each step hands the engine a message and a time and checks the
decision it takes and what ends up in the lease store.
"""

from __future__ import annotations

import struct
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from netboot.config import parse_config
from netboot.dhcp import codec
from netboot.dhcp.codec import DhcpMessage
from netboot.dhcp.engine import Decision, DhcpEngine, Origin, Reply
from netboot.events import LeaseAcked, LeaseDeclined, LeaseReleased, PoolExhausted
from netboot.state.leases import LeaseStore
from netboot.wire import parse_mac

SERVER = "192.168.10.2"
CONFIG = """
[appliance]
interface = "eth0"
address = "192.168.10.2"
state_dir = "/tmp/unused"
[provisioning]
url = "http://192.168.10.2/$mac.cfg"
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.103"
router = "192.168.10.1"
dns = ["192.168.10.1"]
lease_time = 1000
url_options = [66, 160]
ping_check = false
offer_hold = 30
decline_hold = 600
[[dhcp.class]]
name = "planet"
vendor = "PLANET"
url_options = [66, 43, 200]
options = { 42 = "192.168.10.1" }
[[dhcp.class]]
name = "yealink-by-oui"
mac_prefix = "80:5e:c0"
url = "tftp://192.168.10.2/yealink/"
[[dhcp.host]]
mac = "00:30:4f:00:00:99"
ip = "192.168.10.20"
"""

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = 1, 2, 3, 4, 5, 6, 7, 8


def ip(text: str) -> int:
    return int(IPv4Address(text))


def make_engine(tmp_path: Path, extra: str = "", authoritative: bool = True) -> DhcpEngine:
    text = CONFIG + extra
    if not authoritative:
        text = text.replace("ping_check = false", "ping_check = false\nauthoritative = false")
    config = parse_config(tomllib.loads(text))
    leases = LeaseStore(tmp_path)
    return DhcpEngine(config.dhcp, config.provisioning.url, leases, {"eth0": ip(SERVER)})


def msg(
    kind: int,
    mac: str = "00:30:4f:00:00:01",
    *,
    requested: str | None = None,
    server: str | None = None,
    ciaddr: str | None = None,
    giaddr: str | None = None,
    vendor: bytes | None = None,
    prl: bytes | None = None,
    flags: int = 0,
    extra: dict[int, bytes] | None = None,
) -> DhcpMessage:
    options: dict[int, bytes] = {53: bytes((kind,))}
    if requested:
        options[50] = IPv4Address(requested).packed
    if server:
        options[54] = IPv4Address(server).packed
    if vendor is not None:
        options[60] = vendor
    if prl is not None:
        options[55] = prl
    options.update(extra or {})
    return DhcpMessage(
        op=codec.BOOTREQUEST,
        xid=0x1234,
        chaddr=parse_mac(mac),
        flags=flags,
        ciaddr=ip(ciaddr) if ciaddr else 0,
        giaddr=ip(giaddr) if giaddr else 0,
        options=options,
    )


@dataclass
class Clock:
    now: float = 1_000_000.0

    def step(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DhcpEngine]:
    eng = make_engine(tmp_path)
    yield eng
    eng.leases.close()


def reply_type(decision: Decision) -> int | None:
    return None if decision.reply is None else decision.reply.message.msg_type


def reply_of(decision: Decision) -> Reply:
    """The decision's reply, failing the test (with the engine's note) if there is none."""
    assert decision.reply is not None, decision.note
    return decision.reply


def dora(eng: DhcpEngine, mac: str, now: float, **kw: Any) -> str:
    offer = eng.handle(msg(DISCOVER, mac, **kw), "eth0", now)
    assert reply_type(offer) == OFFER, offer.note
    offered = str(IPv4Address(reply_of(offer).message.yiaddr))
    ack = eng.handle(msg(REQUEST, mac, requested=offered, server=SERVER, **kw), "eth0", now)
    assert reply_type(ack) == ACK, ack.note
    return offered


# ------------------------------------------------------------------ tables

# Each row: a list of (seconds to step, message, expected reply type, expected
# yiaddr or None). The MACs: A and B are plain clients, R holds a reservation.
A, B, R = "00:30:4f:00:00:01", "00:30:4f:00:00:02", "00:30:4f:00:00:99"
SCENARIOS: dict[str, list[tuple[float, DhcpMessage, int | None, str | None]]] = {
    "dora": [
        (0, msg(DISCOVER, A), OFFER, "192.168.10.100"),
        (1, msg(REQUEST, A, requested="192.168.10.100", server=SERVER), ACK, "192.168.10.100"),
    ],
    "reservation": [
        (0, msg(DISCOVER, R), OFFER, "192.168.10.20"),
        (0, msg(REQUEST, R, requested="192.168.10.20", server=SERVER), ACK, "192.168.10.20"),
        # The reserved client may not take a pool address instead.
        (0, msg(REQUEST, R, requested="192.168.10.101"), NAK, None),
    ],
    "reserved address never goes to another client": [
        (0, msg(REQUEST, A, requested="192.168.10.20"), NAK, None),
    ],
    "client chose another server": [
        (0, msg(DISCOVER, A), OFFER, "192.168.10.100"),
        (0, msg(REQUEST, A, requested="192.168.10.100", server="192.168.10.3"), None, None),
        # Its hold is dropped: B may take that address now.
        (0, msg(REQUEST, B, requested="192.168.10.100", server=SERVER), ACK, "192.168.10.100"),
    ],
    "offer held for its client, then released after offer_hold": [
        (0, msg(DISCOVER, A), OFFER, "192.168.10.100"),
        (1, msg(DISCOVER, B), OFFER, "192.168.10.101"),
        (1, msg(REQUEST, B, requested="192.168.10.100", server=SERVER), NAK, None),
    ],
    "init-reboot on a wrong network is NAKed": [
        (0, msg(REQUEST, A, requested="10.9.9.9"), NAK, None),
    ],
    "init-reboot with own lease is ACKed": [
        (0, msg(DISCOVER, A), OFFER, "192.168.10.100"),
        (0, msg(REQUEST, A, requested="192.168.10.100", server=SERVER), ACK, "192.168.10.100"),
        (100, msg(REQUEST, A, requested="192.168.10.100"), ACK, "192.168.10.100"),
    ],
    "renewing unicast keeps the address": [
        (0, msg(DISCOVER, A), OFFER, "192.168.10.100"),
        (0, msg(REQUEST, A, requested="192.168.10.100", server=SERVER), ACK, "192.168.10.100"),
        (500, msg(REQUEST, A, ciaddr="192.168.10.100"), ACK, "192.168.10.100"),
    ],
    "renewing someone else's address is NAKed": [
        (0, msg(DISCOVER, A), OFFER, "192.168.10.100"),
        (0, msg(REQUEST, A, requested="192.168.10.100", server=SERVER), ACK, "192.168.10.100"),
        (0, msg(REQUEST, B, ciaddr="192.168.10.100"), NAK, None),
    ],
    "REQUEST with nothing to go on is ignored": [
        (0, msg(REQUEST, A), None, None),
    ],
    "INFORM gets options but no address": [
        (0, msg(INFORM, A, ciaddr="192.168.10.50"), ACK, "0.0.0.0"),
    ],
    "unknown message type is ignored": [
        (0, msg(13, A), None, None),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(tmp_path: Path, name: str) -> None:
    eng = make_engine(tmp_path)
    clock = Clock()
    try:
        for i, (step, message, want, yiaddr) in enumerate(SCENARIOS[name]):
            decision = eng.handle(message, "eth0", clock.step(step))
            assert reply_type(decision) == want, f"step {i}: {decision.note}"
            if yiaddr is not None:
                assert str(IPv4Address(reply_of(decision).message.yiaddr)) == yiaddr, f"step {i}"
    finally:
        eng.leases.close()


def test_pool_exhaustion_then_expiry_frees_addresses(engine: DhcpEngine) -> None:
    clock = Clock()
    macs = [f"00:30:4f:00:01:{i:02x}" for i in range(4)]
    got = [dora(engine, mac, clock.now) for mac in macs]
    assert sorted(got) == [f"192.168.10.{n}" for n in range(100, 104)]
    late = "00:30:4f:00:01:ff"
    full = engine.handle(msg(DISCOVER, late), "eth0", clock.step(10))
    assert full.reply is None and isinstance(full.event, PoolExhausted)
    # One second before the leases end: still full. One after: an address again.
    assert engine.handle(msg(DISCOVER, late), "eth0", clock.step(1000 - 12)).reply is None
    again = engine.handle(msg(DISCOVER, late), "eth0", clock.step(2))
    assert reply_type(again) == OFFER
    assert str(IPv4Address(reply_of(again).message.yiaddr)) in got


def test_a_returning_client_gets_its_previous_address(engine: DhcpEngine) -> None:
    clock = Clock()
    first = dora(engine, A, clock.now)
    dora(engine, B, clock.now)
    # A's lease lapsed long ago; its address is still the one it gets back.
    offer = engine.handle(msg(DISCOVER, A), "eth0", clock.step(5000))
    assert str(IPv4Address(reply_of(offer).message.yiaddr)) == first


def test_lease_times_t1_t2(engine: DhcpEngine) -> None:
    clock = Clock()
    dora(engine, A, clock.now)
    ack = engine.handle(msg(REQUEST, A, ciaddr="192.168.10.100"), "eth0", clock.step(500))
    opts = reply_of(ack).message.options
    assert struct.unpack("!I", opts[51])[0] == 1000
    assert struct.unpack("!I", opts[58])[0] == 500  # T1 = 0.5 × lease
    assert struct.unpack("!I", opts[59])[0] == 875  # T2 = 0.875 × lease
    lease = engine.leases.get(ip("192.168.10.100"))
    assert lease is not None and lease.expires == clock.now + 1000


def test_offer_hold_expires(engine: DhcpEngine) -> None:
    clock = Clock()
    engine.handle(msg(DISCOVER, A), "eth0", clock.now)
    second = engine.handle(msg(DISCOVER, B), "eth0", clock.step(29))
    assert str(IPv4Address(reply_of(second).message.yiaddr)) == "192.168.10.101"
    engine.expire(clock.step(2))  # A's hold (30 s) has lapsed
    third = engine.handle(msg(DISCOVER, "00:30:4f:00:00:03"), "eth0", clock.now)
    assert str(IPv4Address(reply_of(third).message.yiaddr)) in ("192.168.10.100", "192.168.10.102")
    # A's REQUEST for its lapsed offer is still granted if nobody took the address.
    late = engine.handle(
        msg(REQUEST, A, requested="192.168.10.100", server=SERVER), "eth0", clock.now
    )
    want = NAK if reply_of(third).message.yiaddr == ip("192.168.10.100") else ACK
    assert reply_type(late) == want


def test_decline_quarantines_the_address(engine: DhcpEngine) -> None:
    clock = Clock()
    got = dora(engine, A, clock.now)
    decision = engine.handle(msg(DECLINE, A, requested=got, server=SERVER), "eth0", clock.now)
    assert isinstance(decision.event, LeaseDeclined) and decision.reply is None
    offer = engine.handle(msg(DISCOVER, A), "eth0", clock.step(1))
    assert str(IPv4Address(reply_of(offer).message.yiaddr)) != got
    lease = engine.leases.get(ip(got))
    assert lease is not None and lease.state == "declined"
    assert lease.expires == clock.now - 1 + 600


def test_decline_for_an_address_not_held_changes_nothing(engine: DhcpEngine) -> None:
    clock = Clock()
    got = dora(engine, A, clock.now)
    decision = engine.handle(msg(DECLINE, B, requested=got, server=SERVER), "eth0", clock.now)
    assert decision.event is None
    lease = engine.leases.get(ip(got))
    assert lease is not None and lease.state == "bound" and lease.mac == A


def test_release_frees_the_address(engine: DhcpEngine) -> None:
    clock = Clock()
    got = dora(engine, A, clock.now)
    assert engine.handle(msg(RELEASE, B, ciaddr=got), "eth0", clock.now).event is None
    released = engine.handle(msg(RELEASE, A, ciaddr=got), "eth0", clock.now).event
    assert isinstance(released, LeaseReleased)
    lease = engine.leases.get(ip(got))
    assert lease is not None and lease.state == "released"
    # The address is free again for another client at once (after the unused ones).
    for mac in ("00:30:4f:00:02:01", "00:30:4f:00:02:02", "00:30:4f:00:02:03"):
        dora(engine, mac, clock.now)
    offer = engine.handle(msg(DISCOVER, B), "eth0", clock.now)
    assert str(IPv4Address(reply_of(offer).message.yiaddr)) == got


def test_not_authoritative_stays_silent_on_foreign_requests(tmp_path: Path) -> None:
    eng = make_engine(tmp_path, authoritative=False)
    try:
        decision = eng.handle(msg(REQUEST, A, requested="10.9.9.9"), "eth0", 0.0)
        assert decision.reply is None
    finally:
        eng.leases.close()


@pytest.mark.parametrize(
    ("mac", "vendor", "cls", "url_codes", "url"),
    [
        (A, b"PLANET VIP-2140PT", "planet", {66, 43, 200}, "http://192.168.10.2/$mac.cfg"),
        (A, b"Fanvil X4", None, {66, 160}, "http://192.168.10.2/$mac.cfg"),
        (
            "80:5e:c0:aa:bb:cc",
            b"yealink",
            "yealink-by-oui",
            {66, 160},
            "tftp://192.168.10.2/yealink/",
        ),
        ("80:5e:c0:aa:bb:cc", b"PLANET", "planet", {66, 43, 200}, "http://192.168.10.2/$mac.cfg"),
    ],
    ids=["vendor", "no-class", "oui", "first-match-wins"],
)
def test_class_match_and_url_options(
    engine: DhcpEngine, mac: str, vendor: bytes, cls: str | None, url_codes: set[int], url: str
) -> None:
    offered = dora(engine, mac, 0.0, vendor=vendor)
    ack = engine.handle(
        msg(REQUEST, mac, requested=offered, server=SERVER, vendor=vendor), "eth0", 1.0
    )
    assert isinstance(ack.event, LeaseAcked) and ack.event.class_name == cls
    opts = reply_of(ack).message.options
    for code in url_codes:
        assert opts[code] == url.encode(), code
    for code in {66, 43, 160, 200} - url_codes:
        assert code not in opts, code
    assert (42 in opts) == (cls == "planet")


def test_relay_agent_information_is_echoed_and_reply_goes_to_relay(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    try:
        agent = b"\x01\x04port"
        d = eng.handle(msg(DISCOVER, A, giaddr="192.168.10.1", extra={82: agent}), "eth0", 0.0)
        assert reply_of(d).message.options[82] == agent
        assert reply_of(d).route.kind == "relay" and reply_of(d).route.port == 67
        assert reply_of(d).route.ip == ip("192.168.10.1")
    finally:
        eng.leases.close()


@pytest.mark.parametrize(
    ("kw", "kind", "dest"),
    [
        ({}, "l2", "192.168.10.100"),
        ({"flags": codec.BROADCAST_FLAG}, "broadcast", "255.255.255.255"),
        ({"giaddr": "192.168.10.1"}, "relay", "192.168.10.1"),
    ],
    ids=["unicast-to-chaddr", "broadcast-bit", "relay"],
)
def test_reply_routing_rfc2131_4_1(
    engine: DhcpEngine, kw: dict[str, Any], kind: str, dest: str
) -> None:
    d = engine.handle(msg(DISCOVER, A, **kw), "eth0", 0.0)
    assert reply_of(d).route.kind == kind
    assert reply_of(d).route.ip == ip(dest)


def test_renewal_is_unicast_to_ciaddr(engine: DhcpEngine) -> None:
    got = dora(engine, A, 0.0)
    d = engine.handle(msg(REQUEST, A, ciaddr=got), "eth0", 10.0)
    assert reply_of(d).route.kind == "unicast" and reply_of(d).route.ip == ip(got)


def test_nak_is_broadcast_with_a_reason(engine: DhcpEngine) -> None:
    d = engine.handle(msg(REQUEST, A, requested="10.9.9.9"), "eth0", 0.0)
    assert reply_of(d).route.kind == "broadcast"
    assert b"not on this network" in reply_of(d).message.options[56]
    assert reply_of(d).message.yiaddr == 0


def test_small_client_buffer_trims_unrequested_options(tmp_path: Path) -> None:
    big = ", ".join(f'{c} = "{"x" * 200}"' for c in range(224, 228))
    text_extra = f"\n[[dhcp.class]]\nname = 'fat'\nvendor = 'FAT'\noptions = {{ {big} }}\n"
    engine = make_engine(tmp_path, extra=text_extra)
    try:
        prl = bytes([1, 3, 6, 225])
        d = engine.handle(msg(DISCOVER, A, vendor=b"FAT", prl=prl), "eth0", 0.0)
        opts = reply_of(d).message.options
        assert 225 in opts  # asked for: kept
        assert 66 in opts and 160 in opts  # the URL options are never trimmed
        assert len(codec.encode(reply_of(d).message)) <= 576 - 28
        # With a large buffer (option 57) everything fits.
        d = engine.handle(
            msg(DISCOVER, B, vendor=b"FAT", prl=prl, extra={57: struct.pack("!H", 1500)}),
            "eth0",
            0.0,
        )
        assert {224, 225, 226, 227} <= set(reply_of(d).message.options)
    finally:
        engine.leases.close()


def test_not_ethernet_is_ignored(engine: DhcpEngine) -> None:
    m = DhcpMessage(op=codec.BOOTREQUEST, xid=1, htype=6, options={53: b"\x01"})
    assert engine.handle(m, "eth0", 0.0).reply is None
    reply = DhcpMessage(op=codec.BOOTREPLY, xid=1, options={53: b"\x02"})
    assert engine.handle(reply, "eth0", 0.0).reply is None


def test_unknown_interface_and_foreign_relay_are_ignored(engine: DhcpEngine) -> None:
    assert engine.handle(msg(DISCOVER, A), "eth9", 0.0).reply is None
    assert engine.handle(msg(DISCOVER, A, giaddr="10.77.0.1"), "eth0", 0.0).reply is None


# ---------------------------------------------------------------- hostile segment


def test_inform_only_for_an_address_inside_the_scope(engine: DhcpEngine) -> None:
    """INFORM with ciaddr 8.8.8.8 (issue 16) was answered unicast through the
    default route: a reflector. Inside the scope it is still answered."""
    off = engine.handle(msg(INFORM, A, ciaddr="8.8.8.8"), "eth0", 0.0)
    assert off.reply is None and off.limited == "inform-off-scope"
    relayed = engine.handle(msg(INFORM, A, ciaddr="8.8.8.8", giaddr="192.168.10.1"), "eth0", 0.0)
    assert relayed.reply is None and relayed.limited == "inform-off-scope"
    ok = engine.handle(msg(INFORM, A, ciaddr="192.168.10.50"), "eth0", 0.0)
    assert reply_of(ok).route.ip == ip("192.168.10.50")


def test_a_source_off_the_segment_gets_nothing(engine: DhcpEngine) -> None:
    origin = Origin(A, ip("10.1.2.3"))
    decision = engine.handle(msg(DISCOVER, A), "eth0", 0.0, origin)
    assert decision.reply is None and decision.limited == "off-segment"
    assert engine.offers == {}
    for source in ("0.0.0.0", "192.168.10.77"):  # unconfigured, or on the segment
        decision = engine.handle(msg(DISCOVER, A), "eth0", 0.0, Origin(A, ip(source)))
        assert reply_type(decision) == OFFER


def test_a_foreign_renewal_still_gets_its_broadcast_nak(engine: DhcpEngine) -> None:
    """A phone moved from another network renews its old address from it: no
    unicast anywhere, but the NAK (broadcast on the segment) it needs at once."""
    m = msg(REQUEST, A, ciaddr="10.9.9.9")
    decision = engine.handle(m, "eth0", 0.0, Origin(A, ip("10.9.9.9")))
    assert reply_type(decision) == NAK and reply_of(decision).route.kind == "broadcast"
    # A DISCOVER naming a foreign ciaddr would be answered to it: nothing.
    odd = engine.handle(msg(DISCOVER, A, ciaddr="8.8.8.8"), "eth0", 0.0)
    assert odd.reply is None and odd.limited == "off-scope"


def test_require_chaddr_match(tmp_path: Path) -> None:
    text = CONFIG.replace("ping_check = false", "ping_check = false\nrequire_chaddr_match = true")
    config = parse_config(tomllib.loads(text))
    eng = DhcpEngine(config.dhcp, "", LeaseStore(tmp_path), {"eth0": ip(SERVER)})
    nic = "02:00:00:00:00:01"
    spoofed = eng.handle(msg(DISCOVER, A), "eth0", 0.0, Origin(nic, 0))
    assert spoofed.reply is None and spoofed.limited == "chaddr-mismatch"
    own = eng.handle(msg(DISCOVER, A), "eth0", 0.0, Origin(A, 0))
    assert reply_type(own) == OFFER
    # Through a relay the Ethernet source is the relay's: not checked.
    relayed = eng.handle(msg(DISCOVER, B, giaddr="192.168.10.1"), "eth0", 0.0, Origin(nic, 0))
    assert reply_type(relayed) == OFFER
    eng.leases.close()


def test_max_clients_per_source(tmp_path: Path) -> None:
    text = CONFIG.replace("ping_check = false", "ping_check = false\nmax_clients_per_source = 2")
    config = parse_config(tomllib.loads(text))
    eng = DhcpEngine(config.dhcp, "", LeaseStore(tmp_path), {"eth0": ip(SERVER)})
    clock = Clock()
    nic = Origin("02:00:00:00:00:01", 0)
    macs = [f"00:30:4f:00:02:{i:02x}" for i in range(3)]
    assert reply_type(eng.handle(msg(DISCOVER, macs[0]), "eth0", clock.now, nic)) == OFFER
    assert reply_type(eng.handle(msg(DISCOVER, macs[1]), "eth0", clock.now, nic)) == OFFER
    third = eng.handle(msg(DISCOVER, macs[2]), "eth0", clock.now, nic)
    assert third.reply is None and third.limited == "clients-per-source"
    # A client it already has is still served; another NIC is not affected.
    assert reply_type(eng.handle(msg(DISCOVER, macs[0]), "eth0", clock.step(1), nic)) == OFFER
    other = Origin("02:00:00:00:00:02", 0)
    assert reply_type(eng.handle(msg(DISCOVER, macs[2]), "eth0", clock.now, other)) == OFFER
    # Per relay port (option 82 circuit id): two ports, two budgets.
    port1 = {82: bytes([1, 2, 0, 1])}
    port2 = {82: bytes([1, 2, 0, 2])}
    relay = Origin("02:00:00:00:00:fe", ip("192.168.10.1"))
    for i, extra in enumerate((port1, port1, port2)):
        m = msg(DISCOVER, f"00:30:4f:00:03:{i:02x}", giaddr="192.168.10.1", extra=extra)
        eng.handle(m, "eth0", clock.now, relay)
    m = msg(DISCOVER, "00:30:4f:00:03:09", giaddr="192.168.10.1", extra=port1)
    assert eng.handle(m, "eth0", clock.now, relay).limited == "clients-per-source"
    # After a lease time, the old clients no longer count.
    late = eng.handle(msg(DISCOVER, macs[2]), "eth0", clock.step(1001), nic)
    assert late.limited is None
    eng.leases.close()


def test_a_full_pool_of_unanswered_offers_gives_the_oldest_back(engine: DhcpEngine) -> None:
    """A DISCOVER flood from random MACs holds every address for offer_hold:
    a real phone then takes the offer made longest ago."""
    clock = Clock()
    flood = [f"02:00:00:00:10:{i:02x}" for i in range(4)]
    for mac in flood:
        assert reply_type(engine.handle(msg(DISCOVER, mac), "eth0", clock.step(1))) == OFFER
    assert len(engine.offers) == 4
    phone = engine.handle(msg(DISCOVER, A), "eth0", clock.step(1))
    first = engine.offer_by_mac.get((flood[0], ip("192.168.10.0")))
    assert first is None  # the oldest offer went
    assert str(IPv4Address(reply_of(phone).message.yiaddr)) == "192.168.10.100"
    assert engine.reclaimed == 1 and len(engine.offers) == 4
    ack = engine.handle(
        msg(REQUEST, A, requested="192.168.10.100", server=SERVER), "eth0", clock.step(0.1)
    )
    assert reply_type(ack) == ACK
    # Leases are never taken back, only offers: with every address leased, nothing.
    for mac in flood[1:]:
        addr = engine.offer_by_mac[(mac, ip("192.168.10.0"))]
        m = msg(REQUEST, mac, requested=str(IPv4Address(addr)), server=SERVER)
        assert reply_type(engine.handle(m, "eth0", clock.now)) == ACK
    assert engine.handle(msg(DISCOVER, B), "eth0", clock.step(1)).reply is None


def test_expired_offers_leave_no_index_behind(engine: DhcpEngine) -> None:
    clock = Clock()
    for i in range(50):
        engine.handle(msg(DISCOVER, f"02:00:00:00:20:{i:02x}"), "eth0", clock.step(1))
    engine.expire(clock.step(100))
    assert engine.offers == {} and engine.offer_by_mac == {}


def test_reply_templates_encode_as_the_options_do_and_follow_the_family(
    engine: DhcpEngine,
) -> None:
    """A reply built from a template is byte for byte the reply encoded from
    its options; two families get two templates; a relay's option 82 is
    echoed per request (no template)."""
    plain_a = engine.handle(msg(DISCOVER, "02:00:00:00:00:01"), "eth0", 0.0).reply
    plain_b = engine.handle(msg(DISCOVER, "02:00:00:00:00:02"), "eth0", 0.0).reply
    planet = engine.handle(msg(DISCOVER, "02:00:00:00:00:03", vendor=b"PLANET"), "eth0", 0.0).reply
    for reply in (plain_a, plain_b, planet):
        assert reply is not None and reply.options_wire is not None
        assert reply.options_wire == codec.encode_options(reply.message.options)
        assert codec.encode(reply.message, options_wire=reply.options_wire) == codec.encode(
            reply.message
        )
    assert plain_a is not None and plain_b is not None and planet is not None
    assert plain_a.options_wire is plain_b.options_wire  # built once
    assert planet.options_wire != plain_a.options_wire  # the class's own options
    assert planet.message.options[42] == IPv4Address("192.168.10.1").packed
    agent = bytes([1, 2, 0, 7])
    relayed = engine.handle(
        msg(DISCOVER, "02:00:00:00:00:04", giaddr="192.168.10.1", extra={82: agent}), "eth0", 0.0
    ).reply
    assert relayed is not None and relayed.options_wire is None
    assert relayed.message.options[82] == agent
    engine.reconfigure(engine.config, "http://192.168.10.2/other/$mac.cfg")
    again = engine.handle(msg(DISCOVER, "02:00:00:00:00:05"), "eth0", 0.0).reply
    assert again is not None and again.options_wire != plain_a.options_wire  # new URL, new template
    assert b"other" in (again.options_wire or b"")
