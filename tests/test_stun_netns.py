"""STUN server in namespaces: netboot serve with only [stun] enabled, real clients.

Test bed: phone namespace <-> router namespace (nftables NAT variants) <->
server namespace holding the two STUN addresses. For each NAT type the router
emulates, pystun3 and `netboot nat-check` must both report that type.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from netboot.stun import codec
from netboot.stun.codec import ChangeRequest, StunMessage
from tests.netns import REPO, Lab, NetbootServer, Netns, Segment, server_config

pytestmark = pytest.mark.netns

A1, A2 = "203.0.113.10", "203.0.113.11"
P1, P2 = 3478, 3479


def write_config(path: Path, addresses: tuple[str, ...] = (A1, A2), rate: float = 200.0) -> Path:
    addrs = ", ".join(f'"{a}"' for a in addresses)
    stun = (
        f"[stun]\nenabled = true\naddresses = [{addrs}]\nports = [{P1}, {P2}]\nrate_limit = {rate}"
    )
    path.write_text(server_config(stun, state=path.parent / "state"), encoding="utf-8")
    return path


def start_server(lab: Lab, tmp_path: Path, addresses: tuple[str, ...] = (A1, A2)) -> Netns:
    segment = Segment(lab, {"srv": f"{A1}/24", "cli": "203.0.113.50/24"})
    for extra in addresses[1:]:
        segment["srv"].run(["ip", "addr", "add", f"{extra}/24", "dev", "eth0"])
    NetbootServer(lab, segment["srv"], write_config(tmp_path / "stun.toml", addresses)).start()
    return segment["cli"]


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


# --- the NAT bed ------------------------------------------------------------------

ROUTER_WAN = "203.0.113.1"
PHONE_PRIVATE = "10.0.0.2"
PHONE_PUBLIC = "192.0.2.2"

MASQUERADE_PORT_RESTRICTED = """
table ip nat {
  chain postrouting { type nat hook postrouting priority srcnat; oifname "wan" masquerade; }
}
table ip filter {
  chain input { type filter hook input priority filter; iifname "wan" ct state new drop; }
  chain forward { type filter hook forward priority filter; iifname "wan" ct state new drop; }
}
"""
ONE_TO_ONE = f"""
table ip nat {{
  chain prerouting {{
    type nat hook prerouting priority dstnat;
    iifname "wan" ip daddr {ROUTER_WAN} meta l4proto udp dnat to {PHONE_PRIVATE};
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat;
    oifname "wan" ip saddr {PHONE_PRIVATE} snat to {ROUTER_WAN};
  }}
}}
"""
RULES = {
    # no NAT, no filter: the phone has a public address
    "open-internet": "",
    # no NAT, only replies (established conntrack) get in
    "symmetric-udp-firewall": """
table ip filter {
  chain forward { type filter hook forward priority filter; iifname "wan" ct state new drop; }
}
""",
    # 1:1 NAT: anyone may send to the phone's public address and port
    "full-cone": ONE_TO_ONE,
    # 1:1 NAT; inbound only from remote IPs the phone's port has sent to
    "restricted-cone": ONE_TO_ONE
    + """
table ip filter {
  set peers { type ipv4_addr . inet_service; flags dynamic, timeout; timeout 120s; }
  chain forward {
    type filter hook forward priority filter;
    iifname "lan" meta l4proto udp update @peers { ip daddr . udp sport };
    iifname "wan" meta l4proto udp ip saddr . udp dport @peers accept;
    iifname "wan" meta l4proto udp drop;
  }
}
""",
    # masquerade keeps the port per source; only replies from the exact peer get in.
    # New inbound flows are dropped in input too, else an unreplied conntrack
    # entry would make SNAT pick another port (reads as symmetric).
    "port-restricted-cone": MASQUERADE_PORT_RESTRICTED,
    # a new random port for every destination
    "symmetric": MASQUERADE_PORT_RESTRICTED.replace("masquerade;", "masquerade fully-random;"),
}
EXPECTED_PYSTUN = {
    "open-internet": "Open Internet",
    "symmetric-udp-firewall": "Symmetric UDP Firewall",
    "full-cone": "Full Cone",
    "restricted-cone": "Restric NAT",
    "port-restricted-cone": "Restric Port NAT",
    "symmetric": "Symmetric NAT",
}
EXPECTED_5780 = {  # (mapping, filtering)
    "open-internet": ("endpoint-independent", "endpoint-independent"),
    "symmetric-udp-firewall": ("endpoint-independent", "address-and-port-dependent"),
    "full-cone": ("endpoint-independent", "endpoint-independent"),
    "restricted-cone": ("endpoint-independent", "address-dependent"),
    "port-restricted-cone": ("endpoint-independent", "address-and-port-dependent"),
    "symmetric": ("address-and-port-dependent", "address-and-port-dependent"),
}

PYSTUN = """
import sys, stun
print(stun.get_ip_info(source_ip=sys.argv[1], source_port=54320, stun_host=sys.argv[2]))
"""


def nat_bed(lab: Lab, tmp_path: Path, variant: str) -> tuple[Netns, str]:
    phone, router, server = lab.netns("phone"), lab.netns("nat"), lab.netns("srv")
    public = variant in ("open-internet", "symmetric-udp-firewall")
    phone_ip, router_lan = (PHONE_PUBLIC, "192.0.2.1") if public else (PHONE_PRIVATE, "10.0.0.1")
    lab.link(phone, "eth0", router, "lan", f"{phone_ip}/24", f"{router_lan}/24")
    lab.link(router, "wan", server, "eth0", f"{ROUTER_WAN}/24", f"{A1}/24")
    server.run(["ip", "addr", "add", f"{A2}/24", "dev", "eth0"])
    server.run(["ip", "route", "add", "default", "via", ROUTER_WAN])
    phone.run(["ip", "route", "add", "default", "via", router_lan])
    router.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    if RULES[variant]:
        rules = tmp_path / f"{variant}.nft"
        rules.write_text(RULES[variant], encoding="utf-8")
        router.run(["nft", "-f", str(rules)])
    NetbootServer(lab, server, write_config(tmp_path / "stun.toml")).start()
    return phone, phone_ip


def nat_check(phone: Netns, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "netboot.cli", "nat-check", "--server", A1, *args]
    return subprocess.run(
        phone.argv([*argv, "-c", str(tmp_path / "stun.toml"), "--timeout", "0.4"]),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )


ADVICE = {  # what the installer reads (plain output)
    "symmetric": "symmetric NAT: STUN will not help; keep Rport on (SIP1 Enable Rport = 1)",
    "port-restricted-cone": (
        f"port-restricted cone: enable STUN (SIP1 NAT Type = 1) with this server "
        f"(STUN Server = {A1}, STUN Port = {P1}"
    ),
}


@pytest.mark.parametrize("variant", list(RULES))
def test_nat_types(lab: Lab, tmp_path: Path, variant: str) -> None:
    phone, phone_ip = nat_bed(lab, tmp_path, variant)
    # pystun3 as shipped (real source address given) and nat-check run side by side
    pystun = lab.spawn(
        phone,
        [sys.executable, "-c", PYSTUN, phone_ip, A1],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    check = nat_check(phone, tmp_path, "--json", "--save")
    out, err = pystun.communicate(timeout=120)
    nat_type, _, _ = ast.literal_eval(out.strip())  # pystun3 reports the last test's address
    assert nat_type == EXPECTED_PYSTUN[variant], (out, err)
    result = json.loads(check.stdout or "{}") if check.stdout else {}
    assert result.get("nat_type") == variant, check.stdout + check.stderr
    assert (result["mapping"], result["filtering"]) == EXPECTED_5780[variant]
    expected_public = (
        phone_ip if variant in ("open-internet", "symmetric-udp-firewall") else ROUTER_WAN
    )
    assert result["public_ip"] == expected_public
    usable = variant not in ("symmetric", "symmetric-udp-firewall")
    assert result["stun_usable"] is usable
    assert check.returncode == (0 if usable else 1) == result["exit_code"]
    assert result["source_ip"] == phone_ip
    assert isinstance(result["public_port"], int) and 0 < result["public_port"] < 65536
    assert result["phone_settings"]["SIP1 NAT Type"] == (
        1 if usable and variant != "open-internet" else 0
    )
    assert result["phone_settings"]["STUN Server"] == (A1 if usable else "")
    # --save: the same result lands where the config renderer reads it
    saved = json.loads((tmp_path / "state" / "nat-check.json").read_text())
    assert {k: v for k, v in saved.items() if k != "checked_at"} == result
    if variant in ADVICE:  # the plain output says the same, with the same exit code
        plain = nat_check(phone, tmp_path)
        assert plain.returncode == check.returncode, plain.stdout + plain.stderr
        assert f"NAT type:     {result['label']}" in plain.stdout
        assert ADVICE[variant] in plain.stdout
