"""What a reload (SIGHUP) changes: old config + new config -> a plan. No I/O.

A service is restarted alone only when a key that its sockets depend on
changed (interface, addresses, ports, the TLS files, enabled); everything else
(DHCP classes, options, pools and reservations, PnP rules and policy,
provisioning root and URL, phones and inventory, LLDP policy, rate limits) is
applied in place by the running service's `reconfigure()`, so its sockets, the
DHCP leases and the transfers in flight stay as they are.

With no key changed, a reload still hands every service the config again: the
inventory and the templates are read afresh (an operator's `systemctl reload`
after editing them must take effect).

`appliance.state_dir` holds the open lease store and registry: a reload cannot
move them, so a changed state_dir refuses the reload (restart netboot instead).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netboot.config import Config

# Service name -> what its sockets are made from. Equal before and after: the
# service stays up and is reconfigured in place.
SOCKET_KEYS: dict[str, Callable[[Config], Any]] = {
    # dhcp.mode: netboot's DHCP server or the Kea lease reader (netboot/kea), another service.
    "dhcp": lambda c: (
        c.dhcp.mode,
        tuple((s.interface, s.address, s.subnet) for s in c.dhcp.scopes),
    ),
    "tftp": lambda c: c.tftp.port,
    "http": lambda c: (
        c.http.port,
        c.http.https_port,
        c.http.tls_cert,
        c.http.tls_key,
        c.appliance.name,  # the certificate generated for it, the status page title
        c.appliance.address,
    ),
    # pyftpdlib fixes the served directory and the login when it starts.
    "ftp": lambda c: (c.ftp, c.provisioning.root),
    "lldp": lambda c: (
        tuple((i, c.server_address(i)) for i in c.interfaces),
        c.lldp.cdp,
    ),
    "stun": lambda c: (c.stun.addresses, c.stun.ports),
    "pnp": lambda c: (
        c.pnp.port,
        tuple((i, c.server_address(i)) for i in c.interfaces),
    ),
}

# Why a key is a socket key, as the log says it.
SOCKET_WORDS: dict[str, str] = {
    "dhcp": "its interfaces, addresses or subnets",
    "tftp": "tftp.port",
    "http": "its ports, TLS files or the appliance's name or address",
    "ftp": "its port, login, passive ports or provisioning.root",
    "lldp": "its interfaces or addresses, or lldp.cdp",
    "stun": "stun.addresses or stun.ports",
    "pnp": "pnp.port or its interfaces or addresses",
}


@dataclass(frozen=True)
class Plan:
    changed: tuple[str, ...] = ()  # dotted keys whose value changed
    start: tuple[str, ...] = ()  # enabled now
    stop: tuple[str, ...] = ()  # disabled now
    restart: tuple[str, ...] = ()  # socket keys changed
    update: tuple[str, ...] = ()  # running on, reconfigured in place
    refused: str | None = None  # the reload cannot be applied: why

    def describe(self) -> list[str]:
        """The log lines that say what the reload does."""
        if self.refused:
            return [self.refused]
        if self.changed:
            lines = [f"changed: {', '.join(self.changed)}"]
        else:
            lines = ["the config is unchanged: the inventory and templates are read again"]
        for name in self.restart:
            lines.append(f"restarting {name} alone ({SOCKET_WORDS[name]} changed)")
        if self.start:
            lines.append(f"starting {', '.join(self.start)} (enabled)")
        if self.stop:
            lines.append(f"stopping {', '.join(self.stop)} (disabled)")
        if self.update:
            lines.append(f"applying in place, sockets and leases kept: {', '.join(self.update)}")
        return lines


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the leaves that differ between two config dataclasses."""
    if dataclasses.is_dataclass(old) and type(old) is type(new):
        out: list[str] = []
        for f in dataclasses.fields(old):
            if f.name == "source":
                continue
            name = f"{prefix}.{f.name}" if prefix else f.name
            out += changed_keys(getattr(old, f.name), getattr(new, f.name), name)
        return out
    return [] if old == new else [prefix]


def plan(old: Config, new: Config, running: tuple[str, ...]) -> Plan:
    """What to do with each service; `running`: the services running now."""
    changed = tuple(changed_keys(old, new))
    if old.appliance.state_dir != new.appliance.state_dir:
        return Plan(
            changed,
            refused=(
                f"appliance.state_dir changed ({old.appliance.state_dir} -> "
                f"{new.appliance.state_dir}): the leases and the registry stay where they "
                "are open; restart netboot to move them (systemctl restart netboot)"
            ),
        )
    start, stop, restart, update = [], [], [], []
    for name, socket_keys in SOCKET_KEYS.items():
        wanted = bool(getattr(new, name).enabled)
        if name not in running:
            if wanted:
                start.append(name)
            continue
        if not wanted:
            stop.append(name)
        elif socket_keys(old) != socket_keys(new):
            restart.append(name)
        else:
            update.append(name)  # a reload re-reads the inventory even when nothing changed
    return Plan(changed, tuple(start), tuple(stop), tuple(restart), tuple(update))
