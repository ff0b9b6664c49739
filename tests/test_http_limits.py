"""HTTP connection budgets: the engine with a stepped clock, and the real
service on loopback under a slowloris (idle and trickling connections)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from netboot import metrics
from netboot.app import build_context
from netboot.config import parse_config
from netboot.http.app import HttpService
from netboot.http.limits import ConnectionBudget, Verdict
from netboot.registry import Registry
from netboot.state.leases import LeaseStore


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


def test_total_cap_closes_the_idlest_connection_of_the_heaviest_address() -> None:
    budget = ConnectionBudget(total=4, per_address=10)
    budget.opened("a1", "10.0.0.1", 0.0)
    budget.opened("a2", "10.0.0.1", 1.0)
    budget.opened("a3", "10.0.0.1", 2.0)
    budget.opened("b1", "10.0.0.2", 0.5)  # idle longest, but its address holds one
    budget.busy("a1")  # serving a request: never closed for room
    assert budget.opened("c1", "10.0.0.3", 5.0) == Verdict(True, evict="a2")
    assert budget.count("10.0.0.1") == 2 and len(budget) == 4
    budget.idle("a1", 6.0)
    for key in ("a1", "a3", "b1", "c1"):
        budget.busy(key)
    assert budget.opened("d1", "10.0.0.4", 7.0) == Verdict(False, refused="total")
    budget.idle("b1", 8.0)
    assert budget.opened("d1", "10.0.0.4", 9.0) == Verdict(True, evict="b1")


# ---------------------------------------------------------------- the service


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _limited(budget: str) -> float:
    return float(metrics.LIMITED.labels("http", budget)._value.get())


def test_slowloris_from_one_address_leaves_others_served(tmp_path: Path) -> None:
    """40 idle and trickling connections from 127.0.0.1: 8 are kept (per-address
    cap), the rest closed at once; a GET from 127.0.0.2 is answered at once;
    the kept ones are closed after idle_timeout even though bytes trickle in."""
    (tmp_path / "f.cfg").write_text("hello\n")
    port = _free_port()
    config = parse_config(
        {
            "appliance": {"interface": "lo", "state_dir": str(tmp_path)},
            "provisioning": {"root": str(tmp_path)},
            "dhcp": {"enabled": False},
            "http": {
                "port": port,
                "https_port": 0,
                "idle_timeout": 1.5,
                "max_connections_per_address": 8,
                "max_connections": 64,
            },
        }
    )
    registry = Registry(tmp_path)
    ctx = build_context(config, registry, LeaseStore(tmp_path))
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
        registry.close()


def test_a_tls_handshake_that_never_comes_is_cut_after_idle_timeout(tmp_path: Path) -> None:
    """On the HTTPS port a connection is seen by the budget only once TLS is
    up: one that never sends its ClientHello is closed after idle_timeout
    (asyncio's default would hold it 60 s)."""
    port, https_port = _free_port(), _free_port()
    config = parse_config(
        {
            "appliance": {"interface": "lo", "state_dir": str(tmp_path)},
            "provisioning": {"root": str(tmp_path)},
            "dhcp": {"enabled": False},
            "http": {"port": port, "https_port": https_port, "idle_timeout": 1.0},
        }
    )
    registry = Registry(tmp_path)
    ctx = build_context(config, registry, LeaseStore(tmp_path))

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
        registry.close()
    assert 0.9 <= took < 4.0, took
