"""STUN server in namespaces: netboot serve with only [stun] enabled, real clients.

Test bed: phone namespace <-> router namespace (nftables NAT variants) <->
server namespace holding the two STUN addresses. For each NAT type the router
emulates, pystun3 and `netboot nat-check` must both report that type.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from netboot.stun import codec
from netboot.stun.codec import ChangeRequest, StunMessage
from tests.netns import Lab, NetbootServer, Netns

pytestmark = pytest.mark.netns

A1, A2 = "203.0.113.10", "203.0.113.11"
P1, P2 = 3478, 3479


def write_config(path: Path, addresses: tuple[str, ...] = (A1, A2), rate: float = 200.0) -> Path:
    addrs = ", ".join(f'"{a}"' for a in addresses)
    path.write_text(
        f"""
[appliance]
interface = "eth0"
state_dir = "{path.parent / "state"}"

[dhcp]
enabled = false
[pnp]
enabled = false
[tftp]
enabled = false
[http]
enabled = false
[lldp]
enabled = false

[stun]
enabled = true
addresses = [{addrs}]
ports = [{P1}, {P2}]
rate_limit = {rate}
""",
        encoding="utf-8",
    )
    return path


def start_server(lab: Lab, tmp_path: Path, addresses: tuple[str, ...] = (A1, A2)) -> Netns:
    server = lab.netns("srv")
    client = lab.netns("cli")
    lab.link(server, "eth0", client, "eth0", f"{A1}/24", "203.0.113.50/24")
    for extra in addresses[1:]:
        server.run(["ip", "addr", "add", f"{extra}/24", "dev", "eth0"])
    NetbootServer(lab, server, write_config(tmp_path / "stun.toml", addresses)).start()
    return client


PROBE = r"""
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 0))
sock.settimeout(3)
sock.sendto(bytes.fromhex(sys.argv[1]), (sys.argv[2], int(sys.argv[3])))
try:
    data, addr = sock.recvfrom(2048)
except socket.timeout:
    print("timeout")
else:
    print(addr[0], addr[1], data.hex(), sock.getsockname()[1])
"""


def probe(ns: Netns, data: bytes, host: str = A1, port: int = P1) -> tuple[str, int, bytes, int]:
    out = ns.run([sys.executable, "-c", PROBE, data.hex(), host, str(port)]).stdout.split()
    if out == ["timeout"]:
        raise TimeoutError
    return out[0], int(out[1]), bytes.fromhex(out[2]), int(out[3])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (ChangeRequest(False, False), (A1, P1)),
        (ChangeRequest(False, True), (A1, P2)),
        (ChangeRequest(True, False), (A2, P1)),
        (ChangeRequest(True, True), (A2, P2)),
    ],
)
def test_change_request_picks_socket(
    lab: Lab, tmp_path: Path, change: ChangeRequest, expected: tuple[str, int]
) -> None:
    client = start_server(lab, tmp_path)
    for tid in (bytes(range(12)), bytes(range(16))):  # RFC 5389 and classic clients
        src, sport, data, local_port = probe(
            client, codec.encode(StunMessage(codec.BINDING_REQUEST, tid, (change,)))
        )
        assert (src, sport) == expected
        msg = codec.decode(data)
        assert msg.transaction_id == tid
        mapped = msg.address(codec.MAPPED_ADDRESS)
        assert mapped is not None
        assert (str(mapped.address), mapped.port) == ("203.0.113.50", local_port)


def test_garbage_gets_silence_and_vovida_client_sees_open_internet(
    lab: Lab, tmp_path: Path
) -> None:
    client = start_server(lab, tmp_path)
    with pytest.raises(TimeoutError):
        probe(client, b"GET / HTTP/1.0\r\n\r\n")
    out = client.run(["stun", A1, "-v"], check=False, timeout=60)
    assert "Open" in out.stdout, out.stdout + out.stderr


def test_single_address_is_binding_only(lab: Lab, tmp_path: Path) -> None:
    client = start_server(lab, tmp_path, (A1,))
    src, sport, data, _ = probe(client, codec.encode(StunMessage(1, bytes(12), ())))
    assert (src, sport) == (A1, P1)
    assert codec.decode(data).address(codec.OTHER_ADDRESS) is None
    with pytest.raises(TimeoutError):
        probe(client, codec.encode(StunMessage(1, bytes(12), (ChangeRequest(True, True),))))
    with pytest.raises(TimeoutError):
        probe(client, codec.encode(StunMessage(1, bytes(12), ())), port=P2)
