"""The status page's appliance view: health per service, the rogue-DHCP alarm,
version and uptime, pool usage, voice-VLAN address and lease expiry per phone,
inventory phones never seen, and browser noise kept out of the registry."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from netboot import __version__, metrics
from netboot.app import build_context
from netboot.config import Config, parse_config
from netboot.events import LeaseAcked, LeaseOffered
from netboot.health import NOT_RUNNING, RUNNING, STARTING, Health
from netboot.http.app import build_app
from netboot.http.overview import phone_leases, pool_usage, uptime_text, voice_scopes
from netboot.registry import Registry
from netboot.state.leases import Lease, LeaseStore
from netboot.supervisor import Context
from tests.test_status import Cells, parse

PHONE = "00:30:4f:11:3a:f8"
OTHER = "00:30:4f:11:3a:f9"
NEVER = "80:5e:c0:00:00:01"
INVENTORY = """\
mac,model,extension,password,display_name
00:30:4f:11:3a:f8,VIP-2140PT,1001,s3cret-one,Reception
00:30:4f:11:3a:f9,VIP-2140PT,1002,s3cret-two,Office 2
80:5e:c0:00:00:01,T46S,2001,s3cret-three,<b>Yealink</b> desk
"""


def make_config(tmp: Path) -> Config:
    inventory = tmp / "phones.csv"
    inventory.write_text(INVENTORY)
    return parse_config(
        {
            "appliance": {"interface": "eth0", "state_dir": str(tmp), "name": "site"},
            "provisioning": {"root": str(tmp / "files"), "url": "http://192.168.10.2/$mac.cfg"},
            "dhcp": {
                "subnet": "192.168.10.0/24",
                "pool": "192.168.10.100-192.168.10.109",
                "address": "192.168.10.2",
                "scope": [
                    {
                        "interface": "eth0.100",
                        "address": "198.51.100.2",
                        "subnet": "198.51.100.0/24",
                        "pool": "198.51.100.100-198.51.100.199",
                        "vlan": 100,
                    }
                ],
            },
            "lldp": {"voice_vlan": 100},
            "http": {"port": 8080},
            "phones": {"inventory": str(inventory)},
        }
    )


class FakeService:
    def __init__(self, name: str, health: Health | None = None) -> None:
        self.name = name
        if health is not None:
            self.health = health


Body = Callable[[TestClient[web.Request, web.Application], Context], Awaitable[None]]


def run_app(tmp_path: Path, body: Body, now: float) -> None:
    config = make_config(tmp_path)
    (tmp_path / "files").mkdir(exist_ok=True)
    registry = Registry(tmp_path)
    leases = LeaseStore(tmp_path)
    registry.record(LeaseAcked(mac=PHONE, ip="192.168.10.100"), now=now - 50)
    registry.record(LeaseOffered(mac=OTHER, offered="192.168.10.101"), now=now - 40)
    registry.flush()
    for lease in (
        Lease(int(IPv4Address("192.168.10.100")), PHONE, "bound", now + 3000),
        Lease(int(IPv4Address("198.51.100.100")), PHONE, "bound", now + 1800),
        Lease(int(IPv4Address("192.168.10.101")), "00:11:22:33:44:55", "declined", now + 600),
        Lease(int(IPv4Address("192.168.10.102")), "00:11:22:33:44:56", "bound", now - 1),
    ):
        leases.stage(lease)
    leases.commit(leases.take_staged())
    ctx = build_context(config, registry, leases, started=now - 3725)
    ctx.services["dhcp"] = FakeService(  # type: ignore[assignment]
        "dhcp",
        Health(RUNNING, "eth0", "another DHCP server on the segment: 192.168.10.3 (MAC x)"),
    )
    ctx.services["tftp"] = FakeService("tftp", Health(STARTING, "binding"))  # type: ignore[assignment]
    ctx.services["http"] = FakeService("http")  # type: ignore[assignment]
    ctx.services["pnp"] = FakeService(  # type: ignore[assignment]
        "pnp", Health(NOT_RUNNING, "refused: no multicast")
    )

    async def main() -> None:
        client = TestClient(TestServer(build_app(ctx)))
        await client.start_server()
        try:
            await body(client, ctx)
        finally:
            await client.close()

    try:
        asyncio.run(main())
    finally:
        registry.close()
        leases.close()


def test_pool_usage_and_leases_per_phone(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    now = 1_000_000.0
    leases = [
        Lease(int(IPv4Address("192.168.10.100")), PHONE, "bound", now + 3000),
        Lease(int(IPv4Address("192.168.10.101")), OTHER, "declined", now + 60),
        Lease(int(IPv4Address("192.168.10.102")), OTHER, "bound", now - 1),  # expired
        Lease(int(IPv4Address("192.168.10.103")), OTHER, "released", now + 60),
        Lease(int(IPv4Address("198.51.100.100")), PHONE, "bound", now + 1800),
        Lease(int(IPv4Address("198.51.100.101")), PHONE, "bound", now + 100),  # older voice lease
    ]
    assert [s.interface for s in voice_scopes(config)] == ["eth0.100"]
    pools = pool_usage(config, leases, now)
    assert pools[0] == {
        "interface": "eth0",
        "subnet": "192.168.10.0/24",
        "pool": "192.168.10.100-192.168.10.109",
        "size": 10,
        "bound": 1,
        "declined": 1,
        "free": 8,
        "percent": 20.0,
    }
    assert (pools[1]["size"], pools[1]["bound"], pools[1]["free"]) == (100, 2, 98)
    by_mac = phone_leases(config, leases, now)
    assert by_mac == {
        PHONE: {
            "lease_ip": "192.168.10.100",
            "lease_expires": now + 3000,
            "voice_ip": "198.51.100.100",
            "voice_expires": now + 1800,
        }
    }
    assert uptime_text(59) == "59 s"
    assert uptime_text(3725) == "1 h 2 min"
    assert uptime_text(2 * 86400 + 7200) == "2 d 2 h"


def test_status_api_and_page_show_health_alarm_pools_and_unseen(tmp_path: Path) -> None:
    now = time.time()

    async def body(client: TestClient[web.Request, web.Application], ctx: Context) -> None:
        status = await (await client.get("/api/status")).json()
        assert status["version"] == __version__
        assert 3700 < status["uptime"] < 3800
        assert status["services"]["dhcp"]["state"] == "running"
        assert status["services"]["tftp"]["state"] == "starting"
        assert status["services"]["pnp"] == {
            "state": "not-running",
            "detail": "refused: no multicast",
            "alarm": "",
        }
        assert status["services"]["stun"]["state"] == "disabled"
        assert status["services"]["lldp"]["state"] == "not-running"  # enabled, never built
        assert status["alarms"] == [
            "pnp NOT running: refused: no multicast",
            "lldp NOT running: not started",
            "dhcp: another DHCP server on the segment: 192.168.10.3 (MAC x)",
        ]
        # exactly what runs: tftp is starting, pnp refused
        assert status["status"].startswith("serving dhcp, http; tftp starting (binding); ")
        assert "pnp NOT running (refused: no multicast)" in status["status"]
        assert [p["bound"] for p in status["pools"]] == [1, 1]
        assert status["pools"][0]["declined"] == 1
        assert [u["mac"] for u in status["unseen_inventory"]] == [NEVER]
        assert "s3cret" not in str(status)

        phones = await (await client.get("/api/phones")).json()
        assert {p["mac"] for p in phones["phones"]} == {PHONE, OTHER}
        assert phones["leases"][PHONE]["voice_ip"] == "198.51.100.100"
        assert OTHER not in phones["leases"]
        assert phones["status"]["alarms"] == status["alarms"]
        assert [u["mac"] for u in phones["unseen"]] == [NEVER]
        assert "s3cret" not in str(phones)

        text = await (await client.get("/")).text()
        assert "s3cret" not in text
        assert "ALARM: pnp NOT running: refused: no multicast; lldp NOT running" in text
        assert "; dhcp: another DHCP server on the segment: 192.168.10.3" in text
        assert f"netboot {__version__} \u00b7 up 1 h 2 min" in text
        assert 'class="svc not-running" data-service="pnp"' in text
        assert 'class="svc disabled" data-service="stun"' in text
        page: Cells = parse(text)
        rows = {row[0]: row for row in page.rows}
        assert rows[PHONE][8] == "198.51.100.100"  # voice-VLAN address
        assert rows[PHONE][9] in ("in 49 min", "in 50 min")  # lease expiry
        assert rows[OTHER][8:] == ["", ""]
        assert rows["eth0"][1:] == ["192.168.10.100-192.168.10.109", "1", "1", "8", "20.0 %"]
        assert rows[NEVER][1:] == ["T46S", "2001", "<b>Yealink</b> desk"]  # escaped, as text
        assert "&lt;b&gt;Yealink&lt;/b&gt;" in text

        # health as a metric
        resp = await client.get("/metrics")
        families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
        running = {
            s.labels["service"]: s.value for s in families["netboot_service_running"].samples
        }
        assert running["dhcp"] == 1 and running["http"] == 1
        assert running["tftp"] == 0 and running["pnp"] == 0 and running["stun"] == 0

    run_app(tmp_path, body, now)


def test_browser_noise_is_not_a_phone_fetch(tmp_path: Path) -> None:
    now = time.time()

    async def body(client: TestClient[web.Request, web.Application], ctx: Context) -> None:
        # a real file of the same name under root is not what a browser wants either
        (tmp_path / "files" / "favicon.ico").write_bytes(b"\0\0\1\0")
        before = metrics.FILES_SERVED.labels("http", "not-found")._value.get()
        for path in (
            "/favicon.ico",
            "/apple-touch-icon.png",
            "/apple-touch-icon-precomposed.png",
            "/apple-touch-icon-120x120-precomposed.png",
            "/browserconfig.xml",
        ):
            resp = await client.get(path, headers={"User-Agent": "Mozilla/5.0 Chrome/120"})
            assert resp.status == 404, path
        robots = await client.get("/robots.txt")
        assert robots.status == 200 and (await robots.text()).startswith("User-agent: *")
        assert metrics.FILES_SERVED.labels("http", "not-found")._value.get() == before
        # a phone's real miss is still recorded
        resp = await client.get("/00304f113af8.cfg")
        assert resp.status in (403, 404)
        ctx.registry.flush()
        timeline = ctx.registry.timeline(PHONE)
        fetched = [e.detail.get("file") for e in timeline if e.kind == "fetch"]
        assert fetched == ["00304f113af8.cfg"]
        # the page itself never makes the browser ask for a favicon
        assert '<link rel="icon" href="data:,">' in await (await client.get("/")).text()

    run_app(tmp_path, body, now)


def test_status_command_asks_the_running_service_with_its_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket
    import threading

    from netboot.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "config.toml"
    config.write_text(
        f'[appliance]\ninterface = "lo"\nstate_dir = "{tmp_path / "state"}"\nname = "desk"\n'
        f'[provisioning]\nroot = "{tmp_path}"\n[dhcp]\nenabled = false\n'
        "[pnp]\nenabled = false\n[tftp]\nenabled = false\n[lldp]\nenabled = false\n"
        f'[http]\nport = {port}\nusername = "installer"\npassword = "correct horse"\n'
    )
    # nobody answers yet: exit 1, one clear line
    assert main(["status", "-c", str(config)]) == 1
    assert "does not answer on 127.0.0.1:" in capsys.readouterr().err

    from netboot.config import load_config

    cfg = load_config(config)
    registry = Registry(cfg.appliance.state_dir)
    leases = LeaseStore(cfg.appliance.state_dir)
    ctx = build_context(cfg, registry, leases)
    ctx.services["http"] = FakeService("http")  # type: ignore[assignment]
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(build_app(ctx))
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        assert main(["status", "-c", str(config)]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"desk: netboot {__version__}, up ")
        assert "serving http" in out.splitlines()[0] and "ALARM" not in out
        assert main(["status", "--json", "-c", str(config)]) == 0
        assert json.loads(capsys.readouterr().out)["services"]["http"]["state"] == "running"
        # a refused service makes it a failing check
        ctx.services["ftp"] = FakeService("ftp", Health(NOT_RUNNING, "cannot bind"))  # type: ignore[assignment]
        assert main(["status", "-c", str(config)]) == 1
        assert "ALARM: ftp NOT running: cannot bind" in capsys.readouterr().out
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        registry.close()
        leases.close()
