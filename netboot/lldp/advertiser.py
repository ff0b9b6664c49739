"""When to send LLDP and CDP, and what they say: decisions only, time passed in.

Per physical interface the appliance sends one LLDPDU every `interval`
seconds with TTL = 4 × interval (IEEE 802.1AB-2016 §9.2.5: msgTxHold 4) and,
when `cdp` is on, a CDPv2 frame every min(interval, 60) seconds (CDP's TTL is
one byte: holdtime = min(255, 4 × that)). On hearing a NEW LLDP-MED endpoint
(TIA-1057 §11.2.1 fast start; 802.1AB §9.2.5.1 txFastInit = 4, msgFastTx = 1 s)
it sends 4 LLDPDUs 1 s apart, then resumes the normal interval; a phone's CDP
VoIP VLAN Query is answered at once. Neither ever goes faster than one frame a
second per interface, however many endpoints appear together. On stop, a
shutdown LLDPDU (TTL 0, §9.2.7.5) tells the neighbours to forget us.

Content comes from `LldpConfig`, the same keys the phone configs use: the voice
policy (application 1, `dscp`) and voice-signaling policy (application 2,
`signaling_dscp`) share `voice_vlan` and `priority`, with the Tagged bit set
(phones ignore the VLAN when T = 0). MED capabilities and policies are sent
from the first frame, not only after an endpoint spoke MED (TIA-1057 lets a
network connectivity device wait): phones that wait for the network's MED
first still learn the VLAN, and other stations ignore the TLVs. Without a
`voice_vlan` the appliance advertises no network policy and no CDP VoIP VLAN:
it still identifies itself and still collects the phones' inventory (the
start-up log line says so). CDP says the same VLAN as LLDP (Cisco phones hearing two
different VLANs reboot in a loop).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Literal

from netboot import __version__
from netboot.config import Config, LldpConfig
from netboot.lldp.codec import (
    APP_VOICE,
    APP_VOICE_SIGNALING,
    CAP_BRIDGE,
    CAP_ROUTER,
    CDP_CAP_ROUTER,
    CDP_CAP_SWITCH,
    MED_CAP_CAPABILITIES,
    MED_CAP_NETWORK_POLICY,
    MED_NETWORK_CONNECTIVITY,
    CdpAdvertisement,
    CdpNeighbor,
    LldpAdvertisement,
    LldpNeighbor,
    MacPhy,
    MedCapabilities,
    NetworkPolicy,
)

TX_HOLD = 4  # TTL = TX_HOLD × interval (802.1AB msgTxHold)
FAST_START_COUNT = 4  # frames (802.1AB txFastInit)
FAST_INTERVAL = 1.0  # seconds (802.1AB msgFastTx); also the minimum gap per interface
CDP_MAX_INTERVAL = 60  # Cisco's default; CDP holdtime is one byte

Protocol = Literal["lldp", "cdp"]


@dataclass(frozen=True)
class LocalPort:
    """One interface we advertise on, as the transport found it."""

    name: str
    mac: str
    if_index: int
    address: IPv4Address | None = None


@dataclass(frozen=True)
class Transmit:
    interface: str
    protocol: Protocol
    ttl: int  # 0: LLDP shutdown


@dataclass(frozen=True)
class Heard:
    """What hearing one frame meant: `changed` is true for a new neighbour and
    when what it says changed (worth a registry event)."""

    new: bool
    changed: bool
    gone: bool = False
    fast_start: bool = False
    answer_now: bool = False
    evicted: bool = False  # the table was full: the neighbour heard least recently went


@dataclass
class _Schedule:
    next_at: float
    last_tx: float = float("-inf")
    fast_left: int = 0


@dataclass
class _Neighbor:
    expires: float
    seen: LldpNeighbor | CdpNeighbor


def lldp_ttl(config: LldpConfig) -> int:
    return min(65535, TX_HOLD * config.interval)


def cdp_interval(config: LldpConfig) -> int:
    return min(config.interval, CDP_MAX_INTERVAL)


def cdp_ttl(config: LldpConfig) -> int:
    return min(255, TX_HOLD * cdp_interval(config))


def voice_policies(config: LldpConfig) -> tuple[NetworkPolicy, ...]:
    """The two TIA-1057 network policies, or none without a voice VLAN."""
    if config.voice_vlan is None:
        return ()
    return (
        NetworkPolicy(APP_VOICE, config.voice_vlan, config.priority, config.dscp, tagged=True),
        NetworkPolicy(
            APP_VOICE_SIGNALING,
            config.voice_vlan,
            config.priority,
            config.signaling_dscp,
            tagged=True,
        ),
    )


def lldp_advertisement(config: Config, port: LocalPort, ttl: int) -> LldpAdvertisement:
    if ttl == 0:
        return LldpAdvertisement(mac=port.mac, port_id=port.name, ttl=0)
    return LldpAdvertisement(
        mac=port.mac,
        port_id=port.name,
        ttl=ttl,
        system_name=config.appliance.name,
        system_description=f"netboot {__version__} phone-provisioning appliance",
        port_description=f"netboot phone segment on {port.name}",
        capabilities=CAP_BRIDGE | CAP_ROUTER,
        enabled_capabilities=CAP_BRIDGE | CAP_ROUTER,
        management_address=port.address,
        if_index=port.if_index,
        mac_phy=MacPhy(),
        med=MedCapabilities(
            MED_CAP_CAPABILITIES | MED_CAP_NETWORK_POLICY, MED_NETWORK_CONNECTIVITY
        ),
        policies=voice_policies(config.lldp),
    )


def cdp_advertisement(config: Config, port: LocalPort, ttl: int) -> CdpAdvertisement:
    return CdpAdvertisement(
        mac=port.mac,
        device_id=config.appliance.name,
        port_id=port.name,
        ttl=ttl,
        software_version=f"netboot {__version__}",
        platform="netboot",
        capabilities=CDP_CAP_ROUTER | CDP_CAP_SWITCH,
        address=port.address,
        voice_vlan=config.lldp.voice_vlan,
    )


class Advertiser:
    """The transmit schedule of every interface and the neighbour table."""

    def __init__(self, config: LldpConfig, interfaces: tuple[str, ...], now: float) -> None:
        self.config = config
        self.interfaces = interfaces
        self._schedules: dict[tuple[str, Protocol], _Schedule] = {}
        for name in interfaces:
            self._schedules[(name, "lldp")] = _Schedule(next_at=now)
            if config.cdp:
                self._schedules[(name, "cdp")] = _Schedule(next_at=now)
        self._neighbors: dict[tuple[str, str, Protocol], _Neighbor] = {}

    def reconfigure(self, config: LldpConfig, now: float) -> None:
        """A new local policy: every port sends it now (802.1AB's transmit state
        machine sends on somethingChangedLocal), then on the new interval. Same ports and CDP
        setting (a change there restarts the service)."""
        self.config = config
        for schedule in self._schedules.values():
            schedule.next_at = now

    # ------------------------------------------------------------ sending

    def next_wakeup(self) -> float:
        return min(s.next_at for s in self._schedules.values())

    def due(self, now: float) -> list[Transmit]:
        """Frames to send now; moves each schedule on."""
        out: list[Transmit] = []
        for (name, protocol), schedule in self._schedules.items():
            if now < schedule.next_at:
                continue
            schedule.last_tx = now
            if protocol == "lldp":
                out.append(Transmit(name, "lldp", lldp_ttl(self.config)))
                if schedule.fast_left > 0:
                    schedule.fast_left -= 1
                if schedule.fast_left > 0:
                    schedule.next_at = now + FAST_INTERVAL
                else:
                    schedule.next_at = now + self.config.interval
            else:
                out.append(Transmit(name, "cdp", cdp_ttl(self.config)))
                schedule.next_at = now + cdp_interval(self.config)
        self._expire(now)
        return out

    def shutdown(self) -> list[Transmit]:
        return [Transmit(name, "lldp", 0) for name in self.interfaces]

    def _send_soon(self, schedule: _Schedule, now: float) -> None:
        schedule.next_at = min(schedule.next_at, max(now, schedule.last_tx + FAST_INTERVAL))

    # ------------------------------------------------------------ hearing

    def heard_lldp(self, interface: str, neighbor: LldpNeighbor, now: float) -> Heard:
        heard = self._remember(interface, "lldp", neighbor, neighbor.ttl, now)
        schedule = self._schedules.get((interface, "lldp"))
        if heard.new and neighbor.is_med_endpoint and schedule is not None:
            schedule.fast_left = FAST_START_COUNT
            self._send_soon(schedule, now)
            return dataclasses.replace(heard, fast_start=True)
        return heard

    def heard_cdp(self, interface: str, neighbor: CdpNeighbor, now: float) -> Heard:
        heard = self._remember(interface, "cdp", neighbor, neighbor.ttl, now)
        schedule = self._schedules.get((interface, "cdp"))
        if neighbor.voip_vlan_query is not None and schedule is not None:
            self._send_soon(schedule, now)
            return dataclasses.replace(heard, answer_now=True)
        return heard

    def _remember(
        self,
        interface: str,
        protocol: Protocol,
        seen: LldpNeighbor | CdpNeighbor,
        ttl: int,
        now: float,
    ) -> Heard:
        key = (interface, seen.source, protocol)
        known = self._neighbors.get(key)
        if known is not None and known.expires <= now:
            del self._neighbors[key]
            known = None
        if ttl == 0:
            if known is not None:
                del self._neighbors[key]
            return Heard(new=False, changed=known is not None, gone=True)
        comparable = dataclasses.replace(seen, ttl=0)
        if known is None:
            # Bounded memory whatever the segment sends (issue 16: 5000
            # LLDP-MED frames from random MACs): the neighbour heard least
            # recently makes room.
            evicted = False
            while len(self._neighbors) >= self.config.max_neighbors:
                self._neighbors.pop(next(iter(self._neighbors)))
                evicted = True
            self._neighbors[key] = _Neighbor(now + ttl, comparable)
            return Heard(new=True, changed=True, evicted=evicted)
        self._neighbors[key] = self._neighbors.pop(key)  # heard last: evicted last
        changed = known.seen != comparable
        known.expires = now + ttl
        known.seen = comparable
        return Heard(new=False, changed=changed)

    def _expire(self, now: float) -> None:
        for key in [k for k, n in self._neighbors.items() if n.expires <= now]:
            del self._neighbors[key]

    def neighbors(self, now: float) -> list[tuple[str, LldpNeighbor | CdpNeighbor]]:
        """(interface, what it last said) for every neighbour not yet expired."""
        return [(k[0], n.seen) for k, n in self._neighbors.items() if n.expires > now]


__all__ = [
    "Advertiser",
    "Heard",
    "LocalPort",
    "Transmit",
    "cdp_advertisement",
    "lldp_advertisement",
    "voice_policies",
]
