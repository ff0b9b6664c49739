"""STUN transport on loopback: recvmmsg/sendmmsg batches, and the service
answering bare requests (fast path), attribute-carrying requests and garbage
exactly as the engine's full path would, with and without batching."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from ipaddress import IPv4Address
from types import SimpleNamespace
from typing import Any

import pytest

from netboot import metrics
from netboot.clock import SteppedClock
from netboot.config import StunConfig
from netboot.stun import batch, codec
from netboot.stun.codec import ChangeRequest, Fingerprint, StunMessage
from netboot.stun.engine import Site, respond
from netboot.stun.transport import StunService

pytestmark = pytest.mark.skipif(not batch.available(), reason="no recvmmsg in libc")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    """A server socket and two client sockets on loopback."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
    yield socks[0], socks[1], socks[2]
    for s in socks:
        s.close()


def test_batch_receives_and_answers_many_per_call(
    pair: tuple[socket.socket, socket.socket, socket.socket],
) -> None:
    server, a, b = pair
    sent = [(a if i % 2 else b, os.urandom(1 + i * 37 % 300)) for i in range(40)]
    for client, data in sent:
        client.sendto(data, server.getsockname())
    server.setblocking(False)
    got: list[tuple[bytes, tuple[str, int]]] = []
    mm = batch.Batch(16)
    while len(got) < len(sent):
        n = mm.recv(server.fileno())
        assert 0 < n <= 16  # loopback delivers at sendto: everything is queued already
        for i in range(n):
            got.append((mm.data(i), mm.source(i)))
            mm.stage(b"re:" + mm.data(i)[:8], i)
        count, failed = mm.send(server.fileno())
        assert (count, failed) == (n, [])
    assert mm.recv(server.fileno()) == 0
    assert got == [(data, client.getsockname()) for client, data in sent]
    for client in (a, b):
        for _, data in [x for x in sent if x[0] is client]:
            reply, source = client.recvfrom(2048)
            assert (reply, source) == (b"re:" + data[:8], server.getsockname())


def free_ports(count: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def requests() -> list[bytes]:
    """Bare requests (both framings), attribute-carrying ones, and garbage."""
    out = []
    for i in range(150):
        tid = os.urandom(16 if i % 3 == 0 else 12)
        out.append(codec.encode(StunMessage(codec.BINDING_REQUEST, tid, ())))
    out.append(codec.encode(StunMessage(1, os.urandom(12), (ChangeRequest(True, True),))))
    out.append(codec.encode(StunMessage(1, os.urandom(12), (Fingerprint(),))))
    out.append(
        b"\x00\x01\x00\x04" + codec.COOKIE_BYTES + os.urandom(12) + b"\x00\x01\x00\x08"
    )  # 400
    out.append(b"GET / HTTP/1.0\r\n\r\n")  # garbage: silence
    return out


async def exchange(service: StunService, port: int, datagrams: list[bytes]) -> list[Any]:
    loop = asyncio.get_running_loop()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.setblocking(False)
    await service.start()
    try:
        for data in datagrams:
            client.sendto(data, ("127.0.0.1", port))
        replies = []
        while True:
            try:
                replies.append(await asyncio.wait_for(loop.sock_recvfrom(client, 2048), 1.0))
            except TimeoutError:
                return [client.getsockname(), replies]
    finally:
        await service.stop()
        client.close()


@pytest.mark.parametrize("batched", [True, False])
def test_service_answers_like_the_engine(batched: bool) -> None:
    p1, p2 = free_ports(2)
    addresses = (IPv4Address("127.0.0.1"), IPv4Address("127.0.0.2"))
    config = StunConfig(True, addresses, (p1, p2), rate_limit=1e6)
    service = StunService(SimpleNamespace(config=SimpleNamespace(stun=config)))  # type: ignore[arg-type]
    if not batched:
        service._batch = None
    bad_before = metrics.BAD_INPUT.labels("stun")._value.get()
    datagrams = requests()
    client, replies = asyncio.run(exchange(service, p1, datagrams))
    site = Site(addresses, (p1, p2), service.site.software)
    expected: dict[bytes, tuple[bytes, tuple[str, int]]] = {}
    source = (IPv4Address(client[0]), client[1])
    for data in datagrams[:-2]:
        reply = respond(codec.decode(data), source, (0, 0), site, len(data))
        assert reply is not None
        ip, port = site.endpoint(reply.socket)
        expected[data[4:20]] = (reply.data, (str(ip), port))
    expected[datagrams[-2][4:20]] = (b"", ("127.0.0.1", p1))  # the 400, checked below
    got = {data[4:20]: (data, addr) for data, addr in replies}
    assert got.keys() == expected.keys()  # one answer each, nothing for the garbage
    for tid, (data, addr) in got.items():
        if tid == datagrams[-2][4:20]:
            assert data[:2] == b"\x01\x11" and addr == ("127.0.0.1", p1)
            continue
        assert (data, addr) == expected[tid]
    assert metrics.BAD_INPUT.labels("stun")._value.get() >= bad_before + 2


@pytest.mark.parametrize("batched", [True, False])
def test_service_rate_limits_on_its_clock(batched: bool) -> None:
    """The per-source limit runs on the service's Clock: tokens come back
    when the clock moves, not while the test waits for replies (each exchange
    below waits a wall-clock second, a token's worth at this rate)."""
    (port,) = free_ports(1)
    config = StunConfig(True, (IPv4Address("127.0.0.1"),), (port,), rate_limit=1.0)
    clock = SteppedClock(100.0)
    service = StunService(SimpleNamespace(config=SimpleNamespace(stun=config)), clock)  # type: ignore[arg-type]
    if not batched:
        service._batch = None

    def bare(count: int) -> list[bytes]:
        return [
            codec.encode(StunMessage(codec.BINDING_REQUEST, os.urandom(12), ()))
            for _ in range(count)
        ]

    _, replies = asyncio.run(exchange(service, port, bare(30)))
    assert len(replies) == 20  # the minimum burst, then silence
    _, replies = asyncio.run(exchange(service, port, bare(5)))
    assert replies == []  # a wall-clock second later, but the clock has not moved
    clock.advance(1.0)
    _, replies = asyncio.run(exchange(service, port, bare(5)))
    assert len(replies) == 1  # one token back
