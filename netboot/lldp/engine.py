"""LLDP/CDP decisions for one appliance: what to send when, which frames count,
which neighbours are phones and what the registry hears. No I/O; `now` passed in.

The `Advertiser` holds the transmit schedule (fast start, CDP answers, one
frame a second at most per interface) and the neighbour table; this engine
adds what the transport used to decide: frames from our own MACs are
ignored; STP and other LLC on the 802.2 socket are not CDP; a malformed frame
is a `Received.bad` (the transport logs, counts, drops it); a repeated frame
of a known neighbour is not decoded again (bounded by `lldp.max_neighbors`);
a phone (an LLDP-MED endpoint, the telephone capability, the CDP phone bit,
a VoIP VLAN query or "phone" in its platform) that is new or says something
new becomes a `Record` for the registry, as does a phone's shutdown LLDPDU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from netboot.config import Config
from netboot.events import CdpSeen, LldpSeen, MedPolicy, NeighborGone
from netboot.lldp.advertiser import (
    Advertiser,
    Heard,
    LocalPort,
    Protocol,
    Transmit,
    cdp_advertisement,
    lldp_advertisement,
)
from netboot.lldp.codec import (
    CAP_TELEPHONE,
    MED_APP_TYPES,
    MED_DEVICE_TYPES,
    CdpNeighbor,
    LldpNeighbor,
    decode_cdp,
    decode_lldp,
    encode_cdp,
    encode_lldp,
    is_cdp,
)
from netboot.wire import DecodeError, format_mac, parse_mac

CDP_CAP_PHONE = 0x80


def is_phone_lldp(neighbor: LldpNeighbor) -> bool:
    return neighbor.is_med_endpoint or bool((neighbor.capabilities or 0) & CAP_TELEPHONE)


def is_phone_cdp(neighbor: CdpNeighbor) -> bool:
    return (
        bool((neighbor.capabilities or 0) & CDP_CAP_PHONE)
        or neighbor.voip_vlan_query is not None
        or "phone" in (neighbor.platform or "").lower()
    )


def lldp_seen(interface: str, n: LldpNeighbor) -> LldpSeen:
    """The registry event of an LLDP neighbour heard on `interface`."""
    inventory = n.inventory
    return LldpSeen(
        mac=n.source,
        interface=interface,
        chassis_id=n.chassis_id,
        port_id=n.port_id,
        ttl=n.ttl,
        system_name=n.system_name,
        system_description=n.system_description,
        management_addresses=tuple(n.management_addresses),
        med_device_type=(
            MED_DEVICE_TYPES.get(n.med.device_type, n.med.device_type)
            if n.med is not None
            else None
        ),
        policies=tuple(
            MedPolicy(
                application=MED_APP_TYPES.get(p.app_type, p.app_type),
                vlan=p.vlan,
                tagged=p.tagged,
                priority=p.priority,
                dscp=p.dscp,
            )
            for p in n.policies
        )
        or None,
        hardware_revision=inventory.hardware_revision or None,
        firmware_revision=inventory.firmware_revision or None,
        software_revision=inventory.software_revision or None,
        serial_number=inventory.serial_number or None,
        manufacturer=inventory.manufacturer or None,
        model=inventory.model or None,
        asset_id=inventory.asset_id or None,
        ip=_first_ipv4(n.management_addresses),
        firmware=inventory.firmware_revision or inventory.software_revision,
    )


def cdp_seen(interface: str, n: CdpNeighbor) -> CdpSeen:
    """The registry event of a CDP phone heard on `interface`."""
    platform = n.platform or ""
    return CdpSeen(
        mac=n.source,
        interface=interface,
        device_id=n.device_id,
        port_id=n.port_id,
        platform=n.platform,
        software_version=n.software_version,
        addresses=tuple(n.addresses),
        voip_vlan_query=n.voip_vlan_query,
        ip=_first_ipv4(n.addresses),
        vendor="Cisco" if platform.lower().startswith("cisco") else None,
    )


def _first_ipv4(addresses: Iterable[str]) -> str | None:
    for address in addresses:
        if "." in address:
            return address
    return None


Record = LldpSeen | CdpSeen | NeighborGone  # what the transport records


@dataclass(frozen=True)
class Received:
    """What one frame led to."""

    protocol: Protocol
    counted: bool = False  # a well-formed frame from a neighbour (metric "in")
    bad: str | None = None  # why it was dropped as malformed
    record: Record | None = None
    wake: bool = False  # the schedule moved earlier (fast start, CDP answer)
    evicted: bool = False  # the neighbour table was full
    warnings: tuple[tuple[str, str], ...] = ()  # (key, line) for the rate-limited log
    line: str | None = None  # an info line (a phone seen)


def describe(config: Config) -> str:
    """The policy advertised, for the log."""
    lldp = config.lldp
    if lldp.voice_vlan is None:
        return "no voice VLAN (lldp.voice_vlan unset)"
    return f"voice VLAN {lldp.voice_vlan} priority {lldp.priority} DSCP {lldp.dscp}/{lldp.signaling_dscp}"


def advertised_address(
    config: Config, name: str, lookup: Callable[[str], IPv4Address | None]
) -> IPv4Address | None:
    """The management address advertised on `name`: its configured server
    address, else its own first address (`lookup`), else the same for the
    appliance's main interface."""
    for candidate in (name, config.appliance.interface):
        found = config.server_address(candidate)
        if found is None:
            found = lookup(candidate)
        if found is not None:
            return found
    return None


class LldpEngine:
    def __init__(self, config: Config, ports: dict[str, LocalPort], now: float) -> None:
        self.config = config
        self.ports = ports
        self.advertiser = Advertiser(config.lldp, tuple(ports), now)
        self.own_macs = {parse_mac(p.mac) for p in ports.values()}
        self._frames: dict[tuple[Any, ...], bytes] = {}
        self._decoded: dict[tuple[str, str], tuple[bytes, LldpNeighbor | CdpNeighbor]] = {}

    def reconfigure(self, config: Config, now: float) -> None:
        """A reload: the new policy goes out at once; the neighbour table stays."""
        self.config = config
        self._frames.clear()
        self.advertiser.reconfigure(config.lldp, now)

    # ------------------------------------------------------------ sending

    def next_wakeup(self) -> float:
        return self.advertiser.next_wakeup()

    def due(self, now: float) -> list[tuple[Transmit, bytes]]:
        return [(tx, self.frame(tx)) for tx in self.advertiser.due(now)]

    def shutdown(self) -> list[tuple[Transmit, bytes]]:
        return [(tx, self.frame(tx)) for tx in self.advertiser.shutdown()]

    def frame(self, tx: Transmit) -> bytes:
        """The encoded frame for `tx`, built once per port, protocol and TTL."""
        port = self.ports[tx.interface]
        key = (tx.interface, tx.protocol, tx.ttl, port)
        frame = self._frames.get(key)
        if frame is None:
            if tx.protocol == "lldp":
                frame = encode_lldp(lldp_advertisement(self.config, port, tx.ttl))
            else:
                frame = encode_cdp(cdp_advertisement(self.config, port, tx.ttl))
            self._frames[key] = frame
        return frame

    # ------------------------------------------------------------ hearing

    def received(self, interface: str, protocol: Protocol, data: bytes, now: float) -> Received:
        """One frame heard on `interface`."""
        if protocol == "cdp" and not is_cdp(data):
            return Received(protocol)  # STP and other LLC traffic on the 802.2 socket
        if len(data) < 14 or data[6:12] in self.own_macs:
            return Received(protocol)
        source = format_mac(data[6:12])
        cached = self._decoded.get((interface, source))
        neighbor: LldpNeighbor | CdpNeighbor
        if cached is not None and cached[0] == data:
            neighbor = cached[1]
        else:
            try:
                neighbor = decode_lldp(data) if protocol == "lldp" else decode_cdp(data)
            except DecodeError as exc:
                bad = f"dropped bad {protocol} frame from {source}: {exc}"
                return Received(protocol, bad=bad, warnings=(("decode", f"lldp: {bad}"),))
            while len(self._decoded) >= self.config.lldp.max_neighbors:
                self._decoded.pop(next(iter(self._decoded)))
            self._decoded[(interface, source)] = (data, neighbor)
        heard: Heard
        record: Record | None = None
        if isinstance(neighbor, LldpNeighbor):
            heard = self.advertiser.heard_lldp(interface, neighbor, now)
            if heard.changed and (heard.gone or is_phone_lldp(neighbor)):
                record = self._lldp_record(interface, neighbor, heard)
        else:
            heard = self.advertiser.heard_cdp(interface, neighbor, now)
            if heard.changed and is_phone_cdp(neighbor):
                record = self._cdp_record(interface, neighbor)
        warnings: tuple[tuple[str, str], ...] = ()
        if heard.evicted:
            full = f"lldp: neighbour table full ({self.config.lldp.max_neighbors})"
            warnings = (("evicted", f"{full}: forgetting the neighbour heard least recently"),)
        line = None
        if isinstance(record, LldpSeen):
            line = (
                f"lldp: {record.mac} on {interface}: {record.system_name or '-'}"
                f" {record.manufacturer or ''} {record.model or ''}"
            )
        return Received(
            protocol,
            counted=True,
            record=record,
            wake=heard.fast_start or heard.answer_now,
            evicted=heard.evicted,
            warnings=warnings,
            line=line,
        )

    @staticmethod
    def _lldp_record(interface: str, n: LldpNeighbor, heard: Heard) -> Record:
        if heard.gone:
            return NeighborGone(mac=n.source, interface=interface)
        return lldp_seen(interface, n)

    @staticmethod
    def _cdp_record(interface: str, n: CdpNeighbor) -> Record:
        return cdp_seen(interface, n)
