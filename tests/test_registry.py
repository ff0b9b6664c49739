from __future__ import annotations

from pathlib import Path

from netboot.registry import Registry, read_phones


def test_facts_state_and_timeline(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    mac = "00:30:4f:11:3a:f8"
    reg.record(mac, "dhcp", "discover", {"vendor_class": "PLANET"}, now=10, vendor_class="PLANET")
    reg.record(
        mac,
        "dhcp",
        "ack",
        {"ip": "192.168.10.100", "url": "http://x/$mac.cfg"},
        now=11,
        ip="192.168.10.100",
    )
    reg.record(
        mac, "pnp", "subscribe", {}, now=12, vendor="PLANET", model="VIP-2140PT", firmware="2.0.3"
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
    fetch = {
        "file": "f0VIP-2140PThw1.100.cfg",
        "file_kind": "common",
        "result": "ok",
        "protocol": "http",
    }
    reg.record(mac, "http", "fetch", fetch, now=13)
    assert reg.phone(mac).state == "fetched-common"  # type: ignore[union-attr]
    # A later failure is shown; a success after it replaces it.
    reg.record(
        mac,
        "http",
        "fetch",
        {**fetch, "file": "00304f113af8.cfg", "file_kind": "mac", "result": "not-found"},
        now=14,
    )
    phone = reg.phone(mac)
    assert (
        phone is not None and phone.state == "failed" and "not-found" in (phone.state_detail or "")
    )
    reg.record(
        mac, "http", "fetch", {**fetch, "file": "00304f113af8.cfg", "file_kind": "mac"}, now=15
    )
    reg.record(mac, "action", "registration-succeeded", {"line": "201"}, now=16)
    # Nothing moves a registered phone back.
    reg.record(mac, "http", "fetch", fetch, now=17)
    phone = reg.phone(mac)
    assert phone is not None and phone.state == "registered" and phone.files == 3
    kinds = [(e.service, e.kind) for e in reg.timeline(mac)]
    assert kinds[:3] == [("dhcp", "discover"), ("dhcp", "ack"), ("pnp", "subscribe")]
    assert len(kinds) == 8
    reg.close()
    # A new registry (restart) continues from what is on disk.
    again = Registry(tmp_path)
    again.record(
        mac, "dhcp", "ack", {"ip": "192.168.10.101", "url": "u"}, now=20, ip="192.168.10.101"
    )
    phone = again.phone(mac)
    assert phone is not None and phone.state == "registered" and phone.ip == "192.168.10.101"
    again.close()


def test_one_flush_many_phones(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    for i in range(500):
        mac = f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}"
        reg.record(mac, "dhcp", "discover", {}, now=i)
        reg.record(
            mac,
            "dhcp",
            "ack",
            {"ip": f"10.0.{i >> 8}.{i & 255}", "url": "u"},
            now=i + 0.5,
            ip=f"10.0.{i >> 8}.{i & 255}",
        )
    assert reg.flush() == 1000
    phones = read_phones(reg._conn)
    assert len(phones) == 500
    assert all(p.state == "url-sent" and p.last_event == "dhcp ack" for p in phones)
    assert phones[5].ip == "10.0.0.5"
    reg.close()


def test_forbidden_fetch_is_in_the_timeline_but_moves_no_state(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    mac = "00:30:4f:11:3a:f8"
    own = {"file": "00304f113af8.cfg", "file_kind": "mac", "protocol": "tftp"}
    reg.record(mac, "pnp", "notify", {"url": "tftp://x/"}, now=1)
    reg.record(mac, "tftp", "fetch", {**own, "result": "forbidden"}, now=2)
    assert reg.phone(mac).state == "url-sent"  # type: ignore[union-attr]
    reg.record(mac, "tftp", "fetch", {**own, "result": "ok"}, now=3)
    reg.record(mac, "tftp", "fetch", {**own, "result": "forbidden"}, now=4)
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
    reg.record(mac, "tftp", "fetch", {**own, "result": "not-found"}, now=5)
    assert reg.phone(mac).state == "failed"  # type: ignore[union-attr]
    reg.close()


def test_flush_in_batches_keeps_order(tmp_path: Path) -> None:
    # The supervisor writes a burst a batch at a time (other services run in
    # between); the oldest events go first and none is lost or duplicated.
    reg = Registry(tmp_path)
    mac = "00:30:4f:00:00:01"
    for i in range(250):
        reg.record(mac, "lldp", "neighbor", {"n": i}, now=float(i), model=f"m{i}")
    assert [reg.flush(limit=100) for _ in range(4)] == [100, 100, 50, 0]
    assert [e.detail["n"] for e in reg.timeline(mac)] == list(range(250))
    phone = reg.phone(mac)
    assert phone is not None and phone.model == "m249"
    reg.close()


def test_a_phone_first_known_from_a_strangers_request(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    mac = "00:30:4f:11:3a:f8"
    refused = {"file": "00304f113af8.cfg", "file_kind": "mac", "result": "forbidden"}
    reg.record(mac, "http", "fetch", refused, now=5)
    reg.record(mac, "http", "fetch", refused, now=6)
    phone = reg.phone(mac)
    assert phone is not None and phone.state == "seen" and phone.files == 0
    assert (phone.first_seen, phone.last_seen) == (5, 5)
    reg.record(mac, "dhcp", "ack", {"ip": "192.0.2.10"}, now=7, ip="192.0.2.10")
    reg.record(mac, "http", "fetch", refused, now=8)
    phone = reg.phone(mac)
    assert phone is not None
    assert (phone.ip, phone.last_seen, phone.last_event) == ("192.0.2.10", 7, "dhcp ack")
    assert len(reg.timeline(mac)) == 4
    reg.close()
