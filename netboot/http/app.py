"""The HTTP(S) side of the appliance: config and firmware files, and
the other routes of the same app (Action URL, status page, /metrics).

Files: `GET`/`HEAD /<name>` goes through the shared `FileResolver` (common /
per-MAC / custom / $input names, MAC binding, rendered files). Responses carry
Content-Length, ETag and Last-Modified; conditional GET follows RFC 9110 §13
(If-None-Match wins over If-Modified-Since; 304 without a body), and a single
byte range (RFC 9110 §14: `bytes=a-b`, `a-`, `-n`, honouring If-Range) gets a
206 or a 416; several ranges get the whole file (allowed by §14.2). Optional
auth (Basic + Digest, `auth.py`) guards every file. HTTPS serves the same app on
`https_port` with the certificate from `tls.py`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import mimetypes
import os
import socket
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web, web_server
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from netboot import metrics
from netboot.config import Config
from netboot.fdlimit import raise_descriptor_limit
from netboot.http.accept import Acceptor, listen
from netboot.http.auth import Authenticator
from netboot.http.limits import Admission, ConnectionBudget
from netboot.provisioning.files import FileResolver, Refusal, Resolved
from netboot.ratelog import RateLimitedLog
from netboot.statedisk import HEALTH
from netboot.supervisor import Context

log = logging.getLogger("netboot.http")

CONTEXT = web.AppKey("netboot_context", Context)
RESOLVER = web.AppKey("netboot_resolver", FileResolver)
AUTH = web.AppKey("netboot_auth", Authenticator)
BUDGET = web.AppKey("netboot_budget", ConnectionBudget)
ACCEPTORS = web.AppKey("netboot_acceptors", list[Acceptor])  # the listening sockets

SHUTDOWN_GRACE = 5.0  # seconds in-flight downloads get at stop before they are cut

CHUNK = 256 * 1024
_STATUS_FOR = {"not-found": 404, "forbidden": 403, "refused-name": 400, "unreadable": 500}
_TEXT_TYPES = (".cfg", ".conf", ".ini", ".txt", ".boot", ".htm", ".cnf")


def build_app(ctx: Context, resolver: FileResolver | None = None) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=[_budget_middleware])
    app[CONTEXT] = ctx
    app[RESOLVER] = resolver or ctx.files
    http = ctx.config.http
    app[BUDGET] = ConnectionBudget(http.max_connections, http.max_connections_per_address)
    app[ACCEPTORS] = []
    app[AUTH] = Authenticator(http.username, http.password, realm=ctx.config.appliance.name)
    # The other routes go before the catch-all file route, so their paths win.
    # (Imported here: they use require_auth from this module.)
    from netboot.http import action, status

    action.add_routes(app, ctx)  # Action URL receiver
    status.add_routes(app, ctx)  # status page, /api/status and /metrics
    app.router.add_get("/{name:.*}", serve_file)
    return app


@web.middleware
async def _budget_middleware(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    """Marks the connection busy while its request is served (an idle one may
    be closed to make room), and reads a request body within `body_timeout`."""
    budget = request.app[BUDGET]
    key = request.protocol
    loop = asyncio.get_running_loop()
    budget.busy(key)
    try:
        if request.body_exists:
            try:
                await asyncio.wait_for(
                    request.read(), request.app[CONTEXT].config.http.body_timeout
                )
            except TimeoutError:
                metrics.LIMITED.labels("http", "body-timeout").inc()
                response = web.Response(status=408, text="408: request body too slow\n")
                response.force_close()
                return response
        response = await handler(request)
        assert isinstance(response, web.StreamResponse)
        return response
    finally:
        now = loop.time()
        budget.idle(key, now)
        # A keep-alive connection may make room for a waiting one after the
        # grace: a listening socket paused at the cap looks again then.
        for acceptor in request.app[ACCEPTORS]:
            acceptor.wake_at(now + budget.grace)


class GuardedServer(web_server.Server):
    """aiohttp's connection manager with the connection budget (`limits.py`):
    its listening sockets (`accept.Acceptor`) accept a connection only when the
    budget has room; one over the per-address cap is closed at once."""

    def __init__(
        self,
        made: web_server.Server,
        budget: ConnectionBudget,
        acceptors: list[Acceptor],
        linger: float = 15.0,
    ) -> None:
        super().__init__(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            **made._kwargs,
        )
        self.budget = budget
        self.linger = linger
        self.limits = RateLimitedLog(log)
        self.acceptors = acceptors
        self.attaching: set[asyncio.Task[None]] = set()

    def make_room(self, now: float) -> Admission:
        admission = self.budget.admit(now)
        if admission.evict is not None:
            metrics.LIMITED.labels("http", "connections-evicted").inc()
            self.limits.warning(
                "evicted",
                "http: connection budget reached: closing a keep-alive connection for a new one",
                now,
            )
            victim = self._connections.get(admission.evict)  # type: ignore[call-overload]
            if victim is not None:
                # Closed, not aborted: what its last response left in the
                # socket buffers still goes out; cut if not gone in `linger`.
                victim.close()
                asyncio.get_running_loop().call_later(self.linger, victim.abort)
        elif not admission.accept:
            metrics.LIMITED.labels("http", "accept-paused").inc()
            self.limits.log(
                logging.INFO,
                "queued",
                f"http: {len(self.budget)} connections (http.max_connections): new ones wait"
                " in the listen backlog",
                now,
            )
        return admission

    def take(
        self,
        conn: socket.socket,
        peer: Any,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout: float,
    ) -> None:
        """An accepted connection: tracked and served, or closed at once."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        address = str(peer[0]) if peer else "?"
        handler = self()
        verdict = self.budget.opened(handler, address, now)
        if not verdict.accept:
            metrics.LIMITED.labels("http", f"connections-{verdict.refused}").inc()
            self.limits.warning(
                f"refused-{verdict.refused}",
                f"http: closing a new connection from {address}: {verdict.refused}"
                f" connection budget reached ({self.budget.count(address)} from that address,"
                f" {len(self.budget)} in all)",
                now,
            )
            conn.close()
            return
        task = loop.create_task(self._attach(conn, handler, ssl_context, handshake_timeout))
        self.attaching.add(task)
        task.add_done_callback(self.attaching.discard)

    async def _attach(
        self,
        conn: socket.socket,
        handler: Any,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout: float,
    ) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: handler,
                conn,
                ssl=ssl_context,
                ssl_handshake_timeout=handshake_timeout if ssl_context else None,
            )
        except BaseException as exc:
            # A TLS handshake that failed or never came (within idle_timeout),
            # or the service stopping: the handler never saw the connection.
            conn.close()
            if handler not in self._connections:
                self._forget(handler)
            if not isinstance(exc, Exception):
                raise  # cancelled
            log.debug("http: connection not set up: %s", exc)

    def connection_lost(self, handler: Any, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self._forget(handler)

    async def shutdown(self, timeout: float | None = None) -> None:
        for task in list(self.attaching):  # TLS handshakes still under way
            task.cancel()
        await super().shutdown(timeout)

    def _forget(self, handler: Any) -> None:
        self.budget.closed(handler)
        for acceptor in self.acceptors:
            acceptor.resume()


class _Site(web.TCPSite):
    """TCPSite whose listening socket is accepted at the budget's pace
    (`accept.Acceptor`), with a backlog of `backlog` connections waiting, and
    whose TLS handshake must finish within `handshake_timeout` (asyncio's
    default is 60 s; the connection counts against the budget meanwhile)."""

    def __init__(self, *args: Any, handshake_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handshake_timeout = handshake_timeout

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        assert isinstance(server, GuardedServer)
        sock = listen(self._host or "0.0.0.0", self._port, self._backlog)
        acceptor = Acceptor(sock, server, self._ssl_context, self.handshake_timeout)
        server.acceptors.append(acceptor)
        acceptor.start()
        self._server = acceptor
        self._bound_port = sock.getsockname()[1]

    async def stop(self) -> None:
        server = self._runner.server
        if isinstance(server, GuardedServer) and self._server in server.acceptors:
            server.acceptors.remove(self._server)
        await super().stop()


class GuardedRunner(web.AppRunner):
    """AppRunner whose connections go through `GuardedServer`."""

    async def _make_server(self) -> web_server.Server:
        made = await super()._make_server()
        return GuardedServer(
            made,
            self.app[BUDGET],
            self.app[ACCEPTORS],
            linger=self.app[CONTEXT].config.http.idle_timeout,
        )


def require_auth(request: web.Request) -> web.Response | None:
    """None when the request may proceed, else the 401 to return (usable by route adders)."""
    auth = request.app[AUTH]
    if not auth.enabled:
        return None
    verdict = auth.check(request.headers.get("Authorization"), request.method, request.raw_path)
    if verdict == "ok":
        return None
    response = web.Response(status=401, text="401: authentication required\n")
    for challenge in auth.challenges(stale=verdict == "stale"):
        response.headers.add("WWW-Authenticate", challenge)
    return response


def content_type(name: str) -> str:
    lower = name.lower()
    if lower.endswith(_TEXT_TYPES):
        return "text/plain"
    guessed, _ = mimetypes.guess_type(lower)
    return guessed or "application/octet-stream"


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One `bytes=` range -> (start, end inclusive); None: serve the whole file
    (absent, malformed, several ranges); "unsatisfiable" for a 416."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash:
        return None
    if first == "":
        if not last.isdigit():
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored (RFC 9110 §14.1.1)
    if start >= size:
        return "unsatisfiable"
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §8.8.3.2) against a list of tags or `*`."""
    if header.strip() == "*":
        return True
    plain = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == plain for tag in header.split(","))


def _not_modified(request: web.Request, outcome: Resolved, etag: str) -> bool:
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        return _etag_matches(inm, etag)
    ims = request.headers.get("If-Modified-Since")
    if ims and outcome.path is not None:
        try:
            since = email.utils.parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError):
            return False
        return int(outcome.mtime) <= since
    return False


def _range_applies(request: web.Request, outcome: Resolved, etag: str) -> bool:
    if_range = request.headers.get("If-Range")
    if if_range is None:
        return True
    if if_range.startswith('"') or if_range.startswith("W/"):
        return if_range == etag  # strong comparison (RFC 9110 §13.1.5)
    try:
        return (
            outcome.path is not None
            and int(outcome.mtime) <= email.utils.parsedate_to_datetime(if_range).timestamp()
        )
    except (TypeError, ValueError):
        return False


async def serve_file(request: web.Request) -> web.StreamResponse:
    denied = require_auth(request)
    if denied is not None:
        return denied
    resolver = request.app[RESOLVER]
    protocol = "https" if request.secure else "http"
    agent = request.headers.get("User-Agent", "")
    outcome = resolver.resolve(request.match_info["name"], request.remote or "")
    if isinstance(outcome, Refusal):
        if request.method == "GET":
            resolver.record(outcome, protocol, user_agent=agent)
        status = _STATUS_FOR[outcome.result]
        return Refused(
            f"{outcome.result}: {outcome.reason}", status, f"{status}: {outcome.result}\n"
        )

    etag = outcome.etag()
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Content-Type": content_type(outcome.name)}
    if outcome.path is not None:
        headers["Last-Modified"] = email.utils.formatdate(outcome.mtime, usegmt=True)
    if outcome.info.kind in ("mac", "input"):
        headers["Cache-Control"] = "no-store"  # carries the phone's passwords
    if _not_modified(request, outcome, etag):
        if request.method == "GET":
            resolver.record(outcome, protocol, user_agent=agent)
        return web.Response(status=304, headers=headers)

    size = outcome.size
    start, length, status = 0, size, 200
    wanted = request.headers.get("Range")
    if wanted is not None and _range_applies(request, outcome, etag):
        chosen = parse_range(wanted, size)
        if chosen == "unsatisfiable":
            headers["Content-Range"] = f"bytes */{size}"
            return web.Response(status=416, headers=headers)
        if isinstance(chosen, tuple):
            start, length, status = chosen[0], chosen[1] - chosen[0] + 1, 206
            headers["Content-Range"] = f"bytes {chosen[0]}-{chosen[1]}/{size}"
    fd: int | None = None
    if outcome.path is not None and request.method == "GET":
        try:  # before the headers go out: an unreadable file is a 500, not a cut body
            fd = os.open(outcome.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("%s: cannot read %s: %s", protocol, outcome.name, exc.strerror)
            resolver.record(outcome, protocol, result="unreadable", user_agent=agent)
            return Refused(f"unreadable: {exc.strerror}", 500, "500: unreadable\n")
    progress = _Progress()
    try:
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = length
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        try:
            await _send_body(response, outcome, fd, start, length, progress)
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            resolver.record(
                outcome, protocol, sent=progress.sent, result="aborted", user_agent=agent
            )
            raise
    finally:
        if fd is not None:
            os.close(fd)
    resolver.record(outcome, protocol, sent=progress.sent, user_agent=agent)
    return response


class _Progress:
    """Bytes of the body handed to the connection so far (kept when it is cut)."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = 0


async def _send_body(
    response: web.StreamResponse,
    outcome: Resolved,
    fd: int | None,
    start: int,
    length: int,
    progress: _Progress,
) -> None:
    if outcome.data is not None:
        await response.write(outcome.data[start : start + length])
        progress.sent = length
        return
    assert fd is not None
    loop = asyncio.get_running_loop()
    while progress.sent < length:
        want = min(CHUNK, length - progress.sent)
        offset = start + progress.sent
        if length <= CHUNK:  # a config file: from the page cache, no thread hop
            chunk = os.pread(fd, want, offset)
        else:
            chunk = await loop.run_in_executor(None, os.pread, fd, want, offset)
        if not chunk:
            raise ConnectionError("file shrank while being sent")
        await response.write(chunk)
        progress.sent += len(chunk)


class Refused(web.Response):
    """An error answer that remembers why, for the log line (never sent: the
    reason may name another phone's lease)."""

    def __init__(self, why: str, status: int, text: str) -> None:
        super().__init__(status=status, text=text)
        self.why = why


class DebugAccessLogger(AbstractAccessLogger):
    """One line per request, at debug level only: with the level above debug,
    aiohttp asks `enabled` once per connection and never calls `log`."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.DEBUG):
            return
        why = getattr(response, "why", None)
        self.logger.debug(
            "%s %s %s %r %d %s bytes %.1f ms%s",
            "https" if request.secure else "http",
            request.remote,
            request.method,
            request.path_qs,
            response.status,
            response.body_length,
            time * 1000,
            f" ({why})" if why else "",
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)


class RequestErrorLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger aiohttp's connection handler reports to. A request it cannot
    parse (garbage, a TLS hello on the HTTP port, an oversized line) never
    reaches a handler: aiohttp answers 400 itself and logs it, with a
    traceback. That is bad input: one line at most every `every` seconds,
    counted in BAD_INPUT["http"]; anything else goes on to the log as is."""

    def __init__(self, logger: logging.Logger, every: float = 10.0) -> None:
        super().__init__(logger, {})
        self.limited = RateLimitedLog(logger, every)

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if not isinstance(exc, HttpProcessingError):
            super().log(level, msg, *args, **kwargs)
            return
        metrics.BAD_INPUT.labels("http").inc()
        peer = args[0] if args else "?"
        reason = (exc.message or type(exc).__name__).splitlines()[0][:120]
        self.limited.warning(
            "malformed",
            f"http: dropped a malformed request from {peer}: {reason}",
            asyncio.get_running_loop().time(),
        )


class HttpService:
    """HTTP on `http.port` and, when `https_port` is set, HTTPS with the same app."""

    name = "http"

    def __init__(self, ctx: Context, host: str = "0.0.0.0") -> None:
        self.ctx = ctx
        self.host = host
        self.runner: web.AppRunner | None = None
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        from netboot.http.tls import CertificateWriteError, server_context

        http = self.ctx.config.http
        raise_descriptor_limit(self.ctx.config)
        self.runner = GuardedRunner(
            build_app(self.ctx),
            handle_signals=False,
            access_log=log,
            access_log_class=DebugAccessLogger,
            logger=RequestErrorLogger(log),
            shutdown_timeout=SHUTDOWN_GRACE,
            # The whole request header must arrive within idle_timeout of the
            # connection opening or of the previous response (aiohttp's
            # keep-alive timer is not moved by bytes that trickle in).
            keepalive_timeout=http.idle_timeout,
            lingering_time=http.body_timeout,
        )
        await self.runner.setup()
        try:
            sites: list[tuple[str, int, Any]] = [("http", http.port, None)]
            if http.https_port:
                try:
                    sites.append(("https", http.https_port, server_context(self.ctx.config)))
                except CertificateWriteError as exc:
                    # state_dir full or read-only on first start: HTTP still serves.
                    message = f"https: not serving: {exc.strerror}; http still serves"
                    log.error("%s", message)
                    HEALTH.note("https", message)
                except (OSError, ValueError) as exc:
                    raise OSError(f"https: cannot set up the TLS certificate: {exc}") from None
            for label, port, ssl_context in sites:
                site = _Site(
                    self.runner,
                    self.host,
                    port,
                    ssl_context=ssl_context,
                    backlog=http.max_queued,
                    handshake_timeout=http.idle_timeout,
                )
                try:
                    await site.start()
                except OSError as exc:
                    raise OSError(
                        exc.errno, f"{label}: cannot bind TCP {self.host}:{port}: {exc.strerror}"
                    ) from None
                self.ports[label] = port
        except BaseException:
            await self.runner.cleanup()  # the supervisor only stops services that started
            self.runner = None
            raise
        log.info(
            "http: serving %s on %s",
            self.ctx.config.provisioning.root,
            ", ".join(f"{k} port {v}" for k, v in self.ports.items()),
        )

    async def serve(self) -> None:
        await asyncio.Event().wait()

    def reconfigure(self, config: Config) -> None:
        """A reload: the login (files come from the shared resolver)."""
        if self.runner is not None:
            auth = self.runner.app[AUTH]
            auth.username, auth.password = config.http.username, config.http.password

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def create(ctx: Context) -> HttpService:
    return HttpService(ctx)
