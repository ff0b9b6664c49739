"""What the status page shows beside the phones: the appliance's own state.

- health per service (`netboot.health`), the rogue-DHCP alarm, version, uptime;
- pool usage per DHCP scope, from the in-memory lease index;
- per phone (MAC): its data lease and, when a scope serves the voice VLAN,
  its voice-VLAN address, with their expiry;
- inventory phones that the registry has never seen.

Everything here reads the running process's own objects (the lease index, the
services) on the event loop, where they change: no I/O, `now` passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from netboot import __version__
from netboot.config import Config, DhcpScope
from netboot.health import NOT_RUNNING, health_of, status_text
from netboot.provisioning.inventory import Inventory
from netboot.state.leases import Lease

SERVICE_SECTIONS = ("dhcp", "pnp", "tftp", "http", "ftp", "lldp", "stun")


def _vlan_of(interface: str) -> int | None:
    _, dot, tail = interface.rpartition(".")
    return int(tail) if dot and tail.isdigit() else None


def voice_scopes(config: Config) -> list[DhcpScope]:
    """Scopes that serve the voice VLAN: the one LLDP advertises, or (without
    `lldp.voice_vlan`) any scope on a VLAN."""
    voice = config.lldp.voice_vlan if config.lldp.enabled else None
    out = []
    for scope in config.dhcp.scopes:
        vlan = scope.vlan if scope.vlan is not None else _vlan_of(scope.interface)
        if vlan is not None and (voice is None or vlan == voice):
            out.append(scope)
    return out


def services_health(ctx: Any) -> dict[str, dict[str, str]]:
    """Every known service: running / starting / not-running / disabled."""
    out: dict[str, dict[str, str]] = {}
    for name in SERVICE_SECTIONS:
        service = ctx.services.get(name)
        if service is not None:
            out[name] = health_of(service).as_dict()
        elif getattr(getattr(ctx.config, name), "enabled", False):
            out[name] = {"state": NOT_RUNNING, "detail": "not started", "alarm": ""}
        else:
            out[name] = {"state": "disabled", "detail": "", "alarm": ""}
    return out


def rogue_servers(ctx: Any) -> list[dict[str, object]]:
    """Other DHCP servers behind DHCP's alarm (server id, MAC, times, replies)."""
    read = getattr(ctx.services.get("dhcp"), "rogue_servers", None)
    return list(read()) if callable(read) else []


def pool_usage(config: Config, leases: Iterable[Lease], now: float) -> list[dict[str, Any]]:
    """Per scope: pool size, addresses bound, quarantined (declined), free."""
    scopes = [
        (s, int(s.pool_start), int(s.pool_end), {"bound": 0, "declined": 0})
        for s in config.dhcp.scopes
    ]
    for lease in leases:
        if not lease.active(now):
            continue
        for _scope, start, end, counts in scopes:
            if start <= lease.ip <= end:
                counts[lease.state] += 1
                break
    out = []
    for scope, start, end, counts in scopes:
        size = end - start + 1
        used = counts["bound"] + counts["declined"]
        out.append(
            {
                "interface": scope.interface,
                "subnet": str(scope.subnet),
                "pool": f"{scope.pool_start}-{scope.pool_end}",
                "size": size,
                "bound": counts["bound"],
                "declined": counts["declined"],
                "free": max(0, size - used),
                "percent": round(100.0 * used / size, 1) if size else 0.0,
            }
        )
    return out


def phone_leases(config: Config, leases: Iterable[Lease], now: float) -> dict[str, dict[str, Any]]:
    """MAC -> `lease_ip`, `lease_expires` (data) and `voice_ip`, `voice_expires`:
    each the MAC's latest bound, unexpired lease in that kind of scope."""
    # Integer masks, not IPv4Address objects: this runs on the event loop for
    # every poll of the page.
    voice = [(int(s.subnet.network_address), int(s.subnet.netmask)) for s in voice_scopes(config)]
    newest: dict[tuple[str, str], Lease] = {}
    for lease in leases:
        if lease.state != "bound" or lease.expires <= now:
            continue
        kind = "voice" if any(lease.ip & mask == net for net, mask in voice) else "lease"
        held = newest.get((lease.mac, kind))
        if held is None or held.expires < lease.expires:
            newest[(lease.mac, kind)] = lease
    out: dict[str, dict[str, Any]] = {}
    for (mac, kind), lease in newest.items():
        entry = out.setdefault(mac, {})
        ip = lease.ip
        entry[f"{kind}_ip"] = f"{ip >> 24}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"
        entry[f"{kind}_expires"] = lease.expires
    return out


def unseen_inventory(inventory: Inventory, seen: set[str]) -> list[dict[str, str]]:
    """Inventory phones that no service has heard from (no password here)."""
    return [
        {
            "mac": p.mac,
            "model": p.model.name,
            "extension": p.extension,
            "display_name": p.display_name,
        }
        for p in inventory.phones
        if p.mac not in seen
    ]


def appliance_status(ctx: Any, now: float) -> dict[str, Any]:
    """The appliance's own state, as `/api/status` returns it."""
    services = list(ctx.services.values())
    health = services_health(ctx)
    # What the operator must see: a service that should run and does not, and alarms.
    alarms = [
        f"{name} NOT running: {h['detail'] or 'not started'}"
        for name, h in health.items()
        if h["state"] == NOT_RUNNING
    ]
    alarms += [f"{name}: {h['alarm']}" for name, h in health.items() if h["alarm"]]
    return {
        "appliance": ctx.config.appliance.name,
        "version": __version__,
        "started": ctx.started,
        "uptime": max(0.0, now - ctx.started),
        "status": status_text(services),
        "services": health,
        "alarms": alarms,
        "rogue_dhcp_servers": rogue_servers(ctx),
        "pools": pool_usage(ctx.config, ctx.leases, now) if ctx.config.dhcp.enabled else [],
    }


def uptime_text(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {s} s" if minutes else f"{s} s"
