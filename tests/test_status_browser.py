"""The status page in a real headless Chromium, against `netboot serve` in a namespace.

The registry starts with a few phones; then a real DHCP client (dhclient) boots
in a second namespace and must appear on the open page without a reload. A
row click opens the phone's timeline. Screenshots (desktop, phone-sized,
timeline) are kept in the test's directory, printed at the end, and copied to
$NETBOOT_TEST_ARTIFACTS when that is set (CI uploads them).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netboot.events import (
    ActionReceived,
    FileFetched,
    FileNotServed,
    LeaseAcked,
    PnpNotified,
    PnpSubscribed,
)
from netboot.registry import Registry
from tests.browser import Browser, chromium_path
from tests.netns import Lab, Segment, server_config, wait_for

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(chromium_path() is None, reason="chromium not installed"),
]

SERVER = "10.77.0.1"
PLANET = "00:30:4f:11:3a:f8"
YEALINK = "80:5e:c0:00:00:02"
SNOM = "00:04:13:00:00:03"
EVIL_MODEL = "D785<img src=x onerror=window.__pwned=1>"

CONFIG = """
[dhcp]
subnet = "10.77.0.0/24"
pool = "10.77.0.100-10.77.0.120"
router = "10.77.0.1"
lease_time = 600
ping_timeout_ms = 100
[ftp]
enabled = false
[stun]
enabled = false
[http]
port = 80
https_port = 0
"""

DHCLIENT_SCRIPT = """#!/bin/sh
case "$reason" in BOUND|RENEW|REBIND|REBOOT)
    ip addr flush dev "$interface"
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    echo "$new_ip_address" > {out};;
esac
exit 0
"""


def seed(state: Path) -> None:
    """Three phones at different stages, as the services would have recorded them."""
    reg = Registry(state)
    t = time.time() - 120
    reg.record(LeaseAcked(mac=PLANET, ip="10.77.0.20"), now=t)
    reg.record(PnpNotified(mac=PLANET, url="http://10.77.0.1/", to="10.77.0.20:5060"), now=t + 1)
    for n, (name, kind) in enumerate(
        (("f0VIP-2140PThw1.100.cfg", "common"), ("00304f113af8.cfg", "mac"))
    ):
        fetch = FileFetched(
            mac=PLANET,
            file=name,
            file_kind=kind,
            protocol="http",
            bytes=700,
            vendor="PLANET",
            model="VIP-2140PT",
            firmware="2.0.3",
        )
        reg.record(fetch, now=t + 2 + n)
    registered = ActionReceived(
        mac=PLANET, event="registration-succeeded", client="10.77.0.20", line="1001"
    )
    reg.record(registered, now=t + 5)
    reg.record(LeaseAcked(mac=YEALINK, ip="10.77.0.21", vendor="Yealink"), now=t)
    missing = FileNotServed(
        mac=YEALINK,
        file="y000000000002.cfg",
        file_kind="common",
        result="not-found",
        protocol="tftp",
        model="T46U",
    )
    reg.record(missing, now=t + 1)
    # a phone sending markup: it must show as text and never run
    reg.record(PnpSubscribed(mac=SNOM, vendor="snom", model=EVIL_MODEL), now=t)
    reg.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Iterator[Path]:
    out = tmp_path / "screenshots"
    out.mkdir()
    yield out
    print(f"\nstatus page screenshots: {out}")
    target = os.environ.get("NETBOOT_TEST_ARTIFACTS")
    if target:
        dest = Path(target) / "status-page"
        shutil.copytree(out, dest, dirs_exist_ok=True)
        print(f"copied to {dest}")


class Site:
    """netboot serve (DHCP + HTTP) in `srv` with a seeded registry, a client namespace."""

    def __init__(self, lab: Lab, tmp: Path, extra: str = "") -> None:
        wire = Segment(lab, {"srv": f"{SERVER}/24", "cli": None})
        self.srv, self.cli = wire["srv"], wire["cli"]
        state = tmp / "state"
        (state / "files").mkdir(parents=True)
        seed(state)
        url = f"http://{SERVER}/$mac.cfg"
        text = server_config(
            CONFIG + extra, state=state, url=url, root=state / "files", name="browser-test"
        )
        self.server = wire.server("srv", tmp / "netboot.toml", text).start()


def test_status_page_in_chromium(lab: Lab, tmp_path: Path, artifacts: Path) -> None:
    site = Site(lab, tmp_path)
    srv, cli, server = site.srv, site.cli, site.server

    browser = Browser(lab, srv, tmp_path)
    try:
        browser.goto(f"http://{SERVER}/")
        # the page's script fetched /api/phones and rendered the seeded phones
        wait_for(
            lambda: browser.js("document.body.dataset.loaded") == "3", 30, "3 phones on the page"
        )
        rows = browser.js(
            "Array.from(document.querySelectorAll('#phones tr.phone')).map("
            "r => Array.from(r.cells).map(c => c.textContent))"
        )
        by_mac = {row[0]: row for row in rows}
        assert set(by_mac) == {PLANET, YEALINK, SNOM}
        assert by_mac[PLANET][2:5] == ["PLANET VIP-2140PT", "2.0.3", "registered"]
        assert by_mac[PLANET][7] == "yes"
        assert by_mac[YEALINK][4] == "failed"
        # shown as text; the vendor under its family's one name (registry: vendors.family_label)
        assert by_mac[SNOM][2] == f"Snom {EVIL_MODEL}"
        assert browser.js("document.querySelectorAll('#phones img').length") == 0
        assert browser.js("typeof window.__pwned") == "undefined"
        counts = browser.js(
            "Object.fromEntries(Array.from(document.querySelectorAll('#counts li')).map("
            "li => [li.querySelector('span').textContent, +li.querySelector('b').textContent]))"
        )
        assert counts["phones"] == 3 and counts["registered"] == 1 and counts["failed"] == 1

        # a phone boots while the page is open: it appears without a reload
        browser.js("window.__sameDocument = 1")
        mac = json.loads(cli.run(["ip", "-j", "link", "show", "eth0"]).stdout)[0]["address"]
        script = tmp_path / "dhclient-script"
        script.write_text(DHCLIENT_SCRIPT.format(out=tmp_path / "dhclient.ip"))
        script.chmod(0o755)
        cli.run(
            [
                "dhclient",
                "-1",
                "-sf",
                str(script),
                "-lf",
                str(tmp_path / "dhclient.leases"),
                "-pf",
                str(tmp_path / "dhclient.pid"),
                "eth0",
            ],
            timeout=40,
        )
        ip = (tmp_path / "dhclient.ip").read_text().strip()

        def booted_row() -> list[str] | None:
            found = browser.js(
                "(function(){var r=Array.from(document.querySelectorAll('#phones tr.phone'))"
                f".find(r => r.cells[0].textContent === {json.dumps(mac)});"
                "return r ? Array.from(r.cells).map(c => c.textContent) : null;})()"
            )
            return found if found and found[1] == ip else None

        row = wait_for(booted_row, 30, f"the booted phone {mac} ({ip}) on the open page")
        assert row[4] == "url-sent"
        assert browser.js("window.__sameDocument") == 1, "the page reloaded instead of updating"
        assert browser.js("document.body.dataset.loaded") == "4"
        browser.screenshot(artifacts / "status-desktop.png")

        # phone-sized screen: rows become cards, nothing wider than the screen
        browser.viewport(390, 844, mobile=True)
        wait_for(
            lambda: (
                browser.js("innerWidth") == 390
                and browser.js("getComputedStyle(document.querySelector('thead')).display")
                == "none"
            ),
            10,
            "the narrow layout",
        )
        assert browser.js("document.documentElement.scrollWidth <= innerWidth")
        browser.screenshot(artifacts / "status-phone.png")
        browser.viewport(1280, 800)

        # clicking a row (not its link) opens that phone's timeline
        browser.click(f"#phones tr.phone[data-href='/phones/{PLANET}'] td.ip")
        wait_for(
            lambda: (
                browser.js("location.pathname") == f"/phones/{PLANET}"
                and browser.js("document.readyState") == "complete"
            ),
            20,
            "the timeline page",
        )
        events = browser.js(
            "Array.from(document.querySelectorAll('#events tr')).map("
            "r => [r.cells[1].textContent, r.cells[2].textContent])"
        )
        assert events == [
            ["dhcp", "ack"],
            ["pnp", "notify"],
            ["http", "fetch"],
            ["http", "fetch"],
            ["action", "registration-succeeded"],
        ]
        assert browser.js("document.getElementById('state').textContent") == "registered"
        browser.screenshot(artifacts / "timeline.png")
        assert browser.js_errors == []
    finally:
        browser.close()
        print(
            f"\nnetboot log:\n{server.log()[-2000:]}" if server.proc and server.proc.poll() else ""
        )
    for name in ("status-desktop.png", "status-phone.png", "timeline.png"):
        png = (artifacts / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000, name


def test_status_page_behind_credentials(lab: Lab, tmp_path: Path) -> None:
    """With [http] credentials the browser is challenged; once the user has
    answered, the page and its 2 s refreshes (/api/phones) go through."""
    site = Site(lab, tmp_path, 'username = "installer"\npassword = "correct horse"\n')  # in [http]
    browser = Browser(lab, site.srv, tmp_path)
    try:
        browser.answer_auth("installer", "correct horse")
        browser.goto(f"http://{SERVER}/")
        wait_for(
            lambda: browser.js("document.body.dataset.loaded") == "3", 30, "the page behind auth"
        )
        assert browser.auth_challenges, "the browser was never asked for credentials"
        assert {c["scheme"].lower() for c in browser.auth_challenges} <= {"basic", "digest"}
        print("challenges answered:", browser.auth_challenges)
        # later refreshes keep working with the credentials the browser holds
        first = browser.js("document.getElementById('live').textContent")
        wait_for(
            lambda: browser.js("document.getElementById('live').textContent") not in (first, ""),
            15,
            "a second refresh",
        )
        assert browser.js("document.getElementById('live').textContent").startswith("updated")
        assert browser.js_errors == []
    finally:
        browser.close()


def test_health_pools_lease_expiry_and_unseen_inventory_in_chromium(
    lab: Lab, tmp_path: Path
) -> None:
    never = "00:30:4f:99:00:01"
    inventory = tmp_path / "phones.csv"
    inventory.write_text(
        f"{PLANET},VIP-2140PT,1001,pw1,Reception\n{never},VIP-2140PT,1002,pw2,Storage room\n"
    )
    site = Site(lab, tmp_path, f'\n[phones]\ninventory = "{inventory}"\n')
    browser = Browser(lab, site.srv, tmp_path)
    try:
        browser.goto(f"http://{SERVER}/")
        wait_for(lambda: browser.js("document.body.dataset.loaded") == "3", 30, "the page")
        states = browser.js(
            "Object.fromEntries(Array.from(document.querySelectorAll('#services li')).map("
            "li => [li.dataset.service, li.querySelector('span').textContent]))"
        )
        assert states == {
            "dhcp": "running",
            "pnp": "disabled",
            "tftp": "disabled",
            "http": "running",
            "ftp": "disabled",
            "lldp": "disabled",
            "stun": "disabled",
        }
        assert browser.js("document.getElementById('alarm').textContent") == ""
        about = browser.js("document.getElementById('about').textContent")
        assert about.startswith("netboot ") and " up " in about and "serving dhcp, http" in about
        unseen = browser.js(
            "Array.from(document.querySelectorAll('#unseen tr')).map("
            "r => Array.from(r.cells).map(c => c.textContent))"
        )
        assert unseen == [[never, "VIP-2140PT", "1002", "Storage room"]]

        # a phone boots: its lease expiry appears in its row, the pool counts it
        mac = json.loads(site.cli.run(["ip", "-j", "link", "show", "eth0"]).stdout)[0]["address"]
        script = tmp_path / "dhclient-script"
        script.write_text(DHCLIENT_SCRIPT.format(out=tmp_path / "dhclient.ip"))
        script.chmod(0o755)
        site.cli.run(
            ["dhclient", "-1", "-sf", str(script), "-lf", str(tmp_path / "dhclient.leases"),
             "-pf", str(tmp_path / "dhclient.pid"), "eth0"],
            timeout=40,
        )  # fmt: skip

        def booted() -> list[str] | None:
            found = browser.js(
                "(function(){var r=Array.from(document.querySelectorAll('#phones tr.phone'))"
                f".find(r => r.cells[0].textContent === {json.dumps(mac)});"
                "return r ? Array.from(r.cells).map(c => c.textContent) : null;})()"
            )
            return found if found and found[9] else None

        row = wait_for(booted, 30, "the booted phone's lease expiry")
        assert row[9] in ("in 9 min", "in 10 min")  # lease_time = 600
        assert row[8] == ""  # no voice-VLAN scope here
        pool = browser.js(
            "Array.from(document.querySelectorAll('#pools tr')).map("
            "r => Array.from(r.cells).map(c => c.textContent))"
        )
        assert pool == [["eth0", "10.77.0.100-10.77.0.120", "1", "0", "20", "4.8 %"]]

        # what a browser asks for by itself is no phone fetch
        status = browser.js("fetch('/favicon.ico').then(r => r.status)")
        assert status == 404
        assert browser.js_errors == []
    finally:
        browser.close()
    assert "favicon" not in site.server.log()
    reg = Registry(tmp_path / "state")
    try:
        assert all(
            e.detail.get("file") != "favicon.ico" for p in reg.phones() for e in reg.timeline(p.mac)
        )
    finally:
        reg.close()
