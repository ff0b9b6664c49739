"""LLDP (with LLDP-MED) and CDP frames <-> frozen dataclasses, in plain bytes.

LLDP (IEEE 802.1AB-2016 §8-9) is one untagged Ethernet frame to
01:80:c2:00:00:0e, ethertype 0x88cc, carrying TLVs with a 7-bit type and a
9-bit length: Chassis ID, Port ID and Time To Live first (§8.2), then optional
TLVs, then End. A TTL of 0 is a shutdown LLDPDU (§9.2.7.5): forget the sender.
Organisationally specific TLVs (type 127, §8.6) carry a 3-byte OUI and a
subtype; LLDP-MED (ANSI/TIA-1057 §10.2) uses OUI 00-12-BB:

  1  LLDP-MED capabilities: 16-bit bitmap + device type (1-3 endpoint
     class I-III, 4 network connectivity device)       (TIA-1057 §10.2.2)
  2  network policy: application type, then U(1) T(1) X(1) VLAN(12)
     priority(3) DSCP(6)                               (TIA-1057 §10.2.3)
  5-11 inventory strings: hardware, firmware, software revision, serial
     number, manufacturer, model, asset ID            (TIA-1057 §10.2.6)

and IEEE 802.3 (OUI 00-12-0F) subtype 1 is MAC/PHY configuration/status
(802.3-2018 §79.3.1). A fixed-size org-specific TLV of the wrong length, an
unknown OUI or subtype, and the reserved types 9-126 (§8.4.1) are skipped;
the TLVs after them still count.

CDP (Cisco, version 2) is an 802.3 length frame to 01:00:0c:cc:cc:cc with
LLC/SNAP (OUI 00-00-0C, protocol 0x2000), a 4-byte header (version, TTL,
checksum) and 16-bit type / 16-bit length TLVs. A phone asks for its voice
VLAN with the VoIP VLAN Query TLV (0x000f); the switch answers with the VoIP
VLAN Reply TLV (0x000e: one byte 0x01, then the VLAN ID). The checksum is the
IP one's-complement sum over the CDP header and TLVs, Cisco's way for an odd
length (the last byte taken as the low byte of a word whose high byte is 0,
or 0xff with the byte less one when it is above 0x80): what Wireshark and
scapy compute too.

Everything is `struct` and `netboot.wire.Reader`: no scapy here (it costs
tens of MB and ~1 ms a frame on the serve path). The tests check both
directions against scapy as an independent implementation. Every failure on
input is one `DecodeError` with what was wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from netboot.wire import DecodeError, Reader, format_mac, parse_mac

LLDP_MULTICAST = "01:80:c2:00:00:0e"
LLDP_ETHERTYPE = 0x88CC
CDP_MULTICAST = "01:00:0c:cc:cc:cc"
OUI_MED = 0x0012BB
OUI_8023 = 0x00120F
MAX_TLVS = 64  # real LLDPDUs carry ~20; bounds the work one frame costs

# 802.1AB §8.5.8.1 system capabilities bits.
CAP_OTHER = 0x0001
CAP_REPEATER = 0x0002
CAP_BRIDGE = 0x0004
CAP_WLAN = 0x0008
CAP_ROUTER = 0x0010
CAP_TELEPHONE = 0x0020
CAP_STATION = 0x0080

# TIA-1057 §10.2.2.1 LLDP-MED capabilities bits and §10.2.2.2 device types.
MED_CAP_CAPABILITIES = 0x0001
MED_CAP_NETWORK_POLICY = 0x0002
MED_CAP_LOCATION = 0x0004
MED_CAP_MDI_PSE = 0x0008
MED_CAP_MDI_PD = 0x0010
MED_CAP_INVENTORY = 0x0020
MED_NETWORK_CONNECTIVITY = 4
MED_DEVICE_TYPES = {
    0: "not defined",
    1: "endpoint class I",
    2: "endpoint class II",
    3: "endpoint class III",
    4: "network connectivity device",
}
# TIA-1057 §10.2.3.1 application types.
APP_VOICE = 1
APP_VOICE_SIGNALING = 2
MED_APP_TYPES = {
    1: "voice",
    2: "voice signaling",
    3: "guest voice",
    4: "guest voice signaling",
    5: "softphone voice",
    6: "video conferencing",
    7: "streaming video",
    8: "video signaling",
}
INVENTORY_SUBTYPES = {
    5: "hardware_revision",
    6: "firmware_revision",
    7: "software_revision",
    8: "serial_number",
    9: "manufacturer",
    10: "model",
    11: "asset_id",
}

# CDP TLV types (Cisco) and capability bits.
CDP_DEVICE_ID = 0x0001
CDP_ADDRESSES = 0x0002
CDP_PORT_ID = 0x0003
CDP_CAPABILITIES = 0x0004
CDP_SOFTWARE_VERSION = 0x0005
CDP_PLATFORM = 0x0006
CDP_NATIVE_VLAN = 0x000A
CDP_DUPLEX = 0x000B
CDP_VOIP_VLAN_REPLY = 0x000E
CDP_VOIP_VLAN_QUERY = 0x000F
CDP_CAP_ROUTER = 0x01
CDP_CAP_SWITCH = 0x08
CDP_CAP_HOST = 0x10
CDP_CAP_IGMP = 0x20


# ---------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class NetworkPolicy:
    """TIA-1057 §10.2.3; `tagged` must be set for phones to use the VLAN."""

    app_type: int
    vlan: int
    priority: int
    dscp: int
    tagged: bool = True
    unknown: bool = False


@dataclass(frozen=True)
class MedCapabilities:
    capabilities: int
    device_type: int

    @property
    def is_endpoint(self) -> bool:
        return self.device_type in (1, 2, 3)


@dataclass(frozen=True)
class Inventory:
    hardware_revision: str | None = None
    firmware_revision: str | None = None
    software_revision: str | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    asset_id: str | None = None


@dataclass(frozen=True)
class MacPhy:
    autoneg_supported: bool = True
    autoneg_enabled: bool = True
    pmd_capabilities: int = 0x6C01  # 10BASE-T HD/FD, 100BASE-TX HD/FD, 1000BASE-T FD
    mau_type: int = 30  # 1000BASE-T full duplex (RFC 4836 dot3MauType)


@dataclass(frozen=True)
class LldpAdvertisement:
    """What we put in one LLDPDU (ttl 0: a shutdown LLDPDU, §9.2.7.5)."""

    mac: str
    port_id: str
    ttl: int
    system_name: str = ""
    system_description: str = ""
    port_description: str = ""
    capabilities: int = 0
    enabled_capabilities: int = 0
    management_address: IPv4Address | None = None
    if_index: int = 0
    mac_phy: MacPhy | None = None
    med: MedCapabilities | None = None
    policies: tuple[NetworkPolicy, ...] = ()


@dataclass(frozen=True)
class LldpNeighbor:
    """What one received LLDPDU says about its sender."""

    source: str
    chassis_subtype: int
    chassis_id: str
    port_subtype: int
    port_id: str
    ttl: int
    port_description: str | None = None
    system_name: str | None = None
    system_description: str | None = None
    capabilities: int | None = None
    enabled_capabilities: int | None = None
    management_addresses: tuple[str, ...] = ()
    mac_phy: MacPhy | None = None
    med: MedCapabilities | None = None
    policies: tuple[NetworkPolicy, ...] = ()
    inventory: Inventory = Inventory()

    @property
    def is_med_endpoint(self) -> bool:
        return self.med is not None and self.med.is_endpoint


@dataclass(frozen=True)
class CdpAdvertisement:
    mac: str
    device_id: str
    port_id: str
    ttl: int
    software_version: str = ""
    platform: str = ""
    capabilities: int = 0
    address: IPv4Address | None = None
    voice_vlan: int | None = None


@dataclass(frozen=True)
class CdpNeighbor:
    source: str
    version: int
    ttl: int
    device_id: str | None = None
    port_id: str | None = None
    platform: str | None = None
    software_version: str | None = None
    capabilities: int | None = None
    addresses: tuple[str, ...] = ()
    native_vlan: int | None = None
    voip_vlan_query: int | None = None  # the VLAN in a phone's VoIP VLAN Query
    voip_vlan_reply: int | None = None


# ---------------------------------------------------------------- LLDP encode

MAX_TEXT = 255  # 802.1AB §8.5.3-8.5.7: port ID, descriptions and name are 0-255 octets
_LLDP_GROUP = parse_mac(LLDP_MULTICAST)
_CDP_GROUP = parse_mac(CDP_MULTICAST)
_CDP_SNAP = b"\xaa\xaa\x03\x00\x00\x0c\x20\x00"
_CAPABILITY_MASK = 0x07FF  # 802.1AB §8.5.8.1 defines bits 0-10; the rest are reserved
MIN_FRAME = 60  # Ethernet minimum without the FCS


def _tlv(tlv_type: int, value: bytes) -> bytes:
    if len(value) > 0x1FF:
        raise ValueError(f"LLDP TLV {tlv_type} of {len(value)} bytes (at most 511)")
    return struct.pack("!H", tlv_type << 9 | len(value)) + value


def _org(oui: int, subtype: int, value: bytes) -> bytes:
    return _tlv(127, oui.to_bytes(3, "big") + bytes((subtype,)) + value)


def _clip(text: str) -> bytes:
    return text.encode()[:MAX_TEXT]


def _pad(frame: bytes) -> bytes:
    return frame.ljust(MIN_FRAME, b"\x00")


def encode_lldp(adv: LldpAdvertisement) -> bytes:
    """The Ethernet frame (padded to 60 bytes) for one LLDPDU. Texts longer
    than the 255 octets 802.1AB allows are cut there."""
    mac = parse_mac(adv.mac)
    parts = [
        _LLDP_GROUP,
        mac,
        struct.pack("!H", LLDP_ETHERTYPE),
        _tlv(1, b"\x04" + mac),  # chassis ID, subtype 4: MAC address (§8.5.2.2)
        _tlv(2, b"\x05" + _clip(adv.port_id)),  # port ID, subtype 5: interface name
        _tlv(3, struct.pack("!H", adv.ttl)),
    ]
    if adv.ttl > 0:  # a shutdown LLDPDU carries only the mandatory TLVs (§9.2.7.5)
        if adv.port_description:
            parts.append(_tlv(4, _clip(adv.port_description)))
        if adv.system_name:
            parts.append(_tlv(5, _clip(adv.system_name)))
        if adv.system_description:
            parts.append(_tlv(6, _clip(adv.system_description)))
        if adv.capabilities:
            parts.append(
                _tlv(
                    7,
                    struct.pack(
                        "!HH",
                        adv.capabilities & _CAPABILITY_MASK,
                        adv.enabled_capabilities & _CAPABILITY_MASK,
                    ),
                )
            )
        if adv.management_address is not None:
            # §8.5.9: string length (subtype + address), subtype 1 (IPv4),
            # address, numbering subtype 2 (ifIndex), number, OID length 0.
            parts.append(
                _tlv(
                    8,
                    b"\x05\x01"
                    + adv.management_address.packed
                    + struct.pack("!BIB", 2, adv.if_index, 0),
                )
            )
        if adv.mac_phy is not None:
            p = adv.mac_phy
            autoneg = int(p.autoneg_supported) | int(p.autoneg_enabled) << 1
            parts.append(
                _org(OUI_8023, 1, struct.pack("!BHH", autoneg, p.pmd_capabilities, p.mau_type))
            )
        if adv.med is not None:
            parts.append(
                _org(OUI_MED, 1, struct.pack("!HB", adv.med.capabilities, adv.med.device_type))
            )
        for policy in adv.policies:
            bits = (
                int(policy.unknown) << 23
                | int(policy.tagged) << 22
                | (policy.vlan & 0xFFF) << 9
                | (policy.priority & 0x7) << 6
                | (policy.dscp & 0x3F)
            )
            parts.append(_org(OUI_MED, 2, bytes((policy.app_type,)) + bits.to_bytes(3, "big")))
    parts.append(b"\x00\x00")  # End of LLDPDU
    return _pad(b"".join(parts))


# ---------------------------------------------------------------- LLDP decode


def _ethernet_payload(frame: bytes) -> tuple[str, int, Reader]:
    """(source MAC, ethertype, reader at the payload); skips one 802.1Q tag."""
    r = Reader(frame)
    r.take(6)
    source = format_mac(r.take(6))
    ethertype = r.u16()
    if ethertype == 0x8100:
        r.u16()
        ethertype = r.u16()
    return source, ethertype, r


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").rstrip("\x00")


def _id_text(value: bytes, mac_subtype: int, address_subtype: int) -> str:
    """A chassis or port ID (§8.5.2-8.5.3) as text: a MAC spelt as netboot
    does, an address in its usual form, a printable string as is, else hex."""
    subtype, data = value[0], value[1:]
    if subtype == mac_subtype:
        return format_mac(data)
    if subtype == address_subtype:
        family, address = data[0], data[1:]
        if family == 1:
            return str(IPv4Address(address))
        if family == 2:
            return str(IPv6Address(address))
        return address.hex()
    text = data.decode("utf-8", errors="replace")
    return text if text.isprintable() else data.hex(":")


def _check_id(tlv_type: int, value: bytes) -> None:
    length = len(value)
    if length < 2:
        raise DecodeError(f"LLDP: ID TLV {tlv_type} too short")
    subtype = value[0]
    mac_subtype, address_subtype = (4, 5) if tlv_type == 1 else (3, 4)
    if subtype == mac_subtype and length != 7:
        raise DecodeError(f"LLDP: MAC ID of {length - 1} bytes")
    if subtype == address_subtype and (
        length < 3 or (value[1] == 1 and length != 6) or (value[1] == 2 and length != 18)
    ):
        raise DecodeError("LLDP: bad network address ID")


def _management_address(value: bytes) -> str | None:
    """§8.5.9: address string length (1 + 1..31), subtype + address,
    interface numbering subtype, number (4), OID length, OID. The address,
    when it is IPv4 or IPv6."""
    length = len(value)
    if length < 9:
        raise DecodeError("LLDP: management address TLV too short")
    address_length = value[0]
    if not 2 <= address_length <= 32 or address_length + 7 > length:
        raise DecodeError("LLDP: bad management address length")
    oid_length = value[address_length + 6]
    if address_length + 7 + oid_length != length:
        raise DecodeError("LLDP: management address TLV length mismatch")
    subtype, raw = value[1], value[2 : 1 + address_length]
    if subtype == 1 and len(raw) == 4:
        return str(IPv4Address(raw))
    if subtype == 2 and len(raw) == 16:
        return str(IPv6Address(raw))
    return None


def decode_lldp(frame: bytes) -> LldpNeighbor:
    """One received Ethernet frame -> what it says; DecodeError if it is not a
    well-formed LLDPDU (§8.2: Chassis ID, Port ID, TTL first, once each;
    every TLV inside the frame; End of length 0)."""
    source, ethertype, r = _ethernet_payload(frame)
    if ethertype != LLDP_ETHERTYPE:
        raise DecodeError(f"not LLDP: ethertype 0x{ethertype:04x}")
    fields: dict[str, Any] = {}
    addresses: list[str] = []
    policies: list[NetworkPolicy] = []
    inventory: dict[str, str] = {}
    index = 0
    while r.remaining >= 2:
        header = r.u16()
        tlv_type, length = header >> 9, header & 0x1FF
        value = r.take(length)
        if tlv_type == 0:
            if length != 0:
                raise DecodeError(f"LLDP: End TLV with length {length}")
            break
        if index < 3 and tlv_type != index + 1:
            raise DecodeError(f"LLDP: TLV {index + 1} must be type {index + 1}, not {tlv_type}")
        if index >= 3 and tlv_type in (1, 2, 3):
            raise DecodeError(f"LLDP: TLV type {tlv_type} repeated")
        index += 1
        if index > MAX_TLVS:
            raise DecodeError(f"LLDP: more than {MAX_TLVS} TLVs")
        if tlv_type == 1:
            _check_id(1, value)
            fields["chassis_subtype"] = value[0]
            fields["chassis_id"] = _id_text(value, 4, 5)
        elif tlv_type == 2:
            _check_id(2, value)
            fields["port_subtype"] = value[0]
            fields["port_id"] = _id_text(value, 3, 4)
        elif tlv_type == 3:
            if length != 2:
                raise DecodeError(f"LLDP: TTL TLV of length {length}")
            fields["ttl"] = int.from_bytes(value, "big")
        elif tlv_type == 4:
            fields["port_description"] = _text(value)
        elif tlv_type == 5:
            fields["system_name"] = _text(value)
        elif tlv_type == 6:
            fields["system_description"] = _text(value)
        elif tlv_type == 7:
            if length != 4:
                raise DecodeError(f"LLDP: capabilities TLV of length {length}")
            available, enabled = struct.unpack("!HH", value)
            fields["capabilities"] = available & _CAPABILITY_MASK
            fields["enabled_capabilities"] = enabled & _CAPABILITY_MASK
        elif tlv_type == 8:
            address = _management_address(value)
            if address is not None:
                addresses.append(address)
        elif tlv_type == 127:
            if length < 4:
                raise DecodeError("LLDP: organisationally specific TLV shorter than its OUI")
            _org_specific(value, fields, policies, inventory)
    else:
        if r.remaining:
            raise DecodeError("LLDP: odd byte after the last TLV")
    if index < 3:
        raise DecodeError("LLDP: missing Chassis ID, Port ID or TTL")
    return LldpNeighbor(
        source=source,
        management_addresses=tuple(addresses),
        policies=tuple(policies),
        inventory=Inventory(**inventory),
        **fields,
    )


def _org_specific(
    value: bytes,
    fields: dict[str, Any],
    policies: list[NetworkPolicy],
    inventory: dict[str, str],
) -> None:
    """The MED and 802.3 TLVs we read (§8.6); a fixed-size one of another
    length, and any other OUI or subtype, is skipped."""
    oui, subtype, body = int.from_bytes(value[:3], "big"), value[3], value[4:]
    if oui == OUI_MED:
        if subtype == 1 and len(body) == 3:
            capabilities, device_type = struct.unpack("!HB", body)
            fields["med"] = MedCapabilities(capabilities, device_type)
        elif subtype == 2 and len(body) == 4:
            bits = int.from_bytes(body[1:], "big")
            policies.append(
                NetworkPolicy(
                    app_type=body[0],
                    vlan=(bits >> 9) & 0xFFF,
                    priority=(bits >> 6) & 0x7,
                    dscp=bits & 0x3F,
                    tagged=bool(bits >> 22 & 1),
                    unknown=bool(bits >> 23 & 1),
                )
            )
        elif subtype in INVENTORY_SUBTYPES:
            inventory[INVENTORY_SUBTYPES[subtype]] = _text(body)
    elif oui == OUI_8023 and subtype == 1 and len(body) == 5:
        autoneg, pmd, mau = struct.unpack("!BHH", body)
        fields["mac_phy"] = MacPhy(
            autoneg_supported=bool(autoneg & 1),
            autoneg_enabled=bool(autoneg & 2),
            pmd_capabilities=pmd,
            mau_type=mau,
        )


# ---------------------------------------------------------------- CDP


def cdp_checksum(data: bytes) -> int:
    """The CDP header checksum over `data` (header with checksum 0, then the
    TLVs): RFC 1071's sum, an odd last byte padded Cisco's way (module doc)."""
    if len(data) % 2:
        last = data[-1]
        data = data[:-1] + (bytes((0, last)) if last <= 0x80 else bytes((0xFF, last - 1)))
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _cdp_tlv(tlv_type: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF - 4:
        raise ValueError(f"CDP TLV 0x{tlv_type:04x} of {len(value)} bytes")
    return struct.pack("!HH", tlv_type, len(value) + 4) + value


def encode_cdp(adv: CdpAdvertisement) -> bytes:
    """A CDPv2 frame (802.3 + LLC/SNAP), padded to 60 bytes."""
    tlvs = [_cdp_tlv(CDP_DEVICE_ID, adv.device_id.encode())]
    if adv.address is not None:
        # One address: protocol type 1 (NLPID), length 1, protocol 0xcc (IP).
        record = b"\x01\x01\xcc" + struct.pack("!H", 4) + adv.address.packed
        tlvs.append(_cdp_tlv(CDP_ADDRESSES, struct.pack("!I", 1) + record))
    tlvs.append(_cdp_tlv(CDP_PORT_ID, adv.port_id.encode()))
    tlvs.append(_cdp_tlv(CDP_CAPABILITIES, struct.pack("!I", adv.capabilities)))
    if adv.software_version:
        tlvs.append(_cdp_tlv(CDP_SOFTWARE_VERSION, adv.software_version.encode()))
    if adv.platform:
        tlvs.append(_cdp_tlv(CDP_PLATFORM, adv.platform.encode()))
    tlvs.append(_cdp_tlv(CDP_DUPLEX, b"\x01"))  # full duplex
    if adv.voice_vlan is not None:
        tlvs.append(_cdp_tlv(CDP_VOIP_VLAN_REPLY, struct.pack("!BH", 1, adv.voice_vlan)))
    body = b"".join(tlvs)
    checksum = cdp_checksum(struct.pack("!BBH", 2, adv.ttl, 0) + body)
    pdu = _CDP_SNAP + struct.pack("!BBH", 2, adv.ttl, checksum) + body
    if len(pdu) > 1500:
        raise ValueError(f"CDP frame of {len(pdu)} bytes (802.3 allows 1500)")
    return _pad(_CDP_GROUP + parse_mac(adv.mac) + struct.pack("!H", len(pdu)) + pdu)


def is_cdp(frame: bytes) -> bool:
    """Cheap test for the 802.2 socket, which also sees STP and other LLC."""
    return len(frame) >= 22 and frame[:6] == _CDP_GROUP and frame[14:22] == _CDP_SNAP


def decode_cdp(frame: bytes) -> CdpNeighbor:
    """One received 802.3 frame -> what its CDP says; DecodeError otherwise."""
    r = Reader(frame)
    if r.take(6) != _CDP_GROUP:
        raise DecodeError("CDP: wrong destination")
    source = format_mac(r.take(6))
    length = r.u16()
    if length > 1500 or length < 12:
        raise DecodeError(f"CDP: 802.3 length {length}")
    body = r.sub(length)
    if body.take(8) != _CDP_SNAP:
        raise DecodeError("CDP: not LLC/SNAP 00000c/2000")
    version = body.u8()
    if version not in (1, 2):
        raise DecodeError(f"CDP: version {version}")
    ttl = body.u8()
    body.u16()  # checksum: Cisco's odd-length rule varies by release; not checked
    fields: dict[str, Any] = {}
    addresses: list[str] = []
    count = 0
    while body.remaining:
        tlv_type = body.u16()
        tlv_length = body.u16()
        if tlv_length < 4:
            raise DecodeError(f"CDP: TLV 0x{tlv_type:04x} of length {tlv_length}")
        value = body.sub(tlv_length - 4)
        count += 1
        if count > MAX_TLVS:
            raise DecodeError(f"CDP: more than {MAX_TLVS} TLVs")
        if tlv_type == CDP_DEVICE_ID:
            fields["device_id"] = _text(value.rest())
        elif tlv_type == CDP_PORT_ID:
            fields["port_id"] = _text(value.rest())
        elif tlv_type == CDP_PLATFORM:
            fields["platform"] = _text(value.rest())
        elif tlv_type == CDP_SOFTWARE_VERSION:
            fields["software_version"] = _text(value.rest())
        elif tlv_type == CDP_CAPABILITIES:
            fields["capabilities"] = value.u32()
        elif tlv_type == CDP_NATIVE_VLAN:
            fields["native_vlan"] = value.u16()
        elif tlv_type == CDP_VOIP_VLAN_REPLY:
            value.u8()
            fields["voip_vlan_reply"] = value.u16()
        elif tlv_type == CDP_VOIP_VLAN_QUERY:
            value.u8()
            fields["voip_vlan_query"] = value.u16() if value.remaining >= 2 else 0
        elif tlv_type == CDP_ADDRESSES:
            addresses.extend(_cdp_addresses(value))
    return CdpNeighbor(
        source=source, version=version, ttl=ttl, addresses=tuple(addresses), **fields
    )


def _cdp_addresses(r: Reader) -> list[str]:
    out: list[str] = []
    for _ in range(r.u32()):
        protocol_type = r.u8()
        protocol = r.take(r.u8())
        address = r.take(r.u16())
        if protocol_type == 1 and protocol == b"\xcc" and len(address) == 4:
            out.append(str(IPv4Address(address)))
    return out


__all__ = [
    "CdpAdvertisement",
    "CdpNeighbor",
    "DecodeError",
    "Inventory",
    "LldpAdvertisement",
    "LldpNeighbor",
    "MacPhy",
    "MedCapabilities",
    "NetworkPolicy",
    "cdp_checksum",
    "decode_cdp",
    "decode_lldp",
    "encode_cdp",
    "encode_lldp",
    "is_cdp",
]
