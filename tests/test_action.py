from __future__ import annotations

import asyncio
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from netboot import metrics
from netboot.app import build_context
from netboot.config import parse_config
from netboot.http.action import ActionError, parse_action
from netboot.http.app import build_app
from netboot.provisioning.events import EVENTS, action_url
from netboot.registry import Registry
from netboot.state.leases import Lease, LeaseStore

MAC = "00:30:4f:11:3a:f8"


@pytest.mark.parametrize(
    ("event", "query", "ua", "lease", "mac", "detail", "facts"),
    [
        (
            "registration-succeeded",
            {"mac": "00304F113AF8", "ip": "192.0.2.10", "active_user": "1001", "remote": "$remote"},
            "",
            None,
            MAC,
            {"ip": "192.0.2.10", "active_user": "1001", "line": "1001", "client": "192.0.2.99"},
            {"ip": "192.0.2.10"},
        ),
        (  # guide spelling `$Mac`/`$IP` as names, model and firmware facts
            "incoming-call",
            {"Mac": "00-30-4f-11-3a-f8", "IP": "$IP", "model": "VIP-2140PT", "call_id": "abc@h"},
            "",
            None,
            MAC,
            {"model": "VIP-2140PT", "call_id": "abc@h", "client": "192.0.2.99"},
            {"ip": "192.0.2.99", "model": "VIP-2140PT"},
        ),
        (  # $mac not substituted: MAC from the User-Agent
            "setup-completed",
            {"mac": "$mac"},
            "Fanvil X4 2.10.2.6887 0c383e07e16c",
            None,
            "0c:38:3e:07:e1:6c",
            {"client": "192.0.2.99"},
            {"ip": "192.0.2.99", "vendor": "Fanvil", "model": "X4", "firmware": "2.10.2.6887"},
        ),
        (  # no MAC anywhere: the lease of the client address
            "dnd-enabled",
            {"unknown": "x"},
            "",
            MAC,
            MAC,
            {"client": "192.0.2.99"},
            {"ip": "192.0.2.99"},
        ),
    ],
)
def test_parse_action(
    event: str,
    query: dict[str, str],
    ua: str,
    lease: str | None,
    mac: str,
    detail: dict[str, str],
    facts: dict[str, str],
) -> None:
    report = parse_action(event, query, "192.0.2.99", ua, lease)
    got = (report.mac, report.kind, report.detail(), report.facts())
    assert got == (mac, event, detail, facts)


@pytest.mark.parametrize(
    ("event", "query", "error"),
    [
        ("nope", {"mac": MAC}, "unknown event"),
        ("mute", {"mac": "00:30:4f"}, "bad MAC"),
        ("mute", {"mac": "$mac"}, "no MAC"),
        ("mute", {}, "no MAC"),
    ],
)
def test_parse_action_errors(event: str, query: dict[str, str], error: str) -> None:
    with pytest.raises(ActionError, match=error):
        parse_action(event, query, "192.0.2.99")


def test_every_event_has_a_url() -> None:
    assert len(EVENTS) == 29 and len({e.slug for e in EVENTS}) == 29
    url = action_url("http://192.0.2.1:8080", EVENTS[1])
    assert url.startswith("http://192.0.2.1:8080/action/registration-succeeded?mac=$mac&ip=$ip")


def test_http_receiver_records_without_credentials(tmp_path: Path) -> None:
    config = parse_config(
        {
            "appliance": {"interface": "lo", "state_dir": str(tmp_path)},
            "provisioning": {"root": str(tmp_path)},
            "dhcp": {"enabled": False},
            "http": {"username": "u", "password": "p"},  # files need auth, actions do not
        }
    )
    registry = Registry(tmp_path)
    ctx = build_context(config, registry, LeaseStore(tmp_path))
    before = metrics.BAD_INPUT.labels("action")._value.get()

    async def run() -> list[int]:
        client = TestClient(TestServer(build_app(ctx)))
        await client.start_server()
        try:
            statuses = []
            for slug in ("registration-failed", "registration-succeeded"):
                resp = await client.get(
                    f"/action/{slug}", params={"mac": MAC, "active_user": "1001"}
                )
                assert await resp.text() == "OK\n"
                statuses.append(resp.status)
            statuses.append((await client.get("/action/bogus?mac=" + MAC)).status)
            statuses.append((await client.get("/action/mute?mac=zz")).status)
            statuses.append((await client.get("/somefile.cfg")).status)  # still guarded
            return statuses
        finally:
            await client.close()

    assert asyncio.run(run()) == [200, 200, 400, 400, 401]
    assert metrics.BAD_INPUT.labels("action")._value.get() == before + 2
    phone = registry.phone(MAC)
    assert phone is not None and phone.state == "registered" and phone.state_detail == "1001"
    kinds = [e.kind for e in registry.timeline(MAC)]
    assert kinds == ["registration-failed", "registration-succeeded"]
    registry.close()


def test_action_from_lease_only_refuses_other_addresses(tmp_path: Path) -> None:
    """Hardening on: an event for a MAC is taken only from the address that
    holds that MAC's lease (TestClient connects from 127.0.0.1)."""
    config = parse_config(
        {
            "appliance": {"interface": "lo", "state_dir": str(tmp_path)},
            "provisioning": {"root": str(tmp_path)},
            "dhcp": {"enabled": False},
            "http": {"action_from_lease_only": True},
        }
    )
    registry = Registry(tmp_path)
    leases = LeaseStore(tmp_path)
    other = "00:30:4f:00:00:02"
    leases.stage(Lease(int(IPv4Address("127.0.0.1")), MAC, "bound", time.time() + 600))
    ctx = build_context(config, registry, leases)
    refused = metrics.LIMITED.labels("action", "not-lease-holder")._value.get()

    async def run() -> list[int]:
        client = TestClient(TestServer(build_app(ctx)))
        await client.start_server()
        try:
            return [
                (await client.get("/action/setup-completed", params={"mac": mac})).status
                for mac in (MAC, other)
            ]
        finally:
            await client.close()

    assert asyncio.run(run()) == [200, 403]
    assert metrics.LIMITED.labels("action", "not-lease-holder")._value.get() == refused + 1
    assert [e.kind for e in registry.timeline(MAC)] == ["setup-completed"]
    assert registry.phone(other) is None
    registry.close()
