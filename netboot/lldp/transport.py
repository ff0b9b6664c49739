"""LLDP/CDP on raw AF_PACKET sockets: sockets, timers and the loop only.

Per physical interface (a VLAN's parent: netif.physical_interfaces) one socket
bound to ethertype 0x88cc and, when `cdp` is on, one bound to ETH_P_802_2
(Linux hands 802.3 length frames, CDP among them, to that type), each joined
to its multicast group (netboot/lldp/sockets.py). Every decision is `LldpEngine`'s (netboot/lldp/engine.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from ipaddress import IPv4Address

from netboot import metrics, netif
from netboot.clock import Clock, LoopClock, Timer
from netboot.config import Config
from netboot.lldp.advertiser import LocalPort, Protocol, Transmit
from netboot.lldp.engine import LldpEngine, Received, advertised_address, describe
from netboot.lldp.sockets import PACKET_OUTGOING, open_socket
from netboot.ratelog import RateLimitedLog
from netboot.registry import Registry
from netboot.supervisor import Context
from netboot.wire import format_mac

log = logging.getLogger("netboot.lldp")
READS_PER_WAKEUP = 4  # then yield to the loop (other services)


class LldpService:
    name = "lldp"

    def __init__(self, config: Config, registry: Registry, clock: Clock | None = None) -> None:
        self.config, self.registry, self.clock = config, registry, clock or LoopClock()
        self.engine: LldpEngine | None = None
        self._sockets: dict[tuple[str, Protocol], socket.socket] = {}
        self._timer: Timer | None = None
        self._log = RateLimitedLog(log)

    async def start(self) -> None:
        ports: dict[str, LocalPort] = {}
        for name in netif.physical_interfaces(self.config.interfaces):
            try:
                ports[name] = LocalPort(
                    name,
                    format_mac(netif.mac(name)),
                    socket.if_nametoindex(name),
                    advertised_address(self.config, name, self._lookup),
                )
            except OSError as exc:
                raise OSError(f"lldp: interface {name}: {exc.strerror or exc}") from exc
            for protocol in ("lldp", "cdp") if self.config.lldp.cdp else ("lldp",):
                self._open(ports[name], protocol)
        self.engine = LldpEngine(self.config, ports, self.clock.now())
        log.info("lldp: advertising on %s: %s", ", ".join(ports), describe(self.config))

    def _lookup(self, name: str) -> IPv4Address | None:
        try:
            return next((a.ip for a in netif.addresses(name)), None)
        except OSError:
            return None

    def _open(self, port: LocalPort, protocol: Protocol) -> None:
        sock = self._sockets[(port.name, protocol)] = open_socket(port, protocol)
        asyncio.get_running_loop().add_reader(
            sock.fileno(), self._readable, sock, port.name, protocol
        )

    async def serve(self) -> None:
        self._tick()
        await asyncio.get_running_loop().create_future()  # the timer does the work until cancelled

    def _tick(self) -> None:
        assert self.engine is not None, "start() first"
        for tx, frame in self.engine.due(self.clock.now()):
            self._send(tx, frame)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.clock.call_at(self.engine.next_wakeup(), self._tick)

    def reconfigure(self, config: Config) -> None:
        self.config = config
        if self.engine is not None:
            self.engine.reconfigure(config, self.clock.now())
            self._tick()
        log.info("lldp: reconfigured: %s", describe(config))

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for sock in self._sockets.values():
            asyncio.get_running_loop().remove_reader(sock.fileno())
        for tx, frame in self.engine.shutdown() if self.engine is not None else ():
            self._send(tx, frame)
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def _send(self, tx: Transmit, frame: bytes) -> None:
        sock = self._sockets.get((tx.interface, tx.protocol))
        if sock is None:
            return
        try:
            sock.send(frame)
        except OSError as exc:  # link down, queue full: the next interval retries
            self._log.warning(
                "send",
                f"lldp: cannot send {tx.protocol} on {tx.interface}: {exc}",
                self.clock.now(),
            )
            return
        metrics.LLDP_FRAMES.labels(direction="out", protocol=tx.protocol).inc()

    def _readable(self, sock: socket.socket, interface: str, protocol: Protocol) -> None:
        for _ in range(READS_PER_WAKEUP):
            try:
                data, address = sock.recvfrom(9216)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ENETDOWN while the link is down: no traceback
                self._log.warning(
                    f"recv:{interface}",
                    f"lldp: cannot receive on {interface}: {exc.strerror or exc} (link down?)",
                    self.clock.now(),
                )
                return
            if address[2] != PACKET_OUTGOING:
                self.received(interface, protocol, data)

    def received(self, interface: str, protocol: Protocol, data: bytes) -> Received:
        """One frame: the engine decides; count, log, record, wake as it says."""
        assert self.engine is not None, "start() first"
        now = self.clock.now()
        out = self.engine.received(interface, protocol, data, now)
        for key, line in out.warnings:
            self._log.warning(key, line, now)
        if out.bad is not None:
            metrics.BAD_INPUT.labels(service="lldp").inc()
        if out.counted:
            metrics.LLDP_FRAMES.labels(direction="in", protocol=protocol).inc()
        if out.evicted:
            metrics.LIMITED.labels("lldp", "neighbors-evicted").inc()
        if out.line is not None:
            log.info("%s", out.line)
        if out.record is not None:
            self.registry.record(out.record)
        if out.wake:
            self._tick()
        return out


def create(ctx: Context) -> LldpService:
    return LldpService(ctx.config, ctx.registry)
