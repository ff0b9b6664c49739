from __future__ import annotations

from pathlib import Path
from typing import Any

from netboot.events import (
    ActionReceived,
    FileFetched,
    FileForbidden,
    FileNotServed,
    LeaseAcked,
    LeaseOffered,
    LldpSeen,
    PnpNotified,
    PnpSubscribed,
)
from netboot.registry import Registry
from netboot.state.registry import read_phones


def test_facts_state_and_timeline(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    mac = "00:30:4f:11:3a:f8"
    reg.record(LeaseOffered(mac=mac, vendor_class="PLANET", offered="192.168.10.100"), now=10)
    reg.record(LeaseAcked(mac=mac, ip="192.168.10.100", url="http://x/$mac.cfg"), now=11)
    reg.record(
        PnpSubscribed(mac=mac, vendor="PLANET", model="VIP-2140PT", firmware="2.0.3"), now=12
    )
    phone = reg.phone(mac)
    assert phone is not None
    assert (phone.ip, phone.vendor, phone.model, phone.firmware) == (
        "192.168.10.100",
        "PLANET",
        "VIP-2140PT",
        "2.0.3",
    )
    assert phone.state == "url-sent"
    assert (phone.first_seen, phone.last_seen, phone.last_event) == (10, 12, "pnp subscribe")
    fetch = FileFetched(
        mac=mac, file="f0VIP-2140PThw1.100.cfg", file_kind="common", protocol="http"
    )
    reg.record(fetch, now=13)
    assert reg.phone(mac).state == "fetched-common"  # type: ignore[union-attr]
    # A later failure is shown; a success after it replaces it.
    own: dict[str, Any] = {"file": "00304f113af8.cfg", "file_kind": "mac", "protocol": "http"}
    reg.record(FileNotServed(mac=mac, result="not-found", **own), now=14)
    phone = reg.phone(mac)
    assert (
        phone is not None and phone.state == "failed" and "not-found" in (phone.state_detail or "")
    )
    reg.record(FileFetched(mac=mac, **own), now=15)
    reg.record(
        ActionReceived(mac=mac, event="registration-succeeded", client="192.0.2.9", line="201"),
        now=16,
    )
    # Nothing moves a registered phone back.
    reg.record(fetch, now=17)
    phone = reg.phone(mac)
    assert phone is not None and phone.state == "registered" and phone.files == 3
    kinds = [(e.service, e.kind) for e in reg.timeline(mac)]
    assert kinds[:3] == [("dhcp", "discover"), ("dhcp", "ack"), ("pnp", "subscribe")]
    assert len(kinds) == 8
    reg.close()
    # A new registry (restart) continues from what is on disk.
    again = Registry(tmp_path)
    again.record(LeaseAcked(mac=mac, ip="192.168.10.101", url="u"), now=20)
    phone = again.phone(mac)
    assert phone is not None and phone.state == "registered" and phone.ip == "192.168.10.101"
    again.close()


def test_one_flush_many_phones(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    for i in range(500):
        mac = f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}"
        ip = f"10.0.{i >> 8}.{i & 255}"
        reg.record(LeaseOffered(mac=mac, offered=ip), now=i)
        reg.record(LeaseAcked(mac=mac, ip=ip, url="u"), now=i + 0.5)
    assert reg.flush() == 1000
    phones = read_phones(reg.connection)
    assert len(phones) == 500
    assert all(p.state == "url-sent" and p.last_event == "dhcp ack" for p in phones)
    assert phones[5].ip == "10.0.0.5"
    reg.close()


def test_forbidden_fetch_is_in_the_timeline_but_moves_no_state(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    mac = "00:30:4f:11:3a:f8"
    own: dict[str, Any] = {"file": "00304f113af8.cfg", "file_kind": "mac", "protocol": "tftp"}
    reg.record(PnpNotified(mac=mac, url="tftp://x/", to="192.0.2.10:5060"), now=1)
    reg.record(FileForbidden(mac=mac, **own), now=2)
    assert reg.phone(mac).state == "url-sent"  # type: ignore[union-attr]
    reg.record(FileFetched(mac=mac, **own), now=3)
    reg.record(FileForbidden(mac=mac, **own), now=4)
    phone = reg.phone(mac)
    assert phone is not None and phone.state == "fetched-own" and phone.files == 1
    assert [e.detail.get("result") for e in reg.timeline(mac)] == [
        None,
        "forbidden",
        "ok",
        "forbidden",
    ]
    # Nor does it count as the phone being seen.
    assert (phone.last_seen, phone.last_event) == (3, "tftp fetch")
    assert phone.first_seen == 1
    # A genuine failure of the phone itself still shows.
    reg.record(FileNotServed(mac=mac, result="not-found", **own), now=5)
    assert reg.phone(mac).state == "failed"  # type: ignore[union-attr]
    reg.close()


def test_flush_in_batches_keeps_order(tmp_path: Path) -> None:
    # The supervisor writes a burst a batch at a time (other services run in
    # between); the oldest events go first and none is lost or duplicated.
    reg = Registry(tmp_path)
    mac = "00:30:4f:00:00:01"
    for i in range(250):
        reg.record(LldpSeen(mac=mac, interface="eth0", ttl=i, model=f"m{i}"), now=float(i))
    assert [reg.flush(limit=100) for _ in range(4)] == [100, 100, 50, 0]
    assert [e.detail["ttl"] for e in reg.timeline(mac)] == list(range(250))
    phone = reg.phone(mac)
    assert phone is not None and phone.model == "m249"
    reg.close()


def test_a_phone_first_known_from_a_strangers_request(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    mac = "00:30:4f:11:3a:f8"
    refused = FileForbidden(mac=mac, file="00304f113af8.cfg", file_kind="mac", protocol="http")
    reg.record(refused, now=5)
    reg.record(refused, now=6)
    phone = reg.phone(mac)
    assert phone is not None and phone.state == "seen" and phone.files == 0
    assert (phone.first_seen, phone.last_seen) == (5, 5)
    reg.record(LeaseAcked(mac=mac, ip="192.0.2.10"), now=7)
    reg.record(refused, now=8)
    phone = reg.phone(mac)
    assert phone is not None
    assert (phone.ip, phone.last_seen, phone.last_event) == ("192.0.2.10", 7, "dhcp ack")
    assert len(reg.timeline(mac)) == 4
    reg.close()


def test_a_family_has_one_vendor_name_whichever_service_spoke_last(tmp_path: Path) -> None:
    """DHCP names the family `Snom`; a later PnP SUBSCRIBE with the firmware's
    own `vendor="snom"` must not flip it (463 of 10 000 storm phones did);
    a Linksys-branded SPA is the Cisco SPA family; unknown text stays."""
    reg = Registry(tmp_path)
    snom, spa, other = "00:04:13:29:1a:4b", "00:0e:08:11:22:33", "02:00:00:00:00:01"
    reg.record(LeaseOffered(mac=snom, vendor="Snom", offered="192.168.10.100"), now=10)
    reg.record(PnpSubscribed(mac=snom, vendor="snom", model="D785"), now=11)
    reg.record(PnpSubscribed(mac=spa, vendor="Linksys", model="SPA942"), now=11)
    reg.record(PnpSubscribed(mac=other, vendor="Acme", model="X1"), now=11)
    reg.flush()
    vendors = {mac: getattr(reg.phone(mac), "vendor", None) for mac in (snom, spa, other)}
    assert vendors == {snom: "Snom", spa: "Cisco SPA / 3PCC", other: "Acme"}
    reg.close()
