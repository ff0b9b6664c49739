"""LLDP (with LLDP-MED) and CDP frames <-> frozen dataclasses.

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
(802.3-2018 §79.3.1). scapy 2.8.0 parses MED and MAC/PHY only as generic
org-specific TLVs, so this module defines them as scapy packets and inserts
them into scapy's type-127 dispatch list: `Ether(raw)` of any LLDP frame then
yields these classes.

CDP (Cisco, version 2) is an 802.3 length frame to 01:00:0c:cc:cc:cc with
LLC/SNAP (OUI 00-00-0C, protocol 0x2000), a 4-byte header (version, TTL,
checksum) and 16-bit type / 16-bit length TLVs. A phone asks for its voice
VLAN with the VoIP VLAN Query TLV (0x000f); the switch answers with the VoIP
VLAN Reply TLV (0x000e: one byte 0x01, then the VLAN ID).

Decoding walks the TLVs with `netboot.wire.Reader` first, checking every
length against what scapy's fields will read, so scapy only ever sees a frame
whose structure is sound; every failure is a `DecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from scapy.config import conf
from scapy.contrib import cdp as scapy_cdp
from scapy.contrib import lldp as scapy_lldp
from scapy.contrib.lldp import (
    LLDPDU,
    LLDPDUChassisID,
    LLDPDUEndOfLLDPDU,
    LLDPDUGenericOrganisationSpecific,
    LLDPDUManagementAddress,
    LLDPDUPortDescription,
    LLDPDUPortID,
    LLDPDUSystemCapabilities,
    LLDPDUSystemDescription,
    LLDPDUSystemName,
    LLDPDUTimeToLive,
)
from scapy.fields import (
    BitEnumField,
    BitField,
    BitFieldLenField,
    ByteEnumField,
    ByteField,
    FlagsField,
    ShortEnumField,
    ShortField,
    StrLenField,
    ThreeBytesField,
)
from scapy.layers.l2 import LLC, SNAP, Dot3, Ether

from netboot.wire import DecodeError, Reader, format_mac

LLDP_MULTICAST = "01:80:c2:00:00:0e"
LLDP_ETHERTYPE = 0x88CC
CDP_MULTICAST = "01:00:0c:cc:cc:cc"
OUI_MED = 0x0012BB
OUI_8023 = 0x00120F
MAX_TLVS = 64  # real LLDPDUs carry ~20; bounds scapy's per-layer recursion

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
CDP_VOIP_VLAN_REPLY = 0x000E
CDP_VOIP_VLAN_QUERY = 0x000F
CDP_CAP_ROUTER = 0x01
CDP_CAP_SWITCH = 0x08
CDP_CAP_HOST = 0x10
CDP_CAP_IGMP = 0x20


# ---------------------------------------------------------------- scapy classes


class _OrgSpecific(LLDPDUGenericOrganisationSpecific):
    """An org-specific TLV of one (OUI, subtype); `LENGTH` is the exact TLV
    length for fixed-size ones, None for variable ones."""

    OUI = 0
    SUBTYPE = 0
    LENGTH: int | None = None

    @classmethod
    def _match_organization_specific(cls, payload: bytes) -> bool:
        if len(payload) < 6:
            return False
        length = ((payload[0] & 1) << 8) | payload[1]
        return (
            int.from_bytes(payload[2:5], "big") == cls.OUI
            and payload[5] == cls.SUBTYPE
            and (cls.LENGTH is None or length == cls.LENGTH)
        )

    def _check(self) -> None:
        if (
            conf.contribs["LLDP"].strict_mode()
            and self.LENGTH is not None
            and self._length is not None
            and self._length != self.LENGTH
        ):
            raise scapy_lldp.LLDPInvalidLengthField(
                f"length must be {self.LENGTH} - got {self._length}"
            )


class LLDPDUMedCapabilities(_OrgSpecific):
    """TIA-1057 §10.2.2: LLDP-MED capabilities and device type."""

    name = "LLDP-MED Capabilities"
    OUI, SUBTYPE, LENGTH = OUI_MED, 1, 7
    fields_desc = [  # noqa: RUF012 (scapy's own convention)
        BitEnumField("_type", 127, 7, LLDPDU.TYPES),
        BitField("_length", 7, 9),
        ThreeBytesField("org_code", OUI_MED),
        ByteField("subtype", 1),
        FlagsField(
            "capabilities",
            MED_CAP_CAPABILITIES,
            16,
            [
                "capabilities",
                "network_policy",
                "location",
                "mdi_pse",
                "mdi_pd",
                "inventory",
            ],
        ),
        ByteEnumField("device_type", MED_NETWORK_CONNECTIVITY, MED_DEVICE_TYPES),
    ]


class LLDPDUMedNetworkPolicy(_OrgSpecific):
    """TIA-1057 §10.2.3: one application's VLAN, 802.1p priority and DSCP."""

    name = "LLDP-MED Network Policy"
    OUI, SUBTYPE, LENGTH = OUI_MED, 2, 8
    fields_desc = [  # noqa: RUF012
        BitEnumField("_type", 127, 7, LLDPDU.TYPES),
        BitField("_length", 8, 9),
        ThreeBytesField("org_code", OUI_MED),
        ByteField("subtype", 2),
        ByteEnumField("app_type", APP_VOICE, MED_APP_TYPES),
        BitField("unknown", 0, 1),
        BitField("tagged", 1, 1),
        BitField("reserved", 0, 1),
        BitField("vlan", 0, 12),
        BitField("priority", 0, 3),
        BitField("dscp", 0, 6),
    ]


class LLDPDUMedInventory(_OrgSpecific):
    """TIA-1057 §10.2.6: an inventory string (subclasses fix the subtype)."""

    name = "LLDP-MED Inventory"
    OUI = OUI_MED
    fields_desc = [  # noqa: RUF012
        BitEnumField("_type", 127, 7, LLDPDU.TYPES),
        BitFieldLenField("_length", None, 9, length_of="value", adjust=lambda pkt, x: x + 4),
        ThreeBytesField("org_code", OUI_MED),
        ByteEnumField("subtype", 5, INVENTORY_SUBTYPES),
        StrLenField("value", b"", length_from=lambda pkt: (pkt._length or 4) - 4),
    ]


def _inventory_class(subtype: int, title: str) -> type[LLDPDUMedInventory]:
    fields = list(LLDPDUMedInventory.fields_desc)
    fields[3] = ByteEnumField("subtype", subtype, INVENTORY_SUBTYPES)
    cls = type(
        f"LLDPDUMed{title.replace(' ', '')}",
        (LLDPDUMedInventory,),
        {"name": f"LLDP-MED {title}", "SUBTYPE": subtype, "fields_desc": fields},
    )
    return cls


LLDPDUMedHardwareRevision = _inventory_class(5, "Hardware Revision")
LLDPDUMedFirmwareRevision = _inventory_class(6, "Firmware Revision")
LLDPDUMedSoftwareRevision = _inventory_class(7, "Software Revision")
LLDPDUMedSerialNumber = _inventory_class(8, "Serial Number")
LLDPDUMedManufacturer = _inventory_class(9, "Manufacturer")
LLDPDUMedModel = _inventory_class(10, "Model")
LLDPDUMedAssetID = _inventory_class(11, "Asset ID")
INVENTORY_CLASSES: dict[int, type[LLDPDUMedInventory]] = {
    5: LLDPDUMedHardwareRevision,
    6: LLDPDUMedFirmwareRevision,
    7: LLDPDUMedSoftwareRevision,
    8: LLDPDUMedSerialNumber,
    9: LLDPDUMedManufacturer,
    10: LLDPDUMedModel,
    11: LLDPDUMedAssetID,
}


class LLDPDUDot3MacPhy(_OrgSpecific):
    """IEEE 802.3-2018 §79.3.1: MAC/PHY configuration/status."""

    name = "IEEE 802.3 MAC/PHY Configuration/Status"
    OUI, SUBTYPE, LENGTH = OUI_8023, 1, 9
    fields_desc = [  # noqa: RUF012
        BitEnumField("_type", 127, 7, LLDPDU.TYPES),
        BitField("_length", 9, 9),
        ThreeBytesField("org_code", OUI_8023),
        ByteField("subtype", 1),
        FlagsField("autoneg", 0x03, 8, ["supported", "enabled"]),
        ShortField("pmd_capabilities", 0),
        ShortEnumField("mau_type", 0, {16: "100BASE-TX FD", 30: "1000BASE-T FD"}),
    ]


class LLDPDUReserved(LLDPDU):
    """TLV types 9-126 (reserved, §8.4.1): kept as bytes so that the TLVs
    after one still parse (scapy would swallow the rest as Raw)."""

    name = "LLDP Reserved TLV"
    fields_desc = [  # noqa: RUF012
        BitField("_type", 9, 7),
        BitFieldLenField("_length", None, 9, length_of="data"),
        StrLenField("data", b"", length_from=lambda pkt: pkt._length or 0),
    ]


def _register() -> None:
    """Put our classes in front of scapy's generic org-specific TLV."""
    dispatch: dict[int, Any] = scapy_lldp.LLDPDU_CLASS_TYPES
    org: list[type[Any]] = dispatch[127]
    ours: list[type[Any]] = [
        LLDPDUMedCapabilities,
        LLDPDUMedNetworkPolicy,
        *INVENTORY_CLASSES.values(),
        LLDPDUDot3MacPhy,
    ]
    for cls in reversed(ours):
        if cls not in org:
            org.insert(0, cls)
    for tlv_type in range(9, 127):
        dispatch.setdefault(tlv_type, LLDPDUReserved)


_register()


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


def encode_lldp(adv: LldpAdvertisement) -> bytes:
    """The Ethernet frame (padded to 60 bytes) for one LLDPDU."""
    frame: Any = (
        Ether(dst=LLDP_MULTICAST, src=adv.mac, type=LLDP_ETHERTYPE)
        / LLDPDUChassisID(subtype=LLDPDUChassisID.SUBTYPE_MAC_ADDRESS, id=adv.mac)
        / LLDPDUPortID(subtype=LLDPDUPortID.SUBTYPE_INTERFACE_NAME, id=adv.port_id.encode())
        / LLDPDUTimeToLive(ttl=adv.ttl)
    )
    if adv.ttl > 0:  # a shutdown LLDPDU carries only the mandatory TLVs (§9.2.7.5)
        if adv.port_description:
            frame /= LLDPDUPortDescription(description=adv.port_description.encode())
        if adv.system_name:
            frame /= LLDPDUSystemName(system_name=adv.system_name.encode())
        if adv.system_description:
            frame /= LLDPDUSystemDescription(description=adv.system_description.encode())
        if adv.capabilities:
            frame /= LLDPDUSystemCapabilities(
                **_capability_bits(adv.capabilities, "available"),
                **_capability_bits(adv.enabled_capabilities, "enabled"),
            )
        if adv.management_address is not None:
            frame /= LLDPDUManagementAddress(
                management_address_subtype=LLDPDUManagementAddress.SUBTYPE_MANAGEMENT_ADDRESS_IPV4,
                management_address=adv.management_address.packed,
                interface_numbering_subtype=LLDPDUManagementAddress.SUBTYPE_INTERFACE_NUMBER_IF_INDEX,
                interface_number=adv.if_index,
            )
        if adv.mac_phy is not None:
            frame /= LLDPDUDot3MacPhy(
                autoneg=int(adv.mac_phy.autoneg_supported) | int(adv.mac_phy.autoneg_enabled) << 1,
                pmd_capabilities=adv.mac_phy.pmd_capabilities,
                mau_type=adv.mac_phy.mau_type,
            )
        if adv.med is not None:
            frame /= LLDPDUMedCapabilities(
                capabilities=adv.med.capabilities, device_type=adv.med.device_type
            )
        for policy in adv.policies:
            frame /= LLDPDUMedNetworkPolicy(
                app_type=policy.app_type,
                unknown=int(policy.unknown),
                tagged=int(policy.tagged),
                vlan=policy.vlan,
                priority=policy.priority,
                dscp=policy.dscp,
            )
    frame /= LLDPDUEndOfLLDPDU()
    return bytes(frame)


_CAPABILITY_NAMES = (
    "other",
    "repeater",
    "mac_bridge",
    "wlan_access_point",
    "router",
    "telephone",
    "docsis_cable_device",
    "station_only",
    "c_vlan_component",
    "s_vlan_component",
    "two_port_mac_relay",
)


def _capability_bits(bitmap: int, suffix: str) -> dict[str, Any]:
    return {f"{name}_{suffix}": (bitmap >> bit) & 1 for bit, name in enumerate(_CAPABILITY_NAMES)}


def _capability_bitmap(tlv: Any, suffix: str) -> int:
    return sum(
        int(getattr(tlv, f"{name}_{suffix}")) << bit for bit, name in enumerate(_CAPABILITY_NAMES)
    )


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


def _check_lldp_tlvs(r: Reader) -> int:
    """Walk the TLVs; raise DecodeError unless scapy's fields will read each
    one exactly. Returns where the LLDPDU ends."""
    seen: set[int] = set()
    index = 0
    while r.remaining >= 2:
        header = r.u16()
        tlv_type, length = header >> 9, header & 0x1FF
        value = r.take(length)
        if tlv_type == 0:
            if length != 0:
                raise DecodeError(f"LLDP: End TLV with length {length}")
            return r.pos
        if index < 3 and tlv_type != index + 1:
            raise DecodeError(f"LLDP: TLV {index + 1} must be type {index + 1}, not {tlv_type}")
        if tlv_type in (1, 2, 3):
            if tlv_type in seen:
                raise DecodeError(f"LLDP: TLV type {tlv_type} repeated")
            seen.add(tlv_type)
        index += 1
        if index > MAX_TLVS:
            raise DecodeError(f"LLDP: more than {MAX_TLVS} TLVs")
        _check_tlv_value(tlv_type, value)
    if index < 3:
        raise DecodeError("LLDP: missing Chassis ID, Port ID or TTL")
    if r.remaining:
        raise DecodeError("LLDP: odd byte after the last TLV")
    return r.pos


def _check_tlv_value(tlv_type: int, value: bytes) -> None:
    length = len(value)
    if tlv_type in (1, 2):
        if length < 2:
            raise DecodeError(f"LLDP: ID TLV {tlv_type} too short")
        subtype = value[0]
        mac_subtype, address_subtype = (4, 5) if tlv_type == 1 else (3, 4)
        if subtype == mac_subtype and length != 7:
            raise DecodeError(f"LLDP: MAC ID of {length - 1} bytes")
        if subtype == address_subtype and (
            (value[1] == 1 and length != 6) or (value[1] == 2 and length != 18) or length < 3
        ):
            raise DecodeError("LLDP: bad network address ID")
    elif tlv_type == 3 and length != 2:
        raise DecodeError(f"LLDP: TTL TLV of length {length}")
    elif tlv_type == 7 and length != 4:
        raise DecodeError(f"LLDP: capabilities TLV of length {length}")
    elif tlv_type == 8:
        # §8.5.9: address string length (1 + 1..31), subtype + address,
        # interface numbering subtype, number (4), OID length, OID.
        if length < 9:
            raise DecodeError("LLDP: management address TLV too short")
        address_length = value[0]
        if not 2 <= address_length <= 32 or address_length + 7 > length:
            raise DecodeError("LLDP: bad management address length")
        oid_length = value[address_length + 6]
        if address_length + 7 + oid_length != length:
            raise DecodeError("LLDP: management address TLV length mismatch")
    elif tlv_type == 127 and length < 4:
        raise DecodeError("LLDP: organisationally specific TLV shorter than its OUI")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").rstrip("\x00")


def _id_text(subtype: int, tlv: Any, mac_subtype: int, address_subtype: int) -> str:
    if subtype == mac_subtype:
        return str(tlv.id)
    if subtype == address_subtype:
        return str(tlv.id) if tlv.family in (1, 2) else bytes(tlv.id).hex()
    data = bytes(tlv.id)
    text = data.decode("utf-8", errors="replace")
    return text if text.isprintable() else data.hex(":")


def decode_lldp(frame: bytes) -> LldpNeighbor:
    """One received Ethernet frame -> what it says; DecodeError if it is not a
    well-formed LLDPDU."""
    source, ethertype, r = _ethernet_payload(frame)
    if ethertype != LLDP_ETHERTYPE:
        raise DecodeError(f"not LLDP: ethertype 0x{ethertype:04x}")
    start = r.pos
    end = _check_lldp_tlvs(r)
    try:
        # The structure has been checked above; scapy raising here would be
        # a disagreement between the check and scapy's fields.
        pdu = LLDPDU(frame[start:end])
    except Exception as exc:
        raise DecodeError(f"LLDP: {exc}") from exc
    return _neighbor(source, pdu)


def _neighbor(source: str, pdu: Any) -> LldpNeighbor:
    fields: dict[str, Any] = {}
    addresses: list[str] = []
    policies: list[NetworkPolicy] = []
    inventory: dict[str, str] = {}
    layer = pdu.payload
    while layer is not None and not isinstance(layer, conf.padding_layer):
        if isinstance(layer, LLDPDUChassisID):
            fields["chassis_subtype"] = layer.subtype
            fields["chassis_id"] = _id_text(layer.subtype, layer, 4, 5)
        elif isinstance(layer, LLDPDUPortID):
            fields["port_subtype"] = layer.subtype
            fields["port_id"] = _id_text(layer.subtype, layer, 3, 4)
        elif isinstance(layer, LLDPDUTimeToLive):
            fields["ttl"] = layer.ttl
        elif isinstance(layer, LLDPDUPortDescription):
            fields["port_description"] = _text(layer.description)
        elif isinstance(layer, LLDPDUSystemName):
            fields["system_name"] = _text(layer.system_name)
        elif isinstance(layer, LLDPDUSystemDescription):
            fields["system_description"] = _text(layer.description)
        elif isinstance(layer, LLDPDUSystemCapabilities):
            fields["capabilities"] = _capability_bitmap(layer, "available")
            fields["enabled_capabilities"] = _capability_bitmap(layer, "enabled")
        elif isinstance(layer, LLDPDUManagementAddress):
            raw = bytes(layer.management_address)
            if layer.management_address_subtype == 1 and len(raw) == 4:
                addresses.append(str(IPv4Address(raw)))
            elif layer.management_address_subtype == 2 and len(raw) == 16:
                addresses.append(str(IPv6Address(raw)))
        elif isinstance(layer, LLDPDUMedCapabilities):
            fields["med"] = MedCapabilities(int(layer.capabilities), layer.device_type)
        elif isinstance(layer, LLDPDUMedNetworkPolicy):
            policies.append(
                NetworkPolicy(
                    app_type=layer.app_type,
                    vlan=layer.vlan,
                    priority=layer.priority,
                    dscp=layer.dscp,
                    tagged=bool(layer.tagged),
                    unknown=bool(layer.unknown),
                )
            )
        elif isinstance(layer, LLDPDUMedInventory):
            inventory[INVENTORY_SUBTYPES[layer.subtype]] = _text(layer.value)
        elif isinstance(layer, LLDPDUDot3MacPhy):
            fields["mac_phy"] = MacPhy(
                autoneg_supported=bool(int(layer.autoneg) & 1),
                autoneg_enabled=bool(int(layer.autoneg) & 2),
                pmd_capabilities=layer.pmd_capabilities,
                mau_type=layer.mau_type,
            )
        elif isinstance(layer, LLDPDUEndOfLLDPDU):
            break
        layer = layer.payload if layer.payload else None
    return LldpNeighbor(
        source=source,
        management_addresses=tuple(addresses),
        policies=tuple(policies),
        inventory=Inventory(**inventory),
        **fields,
    )


# ---------------------------------------------------------------- CDP


def encode_cdp(adv: CdpAdvertisement) -> bytes:
    """A CDPv2 frame (802.3 + LLC/SNAP), padded to 60 bytes."""
    messages: list[Any] = [
        scapy_cdp.CDPMsgDeviceID(val=adv.device_id.encode()),
    ]
    if adv.address is not None:
        messages.append(
            scapy_cdp.CDPMsgAddr(naddr=1, addr=[scapy_cdp.CDPAddrRecordIPv4(addr=str(adv.address))])
        )
    messages.append(scapy_cdp.CDPMsgPortID(iface=adv.port_id.encode()))
    messages.append(scapy_cdp.CDPMsgCapabilities(cap=adv.capabilities))
    if adv.software_version:
        messages.append(scapy_cdp.CDPMsgSoftwareVersion(val=adv.software_version.encode()))
    if adv.platform:
        messages.append(scapy_cdp.CDPMsgPlatform(val=adv.platform.encode()))
    messages.append(scapy_cdp.CDPMsgDuplex(duplex=1))
    if adv.voice_vlan is not None:
        messages.append(scapy_cdp.CDPMsgVoIPVLANReply(status=1, vlan=adv.voice_vlan))
    frame = (
        Dot3(dst=CDP_MULTICAST, src=adv.mac)
        / LLC(dsap=0xAA, ssap=0xAA, ctrl=3)
        / SNAP(OUI=0x00000C, code=0x2000)
        / scapy_cdp.CDPv2_HDR(vers=2, ttl=adv.ttl, msg=messages)
    )
    return bytes(frame).ljust(60, b"\x00")


def is_cdp(frame: bytes) -> bool:
    """Cheap test for the 802.2 socket, which also sees STP and other LLC."""
    return (
        len(frame) >= 22
        and frame[:6] == b"\x01\x00\x0c\xcc\xcc\xcc"
        and frame[14:22] == b"\xaa\xaa\x03\x00\x00\x0c\x20\x00"
    )


def decode_cdp(frame: bytes) -> CdpNeighbor:
    """One received 802.3 frame -> what its CDP says; DecodeError otherwise."""
    r = Reader(frame)
    if r.take(6) != b"\x01\x00\x0c\xcc\xcc\xcc":
        raise DecodeError("CDP: wrong destination")
    source = format_mac(r.take(6))
    length = r.u16()
    if length > 1500 or length < 12:
        raise DecodeError(f"CDP: 802.3 length {length}")
    body = r.sub(length)
    if body.take(8) != b"\xaa\xaa\x03\x00\x00\x0c\x20\x00":
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
    "Inventory",
    "LldpAdvertisement",
    "LldpNeighbor",
    "MacPhy",
    "MedCapabilities",
    "NetworkPolicy",
    "decode_cdp",
    "decode_lldp",
    "encode_cdp",
    "encode_lldp",
    "is_cdp",
]
