"""Rendered files over HTTP and TFTP to a phone holding a DHCP lease, and Action
URL requests from curl, against `netboot serve` in namespaces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from netboot.provisioning.vendorfile import parse_fanvil
from tests.netns import Lab, NetbootServer, Segment, server_config, udhcpc_lease, wait_for

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parent.parent
PHONE_MAC = "00:30:4f:11:3a:f8"
OTHER_MAC = "00:30:4f:11:3a:f9"
SERVER = "192.168.10.2"

CONFIG = """
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.120"
lease_time = 600
ping_check = false
[tftp]
enabled = {tftp}
[http]
enabled = true
port = 80
https_port = 0
bind_mac_files = true
[lldp]
enabled = false
voice_vlan = 100
[phones]
inventory = "{tmp}/phones.csv"
sip_server = "192.168.10.5"
time_zone = "Europe/Berlin"
"""


def make_site(lab: Lab, tmp_path: Path, tftp: bool = False) -> Any:
    wire = Segment(lab, {"srv": f"{SERVER}/24", "phone": None}, macs={"phone": PHONE_MAC})
    (tmp_path / "phones.csv").write_text(
        f"{PHONE_MAC},VIP-2140PT,1001,s3cret,Reception,4711\n"
        f"{OTHER_MAC},VIP-2140PT,1002,other,Office\n"
    )
    state = tmp_path / "state"
    (state / "files").mkdir(parents=True)
    config = tmp_path / "netboot.toml"
    body = CONFIG.format(tmp=tmp_path, tftp=str(tftp).lower())
    url = f"http://{SERVER}/$mac.cfg"
    text = server_config(body, state=state, address=SERVER, url=url, root=state / "files")
    server = wire.server("srv", config, text).start()
    return wire["srv"], wire["phone"], server, config, tmp_path


def lease(phone: Any, tmp: Path) -> str:
    return udhcpc_lease(phone, tmp, configure=True)["ip"]


def render(config: Path, mac: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "netboot.cli", "render", "-c", str(config), mac],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    own = proc.stdout.split(f"==> {mac.replace(':', '')}.cfg (version 1) <==\n", 1)
    assert len(own) == 2, proc.stdout
    return own[1]


def phones(server: NetbootServer) -> dict[str, dict[str, Any]]:
    return {p["mac"]: p for p in json.loads(server.cli("phones", "--json").stdout)}


def test_rendered_file_over_http_to_the_lease_holder(lab: Lab, tmp_path: Path) -> None:
    _srv, phone, server, config, tmp = make_site(lab, tmp_path)
    ip = lease(phone, tmp)
    assert ip.startswith("192.168.10.1")
    expected = render(config, PHONE_MAC)
    own = parse_fanvil(expected)
    assert own.get("SIP1 Register Pswd", "<SIP CONFIG MODULE>") == "s3cret"

    got = phone.run(["curl", "-sS", "-f", f"http://{SERVER}/00304F113AF8.cfg"]).stdout
    assert got == expected
    # $input ID typed on the phone maps to the same file.
    assert phone.run(["curl", "-sS", "-f", f"http://{SERVER}/4711.cfg"]).stdout == expected
    # Another phone's file (its passwords) is not given to this lease holder.
    other = phone.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            f"http://{SERVER}/00304f113af9.cfg",
        ],
        check=False,
    )
    assert other.stdout == "403"

    common = phone.run(["curl", "-sS", "-f", f"http://{SERVER}/f0VIP-2140PThw1.100.cfg"]).stdout
    assert common.startswith("<<VOIP CONFIG FILE>>Version:2.")
    assert parse_fanvil(common).get("VLAN ID", "<QOS CONFIG MODULE>") == "100"

    def fetched() -> bool:
        p = phones(server).get(PHONE_MAC)
        return p is not None and p["state"] == "fetched-own" and p["ip"] == ip

    wait_for(fetched, 20, "the phone's fetches in the registry")


def test_rendered_file_over_tftp_to_the_lease_holder(lab: Lab, tmp_path: Path) -> None:
    _srv, phone, _server, config, tmp = make_site(lab, tmp_path, tftp=True)
    lease(phone, tmp)
    expected = render(config, PHONE_MAC)
    out = tmp / "tftp.cfg"
    phone.run(["tftp", SERVER, "-c", "get", "00304F113AF8.cfg", str(out)], timeout=30)
    assert out.read_text() == expected
    denied = phone.run(
        ["tftp", SERVER, "-c", "get", "00304f113af9.cfg", str(tmp / "x.cfg")], check=False
    )
    assert "Error code 2" in denied.stdout + denied.stderr, denied  # access violation
    assert not (tmp / "x.cfg").exists() or (tmp / "x.cfg").stat().st_size == 0


def test_action_urls_from_curl_change_phone_state(lab: Lab, tmp_path: Path) -> None:
    srv, _phone, server, _config, _tmp = make_site(lab, tmp_path)
    base = f"http://{SERVER}/action"
    ok = srv.run(
        [
            "curl",
            "-sS",
            "-f",
            f"{base}/registration-succeeded?mac=00304f113af8&ip=192.168.10.100"
            "&model=VIP-2140PT&firmware=2.0.3.2991&active_user=1001&remote=$remote",
        ]
    )
    assert ok.stdout == "OK\n"
    srv.run(["curl", "-sS", "-f", f"{base}/registration-failed?mac={OTHER_MAC}&active_user=1002"])
    srv.run(["curl", "-sS", "-f", f"{base}/incoming-call?mac={OTHER_MAC}&call_id=42%40pbx"])
    bad = srv.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{base}/no-such-event?mac=x"],
        check=False,
    )
    assert bad.stdout == "400"

    def states() -> bool:
        p = phones(server)
        return (
            p.get(PHONE_MAC, {}).get("state") == "registered"
            and p.get(OTHER_MAC, {}).get("state") == "registration-failed"
        )

    wait_for(states, 20, "registration states")
    p = phones(server)[PHONE_MAC]
    assert (p["ip"], p["model"], p["firmware"]) == ("192.168.10.100", "VIP-2140PT", "2.0.3.2991")
    timeline = json.loads(server.cli("phones", OTHER_MAC, "--json").stdout)["timeline"]
    calls = [e for e in timeline if e["kind"] == "incoming-call"]
    assert calls and calls[0]["detail"]["call_id"] == "42@pbx"
    assert "action: 192.168.10.2: unknown event 'no-such-event'" in server.log()
