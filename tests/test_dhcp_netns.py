"""The real DHCP service in namespaces against real clients: dhclient, udhcpc, a relay."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.netns import Lab, NetbootServer, Netns, Segment, server_config, udhcpc_lease, wait_for

pytestmark = pytest.mark.netns

URL = "http://192.168.10.2/$mac.cfg"
PLANET_URL = "http://192.168.10.2/planet/$mac.cfg"
RESERVED_MAC = "00:30:4f:11:3a:f8"

CONFIG = """
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.120"
router = "192.168.10.1"
dns = ["192.168.10.1"]
lease_time = 600
url_options = [66, 160]
ping_timeout_ms = 100
[[dhcp.class]]
name = "planet"
vendor = "PLANET"
url = "{planet_url}"
url_options = [66, 43, 200]
[[dhcp.host]]
mac = "{reserved}"
ip = "192.168.10.20"
"""

DHCLIENT_SCRIPT = """#!/bin/sh
env | sort > "{out}.$reason"
case "$reason" in BOUND|RENEW|REBIND|REBOOT)
    ip addr flush dev "$interface"
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface";;
esac
exit 0
"""

DHCLIENT_CONF = """
option opt160 code 160 = string;
option opt200 code 200 = string;
send vendor-class-identifier "{vendor}";
request subnet-mask, routers, domain-name-servers, tftp-server-name;
also request opt160;
"""


class Site:
    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        wire = Segment(lab, {"srv": "192.168.10.2/24", "cli": None})
        self.srv, self.cli = wire["srv"], wire["cli"]
        self.state = tmp / "state"
        self.config = tmp / "netboot.toml"
        body = CONFIG.format(planet_url=PLANET_URL, reserved=RESERVED_MAC)
        text = server_config(body, state=self.state, url=URL, root=self.state / "files")
        self.server = wire.server("srv", self.config, text)

    def dhclient(self, vendor: str = "generic-phone", tag: str = "a") -> dict[str, str]:
        """Run dhclient once (-1) and return the environment its script saw at BOUND/REBOOT."""
        out = self.tmp / f"dhclient-{tag}"
        script = self.tmp / "dhclient-script"
        script.write_text(DHCLIENT_SCRIPT.format(out=out))
        script.chmod(0o755)
        conf = self.tmp / f"dhclient-{tag}.conf"
        conf.write_text(DHCLIENT_CONF.format(vendor=vendor))
        leases = self.tmp / "dhclient.leases"  # shared between runs: INIT-REBOOT on the second
        self.cli.run(
            [
                "dhclient",
                "-1",
                "-v",
                "-cf",
                str(conf),
                "-sf",
                str(script),
                "-lf",
                str(leases),
                "-pf",
                str(self.tmp / "dhclient.pid"),
                "eth0",
            ],
            timeout=40,
        )
        for reason in ("BOUND", "REBOOT", "RENEW"):
            path = Path(f"{out}.{reason}")
            if path.exists():
                # dhclient shell-escapes option values ($mac arrives as \$mac).
                env = {
                    k: v.replace("\\$", "$")
                    for k, v in (
                        line.split("=", 1) for line in path.read_text().splitlines() if "=" in line
                    )
                }
                env["reason"] = reason
                path.unlink()
                return env
        raise AssertionError("dhclient ran but its script never saw a lease")

    def release_dhclient(self) -> None:
        self.cli.run(["sh", "-c", f"kill $(cat {self.tmp / 'dhclient.pid'}) 2>/dev/null; true"])


@pytest.fixture
def site(lab: Lab, tmp_path: Path) -> Site:
    return Site(lab, tmp_path)


def test_dhclient_gets_pool_address_and_url(site: Site) -> None:
    site.server.start()
    env = site.dhclient()
    ip = env["new_ip_address"]
    assert re.fullmatch(r"192\.168\.10\.(1[01][0-9]|120)", ip), ip
    assert env["new_routers"] == "192.168.10.1"
    assert env["new_domain_name_servers"] == "192.168.10.1"
    assert env["new_tftp_server_name"] == URL
    assert env["new_opt160"] == URL
    assert int(env["new_dhcp_lease_time"]) == 600
    assert env["new_dhcp_server_identifier"] == "192.168.10.2"
    leases = json.loads(site.server.cli("leases", "--json").stdout)
    assert [(lease["ip"], lease["state"]) for lease in leases] == [(ip, "bound")]
    phones = json.loads(site.server.cli("phones", "--json").stdout)
    assert phones[0]["ip"] == ip and phones[0]["state"] == "url-sent"


def test_reserved_mac_gets_its_address(site: Site) -> None:
    site.cli.run(["ip", "link", "set", "eth0", "address", RESERVED_MAC])
    site.server.start()
    env = site.dhclient()
    assert env["new_ip_address"] == "192.168.10.20"


def test_udhcpc_planet_class_gets_url_in_43_and_200(site: Site) -> None:
    site.server.start()
    options = ["-V", "PLANET VIP-2140PT", "-O", "43", "-O", "200", "-O", "66"]
    env = udhcpc_lease(site.cli, site.tmp, args=options)
    assert env["ip"].startswith("192.168.10.1")
    # udhcpc hands unknown options over as hex (and treats 66 as a host name, so
    # option 66 is checked with dhclient above).
    assert bytes.fromhex(env["opt200"]).decode() == PLANET_URL
    assert bytes.fromhex(env["opt43"]).decode() == PLANET_URL
    phones = json.loads(site.server.cli("phones", "--json").stdout)
    assert phones[0]["vendor_class"] == "PLANET VIP-2140PT"
    assert phones[0]["url"] == PLANET_URL


RELAY = """
import socket, struct, sys
sys.path.insert(0, {repo!r})
from netboot.dhcp import codec
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.168.10.50", 67))
s.settimeout(5)
def ask(options, ciaddr=0):
    msg = codec.DhcpMessage(op=1, xid=0x1234, chaddr=bytes.fromhex("02aabbccdd01"), hops=1,
                            giaddr=0xC0A80A32, ciaddr=ciaddr, options=options)
    s.sendto(codec.encode(msg), ("192.168.10.2", 67))
    data, peer = s.recvfrom(4096)
    reply = codec.decode(data)
    return reply, peer
offer, peer = ask({{53: b"\\x01"}})
print(codec.TYPE_NAMES[offer.msg_type], socket.inet_ntoa(struct.pack("!I", offer.yiaddr)), peer[0], peer[1],
      offer.options[66].decode())
nak, peer = ask({{53: b"\\x03", 50: socket.inet_aton("10.9.9.9")}})
print(codec.TYPE_NAMES[nak.msg_type], peer[0], peer[1], nak.options.get(56, b"").decode())
"""


def test_relayed_request_is_answered_to_the_relay(site: Site) -> None:
    site.cli.run(["ip", "addr", "add", "192.168.10.50/24", "dev", "eth0"])
    # A host squats on the first pool address: the ICMP probe must find it.
    site.cli.run(["ip", "addr", "add", "192.168.10.100/24", "dev", "eth0"])
    site.server.start()
    script = site.tmp / "relay.py"
    script.write_text(RELAY.format(repo=str(Path(__file__).resolve().parent.parent)))
    out = site.cli.run([sys.executable, str(script)], timeout=30).stdout.splitlines()
    kind, ip, peer_ip, peer_port, url = out[0].split(" ")
    assert kind == "OFFER" and ip == "192.168.10.101"
    assert (peer_ip, peer_port) == ("192.168.10.2", "67")
    assert url == URL
    assert out[1].startswith("NAK 192.168.10.2 67 10.9.9.9 is not on this network")
    leases = json.loads(site.server.cli("leases", "--json", "--all").stdout)
    assert {(lease["ip"], lease["state"]) for lease in leases} == {("192.168.10.100", "declined")}


def test_leases_survive_kill_and_restart(site: Site) -> None:
    site.server.start()
    first = site.dhclient(tag="one")["new_ip_address"]
    site.release_dhclient()
    site.server.stop(signal.SIGKILL)
    site.server.start()
    again = site.dhclient(tag="two")
    assert again["new_ip_address"] == first
    leases = json.loads(site.server.cli("leases", "--json").stdout)
    assert [lease["ip"] for lease in leases] == [first]


def test_other_dhcp_server_blocks_authoritative_start(site: Site, lab: Lab) -> None:
    # A second netboot on the same segment plays the rogue server.
    rogue_tmp = site.tmp / "rogue"
    rogue_tmp.mkdir()
    rogue_ns = lab.netns("rogue")
    bridge_ns: Netns = lab.netns("br")
    # Re-plumb: srv, cli and rogue all on one bridge.
    site.cli.run(["ip", "link", "del", "eth0"])
    bridge_ns.run(["ip", "link", "add", "br0", "type", "bridge"])
    bridge_ns.run(["ip", "link", "set", "br0", "up"])
    for i, (ns, addr) in enumerate(
        ((site.srv, "192.168.10.2/24"), (site.cli, None), (rogue_ns, "192.168.10.3/24"))
    ):
        lab.link(ns, "eth0", bridge_ns, f"p{i}", addr, None)
        bridge_ns.run(["ip", "link", "set", f"p{i}", "master", "br0"])
    rogue_conf = rogue_tmp / "netboot.toml"
    rogue_conf.write_text(
        site.config.read_text()
        .replace(str(site.state), str(rogue_tmp / "state"))
        .replace("authoritative = true", "")
        .replace("[dhcp]\n", '[dhcp]\nignore_other_servers = true\naddress = "192.168.10.3"\n')
        .replace('pool = "192.168.10.100-192.168.10.120"', 'pool = "192.168.10.150-192.168.10.160"')
    )
    NetbootServer(lab, rogue_ns, rogue_conf).start()
    site.server.start()
    wait_for(lambda: "ANOTHER DHCP SERVER" in site.server.log(), 10, "the other-server warning")
    assert "192.168.10.3" in site.server.log()
    assert "not serving while another DHCP server answers" in site.server.log()
    env = site.dhclient()
    assert env["new_dhcp_server_identifier"] == "192.168.10.3"


def test_check_rejects_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        textwrap.dedent(
            """
            [appliance]
            interface = "eth0"
            [dhcp]
            subnet = "192.168.10.0/24"
            pool = "192.168.20.1-192.168.20.9"
            url_options = [66, 7]
            leasetime = 60
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "netboot.cli", "check", "-c", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert (
        "dhcp.pool: 192.168.20.1-192.168.20.9 is not inside subnet 192.168.10.0/24" in proc.stderr
    )
    assert "dhcp.url_options: 7 cannot carry the URL" in proc.stderr
    assert "dhcp.leasetime: unknown key" in proc.stderr
    good = Path(__file__).resolve().parent.parent / "config.toml"
    ok = subprocess.run(  # the example names eth0 192.168.10.2: not this host's (issue 13)
        [sys.executable, "-m", "netboot.cli", "check", "--no-host", "-c", str(good)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout


VOICE_SCOPE = """
[[dhcp.scope]]
interface = "eth0.100"
address = "192.168.100.2"
subnet = "192.168.100.0/24"
pool = "192.168.100.100-192.168.100.110"
router = "192.168.100.1"
vlan = 100
"""


def test_second_scope_on_voice_interface(site: Site, lab: Lab) -> None:
    # This sandbox's kernel has no 802.1Q support, so a veth named eth0.100
    # stands in for the voice-VLAN subinterface: the server serves two
    # interfaces with a scope each, as it does on eth0 + eth0.100.
    lab.link(site.srv, "eth0.100", site.cli, "eth0.100", "192.168.100.2/24", None)
    site.config.write_text(site.config.read_text() + VOICE_SCOPE)
    site.server.start()

    def lease_on(interface: str) -> dict[str, str]:
        return udhcpc_lease(site.cli, site.tmp, interface)

    voice = lease_on("eth0.100")
    assert voice["ip"].startswith("192.168.100.1"), voice["ip"]
    assert voice["router"] == "192.168.100.1"
    assert voice["serverid"] == "192.168.100.2"
    leases = json.loads(site.server.cli("leases", "--json").stdout)
    assert [lease["ip"] for lease in leases] == [voice["ip"]]
    data = lease_on("eth0")
    assert data["ip"].startswith("192.168.10.1") and data["serverid"] == "192.168.10.2"


TAGGED = """
from scapy.all import BOOTP, DHCP, IP, UDP, Dot1Q, Ether, sendp
def discover(mac, tagged):
    frame = Ether(dst="ff:ff:ff:ff:ff:ff", src=mac)
    if tagged:
        frame = frame / Dot1Q(vlan=100)
    frame = frame / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
    frame = frame / BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), xid=7, flags=0x8000)
    return frame / DHCP(options=[("message-type", "discover"), "end"])
sendp(discover("02:00:00:00:01:00", True), iface="eth0", verbose=False)
sendp(discover("02:00:00:00:02:00", False), iface="eth0", verbose=False)
"""


def test_tagged_frames_are_not_served_by_the_untagged_scope(site: Site) -> None:
    site.server.start()
    script = site.tmp / "tagged.py"
    script.write_text(TAGGED)
    site.cli.run([sys.executable, str(script)], timeout=60)

    def seen() -> list[str]:
        return [p["mac"] for p in json.loads(site.server.cli("phones", "--json").stdout)]

    # Frames are handled in order: once the untagged one is recorded, the
    # tagged one (sent first) would have been too, had it been accepted.
    wait_for(lambda: "02:00:00:00:02:00" in seen(), 15, "the untagged DISCOVER to be recorded")
    assert "02:00:00:00:01:00" not in seen()


GARBAGE = """
import os, socket
from scapy.all import IP, UDP, Ether, Raw, sendp
frames = []
for payload in (b"", b"\\x01" * 10, os.urandom(300), b"\\x01\\x01\\x06\\x00" + bytes(232) + b"BAD!",
                b"\\x01\\x01\\x06\\x00" + bytes(232) + b"\\x63\\x82\\x53\\x63\\x35\\xff\\x01"):
    frames.append(Ether(dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
                  / UDP(sport=68, dport=67) / Raw(payload))
sendp(frames * 20, iface="eth0", verbose=False)
"""


def test_garbage_is_logged_once_and_dropped(site: Site) -> None:
    site.server.start()
    script = site.tmp / "garbage.py"
    script.write_text(GARBAGE)
    site.cli.run([sys.executable, str(script)], timeout=60)
    env = site.dhclient()  # still serving
    assert env["new_ip_address"].startswith("192.168.10.1")
    log = site.server.log()
    assert log.count("dhcp: dropped malformed packet") == 1, log
    assert "Traceback" not in log
