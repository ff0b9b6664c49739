"""Read-only FTP for the config files, with pyftpdlib (RFC 959 is its business).

3CDaemon-style setups point phones at `ftp://host/`; this serves the same root
with the same name resolution and MAC binding as TFTP and HTTP. A subclassed
pyftpdlib filesystem sends every RETR through the shared `FileResolver`, so a
per-MAC file asked for from an IP that does not hold that MAC's lease gets
`550` and is recorded, `00-30-4F-11-3A-F8.cfg` finds `00304f113af8.cfg`, and a
rendered file is served from memory. Users have the permissions `elr` (change
directory, list, retrieve): uploads, deletes and renames get `550`.
Anonymous login when `ftp.username` is empty.

Threading: pyftpdlib has its own select loop, so it runs on a thread of its own
(its own IOLoop, not the process-wide one). The resolver, renderer and
registry belong to the asyncio loop: the FTP thread calls them through
`_LoopBridge`, which runs the call on the asyncio loop and waits for the result,
so none of them is ever used from two threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.filesystems import AbstractedFS, FilesystemError
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from netboot import metrics
from netboot.provisioning.files import FileResolver, Refusal, Resolved
from netboot.supervisor import Context

log = logging.getLogger("netboot.ftp")
T = TypeVar("T")

PERMISSIONS = "elr"
_MESSAGES = {
    "not-found": "No such file",
    "forbidden": "Access denied: this per-MAC file belongs to another address",
    "refused-name": "Bad file name",
    "unreadable": "File not readable by the server",
}


class _LoopBridge:
    """Run a function on the asyncio loop from the FTP thread and wait for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout=30)


class _NamedBytes(io.BytesIO):
    """Rendered content with the `name` pyftpdlib reports transfers by."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


class ResolvingFS(AbstractedFS):  # type: ignore[misc]
    """pyftpdlib's chrooted filesystem, with `open` going through the resolver."""

    def open(self, filename: str, mode: str) -> Any:
        handler: ResolvingHandler = self.cmd_channel
        if any(flag in mode for flag in "wax+"):
            raise FilesystemError("read-only server")
        outcome = handler.resolve(filename)
        if isinstance(outcome, Refusal):
            raise FilesystemError(_MESSAGES[outcome.result])
        if outcome.path is not None:
            try:
                handle: Any = outcome.path.open("rb")
            except OSError as exc:
                log.warning("ftp: cannot read %s: %s", outcome.name, exc.strerror)
                handler.bridge.call(handler.resolver.record, outcome, "ftp", result="unreadable")
                raise FilesystemError(_MESSAGES["unreadable"]) from None
        else:
            handle = _NamedBytes(outcome.data or b"", filename)
        handler.outcomes[str(handle.name)] = outcome
        return handle


class ResolvingHandler(FTPHandler):  # type: ignore[misc]
    abstracted_fs = ResolvingFS
    banner = "netboot FTP (read-only)"
    permit_foreign_addresses = False
    resolver: FileResolver
    bridge: _LoopBridge

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: dict[str, Resolved] = {}
        self.last_refused = ""

    def resolve(self, path: str) -> Resolved | Refusal:
        """The resolver's answer for a file system path under root; a refusal is
        logged and recorded once (SIZE then RETR of the same name counts once)."""
        name = os.path.relpath(path, self.fs.root)
        outcome = self.bridge.call(self.resolver.resolve, name, self.remote_ip)
        if isinstance(outcome, Refusal):
            if self.last_refused != name:
                log.info(
                    "ftp: %s %r: %s (%s)",
                    self.remote_ip,
                    outcome.name,
                    outcome.result,
                    outcome.reason,
                )
                self.bridge.call(self.resolver.record, outcome, "ftp")
            self.last_refused = name
        else:
            self.last_refused = ""
        return outcome

    def respond(self, resp: str, *args: Any, **kwargs: Any) -> None:
        # pyftpdlib parses the commands and answers what it cannot parse with
        # 500 (unknown command, line too long) or 501 (bad arguments): those
        # are the FTP service's drops of bad input.
        if resp[:4] in ("500 ", "501 "):
            metrics.BAD_INPUT.labels("ftp").inc()
        super().respond(resp, *args, **kwargs)

    def ftp_SIZE(self, path: str) -> None:
        # Clients (curl) ask SIZE before RETR: answer it the way RETR would be,
        # so a per-MAC name in another spelling or a rendered file has a size,
        # and a bound file has none for a stranger.
        if self._current_type == "a":
            self.respond("550 SIZE not allowed in ASCII mode.")
            return
        outcome = self.resolve(path)
        if isinstance(outcome, Refusal):
            self.respond(f"550 {_MESSAGES[outcome.result]}.")
            return
        self.respond(f"213 {outcome.size}")

    def on_file_sent(self, file: str) -> None:
        outcome = self.outcomes.pop(file, None)
        if outcome is not None:
            self.bridge.call(self.resolver.record, outcome, "ftp", sent=outcome.size)

    def on_incomplete_file_sent(self, file: str) -> None:
        outcome = self.outcomes.pop(file, None)
        if outcome is not None:
            self.bridge.call(self.resolver.record, outcome, "ftp", result="aborted")


class FtpService:
    name = "ftp"

    def __init__(self, ctx: Context, host: str = "0.0.0.0") -> None:
        self.ctx = ctx
        self.host = host
        self.resolver = ctx.files
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()

    async def start(self) -> None:
        config = self.ctx.config.ftp
        root = self.ctx.config.provisioning.root
        if not root.is_dir():
            raise OSError(f"ftp: provisioning.root {root} is not a directory")
        authorizer = DummyAuthorizer()
        if config.username:
            authorizer.add_user(config.username, config.password, str(root), perm=PERMISSIONS)
        else:
            authorizer.add_anonymous(str(root), perm=PERMISSIONS)
        first, last = config.passive_ports
        handler = type(
            "NetbootFtpHandler",
            (ResolvingHandler,),
            {
                "authorizer": authorizer,
                "resolver": self.resolver,
                "bridge": _LoopBridge(asyncio.get_running_loop()),
                "passive_ports": list(range(first, last + 1)),
            },
        )
        logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
        try:
            self.server = FTPServer((self.host, config.port), handler, ioloop=IOLoop())
        except OSError as exc:
            raise OSError(
                exc.errno, f"ftp: cannot bind TCP {self.host}:{config.port}: {exc.strerror}"
            ) from None
        self.thread = threading.Thread(target=self._run, name="ftp", daemon=True)
        self.thread.start()
        log.info("ftp: serving %s on TCP port %d (read-only)", root, config.port)

    def _run(self) -> None:
        ioloop = self.server.ioloop
        while not self.stopping.is_set():
            ioloop.loop(0.2, blocking=False)
        self.server.close_all()

    async def serve(self) -> None:
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            await asyncio.to_thread(self.thread.join, 5.0)


def create(ctx: Context) -> FtpService:
    return FtpService(ctx)
