"""The status page, its JSON API and /metrics, through the real aiohttp app."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from netboot import metrics
from netboot.app import build_context
from netboot.config import Config, parse_config
from netboot.events import (
    ActionReceived,
    FileFetched,
    FileNotServed,
    LeaseAcked,
    LeaseOffered,
    PnpNotified,
    PnpSubscribed,
)
from netboot.http.app import build_app
from netboot.http.status import mask_url
from netboot.registry import Registry
from netboot.state.leases import Lease, LeaseStore

PLANET = "00:30:4f:11:3a:f8"
YEALINK = "80:5e:c0:00:00:02"
EVIL = "00:30:4f:00:00:66"
SIP_SECRET = "s3cr3t-SIP-pw"


def make_config(state: Path, **http: Any) -> Config:
    return parse_config(
        {
            "appliance": {"interface": "eth0", "state_dir": str(state), "name": "lab <one>"},
            "provisioning": {"root": str(state / "files")},
            "dhcp": {"enabled": False},
            "http": {"port": 8080, **http},
        }
    )


def populate(reg: Registry, now: float) -> None:
    reg.record(LeaseOffered(mac=PLANET, vendor_class="PLANET", offered="10.9.0.100"), now=now)
    reg.record(LeaseAcked(mac=PLANET, ip="10.9.0.100"), now=now + 1)
    reg.record(
        PnpNotified(
            mac=PLANET, url=f"http://admin:{SIP_SECRET}@10.9.0.1/$mac.cfg", to="10.9.0.100:5060"
        ),
        now=now + 2,
    )
    for n, (name, kind) in enumerate((("common.cfg", "common"), ("00304f113af8.cfg", "mac"))):
        fetch = FileFetched(
            mac=PLANET,
            file=name,
            file_kind=kind,
            protocol="http",
            bytes=900,
            vendor="PLANET",
            model="VIP-2140PT",
            firmware="2.0.3",
        )
        reg.record(fetch, now=now + 3 + n)
    reg.record(
        ActionReceived(
            mac=PLANET, event="registration-succeeded", client="10.9.0.100", line="1001"
        ),
        now=now + 6,
    )
    reg.flush()
    # The page masks secrets in whatever detail is stored (an older netboot's
    # rows, a database edited by hand), not only in the fields events have today.
    reg.connection.execute(
        "UPDATE events SET detail = ? WHERE id = (SELECT max(id) FROM events)",
        (json.dumps({"line": "1001", "password": SIP_SECRET, "sip_auth_pwd": SIP_SECRET}),),
    )
    reg.record(LeaseOffered(mac=YEALINK, vendor_class="yealink", offered="10.9.0.101"), now=now)
    reg.record(
        FileNotServed(
            mac=YEALINK,
            file="y000000000002.cfg",
            file_kind="common",
            result="not-found",
            protocol="tftp",
            ip="10.9.0.101",
            vendor="Yealink",
            model="T46U",
        ),
        now=now + 1,
    )
    # A phone that sends markup in every field it controls.
    reg.record(
        PnpSubscribed(
            mac=EVIL,
            user_agent="<script>alert(1)</script>",
            vendor="<b>ACME</b>",
            model='"><script>alert(3)</script>',
            firmware="1.0</td><td>",
        ),
        now=now,
    )
    reg.record(
        LeaseOffered(
            mac=EVIL,
            hostname="<img src=x onerror=alert(2)>",
            vendor_class="<script>alert(4)</script>",
            offered="10.9.0.66",
        ),
        now=now,
    )
    reg.flush()


App = Callable[[TestClient[web.Request, web.Application], Registry], Awaitable[None]]


def run_app(tmp_path: Path, body: App, populate_registry: bool = True, **http: Any) -> None:
    config = make_config(tmp_path, **http)
    (tmp_path / "files").mkdir(exist_ok=True)
    registry = Registry(tmp_path)
    leases = LeaseStore(tmp_path)
    if populate_registry:
        populate(registry, time.time() - 60)
    ctx = build_context(config, registry, leases)

    async def main() -> None:
        client = TestClient(TestServer(build_app(ctx)))
        await client.start_server()
        try:
            await body(client, registry)
        finally:
            await client.close()

    try:
        asyncio.run(main())
    finally:
        registry.close()
        leases.close()


class Cells(HTMLParser):
    """Table rows of the page body, as lists of cell texts; plus script/style contents."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.row_links: list[str] = []
        self.tags: list[str] = []
        self.body_tags: list[str] = []
        self._cell: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if self._in_body:
            self.body_tags.append(tag)
        a = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
            self.row_links.append(a.get("data-href") or "")
        elif tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(text: str) -> Cells:
    cells = Cells()
    cells.feed(text)
    return cells


def test_index_lists_phones_with_their_facts(tmp_path: Path) -> None:
    async def body(client: TestClient[web.Request, web.Application], reg: Registry) -> None:
        resp = await client.get("/")
        assert resp.status == 200
        assert resp.content_type == "text/html"
        text = await resp.text()
        assert '<meta name="viewport"' in text
        page = parse(text)
        by_mac = {row[0]: row for row in page.rows}
        assert set(by_mac) == {PLANET, YEALINK, EVIL}
        # (the page gained Voice IP and Lease expires columns: empty without DHCP leases)
        _mac, ip, phone, fw, state, _last, files, registered, voice, expires = by_mac[PLANET]
        assert (ip, phone, fw, state, files, registered, voice, expires) == (
            "10.9.0.100",
            "PLANET VIP-2140PT",
            "2.0.3",
            "registered",
            "2",
            "yes",
            "",
            "",
        )
        assert by_mac[YEALINK][4] == "failed"
        assert by_mac[YEALINK][7] == "no"
        assert by_mac[YEALINK][5].startswith("tftp fetch")
        # every row opens that phone's timeline
        assert f"/phones/{PLANET}" in page.row_links
        assert len(page.row_links) == 3
        # counts per state
        assert re.search(r'class="count registered"><b>1</b>', text)
        assert re.search(r'class="count failed"><b>1</b>', text)
        assert re.search(r'class="count total"><b>3</b>', text)
        # the refresh script polls the JSON API, allowed by the CSP nonce
        nonce = re.search(r"script-src 'nonce-([^']+)'", resp.headers["Content-Security-Policy"])
        assert nonce is not None
        assert f'<script nonce="{nonce.group(1)}">' in text
        assert "fetch('/api/phones'" in text
        assert "lab &lt;one&gt;" in text  # the appliance name is escaped too

    run_app(tmp_path, body)


def test_phone_supplied_text_is_escaped(tmp_path: Path) -> None:
    async def body(client: TestClient[web.Request, web.Application], reg: Registry) -> None:
        for path in ("/", f"/phones/{EVIL}"):
            text = await (await client.get(path)).text()
            page = parse(text)
            # no markup from the phone became a tag: only our own tags appear
            assert "img" not in page.tags, path
            assert set(page.body_tags) <= {"tr", "td", "a", "span", "small"}, path
            assert page.tags.count("script") == 1, path
            assert "<script>alert" not in text and "<img src=x" not in text
            assert "&lt;script&gt;alert(3)&lt;/script&gt;" in text
        timeline = parse(await (await client.get(f"/phones/{EVIL}")).text())
        assert any("<script>alert(1)</script>" in cell for row in timeline.rows for cell in row)

    run_app(tmp_path, body)


def test_timeline_page_and_unknown_phone(tmp_path: Path) -> None:
    async def body(client: TestClient[web.Request, web.Application], reg: Registry) -> None:
        # any MAC spelling finds the phone
        resp = await client.get("/phones/00-30-4F-11-3A-F8")
        assert resp.status == 200
        text = await resp.text()
        page = parse(text)
        kinds = [(row[1], row[2]) for row in page.rows]
        assert kinds == [
            ("dhcp", "discover"),
            ("dhcp", "ack"),
            ("pnp", "notify"),
            ("http", "fetch"),
            ("http", "fetch"),
            ("action", "registration-succeeded"),
        ]
        assert "00304f113af8.cfg" in page.rows[4][3]
        assert "VIP-2140PT" in text and "10.9.0.100" in text
        assert SIP_SECRET not in text
        for path in ("/phones/00:11:22:33:44:55", "/phones/not-a-mac"):
            resp = await client.get(path)
            assert resp.status == 404
            assert "not-a-mac" not in path or "not-a-mac" in await resp.text()
        assert (await client.get("/api/phones/00:11:22:33:44:55")).status == 404

    run_app(tmp_path, body)


def test_api_json_and_no_passwords_anywhere(tmp_path: Path) -> None:
    async def body(client: TestClient[web.Request, web.Application], reg: Registry) -> None:
        resp = await client.get("/api/phones")
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        raw = await resp.text()
        data = await resp.json()
        phones = {p["mac"]: p for p in data["phones"]}
        assert set(phones) == {PLANET, YEALINK, EVIL}
        assert data["counts"]["registered"] == 1
        assert data["counts"]["failed"] == 1
        assert data["counts"]["seen"] == 1
        assert sum(data["counts"].values()) == 3
        planet = phones[PLANET]
        assert planet["registered"] is True and phones[YEALINK]["registered"] is False
        assert (planet["ip"], planet["model"], planet["files"]) == ("10.9.0.100", "VIP-2140PT", 2)
        assert planet["url"] == "http://admin:********@10.9.0.1/$mac.cfg"
        assert phones[EVIL]["model"] == '"><script>alert(3)</script>'  # JSON carries raw text
        assert SIP_SECRET not in raw

        one = await client.get(f"/api/phones/{PLANET}")
        detail = await one.json()
        assert detail["phone"]["state"] == "registered"
        last = detail["events"][-1]
        assert last["kind"] == "registration-succeeded"
        assert last["detail"] == {
            "line": "1001",
            "password": "********",
            "sip_auth_pwd": "********",
        }
        assert SIP_SECRET not in await one.text()
        page = await (await client.get(f"/phones/{PLANET}")).text()
        assert SIP_SECRET not in page and "password=********" in page

    run_app(tmp_path, body)


def test_empty_registry(tmp_path: Path) -> None:
    async def body(client: TestClient[web.Request, web.Application], reg: Registry) -> None:
        text = await (await client.get("/")).text()
        assert "No phone seen yet." in text
        data = await (await client.get("/api/phones")).json()
        assert data["phones"] == [] and set(data["counts"].values()) == {0}

    run_app(tmp_path, body, populate_registry=False)


def _digest(header: str, path: str) -> str:
    params = dict(re.findall(r'(\w+)="?([^",]+)"?', header))
    ha1 = hashlib.sha256(f"installer:{params['realm']}:pw".encode()).hexdigest()
    ha2 = hashlib.sha256(f"GET:{path}".encode()).hexdigest()
    resp = hashlib.sha256(f"{ha1}:{params['nonce']}:00000001:abc:auth:{ha2}".encode()).hexdigest()
    return (
        f'Digest username="installer", realm="{params["realm"]}", nonce="{params["nonce"]}", '
        f'uri="{path}", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="abc", '
        f'response="{resp}", opaque="{params["opaque"]}"'
    )


def test_credentials_guard_page_api_and_metrics(tmp_path: Path) -> None:
    paths = ("/", f"/phones/{PLANET}", "/api/phones", f"/api/phones/{PLANET}", "/metrics")
    good = "Basic " + base64.b64encode(b"installer:pw").decode()
    bad = "Basic " + base64.b64encode(b"installer:nope").decode()

    async def body(client: TestClient[web.Request, web.Application], reg: Registry) -> None:
        for path in paths:
            resp = await client.get(path)
            assert resp.status == 401, path
            text = await resp.text()
            assert PLANET not in text and "10.9.0.100" not in text
            challenges = resp.headers.getall("WWW-Authenticate")
            assert any(c.startswith("Basic ") for c in challenges)
            assert (await client.get(path, headers={"Authorization": bad})).status == 401
            ok = await client.get(path, headers={"Authorization": good})
            assert ok.status == 200, path
            sha = next(c for c in challenges if "SHA-256" in c)
            digest = await client.get(path, headers={"Authorization": _digest(sha, path)})
            assert digest.status == 200, path

    run_app(tmp_path, body, username="installer", password="pw")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_exposition(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def body(client: TestClient[web.Request, web.Application], reg: Registry) -> None:
        before = _samples(await (await client.get("/metrics")).text())
        metrics.DHCP_MESSAGES.labels("out", "OFFER").inc(3)
        metrics.DHCP_MESSAGES.labels("out", "NAK").inc()
        metrics.BAD_INPUT.labels("tftp").inc(2)
        metrics.PNP_ANSWERS.inc()
        metrics.FILES_SERVED.labels("http", "ok").inc(5)
        logging.getLogger("netboot.pnp.transport").error("test: a counted error")
        resp = await client.get("/metrics")
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
        after = _samples(text)
        seen["text"] = text

        def delta(name: str, **labels: str) -> float:
            key = (name, tuple(sorted(labels.items())))
            return after[key] - before.get(key, 0.0)

        assert delta("netboot_dhcp_messages_total", direction="out", type="OFFER") == 3
        assert delta("netboot_dhcp_messages_total", direction="out", type="NAK") == 1
        assert ("netboot_dhcp_messages_total", (("direction", "out"), ("type", "ACK"))) in after
        assert delta("netboot_bad_input_total", service="tftp") == 2
        assert ("netboot_bad_input_total", (("service", "lldp"),)) in after
        assert delta("netboot_pnp_answers_total") == 1
        assert delta("netboot_files_total", protocol="http", result="ok") == 5
        assert delta("netboot_errors_total", part="pnp") == 1
        assert after[("netboot_dhcp_leases", ())] == 2
        assert after[("netboot_phones", (("state", "registered"),))] == 1
        assert after[("netboot_phones", (("state", "failed"),))] == 1
        assert after[("netboot_phones", (("state", "fetched-own"),))] == 0
        om = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert om.headers["Content-Type"].startswith("application/openmetrics-text")
        assert (await om.text()).endswith("# EOF\n")

    config_leases = tmp_path
    store = LeaseStore(config_leases)
    now = time.time()
    store.commit(
        [
            Lease(int.from_bytes(bytes([10, 9, 0, 100])), PLANET, "bound", now + 600),
            Lease(int.from_bytes(bytes([10, 9, 0, 101])), YEALINK, "bound", now + 600),
            Lease(int.from_bytes(bytes([10, 9, 0, 102])), EVIL, "bound", now - 1),  # expired
            Lease(int.from_bytes(bytes([10, 9, 0, 103])), "02:00:00:00:00:01", "declined", now + 9),
        ]
    )
    store.close()
    run_app(tmp_path, body)
    assert PLANET not in seen["text"]  # counts only, no per-phone series


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("http://u:p@h/x", "http://u:********@h/x"),
        ("https://u:p@h:8443/x?y=1", "https://u:********@h:8443/x?y=1"),
        ("http://h/x", "http://h/x"),
        ("tftp://u@h/x", "tftp://u@h/x"),
        ("http://h/a?mac=1&sip_password=x&b=2", "http://h/a?mac=1&sip_password=********&b=2"),
        ("http://u:p@h/a?PWD=x#f", "http://u:********@h/a?PWD=********#f"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_api_follows_registry_flushes_and_caps_timelines(tmp_path: Path) -> None:
    from netboot.http import status

    async def body(client: TestClient[web.Request, web.Application], reg: Registry) -> None:
        first = await (await client.get("/api/phones")).json()
        again = await (await client.get("/api/phones")).json()  # served from the cache
        assert first["phones"] == again["phones"]
        assert again["generated"] >= first["generated"]
        newcomer = "00:15:65:00:00:09"
        for n in range(status.TIMELINE_LIMIT + 20):
            reg.record(
                FileFetched(
                    mac=newcomer, file=f"f{n}", file_kind="mac", protocol="tftp", ip="10.9.0.9"
                )
            )
        reg.flush()  # what the supervisor does a few times a second
        after = await (await client.get("/api/phones")).json()
        assert newcomer in {p["mac"] for p in after["phones"]}
        assert len(after["phones"]) == len(first["phones"]) + 1
        assert after["counts"]["fetched-own"] == first["counts"]["fetched-own"] + 1
        detail = await (await client.get(f"/api/phones/{newcomer}")).json()
        files = [e["detail"]["file"] for e in detail["events"]]
        assert len(files) == status.TIMELINE_LIMIT
        assert files[-1] == f"f{status.TIMELINE_LIMIT + 19}" and files[0] == "f20"
        page = parse(await (await client.get(f"/phones/{newcomer}")).text())
        assert len(page.rows) == status.TIMELINE_LIMIT

    run_app(tmp_path, body)


# ---------------------------------------------------------------- bad input, per service


def _bad_input(service: str) -> float:
    value = metrics.REGISTRY.get_sample_value("netboot_bad_input_total", {"service": service})
    return value or 0.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _exchange(port: int, data: bytes, greeting: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if greeting:
            await asyncio.wait_for(reader.readline(), 10)
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
        await writer.wait_closed()


# pyftpdlib (2.x) still imports asyncore/asynchat, deprecated since Python 3.10.
@pytest.mark.filterwarnings(
    "ignore:The (asyncore|asynchat) module is deprecated:DeprecationWarning"
)
def test_http_and_ftp_count_what_they_cannot_parse(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A request the server cannot parse is dropped (400 / 500), counted in
    netboot_bad_input_total for that service, and logged as one line (no
    traceback) at most every few seconds; a good request counts nothing."""
    from netboot.ftp.server import FtpService
    from netboot.http.app import HttpService

    state, root = tmp_path / "state", tmp_path / "files"
    root.mkdir()
    (root / "common.cfg").write_bytes(b"x")
    http_port, ftp_port = _free_port(), _free_port()
    config = parse_config(
        {
            "appliance": {"interface": "lo", "state_dir": str(state)},
            "provisioning": {"root": str(root)},
            "dhcp": {"enabled": False},
            "http": {"port": http_port, "https_port": 0},
            "ftp": {"enabled": True, "port": ftp_port},
        }
    )
    registry, leases = Registry(state), LeaseStore(state)
    ctx = build_context(config, registry, leases)
    http, ftp = HttpService(ctx, host="127.0.0.1"), FtpService(ctx, host="127.0.0.1")
    before = {s: _bad_input(s) for s in ("http", "ftp")}

    async def main() -> None:
        await http.start()
        await ftp.start()
        try:
            good = await _exchange(http_port, b"GET /common.cfg HTTP/1.1\r\nHost: x\r\n\r\n")
            assert good.startswith(b"HTTP/1.1 200"), good
            assert _bad_input("http") == before["http"]
            for junk in (
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32) + b"\r\n\r\n",
                b"GET /x HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
            ):
                status = await _exchange(http_port, junk)
                assert status.startswith(b"HTTP/1.1 400") or status.startswith(b"HTTP/1.0 400"), (
                    junk[:20],
                    status,
                )
            assert _bad_input("http") == before["http"] + 3
            assert (await _exchange(ftp_port, b"NOOP\r\n", greeting=True)).startswith(b"200")
            assert _bad_input("ftp") == before["ftp"]
            assert (await _exchange(ftp_port, b"XYZZY\r\n", greeting=True)).startswith(b"500")
            assert _bad_input("ftp") == before["ftp"] + 1
        finally:
            await ftp.stop()
            await http.stop()

    with caplog.at_level(logging.WARNING, logger="netboot"):
        try:
            asyncio.run(main())
        finally:
            registry.close()
            leases.close()
    dropped = [r for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(dropped) == 1, [r.getMessage() for r in caplog.records]  # rate-limited
    assert dropped[0].exc_info is None and "127.0.0.1" in dropped[0].getMessage()


def test_state_problems_are_on_the_page_and_in_the_api(tmp_path: Path) -> None:
    import sqlite3

    from netboot.statedisk import HEALTH

    async def body(client: TestClient[web.Request, web.Application], reg: Registry) -> None:
        assert (await (await client.get("/api/phones")).json())["problems"] == []
        HEALTH.failed("registry", sqlite3.OperationalError("database or disk is full"), "3 wait")
        try:
            data = await (await client.get("/api/phones")).json()
            assert len(data["problems"]) == 1
            assert data["problems"][0].startswith(
                "registry: cannot write to state_dir (the disk is full: database or disk is full); "
                "3 wait ("
            )
            page = await (await client.get("/")).text()
            assert '<div id="problems"><p class="problem">registry: cannot write' in page
        finally:
            HEALTH.reset()
        assert (await (await client.get("/api/phones")).json())["problems"] == []

    run_app(tmp_path, body)
