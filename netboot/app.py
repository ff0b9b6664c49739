"""The composition root: the one place the appliance's parts meet.

`run(config)` opens the state (the disk reserve, the lease store, the phone
registry), builds the `Context` the services share (with the one file
resolver TFTP, HTTP and FTP serve from, and its config renderer), and hands
both to the supervisor, which starts, reloads and stops the services it gets
from `SERVICES` (`Services.build`). Every dependency is passed here,
explicitly: no service looks another up, and no part is found by a string.

A new service: a config section with `enabled`, a service class (start,
serve, stop; `reconfigure(config)` for a reload in place) built from what it
needs, and one entry in `_BUILDERS` below (its place is its start order).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from netboot import supervisor
from netboot.config import Config, DhcpMode
from netboot.dhcp import transport as dhcp_transport
from netboot.pnp import transport as pnp_transport
from netboot.provisioning.files import FileResolver
from netboot.provisioning.render import ConfigRenderer
from netboot.registry import Registry
from netboot.state.leases import LeaseStore
from netboot.statedisk import DiskReserve
from netboot.stun import transport as stun_transport
from netboot.supervisor import Context, Service
from netboot.tftp import transport as tftp_transport

log = logging.getLogger("netboot")


# Three services import their module only when enabled: LLDP's codec pulls
# in scapy (~50 MB), HTTP aiohttp (~12 MB), FTP pyftpdlib (and its own loop).
def _http(ctx: Context) -> Service:
    from netboot.http.app import create

    return create(ctx)


def _ftp(ctx: Context) -> Service:
    from netboot.ftp.server import create

    return create(ctx)


def _lldp(ctx: Context) -> Service:
    from netboot.lldp.transport import create

    return create(ctx)


def _dhcp(ctx: Context) -> Service:
    """netboot's DHCP server, or with dhcp.mode = "kea" the reader of Kea's
    leases (netboot.kea.control), under the same name `dhcp`."""
    if ctx.config.dhcp.mode == DhcpMode.KEA:
        from netboot.kea.control import create

        return create(ctx)
    return dhcp_transport.create(ctx)


# Config section -> builder, in the order the services start (DHCP first: a
# phone's first packet; PnP last: it points phones at the file servers).
_BUILDERS: dict[str, Callable[[Context], Service]] = {
    "dhcp": _dhcp,
    "tftp": tftp_transport.create,
    "http": _http,
    "ftp": _ftp,
    "lldp": _lldp,
    "stun": stun_transport.create,
    "pnp": pnp_transport.create,
}
SERVICE_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def renderer(config: Config) -> ConfigRenderer | None:
    """The config renderer the file servers use (none without an inventory)."""
    if config.phones.inventory is None:
        return None
    return ConfigRenderer(config)


def file_resolver(config: Config, leases: LeaseStore, registry: Registry) -> FileResolver:
    """The one resolver that TFTP, HTTP and FTP share."""
    made = renderer(config)
    return FileResolver(
        config.provisioning.root,
        made,
        leases,
        config.http.bind_mac_files,
        registry=registry,
        input_lookup=made.lookup_input if made is not None else None,
    )


def build_context(
    config: Config, registry: Registry, leases: LeaseStore, *, started: float | None = None
) -> Context:
    """What the services share, built from `config` and the open stores."""
    ctx = Context(config, registry, leases, file_resolver(config, leases, registry))
    if started is not None:
        ctx.started = started
    return ctx


class Services:
    """The supervisor's `Builder`: which services there are, how each is built,
    and what a reload changes in the parts they share."""

    names = SERVICE_NAMES

    def build(self, name: str, ctx: Context) -> Service:
        return _BUILDERS[name](ctx)

    def reconfigure(self, ctx: Context) -> None:
        """The shared resolver takes ctx.config's root, MAC binding and a
        renderer for its phones, in place (TFTP, HTTP and FTP hold this one)."""
        files = ctx.files
        if isinstance(files.renderer, ConfigRenderer):
            files.renderer.close()
        made = renderer(ctx.config)
        files.reconfigure(
            ctx.config.provisioning.root,
            made,
            ctx.config.http.bind_mac_files,
            made.lookup_input if made is not None else None,
        )


SERVICES = Services()


async def run(config: Config) -> int:
    """Open the state, build the context, run the supervisor; the exit code."""
    state_dir = config.appliance.state_dir
    reserve = DiskReserve(state_dir, config.appliance.state_reserve_kib * 1024)
    with contextlib.suppress(OSError):
        state_dir.mkdir(parents=True, exist_ok=True)
    reserve.ensure()
    leases = LeaseStore(state_dir, reserve)
    registry = Registry(state_dir, config.registry, paused=lambda: reserve.released)
    recovered = registry.reconcile(leases)
    if recovered:
        log.info("registry: %d DHCP ack event(s) recovered from the lease store", recovered)
    ctx = build_context(config, registry, leases)
    return await supervisor.run(ctx, SERVICES, reserve)
