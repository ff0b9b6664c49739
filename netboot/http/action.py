"""Action URL receiver (PLANET guide chapter 4).

Phones configured by netboot GET `/action/<event>?mac=$mac&ip=$ip&...` when
an event happens (setup completed, registration succeeded/failed, calls, DND,
forwarding, ...), with the `$variables` replaced by their own values. Each
request becomes one registry event (service "action", kind = the event slug);
`registration-succeeded` / `registration-failed` close the provisioning
timeline. Phones send no credentials here, so these routes skip the HTTP file
authentication; they answer at once with a short 200.

`parse_action` is the pure part (query -> report or a one-line error);
`add_routes` plugs the handler into the HTTP app (`app.build_app`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from ipaddress import IPv4Address

from aiohttp import web

from netboot import metrics
from netboot.events import ActionReceived
from netboot.provisioning.events import BY_SLUG, VARIABLES
from netboot.provisioning.files import parse_user_agent
from netboot.ratelog import RateLimitedLog
from netboot.supervisor import Context
from netboot.wire import normalize_mac

log = logging.getLogger("netboot.action")

MAX_VALUE = 256  # longer query values are cut (a SIP URI fits easily)
_NAMES = {name for name, _ in VARIABLES}
# Phones that follow the guide's spelling (`$Mac`, `$IP`) or other names.
_ALIASES = {"ip_address": "ip", "callid": "call_id", "user": "active_user", "host": "active_host"}


class ActionError(ValueError):
    """A request that cannot be recorded; the message is one line."""


def _value(raw: str) -> str | None:
    """A phone's value, or None when it was left as the `$variable` (not filled in)."""
    value = raw.strip()
    if not value or value.startswith("$"):
        return None
    return value[:MAX_VALUE]


def parse_action(
    event: str,
    query: Mapping[str, str],
    remote: str,
    user_agent: str = "",
    lease_mac: str | None = None,
) -> ActionReceived:
    """What an Action URL request says: the phone (MAC from the query, else the
    lease of the client address), the event and its variables."""
    if event not in BY_SLUG:
        raise ActionError(f"unknown event {event[:40]!r}")
    values: dict[str, str] = {}
    for key, raw in query.items():
        name = _ALIASES.get(key.lower(), key.lower())
        if name in _NAMES:
            value = _value(raw)
            if value is not None:
                values[name] = value
    mac: str | None = None
    if "mac" in values:
        try:
            mac = normalize_mac(values.pop("mac"))
        except ValueError:
            raise ActionError(f"bad MAC {query.get('mac', '')[:40]!r}") from None
    agent = parse_user_agent(user_agent) if user_agent else None
    if mac is None and agent is not None and agent.mac:
        mac = agent.mac
    if mac is None:
        mac = lease_mac
    if mac is None:
        raise ActionError(f"no MAC in the request and no lease for {remote}")
    phone_ip: str | None = None
    for candidate in (values.get("ip"), remote):
        try:
            phone_ip = str(IPv4Address(candidate or ""))
            break
        except ValueError:
            continue
    model, firmware, vendor = values.get("model"), values.get("firmware"), None
    if agent is not None and (agent.mac is None or agent.mac == mac):
        vendor = agent.vendor
        model = model or agent.model or None
        firmware = firmware or agent.firmware or None
    line = values.get("active_user") if event.startswith("registration-") else None
    return ActionReceived(
        mac=mac,
        event=event,
        client=remote,
        line=line,
        phone_ip=phone_ip,
        vendor=vendor,
        phone_model=model,
        phone_firmware=firmware,
        **values,
    )


def add_routes(app: web.Application, ctx: Context) -> None:
    """`GET /action/<event>`: record the event, answer 200 (no auth)."""
    limiter = RateLimitedLog(log)

    async def handle(request: web.Request) -> web.Response:
        remote = request.remote or ""
        try:
            lease_mac = ctx.leases.mac_for_ip(remote, time.time())
        except ValueError:
            lease_mac = None
        try:
            report = parse_action(
                request.match_info["event"],
                request.query,
                remote,
                request.headers.get("User-Agent", ""),
                lease_mac,
            )
        except ActionError as exc:
            metrics.BAD_INPUT.labels("action").inc()
            limiter.warning("bad", f"action: {remote}: {exc}", time.monotonic())
            return web.Response(status=400, text=f"400: {exc}\n")
        if ctx.config.http.action_from_lease_only and lease_mac != report.mac:
            # Hardening (off by default): only the address holding the MAC's
            # DHCP lease may report events for it; anyone can forge a query.
            metrics.LIMITED.labels("action", "not-lease-holder").inc()
            limiter.warning(
                "lease",
                f"action: {remote} holds no lease for {report.mac}: event refused",
                time.monotonic(),
            )
            return web.Response(status=403, text="403: not this phone's address\n")
        metrics.ACTION_EVENTS.labels(report.event).inc()
        ctx.registry.record(report)
        log.debug("action: %s %s", report.mac, report.describe())
        return web.Response(text="OK\n")

    app.router.add_get("/action/{event}", handle)
