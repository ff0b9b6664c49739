from __future__ import annotations

import contextlib
import dataclasses
from ipaddress import IPv4Address
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib import cdp as scapy_cdp
from scapy.layers.l2 import LLC, SNAP, Dot3, Ether

from netboot.lldp.codec import (
    CAP_BRIDGE,
    CAP_ROUTER,
    CAP_TELEPHONE,
    CdpAdvertisement,
    LldpAdvertisement,
    MacPhy,
    MedCapabilities,
    NetworkPolicy,
    cdp_checksum,
    decode_cdp,
    decode_lldp,
    encode_cdp,
    encode_lldp,
    is_cdp,
)
from netboot.wire import DecodeError
from tests.scapy_lldp import (
    LLDPDUDot3MacPhy,
    LLDPDUMedCapabilities,
    LLDPDUMedHardwareRevision,
    LLDPDUMedModel,
    LLDPDUMedNetworkPolicy,
    LLDPDUMedSerialNumber,
    LLDPDUMedSoftwareRevision,
    scapy_decode_lldp,
    scapy_encode_cdp,
    scapy_encode_lldp,
)

# Captured on a veth pair from lldpd 1.0.16 (`lldpd -M 3`, inventory set with
# `configure inventory ...`, hostname VIP-2140PT-desk12, MAC 00:30:4f:11:3a:f8).
LLDPD_PHONE = bytes.fromhex(
    "0180c200000e00304f113af888cc02070400304f113af804070300304f113af8060200780a11"
    "5649502d3231343050542d6465736b31320c5544656269616e20474e552f4c696e7578203132"
    "2028626f6f6b776f726d29204c696e757820362e31382e34342d66632d7636363920233120534d"
    "5020505245454d50545f44594e414d4943204030207838365f36340e0400bc0020100c0501c000"
    "021402000000020010181102fe8000000000000002304ffffe113af8020000000200080465746830"
    "fe0900120f030100000000fe0900120f010080000036fe070012bb01003f03fe0a0012bb05485720"
    "312e32fe0b0012bb06465720322e3130fe0f0012bb07322e31302e322e36383837fe0d0012bb0853"
    "4e30303132333435fe0a0012bb09504c414e4554fe0e0012bb0a5649502d323134305054fe0b0012"
    "bb0b6465736b2d31320000"
)
# lldpd's shutdown LLDPDU when it stops (TTL 0, mandatory TLVs only).
LLDPD_SHUTDOWN = bytes.fromhex(
    "0180c200000e00304f113af888cc02070400304f113af804070300304f113af8060200000000"
)

OURS = LldpAdvertisement(
    mac="02:00:5e:00:00:01",
    port_id="eth0",
    ttl=120,
    system_name="netboot",
    system_description="netboot appliance",
    port_description="phones",
    capabilities=CAP_BRIDGE | CAP_ROUTER,
    enabled_capabilities=CAP_BRIDGE | CAP_ROUTER,
    management_address=IPv4Address("192.0.2.1"),
    if_index=2,
    mac_phy=MacPhy(),
    med=MedCapabilities(0x0003, 4),
    policies=(NetworkPolicy(1, 100, 5, 46), NetworkPolicy(2, 100, 5, 26)),
)


def test_lldpd_endpoint_frame_parses_into_our_scapy_classes() -> None:
    layers = Ether(LLDPD_PHONE)
    assert layers[LLDPDUMedCapabilities].device_type == 3
    assert layers[LLDPDUMedHardwareRevision].value == b"HW 1.2"
    assert layers[LLDPDUMedSoftwareRevision].value == b"2.10.2.6887"
    assert layers[LLDPDUMedSerialNumber].value == b"SN0012345"
    assert layers[LLDPDUMedModel].value == b"VIP-2140PT"
    assert layers[LLDPDUDot3MacPhy].mau_type == 0x36


def test_decode_lldpd_endpoint_frame() -> None:
    n = decode_lldp(LLDPD_PHONE)
    assert n.source == "00:30:4f:11:3a:f8"
    assert (n.chassis_subtype, n.chassis_id) == (4, "00:30:4f:11:3a:f8")
    assert n.port_subtype == 3
    assert n.ttl == 120
    assert n.system_name == "VIP-2140PT-desk12"
    assert n.port_description == "eth0"
    assert n.capabilities is not None and n.capabilities & CAP_TELEPHONE
    assert n.enabled_capabilities == CAP_TELEPHONE
    assert n.management_addresses == ("192.0.2.20", "fe80::230:4fff:fe11:3af8")
    assert n.med == MedCapabilities(0x3F, 3)
    assert n.is_med_endpoint
    assert n.policies == ()
    inv = n.inventory
    assert (inv.hardware_revision, inv.firmware_revision, inv.software_revision) == (
        "HW 1.2",
        "FW 2.10",
        "2.10.2.6887",
    )
    assert (inv.serial_number, inv.manufacturer, inv.model, inv.asset_id) == (
        "SN0012345",
        "PLANET",
        "VIP-2140PT",
        "desk-12",
    )


def test_decode_shutdown() -> None:
    n = decode_lldp(LLDPD_SHUTDOWN)
    assert n.ttl == 0 and n.system_name is None and n.med is None


def _tlv(layer: object) -> bytes:
    """One TLV's bytes (scapy's LLDP layers insist on an Ethernet layer below)."""
    built = bytes(Ether(type=0x88CC) / layer)
    length = ((built[14] & 1) << 8) | built[15]
    return built[14 : 16 + length]


def test_network_policy_bytes() -> None:
    # TIA-1057 §10.2.3: voice, U=0 T=1 X=0, VLAN 100, priority 5, DSCP 46.
    voice = LLDPDUMedNetworkPolicy(app_type=1, tagged=1, vlan=100, priority=5, dscp=46)
    assert _tlv(voice) == bytes.fromhex("fe080012bb020140c96e")
    signaling = LLDPDUMedNetworkPolicy(app_type=2, tagged=1, vlan=100, priority=5, dscp=26)
    assert _tlv(signaling) == bytes.fromhex("fe080012bb020240c95a")
    untagged = LLDPDUMedNetworkPolicy(app_type=1, tagged=0, vlan=100, priority=5, dscp=46)
    assert _tlv(untagged)[6] & 0x40 == 0
    assert _tlv(LLDPDUMedCapabilities(capabilities=3, device_type=4)) == bytes.fromhex(
        "fe070012bb01000304"
    )
    assert _tlv(LLDPDUMedModel(value=b"X4")) == bytes.fromhex("fe060012bb0a5834")


def test_our_frame_tlvs_in_order() -> None:
    frame = encode_lldp(OURS)
    assert frame[:6] == bytes.fromhex("0180c200000e")
    assert frame[12:14] == b"\x88\xcc"
    assert len(frame) >= 60
    body = frame.hex()
    assert body.index("fe070012bb01000304") < body.index("fe080012bb020140c96e")
    assert body.index("fe080012bb020140c96e") < body.index("fe080012bb020240c95a")
    assert "fe0900120f01036c01001e" in body  # 802.3 MAC/PHY: autoneg on, 1000BASE-T FD
    # Chassis (MAC), Port (ifname), TTL first.
    assert frame[14:23] == bytes.fromhex("020704") + bytes.fromhex("02005e000001")
    assert frame[23:26] == bytes.fromhex("040505")


def test_shutdown_frame_has_only_mandatory_tlvs() -> None:
    frame = encode_lldp(LldpAdvertisement(mac="02:00:5e:00:00:01", port_id="eth0", ttl=0))
    n = decode_lldp(frame)
    assert n.ttl == 0
    assert (n.system_name, n.med, n.policies, n.mac_phy) == (None, None, (), None)
    # Chassis, Port, TTL 0, End, then padding to the 60-byte minimum.
    assert frame[14:].startswith(bytes.fromhex("02070402005e000001040505657468300602000000"))
    assert len(frame) == 60 and frame[35:] == bytes(25)


def test_round_trip_of_our_advertisement() -> None:
    n = decode_lldp(encode_lldp(OURS))
    assert n.chassis_id == OURS.mac and n.port_id == "eth0" and n.ttl == 120
    assert n.system_name == "netboot" and n.port_description == "phones"
    assert n.capabilities == n.enabled_capabilities == CAP_BRIDGE | CAP_ROUTER
    assert n.management_addresses == ("192.0.2.1",)
    assert n.mac_phy == MacPhy()
    assert n.med == OURS.med and not n.is_med_endpoint
    assert n.policies == OURS.policies


def _reserved_tlv_frame() -> bytes:
    frame = encode_lldp(OURS)
    cut = 14 + 9 + 7 + 4  # after chassis, port, TTL
    return frame[:cut] + bytes.fromhex("1203abcdef") + frame[cut:]


def test_reserved_tlv_does_not_hide_the_rest() -> None:
    n = decode_lldp(_reserved_tlv_frame())
    assert n.policies == OURS.policies and n.system_name == "netboot"


def test_vlan_tagged_lldp_frame() -> None:
    frame = encode_lldp(OURS)
    tagged = frame[:12] + bytes.fromhex("81000064") + frame[12:]
    assert decode_lldp(tagged).policies == OURS.policies


@pytest.mark.parametrize(
    ("name", "frame", "message"),
    [
        ("empty", b"", "truncated"),
        ("not lldp", bytes(12) + b"\x08\x00" + bytes(46), "ethertype"),
        ("no tlvs", LLDPD_SHUTDOWN[:14], "missing"),
        ("port first", LLDPD_SHUTDOWN[:14] + LLDPD_SHUTDOWN[23:], "must be type 1"),
        ("ttl length", LLDPD_SHUTDOWN[:32] + bytes.fromhex("0603000000"), "TTL TLV"),
        ("short mac id", LLDPD_SHUTDOWN[:14] + bytes.fromhex("020404aabbcc"), "MAC ID"),
        ("truncated tlv", LLDPD_PHONE[:100], "truncated"),
        ("end with length", LLDPD_SHUTDOWN[:36] + bytes.fromhex("0001ff"), "End TLV"),
        (
            "repeated chassis",
            LLDPD_SHUTDOWN[:36] + LLDPD_SHUTDOWN[14:23] + b"\x00\x00",
            "repeated",
        ),
        (
            "bad mgmt",
            LLDPD_SHUTDOWN[:36] + bytes.fromhex("1009") + bytes.fromhex("0501c0000201") + bytes(3),
            "management address",
        ),
        ("too many tlvs", LLDPD_SHUTDOWN[:36] + bytes.fromhex("0800") * 70, "more than"),
        ("short org", LLDPD_SHUTDOWN[:36] + bytes.fromhex("fe020012"), "OUI"),
    ],
)
def test_malformed_lldp(name: str, frame: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_lldp(frame)


_printable = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60
)
# hypothesis types ip_addresses() as IPv4Address | IPv6Address whatever `v` is;
# with v=4 it only ever draws IPv4Address.
_IPV4 = cast("st.SearchStrategy[IPv4Address]", st.ip_addresses(v=4))


@st.composite
def advertisements(draw: st.DrawFn) -> LldpAdvertisement:
    policies = draw(
        st.lists(
            st.builds(
                NetworkPolicy,
                app_type=st.integers(1, 8),
                vlan=st.integers(0, 4095),
                priority=st.integers(0, 7),
                dscp=st.integers(0, 63),
                tagged=st.booleans(),
                unknown=st.booleans(),
            ),
            max_size=4,
        )
    )
    return LldpAdvertisement(
        mac=draw(st.binary(min_size=6, max_size=6)).hex(":"),
        port_id=draw(_printable),
        ttl=draw(st.integers(1, 65535)),
        system_name=draw(_printable),
        system_description=draw(_printable),
        port_description=draw(_printable),
        capabilities=draw(st.integers(1, 0x7FF)),
        enabled_capabilities=draw(st.integers(0, 0x7FF)),
        management_address=draw(st.none() | _IPV4),
        if_index=draw(st.integers(0, 2**32 - 1)),
        mac_phy=draw(
            st.none()
            | st.builds(
                MacPhy,
                st.booleans(),
                st.booleans(),
                st.integers(0, 0xFFFF),
                st.integers(0, 0xFFFF),
            )
        ),
        med=draw(st.none() | st.builds(MedCapabilities, st.integers(0, 0x3F), st.integers(0, 4))),
        policies=tuple(policies),
    )


@settings(max_examples=150, deadline=None)
@given(advertisements())
def test_round_trip_property(adv: LldpAdvertisement) -> None:
    n = decode_lldp(encode_lldp(adv))
    assert (n.source, n.chassis_id, n.port_id, n.ttl) == (adv.mac, adv.mac, adv.port_id, adv.ttl)
    assert (n.system_name, n.system_description, n.port_description) == (
        adv.system_name,
        adv.system_description,
        adv.port_description,
    )
    assert (n.capabilities, n.enabled_capabilities) == (
        adv.capabilities,
        adv.enabled_capabilities,
    )
    expected = () if adv.management_address is None else (str(adv.management_address),)
    assert n.management_addresses == expected
    assert (n.mac_phy, n.med, n.policies) == (adv.mac_phy, adv.med, adv.policies)


@settings(max_examples=150, deadline=None)
@given(advertisements())
def test_our_frames_are_scapys_frames(adv: LldpAdvertisement) -> None:
    # scapy as an independent codec: it builds the same bytes, and reads in
    # our frame exactly what we read in its frame.
    ours = encode_lldp(adv)
    assert ours == scapy_encode_lldp(adv)
    assert scapy_decode_lldp(ours) == decode_lldp(ours)


@pytest.mark.parametrize("ttl", [0, 120])
def test_shutdown_and_full_frames_match_scapy(ttl: int) -> None:
    adv = dataclasses.replace(OURS, ttl=ttl)
    assert encode_lldp(adv) == scapy_encode_lldp(adv)
    assert decode_lldp(LLDPD_PHONE) == scapy_decode_lldp(LLDPD_PHONE)
    assert decode_lldp(_reserved_tlv_frame()) == scapy_decode_lldp(_reserved_tlv_frame())


def test_texts_longer_than_802_1ab_allows_are_cut() -> None:
    long = dataclasses.replace(OURS, system_name="n" * 300, port_id="p" * 300)
    n = decode_lldp(encode_lldp(long))
    assert n.system_name == "n" * 255 and n.port_id == "p" * 255


def test_end_only_lldpdu_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="missing"):
        decode_lldp(LLDPD_SHUTDOWN[:14] + b"\x00\x00")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_lldp_payload_decodes_or_raises_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_lldp(LLDPD_SHUTDOWN[:14] + payload)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_frames_decode_or_raise_decode_error(data: st.DataObject) -> None:
    frame = bytearray(data.draw(st.sampled_from([LLDPD_PHONE, encode_lldp(OURS)])))
    for _ in range(data.draw(st.integers(1, 6))):
        frame[data.draw(st.integers(14, len(frame) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(14, len(frame)))
    with contextlib.suppress(DecodeError):
        decode_lldp(bytes(frame[:cut]))


# ---------------------------------------------------------------- CDP

CDP_OURS = CdpAdvertisement(
    mac="02:00:5e:00:00:01",
    device_id="netboot",
    port_id="eth0",
    ttl=120,
    software_version="netboot 0.1.0",
    platform="netboot",
    capabilities=0x09,
    address=IPv4Address("192.0.2.1"),
    voice_vlan=100,
)


def test_cdp_frame_decoded_by_scapy() -> None:
    frame = encode_cdp(CDP_OURS)
    layers = Dot3(frame)
    assert layers[SNAP].OUI == 0x0C and layers[SNAP].code == 0x2000
    header = layers[scapy_cdp.CDPv2_HDR]
    assert header.vers == 2 and header.ttl == 120
    reply = layers[scapy_cdp.CDPMsgVoIPVLANReply]
    assert (reply.status, reply.vlan) == (1, 100)
    # The checksum scapy wrote is the one Cisco's algorithm gives.
    rebuilt = Dot3(frame)
    rebuilt[scapy_cdp.CDPv2_HDR].cksum = None
    assert bytes(rebuilt)[:60] == frame[: len(bytes(rebuilt)[:60])]


@settings(max_examples=150, deadline=None)
@given(
    st.builds(
        CdpAdvertisement,
        mac=st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":")),
        device_id=_printable,
        port_id=_printable,
        ttl=st.integers(0, 255),
        software_version=st.just("") | _printable,
        platform=st.just("") | _printable,
        capabilities=st.integers(0, 2**32 - 1),
        address=st.none() | _IPV4,
        voice_vlan=st.none() | st.integers(0, 4095),
    )
)
def test_cdp_frames_are_scapys_frames(adv: CdpAdvertisement) -> None:
    # Same bytes as scapy's CDPv2 (its checksum included, odd lengths too).
    frame = encode_cdp(adv)
    assert frame == scapy_encode_cdp(adv)
    n = decode_cdp(frame)
    assert (n.device_id, n.port_id, n.ttl, n.voip_vlan_reply) == (
        adv.device_id,
        adv.port_id,
        adv.ttl,
        adv.voice_vlan,
    )


def test_cdp_checksum_odd_length_rule() -> None:
    # Cisco's rule for an odd length (module doc): last byte <= 0x80 is the
    # low byte of a word with high byte 0; above, 0xff and the byte less one.
    assert cdp_checksum(b"\x02\xb4\x00\x00\x41") == (~(0x02B4 + 0x0041) & 0xFFFF)
    # 0x02b4 + 0xff8f = 0x10243, the carry folded back in: 0x0244.
    assert cdp_checksum(b"\x02\xb4\x00\x00\x90") == (~0x0244 & 0xFFFF)


def test_cdp_round_trip() -> None:
    n = decode_cdp(encode_cdp(CDP_OURS))
    assert (n.source, n.version, n.ttl) == ("02:00:5e:00:00:01", 2, 120)
    assert (n.device_id, n.port_id, n.platform) == ("netboot", "eth0", "netboot")
    assert n.addresses == ("192.0.2.1",) and n.voip_vlan_reply == 100
    assert n.voip_vlan_query is None
    without = decode_cdp(encode_cdp(CdpAdvertisement("02:00:5e:00:00:01", "n", "eth0", 60)))
    assert without.voip_vlan_reply is None


def phone_cdp_query(source: str = "00:11:22:33:44:55") -> bytes:
    """A Cisco phone's CDP frame with a VoIP VLAN Query, built with scapy."""
    return bytes(
        Dot3(dst="01:00:0c:cc:cc:cc", src=source)
        / LLC(dsap=0xAA, ssap=0xAA, ctrl=3)
        / SNAP(OUI=0x0C, code=0x2000)
        / scapy_cdp.CDPv2_HDR(
            vers=2,
            ttl=180,
            msg=[
                scapy_cdp.CDPMsgDeviceID(val=b"SEP001122334455"),
                scapy_cdp.CDPMsgPortID(iface=b"Port 1"),
                scapy_cdp.CDPMsgCapabilities(cap=0x490),
                scapy_cdp.CDPMsgSoftwareVersion(val=b"sip78xx.14-1-1MN-29"),
                scapy_cdp.CDPMsgPlatform(val=b"Cisco IP Phone 7841"),
                scapy_cdp.CDPMsgVoIPVLANQuery(unknown1=0x20, vlan=1),
            ],
        )
    )


def test_cdp_phone_query() -> None:
    frame = phone_cdp_query()
    assert is_cdp(frame)
    n = decode_cdp(frame)
    assert n.device_id == "SEP001122334455" and n.platform == "Cisco IP Phone 7841"
    assert n.software_version == "sip78xx.14-1-1MN-29" and n.capabilities == 0x490
    assert n.voip_vlan_query == 1


def test_is_cdp_rejects_stp() -> None:
    stp = bytes.fromhex("0180c2000000") + bytes(6) + bytes.fromhex("0026424203") + bytes(40)
    assert not is_cdp(stp)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (bytes(20), "destination"),
        (encode_cdp(CDP_OURS)[:30], "truncated"),
        (bytes.fromhex("01000ccccccc") + bytes(6) + b"\x00\x10" + bytes(16), "SNAP"),
    ],
)
def test_malformed_cdp(frame: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_cdp(frame)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_cdp_decodes_or_raises_decode_error(data: st.DataObject) -> None:
    frame = bytearray(data.draw(st.sampled_from([phone_cdp_query(), encode_cdp(CDP_OURS)])))
    for _ in range(data.draw(st.integers(1, 6))):
        frame[data.draw(st.integers(12, len(frame) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        decode_cdp(bytes(frame[: data.draw(st.integers(0, len(frame)))]))
