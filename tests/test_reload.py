"""Reload decisions without I/O: what a changed key restarts or reconfigures
(`netboot.reload.plan`), and the engines' `reconfigure` on a stepped clock."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from netboot.config import Config, DhcpMode, parse_config
from netboot.dhcp.engine import DhcpEngine
from netboot.lldp.advertiser import Advertiser, lldp_ttl
from netboot.reload import changed_keys, plan
from netboot.state.leases import LeaseStore
from tests.test_dhcp_engine import DISCOVER, REQUEST, SERVER, dora, msg, reply_of

BASE = """
[appliance]
interface = "eth0"
address = "192.168.10.2"
state_dir = "/tmp/netboot-a"
[provisioning]
url = "http://192.168.10.2/$mac.cfg"
root = "/srv/netboot"
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.199"
ping_check = false
[[dhcp.class]]
name = "planet"
vendor = "PLANET"
[pnp]
enabled = true
[tftp]
port = 69
[http]
port = 80
[ftp]
enabled = true
[lldp]
enabled = true
voice_vlan = 100
[stun]
enabled = false
"""

ALL = ("dhcp", "tftp", "http", "ftp", "lldp", "pnp")


def config(text: str = BASE) -> Config:
    return parse_config(tomllib.loads(text))


def changed(old: str, new: str, count: int = 1) -> Config:
    assert BASE.count(old) >= count, old
    return config(BASE.replace(old, new, count))


# (what changes, restarted, started, stopped)
CASES = [
    pytest.param(('vendor = "PLANET"', 'vendor = "FANVIL"'), (), (), (), id="dhcp-class"),
    pytest.param(("199", "150"), (), (), (), id="dhcp-pool"),
    pytest.param(('"/srv/netboot"', '"/srv/other"'), ("ftp",), (), (), id="root"),
    pytest.param(("voice_vlan = 100", "voice_vlan = 200"), (), (), (), id="lldp-policy"),
    pytest.param(("[pnp]\nenabled = true", '[pnp]\npolicy = "known"'), (), (), (), id="pnp"),
    pytest.param(("port = 69", "port = 6969"), ("tftp",), (), (), id="tftp-port"),
    pytest.param(("port = 80", "port = 8080"), ("http",), (), (), id="http-port"),
    pytest.param(
        ('address = "192.168.10.2"', 'address = "192.168.10.3"'),
        ("dhcp", "http", "lldp", "pnp"),
        (),
        (),
        id="appliance-address",
    ),
    pytest.param(
        ("[stun]\nenabled = false", '[stun]\nenabled = true\naddresses = ["192.168.10.2"]'),
        (),
        ("stun",),
        (),
        id="stun-enabled",
    ),
    pytest.param(("[ftp]\nenabled = true", "[ftp]\nenabled = false"), (), (), ("ftp",), id="off"),
]


@pytest.mark.parametrize(("change", "restart", "start", "stop"), CASES)
def test_plan(
    change: tuple[str, str],
    restart: tuple[str, ...],
    start: tuple[str, ...],
    stop: tuple[str, ...],
) -> None:
    old, new = config(), changed(*change)
    decided = plan(old, new, ALL)
    assert decided.refused is None
    assert decided.changed
    assert (decided.restart, decided.start, decided.stop) == (restart, start, stop)
    # Every running service not restarted or stopped is reconfigured in place.
    assert set(decided.update) == set(ALL) - set(restart) - set(stop)


def test_nothing_changed_restarts_nothing_and_rereads_in_place() -> None:
    decided = plan(config(), config(), ALL)
    assert decided.changed == ()
    assert (decided.restart, decided.start, decided.stop) == ((), (), ())
    assert set(decided.update) == set(ALL)
    assert decided.describe()[0].startswith("the config is unchanged")


def test_state_dir_change_is_refused() -> None:
    decided = plan(config(), changed("/tmp/netboot-a", "/tmp/netboot-b"), ALL)
    assert decided.refused is not None
    assert "appliance.state_dir changed" in decided.refused
    assert "restart netboot" in decided.refused


def test_dhcp_mode_change_restarts_dhcp_as_the_other_service() -> None:
    kea = replace(config(), dhcp=replace(config().dhcp, mode=DhcpMode.KEA))
    decided = plan(config(), kea, ALL)
    assert decided.refused is None
    assert decided.restart == ("dhcp",) and "dhcp.mode" in decided.changed


def test_changed_keys_are_dotted() -> None:
    new = changed('vendor = "PLANET"', 'vendor = "FANVIL"')
    assert changed_keys(config(), new) == ["dhcp.classes"]
    new = config(BASE.replace("voice_vlan = 100", "voice_vlan = 200").replace("69", "70"))
    assert changed_keys(config(), new) == ["tftp.port", "lldp.voice_vlan"]


def test_describe_says_what_restarts_and_why() -> None:
    decided = plan(config(), changed("port = 69", "port = 6969"), ALL)
    lines = decided.describe()
    assert lines[0] == "changed: tftp.port"
    assert "restarting tftp alone (tftp.port changed)" in lines


def test_dhcp_engine_reconfigure_keeps_leases_offers_and_cursor(tmp_path: Path) -> None:
    old = config(BASE.replace("/tmp/netboot-a", str(tmp_path)))
    leases = LeaseStore(tmp_path)
    try:
        engine = DhcpEngine(
            old.dhcp, old.provisioning.url, leases, {"eth0": int(IPv4Address(SERVER))}
        )
        now = 1000.0
        bound = dora(engine, "00:30:4f:00:00:01", now)
        offer = engine.handle(msg(DISCOVER, "00:30:4f:00:00:02"), "eth0", now)
        offered = str(IPv4Address(reply_of(offer).message.yiaddr))
        new = config(
            BASE.replace('vendor = "PLANET"', 'vendor = "PLANET"\noptions = { 224 = "two" }')
        )
        engine.reconfigure(new.dhcp, "http://192.168.10.2/new/$mac.cfg")
        # The bound lease renews at its address; the offer in flight is honoured.
        assert dora(engine, "00:30:4f:00:00:01", now + 1) == bound
        ack = engine.handle(
            msg(REQUEST, "00:30:4f:00:00:02", requested=offered, server=SERVER), "eth0", now + 1
        )
        reply = reply_of(ack).message
        assert str(IPv4Address(reply.yiaddr)) == offered
        # The new class option and URL are in the reply.
        planet = msg(
            REQUEST, "00:30:4f:00:00:02", requested=offered, server=SERVER, vendor=b"PLANET"
        )
        options = reply_of(engine.handle(planet, "eth0", now + 2)).message.options
        assert options[224] == b"two"
        assert options[66] == b"http://192.168.10.2/new/$mac.cfg"
        # A third client gets an address nobody holds or was offered.
        third = dora(engine, "00:30:4f:00:00:03", now + 3)
        assert third not in (bound, offered)
    finally:
        leases.close()


def test_advertiser_reconfigure_sends_at_once_then_on_the_new_interval() -> None:
    old = config()
    advertiser = Advertiser(old.lldp, ("eth0",), 0.0)
    assert {t.protocol for t in advertiser.due(0.0)} == {"lldp", "cdp"}
    assert advertiser.due(1.0) == []  # the next is 30 s away
    new = config(BASE.replace("voice_vlan = 100", "voice_vlan = 200\ninterval = 10"))
    advertiser.reconfigure(new.lldp, 5.0)
    sent = advertiser.due(5.0)
    assert {t.protocol for t in sent} == {"lldp", "cdp"}
    assert [t.ttl for t in sent if t.protocol == "lldp"] == [lldp_ttl(new.lldp)]
    assert advertiser.due(14.0) == []
    assert {t.protocol for t in advertiser.due(15.0)} == {"lldp", "cdp"}
