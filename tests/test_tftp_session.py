"""TFTP read session (engine, stepped clock) and the service on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from netboot import metrics
from netboot.app import build_context
from netboot.config import parse_config
from netboot.registry import Registry
from netboot.state.leases import LeaseStore
from netboot.tftp import codec, transport
from netboot.tftp.session import Negotiated, ReadSession, negotiate
from netboot.tftp.source import CHUNK, FileChunks, netascii
from netboot.tftp.transfers import ThreadedTransfer
from netboot.tftp.transport import TftpService


def source_of(data: bytes) -> tuple[list[tuple[int, int]], object]:
    reads: list[tuple[int, int]] = []

    def read(offset: int, length: int) -> bytes:
        reads.append((offset, length))
        return data[offset : offset + length]

    return reads, read


def session(
    data: bytes,
    blksize: int = 512,
    windowsize: int = 1,
    oack: codec.Options = (),
    timeout: float = 1.0,
    retries: int = 3,
    unconfirmed_retries: int | None = None,
) -> ReadSession:
    _, read = source_of(data)
    return ReadSession(
        read,  # type: ignore[arg-type]
        len(data),
        Negotiated(blksize, windowsize, None, oack),
        timeout=timeout,
        retries=retries,
        unconfirmed_retries=retries if unconfirmed_retries is None else unconfirmed_retries,
    )


def decoded(packets: list[bytes]) -> list[codec.Message]:
    return [codec.decode(p) for p in packets]


def payload(size: int) -> bytes:
    return bytes(i * 7 % 251 for i in range(size))


# ---------------------------------------------------------------- negotiation


@pytest.mark.parametrize(
    ("options", "size", "expected"),
    [
        ((), 10, Negotiated()),
        (
            (("blksize", "1428"), ("tsize", "0")),
            5000,
            Negotiated(1428, 1, None, (("blksize", "1428"), ("tsize", "5000"))),
        ),
        ((("BLKSIZE", "100000"),), 1, Negotiated(65464, 1, None, (("BLKSIZE", "65464"),))),
        ((("blksize", "7"),), 1, Negotiated()),  # below RFC 2348's minimum: ignored
        ((("blksize", "abc"),), 1, Negotiated()),
        ((("timeout", "3"),), 1, Negotiated(512, 1, 3.0, (("timeout", "3"),))),
        ((("timeout", "0"),), 1, Negotiated()),
        ((("timeout", "256"),), 1, Negotiated()),
        ((("windowsize", "8"),), 1, Negotiated(512, 8, None, (("windowsize", "8"),))),
        ((("windowsize", "65535"),), 1, Negotiated(512, 64, None, (("windowsize", "64"),))),
        ((("windowsize", "0"),), 1, Negotiated()),
        ((("multicast", "1"), ("tsize", "0")), 0, Negotiated(oack=(("tsize", "0"),))),
    ],
)
def test_negotiate(options: codec.Options, size: int, expected: Negotiated) -> None:
    assert negotiate(codec.ReadRequest("f", "octet", options), size) == expected


def test_negotiate_caps_blksize() -> None:
    got = negotiate(codec.ReadRequest("f", "octet", (("blksize", "9000"),)), 1, max_blksize=1468)
    assert got.blksize == 1468 and got.oack == (("blksize", "1468"),)


# ---------------------------------------------------------------- lock-step


@pytest.mark.parametrize(
    ("size", "blksize", "lengths"),
    [
        (0, 512, [0]),
        (1, 512, [1]),
        (511, 512, [511]),
        (512, 512, [512, 0]),  # a multiple of the block size ends with an empty DATA
        (1200, 512, [512, 512, 176]),
        (2856, 1428, [1428, 1428, 0]),
        (3000, 1428, [1428, 1428, 144]),
    ],
)
def test_lock_step_transfer(size: int, blksize: int, lengths: list[int]) -> None:
    data = payload(size)
    s = session(data, blksize)
    now = 0.0
    out = decoded(s.start(now))
    got = b""
    seen: list[int] = []
    while out:
        [packet] = out
        assert isinstance(packet, codec.Data)
        assert packet.block == len(seen) + 1
        seen.append(len(packet.payload))
        got += packet.payload
        now += 0.01
        out = decoded(s.receive(codec.Ack(packet.block), now))
    assert seen == lengths
    assert got == data
    assert s.done and s.failed is None and s.bytes_sent == size and s.deadline is None


def test_oack_then_data_after_ack_zero() -> None:
    oack = (("blksize", "1428"), ("tsize", "3000"))
    s = session(payload(3000), 1428, oack=oack)
    assert decoded(s.start(0.0)) == [codec.OptionAck(oack)]
    assert s.receive(codec.Ack(1), 0.1) == []  # not the OACK's ACK
    [first] = decoded(s.receive(codec.Ack(0), 0.2))
    assert isinstance(first, codec.Data) and first.block == 1 and len(first.payload) == 1428


def test_oack_retransmitted_on_timeout() -> None:
    oack = (("tsize", "10"),)
    s = session(payload(10), oack=oack, timeout=2.0)
    s.start(0.0)
    assert s.on_timer(1.9) == []
    assert decoded(s.on_timer(2.0)) == [codec.OptionAck(oack)]
    assert s.deadline == 4.0


def test_client_refuses_options() -> None:
    s = session(payload(10), oack=(("blksize", "1428"),))
    s.start(0.0)
    assert s.receive(codec.Error(8, "option refused"), 0.1) == []
    assert s.failed == "client error 8: option refused" and s.acked == 0


# ---------------------------------------------------------------- windows


def test_window_sends_windowsize_blocks_and_resends_after_a_partial_ack() -> None:
    data = payload(512 * 10 + 3)
    s = session(data, windowsize=4, oack=(("windowsize", "4"),))
    s.start(0.0)
    window = decoded(s.receive(codec.Ack(0), 0.1))
    assert [m.block for m in window if isinstance(m, codec.Data)] == [1, 2, 3, 4]
    # Block 3 was lost: the client ACKs 2, the server goes on from 3.
    window = decoded(s.receive(codec.Ack(2), 0.2))
    assert [m.block for m in window if isinstance(m, codec.Data)] == [3, 4, 5, 6]
    window = decoded(s.receive(codec.Ack(6), 0.3))
    assert [m.block for m in window if isinstance(m, codec.Data)] == [7, 8, 9, 10]
    last = decoded(s.receive(codec.Ack(10), 0.4))
    assert last == [codec.Data(11, data[5120:])]
    assert s.receive(codec.Ack(11), 0.5) == [] and s.done and s.bytes_sent == len(data)


def test_duplicate_and_stale_acks_are_never_answered() -> None:
    s = session(payload(5000), windowsize=2)
    s.start(0.0)
    s.receive(codec.Ack(2), 0.1)
    assert s.receive(codec.Ack(2), 0.2) == []  # duplicate: Sorcerer's Apprentice
    assert s.receive(codec.Ack(1), 0.3) == []  # older than acked
    assert s.receive(codec.Ack(9), 0.4) == []  # beyond what was sent
    assert s.acked == 2 and s.sent == 4


# ---------------------------------------------------------------- timeouts


@pytest.mark.parametrize(
    ("retries", "timeouts", "failed"),
    [(3, 3, False), (3, 4, True), (0, 1, True), (5, 5, False)],
)
def test_retransmit_then_give_up(retries: int, timeouts: int, failed: bool) -> None:
    s = session(payload(2000), windowsize=2, timeout=1.5, retries=retries)
    first = s.start(0.0)
    now = 0.0
    for _ in range(timeouts):
        assert s.deadline is not None
        assert s.on_timer(s.deadline - 0.01) == []  # not yet
        now = s.deadline
        again = s.on_timer(now)
        if s.failed:
            assert again == []
        else:
            assert again == first
    assert (s.failed == "timeout") is failed
    assert s.finished is failed


def test_progress_resets_the_retry_count() -> None:
    s = session(payload(5000), retries=1, timeout=1.0)
    s.start(0.0)
    assert s.on_timer(1.0)  # first retransmission
    s.receive(codec.Ack(1), 1.5)
    assert s.tries == 0 and s.deadline == 2.5
    assert s.on_timer(2.5)  # one more retransmission allowed again
    assert s.failed is None


def test_client_timeout_over_the_cap_is_left_out_of_the_oack() -> None:
    rrq = codec.ReadRequest("f", "octet", (("timeout", "255"), ("tsize", "0")))
    assert negotiate(rrq, 10, max_timeout=5) == Negotiated(oack=(("tsize", "10"),))
    rrq = codec.ReadRequest("f", "octet", (("timeout", "5"),))
    assert negotiate(rrq, 10, max_timeout=5).timeout == 5.0


def test_unconfirmed_session_retransmits_little_and_answers_a_repeated_rrq() -> None:
    """A client that never answered may be a forged address: one timer
    retransmission, then the session ends; a repeated RRQ gets one resend each
    (within retries); once the client answered, the usual retries apply."""
    s = session(payload(2000), timeout=1.0, retries=3, unconfirmed_retries=1)
    first = s.start(0.0)
    assert s.on_timer(1.0) == first
    assert s.on_timer(2.0) == [] and s.failed == "timeout"

    s = session(payload(2000), timeout=1.0, retries=3, unconfirmed_retries=1)
    first = s.start(0.0)
    assert s.request_again(0.3) == first and s.deadline == 1.3
    assert s.request_again(0.4) == first
    assert s.request_again(0.5) == first
    assert s.request_again(0.6) == [] and s.failed == "timeout"

    s = session(payload(5000), timeout=1.0, retries=3, unconfirmed_retries=1)
    s.start(0.0)
    s.receive(codec.Ack(1), 0.5)
    assert s.confirmed and s.last_heard == 0.5
    assert s.request_again(0.6) == []  # a stray RRQ once the transfer runs
    for t in (1.5, 2.5, 3.5):
        assert s.on_timer(t)  # three retransmissions for a confirmed client
    assert s.on_timer(4.5) == [] and s.failed == "timeout"


# Admission (budgets, the boot-storm queue, eviction): tests/test_tftp_engine.py.


def test_requested_timeout_option_is_used() -> None:
    s = ReadSession(lambda o, n: b"x" * n, 10, Negotiated(timeout=4.0), timeout=1.0)
    s.start(10.0)
    assert s.deadline == 14.0


# ---------------------------------------------------------------- rollover


@pytest.mark.parametrize("windowsize", [1, 16])
def test_block_number_rollover(windowsize: int) -> None:
    blksize = 8
    size = blksize * (65536 + 40) + 5
    data = payload(size)
    s = session(data, blksize, windowsize)
    out = s.start(0.0)
    chunks: list[bytes] = []
    absolute = 0
    wire_blocks: list[int] = []
    now = 0.0
    while out:
        for raw in out:
            msg = codec.decode(raw)
            assert isinstance(msg, codec.Data)
            absolute += 1
            assert msg.block == absolute & 0xFFFF
            chunks.append(msg.payload)
            if absolute in (65535, 65536, 65537):
                wire_blocks.append(msg.block)
        now += 0.001
        out = s.receive(codec.Ack(absolute & 0xFFFF), now)
    assert wire_blocks == [65535, 0, 1]
    assert b"".join(chunks) == data
    assert s.done and s.bytes_sent == size


# ---------------------------------------------------------------- odd input


def test_client_data_during_a_read_is_an_error() -> None:
    s = session(payload(100))
    s.start(0.0)
    [reply] = decoded(s.receive(codec.Data(1, b"x"), 0.1))
    assert reply == codec.Error(codec.ERR_ILLEGAL, "expected an ACK")
    assert s.failed is not None


def test_file_shrinking_mid_transfer_ends_with_an_error() -> None:
    data = payload(2000)
    s = ReadSession(lambda o, n: data[o : o + n][:100], 2000, Negotiated())
    [reply] = decoded(s.start(0.0))
    assert isinstance(reply, codec.Error)
    assert s.failed == "file changed while being sent"


def test_file_chunks_reads_aligned(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = payload(700_000)
    path.write_bytes(data)
    chunks = FileChunks(path, os.stat(path))
    for offset, length in [(0, 512), (262_000, 1428), (699_999, 5), (100, 300_000)]:
        assert chunks(offset, length) == data[offset : offset + length]


def test_file_chunks_hold_no_descriptor_and_one_block_before_progress(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = payload(700_000)
    path.write_bytes(data)
    before = len(os.listdir("/proc/self/fd"))
    chunks = FileChunks(path, os.stat(path))
    assert chunks(0, 512) == data[:512]
    assert len(chunks.data) == 512  # block 1 alone: a silent client costs one block
    assert len(os.listdir("/proc/self/fd")) == before
    assert chunks(512, 512) == data[512:1024]
    assert len(chunks.data) == CHUNK


def test_file_chunks_notice_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(payload(2000))
    s = ReadSession(FileChunks(path, os.stat(path)), 2000, Negotiated())
    replacement = tmp_path / "g"
    replacement.write_bytes(payload(2000)[::-1])
    os.replace(replacement, path)
    [reply] = decoded(s.start(0.0))
    assert isinstance(reply, codec.Error)
    assert s.failed == "file changed while being sent"


def test_netascii() -> None:
    assert netascii(b"a\nb\rc\r\n") == b"a\r\nb\r\0c\r\0\r\n"


# ---------------------------------------------------------------- service on loopback

CONFIG: dict[str, dict[str, Any]] = {
    "appliance": {"interface": "lo", "state_dir": ""},
    "provisioning": {"root": ""},
    "tftp": {"port": 6969, "timeout": 0.5, "retries": 2},
    "dhcp": {"enabled": False},
    "http": {"enabled": False},
}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[TftpService, Path]]:
    root = tmp_path / "root"
    root.mkdir()
    raw = {k: dict(v) for k, v in CONFIG.items()}
    raw["appliance"]["state_dir"] = str(tmp_path / "state")
    raw["provisioning"]["root"] = str(root)
    config = parse_config(raw)
    (tmp_path / "state").mkdir()
    registry = Registry(config.appliance.state_dir)
    leases = LeaseStore(config.appliance.state_dir)
    svc = TftpService(build_context(config, registry, leases), host="127.0.0.1")
    svc.port = 0  # any free port on loopback
    yield svc, root
    registry.close()


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))

    async def get(self) -> tuple[codec.Message, tuple[str, int]]:
        data, addr = await asyncio.wait_for(self.queue.get(), 10)
        return codec.decode(data), addr


async def _client() -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_datagram_endpoint(
        Client, local_addr=("127.0.0.1", 0), family=socket.AF_INET
    )
    return client


def test_service_write_request_refused_and_read_with_options(
    service: tuple[TftpService, Path],
) -> None:
    svc, root = service
    data = payload(5000)
    (root / "fw.bin").write_bytes(data)

    async def run() -> None:
        await svc.start()
        try:
            client = await _client()
            assert client.transport is not None
            server = ("127.0.0.1", svc.port)
            client.transport.sendto(codec.encode(codec.WriteRequest("x.cfg")), server)
            reply, _ = await client.get()
            assert isinstance(reply, codec.Error) and reply.code == codec.ERR_ACCESS

            client.transport.sendto(codec.encode(codec.ReadRequest("../etc/passwd")), server)
            reply, _ = await client.get()
            assert isinstance(reply, codec.Error) and reply.code == codec.ERR_ACCESS

            client.transport.sendto(codec.encode(codec.ReadRequest("nope.cfg")), server)
            reply, _ = await client.get()
            assert reply == codec.Error(codec.ERR_NOT_FOUND, "file not found")

            client.transport.sendto(b"\x00\x09junk", server)  # bad input: dropped
            client.transport.sendto(codec.encode(codec.Ack(3)), server)
            reply, _ = await client.get()
            assert isinstance(reply, codec.Error) and reply.code == codec.ERR_UNKNOWN_TID

            rrq = codec.ReadRequest(
                "fw.bin", "octet", (("blksize", "1000"), ("tsize", "0"), ("windowsize", "2"))
            )
            client.transport.sendto(codec.encode(rrq), server)
            oack, tid = await client.get()
            assert tid[1] != svc.port  # a fresh TID per transfer (RFC 1350 §4)
            assert oack == codec.OptionAck(
                (("blksize", "1000"), ("tsize", "5000"), ("windowsize", "2"))
            )
            client.transport.sendto(codec.encode(codec.Ack(0)), tid)
            got = b""
            while True:
                msg, _ = await client.get()
                assert isinstance(msg, codec.Data)
                got += msg.payload
                if msg.block % 2 == 0 or len(msg.payload) < 1000:
                    client.transport.sendto(codec.encode(codec.Ack(msg.block)), tid)
                if len(msg.payload) < 1000:
                    break
            assert got == data

            # A client that stops answering after block 1: retransmitted, then
            # given up. (One that never answered gets no timer retransmission.)
            client.transport.sendto(codec.encode(codec.ReadRequest("fw.bin")), server)
            _, tid = await client.get()
            client.transport.sendto(codec.encode(codec.Ack(1)), tid)
            first, _ = await client.get()
            again, tid2 = await client.get()
            assert first == again and tid == tid2
            assert isinstance(first, codec.Data) and first.block == 2
            client.transport.close()

            async def drained() -> None:
                while svc.desk.transfers or svc.pending:
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(drained(), 10)
        finally:
            await svc.stop()

    asyncio.run(run())


def _served(result: str) -> float:
    value: float = metrics.FILES_SERVED.labels("tftp", result)._value.get()
    return value


async def _gone(svc: TftpService) -> None:
    async def drained() -> None:
        while svc.desk.transfers or svc.pending or svc.desk.threads:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(drained(), 10)


@pytest.mark.parametrize("threads", [True, False])
def test_service_long_transfer_in_a_thread_or_on_the_loop(
    service: tuple[TftpService, Path], monkeypatch: pytest.MonkeyPatch, threads: bool
) -> None:
    """A long transfer runs in a thread (on the loop once MAX_THREADS run):
    windowed, retransmitted when an ACK is missing, given up when the client
    goes quiet, each ending counted and the transfer gone."""
    svc, root = service
    if not threads:
        monkeypatch.setattr(transport, "MAX_THREADS", 0)
    data = payload(1000 * (transport.BIG_BLOCKS + 40) + 123)
    (root / "fw.bin").write_bytes(data)
    ok, timeouts = _served("ok"), _served("timeout")

    async def run() -> None:
        await svc.start()
        try:
            client = await _client()
            assert client.transport is not None
            rrq = codec.ReadRequest("fw.bin", "octet", (("blksize", "1000"), ("windowsize", "4")))
            client.transport.sendto(codec.encode(rrq), ("127.0.0.1", svc.port))
            oack, tid = await client.get()
            assert isinstance(oack, codec.OptionAck)
            [transfer] = svc.desk.transfers.values()
            assert isinstance(transfer, ThreadedTransfer) is threads
            assert svc.desk.threads == int(threads)
            client.transport.sendto(codec.encode(codec.Ack(0)), tid)
            blocks: dict[int, bytes] = {}
            dropped = False
            while True:
                msg, _ = await client.get()
                assert isinstance(msg, codec.Data)
                if msg.block == 10 and not dropped:
                    dropped = True  # "lost": the window is resent after the timeout
                    continue
                if msg.block != len(blocks) + 1:
                    continue  # the rest of a window after a loss
                blocks[msg.block] = msg.payload
                last = len(msg.payload) < 1000
                if msg.block % 4 == 0 or last:
                    client.transport.sendto(codec.encode(codec.Ack(msg.block)), tid)
                if last:
                    break
            assert b"".join(blocks.values()) == data
            await _gone(svc)
            assert _served("ok") == ok + 1

            # A client that goes quiet after block 1: DATA 2 again (timeout
            # 0.5 s), then given up: a timeout in the phone's timeline.
            client.transport.sendto(
                codec.encode(codec.ReadRequest("fw.bin")), ("127.0.0.1", svc.port)
            )
            first, tid = await client.get()
            assert isinstance(first, codec.Data) and first.block == 1
            client.transport.sendto(codec.encode(codec.Ack(1)), tid)
            second, _ = await client.get()
            again, _ = await client.get()
            assert second == again and isinstance(second, codec.Data) and second.block == 2
            await _gone(svc)
            assert _served("timeout") == timeouts + 1
            while not client.queue.empty():  # DATA 2's last retransmission
                client.queue.get_nowait()

            # One that never answers (maybe a forged address): DATA 1 once,
            # again only for a repeated RRQ, then dropped without a timeline entry.
            unanswered = _served("unanswered")
            plain = codec.encode(codec.ReadRequest("fw.bin"))
            client.transport.sendto(plain, ("127.0.0.1", svc.port))
            first, _ = await client.get()
            client.transport.sendto(plain, ("127.0.0.1", svc.port))
            again, _ = await client.get()
            assert first == again and isinstance(first, codec.Data) and first.block == 1
            await _gone(svc)
            assert client.queue.empty()  # no timer retransmission towards it
            assert _served("unanswered") == unanswered + 1
            assert _served("timeout") == timeouts + 1
            client.transport.close()
        finally:
            await svc.stop()

    asyncio.run(run())


def test_stop_ends_a_threaded_transfer_at_once(service: tuple[TftpService, Path]) -> None:
    svc, root = service
    (root / "fw.bin").write_bytes(payload(512 * (transport.BIG_BLOCKS + 10)))

    async def run() -> None:
        await svc.start()
        client = await _client()
        assert client.transport is not None
        client.transport.sendto(codec.encode(codec.ReadRequest("fw.bin")), ("127.0.0.1", svc.port))
        first, _ = await client.get()
        assert isinstance(first, codec.Data)
        [transfer] = svc.desk.transfers.values()
        assert isinstance(transfer, ThreadedTransfer)
        await asyncio.wait_for(svc.stop(), 2)  # well inside the 0.5 s x 3 tries it would wait
        assert not transfer.thread.is_alive() and transfer.closed
        assert svc.desk.transfers == {} and svc.desk.threads == 0
        client.transport.close()

    asyncio.run(run())


def test_service_memory_budget_for_netascii(
    service: tuple[TftpService, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transfers served from memory (netascii) share a budget: a second one
    that would pass it gets ERROR 0 "busy" while the first is held; the
    budget is given back when the first ends."""
    svc, root = service
    monkeypatch.setattr(transport, "MEMORY_BUDGET", 30_000)
    (root / "big.cfg").write_bytes(b"line\n" * 2_000)  # 10 kB, 12 kB as netascii

    async def run() -> None:
        await svc.start()
        try:
            first, second = await _client(), await _client()
            assert first.transport is not None and second.transport is not None
            rrq = codec.encode(codec.ReadRequest("big.cfg", "netascii"))
            first.transport.sendto(rrq, ("127.0.0.1", svc.port))
            data, _ = await first.get()
            assert isinstance(data, codec.Data) and data.block == 1
            assert sum(svc.desk.held.values()) == 12_000
            second.transport.sendto(rrq, ("127.0.0.1", svc.port))
            busy, _ = await second.get()
            assert busy == codec.Error(codec.ERR_UNDEFINED, "busy")
            await _gone(svc)  # the first never answers: dropped after its timeout
            assert svc.desk.held == {} and svc.desk.admission.by_host == {}
            second.transport.sendto(rrq, ("127.0.0.1", svc.port))
            data, _ = await second.get()
            assert isinstance(data, codec.Data) and data.block == 1
            first.transport.close()
            second.transport.close()
        finally:
            await svc.stop()

    asyncio.run(run())


def test_ending_says_how_a_transfer_ended_for_the_record() -> None:
    s = session(payload(600), timeout=1.0, retries=1, unconfirmed_retries=0)
    assert s.ending is None
    s.start(0.0)
    assert s.on_timer(1.0) == [] and s.ending == "unanswered"  # never answered
    s = session(payload(600), timeout=1.0, retries=1)
    s.start(0.0)
    s.receive(codec.Error(codec.ERR_OPTIONS, "no"), 0.1)
    assert s.ending == "client-abort"
    s = session(payload(600), timeout=1.0, retries=1)
    s.start(0.0)
    s.ack(1, 0.1)
    assert s.on_timer(1.1) != [] and s.on_timer(2.1) == [] and s.ending == "timeout"
    s = session(payload(600), timeout=1.0, retries=1)
    s.start(0.0)
    s.ack(1, 0.1)
    s.receive(codec.Error(0, "gone"), 0.2)
    assert s.ending == "aborted"
    s = session(payload(600), timeout=1.0, retries=1)
    s.start(0.0)
    s.ack(1, 0.1)
    s.ack(2, 0.2)
    assert s.ending == "ok"
