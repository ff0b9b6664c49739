"""The transport's receive path and interface choice, without sockets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from netboot import metrics
from netboot.config import ApplianceConfig, Config, DhcpConfig, DhcpScope, LldpConfig
from netboot.lldp.advertiser import Advertiser, LocalPort, Transmit
from netboot.lldp.codec import decode_lldp, encode_lldp
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
    svc = LldpService(config, registry)
    svc.ports["eth0"] = PORT
    svc.advertiser = Advertiser(config.lldp, ("eth0",), now=0.0)
    yield svc
    registry.close()


def bad_count() -> float:
    return metrics.REGISTRY.get_sample_value("netboot_bad_input_total", {"service": "lldp"}) or 0.0


def test_phone_inventory_recorded_once(service: LldpService) -> None:
    service.received("eth0", "lldp", LLDPD_PHONE, now=1.0)
    service.received("eth0", "lldp", LLDPD_PHONE, now=31.0)
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
    assert not service._wake.is_set()
    service.received("eth0", "lldp", LLDPD_PHONE, now=1.0)
    assert service._wake.is_set()


def test_shutdown_recorded(service: LldpService) -> None:
    service.received("eth0", "lldp", LLDPD_PHONE, now=1.0)
    service.received("eth0", "lldp", LLDPD_SHUTDOWN, now=2.0)
    kinds = [e.kind for e in service.registry.timeline("00:30:4f:11:3a:f8")]
    assert kinds == ["neighbor", "neighbor-gone"]


def test_non_phone_neighbor_not_recorded(service: LldpService) -> None:
    switch = replace(OURS, mac="02:00:5e:00:00:99")
    service.received("eth0", "lldp", encode_lldp(switch), now=1.0)
    assert service.registry.phones() == []
    assert service.advertiser is not None and len(service.advertiser.neighbors(1.0)) == 1


def test_own_frames_ignored(service: LldpService) -> None:
    service._own_macs.add(bytes.fromhex("02005e000001"))
    service.received("eth0", "lldp", encode_lldp(OURS), now=1.0)
    assert service.advertiser is not None and service.advertiser.neighbors(1.0) == []


def test_bad_frames_counted_and_dropped(service: LldpService) -> None:
    before = bad_count()
    service.received("eth0", "lldp", LLDPD_PHONE[:100], now=1.0)
    service.received("eth0", "cdp", phone_cdp_query()[:40], now=1.0)
    assert bad_count() == before + 2
    assert service.registry.phones() == []
    # Not CDP at all (STP on the 802.2 socket): silently ignored, not bad input.
    service.received("eth0", "cdp", bytes.fromhex("0180c2000000") + bytes(50), now=1.0)
    assert bad_count() == before + 2


def test_cdp_phone_recorded_and_answered(service: LldpService) -> None:
    service.received("eth0", "cdp", phone_cdp_query(), now=5.0)
    assert service._wake.is_set()
    phone = service.registry.phone("00:11:22:33:44:55")
    assert phone is not None
    assert (phone.vendor, phone.model, phone.firmware) == (
        "Cisco",
        "Cisco IP Phone 7841",
        "sip78xx.14-1-1MN-29",
    )


def test_frames_are_built_once(service: LldpService) -> None:
    first = service.frame(Transmit("eth0", "lldp", 120))
    assert service.frame(Transmit("eth0", "lldp", 120)) is first
    assert service.frame(Transmit("eth0", "lldp", 0)) != first
    assert len(first) >= 60


def test_lldp_config_keys_reach_the_frame(tmp_path: Path) -> None:
    config = Config(
        appliance=ApplianceConfig(interface="eth0", state_dir=tmp_path, name="x"),
        lldp=LldpConfig(voice_vlan=321, priority=3, dscp=34, signaling_dscp=24),
    )
    svc = LldpService(config, Registry(tmp_path))
    try:
        svc.ports["eth0"] = LocalPort("eth0", "02:00:5e:00:00:01", 2)
        n = decode_lldp(svc.frame(Transmit("eth0", "lldp", 120)))
        assert [(p.app_type, p.vlan, p.priority, p.dscp) for p in n.policies] == [
            (1, 321, 3, 34),
            (2, 321, 3, 24),
        ]
    finally:
        svc.registry.close()
