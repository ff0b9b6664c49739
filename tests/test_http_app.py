"""The HTTP file app through aiohttp's test server on loopback: status codes,
headers, ranges, conditional GET, auth, MAC binding, unsafe names, registry."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import hashlib
import logging
import os
import socket
import ssl
import stat
import time
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from netboot.app import build_context
from netboot.config import parse_config
from netboot.http.app import build_app, parse_range
from netboot.http.auth import parse_params
from netboot.provisioning.files import FileResolver
from netboot.registry import Registry
from netboot.state.leases import Lease, LeaseStore
from netboot.state.registry import TimelineEntry
from netboot.supervisor import Context

OWN_MAC = "00:30:4f:11:3a:f8"  # holds the lease of 127.0.0.1 (the test client)
OTHER_MAC = "00:30:4f:aa:bb:cc"  # leased elsewhere
OWN_FILE = b"<<VOIP CONFIG FILE>>Version:2.0000000000\nSIP1 Password :secret-own\n"
OTHER_FILE = b"<<VOIP CONFIG FILE>>Version:2.0000000000\nSIP1 Password :secret-other\n"
COMMON = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable
OUTSIDE = b"outside root: must never be served\n"


class Site:
    def __init__(self, tmp: Path, username: str = "", password: str = "") -> None:
        self.state = tmp / "state"
        self.root = tmp / "root"
        self.root.mkdir(parents=True)
        (self.root / "00304F113AF8.cfg").write_bytes(OWN_FILE)  # found whatever the spelling
        (self.root / "00304faabbcc.cfg").write_bytes(OTHER_FILE)
        (self.root / "f0VIP-2140PThw1.100.cfg").write_bytes(COMMON)
        (self.root / "sub").mkdir()
        (self.root / "sub" / "fw.bin").write_bytes(b"F" * 1000)
        (tmp / "secret.cfg").write_bytes(OUTSIDE)
        (self.root / "link.cfg").symlink_to(tmp / "secret.cfg")
        self.config = parse_config(
            {
                "appliance": {"interface": "lo", "state_dir": str(self.state), "name": "lab"},
                "provisioning": {"root": str(self.root)},
                "dhcp": {"enabled": False},
                "http": {"port": 8080, "https_port": 0, "username": username, "password": password},
            }
        )
        self.registry = Registry(self.state)
        self.leases = LeaseStore(self.state)
        far = time.time() + 3600
        for ip, mac in (("127.0.0.1", OWN_MAC), ("192.0.2.77", OTHER_MAC)):
            self.leases.stage(Lease(int(IPv4Address(ip)), mac, "bound", far))
        self.leases.flush()
        self.rendered: list[str] = []
        self.resolver = FileResolver(
            self.root,
            self.render,
            self.leases,
            True,
            registry=self.registry,
        )
        self.ctx = Context(self.config, self.registry, self.leases, self.resolver)

    def render(self, name: str) -> bytes | None:
        self.rendered.append(name)
        return b"rendered " + name.encode() + b"\n" if name.startswith("gen/") else None

    def run(
        self, body: Callable[[TestClient[web.Request, web.Application]], Awaitable[None]]
    ) -> None:
        async def main() -> None:
            app = build_app(self.ctx, self.resolver)
            async with TestClient(TestServer(app)) as client:
                await body(client)

        asyncio.run(main())

    def events(self, mac: str) -> list[TimelineEntry]:
        return self.registry.timeline(mac)

    def close(self) -> None:
        self.registry.close()
        self.leases.close()


@pytest.fixture
def site(tmp_path: Path) -> Any:
    s = Site(tmp_path)
    yield s
    s.close()


@pytest.fixture
def auth_site(tmp_path: Path) -> Any:
    s = Site(tmp_path, "admin", "pa:ss wörd")
    yield s
    s.close()


# ---------------------------------------------------------------- files


def test_get_and_head_carry_length_and_validators(site: Site) -> None:
    async def body(client: TestClient[web.Request, web.Application]) -> None:
        r = await client.get("/f0VIP-2140PThw1.100.cfg")
        assert r.status == 200
        assert await r.read() == COMMON
        assert r.headers["Content-Length"] == str(len(COMMON))
        assert r.headers["Content-Type"].startswith("text/plain")
        assert r.headers["Accept-Ranges"] == "bytes"
        assert r.headers["ETag"].startswith('"')
        mtime = os.stat(site.root / "f0VIP-2140PThw1.100.cfg").st_mtime
        assert r.headers["Last-Modified"] == email.utils.formatdate(mtime, usegmt=True)
        h = await client.head("/f0VIP-2140PThw1.100.cfg")
        assert h.status == 200
        assert h.headers["Content-Length"] == str(len(COMMON))
        assert await h.read() == b""
        sub = await client.get("/sub/fw.bin")
        assert sub.status == 200
        assert sub.headers["Content-Type"] == "application/octet-stream"
        assert await sub.read() == b"F" * 1000

    site.run(body)


def test_own_mac_file_in_any_spelling_from_the_lease_ip(site: Site) -> None:
    async def body(client: TestClient[web.Request, web.Application]) -> None:
        for name in ("00304f113af8.cfg", "00-30-4F-11-3A-F8.cfg", "00304F113AF8.CFG"):
            r = await client.get("/" + name, headers={"User-Agent": "curl/8"})
            assert r.status == 200, name
            assert await r.read() == OWN_FILE
            assert r.headers["Cache-Control"] == "no-store"

    site.run(body)
    fetches = [e for e in site.events(OWN_MAC) if e.kind == "fetch"]
    assert [e.detail["result"] for e in fetches] == ["ok"] * 3
    assert {e.detail["file_kind"] for e in fetches} == {"mac"}
    assert fetches[0].detail["bytes"] == len(OWN_FILE)
    assert fetches[0].detail["protocol"] == "http"
    phone = site.registry.phone(OWN_MAC)
    assert phone is not None
    assert phone.state == "fetched-own"
    assert phone.ip == "127.0.0.1"


def test_missing_file_is_404_and_recorded_as_failed(site: Site) -> None:
    async def body(client: TestClient[web.Request, web.Application]) -> None:
        r = await client.get("/f0VIP-2160hw1.100.cfg")  # common file of a model we lack
        assert r.status == 404
        r = await client.get("/00304f113af8.xml")  # own MAC, wrong extension
        assert r.status == 404

    site.run(body)
    fetches = [e for e in site.events(OWN_MAC) if e.kind == "fetch"]
    assert [(e.detail["file"], e.detail["result"]) for e in fetches] == [
        ("f0VIP-2160hw1.100.cfg", "not-found"),
        ("00304f113af8.xml", "not-found"),
    ]
    phone = site.registry.phone(OWN_MAC)
    assert phone is not None
    assert phone.state == "failed"
    assert "not-found" in (phone.state_detail or "") or "f0VIP-2160" in (phone.state_detail or "")


def test_an_interrupted_download_records_the_bytes_it_sent(site: Site) -> None:
    big = os.urandom(16 << 20)  # more than the socket buffers hold
    (site.root / "fw.bin").write_bytes(big)

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(b"GET /fw.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(256 * 1024)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        writer.transport.abort()  # RST: the server's next writes fail
        deadline = time.monotonic() + 10
        while not any(e.kind == "fetch" for e in site.events(OWN_MAC)):
            assert time.monotonic() < deadline, "the cut download was never recorded"
            await asyncio.sleep(0.02)

    site.run(body)
    [fetch] = [e for e in site.events(OWN_MAC) if e.kind == "fetch"]
    assert fetch.detail["result"] == "aborted" and fetch.detail["file"] == "fw.bin"
    assert 256 * 1024 <= fetch.detail["bytes"] < len(big)


def test_an_unreadable_file_is_a_500_and_recorded(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    (site.root / "loop.cfg").symlink_to(site.root / "loop2.cfg")  # stat fails: ELOOP
    (site.root / "loop2.cfg").symlink_to(site.root / "loop.cfg")
    (site.root / "locked.cfg").write_bytes(b"x")
    real_open = os.open

    def deny(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith("locked.cfg"):  # tests run as root: chmod would not stop us
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        for name in ("loop.cfg", "locked.cfg"):
            r = await client.get("/" + name)
            assert r.status == 500, name
            assert "Permission" not in await r.text() and "loop" not in await r.text()

    site.run(body)
    fetches = [e.detail for e in site.events(OWN_MAC) if e.kind == "fetch"]
    assert [(f["file"], f["result"]) for f in fetches] == [
        ("loop.cfg", "unreadable"),
        ("locked.cfg", "unreadable"),
    ]
    assert "cannot read" in fetches[0]["reason"]


def test_rendered_file_when_no_real_one(site: Site) -> None:
    async def body(client: TestClient[web.Request, web.Application]) -> None:
        r = await client.get("/gen/a.cfg")
        assert r.status == 200
        assert await r.read() == b"rendered gen/a.cfg\n"
        assert "Last-Modified" not in r.headers
        etag = r.headers["ETag"]
        again = await client.get("/gen/a.cfg", headers={"If-None-Match": etag})
        assert again.status == 304

    site.run(body)
    assert site.rendered == ["gen/a.cfg", "gen/a.cfg"]


# ---------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=2-", 10, (2, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("bytes=5-100", 10, (5, 9)),
        ("bytes=10-", 10, "unsatisfiable"),
        ("bytes=-0", 10, "unsatisfiable"),
        ("bytes=0-", 0, "unsatisfiable"),
        ("bytes=5-2", 10, None),
        ("bytes=0-1,4-5", 10, None),
        ("items=0-1", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=5", 10, None),
        ("bytes= 1 - 2 ", 10, (1, 2)),
    ],
)
def test_parse_range(header: str, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected


def test_range_requests(site: Site) -> None:
    name = "/f0VIP-2140PThw1.100.cfg"

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        r = await client.get(name, headers={"Range": "bytes=1000-1999"})
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes 1000-1999/{len(COMMON)}"
        assert r.headers["Content-Length"] == "1000"
        assert await r.read() == COMMON[1000:2000]
        r = await client.get(name, headers={"Range": "bytes=-10"})
        assert r.status == 206
        assert await r.read() == COMMON[-10:]
        r = await client.get(name, headers={"Range": f"bytes={len(COMMON)}-"})
        assert r.status == 416
        assert r.headers["Content-Range"] == f"bytes */{len(COMMON)}"
        # Several ranges: the whole file (RFC 9110 §14.2 lets a server ignore Range).
        r = await client.get(name, headers={"Range": "bytes=0-1,5-6"})
        assert r.status == 200
        assert await r.read() == COMMON
        # If-Range with the current ETag: the range; with another: the whole file.
        etag = r.headers["ETag"]
        r = await client.get(name, headers={"Range": "bytes=0-9", "If-Range": etag})
        assert r.status == 206
        assert await r.read() == COMMON[:10]
        r = await client.get(name, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
        assert r.status == 200
        assert len(await r.read()) == len(COMMON)

    site.run(body)


# ---------------------------------------------------------------- conditional GET


def test_conditional_get(site: Site) -> None:
    name = "/f0VIP-2140PThw1.100.cfg"
    mtime = os.stat(site.root / name[1:]).st_mtime

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        first = await client.get(name)
        etag = first.headers["ETag"]
        r = await client.get(name, headers={"If-None-Match": etag})
        assert r.status == 304
        assert await r.read() == b""
        assert r.headers["ETag"] == etag
        r = await client.get(name, headers={"If-None-Match": f'"nope", W/{etag}'})
        assert r.status == 304  # weak comparison, in a list
        r = await client.get(name, headers={"If-None-Match": '"nope"'})
        assert r.status == 200
        assert await r.read() == COMMON
        later = email.utils.formatdate(mtime + 60, usegmt=True)
        earlier = email.utils.formatdate(mtime - 60, usegmt=True)
        r = await client.get(name, headers={"If-Modified-Since": later})
        assert r.status == 304
        r = await client.get(name, headers={"If-Modified-Since": earlier})
        assert r.status == 200
        assert await r.read() == COMMON
        r = await client.get(name, headers={"If-Modified-Since": "not a date"})
        assert r.status == 200
        # If-None-Match wins over If-Modified-Since (RFC 9110 §13.1.3).
        r = await client.get(name, headers={"If-None-Match": '"nope"', "If-Modified-Since": later})
        assert r.status == 200
        # The file changes: the old ETag no longer matches.
        os.utime(site.root / name[1:], (mtime + 120, mtime + 120))
        r = await client.get(name, headers={"If-None-Match": etag})
        assert r.status == 200

    site.run(body)


# ---------------------------------------------------------------- MAC binding


def test_mac_file_from_an_ip_without_its_lease_is_403_and_recorded(site: Site) -> None:
    async def body(client: TestClient[web.Request, web.Application]) -> None:
        r = await client.get("/00304faabbcc.cfg")
        assert r.status == 403
        text = await r.text()
        assert "secret" not in text
        r = await client.get("/00:30:4f:aa:bb:cc.cfg")
        assert r.status == 403

    site.run(body)
    fetches = [e for e in site.events(OTHER_MAC) if e.kind == "fetch"]
    assert [e.detail["result"] for e in fetches] == ["forbidden", "forbidden"]
    assert fetches[0].detail["client"] == "127.0.0.1"
    assert "127.0.0.1 holds the lease of " + OWN_MAC in fetches[0].detail["reason"]
    phone = site.registry.phone(OTHER_MAC)
    assert phone is not None
    assert phone.state == "seen"  # someone else's request is not the phone's failure
    assert phone.ip is None  # the intruder's address is not the phone's


# ---------------------------------------------------------------- unsafe names


async def raw_get(
    client: TestClient[web.Request, web.Application], target: bytes
) -> tuple[int, bytes]:
    """Send a request line byte for byte (clients normalize `..` away)."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    "target",
    [
        b"/../secret.cfg",
        b"/%2e%2e/secret.cfg",
        b"/..%2fsecret.cfg",
        b"/%2e%2e%2fsecret.cfg",
        b"/sub/../../secret.cfg",
        b"/sub/%2e%2e/%2e%2e/secret.cfg",
        b"/..\\secret.cfg",
        b"/%5c..%5csecret.cfg",
        b"//etc/passwd",
        b"/%2fetc%2fpasswd",
        b"/C:%5cboot.ini",
        b"/link.cfg",
        b"/x%00.cfg",
        b"/x%0a.cfg",
        b"/" + b"a" * 300 + b".cfg",
        b"/" + b"a/" * 600,
    ],
)
def test_unsafe_names_are_refused_and_nothing_is_read(site: Site, target: bytes) -> None:
    async def body(client: TestClient[web.Request, web.Application]) -> None:
        status, data = await raw_get(client, target)
        assert status in (400, 404), (target, status)
        assert b"outside root" not in data
        assert b"root:" not in data

    site.run(body)
    assert site.rendered == []  # refused before any lookup: the renderer never ran


# ---------------------------------------------------------------- User-Agent


def test_user_agent_model_and_firmware_reach_the_registry(site: Site) -> None:
    ua_mac = "0c:38:3e:07:e1:6c"

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        r = await client.get(
            "/f0VIP-2140PThw1.100.cfg",
            headers={"User-Agent": "Fanvil X4 2.10.2.6887 0c383e07e16c"},
        )
        assert r.status == 200
        r = await client.get(
            "/00304f113af8.cfg", headers={"User-Agent": "PLANET VIP-2140PT 2.0.3.1 00304f113af8"}
        )
        assert r.status == 200

    site.run(body)
    fanvil = site.registry.phone(ua_mac)
    assert fanvil is not None
    assert (fanvil.vendor, fanvil.model, fanvil.firmware) == ("Fanvil", "X4", "2.10.2.6887")
    assert fanvil.state == "fetched-common"
    planet = site.registry.phone(OWN_MAC)
    assert planet is not None
    assert (planet.vendor, planet.model, planet.firmware) == ("PLANET", "VIP-2140PT", "2.0.3.1")
    event = next(e for e in site.events(OWN_MAC) if e.kind == "fetch")
    assert event.detail["user_agent"] == "PLANET VIP-2140PT 2.0.3.1 00304f113af8"


# ---------------------------------------------------------------- auth


def _digest_header(
    challenge: str, user: str, password: str, method: str, uri: str, *, algorithm: str
) -> str:
    """A client's Digest Authorization (RFC 7616 §3.4), computed independently."""
    params = parse_params(challenge.split(" ", 1)[1])
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm]

    def hx(text: str) -> str:
        return h(text.encode()).hexdigest()

    cnonce, nc = "0a4f113b", "00000001"
    ha1 = hx(f"{user}:{params['realm']}:{password}")
    ha2 = hx(f"{method}:{uri}")
    response = hx(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
        f'uri="{uri}", algorithm={algorithm}, qop=auth, nc={nc}, cnonce="{cnonce}", '
        f'response="{response}", opaque="{params["opaque"]}"'
    )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_auth_basic(auth_site: Site) -> None:
    async def body(client: TestClient[web.Request, web.Application]) -> None:
        r = await client.get("/f0VIP-2140PThw1.100.cfg")
        assert r.status == 401
        offered = r.headers.getall("WWW-Authenticate")
        assert [c.split(" ", 1)[0] for c in offered] == ["Digest", "Digest", "Basic"]
        assert "algorithm=SHA-256" in offered[0] and "algorithm=MD5" in offered[1]
        assert "COMMON" not in await r.text()
        ok = await client.get(
            "/f0VIP-2140PThw1.100.cfg", headers={"Authorization": _basic("admin", "pa:ss wörd")}
        )
        assert ok.status == 200
        assert await ok.read() == COMMON
        for user, password in (("admin", "wrong"), ("root", "pa:ss wörd"), ("admin", "")):
            bad = await client.get(
                "/f0VIP-2140PThw1.100.cfg", headers={"Authorization": _basic(user, password)}
            )
            assert bad.status == 401, (user, password)
        junk = await client.get("/f0VIP-2140PThw1.100.cfg", headers={"Authorization": "Basic !!"})
        assert junk.status == 401

    auth_site.run(body)


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_auth_digest(auth_site: Site, algorithm: str) -> None:
    uri = "/sub/fw.bin"

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        r = await client.get(uri)
        assert r.status == 401
        challenge = next(
            c for c in r.headers.getall("WWW-Authenticate") if f"algorithm={algorithm}" in c
        )
        good = _digest_header(challenge, "admin", "pa:ss wörd", "GET", uri, algorithm=algorithm)
        ok = await client.get(uri, headers={"Authorization": good})
        assert ok.status == 200
        assert await ok.read() == b"F" * 1000
        wrong = _digest_header(challenge, "admin", "nope", "GET", uri, algorithm=algorithm)
        assert (await client.get(uri, headers={"Authorization": wrong})).status == 401
        # A response computed for another URI does not open this one.
        other = _digest_header(
            challenge, "admin", "pa:ss wörd", "GET", "/f0VIP-2140PThw1.100.cfg", algorithm=algorithm
        )
        assert (await client.get(uri, headers={"Authorization": other})).status == 401
        # A forged nonce is refused.
        forged = good.replace(parse_params(challenge.split(" ", 1)[1])["nonce"], "AAAA")
        assert (await client.get(uri, headers={"Authorization": forged})).status == 401

    auth_site.run(body)


def test_digest_stale_nonce_gets_a_stale_challenge(tmp_path: Path) -> None:
    from netboot.http.auth import NONCE_LIFETIME, Authenticator

    clock = [1000.0]
    auth = Authenticator("u", "p", realm="r", clock=lambda: clock[0])
    challenge = auth.challenges()[0]
    header = _digest_header(challenge, "u", "p", "GET", "/x", algorithm="SHA-256")
    assert auth.check(header, "GET", "/x") == "ok"
    clock[0] += NONCE_LIFETIME + 1
    assert auth.check(header, "GET", "/x") == "stale"
    assert all("stale=true" in c for c in auth.challenges(stale=True)[:2])
    wrong = _digest_header(challenge, "u", "bad", "GET", "/x", algorithm="SHA-256")
    assert auth.check(wrong, "GET", "/x") == "denied"  # a stale nonce never helps a bad password


# ---------------------------------------------------------------- logging


def test_one_debug_line_per_request_and_nothing_at_info(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    from netboot.http.app import DebugAccessLogger, log

    async def fetch_all(level: int) -> None:
        app = build_app(site.ctx, site.resolver)
        server = TestServer(app)
        with caplog.at_level(level, logger="netboot.http"):
            await server.start_server(access_log=log, access_log_class=DebugAccessLogger)
            async with TestClient(server) as client:
                assert (await client.get("/f0VIP-2140PThw1.100.cfg")).status == 200
                assert (await client.get("/00304faabbcc.cfg")).status == 403
                assert (await client.get("/nothing.cfg")).status == 404

    asyncio.run(fetch_all(logging.INFO))
    assert [r for r in caplog.records if r.name == "netboot.http"] == []
    asyncio.run(fetch_all(logging.DEBUG))
    lines = [r.getMessage() for r in caplog.records if r.name == "netboot.http"]
    assert len(lines) == 3, lines
    assert lines[0].startswith("http 127.0.0.1 GET '/f0VIP-2140PThw1.100.cfg' 200 ")
    assert " 403 " in lines[1] and "holds the lease of " + OWN_MAC in lines[1]
    assert " 404 " in lines[2] and "not-found" in lines[2]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "netboot.http")


# ---------------------------------------------------------------- the service, HTTPS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_service_serves_http_and_https_with_a_generated_certificate(tmp_path: Path) -> None:
    from netboot.http.app import HttpService
    from netboot.http.tls import certificate_paths

    state, root = tmp_path / "state", tmp_path / "root"
    root.mkdir()
    (root / "f0X4hw1.100.cfg").write_bytes(COMMON)
    http_port, https_port = _free_port(), _free_port()
    config = parse_config(
        {
            "appliance": {"interface": "lo", "state_dir": str(state), "address": "192.0.2.2"},
            "provisioning": {"root": str(root)},
            "dhcp": {"enabled": False},
            "http": {"port": http_port, "https_port": https_port},
        }
    )
    registry, leases = Registry(state), LeaseStore(state)
    service = HttpService(build_context(config, registry, leases), host="127.0.0.1")

    async def main() -> None:
        await service.start()
        serving = asyncio.create_task(service.serve())
        client_tls = ssl.create_default_context()
        client_tls.check_hostname = False
        client_tls.verify_mode = ssl.CERT_NONE
        async with aiohttp.ClientSession() as session:
            for url in (
                f"http://127.0.0.1:{http_port}/f0X4hw1.100.cfg",
                f"https://127.0.0.1:{https_port}/f0X4hw1.100.cfg",
            ):
                async with session.get(url, ssl=client_tls if "https" in url else True) as r:
                    assert r.status == 200
                    assert await r.read() == COMMON
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        await service.stop()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", http_port)

    try:
        asyncio.run(main())
    finally:
        registry.close()
        leases.close()
    cert, key = state / "tls" / "cert.pem", state / "tls" / "key.pem"
    assert cert.exists() and key.exists()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    from cryptography import x509

    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert IPv4Address("192.0.2.2") in san.get_values_for_type(x509.IPAddress)
    # Reused, not regenerated, on the next start.
    before = cert.read_bytes()
    assert certificate_paths(config) == (cert, key)
    assert cert.read_bytes() == before


def test_stop_lets_a_download_in_flight_finish(tmp_path: Path) -> None:
    """stop() closes the listening socket at once, and waits (up to the grace
    period) for a download already under way, which arrives whole."""
    from netboot.http.app import HttpService

    state, root = tmp_path / "state", tmp_path / "root"
    root.mkdir()
    firmware = os.urandom(16 << 20)  # more than the socket buffers hold
    (root / "fw.bin").write_bytes(firmware)
    port = _free_port()
    config = parse_config(
        {
            "appliance": {"interface": "lo", "state_dir": str(state)},
            "provisioning": {"root": str(root)},
            "dhcp": {"enabled": False},
            "http": {"port": port, "https_port": 0},
        }
    )
    registry, leases = Registry(state), LeaseStore(state)
    service = HttpService(build_context(config, registry, leases), host="127.0.0.1")

    async def main() -> None:
        await service.start()
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/fw.bin") as r,
        ):
            assert r.status == 200
            first = await r.content.readexactly(64 * 1024)
            stopping = asyncio.create_task(service.stop())
            await wait_until_refused(port)
            # While we do not read, stop() keeps waiting for our download (a
            # shorter grace than this wait would cut it and fail the test).
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.shield(stopping), 0.5)
            rest = await r.read()
        await asyncio.wait_for(stopping, 10)
        assert first + rest == firmware

    async def wait_until_refused(port: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return
            writer.close()
            await asyncio.sleep(0.01)
        raise AssertionError("the listening socket is still open")

    try:
        asyncio.run(main())
    finally:
        registry.close()
        leases.close()


def test_start_failures_are_one_clear_oserror_and_release_the_http_port(tmp_path: Path) -> None:
    from netboot.http.app import HttpService

    state, root = tmp_path / "state", tmp_path / "root"
    root.mkdir()
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    http_port = _free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    busy_port = holder.getsockname()[1]

    def service(https_port: int, **tls: str) -> HttpService:
        config = parse_config(
            {
                "appliance": {"interface": "lo", "state_dir": str(state)},
                "provisioning": {"root": str(root)},
                "dhcp": {"enabled": False},
                "http": {"port": http_port, "https_port": https_port, **tls},
            }
        )
        return HttpService(build_context(config, registry, leases), host="127.0.0.1")

    async def main() -> None:
        bad_cert = service(
            _free_port(),
            tls_cert=str(tmp_path / "cert.pem"),
            tls_key=str(tmp_path / "key.pem"),
        )
        with pytest.raises(OSError, match=r"^https: cannot set up the TLS certificate"):
            await bad_cert.start()
        with pytest.raises(OSError, match=f"https: cannot bind TCP 127.0.0.1:{busy_port}"):
            await service(busy_port).start()
        # Neither failure left the HTTP port bound: a good start still works.
        good = service(0)
        await good.start()
        await good.stop()

    registry, leases = Registry(state), LeaseStore(state)
    try:
        asyncio.run(main())
    finally:
        holder.close()
        registry.close()
        leases.close()


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1", "TLSv1_2", "TLSv1_3"])
def test_https_accepts_old_phone_tls_versions(tmp_path: Path, version: str) -> None:
    """Phones in the field still speak TLS 1.0/1.1: the server context takes them."""
    import warnings

    from netboot.http.tls import server_context

    config = parse_config(
        {
            "appliance": {"interface": "lo", "state_dir": str(tmp_path)},
            "dhcp": {"enabled": False},
        }
    )
    wanted = ssl.TLSVersion[version]
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client.minimum_version = client.maximum_version = wanted
    client.set_ciphers("DEFAULT:@SECLEVEL=0")

    async def main() -> str:
        async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"ok")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context(config))
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        assert await reader.read() == b"ok"
        negotiated: str = writer.get_extra_info("ssl_object").version()
        writer.close()
        server.close()
        await server.wait_closed()
        return negotiated

    assert asyncio.run(main()) == version.replace("_", ".")


def test_check_names_a_certificate_that_does_not_load(tmp_path: Path) -> None:
    from netboot.http.tls import certificate_paths, check

    def config(**http: object) -> Any:
        return parse_config(
            {
                "appliance": {"interface": "lo", "state_dir": str(tmp_path / "state")},
                "dhcp": {"enabled": False},
                "http": {"https_port": 443, **http},
            }
        )

    assert check(config()) == []  # nothing configured: one is generated at start
    cert, key = certificate_paths(config())
    assert check(config(tls_cert=str(cert), tls_key=str(key))) == []
    (tmp_path / "bad.pem").write_text("garbage\n")
    problems = check(config(tls_cert=str(tmp_path / "bad.pem"), tls_key=str(key)))
    assert len(problems) == 1 and str(tmp_path / "bad.pem") in problems[0]
    problems = check(config(tls_cert=str(cert), tls_key=str(tmp_path / "missing.pem")))
    assert len(problems) == 1 and "missing.pem" in problems[0]
    # HTTPS off: the files are not used, nothing to say.
    assert check(config(https_port=0, tls_cert=str(tmp_path / "bad.pem"), tls_key=str(key))) == []
