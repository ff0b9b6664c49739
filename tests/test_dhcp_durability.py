"""SIGKILL under load never hands one address to two MACs, and every ACKed lease is on disk."""

from __future__ import annotations

import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from netboot.state.leases import read_leases
from tests.netns import Lab, Segment, server_config, stop_process, wait_for

pytestmark = pytest.mark.netns

CONFIG = """
[dhcp]
subnet = "10.20.0.0/16"
pool = "10.20.1.1-10.20.20.250"
lease_time = 3600
"""

# A relay-style client: many DORA exchanges in flight at once; each ACK is
# appended to a file (and flushed) the moment it arrives.
CLIENT = """
import os, socket, struct, sys, time
sys.path.insert(0, {repo!r})
from netboot.dhcp import codec
prefix, out_path, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.20.0.2", 67))
s.settimeout(0.05)
out = open(out_path, "a", buffering=1)
server = ("10.20.0.1", 67)
def mac(i):
    return bytes((2, prefix)) + i.to_bytes(4, "big")
def send(i, options):
    msg = codec.DhcpMessage(op=1, xid=i, chaddr=mac(i), hops=1, giaddr=0x0A140002, options=options)
    s.sendto(codec.encode(msg), server)
deadline = time.monotonic() + limit
next_client = 1
while time.monotonic() < deadline:
    for _ in range(20):
        send(next_client, {{53: b"\\x01"}})
        next_client += 1
    try:
        while True:
            data, _ = s.recvfrom(4096)
            reply = codec.decode(data)
            if reply.msg_type == codec.OFFER:
                send(reply.xid, {{53: b"\\x03", 50: struct.pack("!I", reply.yiaddr), 54: reply.options[54]}})
            elif reply.msg_type == codec.ACK:
                out.write(f"{{reply.mac}} {{socket.inet_ntoa(struct.pack('!I', reply.yiaddr))}}\\n")
    except (socket.timeout, ConnectionRefusedError):
        pass
"""


def acked(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = [line.split() for line in path.read_text().splitlines()]
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def test_sigkill_under_load_keeps_every_acked_lease(lab: Lab, tmp_path: Path) -> None:
    wire = Segment(lab, {"srv": "10.20.0.1/16", "cli": "10.20.0.2/16"})
    cli = wire["cli"]
    state = tmp_path / "state"
    text = server_config(CONFIG, state=state, url="http://10.20.0.1/$mac.cfg")
    script = tmp_path / "client.py"
    script.write_text(CLIENT.format(repo=str(Path(__file__).resolve().parent.parent)))

    server = wire.server("srv", tmp_path / "netboot.toml", text).start()
    first = tmp_path / "first.txt"
    client = lab.spawn(cli, [sys.executable, str(script), "1", str(first), "30"])
    wait_for(lambda: len(acked(first)) >= 400, 30, "400 ACKs before the kill")
    server.stop(signal.SIGKILL)  # mid-load: commits and replies are in flight
    stop_process(client)
    before = acked(first)

    on_disk = {
        lease.mac: str(lease.address) for lease in read_leases(state) if lease.state == "bound"
    }
    missing = {mac: ip for mac, ip in before.items() if on_disk.get(mac) != ip}
    assert not missing, f"ACKed but not on disk: {list(missing.items())[:5]}"

    server.start()
    # The registry's ack events are written a flush after the ACK (0.25 s): a
    # kill loses the latest, and the restart recovers them from the leases
    # (Registry.reconcile) before it is ready.
    with sqlite3.connect(state / "netboot.db") as conn:
        with_ack = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT mac FROM events WHERE service = 'dhcp' AND kind = 'ack'"
            )
        }
    assert not set(before) - with_ack, (
        f"ACKed without an ack event: {sorted(set(before) - with_ack)[:5]}"
    )
    second = tmp_path / "second.txt"
    client = lab.spawn(cli, [sys.executable, str(script), "2", str(second), "30"])
    wait_for(lambda: len(acked(second)) >= 400, 30, "400 ACKs after the restart")
    stop_process(client)
    after = acked(second)
    reused = set(before.values()) & set(after.values())
    assert not reused, f"addresses handed to a second MAC: {sorted(reused)[:5]}"
