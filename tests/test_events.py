"""Typed registry events: the transition table, every event through the store and back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from netboot import events as ev
from netboot.events import (
    FACTS,
    TRANSITIONS,
    AckWithheld,
    ActionReceived,
    AddressConflict,
    CdpSeen,
    Event,
    FileFetched,
    FileForbidden,
    FileNotServed,
    LeaseAcked,
    LeaseDeclined,
    LeaseInformed,
    LeaseNak,
    LeaseOffered,
    LeaseReleased,
    LldpSeen,
    MedPolicy,
    NeighborGone,
    PhoneState,
    PnpAnswered,
    PnpNotified,
    PnpSubscribed,
    PnpTimedOut,
    PoolExhausted,
    Step,
    decode,
    next_state,
)
from netboot.registry import Registry
from netboot.state.registry import SCHEMA, read_timeline

MAC = "00:30:4f:11:3a:f8"

# The rule the table writes out: a rank per state; a success moves a phone to a
# state of equal or higher rank (or out of `failed`); a failed fetch is shown
# unless the phone has registered.
RANK = {
    PhoneState.SEEN: 0,
    PhoneState.URL_SENT: 1,
    PhoneState.FAILED: 2,
    PhoneState.FETCHED_COMMON: 3,
    PhoneState.FETCHED_OWN: 4,
    PhoneState.REGISTRATION_FAILED: 5,
    PhoneState.REGISTERED: 6,
}
TARGET = {
    Step.URL_SENT: PhoneState.URL_SENT,
    Step.FETCH_FAILED: PhoneState.FAILED,
    Step.FETCHED_COMMON: PhoneState.FETCHED_COMMON,
    Step.FETCHED_OWN: PhoneState.FETCHED_OWN,
    Step.REGISTRATION_FAILED: PhoneState.REGISTRATION_FAILED,
    Step.REGISTERED: PhoneState.REGISTERED,
}


def rule(current: PhoneState, step: Step) -> PhoneState | None:
    new = TARGET[step]
    if new is PhoneState.FAILED:
        return new if current is not PhoneState.REGISTERED else None
    if current is PhoneState.FAILED or RANK[new] >= RANK[current]:
        return new
    return None


@pytest.mark.parametrize("current", list(PhoneState))
@pytest.mark.parametrize("step", list(Step))
def test_transition_table_is_complete_and_forward_only(current: PhoneState, step: Step) -> None:
    assert set(TRANSITIONS) == set(PhoneState)
    assert next_state(current, step) == rule(current, step)


def test_transition_table_spot_checks() -> None:
    # a failure replaces any success but registration; any success replaces a failure
    assert next_state(PhoneState.FETCHED_OWN, Step.FETCH_FAILED) is PhoneState.FAILED
    assert next_state(PhoneState.REGISTERED, Step.FETCH_FAILED) is None
    assert next_state(PhoneState.FAILED, Step.URL_SENT) is PhoneState.URL_SENT
    # nothing moves back
    assert next_state(PhoneState.FETCHED_OWN, Step.FETCHED_COMMON) is None
    assert next_state(PhoneState.REGISTERED, Step.REGISTRATION_FAILED) is None
    # the table's targets are exactly the step's own state
    for row in TRANSITIONS.values():
        for step, target in row.items():
            assert target is TARGET[step]


def every_event() -> list[Event]:
    """One of each event class, every field set to something not its default."""
    return [
        LeaseOffered(
            mac=MAC,
            vendor_class="PLANET VIP-2140PT",
            vendor="PLANET",
            hostname="desk",
            requested_options=(1, 3, 66),
            offered="192.0.2.10",
        ),
        PoolExhausted(
            mac=MAC,
            vendor_class="yealink",
            vendor="Yealink",
            hostname="SIP-T46U",
            requested_options=(1, 43),
        ),
        LeaseAcked(
            mac=MAC,
            ip="192.0.2.10",
            state="selecting",
            class_name="planet",
            family="fanvil",
            url="http://192.0.2.1/$mac.cfg",
            url_options=(66, 160),
            options_sent=(1, 3, 51, 54, 66),
            requested_options=(1, 3, 66),
            recovered="from the lease store",
            vendor_class="PLANET",
            vendor="PLANET",
            hostname="desk",
        ),
        LeaseInformed(
            mac=MAC, ip="192.0.2.10", vendor_class="PLANET", vendor="PLANET", hostname="desk"
        ),
        LeaseNak(mac=MAC, reason="192.0.2.99 is not on this network"),
        LeaseDeclined(mac=MAC, ip="192.0.2.10", quarantine=600.0),
        LeaseReleased(mac=MAC, ip="192.0.2.10"),
        AddressConflict(mac=MAC, ip="192.0.2.11"),
        AckWithheld(mac=MAC, ip="192.0.2.10", reason="disk-full"),
        PnpSubscribed(
            mac=MAC,
            source="192.0.2.10:5060",
            profile_type="device",
            user_agent="PLANET VIP-2140PT 2.0.3",
            vendor_from_oui=True,
            refused="policy",
            ip="192.0.2.10",
            vendor="PLANET",
            model="VIP-2140PT",
            firmware="2.0.3",
        ),
        PnpNotified(mac=MAC, url="tftp://192.0.2.1/", to="192.0.2.10:5060"),
        PnpAnswered(mac=MAC, status=200),
        PnpTimedOut(mac=MAC, url="tftp://192.0.2.1/", to="192.0.2.10:5060"),
        LldpSeen(
            mac=MAC,
            interface="eth0",
            chassis_id=MAC,
            port_id="WAN",
            ttl=120,
            system_name="VIP-2140PT",
            system_description="PLANET VIP-2140PT 2.0.3",
            management_addresses=("192.0.2.10", "fe80::1"),
            med_device_type="Communication Device Endpoint (Class III)",
            policies=(MedPolicy("Voice", 100, True, 5, 46), MedPolicy(7, 0, False, 0, 0)),
            hardware_revision="1",
            firmware_revision="2.0.3",
            software_revision="2.0",
            serial_number="S1",
            manufacturer="PLANET",
            model="VIP-2140PT",
            asset_id="A1",
            ip="192.0.2.10",
            firmware="2.0.3",
        ),
        CdpSeen(
            mac=MAC,
            interface="eth0.100",
            device_id="SEP001B54AABBCC",
            port_id="Port 1",
            platform="Cisco IP Phone 7945",
            software_version="SCCP45.9-4",
            addresses=("192.0.2.12",),
            voip_vlan_query=1,
            ip="192.0.2.12",
            vendor="Cisco",
        ),
        NeighborGone(mac=MAC, interface="eth0", protocol="cdp"),
        FileFetched(
            mac=MAC,
            file="00304f113af8.cfg",
            file_kind="mac",
            protocol="http",
            bytes=912,
            client="192.0.2.10",
            user_agent="PLANET VIP-2140PT 2.0.3 00304f113af8",
            reason="served from the renderer",
            ip="192.0.2.10",
            vendor="PLANET",
            model="VIP-2140PT",
            firmware="2.0.3",
        ),
        FileNotServed(
            mac=MAC,
            file="f0VIP-2140PThw1.100.cfg",
            file_kind="common",
            result="not-found",
            protocol="tftp",
            bytes=512,
            client="192.0.2.10",
            user_agent="-",
            reason="no such file",
            ip="192.0.2.10",
            vendor="PLANET",
            model="VIP-2140PT",
            firmware="2.0.3",
        ),
        FileForbidden(
            mac=MAC,
            file="00304f113af8.cfg",
            file_kind="mac",
            protocol="ftp",
            bytes=10,
            client="192.0.2.66",
            user_agent="curl/8",
            reason="192.0.2.66 holds the lease of another MAC",
        ),
        ActionReceived(
            mac=MAC,
            event="registration-failed",
            client="192.0.2.10",
            ip="192.0.2.10",
            model="VIP-2140PT",
            firmware="2.0.3",
            active_url="sip:1001@pbx",
            active_user="1001",
            active_host="pbx",
            local="1001",
            remote="1002",
            display_local="Desk",
            display_remote="Door",
            call_id="abc@h",
            line="1001",
            phone_ip="192.0.2.10",
            vendor="PLANET",
            phone_model="VIP-2140PT",
            phone_firmware="2.0.3",
        ),
    ]


def test_every_event_class_is_covered() -> None:
    classes = {
        cls
        for cls in vars(ev).values()
        if isinstance(cls, type)
        and issubclass(cls, Event)
        and cls is not Event
        and not cls.__name__.startswith("_")
    }
    assert classes == {type(e) for e in every_event()}


@pytest.mark.parametrize("event", every_event(), ids=lambda e: type(e).__name__)
def test_event_round_trips_through_the_store(tmp_path: Path, event: Event) -> None:
    # every field was set: a field the store drops would show here
    fixed = {(LldpSeen, "protocol"), (CdpSeen, "protocol")}
    fixed |= {(FileFetched, "result"), (FileForbidden, "result")}
    for f in dataclasses.fields(event):
        if f.name != "event" and (type(event), f.name) not in fixed:
            assert getattr(event, f.name) != f.default, f.name
    reg = Registry(tmp_path)
    reg.record(event, now=100.0)
    [entry] = reg.timeline(MAC)
    assert (entry.service, entry.kind, entry.when) == (event.service, event.kind, 100.0)
    assert entry.event() == event
    assert entry.describe() == event.describe()
    assert entry.detail == json.loads(json.dumps(event.detail()))
    # facts reach the phone row, unless the phone did not cause the event
    phone = reg.phone(MAC)
    assert phone is not None
    row = phone.as_dict()
    for name, value in event.facts().items():
        if name in row:
            assert row[name] == (value if event.by_phone else None), name
    reg.close()


def test_facts_are_only_the_known_ones() -> None:
    for event in every_event():
        assert set(event.facts()) <= set(FACTS), type(event).__name__


def test_rows_of_an_older_netboot_still_read(tmp_path: Path) -> None:
    """Rows written before events were typed: same keys, nulls included, no "facts"."""
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    rows = [
        ("dhcp", "ack", {"ip": "10.0.0.5", "class": None, "url": "", "url_options": []}),
        (
            "http",
            "fetch",
            {"file": "a.cfg", "file_kind": "mac", "result": "ok", "protocol": "http"},
        ),
        ("pnp", "subscribe", {"from": "10.0.0.5:5060", "user_agent": "x"}),
        ("lldp", "neighbor", {"interface": "eth0", "protocol": "cdp", "device_id": "SEP1"}),
        ("action", "mute", {"client": "10.0.0.5"}),
        ("dhcp", "something-new", {"x": 1}),  # a kind no class describes
        ("http", "fetch", {"file": "a.cfg"}),  # missing required fields
    ]
    for service, kind, detail in rows:
        conn.execute(
            "INSERT INTO events (mac, ts, service, kind, detail) VALUES (?, 1, ?, ?, ?)",
            (MAC, service, kind, json.dumps(detail)),
        )
    got = [e.event() for e in read_timeline(conn, MAC)]
    assert got[0] == LeaseAcked(mac=MAC, ip="10.0.0.5", url="")
    assert got[1] == FileFetched(mac=MAC, file="a.cfg", file_kind="mac", protocol="http")
    assert got[2] == PnpSubscribed(mac=MAC, source="10.0.0.5:5060", user_agent="x")
    assert got[3] == CdpSeen(mac=MAC, interface="eth0", device_id="SEP1")
    assert got[4] == ActionReceived(mac=MAC, event="mute", client="10.0.0.5")
    assert got[5:] == [None, None]
    assert decode(MAC, "action", "not-an-event", {"client": "x"}) is None


def test_steps_of_the_events() -> None:
    by_class = {type(e): e for e in every_event()}
    assert by_class[LeaseAcked].step() == (Step.URL_SENT, "DHCP option [66, 160]")
    assert LeaseAcked(mac=MAC, ip="10.0.0.5").step() is None  # no URL told
    assert by_class[PnpNotified].step() == (Step.URL_SENT, "SIP PnP NOTIFY")
    assert by_class[FileFetched].step() == (Step.FETCHED_OWN, "00304f113af8.cfg")
    assert by_class[FileNotServed].step() == (
        Step.FETCH_FAILED,
        "tftp f0VIP-2140PThw1.100.cfg: not-found",
    )
    assert by_class[FileForbidden].step() is None and not by_class[FileForbidden].by_phone
    assert by_class[ActionReceived].step() == (Step.REGISTRATION_FAILED, "1001")
    with pytest.raises(ValueError, match="unknown Action URL event"):
        ActionReceived(mac=MAC, event="reboot", client="x")


def test_stored_json_is_the_standard_encoders_output() -> None:
    """to_json (the C encoder built once) writes what json.dumps(sort_keys=True)
    writes, nested dataclasses and non-ASCII included: old rows and new rows
    read back the same."""
    import json

    from netboot.events import to_json

    values = {
        "z": 'é\\u2028"x',
        "a": [1, 2.5, None, True],
        "m": {"b": 1, "a": [{"y": 2, "x": 1}]},
        "o": ValueError("not JSON"),
    }
    assert to_json(values) == json.dumps(values, default=str, sort_keys=True)
