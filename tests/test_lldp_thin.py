"""What moved out of the LLDP transport into the engine: the log lines of a
frame (a phone seen, a bad frame, a full table), the policy line and the
advertised address, on a stepped clock."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

from netboot.clock import SteppedClock
from netboot.lldp.engine import LldpEngine, advertised_address, describe
from tests.test_lldp_advertiser import CONFIG, PORT
from tests.test_lldp_codec import LLDPD_PHONE


def test_a_phone_seen_gives_one_info_line_and_a_bad_frame_a_warning() -> None:
    clock = SteppedClock()
    engine = LldpEngine(CONFIG, {"eth0": PORT}, clock.now())
    clock.advance(1.0)
    seen = engine.received("eth0", "lldp", LLDPD_PHONE, clock.now())
    assert seen.record is not None and seen.line is not None
    assert seen.line.startswith("lldp: 00:30:4f:11:3a:f8 on eth0: ")
    assert seen.warnings == ()
    clock.advance(1.0)
    again = engine.received("eth0", "lldp", LLDPD_PHONE, clock.now())
    assert (again.record, again.line) == (None, None)  # unchanged: nothing to say
    bad = engine.received("eth0", "lldp", LLDPD_PHONE[:100], clock.now())
    assert bad.bad is not None and bad.warnings == (("decode", f"lldp: {bad.bad}"),)


def test_a_full_table_warns_with_its_size() -> None:
    config = replace(CONFIG, lldp=replace(CONFIG.lldp, max_neighbors=1))
    clock = SteppedClock()
    ports = {"eth0": PORT, "eth1": replace(PORT, name="eth1")}
    engine = LldpEngine(config, ports, clock.now())
    clock.advance(1.0)
    assert engine.received("eth0", "lldp", LLDPD_PHONE, clock.now()).warnings == ()
    clock.advance(1.0)
    out = engine.received("eth1", "lldp", LLDPD_PHONE, clock.now())  # a second neighbour
    assert out.evicted
    ((key, line),) = out.warnings
    assert key == "evicted" and "neighbour table full (1)" in line


def test_policy_line_and_advertised_address() -> None:
    assert describe(replace(CONFIG, lldp=replace(CONFIG.lldp, voice_vlan=None))).startswith(
        "no voice VLAN"
    )
    assert describe(CONFIG).startswith(f"voice VLAN {CONFIG.lldp.voice_vlan} ")
    seen: list[str] = []

    def lookup(name: str) -> IPv4Address | None:
        seen.append(name)
        return IPv4Address("10.9.9.9") if name == CONFIG.appliance.interface else None

    assert advertised_address(CONFIG, "eth7", lookup) == (
        CONFIG.server_address("eth7") or IPv4Address("10.9.9.9")
    )
