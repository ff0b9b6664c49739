"""A phone's whole provisioning path in namespaces, as `netboot phones` shows it.

The phone namespace takes a DHCP lease with busybox udhcpc (PLANET vendor
class), multicasts a real sipp ua-profile SUBSCRIBE from the leased address and
answers the NOTIFY, then fetches its model's common file with curl over HTTP
and its per-MAC file with tftp-hpa. `netboot phones --json` must then show the
address, the vendor/model/firmware the SUBSCRIBE carried and the state
fetched-own, and `netboot phones MAC` the timeline oldest first: the lease, the
NOTIFY with its URL, then both fetches in that order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.netns import Lab, Segment, server_config, udhcpc_lease, wait_for
from tests.test_pnp_netns import (
    ANSWER_NOTIFY,
    PLANET,
    RECV_NOTIFY,
    RECV_OK,
    SUBSCRIBE,
    scenario,
)

pytestmark = pytest.mark.netns

SERVER = "192.168.10.2"
MAC = "00:30:4f:a9:99:48"  # PLANET's `MAC=00304fa99948` in the SUBSCRIBE
URL = f"http://{SERVER}/$mac.cfg"
COMMON = "f0VIP-2140PThw1.100.cfg"
OWN = "00304fa99948.cfg"

CONFIG = """
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.120"
lease_time = 600
ping_check = false
[pnp]
enabled = true
policy = "all"
[tftp]
enabled = true
port = 69
[http]
enabled = true
port = 80
https_port = 0
bind_mac_files = true
"""


def test_netboot_phones_shows_dhcp_pnp_and_both_fetches(lab: Lab, tmp_path: Path) -> None:
    wire = Segment(lab, {"srv": f"{SERVER}/24", "phone": None}, macs={"phone": MAC})
    phone = wire["phone"]
    root = tmp_path / "root"
    root.mkdir()
    (root / COMMON).write_bytes(b"<<VOIP CONFIG FILE>>Version:2.0000000000\ncommon\n")
    (root / OWN).write_bytes(b"<<VOIP CONFIG FILE>>Version:2.0000000000\nSIP1 Pswd :s3cret\n")
    text = server_config(CONFIG, state=tmp_path / "state", address=SERVER, url=URL, root=root)
    server = wire.server("srv", tmp_path / "netboot.toml", text).start()

    # 1. DHCP: a real client with the PLANET vendor class.
    options = ["-V", "PLANET VIP-2140PT"]
    ip = udhcpc_lease(phone, tmp_path, args=options, configure=True, timeout=30)["ip"]
    assert ip.startswith("192.168.10.1"), ip

    # 2. SIP PnP from the leased address: SUBSCRIBE to the group, 200, NOTIFY, answer.
    phone.run(["ip", "route", "add", "224.0.0.0/4", "dev", "eth0"])
    xml = tmp_path / "planet.xml"
    xml.write_text(
        scenario(
            SUBSCRIBE.format(via_extra="", **PLANET),
            RECV_OK,
            RECV_NOTIFY,
            ANSWER_NOTIFY.format(server=SERVER),
        )
    )
    sipp = phone.run(
        [
            "sipp",
            "-sf",
            str(xml),
            "224.0.1.75:5060",
            "-i",
            ip,
            "-p",
            "5060",
            "-m",
            "1",
            "-nd",
            "-timeout",
            "10s",
            "-timeout_error",
            "-nostdin",
        ],
        timeout=25,
        check=False,
    )
    assert sipp.returncode == 0, f"{sipp.stdout[-1500:]}\n{server.log()[-2000:]}"

    # 3. The files: the common one with curl over HTTP, the own one with tftp-hpa.
    common = phone.run(["curl", "-sS", "-f", f"http://{SERVER}/{COMMON}"]).stdout
    assert common == (root / COMMON).read_text()
    local = tmp_path / "own.cfg"
    phone.run(["tftp", "-m", "binary", SERVER, "-c", "get", OWN, str(local)], timeout=20)
    assert local.read_bytes() == (root / OWN).read_bytes()

    def row() -> dict[str, Any] | None:
        rows = json.loads(server.cli("phones", "--json").stdout)
        mine = next((p for p in rows if p["mac"] == MAC), None)
        return mine if mine is not None and mine["state"] == "fetched-own" else None

    record = wait_for(row, 20, "the phone in state fetched-own")
    assert record["ip"] == ip
    assert (record["vendor"], record["model"], record["firmware"]) == (
        "PLANET",
        "VIP-2140PT",
        "2.0.3.2991",
    )
    assert record["vendor_class"] == "PLANET VIP-2140PT"
    assert record["url"] == URL
    assert record["files"] == 2
    assert len(json.loads(server.cli("phones", "--json").stdout)) == 1

    # The timeline, oldest first, as an installer reads it.
    lines = server.cli("phones", MAC).stdout.splitlines()
    assert lines[0].startswith(f"{MAC}  {ip}  PLANET VIP-2140PT  firmware 2.0.3.2991")
    assert "state fetched-own" in lines[0]

    def at(*needles: str) -> int:
        found = [i for i, line in enumerate(lines) if all(n in line for n in needles)]
        assert found, f"no timeline line with {needles}:\n" + "\n".join(lines)
        return found[0]

    steps = [
        at("dhcp ack", f"ip={ip}"),
        at("pnp notify", f"url={URL}"),
        at("http fetch", f"file={COMMON}", "result=ok", "file_kind=common"),
        at("tftp fetch", f"file={OWN}", "result=ok", "file_kind=mac"),
    ]
    assert steps == sorted(steps) and len(set(steps)) == 4, "\n".join(lines)
    assert at("pnp subscribe") < steps[1]
