"""The composition root (netboot.app): which services there are, and the one
file resolver with its renderer that TFTP, HTTP and FTP share."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from netboot.app import SERVICE_NAMES, SERVICES, build_context
from netboot.config import Config, load_config, parse_config
from netboot.provisioning.files import Resolved
from netboot.provisioning.render import ConfigRenderer
from netboot.registry import Registry
from netboot.state.leases import LeaseStore
from netboot.supervisor import Context
from tests.test_render import write_config


def _context(config: Config) -> Context:
    state = config.appliance.state_dir
    state.mkdir(parents=True, exist_ok=True)
    return build_context(config, Registry(state), LeaseStore(state))


def test_every_config_section_with_enabled_is_a_service() -> None:
    sections = [f.name for f in dataclasses.fields(Config)]
    raw = {"appliance": {"interface": "lo", "address": "192.0.2.1"}, "dhcp": {"enabled": False}}
    config = parse_config(raw)
    with_enabled = {s for s in sections if hasattr(getattr(config, s), "enabled")}
    assert set(SERVICE_NAMES) == with_enabled
    assert SERVICES.names == SERVICE_NAMES
    assert SERVICE_NAMES[0] == "dhcp"  # a phone's first packet


def test_the_shared_resolver_renders_the_inventory(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    ctx = _context(config)
    try:
        renderer = ctx.files.renderer
        assert isinstance(renderer, ConfigRenderer)
        assert ctx.files.input_lookup == renderer.lookup_input
        assert ctx.files.leases is ctx.leases and ctx.files.registry is ctx.registry
        # the common file of a model is served to anyone, rendered
        common = ctx.files.resolve("f0VIP-2140PThw1.100.cfg", "192.0.2.10")
        assert isinstance(common, Resolved) and common.data is not None
        # $input 4711 is the Reception phone's MAC
        assert ctx.files.input_lookup("4711") == "00:30:4f:11:3a:f8"
    finally:
        ctx.registry.close()
        ctx.leases.close()


def test_a_reload_gives_the_same_resolver_the_new_config(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    ctx = _context(config)
    try:
        files = ctx.files
        old = files.renderer
        assert isinstance(old, ConfigRenderer)
        other_root = tmp_path / "other"
        ctx.config = dataclasses.replace(
            config,
            provisioning=dataclasses.replace(config.provisioning, root=other_root),
            phones=dataclasses.replace(config.phones, inventory=None),
        )
        SERVICES.reconfigure(ctx)
        assert ctx.files is files  # the services hold this one
        assert files.root == other_root
        assert files.renderer is None and files.input_lookup is None
        ctx.config = config
        SERVICES.reconfigure(ctx)
        assert isinstance(files.renderer, ConfigRenderer) and files.renderer is not old
    finally:
        ctx.registry.close()
        ctx.leases.close()


# pyftpdlib (2.x) still imports asyncore/asynchat, deprecated since Python 3.10.
@pytest.mark.filterwarnings(
    "ignore:The (asyncore|asynchat) module is deprecated:DeprecationWarning"
)
def test_each_builder_builds_the_service_of_its_name(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    ctx = _context(config)
    try:
        for name in SERVICE_NAMES:
            assert SERVICES.build(name, ctx).name == name
    finally:
        ctx.registry.close()
        ctx.leases.close()
