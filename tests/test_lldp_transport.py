"""The LLDP service's receive path, timers and interface choice, on a stepped clock
without sockets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from netboot import metrics
from netboot.clock import SteppedClock
from netboot.config import ApplianceConfig, Config, DhcpConfig, DhcpScope, LldpConfig
from netboot.lldp.advertiser import LocalPort, Transmit
from netboot.lldp.codec import decode_lldp, encode_lldp
from netboot.lldp.engine import LldpEngine
from netboot.lldp.transport import LldpService
from netboot.netif import physical_interface, physical_interfaces
from netboot.registry import Registry
from tests.test_lldp_advertiser import CONFIG, PORT
from tests.test_lldp_codec import LLDPD_PHONE, LLDPD_SHUTDOWN, OURS, phone_cdp_query


def test_physical_interface_from_proc(tmp_path: Path) -> None:
    (tmp_path / "voice").write_text(
        "voice  VID: 100\t REORDER_HDR: 1  dev->priv_flags: 1001\n"
        "         total frames received            0\n"
        "Device: eth1\n"
    )
    assert physical_interface("voice", tmp_path) == "eth1"
    assert physical_interface("eth0.100", tmp_path) == "eth0"
    assert physical_interface("eth0", tmp_path) == "eth0"
    assert physical_interface("br-lan.x", tmp_path) == "br-lan.x"


def test_vlan_subinterfaces_share_their_parent() -> None:
    assert physical_interfaces(["eth0", "eth0.100", "eth0.200", "eth1.5"]) == ("eth0", "eth1")
    assert physical_interfaces(["eth0.100"]) == ("eth0",)


def test_config_interfaces_map_to_parent(tmp_path: Path) -> None:
    scope = DhcpScope(
        interface="eth0.100",
        subnet=IPv4Network("198.51.100.0/24"),
        pool_start=IPv4Address("198.51.100.10"),
        pool_end=IPv4Address("198.51.100.20"),
    )
    config = Config(
        appliance=ApplianceConfig(interface="eth0", state_dir=tmp_path),
        dhcp=DhcpConfig(scopes=(scope,)),
    )
    assert physical_interfaces(config.interfaces) == ("eth0",)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LldpService]:
    config = replace(CONFIG, appliance=replace(CONFIG.appliance, state_dir=tmp_path))
    registry = Registry(tmp_path)
    svc = LldpService(config, registry, SteppedClock())
    svc.engine = LldpEngine(config, {"eth0": PORT}, now=0.0)
    yield svc
    registry.close()


def bad_count() -> float:
    return metrics.REGISTRY.get_sample_value("netboot_bad_input_total", {"service": "lldp"}) or 0.0


def test_phone_inventory_recorded_once(service: LldpService) -> None:
    service.clock.advance(1.0 - service.clock.now())  # type: ignore[attr-defined]
    service.received("eth0", "lldp", LLDPD_PHONE)
    service.clock.advance(31.0 - service.clock.now())  # type: ignore[attr-defined]
    service.received("eth0", "lldp", LLDPD_PHONE)
    phone = service.registry.phone("00:30:4f:11:3a:f8")
    assert phone is not None
    assert (phone.vendor, phone.model, phone.firmware, phone.ip) == (
        "PLANET",
        "VIP-2140PT",
        "FW 2.10",
        "192.0.2.20",
    )
    events = service.registry.timeline("00:30:4f:11:3a:f8")
    assert [(e.service, e.kind) for e in events] == [("lldp", "neighbor")]
    detail = events[0].detail
    assert detail["serial_number"] == "SN0012345"
    assert detail["hardware_revision"] == "HW 1.2"
    assert detail["software_revision"] == "2.10.2.6887"
    assert detail["med_device_type"] == "endpoint class III"
    assert detail["system_name"] == "VIP-2140PT-desk12"


def test_new_med_endpoint_wakes_the_sender(service: LldpService) -> None:
    service.clock.advance(1.0 - service.clock.now())  # type: ignore[attr-defined]
    assert service.received("eth0", "lldp", LLDPD_PHONE).wake


def test_shutdown_recorded(service: LldpService) -> None:
    service.clock.advance(1.0 - service.clock.now())  # type: ignore[attr-defined]
    service.received("eth0", "lldp", LLDPD_PHONE)
    service.clock.advance(2.0 - service.clock.now())  # type: ignore[attr-defined]
    service.received("eth0", "lldp", LLDPD_SHUTDOWN)
    kinds = [e.kind for e in service.registry.timeline("00:30:4f:11:3a:f8")]
    assert kinds == ["neighbor", "neighbor-gone"]


def test_non_phone_neighbor_not_recorded(service: LldpService) -> None:
    switch = replace(OURS, mac="02:00:5e:00:00:99")
    service.clock.advance(1.0 - service.clock.now())  # type: ignore[attr-defined]
    service.received("eth0", "lldp", encode_lldp(switch))
    assert service.registry.phones() == []
    assert service.engine is not None and len(service.engine.advertiser.neighbors(1.0)) == 1


def test_own_frames_ignored(service: LldpService) -> None:
    assert service.engine is not None
    service.engine.own_macs.add(bytes.fromhex("02005e000001"))
    service.clock.advance(1.0 - service.clock.now())  # type: ignore[attr-defined]
    service.received("eth0", "lldp", encode_lldp(OURS))
    assert service.engine.advertiser.neighbors(1.0) == []


def test_bad_frames_counted_and_dropped(service: LldpService) -> None:
    before = bad_count()
    service.clock.advance(1.0 - service.clock.now())  # type: ignore[attr-defined]
    service.received("eth0", "lldp", LLDPD_PHONE[:100])
    service.clock.advance(1.0 - service.clock.now())  # type: ignore[attr-defined]
    service.received("eth0", "cdp", phone_cdp_query()[:40])
    assert bad_count() == before + 2
    assert service.registry.phones() == []
    # Not CDP at all (STP on the 802.2 socket): silently ignored, not bad input.
    service.clock.advance(1.0 - service.clock.now())  # type: ignore[attr-defined]
    service.received("eth0", "cdp", bytes.fromhex("0180c2000000") + bytes(50))
    assert bad_count() == before + 2


def test_cdp_phone_recorded_and_answered(service: LldpService) -> None:
    service.clock.advance(5.0 - service.clock.now())  # type: ignore[attr-defined]
    assert service.received("eth0", "cdp", phone_cdp_query()).wake
    phone = service.registry.phone("00:11:22:33:44:55")
    assert phone is not None
    assert (phone.vendor, phone.model, phone.firmware) == (
        "Cisco",
        "Cisco IP Phone 7841",
        "sip78xx.14-1-1MN-29",
    )


def test_frames_are_built_once(service: LldpService) -> None:
    assert service.engine is not None
    first = service.engine.frame(Transmit("eth0", "lldp", 120))
    assert service.engine.frame(Transmit("eth0", "lldp", 120)) is first
    assert service.engine.frame(Transmit("eth0", "lldp", 0)) != first
    assert len(first) >= 60


def test_lldp_config_keys_reach_the_frame(tmp_path: Path) -> None:
    config = Config(
        appliance=ApplianceConfig(interface="eth0", state_dir=tmp_path, name="x"),
        lldp=LldpConfig(voice_vlan=321, priority=3, dscp=34, signaling_dscp=24),
    )
    registry = Registry(tmp_path)
    try:
        engine = LldpEngine(config, {"eth0": LocalPort("eth0", "02:00:5e:00:00:01", 2)}, 0.0)
        n = decode_lldp(engine.frame(Transmit("eth0", "lldp", 120)))
        assert [(p.app_type, p.vlan, p.priority, p.dscp) for p in n.policies] == [
            (1, 321, 3, 34),
            (2, 321, 3, 24),
        ]
    finally:
        registry.close()


class _Wire:
    """Stands in for a packet socket: keeps what was sent, with the clock's time."""

    def __init__(self, clock: SteppedClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, bytes]] = []

    def send(self, frame: bytes) -> int:
        self.sent.append((self.clock.now(), frame))
        return len(frame)


def test_timers_send_fast_start_then_the_interval(service: LldpService) -> None:
    """802.1AB txFastInit on a stepped clock: a new MED endpoint gets 4 LLDPDUs
    1 s apart, then the normal interval (30 s in CONFIG)."""
    clock = service.clock
    assert isinstance(clock, SteppedClock)
    wire = _Wire(clock)
    service._sockets[("eth0", "lldp")] = wire  # type: ignore[assignment]
    service._tick()  # what serve() does first
    assert [t for t, _ in wire.sent] == [0.0]
    clock.advance(10.0)
    service.received("eth0", "lldp", LLDPD_PHONE)  # new endpoint at t=10
    clock.advance(60.0)
    times = [t for t, _ in wire.sent]
    assert times == [0.0, 10.0, 11.0, 12.0, 13.0, 43.0]
    assert all(decode_lldp(f).ttl == 120 for _, f in wire.sent)
    assert clock.pending == 1  # one timer armed, never one per wake-up
