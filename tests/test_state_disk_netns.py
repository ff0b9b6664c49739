"""`netboot serve` with a tiny tmpfs as state_dir, filled up while it serves,
full before it starts, and read-only (issue 16): a real client (udhcpc) still
gets its lease, the lease is on disk, HTTP and TFTP still serve, /metrics
shows the failed writes, and the log has no traceback."""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from netboot.state.leases import read_leases
from tests.netns import REPO, Lab, NetbootServer, Segment, server_config, udhcpc_lease, wait_for
from tests.tmpfs import fill, remount, tiny_tmpfs

pytestmark = pytest.mark.netns

SERVER = "192.168.10.2"
CONFIG = """
[dhcp]
subnet = "192.168.0.0/16"
pool = "192.168.1.1-192.168.40.250"
lease_time = 600
ping_check = false
[tftp]
enabled = true
[http]
enabled = true
port = 80
https_port = 443
"""

# Broadcast DISCOVERs from random MACs, as a flooder on the segment would send.
FLOOD = """
import os, socket, sys, time
sys.path.insert(0, {repo!r})
from netboot.dhcp import codec
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
for i in range(int(sys.argv[1])):
    mac = bytes((2,)) + os.urandom(5)
    msg = codec.DhcpMessage(op=1, xid=i, chaddr=mac, flags=0x8000, options={{53: b"\\x01"}})
    s.send(codec.build_udp_frame(mac, codec.BROADCAST_MAC, 0, 0xFFFFFFFF, 68, 67, codec.encode(msg)))
    if i % 200 == 199:
        time.sleep(0.02)  # bounded rate: ~10 000 frames/s at most
"""


def site(lab: Lab, tmp_path: Path, state: Path) -> tuple[Any, Any, NetbootServer]:
    wire = Segment(lab, {"srv": f"{SERVER}/16", "phone": None})
    root = tmp_path / "files"
    root.mkdir()
    (root / "common.cfg").write_text("<<VOIP CONFIG FILE>>\n")
    url = f"http://{SERVER}/$mac.cfg"
    text = server_config(
        CONFIG, state=state, address=SERVER, url=url, root=root, state_reserve_kib=1024
    )
    return wire["srv"], wire["phone"], wire.server("srv", tmp_path / "netboot.toml", text)


def new_mac(phone: Any, n: int) -> str:
    mac = f"00:30:4f:99:00:{n:02x}"
    phone.run(["ip", "addr", "flush", "dev", "eth0"])
    phone.run(["ip", "link", "set", "eth0", "address", mac])
    return mac


def files_still_served(phone: Any, tmp_path: Path) -> None:
    got = phone.run(["curl", "-sS", "-f", "-m", "10", f"http://{SERVER}/common.cfg"]).stdout
    assert got == "<<VOIP CONFIG FILE>>\n"
    out = tmp_path / "tftp.cfg"
    phone.run(["tftp", SERVER, "-c", "get", "common.cfg", str(out)], timeout=30)
    assert out.read_text() == "<<VOIP CONFIG FILE>>\n"


def metric(phone: Any, name: str) -> float:
    text = phone.run(["curl", "-sS", "-f", "-m", "10", f"http://{SERVER}/metrics"]).stdout
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def no_traceback(server: NetbootServer) -> None:
    log = server.log()
    assert "Traceback" not in log, log
    assert server.proc is not None and server.proc.poll() is None, log


def test_state_dir_fills_up_while_serving(lab: Lab, tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "state", 6 * 1024) as state:
        _srv, phone, server = site(lab, tmp_path, state)
        server.start()
        first = new_mac(phone, 1)
        udhcpc_lease(phone, tmp_path, configure=True)
        fill(state)
        # 3000 random MACs: the registry's writes now fail for lack of room.
        script = tmp_path / "flood.py"
        script.write_text(FLOOD.format(repo=str(REPO)))
        phone.run([sys.executable, str(script), "3000"], timeout=60)
        wait_for(
            lambda: "registry: cannot write to state_dir (the disk is full" in server.log(),
            20,
            "the registry's failed write to be logged",
        )
        second = new_mac(phone, 2)
        got = udhcpc_lease(phone, tmp_path, configure=True)
        on_disk = {x.mac: str(x.address) for x in read_leases(state) if x.state == "bound"}
        assert on_disk.get(second) == got["ip"], on_disk
        assert first in on_disk
        files_still_served(phone, tmp_path)
        assert (
            metric(phone, 'netboot_state_write_failures_total{reason="disk-full",store="registry"}')
            >= 1
        )
        assert metric(phone, "netboot_dhcp_acks_withheld_total") == 0
        page = phone.run(["curl", "-sS", "-f", "-m", "10", f"http://{SERVER}/"]).stdout
        assert "registry: cannot write to state_dir (the disk is full" in page
        no_traceback(server)
        # One line per failing store, not one per failed write.
        assert len(re.findall(r"registry: cannot write to state_dir", server.log())) <= 2
        assert server.stop() == 0
        assert "Traceback" not in server.log()


def test_starting_with_a_full_state_dir(lab: Lab, tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "state", 6 * 1024) as state:
        _srv, phone, server = site(lab, tmp_path, state)
        server.start()
        new_mac(phone, 1)
        udhcpc_lease(phone, tmp_path, configure=True)
        assert server.stop() == 0
        assert (state / "reserve").exists()
        fill(state)
        server.start()
        mac = new_mac(phone, 3)
        got = udhcpc_lease(phone, tmp_path, configure=True)
        on_disk = {x.mac: str(x.address) for x in read_leases(state) if x.state == "bound"}
        assert on_disk.get(mac) == got["ip"], server.log()
        files_still_served(phone, tmp_path)
        assert "released the 1024 KiB disk reserve for DHCP leases" in server.log()
        assert metric(phone, "netboot_state_reserve_released") == 1
        no_traceback(server)
        server.stop(signal.SIGTERM)
        assert "Traceback" not in server.log()


def test_read_only_state_dir_is_one_line(lab: Lab, tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "state", 2048) as state:
        _srv, phone, server = site(lab, tmp_path, state)
        remount(state, "ro")
        server.start()
        new_mac(phone, 4)
        phone.run(["ip", "addr", "add", "192.168.200.9/16", "dev", "eth0"])
        files_still_served(phone, tmp_path)
        log = server.log()
        assert (
            len(re.findall(r"leases: cannot write to state_dir \(state_dir is read-only", log)) == 1
        ), log
        assert "https: not serving: cannot write the generated certificate" in log
        no_traceback(server)
        # DHCP answers but sends no ACK for a lease it cannot save.
        proc = phone.run(
            [
                "busybox",
                "udhcpc",
                "-i",
                "eth0",
                "-f",
                "-q",
                "-n",
                "-t",
                "2",
                "-T",
                "1",
                "-s",
                "/bin/true",
            ],
            check=False,
            timeout=30,
        )
        assert proc.returncode != 0
        wait_for(
            lambda: metric(phone, "netboot_dhcp_acks_withheld_total") >= 1, 10, "withheld ACKs"
        )
        assert metric(phone, 'netboot_state_writable{store="leases"}') == 0
        # The phone's timeline (the registry lives in memory) says why.
        api = phone.run(
            ["curl", "-sS", "-f", "-m", "10", f"http://{SERVER}/api/phones/00:30:4f:99:00:04"]
        ).stdout
        kinds = [e["kind"] for e in json.loads(api)["events"]]
        assert "ack-withheld" in kinds and "ack" not in kinds, kinds
        listed = phone.run(["curl", "-sS", "-f", "-m", "10", f"http://{SERVER}/api/phones"]).stdout
        assert "00:30:4f:99:00:04" in [p["mac"] for p in json.loads(listed)["phones"]]
        no_traceback(server)
        server.stop()


def test_link_down_and_up_is_a_warning_not_a_traceback(lab: Lab, tmp_path: Path) -> None:
    """Issue 16: link down logged unhandled ENETDOWN tracebacks from the DHCP
    transport. Down, traffic, up: one warning at most, then leases again."""
    with tiny_tmpfs(tmp_path / "state", 6 * 1024) as state:
        srv, phone, server = site(lab, tmp_path, state)
        server.start()
        new_mac(phone, 5)
        script = tmp_path / "flood.py"
        script.write_text(FLOOD.format(repo=str(REPO)))
        for _ in range(3):
            phone.run([sys.executable, str(script), "50"], timeout=30)
            srv.run(["ip", "link", "set", "eth0", "down"])
            phone.run([sys.executable, str(script), "50"], check=False, timeout=30)
            srv.run(["ip", "link", "set", "eth0", "up"])
        srv.run(["ip", "addr", "replace", f"{SERVER}/16", "dev", "eth0"])
        wait_for(
            lambda: "state UP" in srv.run(["ip", "link", "show", "eth0"]).stdout, 10, "link up"
        )
        got = udhcpc_lease(phone, tmp_path, configure=True)
        assert got["ip"].startswith("192.168.")
        no_traceback(server)


def test_a_random_mac_flood_is_pruned_while_serving(lab: Lab, tmp_path: Path) -> None:
    """5000 random-MAC DISCOVERs: the unknown-MAC budget bites within seconds
    (not at the next minutely prune), a real client still gets its lease, and
    the status page stays small."""
    state = tmp_path / "state"
    _srv, phone, server = site(lab, tmp_path, state)
    config = tmp_path / "netboot.toml"
    config.write_text(config.read_text() + "[registry]\nmax_unknown = 200\n")
    server.start()
    script = tmp_path / "flood.py"
    script.write_text(FLOOD.format(repo=str(REPO)))
    phone.run([sys.executable, str(script), "5000"], timeout=60)
    mac = new_mac(phone, 6)
    udhcpc_lease(phone, tmp_path, configure=True)

    def listed() -> list[dict[str, Any]] | None:
        data = phone.run(["curl", "-sS", "-f", "-m", "10", f"http://{SERVER}/api/phones"]).stdout
        phones: list[dict[str, Any]] = json.loads(data)["phones"]
        return phones if len(phones) <= 201 else None

    phones = wait_for(listed, 30, "the unknown-MAC budget to bite")
    assert mac in [p["mac"] for p in phones]
    assert metric(phone, 'netboot_registry_pruned_total{reason="unknown"}') >= 4000
    page = phone.run(["curl", "-sS", "-f", "-m", "10", f"http://{SERVER}/"]).stdout
    assert len(page) < 200_000, len(page)
    no_traceback(server)
    server.stop()
