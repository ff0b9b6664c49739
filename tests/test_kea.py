"""netboot export kea (the config Kea is given) and the kea-mode lease engine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from netboot.config import ConfigError, load_config, parse_config
from netboot.kea.control import KeaLease, changes, merge, parse_lease
from netboot.kea.export import ExportError, ExportOptions, HaPeer, export, kea_config, parse_peer
from netboot.kea.match import expand_regex, substring_test, text_test
from netboot.state.leases import Lease
from netboot.vendors import by_name
from tests.test_config import BASE  # the same minimal config

REPO = Path(__file__).resolve().parent.parent
KEA = shutil.which("kea-dhcp4")


# ---------------------------------------------------------------- match


@pytest.mark.parametrize(
    ("pattern", "strings", "anchored", "exact"),
    [
        (r"^PLANET\b", ("PLANET",), True, False),
        (r"^ccp\.avaya\.com$", ("ccp.avaya.com",), True, True),
        (r"^Cisco Systems,? Inc\.", ("Cisco Systems Inc.", "Cisco Systems, Inc."), True, False),
        (r"\bPolycom\b", ("Polycom",), False, False),
    ],
)
def test_vendor_regex_expands_to_literals(
    pattern: str, strings: tuple[str, ...], anchored: bool, exact: bool
) -> None:
    found = expand_regex(pattern)
    assert found is not None
    assert (found.strings, found.anchored, found.exact) == (strings, anchored, exact)


def test_regex_expansion_is_bounded() -> None:
    spa = expand_regex(r"^(?:CISCO|LINKSYS) (?:SPA-?\d|ATA19)")
    assert spa is not None and len(spa.strings) == 42 and "LINKSYS SPA-3" in spa.strings
    assert expand_regex(r"^N\d{3}_(?:IP|DM)_PRO$") is None  # 2000 strings: left to the OUI
    assert expand_regex(r"^(?:HT\w+|GXP\w+) dslforum") is None  # \w+: not finite
    assert expand_regex(r"^[abc]") is None


def test_text_tests_cover_case_forms_and_offsets() -> None:
    prefix = text_test(expand_regex(r"^yealink") or pytest.fail("no expansion"))
    for form in ("'yealink'", "'Yealink'", "'YEALINK'"):
        assert f"substring(option[60].hex,0,7) == {form}" in prefix
    anywhere = substring_test("PLANET")
    assert "substring(option[60].hex,0,6) == 'PLANET'" in anywhere
    assert "substring(option[60].hex,249,6) == 'planet'" in anywhere  # last offset of 255
    assert "substring(option[60].hex,250,6)" not in anywhere
    assert "0x" + b"it's".hex() in substring_test("it's")  # a quote goes as hex


# ---------------------------------------------------------------- export


def classes_by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in body["Dhcp4"]["client-classes"]}


def test_export_carries_each_familys_url_form() -> None:
    config = load_config(REPO / "config.toml")
    body = kea_config(config, ExportOptions())
    classes = classes_by_name(body)
    url = config.provisioning.url
    yealink = by_name("yealink")
    assert yealink is not None
    # [[dhcp.class]] yealink, url_options [66, 43], a Yealink phone: the directory.
    data = {d["code"]: d for d in classes["nb-class-yealink.yealink"]["option-data"]}
    assert set(data) == {66, 43}
    assert bytes.fromhex(data[66]["data"]) == yealink.url_for_option(66, url).encode()
    assert bytes.fromhex(data[66]["data"]) == b"http://192.168.10.2/"
    assert all(d["always-send"] and d["csv-format"] is False for d in data.values())
    # Option 43 is redefined as binary where a class sends it.
    assert classes["nb-class-yealink.yealink"]["option-def"][0]["code"] == 43
    # No class, no family: the site URL in dhcp.url_options.
    default = {d["code"]: d for d in classes["nb-opts.default"]["option-data"]}
    assert set(default) == {66, 160}
    assert bytes.fromhex(default[160]["data"]) == url.encode()
    # The PLANET class matches its OUI as netboot does.
    assert "substring(pkt4.mac,0,3) == 0x00304f" in classes["nb-class-planet"]["test"]
    subnet = body["Dhcp4"]["subnet4"][0]
    assert subnet["pools"] == [{"pool": "192.168.10.100 - 192.168.10.199"}]
    assert subnet["reservations"] == [
        {"hw-address": "00:30:4f:11:3a:f8", "ip-address": "192.168.10.20"}
    ]
    assert (subnet["renew-timer"], subnet["rebind-timer"]) == (1800, 3150)


def test_export_orders_classes_so_members_exist() -> None:
    body = kea_config(load_config(REPO / "config.toml"), ExportOptions())
    defined: set[str] = set()
    for cls in body["Dhcp4"]["client-classes"]:
        for name in _members(cls["test"]):
            assert name in defined, (cls["name"], name)
        defined.add(cls["name"])


def _members(test: str) -> list[str]:
    out = []
    for part in test.split("member('")[1:]:
        out.append(part.split("'", 1)[0])
    return out


def test_ha_pair_files() -> None:
    config = load_config(REPO / "config.toml")
    peers = (HaPeer("a", "http://192.168.10.3:8001/"), HaPeer("b", "http://192.168.10.4:8001/"))
    files = export(config, ExportOptions(control_socket="/run/kea/{name}.sock", peers=peers))
    assert set(files) == {"kea-dhcp4-a.conf", "kea-dhcp4-b.conf"}
    ha = files["kea-dhcp4-b.conf"]["Dhcp4"]["hooks-libraries"][1]["parameters"]["high-availability"]
    assert ha[0]["this-server-name"] == "b" and ha[0]["mode"] == "hot-standby"
    assert [p["role"] for p in ha[0]["peers"]] == ["primary", "standby"]
    assert files["kea-dhcp4-a.conf"]["Dhcp4"]["control-socket"]["socket-name"] == "/run/kea/a.sock"
    with pytest.raises(ExportError):
        export(config, ExportOptions(peers=peers[:1]))
    with pytest.raises(ExportError):
        parse_peer("a=ftp://x/")
    assert parse_peer("k1=http://10.0.0.1:8001").url == "http://10.0.0.1:8001/"


@pytest.mark.skipif(KEA is None, reason="kea-dhcp4 not installed")
def test_kea_accepts_the_exported_files(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "netboot.cli", "export", "kea", "-c", str(REPO / "config.toml"),
            "--out", str(tmp_path), "--ha-peer", "k1=http://192.168.10.3:8001/",
            "--ha-peer", "k2=http://192.168.10.4:8001/",
        ],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    single = subprocess.run(
        [sys.executable, "-m", "netboot.cli", "export", "kea", "-c", str(REPO / "config.toml")],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=True,
    )  # fmt: skip
    (tmp_path / "single.conf").write_text(single.stdout)
    assert json.loads(single.stdout)["Dhcp4"]["subnet4"][0]["subnet"] == "192.168.10.0/24"
    for name in ("kea-dhcp4-k1.conf", "kea-dhcp4-k2.conf", "single.conf"):
        check = subprocess.run(
            [str(KEA), "-t", str(tmp_path / name)], capture_output=True, timeout=60, check=False
        )
        assert check.returncode == 0, check.stdout.decode(errors="replace")[-2000:]


# ---------------------------------------------------------------- kea mode


def test_kea_mode_keys() -> None:
    config = parse_config(
        tomllib.loads(BASE + 'mode = "kea"\nkea_control_sockets = ["/a", "/b"]\n')
    )
    assert config.dhcp.mode == "kea" and config.dhcp.kea_control_sockets == ("/a", "/b")
    assert parse_config(tomllib.loads(BASE)).dhcp.mode == "netboot"
    for bad, key in (
        ('mode = "dhcpd"', "dhcp.mode"),
        ('kea_control_sockets = ["relative"]', "dhcp.kea_control_sockets"),
        ("kea_poll_interval = 0", "dhcp.kea_poll_interval"),
        ("kea_max_leases = 5", "dhcp.kea_max_leases"),
    ):
        with pytest.raises(ConfigError) as info:
            parse_config(tomllib.loads(BASE + bad + "\n"))
        assert any(str(p).startswith(key) for p in info.value.problems), info.value.problems


def kea(ip: str, mac: str, cltt: float, valid: int = 600, state: int = 0) -> KeaLease:
    return KeaLease(int(IPv4Address(ip)), mac, cltt, valid, state)


class Mirror(dict[int, Lease]):
    def __iter__(self) -> Any:
        return iter(list(self.values()))

    def apply(self, write: list[Lease]) -> None:
        for lease in write:
            self[lease.ip] = lease


def test_parse_lease_takes_keas_fields_and_drops_malformed() -> None:
    item = {"ip-address": "192.168.10.100", "hw-address": "00:30:4F:5A:01:02", "cltt": 1000,
            "valid-lft": 600, "state": 0, "hostname": "ph"}  # fmt: skip
    lease = parse_lease(item)
    assert lease == KeaLease(
        int(IPv4Address("192.168.10.100")), "00:30:4f:5a:01:02", 1000.0, 600, 0, "ph"
    )
    assert lease is not None and lease.expires == 1600.0
    for broken in (
        {},
        {**item, "ip-address": "x"},
        {**item, "hw-address": ""},
        {**item, "cltt": None},
    ):
        assert parse_lease(broken) is None


def test_changes_follow_kea_with_a_stepped_clock() -> None:
    mirror = Mirror()
    a = kea("192.168.10.100", "00:30:4f:00:00:01", 1000)
    # The standby's copy is older: the primary's (newest cltt) wins.
    merged = merge([[a], [kea("192.168.10.100", "00:30:4f:00:00:01", 900)]])
    assert merged[a.ip] == a
    write, acks = changes(mirror, merged, now=1001)
    assert [(x.mac, x.state, x.expires) for x in write] == [(a.mac, "bound", 1600)]
    assert acks == write
    mirror.apply(write)
    assert changes(mirror, merged, now=1002) == ([], [])  # nothing new
    renewed = kea("192.168.10.100", a.mac, 1300)
    write, acks = changes(mirror, merge([[renewed]]), now=1301)
    assert len(write) == len(acks) == 1 and write[0].expires == 1900
    mirror.apply(write)
    # Kea's answer lacks it, but a socket failed: kept.
    assert changes(mirror, {}, now=1400, complete=False) == ([], [])
    # Every socket answered without it: released (no ack).
    write, acks = changes(mirror, {}, now=1400)
    assert [(x.ip, x.state) for x in write] == [(a.ip, "released")] and acks == []
    # Declined and reclaimed states; an address outside the scopes is ignored.
    declined = kea("192.168.10.101", "00:30:4f:00:00:02", 1000, state=1)
    outside = kea("10.0.0.5", "00:30:4f:00:00:03", 1000)
    write, acks = changes(
        Mirror(), merge([[declined, outside]]), now=1001, scopes=(IPv4Network("192.168.10.0/24"),)
    )
    assert [(x.ip, x.state) for x in write] == [(declined.ip, "declined")] and acks == []


def _kea_answers(pages: list[Any]) -> Any:
    """A stand-in control socket server answering lease4-get-page from `pages`
    (Kea's protocol: one JSON command per connection, one answer, close)."""
    import asyncio

    asked: list[dict[str, Any]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        asked.append(json.loads(await reader.read(65536)))
        answer = pages.pop(0)
        writer.write(answer if isinstance(answer, bytes) else json.dumps(answer).encode())
        await writer.drain()
        writer.close()

    return handle, asked


def _entry(i: int) -> dict[str, Any]:
    return {"ip-address": f"192.168.10.{i}", "hw-address": f"00:30:4f:00:00:{i:02x}",
            "cltt": 1000, "valid-lft": 600, "state": 0}  # fmt: skip


def test_client_pages_through_leases_and_skips_malformed(tmp_path: Path) -> None:
    import asyncio

    from netboot.kea import control
    from netboot.kea.control import KeaClient, KeaError

    async def scenario() -> None:
        path = tmp_path / "kea.sock"
        full = [_entry(i % 250 + 1) for i in range(control.PAGE)]
        full[5] = {"ip-address": "bogus"}
        pages: list[Any] = [
            {"result": 0, "arguments": {"leases": full, "count": control.PAGE}},
            {"result": 0, "arguments": {"leases": [_entry(7)], "count": 1}},
        ]
        handle, asked = _kea_answers(pages)
        server = await asyncio.start_unix_server(handle, path=str(path))
        async with server:
            leases, bad = await KeaClient(str(path)).leases(budget=5000)
            assert (len(leases), bad) == (control.PAGE, 1)
            assert asked[0]["arguments"] == {"from": "start", "limit": control.PAGE}
            assert asked[1]["arguments"]["from"] == full[-1]["ip-address"]  # the next page
            # The budget bounds what is asked for.
            pages.append({"result": 3, "text": "0 IPv4 lease(s) found."})
            assert await KeaClient(str(path)).leases(budget=150) == ([], 0)
            assert asked[-1]["arguments"]["limit"] == 150
            # An error result, and an answer that is not JSON: one clear error each.
            pages.append({"result": 2, "text": "lease4-get-page: unsupported"})
            with pytest.raises(KeaError, match="unsupported"):
                await KeaClient(str(path)).leases(budget=10)
            pages.append(b"\x00garbage")
            with pytest.raises(KeaError, match="not a JSON answer"):
                await KeaClient(str(path)).leases(budget=10)
        with pytest.raises(KeaError, match=str(path)):
            await KeaClient(str(path)).leases(budget=10)

    asyncio.run(scenario())
