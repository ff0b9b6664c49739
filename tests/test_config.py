from __future__ import annotations

import tomllib
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from netboot.config import ConfigError, load_config, parse_config, site_warnings

REPO = Path(__file__).resolve().parent.parent

BASE = """
[appliance]
interface = "eth0"
address = "192.168.10.2"
state_dir = "/tmp/x"
[provisioning]
url = "http://192.168.10.2/$mac.cfg"
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.199"
"""


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_config(tomllib.loads(text))


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value.problems


def test_example_config_is_valid() -> None:
    config = load_config(REPO / "config.toml")
    assert config.appliance.interface == "eth0"
    scope = config.dhcp.scopes[0]
    assert scope.interface == "eth0"
    assert scope.address == IPv4Address("192.168.10.2")
    assert config.dhcp.classes[0].mac_prefix == bytes.fromhex("00304f")
    assert config.dhcp.classes[0].url_options == (66, 43, 200)
    assert config.dhcp.hosts[0].mac == "00:30:4f:11:3a:f8"


def test_minimal_config_defaults() -> None:
    config = parse(BASE)
    assert config.dhcp.url_options == (66, 160)
    assert config.dhcp.scopes[0].lease_time == 3600
    assert config.interfaces == ("eth0",)


def test_unknown_key_is_named() -> None:
    # issue 13: a near miss names the key that was meant, and nothing else.
    assert problems(BASE + "lease_tme = 5\n") == [
        "dhcp.lease_tme: unknown key (did you mean lease_time?)"
    ]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        BASE.replace('"192.168.10.100-192.168.10.199"', '"192.168.11.1-192.168.11.5"')
        + "url_options = [66, 12]\n[lldp]\nvoice_vlan = 5000\n[bogus]\n"
    )
    assert any(p.startswith("dhcp.pool:") and "not inside subnet" in p for p in found)
    assert any(p.startswith("dhcp.url_options:") and "12" in p for p in found)
    assert any(p.startswith("lldp.voice_vlan:") for p in found)
    assert "bogus: unknown key" in found


def test_missing_interface_is_required() -> None:
    text = BASE.replace('interface = "eth0"\n', "")
    assert "appliance.interface: is required" in problems(text)


def test_wrong_types_named() -> None:
    found = problems(BASE + 'lease_time = "long"\nauthoritative = 1\n')
    assert any(p.startswith("dhcp.lease_time: must be an integer") for p in found)
    assert any(p.startswith("dhcp.authoritative: must be true or false") for p in found)


def test_duplicate_reservation() -> None:
    text = BASE + (
        '[[dhcp.host]]\nmac = "00:30:4f:00:00:01"\nip = "192.168.10.20"\n'
        '[[dhcp.host]]\nmac = "00-30-4F-00-00-01"\nip = "192.168.10.21"\n'
    )
    assert any("reserved twice" in p for p in problems(text))


def test_scopes_and_vlan_warning() -> None:
    text = BASE + (
        '[[dhcp.scope]]\ninterface = "eth0.100"\nsubnet = "192.168.100.0/24"\n'
        'pool = "192.168.100.10-192.168.100.20"\naddress = "192.168.100.2"\n'
        "[lldp]\nvoice_vlan = 100\n"
    )
    config = parse(text)
    assert config.interfaces == ("eth0", "eth0.100")
    assert site_warnings(config) == []
    other = parse(BASE + "[lldp]\nvoice_vlan = 200\n")
    assert any("VLAN 200" in w for w in site_warnings(other))


def test_overlapping_scopes_rejected() -> None:
    text = BASE + (
        '[[dhcp.scope]]\ninterface = "eth1"\nsubnet = "192.168.10.0/25"\npool = "192.168.10.10-192.168.10.20"\n'
    )
    assert any("overlap" in p for p in problems(text))


def test_class_options_and_suboptions() -> None:
    config = parse(
        BASE
        + '[[dhcp.class]]\nname = "aastra"\nvendor = "Aastra"\noptions = { 42 = "192.168.10.1", 2 = 3600 }\n'
        + 'vendor_suboptions = { 2 = "http://x/" }\n'
    )
    cls = config.dhcp.classes[0]
    assert cls.options == {42: "192.168.10.1", 2: 3600}
    assert cls.vendor_suboptions == {2: "http://x/"}


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "cannot read" in info.value.problems[0]
    bad = tmp_path / "bad.toml"
    bad.write_text("[appliance\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "not valid TOML" in info.value.problems[0]


def test_budget_keys_defaults_and_values() -> None:
    """Issue 16's budgets: defaults that serve, every one settable, bounds checked."""
    config = parse(BASE)
    assert (config.tftp.max_sessions, config.tftp.max_sessions_per_source) == (1024, 8)
    assert config.tftp.max_client_timeout == 5
    http = config.http
    assert (http.idle_timeout, http.body_timeout) == (15.0, 10.0)
    assert (http.max_connections, http.max_connections_per_address) == (1024, 32)
    assert not http.action_from_lease_only
    assert config.pnp.max_tracked == 4096
    assert config.lldp.max_neighbors == 1024
    assert not config.dhcp.require_chaddr_match and config.dhcp.max_clients_per_source == 0
    text = BASE + (
        "require_chaddr_match = true\nmax_clients_per_source = 4\n"
        "[tftp]\nmax_sessions = 64\nmax_sessions_per_source = 2\nmax_client_timeout = 3\n"
        "[http]\nidle_timeout = 5\nbody_timeout = 2.5\nmax_connections = 100\n"
        "max_connections_per_address = 4\naction_from_lease_only = true\n"
        "[pnp]\nmax_tracked = 128\n[lldp]\nmax_neighbors = 32\n"
    )
    config = parse(text)
    assert config.dhcp.require_chaddr_match and config.dhcp.max_clients_per_source == 4
    assert (config.tftp.max_sessions, config.tftp.max_sessions_per_source) == (64, 2)
    assert config.tftp.max_client_timeout == 3
    assert config.http.idle_timeout == 5.0 and config.http.body_timeout == 2.5
    assert config.http.max_connections == 100 and config.http.max_connections_per_address == 4
    assert config.http.action_from_lease_only
    assert config.pnp.max_tracked == 128 and config.lldp.max_neighbors == 32


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("tftp", "max_sessions", "0"),
        ("tftp", "max_client_timeout", "256"),
        ("tftp", "retries", "21"),
        ("http", "idle_timeout", "0.5"),
        ("http", "max_connections_per_address", "0"),
        ("pnp", "max_tracked", "8"),
        ("lldp", "max_neighbors", "15"),
    ],
)
def test_budget_keys_out_of_range(section: str, key: str, value: str) -> None:
    found = problems(BASE + f"[{section}]\n{key} = {value}\n")
    assert any(p.startswith(f"{section}.{key}: must be") for p in found), found
