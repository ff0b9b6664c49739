"""`netboot neighbors`: the LLDP and CDP neighbours the appliance has seen.

The LLDP service records a neighbour (a phone, or anything announcing itself
as an LLDP-MED endpoint or a CDP phone) in the registry each time what it says
changes, and `neighbor-gone` when it leaves with a TTL-0 frame. This command
reads the latest record of each neighbour from the registry (so it works
while `netboot serve` runs, from another process) and prints a table, or with
`--json` the keys `lldpcli -f json show neighbors details` uses (lldpd's
client, as the LLDP namespace tests read it): `lldp.interface.<ifname>` with
`via`, `age`, `chassis.<name>.{id{type,value},descr,mgmt-ip}`,
`port.{id{type,value},ttl}`, `lldp-med.{device-type,policy[],inventory{}}`.
Like lldpcli, `interface` is one object for one neighbour and a list of
one-key objects for several.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-]?[0-9a-fA-F]{2}){5}$")

# registry detail key -> lldpcli's `lldp-med.inventory` key
_INVENTORY_KEYS = (
    ("hardware_revision", "hardware"),
    ("software_revision", "software"),
    ("firmware_revision", "firmware"),
    ("serial_number", "serial"),
    ("manufacturer", "manufacturer"),
    ("model", "model"),
    ("asset_id", "asset"),
)


# The registry's names (netboot.lldp.codec) -> how lldpd's client prints them
# (lldpctl's value maps; "Network Connectivity Device" as the namespace tests see it).
_DEVICE_TYPES = {
    "endpoint class I": "Generic Endpoint (Class I)",
    "endpoint class II": "Media Endpoint (Class II)",
    "endpoint class III": "Communication Device Endpoint (Class III)",
    "network connectivity device": "Network Connectivity Device",
}
_APP_TYPES = {
    "voice": "Voice",
    "voice signaling": "Voice Signaling",
    "guest voice": "Guest Voice",
    "guest voice signaling": "Guest Voice Signaling",
    "softphone voice": "Softphone Voice",
    "video conferencing": "Video Conferencing",
    "streaming video": "Streaming Video",
    "video signaling": "Video Signaling",
}


@dataclass(frozen=True)
class Neighbor:
    mac: str  # the frame's source MAC
    when: float  # the latest change
    detail: dict[str, Any]

    @property
    def interface(self) -> str:
        return str(self.detail.get("interface") or "?")

    @property
    def protocol(self) -> str:
        return str(self.detail.get("protocol") or "lldp")


def read_neighbors(conn: sqlite3.Connection) -> list[Neighbor]:
    """Each neighbour's latest LLDP/CDP record, unless it said goodbye."""
    try:
        rows = conn.execute(
            "SELECT mac, ts, kind, detail FROM events WHERE id IN "
            "(SELECT max(id) FROM events WHERE service = 'lldp' GROUP BY mac) ORDER BY mac"
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    return [
        Neighbor(str(mac), float(ts), json.loads(detail))
        for mac, ts, kind, detail in rows
        if kind == "neighbor"
    ]


def _id_type(value: str) -> str:
    if _MAC.match(value):
        return "mac"
    try:
        IPv4Address(value)
    except ValueError:
        return "local"
    return "ip"


def _age(seconds: float) -> str:
    """lldpd's age format: `0 day, 00:01:05`."""
    s = max(0, int(seconds))
    days, s = divmod(s, 86400)
    return f"{days} day, {s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _one_or_list(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def lldpcli_entry(n: Neighbor, now: float) -> dict[str, Any]:
    """One neighbour in lldpcli's JSON shape."""
    d = n.detail
    if n.protocol == "cdp":
        name = str(d.get("device_id") or n.mac)
        chassis: dict[str, Any] = {"id": {"type": "local", "value": name}}
        if d.get("platform") or d.get("software_version"):
            chassis["descr"] = " ".join(
                str(x) for x in (d.get("platform"), d.get("software_version")) if x
            )
        addresses = [a for a in d.get("addresses") or [] if a]
        if addresses:
            chassis["mgmt-ip"] = _one_or_list(addresses)
        port: dict[str, Any] = {"id": {"type": "ifname", "value": str(d.get("port_id") or "")}}
        entry: dict[str, Any] = {
            "via": "CDPv2",
            "age": _age(now - n.when),
            "chassis": {name: chassis},
            "port": port,
        }
        if d.get("voip_vlan_query") is not None:
            entry["cdp"] = {"voip-vlan-query": str(d["voip_vlan_query"])}
        return entry
    chassis_id = str(d.get("chassis_id") or n.mac)
    name = str(d.get("system_name") or chassis_id)
    chassis = {"id": {"type": _id_type(chassis_id), "value": chassis_id}}
    if d.get("system_description"):
        chassis["descr"] = str(d["system_description"])
    addresses = [a for a in d.get("management_addresses") or [] if a]
    if addresses:
        chassis["mgmt-ip"] = _one_or_list(addresses)
    port_id = str(d.get("port_id") or "")
    port = {"id": {"type": _id_type(port_id), "value": port_id}}
    if d.get("ttl") is not None:
        port["ttl"] = str(d["ttl"])
    entry = {"via": "LLDP", "age": _age(now - n.when), "chassis": {name: chassis}, "port": port}
    med: dict[str, Any] = {}
    if d.get("med_device_type") is not None:
        kind = str(d["med_device_type"])
        med["device-type"] = _DEVICE_TYPES.get(kind, kind)
    policies = []
    for p in d.get("policies") or []:
        app = str(p.get("application"))
        policy: dict[str, Any] = {"apptype": _APP_TYPES.get(app, app), "defined": True}
        if p.get("tagged"):
            policy["vlan"] = {"vid": str(p.get("vlan"))}
        policy["pcp"] = str(p.get("priority"))
        policy["dscp"] = str(p.get("dscp"))
        policies.append(policy)
    if policies:
        med["policy"] = policies
    inventory = {key: str(d[field]) for field, key in _INVENTORY_KEYS if d.get(field)}
    if inventory:
        med["inventory"] = inventory
    if med:
        entry["lldp-med"] = med
    return entry


def lldpcli_json(neighbors: list[Neighbor], now: float) -> dict[str, Any]:
    entries = [{n.interface: lldpcli_entry(n, now)} for n in neighbors]
    if not entries:
        return {"lldp": {}}
    if len(entries) == 1:
        return {"lldp": {"interface": entries[0]}}
    return {"lldp": {"interface": entries}}


def table_rows(neighbors: list[Neighbor], now: float) -> list[tuple[Any, ...]]:
    rows = []
    for n in neighbors:
        d = n.detail
        if n.protocol == "cdp":
            name, port = d.get("device_id"), d.get("port_id")
            model, addresses = d.get("platform"), d.get("addresses") or []
            vlan = d.get("voip_vlan_query")
        else:
            name, port = d.get("system_name") or d.get("chassis_id"), d.get("port_id")
            model = " ".join(str(x) for x in (d.get("manufacturer"), d.get("model")) if x) or None
            addresses = d.get("management_addresses") or []
            voice = [p for p in d.get("policies") or [] if p.get("application") == "voice"]
            vlan = voice[0].get("vlan") if voice else None
        rows.append(
            (
                n.interface,
                n.protocol.upper(),
                n.mac,
                name,
                port,
                ", ".join(addresses) or None,
                model,
                vlan,
                _age(now - n.when),
            )
        )
    return rows
