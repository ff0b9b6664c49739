"""The lab phones' web servers: Active URI, answered with what each phone applied.

One listening socket on port 80 of the phones' namespace serves every phone:
the address a connection arrived on is the phone's own (each lease is an
address of that interface), so the server looks the phone up by it and
answers `GET /cgi-bin/ConfigManApp.com?key=...` (PLANET guide chapter 5),
Yealink's `/servlet?key=...` or its own family's remote-control paths
(`apply.REMOTE_PATHS`: Snom `/command.htm?key=`, `/advanced_update.htm?reboot=`)
as that phone's applied config says
(`apply.active_uri_status`): 200 only from the allowed address and with the
admin account it read, 401 with a Basic challenge for missing or wrong
credentials, 403 from any other address. Each phone keeps a bounded log of
what it was asked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from netboot.lab.apply import REMOTE_PATHS, Applied, active_uri_status

ALL_PATHS = frozenset(path for paths in REMOTE_PATHS.values() for path in paths)

MAX_HEAD = 8192  # bytes of request line + headers a phone reads
MAX_LOG = 32  # Active URI requests a phone remembers
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


@dataclass
class ActiveUriLog:
    """What one phone was asked: (source ip, keys, status), oldest dropped."""

    entries: list[tuple[str, str, int]] = field(default_factory=list)

    def add(self, source: str, keys: str, status: int) -> None:
        self.entries.append((source, keys, status))
        del self.entries[:-MAX_LOG]

    def accepted_from(self, source: str) -> bool:
        return any(s == source and status == 200 for s, _, status in self.entries)


class PhoneWebServer:
    """Port 80 for every lab phone; `lookup(ip)` gives the phone's applied
    config (None: not applied yet) and its log."""

    def __init__(self, lookup: Callable[[str], tuple[Applied | None, ActiveUriLog] | None]) -> None:
        self.lookup = lookup
        self.server: asyncio.Server | None = None

    async def start(self, port: int = 80, host: str = "0.0.0.0") -> int:
        """Listen (in the phones' namespace: every phone's address); the port."""
        self.server = await asyncio.start_server(
            self._serve,
            host,
            port,
            family=socket.AF_INET,
            reuse_address=True,
            backlog=512,
            limit=MAX_HEAD,
        )
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status = await asyncio.wait_for(self._handle(reader, writer), 10)
        except (
            TimeoutError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            status = 400
        head = f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\n"
        if status == 401:
            head += 'WWW-Authenticate: Basic realm="lab phone"\r\n'
        body = b'{"response": "success"}' if status == 200 else b""
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
        data = await reader.readuntil(b"\r\n\r\n")
        lines = data.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3 or parts[0] not in ("GET", "POST"):
            return 400
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        local = writer.get_extra_info("sockname")[0]
        source = writer.get_extra_info("peername")[0]
        phone = self.lookup(local)
        target = urlsplit(parts[1])
        if phone is None:
            return 404
        applied, log = phone
        family = applied.layout.split("-", 1)[0] if applied is not None else ""
        if target.path not in REMOTE_PATHS.get(family, ALL_PATHS):
            return 404
        if (parts[0] == "POST") != target.path.startswith("/api/"):
            return 400  # the Poly REST API is POST; every other remote control GET
        query = parse_qs(target.query)
        authorization = headers.get("authorization", "")
        if target.path == "/cgi-bin/api-sys_operation":  # Grandstream: the passcode is the password
            passcode = query.get("passcode", [""])[0]
            authorization = "Basic " + base64.b64encode(f"admin:{passcode}".encode()).decode()
        status = active_uri_status(applied, source, authorization)
        if target.path == "/cgi-bin/api-sys_operation":
            keys = ";".join(query.get("request", []))
            log.add(source, keys, status)
            return status
        keys = ";".join(
            query.get("key", [])
            or [f"reboot={v}" for v in query.get("reboot", [])]
            or [target.path.rpartition("/")[2]]
        )
        log.add(source, keys, status)
        return status
