from __future__ import annotations

import itertools
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from netboot.config import ApplianceConfig, Config, LldpConfig
from netboot.lldp.advertiser import (
    Advertiser,
    LocalPort,
    Transmit,
    cdp_advertisement,
    lldp_advertisement,
    voice_policies,
)
from netboot.lldp.codec import (
    CdpNeighbor,
    LldpNeighbor,
    MedCapabilities,
    NetworkPolicy,
    decode_cdp,
    decode_lldp,
    encode_cdp,
    encode_lldp,
)

LLDP = LldpConfig(voice_vlan=100, priority=5, dscp=46, signaling_dscp=26, interval=30, cdp=True)


def phone(mac: str = "00:30:4f:00:00:01", ttl: int = 120, device_type: int = 3) -> LldpNeighbor:
    return LldpNeighbor(
        source=mac,
        chassis_subtype=4,
        chassis_id=mac,
        port_subtype=3,
        port_id=mac,
        ttl=ttl,
        system_name="phone",
        med=MedCapabilities(0x33, device_type),
    )


def sent(
    advertiser: Advertiser, start: float, end: float, step: float = 0.1
) -> list[tuple[float, Transmit]]:
    """Step the clock from start to end; (time, frame) for every frame sent."""
    out: list[tuple[float, Transmit]] = []
    ticks = round((end - start) / step)
    for i in range(ticks + 1):
        now = round(start + i * step, 6)
        out.extend((now, tx) for tx in advertiser.due(now))
    return out


def lldp_times(frames: list[tuple[float, Transmit]], interface: str = "eth0") -> list[float]:
    return [t for t, tx in frames if tx.protocol == "lldp" and tx.interface == interface]


def test_initial_frames_then_interval() -> None:
    a = Advertiser(LLDP, ("eth0",), now=0.0)
    first = a.due(0.0)
    assert first == [Transmit("eth0", "lldp", 120), Transmit("eth0", "cdp", 120)]
    assert a.due(0.5) == []
    assert a.next_wakeup() == 30.0
    frames = sent(a, 0.1, 95.0)
    assert lldp_times(frames) == [30.0, 60.0, 90.0]
    assert [t for t, tx in frames if tx.protocol == "cdp"] == [30.0, 60.0, 90.0]


@pytest.mark.parametrize(
    ("interval", "lldp_ttl", "cdp_every", "cdp_ttl"),
    [(5, 20, 5, 20), (30, 120, 30, 120), (60, 240, 60, 240), (3600, 14400, 60, 240)],
)
def test_ttls(interval: int, lldp_ttl: int, cdp_every: int, cdp_ttl: int) -> None:
    a = Advertiser(replace(LLDP, interval=interval), ("eth0",), now=0.0)
    assert {tx.protocol: tx.ttl for tx in a.due(0.0)} == {"lldp": lldp_ttl, "cdp": cdp_ttl}
    assert a.next_wakeup() == min(interval, cdp_every)


def test_cdp_off() -> None:
    a = Advertiser(replace(LLDP, cdp=False), ("eth0", "eth1"), now=0.0)
    assert a.due(0.0) == [Transmit("eth0", "lldp", 120), Transmit("eth1", "lldp", 120)]


def test_fast_start_on_new_med_endpoint() -> None:
    a = Advertiser(LLDP, ("eth0",), now=0.0)
    a.due(0.0)
    heard = a.heard_lldp("eth0", phone(), now=10.0)
    assert heard.new and heard.changed and heard.fast_start
    frames = sent(a, 10.0, 80.0)
    # 4 frames 1 s apart, then the normal interval from the last one.
    assert lldp_times(frames) == [10.0, 11.0, 12.0, 13.0, 43.0, 73.0]


def test_known_endpoint_does_not_restart_fast_start() -> None:
    a = Advertiser(LLDP, ("eth0",), now=0.0)
    a.due(0.0)
    a.heard_lldp("eth0", phone(), now=10.0)
    sent(a, 10.0, 20.0)
    again = a.heard_lldp("eth0", phone(), now=40.0)
    assert not again.new and not again.changed and not again.fast_start
    assert lldp_times(sent(a, 40.0, 50.0)) == [43.0]


def test_changed_neighbor_is_reported_without_fast_start() -> None:
    a = Advertiser(LLDP, ("eth0",), now=0.0)
    a.heard_lldp("eth0", phone(), now=1.0)
    changed = a.heard_lldp("eth0", replace(phone(), system_name="renamed"), now=2.0)
    assert changed.changed and not changed.new and not changed.fast_start
    # Only the TTL differing is no change.
    assert not a.heard_lldp("eth0", replace(phone(), system_name="renamed", ttl=60), 3.0).changed


def test_expired_endpoint_is_new_again() -> None:
    a = Advertiser(LLDP, ("eth0",), now=0.0)
    a.heard_lldp("eth0", phone(ttl=20), now=1.0)
    sent(a, 0.0, 30.0)
    assert a.neighbors(30.0) == []
    back = a.heard_lldp("eth0", phone(ttl=20), now=31.0)
    assert back.new and back.fast_start


def test_non_med_neighbor_gets_no_fast_start() -> None:
    a = Advertiser(LLDP, ("eth0",), now=0.0)
    a.due(0.0)
    switch = replace(phone(mac="02:00:00:00:00:09"), med=None)
    assert not a.heard_lldp("eth0", switch, now=5.0).fast_start
    assert not a.heard_lldp("eth0", phone(device_type=4), now=5.0).fast_start
    assert lldp_times(sent(a, 5.0, 29.0)) == []


def test_shutdown_from_neighbor() -> None:
    a = Advertiser(LLDP, ("eth0",), now=0.0)
    a.heard_lldp("eth0", phone(), now=1.0)
    gone = a.heard_lldp("eth0", phone(ttl=0), now=2.0)
    assert gone.gone and gone.changed and not gone.new
    assert a.neighbors(2.0) == []
    assert not a.heard_lldp("eth0", phone(ttl=0), now=3.0).changed


def test_fast_start_never_faster_than_one_frame_a_second() -> None:
    a = Advertiser(LLDP, ("eth0",), now=0.0)
    a.due(0.0)
    # Just after the initial frame: the first fast frame waits for the 1 s gap.
    a.heard_lldp("eth0", phone(), now=0.2)
    assert a.due(0.2) == []
    assert a.next_wakeup() == 1.0
    # 500 endpoints appearing over 10 s: still at most one frame a second,
    # fast until 3 s after the last one, then the normal interval.
    times: list[float] = []
    for i in range(500):
        now = round(1.0 + i * 0.02, 6)
        a.heard_lldp("eth0", phone(mac=f"00:30:4f:01:{i // 256:02x}:{i % 256:02x}"), now)
        times.extend(now for tx in a.due(now) if tx.protocol == "lldp")
    times += lldp_times(sent(a, 11.0, 40.0))
    assert all(b - a_ >= 1.0 - 1e-9 for a_, b in itertools.pairwise(times))
    assert times[0] == 1.0 and 13.0 <= times[-1] <= 14.0
    assert len(times) == round(times[-1]) and times[-1] + 30 > 40.0
    assert len(a.neighbors(20.0)) == 501


def test_neighbor_table_is_bounded() -> None:
    a = Advertiser(replace(LLDP, max_neighbors=16), ("eth0",), now=0.0)
    evicted = [
        a.heard_lldp("eth0", phone(mac=f"00:30:4f:00:00:{i:02x}"), now=1.0).evicted
        for i in range(25)
    ]
    assert evicted == [False] * 16 + [True] * 9
    table = a.neighbors(1.0)
    assert len(table) == 16
    assert {n.source for _, n in table} == {f"00:30:4f:00:00:{i:02x}" for i in range(9, 25)}


def test_a_neighbor_heard_again_is_evicted_last() -> None:
    a = Advertiser(replace(LLDP, max_neighbors=16), ("eth0",), now=0.0)
    for i in range(16):
        a.heard_lldp("eth0", phone(mac=f"00:30:4f:00:00:{i:02x}"), now=1.0)
    a.heard_lldp("eth0", phone(mac="00:30:4f:00:00:00"), now=2.0)  # the real phone, again
    a.heard_lldp("eth0", phone(mac="02:00:00:00:00:01"), now=3.0)
    sources = {n.source for _, n in a.neighbors(3.0)}
    assert "00:30:4f:00:00:00" in sources and "00:30:4f:00:00:01" not in sources


def cdp_phone(query: int | None) -> CdpNeighbor:
    return CdpNeighbor(
        source="00:11:22:33:44:55",
        version=2,
        ttl=180,
        device_id="SEP001122334455",
        capabilities=0x490,
        voip_vlan_query=query,
    )


def test_cdp_query_answered_at_once_and_rate_limited() -> None:
    a = Advertiser(LLDP, ("eth0",), now=0.0)
    a.due(0.0)
    heard = a.heard_cdp("eth0", cdp_phone(query=1), now=7.0)
    assert heard.answer_now and heard.new
    assert a.due(7.0) == [Transmit("eth0", "cdp", 120)]
    a.heard_cdp("eth0", cdp_phone(query=1), now=7.3)
    assert a.due(7.3) == []
    assert a.due(8.0) == [Transmit("eth0", "cdp", 120)]
    # Without a query, CDP keeps its interval.
    assert not a.heard_cdp("eth0", cdp_phone(query=None), now=9.0).answer_now
    assert [t for t, tx in sent(a, 8.1, 40.0) if tx.protocol == "cdp"] == [38.0]


def test_cdp_query_ignored_when_cdp_is_off() -> None:
    a = Advertiser(replace(LLDP, cdp=False), ("eth0",), now=0.0)
    a.due(0.0)
    assert not a.heard_cdp("eth0", cdp_phone(query=1), now=3.0).answer_now
    assert a.due(3.0) == []


def test_shutdown_frames() -> None:
    a = Advertiser(LLDP, ("eth0", "eth1"), now=0.0)
    assert a.shutdown() == [Transmit("eth0", "lldp", 0), Transmit("eth1", "lldp", 0)]


# ---------------------------------------------------------------- content

CONFIG = Config(
    appliance=ApplianceConfig(interface="eth0", state_dir=Path("/nonexistent"), name="pbx-lab"),
    lldp=LLDP,
)
PORT = LocalPort("eth0", "02:00:5e:00:00:01", 3, IPv4Address("192.0.2.1"))


def test_policies_from_config() -> None:
    assert voice_policies(LLDP) == (
        NetworkPolicy(1, 100, 5, 46, tagged=True),
        NetworkPolicy(2, 100, 5, 26, tagged=True),
    )
    other = replace(LLDP, voice_vlan=2000, priority=6, dscp=40, signaling_dscp=24)
    assert [(p.vlan, p.priority, p.dscp) for p in voice_policies(other)] == [
        (2000, 6, 40),
        (2000, 6, 24),
    ]
    assert voice_policies(replace(LLDP, voice_vlan=None)) == ()


def test_lldp_content_on_the_wire() -> None:
    n = decode_lldp(encode_lldp(lldp_advertisement(CONFIG, PORT, 120)))
    assert n.chassis_id == "02:00:5e:00:00:01" and n.port_id == "eth0" and n.ttl == 120
    assert n.system_name == "pbx-lab" and n.system_description is not None
    assert n.capabilities == n.enabled_capabilities == 0x04 | 0x10  # bridge, router
    assert n.management_addresses == ("192.0.2.1",)
    assert n.mac_phy is not None and n.mac_phy.autoneg_enabled
    assert n.med == MedCapabilities(0x0003, 4)
    assert n.policies == voice_policies(LLDP)
    assert all(p.tagged for p in n.policies)


def test_without_voice_vlan_no_policy_and_no_cdp_vlan() -> None:
    config = replace(CONFIG, lldp=replace(LLDP, voice_vlan=None))
    n = decode_lldp(encode_lldp(lldp_advertisement(config, PORT, 120)))
    assert n.policies == () and n.med == MedCapabilities(0x0003, 4)
    c = decode_cdp(encode_cdp(cdp_advertisement(config, PORT, 120)))
    assert c.voip_vlan_reply is None and c.device_id == "pbx-lab"


def test_cdp_and_lldp_say_the_same_vlan() -> None:
    for vlan in (1, 100, 4094):
        config = replace(CONFIG, lldp=replace(LLDP, voice_vlan=vlan))
        c = decode_cdp(encode_cdp(cdp_advertisement(config, PORT, 120)))
        n = decode_lldp(encode_lldp(lldp_advertisement(config, PORT, 120)))
        assert c.voip_vlan_reply == vlan == n.policies[0].vlan == n.policies[1].vlan


def test_shutdown_advertisement() -> None:
    n = decode_lldp(encode_lldp(lldp_advertisement(CONFIG, PORT, 0)))
    assert n.ttl == 0 and n.policies == () and n.system_name is None
