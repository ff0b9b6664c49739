"""scapy as an independent oracle for netboot.lldp.codec (tests only).

netboot's codec is plain bytes; these are the same frames built and read by
scapy: its LLDP and CDP layers, plus LLDP-MED and 802.3 MAC/PHY TLV classes
(scapy 2.x parses those only as generic org-specific TLVs), inserted into
scapy's type-127 dispatch so `Ether(raw)` of any LLDP frame yields them.
Nothing under netboot/ imports this module or scapy.
"""

from __future__ import annotations

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

from netboot.lldp.codec import (
    APP_VOICE,
    CDP_MULTICAST,
    INVENTORY_SUBTYPES,
    LLDP_ETHERTYPE,
    LLDP_MULTICAST,
    MED_APP_TYPES,
    MED_CAP_CAPABILITIES,
    MED_DEVICE_TYPES,
    MED_NETWORK_CONNECTIVITY,
    OUI_8023,
    OUI_MED,
    CdpAdvertisement,
    Inventory,
    LldpAdvertisement,
    LldpNeighbor,
    MacPhy,
    MedCapabilities,
    NetworkPolicy,
)

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


def scapy_encode_lldp(adv: LldpAdvertisement) -> bytes:
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


def _id_text(subtype: int, tlv: Any, mac_subtype: int, address_subtype: int) -> str:
    if subtype == mac_subtype:
        return str(tlv.id)
    if subtype == address_subtype:
        return str(tlv.id) if tlv.family in (1, 2) else bytes(tlv.id).hex()
    data = bytes(tlv.id)
    text = data.decode("utf-8", errors="replace")
    return text if text.isprintable() else data.hex(":")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").rstrip("\x00")


def scapy_decode_lldp(frame: bytes) -> LldpNeighbor:
    """What scapy reads in an LLDP frame, as netboot's dataclass."""
    layers: Any = Ether(frame)
    return scapy_neighbor(layers.src, layers)  # its payload: the first TLV


def scapy_neighbor(source: str, pdu: Any) -> LldpNeighbor:
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


def scapy_encode_cdp(adv: CdpAdvertisement) -> bytes:
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
