"""TFTP server over asyncio UDP: sockets, timers and the loop (decisions: requests.py).

Requests arrive on `tftp.port` and go to the `Desk` (requests.py: refusals,
admission, memory budget, thread or loop, endings). Each accepted read gets
its own socket on a fresh ephemeral port, connected to the client (RFC 1350
§4: the server's TID), so transfers never see each other's packets and the
kernel drops strays. A transfer runs its `ReadSession` (session.py) on the
loop or, when long, in a thread (transfers.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from netboot.clock import LoopClock
from netboot.config import Config
from netboot.fdlimit import raise_descriptor_limit
from netboot.provisioning.files import FileResolver
from netboot.sockbuf import set_receive_buffer
from netboot.supervisor import Context
from netboot.tftp.requests import BIG_BLOCKS, MAX_THREADS, MEMORY_BUDGET, Desk, Peer, Pending
from netboot.tftp.transfers import LoopTransfer, ThreadedTransfer, connected_socket

log = logging.getLogger("netboot.tftp")
__all__ = ["BIG_BLOCKS", "MAX_THREADS", "MEMORY_BUDGET", "TftpService", "create"]


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, server: TftpService) -> None:
        self.server = server
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.server.desk.request(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("tftp: listener: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class TftpService:
    name = "tftp"

    def __init__(
        self, ctx: Context, resolver: FileResolver | None = None, host: str = "0.0.0.0"
    ) -> None:
        self.ctx = ctx
        self.resolver = resolver or ctx.files
        self.host = host
        self.port = ctx.config.tftp.port
        self.listener: asyncio.DatagramTransport | None = None
        self.pending: set[asyncio.Task[None]] = set()
        self.desk: Desk[LoopTransfer | ThreadedTransfer] = Desk(
            ctx.config.tftp, self.resolver, self, LoopClock()
        )

    async def start(self) -> None:
        raise_descriptor_limit(self.ctx.config)
        desk = self.desk  # the module's budgets (tests patch them)
        desk.memory_budget, desk.big_blocks, desk.max_threads = (
            MEMORY_BUDGET,
            BIG_BLOCKS,
            MAX_THREADS,
        )
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Listener(self), local_addr=(self.host, self.port), family=socket.AF_INET
            )
        except OSError as exc:
            raise OSError(
                exc.errno, f"tftp: cannot bind UDP {self.host}:{self.port}: {exc.strerror}"
            ) from None
        # Every phone of a floor asks for its files within the same second:
        # room for thousands of RRQs instead of the default ~90 datagrams.
        set_receive_buffer(transport.get_extra_info("socket"))
        self.listener = transport
        self.port = transport.get_extra_info("sockname")[1]
        log.info("tftp: serving %s on UDP port %d", self.resolver.root, self.port)

    async def serve(self) -> None:
        await asyncio.Event().wait()

    def reconfigure(self, config: Config) -> None:
        """A reload: timeout and retries for the next transfers (the root is
        the shared resolver's), and the admission budgets."""
        self.desk.reconfigure(config.tftp)

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
            # The socket closes on the loop's next turn: wait, so the port is
            # free when stop returns (a reload may bind it again at once).
            protocol = self.listener.get_protocol()
            if isinstance(protocol, _Listener):
                await protocol.closed
        for task in list(self.pending):
            task.cancel()
        self.desk.close()
        transfers = self.desk.transfers
        threads = [t.thread for t in transfers.values() if isinstance(t, ThreadedTransfer)]
        for thread in threads:  # each leaves within RECV_WAKE of being asked
            await asyncio.to_thread(thread.join, 5.0)
        for transfer in list(transfers.values()):
            transfer.finish()

    # ------------------------------------------------------------ the desk's Port

    def reply(self, peer: Peer, packet: bytes) -> None:
        if self.listener is not None:
            self.listener.sendto(packet, peer)

    def launch(self, peer: Peer, pending: Pending) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._open(peer, pending))
        except RuntimeError:
            self.desk.not_launched(peer)
            return
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _open(self, peer: Peer, pending: Pending) -> None:
        desk = self.desk
        session = desk.prepare(peer, pending)
        if session is None:
            return
        if desk.threaded(session):
            try:
                sock = connected_socket(peer)
            except OSError as exc:
                log.warning("tftp: cannot open a socket for %s:%d: %s", *peer, exc.strerror)
                desk.not_started(peer)
                return
            thread = ThreadedTransfer(
                peer, session, pending.outcome, sock, desk.ended, desk.bad_packet
            )
            desk.started(thread)
            thread.start()
            return
        transfer = LoopTransfer(peer, session, pending.outcome, desk.ended, desk.bad_packet)
        desk.started(transfer)
        try:
            await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: transfer, remote_addr=peer, family=socket.AF_INET
            )
        except OSError as exc:
            log.warning("tftp: cannot open a socket for %s:%d: %s", *peer, exc.strerror)
            transfer.finish()


def create(ctx: Context) -> TftpService:
    return TftpService(ctx)
