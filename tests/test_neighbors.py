"""`netboot neighbors [--json]`: what the LLDP service recorded, in lldpcli's keys."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from netboot.cli import main
from netboot.events import LeaseAcked, NeighborGone
from netboot.lldp.codec import CdpNeighbor, Inventory, LldpNeighbor, MedCapabilities, NetworkPolicy
from netboot.lldp.engine import cdp_seen, lldp_seen
from netboot.registry import Registry

PHONE = "00:30:4f:11:3a:f8"
CISCO = "00:1b:54:aa:bb:cc"
GONE = "00:30:4f:11:3a:f9"


def write_config(tmp: Path) -> Path:
    path = tmp / "config.toml"
    path.write_text(
        f'[appliance]\ninterface = "eth0"\nstate_dir = "{tmp / "state"}"\n[dhcp]\nenabled = false\n'
    )
    return path


def phone(mac: str) -> LldpNeighbor:
    return LldpNeighbor(
        source=mac,
        chassis_subtype=4,
        chassis_id=mac,
        port_subtype=3,
        port_id=mac,
        ttl=120,
        system_name="VIP-2140PT",
        system_description="PLANET VIP-2140PT 2.0.3",
        management_addresses=("192.168.10.100",),
        med=MedCapabilities(0x33, 3),
        policies=(NetworkPolicy(1, 100, 5, 46),),
        inventory=Inventory(
            firmware_revision="2.0.3", manufacturer="PLANET", model="VIP-2140PT", serial_number="S1"
        ),
    )


def seed(tmp: Path, now: float) -> None:
    registry = Registry(tmp / "state")
    registry.record(lldp_seen("eth0", phone(PHONE)), now=now - 65)
    cisco = CdpNeighbor(
        source=CISCO,
        version=2,
        ttl=180,
        device_id="SEP001B54AABBCC",
        port_id="Port 1",
        platform="Cisco IP Phone 7945",
        software_version="SCCP45.9-4",
        addresses=("192.168.10.101",),
        voip_vlan_query=1,
    )
    registry.record(cdp_seen("eth0.100", cisco), now=now - 10)
    registry.record(lldp_seen("eth0", phone(GONE)), now=now - 30)
    registry.record(NeighborGone(mac=GONE, interface="eth0"), now=now - 20)
    registry.record(LeaseAcked(mac=PHONE, ip="192.168.10.100"), now=now)  # not LLDP
    registry.close()


def test_neighbors_json_uses_lldpcli_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(tmp_path, time.time())
    assert main(["neighbors", "--json", "-c", str(write_config(tmp_path))]) == 0
    out = json.loads(capsys.readouterr().out)
    interfaces = out["lldp"]["interface"]
    assert isinstance(interfaces, list) and len(interfaces) == 2  # the departed one is left out
    (cdp,), (lldp,) = (list(e.items()) for e in interfaces)  # ordered by MAC: 00:1b.. first
    assert cdp[0] == "eth0.100" and lldp[0] == "eth0"
    n = lldp[1]
    assert n["via"] == "LLDP"
    assert n["age"] in ("0 day, 00:01:05", "0 day, 00:01:06")
    chassis = n["chassis"]["VIP-2140PT"]
    assert chassis["id"] == {"type": "mac", "value": PHONE}
    assert chassis["descr"] == "PLANET VIP-2140PT 2.0.3"
    assert chassis["mgmt-ip"] == "192.168.10.100"
    assert n["port"] == {"id": {"type": "mac", "value": PHONE}, "ttl": "120"}
    med = n["lldp-med"]
    assert med["device-type"] == "Communication Device Endpoint (Class III)"
    assert med["policy"] == [
        {"apptype": "Voice", "defined": True, "vlan": {"vid": "100"}, "pcp": "5", "dscp": "46"}
    ]
    assert med["inventory"] == {
        "firmware": "2.0.3",
        "serial": "S1",
        "manufacturer": "PLANET",
        "model": "VIP-2140PT",
    }
    c = cdp[1]
    assert c["via"] == "CDPv2"
    assert c["chassis"]["SEP001B54AABBCC"]["mgmt-ip"] == "192.168.10.101"
    assert c["chassis"]["SEP001B54AABBCC"]["descr"] == "Cisco IP Phone 7945 SCCP45.9-4"
    assert c["port"]["id"] == {"type": "ifname", "value": "Port 1"}


def test_neighbors_table_and_one_or_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    # nothing recorded yet (no database at all): an empty lldp object, like lldpcli
    assert main(["neighbors", "--json", "-c", config]) == 0
    assert json.loads(capsys.readouterr().out) == {"lldp": {}}
    registry = Registry(tmp_path / "state")
    registry.record(lldp_seen("eth0", phone(PHONE)), now=time.time())
    registry.close()
    assert main(["neighbors", "--json", "-c", config]) == 0
    one = json.loads(capsys.readouterr().out)["lldp"]["interface"]
    assert list(one) == ["eth0"]  # one neighbour: an object, as lldpcli prints it
    assert main(["neighbors", "-c", config]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "INTERFACE", "VIA", "MAC", "NAME", "PORT", "MGMT", "IP", "MODEL", "VOICE", "VLAN", "AGE",
    ]  # fmt: skip
    row = lines[1].split()
    assert row[:6] == ["eth0", "LLDP", PHONE, "VIP-2140PT", PHONE, "192.168.10.100"]
    assert row[6:9] == ["PLANET", "VIP-2140PT", "100"]
    assert lines[-1] == "1 neighbor(s)"
