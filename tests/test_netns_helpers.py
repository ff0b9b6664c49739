"""tests/netns.py's config builder: what it writes is a config netboot reads
the way the tests and benches mean it (no namespace needed)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from netboot.config import parse_config
from tests.netns import server_config


def test_services_not_named_are_off() -> None:
    text = server_config("[stun]\nenabled = true\naddresses = ['192.0.2.1']", state="/x/state")
    config = parse_config(tomllib.loads(text))
    assert config.stun.enabled
    assert not any(
        (config.dhcp.enabled, config.pnp.enabled, config.tftp.enabled, config.http.enabled)
    )
    assert not config.lldp.enabled and not config.ftp.enabled
    assert config.appliance.state_dir == Path("/x/state")
    assert config.appliance.interface == "eth0"


def test_a_named_service_keeps_its_defaults_and_the_head_its_keys() -> None:
    body = '[dhcp]\nsubnet = "192.0.2.0/24"\npool = "192.0.2.100-192.0.2.110"\n[tftp]\n'
    text = server_config(
        body,
        state="/x/state",
        address="192.0.2.1",
        interface="eth0.100",
        url="tftp://192.0.2.1/$mac.cfg",
        root="/x/files",
        name='lab "one"',
        state_reserve_kib=1024,
    )
    config = parse_config(tomllib.loads(text))
    assert config.dhcp.enabled and config.tftp.enabled
    assert config.tftp.port == 69  # the default: an empty table names the service only
    assert not config.pnp.enabled and not config.http.enabled and not config.lldp.enabled
    assert config.appliance.name == 'lab "one"'
    assert config.appliance.interface == "eth0.100"
    assert config.appliance.state_reserve_kib == 1024
    assert config.provisioning.url == "tftp://192.0.2.1/$mac.cfg"
    assert str(config.provisioning.root) == "/x/files"
