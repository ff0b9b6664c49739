"""LLDP/CDP on raw AF_PACKET sockets: send what the advertiser decides, hear phones.

LLDP and CDP are untagged link-local frames (802.1AB §7.1: the nearest-bridge
group address is never forwarded), so they go out on the physical interface:
when `appliance.interface` or a DHCP scope is a VLAN subinterface (`eth0.100`,
found through /proc/net/vlan, else by the `parent.vid` name), the frames go
out on its parent (`eth0`), once per parent however many VLANs sit on it.

Per interface one socket bound to ethertype 0x88cc (LLDP) and, when `cdp` is
on, one bound to ETH_P_802_2 (Linux hands 802.3 length frames, CDP among them,
to that type); each joins its multicast group so a real NIC passes it up.
What the phones send is decoded and put into the registry under the frame's
source MAC when a neighbour is new or says something new; frames of stations
that are not phones (no LLDP-MED endpoint class, no telephone capability, no
CDP phone bit or VoIP VLAN query) only feed the neighbour table. Malformed
frames are logged (rate-limited), counted in BAD_INPUT and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Iterable
from ipaddress import IPv4Address
from typing import Any

from netboot import metrics, netif
from netboot.config import Config
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
from netboot.ratelog import RateLimitedLog
from netboot.registry import Registry
from netboot.sockbuf import set_receive_buffer
from netboot.supervisor import Context
from netboot.wire import DecodeError, format_mac, parse_mac

log = logging.getLogger("netboot.lldp")

ETH_P_802_2 = 0x0004
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_MULTICAST = 0
PACKET_OUTGOING = 4
LLDP_GROUP = bytes.fromhex("0180c200000e")
CDP_GROUP = bytes.fromhex("01000ccccccc")
CDP_CAP_PHONE = 0x80
# Then yield to the loop: a new neighbour's frame takes ~0.7 ms to decode, so
# a flood of new phones holds other services (DHCP) up for at most ~3 ms.
READS_PER_WAKEUP = 4


def is_phone_lldp(neighbor: LldpNeighbor) -> bool:
    return neighbor.is_med_endpoint or bool((neighbor.capabilities or 0) & CAP_TELEPHONE)


def is_phone_cdp(neighbor: CdpNeighbor) -> bool:
    return (
        bool((neighbor.capabilities or 0) & CDP_CAP_PHONE)
        or neighbor.voip_vlan_query is not None
        or "phone" in (neighbor.platform or "").lower()
    )


def lldp_detail(interface: str, n: LldpNeighbor) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "interface": interface,
        "protocol": "lldp",
        "chassis_id": n.chassis_id,
        "port_id": n.port_id,
        "ttl": n.ttl,
        "system_name": n.system_name,
        "system_description": n.system_description,
        "management_addresses": list(n.management_addresses),
    }
    if n.med is not None:
        detail["med_device_type"] = MED_DEVICE_TYPES.get(n.med.device_type, n.med.device_type)
    if n.policies:
        detail["policies"] = [
            {
                "application": MED_APP_TYPES.get(p.app_type, p.app_type),
                "vlan": p.vlan,
                "tagged": p.tagged,
                "priority": p.priority,
                "dscp": p.dscp,
            }
            for p in n.policies
        ]
    for key, value in n.inventory.__dict__.items():
        if value:
            detail[key] = value
    return detail


def cdp_detail(interface: str, n: CdpNeighbor) -> dict[str, Any]:
    return {
        "interface": interface,
        "protocol": "cdp",
        "device_id": n.device_id,
        "port_id": n.port_id,
        "platform": n.platform,
        "software_version": n.software_version,
        "addresses": list(n.addresses),
        "voip_vlan_query": n.voip_vlan_query,
    }


def _first_ipv4(addresses: Iterable[str]) -> str | None:
    for address in addresses:
        if "." in address:
            return address
    return None


def _interface_ipv4(name: str) -> IPv4Address | None:
    try:
        found = netif.addresses(name)
    except OSError:
        return None
    return found[0].ip if found else None


class LldpService:
    name = "lldp"

    def __init__(self, config: Config, registry: Registry) -> None:
        self.config = config
        self.registry = registry
        self.ports: dict[str, LocalPort] = {}
        self.advertiser: Advertiser | None = None
        self._sockets: list[tuple[socket.socket, LocalPort, Protocol]] = []
        self._send_socket: dict[tuple[str, Protocol], socket.socket] = {}
        self._frames: dict[tuple[Any, ...], bytes] = {}
        self._decoded: dict[tuple[str, str], tuple[bytes, LldpNeighbor | CdpNeighbor]] = {}
        self._own_macs: set[bytes] = set()
        self._wake = asyncio.Event()
        self._bad = RateLimitedLog(log)
        self._send_errors = RateLimitedLog(log)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for name in netif.physical_interfaces(self.config.interfaces):
            try:
                port = LocalPort(
                    name=name,
                    mac=format_mac(netif.mac(name)),
                    if_index=socket.if_nametoindex(name),
                    address=self._address_for(name),
                )
            except OSError as exc:
                raise OSError(f"lldp: interface {name}: {exc.strerror or exc}") from exc
            self.ports[name] = port
            self._own_macs.add(parse_mac(port.mac))
            self._open(port, "lldp", LLDP_GROUP)
            if self.config.lldp.cdp:
                self._open(port, "cdp", CDP_GROUP)
        for sock, port, protocol in self._sockets:
            loop.add_reader(sock.fileno(), self._readable, sock, port, protocol)
        self.advertiser = Advertiser(self.config.lldp, tuple(self.ports), time.monotonic())
        vlan = self.config.lldp.voice_vlan
        log.info(
            "lldp: advertising on %s: %s",
            ", ".join(self.ports),
            f"voice VLAN {vlan} priority {self.config.lldp.priority} "
            f"DSCP {self.config.lldp.dscp}/{self.config.lldp.signaling_dscp}"
            if vlan is not None
            else "no voice VLAN (lldp.voice_vlan unset)",
        )

    def _address_for(self, name: str) -> IPv4Address | None:
        for candidate in (name, self.config.appliance.interface):
            address = self.config.server_address(candidate) or _interface_ipv4(candidate)
            if address is not None:
                return address
        return None

    def _open(self, port: LocalPort, protocol: Protocol, group: bytes) -> None:
        ethertype = 0x88CC if protocol == "lldp" else ETH_P_802_2
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
        try:
            sock.bind((port.name, ethertype))
            set_receive_buffer(sock)
            sock.setsockopt(
                SOL_PACKET,
                PACKET_ADD_MEMBERSHIP,
                struct.pack("iHH8s", port.if_index, PACKET_MR_MULTICAST, 6, group),
            )
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(f"lldp: cannot open {protocol} socket on {port.name}: {exc}") from exc
        self._sockets.append((sock, port, protocol))
        self._send_socket[(port.name, protocol)] = sock

    async def serve(self) -> None:
        assert self.advertiser is not None, "start() first"
        while True:
            self._wake.clear()
            for tx in self.advertiser.due(time.monotonic()):
                self._transmit(tx)
            delay = max(0.0, self.advertiser.next_wakeup() - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def reconfigure(self, config: Config) -> None:
        """A reload: the new policy (voice VLAN, priority, DSCP, interval, name)
        goes out at once on every port; the neighbour table stays."""
        self.config = config
        self._frames.clear()
        if self.advertiser is not None:
            self.advertiser.reconfigure(config.lldp, time.monotonic())
        self._wake.set()
        vlan = config.lldp.voice_vlan
        log.info(
            "lldp: reconfigured: %s",
            f"voice VLAN {vlan} priority {config.lldp.priority} "
            f"DSCP {config.lldp.dscp}/{config.lldp.signaling_dscp}"
            if vlan is not None
            else "no voice VLAN",
        )

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for sock, _, _ in self._sockets:
            loop.remove_reader(sock.fileno())
        if self.advertiser is not None:
            for tx in self.advertiser.shutdown():
                self._transmit(tx)
        for sock, _, _ in self._sockets:
            sock.close()
        self._sockets.clear()
        self._send_socket.clear()

    # ------------------------------------------------------------ sending

    def frame(self, tx: Transmit) -> bytes:
        """The encoded frame for `tx` (encoding takes milliseconds: cached)."""
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

    def _transmit(self, tx: Transmit) -> None:
        sock = self._send_socket.get((tx.interface, tx.protocol))
        if sock is None:
            return
        try:
            sock.send(self.frame(tx))
        except OSError as exc:  # link down, queue full: the next interval retries
            self._send_errors.warning(
                "send",
                f"lldp: cannot send {tx.protocol} on {tx.interface}: {exc}",
                time.monotonic(),
            )
            return
        metrics.LLDP_FRAMES.labels(direction="out", protocol=tx.protocol).inc()

    # ------------------------------------------------------------ receiving

    def _readable(self, sock: socket.socket, port: LocalPort, protocol: Protocol) -> None:
        for _ in range(READS_PER_WAKEUP):
            try:
                data, address = sock.recvfrom(9216)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ENETDOWN while the link is down: no traceback
                self._bad.warning(
                    f"recv:{port.name}",
                    f"lldp: cannot receive on {port.name}: {exc.strerror or exc} (link down?)",
                    time.monotonic(),
                )
                return
            if address[2] == PACKET_OUTGOING:
                continue
            self.received(port.name, protocol, data, time.monotonic())

    def received(self, interface: str, protocol: Protocol, data: bytes, now: float) -> None:
        """One frame heard on `interface`: decode, tell the advertiser, record."""
        if protocol == "cdp" and not is_cdp(data):
            return  # STP and other LLC traffic on the 802.2 socket
        if len(data) < 14 or data[6:12] in self._own_macs:
            return
        source = format_mac(data[6:12])
        cached = self._decoded.get((interface, source))
        neighbor: LldpNeighbor | CdpNeighbor
        if cached is not None and cached[0] == data:
            neighbor = cached[1]
        else:
            try:
                neighbor = decode_lldp(data) if protocol == "lldp" else decode_cdp(data)
            except DecodeError as exc:
                metrics.BAD_INPUT.labels(service="lldp").inc()
                self._bad.warning(
                    "decode",
                    f"lldp: dropped bad {protocol} frame from {source}: {exc}",
                    time.monotonic(),
                )
                return
            while len(self._decoded) >= self.config.lldp.max_neighbors:
                self._decoded.pop(next(iter(self._decoded)))
            self._decoded[(interface, source)] = (data, neighbor)
        metrics.LLDP_FRAMES.labels(direction="in", protocol=protocol).inc()
        assert self.advertiser is not None
        heard: Heard
        if isinstance(neighbor, LldpNeighbor):
            heard = self.advertiser.heard_lldp(interface, neighbor, now)
            if heard.changed and (heard.gone or is_phone_lldp(neighbor)):
                self._record_lldp(interface, neighbor, heard)
        else:
            heard = self.advertiser.heard_cdp(interface, neighbor, now)
            if heard.changed and is_phone_cdp(neighbor):
                self._record_cdp(interface, neighbor)
        if heard.evicted:
            metrics.LIMITED.labels("lldp", "neighbors-evicted").inc()
            self._bad.warning(
                "evicted",
                f"lldp: neighbour table full ({self.config.lldp.max_neighbors}):"
                " forgetting the neighbour heard least recently",
                now,
            )
        if heard.fast_start or heard.answer_now:
            self._wake.set()

    def _record_lldp(self, interface: str, n: LldpNeighbor, heard: Heard) -> None:
        if heard.gone:
            self.registry.record(
                n.source, "lldp", "neighbor-gone", {"interface": interface, "protocol": "lldp"}
            )
            return
        inventory = n.inventory
        log.info(
            "lldp: %s on %s: %s %s %s",
            n.source,
            interface,
            n.system_name or "-",
            inventory.manufacturer or "",
            inventory.model or "",
        )
        self.registry.record(
            n.source,
            "lldp",
            "neighbor",
            lldp_detail(interface, n),
            ip=_first_ipv4(n.management_addresses),
            vendor=inventory.manufacturer,
            model=inventory.model,
            firmware=inventory.firmware_revision or inventory.software_revision,
            lldp_name=n.system_name,
        )

    def _record_cdp(self, interface: str, n: CdpNeighbor) -> None:
        platform = n.platform or ""
        self.registry.record(
            n.source,
            "lldp",
            "neighbor",
            cdp_detail(interface, n),
            ip=_first_ipv4(n.addresses),
            vendor="Cisco" if platform.lower().startswith("cisco") else None,
            model=platform or None,
            firmware=n.software_version,
            lldp_name=n.device_id,
        )


def create(ctx: Context) -> LldpService:
    return LldpService(ctx.config, ctx.registry)
