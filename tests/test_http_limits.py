"""HTTP connection budgets: the engine with a stepped clock, and the real
service on loopback under a slowloris (idle and trickling connections)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import Callable
from pathlib import Path

from netboot import metrics
from netboot.app import build_context
from netboot.config import parse_config
from netboot.http.accept import RESOURCE_PAUSE, Acceptor
from netboot.http.app import BUDGET, HttpService
from netboot.http.limits import KEEPALIVE_GRACE, Admission, ConnectionBudget, Verdict
from netboot.registry import Registry
from netboot.state.leases import LeaseStore
from netboot.supervisor import Context


def test_per_address_cap_refuses_new_connections() -> None:
    budget = ConnectionBudget(total=100, per_address=2)
    assert budget.opened("a1", "10.0.0.1", 0.0) == Verdict(True)
    assert budget.opened("a2", "10.0.0.1", 1.0) == Verdict(True)
    assert budget.opened("a3", "10.0.0.1", 2.0) == Verdict(False, refused="per-address")
    assert budget.opened("b1", "10.0.0.2", 2.0) == Verdict(True)
    budget.closed("a1")
    assert budget.count("10.0.0.1") == 1
    assert budget.opened("a4", "10.0.0.1", 3.0) == Verdict(True)
    budget.closed("nobody")  # unknown keys are ignored
    assert len(budget) == 3


def test_at_the_total_cap_new_connections_wait_and_unanswered_ones_are_never_evicted() -> None:
    """Issue 18: at the cap a new connection is not accepted (it waits in the
    listen backlog); a connection that has not had its first request is never
    closed to make room, however long it has been idle (its own idle_timeout
    ends it), nor is one serving a request."""
    budget = ConnectionBudget(total=3, per_address=10, grace=1.0)
    assert budget.admit(0.0) == Admission(True)
    budget.opened("a1", "10.0.0.1", 0.0)
    budget.opened("a2", "10.0.0.1", 0.0)
    budget.opened("b1", "10.0.0.2", 0.0)
    budget.busy("b1")  # its request is being served
    assert budget.admit(0.1) == Admission(False)  # no wake: only a close makes room
    assert budget.admit(100.0) == Admission(False)
    # Accepted anyway (without asking): refused, the tracked ones untouched.
    assert budget.opened("c1", "10.0.0.3", 100.0) == Verdict(False, refused="total")
    assert len(budget) == 3 and budget.count("10.0.0.3") == 0
    budget.closed("a1")
    assert budget.admit(100.0) == Admission(True)
    assert budget.opened("c1", "10.0.0.3", 100.0) == Verdict(True)


def test_a_keepalive_connection_idle_past_the_grace_makes_room() -> None:
    """After a response an idle connection is keep-alive: past the grace it
    may be closed for a waiting one, the busiest address's idlest first;
    before, the budget says when to ask again."""
    budget = ConnectionBudget(total=4, per_address=10, grace=1.0)
    for key, address in (("a1", "10.0.0.1"), ("a2", "10.0.0.1"), ("a3", "10.0.0.1")):
        budget.opened(key, address, 0.0)
    budget.opened("b1", "10.0.0.2", 0.0)
    for key, answered_at in (("b1", 5.0), ("a3", 5.2), ("a2", 5.5)):
        budget.busy(key)
        budget.idle(key, answered_at)
    # a1 never asked anything: never a victim. The earliest keep-alive one
    # is ripe at 5.0 + 1.0.
    assert budget.admit(5.6) == Admission(False, wake=6.0)
    # b1 is idle longest, but 10.0.0.1 holds three: its idlest (a3) goes.
    assert budget.admit(6.5) == Admission(True, evict="a3")
    assert len(budget) == 3 and budget.count("10.0.0.1") == 2
    budget.closed("a3")  # its connection_lost afterwards: nothing more happens
    assert len(budget) == 3
    budget.opened("c1", "10.0.0.3", 6.5)
    # A keep-alive connection asked again: serving, not evictable.
    budget.busy("a2")
    assert budget.admit(7.0) == Admission(True, evict="b1")
    budget.opened("c2", "10.0.0.3", 7.0)
    assert budget.admit(7.0) == Admission(False)  # a1 unanswered, a2 busy, c1 c2 new
    budget.idle("a2", 7.1)
    assert budget.admit(7.2) == Admission(False, wake=8.1)
    assert budget.admit(8.1) == Admission(True, evict="a2")


# ---------------------------------------------------------------- the service


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _limited(budget: str) -> float:
    return float(metrics.LIMITED.labels("http", budget)._value.get())


def _http_site(tmp_path: Path, **http: object) -> tuple[Context, int]:
    """HTTP alone on a free loopback port (HTTPS off unless `https_port` is
    given), serving tmp_path, with its registry and lease store; the port."""
    port = _free_port()
    config = parse_config(
        {
            "appliance": {"interface": "lo", "state_dir": str(tmp_path)},
            "provisioning": {"root": str(tmp_path)},
            "dhcp": {"enabled": False},
            "http": {"port": port, "https_port": 0, **http},
        }
    )
    return build_context(config, Registry(tmp_path), LeaseStore(tmp_path)), port


def test_slowloris_from_one_address_leaves_others_served(tmp_path: Path) -> None:
    """40 idle and trickling connections from 127.0.0.1: 8 are kept (per-address
    cap), the rest closed at once; a GET from 127.0.0.2 is answered at once;
    the kept ones are closed after idle_timeout even though bytes trickle in."""
    (tmp_path / "f.cfg").write_text("hello\n")
    ctx, port = _http_site(
        tmp_path, idle_timeout=1.5, max_connections_per_address=8, max_connections=64
    )
    refused = _limited("connections-per-address")

    async def run() -> None:
        service = HttpService(ctx, host="127.0.0.1")
        await service.start()
        loop = asyncio.get_running_loop()
        held: list[socket.socket] = []
        try:
            for _ in range(40):
                s = socket.socket()
                s.setblocking(False)
                await loop.sock_connect(s, ("127.0.0.1", port))
                await loop.sock_sendall(s, b"GET /f.cfg HTTP/1.1\r\nHost: x\r\n")  # never ends
                held.append(s)

            async def closed_by_server(s: socket.socket) -> bool:
                try:
                    return await asyncio.wait_for(loop.sock_recv(s, 100), 5) == b""
                except (ConnectionResetError, TimeoutError):
                    return True

            # The 32 over the cap are closed at once.
            started = time.monotonic()
            closed = [await closed_by_server(s) for s in held[8:]]
            assert all(closed) and time.monotonic() - started < 3
            assert _limited("connections-per-address") >= refused + 32

            # Another address is served meanwhile, quickly.
            started = time.monotonic()
            c = socket.socket()
            c.setblocking(False)
            c.bind(("127.0.0.2", 0))
            await loop.sock_connect(c, ("127.0.0.1", port))
            await loop.sock_sendall(
                c, b"GET /f.cfg HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            answer = b""
            while chunk := await asyncio.wait_for(loop.sock_recv(c, 4096), 5):
                answer += chunk
            c.close()
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello\n")
            assert time.monotonic() - started < 1.0

            # The 8 kept ones trickle a header byte every 0.3 s: closed by the
            # header timeout (1.5 s) all the same.
            async def trickle(s: socket.socket) -> bool:
                for _ in range(20):
                    try:
                        await loop.sock_sendall(s, b"X")
                        data = await asyncio.wait_for(loop.sock_recv(s, 100), 0.3)
                    except TimeoutError:
                        continue
                    except (ConnectionResetError, BrokenPipeError):
                        return True
                    return data == b"" or data.startswith(b"HTTP/1.1 4")
                return False

            started = time.monotonic()
            assert all(await asyncio.gather(*(trickle(s) for s in held[:8])))
            assert time.monotonic() - started < 4
        finally:
            for s in held:
                s.close()
            await service.stop()

    try:
        asyncio.run(run())
    finally:
        ctx.registry.close()


def test_a_tls_handshake_that_never_comes_is_cut_after_idle_timeout(tmp_path: Path) -> None:
    """On the HTTPS port a connection is seen by the budget only once TLS is
    up: one that never sends its ClientHello is closed after idle_timeout
    (asyncio's default would hold it 60 s)."""
    https_port = _free_port()
    ctx, _ = _http_site(tmp_path, https_port=https_port, idle_timeout=1.0)

    async def run() -> float:
        service = HttpService(ctx, host="127.0.0.1")
        await service.start()
        loop = asyncio.get_running_loop()
        s = socket.socket()
        s.setblocking(False)
        try:
            await loop.sock_connect(s, ("127.0.0.1", https_port))
            started = time.monotonic()
            try:
                data = await asyncio.wait_for(loop.sock_recv(s, 100), 10)
            except ConnectionResetError:
                data = b""
            assert data == b""
            return time.monotonic() - started
        finally:
            s.close()
            await service.stop()

    try:
        took = asyncio.run(run())
    finally:
        ctx.registry.close()
    assert 0.9 <= took < 4.0, took


def test_a_storm_over_max_connections_waits_in_the_backlog_and_is_served(
    tmp_path: Path,
) -> None:
    """Issue 18: max_connections = 8, eight connections from eight addresses
    that never send a request hold every slot, then 40 clients from 40 more
    addresses connect at once. None is reset: they wait in the listen backlog
    and all get their file once the idle eight are closed by idle_timeout
    (never earlier: an unanswered connection is not closed for room)."""
    (tmp_path / "f.cfg").write_text("hello\n")
    ctx, port = _http_site(tmp_path, idle_timeout=2.0, max_connections=8)
    paused = _limited("accept-paused")
    evicted = _limited("connections-evicted")

    async def run() -> tuple[list[float], list[tuple[float, bytes]]]:
        service = HttpService(ctx, host="127.0.0.1")
        await service.start()
        loop = asyncio.get_running_loop()
        started = time.monotonic()

        async def connect(address: str) -> socket.socket:
            s = socket.socket()
            s.setblocking(False)
            s.bind((address, 0))
            await loop.sock_connect(s, ("127.0.0.1", port))
            return s

        async def held_until_closed(s: socket.socket) -> float:
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(loop.sock_recv(s, 100), 10) == b""
            return time.monotonic() - started

        async def get(address: str) -> tuple[float, bytes]:
            s = await connect(address)
            try:
                await loop.sock_sendall(
                    s, b"GET /f.cfg HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                answer = b""
                while chunk := await asyncio.wait_for(loop.sock_recv(s, 4096), 10):
                    answer += chunk
            finally:
                s.close()
            return time.monotonic() - started, answer

        idle = [await connect(f"127.0.1.{i}") for i in range(1, 9)]
        try:
            # Every slot is taken before the storm starts.
            assert service.runner is not None
            budget = service.runner.app[BUDGET]
            deadline = time.monotonic() + 5
            while len(budget) < 8:
                assert time.monotonic() < deadline, len(budget)
                await asyncio.sleep(0.01)
            closed = asyncio.gather(*(held_until_closed(s) for s in idle))
            served = await asyncio.gather(*(get(f"127.0.2.{i}") for i in range(1, 41)))
            return await closed, served
        finally:
            for s in idle:
                s.close()
            await service.stop()

    try:
        closed, served = asyncio.run(run())
    finally:
        ctx.registry.close()
    assert all(answer.startswith(b"HTTP/1.1 200") for _, answer in served), served
    assert all(answer.endswith(b"hello\n") for _, answer in served)
    # The idle eight were closed by their header timeout, not for room...
    assert min(closed) >= 1.9, closed
    # ...and the storm was served once they were gone, promptly.
    assert min(t for t, _ in served) >= 1.9
    assert max(t for t, _ in served) < max(closed) + 3.0, (served, closed)
    assert _limited("accept-paused") > paused
    assert _limited("connections-evicted") == evicted


class _OutOfDescriptors(socket.socket):
    """A listening socket whose accept() fails with EMFILE `failures` times."""

    failures = 0

    def accept(self) -> tuple[socket.socket, object]:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


class _Taker:
    def __init__(self) -> None:
        self.taken: list[socket.socket] = []

    def make_room(self, now: float) -> Admission:
        return Admission(True)

    def take(self, conn: socket.socket, peer: object, ssl_context: object, timeout: float) -> None:
        self.taken.append(conn)


def test_accept_out_of_descriptors_pauses_then_takes_the_waiting_connection() -> None:
    """accept() failing with EMFILE: counted, one line, accepting pauses
    RESOURCE_PAUSE (no busy loop on a readable socket); the connection waits
    in the backlog and is taken once accept() works again."""
    failed = _limited("accept-failed")

    async def run() -> tuple[int, float]:
        sock = _OutOfDescriptors()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        sock.failures = 1
        taker = _Taker()
        acceptor = Acceptor(sock, taker, None, 1.0)
        acceptor.start()
        loop = asyncio.get_running_loop()
        client = socket.socket()
        client.setblocking(False)
        started = time.monotonic()
        try:
            await loop.sock_connect(client, sock.getsockname())
            while not taker.taken:
                assert time.monotonic() - started < 5
                await asyncio.sleep(0.02)
            return sock.failures, time.monotonic() - started
        finally:
            client.close()
            for conn in taker.taken:
                conn.close()
            acceptor.close()

    left, took = asyncio.run(run())
    assert left == 0  # the one failure happened...
    assert RESOURCE_PAUSE * 0.9 <= took < RESOURCE_PAUSE + 2  # ...and the pause after it
    assert _limited("accept-failed") == failed + 1


def test_a_waiting_connection_gets_the_room_of_a_keepalive_one_after_the_grace(
    tmp_path: Path,
) -> None:
    """max_connections = 8: eight connections are open, a ninth waits in the
    backlog; then the eight each get an answer and stay open (keep-alive).
    One of them is closed for the ninth about KEEPALIVE_GRACE later, not
    after idle_timeout (6 s); its answer had gone out whole."""
    (tmp_path / "f.cfg").write_text("hello\n")
    ctx, port = _http_site(tmp_path, idle_timeout=6.0, max_connections=8)
    evicted = _limited("connections-evicted")
    request = b"GET /f.cfg HTTP/1.1\r\nHost: x\r\n\r\n"

    async def run() -> tuple[list[bytes], bytes, float]:
        service = HttpService(ctx, host="127.0.0.1")
        await service.start()
        loop = asyncio.get_running_loop()
        assert service.runner is not None
        budget = service.runner.app[BUDGET]

        async def connect(address: str) -> socket.socket:
            s = socket.socket()
            s.setblocking(False)
            s.bind((address, 0))
            await loop.sock_connect(s, ("127.0.0.1", port))
            return s

        async def until(condition: Callable[[], bool]) -> None:
            deadline = time.monotonic() + 5
            while not condition():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)

        async def answer(s: socket.socket) -> bytes:
            data = b""
            while not data.endswith(b"hello\n"):
                chunk = await asyncio.wait_for(loop.sock_recv(s, 4096), 10)
                if not chunk:
                    break
                data += chunk
            return data

        held = [await connect(f"127.0.3.{i}") for i in range(1, 9)]
        late: socket.socket | None = None
        try:
            await until(lambda: len(budget) == 8)
            late = await connect("127.0.4.1")  # waits: every slot is taken
            await loop.sock_sendall(late, request)
            kept = []
            for s in held:
                await loop.sock_sendall(s, request)
                kept.append(await answer(s))
            answered = time.monotonic()
            last = await answer(late)
            return kept, last, time.monotonic() - answered
        finally:
            for s in held:
                s.close()
            if late is not None:
                late.close()
            await service.stop()

    try:
        kept, last, waited = asyncio.run(run())
    finally:
        ctx.registry.close()
    assert all(a.startswith(b"HTTP/1.1 200") and a.endswith(b"hello\n") for a in kept)
    assert last.startswith(b"HTTP/1.1 200") and last.endswith(b"hello\n")
    assert KEEPALIVE_GRACE * 0.5 <= waited < KEEPALIVE_GRACE + 2.0, waited
    assert _limited("connections-evicted") == evicted + 1
