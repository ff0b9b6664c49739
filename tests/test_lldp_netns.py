"""The LLDP service in namespaces against the real lldpd, and CDP against tshark."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netboot.lldp.codec import LldpNeighbor, decode_lldp
from tests.netns import Lab, NetbootServer, Netns, Segment, server_config, udhcpc_lease, wait_for
from tests.test_lldp_codec import phone_cdp_query

pytestmark = pytest.mark.netns

APPLIANCE_MAC = "02:00:5e:00:00:01"
PHONE_MAC = "00:30:4f:11:3a:f8"

PHONE_INVENTORY = """\
configure system hostname VIP-2140PT-desk12
configure inventory hardware-revision "HW 1.2"
configure inventory software-revision "2.10.2.6887"
configure inventory firmware-revision "FW 2.10"
configure inventory serial-number "SN0012345"
configure inventory manufacturer "PLANET"
configure inventory model "VIP-2140PT"
configure med policy application voice vlan 100 priority voice dscp 46 tagged
configure med policy application voice-signaling vlan 100 priority voice dscp 26 tagged
"""


@pytest.fixture
def workdir() -> Iterator[Path]:
    # lldpd drops privileges to _lldpd: its socket directory (and the path to
    # it) must be readable by that user, which pytest's 0700 tmp_path is not.
    path = Path(tempfile.mkdtemp(prefix="netboot-lldp-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_config(workdir: Path, interface: str = "eth0", lldp: str = "") -> Path:
    path = workdir / "netboot.toml"
    policy = "voice_vlan = 100\npriority = 5\ndscp = 46\nsignaling_dscp = 26\ninterval = 30"
    text = server_config(
        f"[lldp]\n{policy}\n{lldp}",
        state=workdir / "state",
        interface=interface,
        name="netboot-lab",
    )
    path.write_text(text)
    return path


class Lldpd:
    """lldpd in the foreground in a namespace, its control socket in workdir."""

    def __init__(self, lab: Lab, ns: Netns, workdir: Path, *args: str, config: str = "") -> None:
        self.ns = ns
        self.socket = workdir / "lldpd.socket"
        conf = workdir / "lldpd.conf"
        conf.write_text(config)
        self.log_path = workdir / "lldpd.log"
        with self.log_path.open("wb") as log:
            self.proc = lab.spawn(
                ns,
                ["lldpd", "-d", "-u", str(self.socket), "-O", str(conf), "-I", "eth0", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.socket.exists, 10, "lldpd's control socket")

    def cli(self, *args: str) -> Any:
        out = self.ns.run(["lldpcli", "-u", str(self.socket), "-f", "json", *args]).stdout
        return json.loads(out)

    def neighbor(self) -> dict[str, Any] | None:
        interfaces = self.cli("show", "neighbors", "details").get("lldp", {}).get("interface")
        if not interfaces:
            return None
        entry: dict[str, Any] = interfaces["eth0"]
        return entry

    def received(self) -> int:
        stats = self.cli("show", "statistics")["lldp"]["interface"]["eth0"]
        return int(stats["rx"]["rx"])


# Prints one line per LLDP frame from `src` on eth0: the kernel's receive
# timestamp and the frame in hex (kernel time, so a slow reader under load
# does not squeeze the gaps between frames).
FRAME_LOG = """
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88CC))
s.bind(("eth0", 0x88CC))
TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux asm-generic value
s.setsockopt(socket.SOL_SOCKET, TIMESTAMPNS, 1)
src = bytes.fromhex(sys.argv[1].replace(":", ""))
print("ready", flush=True)
while True:
    data, anc, _, _ = s.recvmsg(9216, 64)
    if data[6:12] != src:
        continue
    stamp = [struct.unpack("qq", d[:16]) for lvl, t, d in anc if t == TIMESTAMPNS]
    sec, nsec = stamp[0] if stamp else (0, 0)
    print("%d.%09d %s" % (sec, nsec, data.hex()), flush=True)
"""


class FrameLog:
    """The appliance's LLDP frames as the phone's namespace receives them."""

    def __init__(self, lab: Lab, ns: Netns, workdir: Path) -> None:
        self.path = workdir / "frames.log"
        with self.path.open("wb") as out:
            lab.spawn(ns, [sys.executable, "-c", FRAME_LOG, APPLIANCE_MAC], stdout=out)
        wait_for(lambda: self.path.read_text().startswith("ready"), 15, "the frame logger")

    def frames(self) -> list[tuple[float, LldpNeighbor]]:
        text = self.path.read_text()
        lines = text.splitlines()[1:]
        if not text.endswith("\n"):
            lines = lines[:-1]  # a line still being written
        out = []
        for line in lines:
            stamp, _, frame = line.partition(" ")
            out.append((float(stamp), decode_lldp(bytes.fromhex(frame))))
        return out


def segment(lab: Lab) -> tuple[Netns, Netns]:
    hosts = {"appliance": "10.77.0.1/24", "phone": "10.77.0.2/24"}
    wire = Segment(lab, hosts, macs={"appliance": APPLIANCE_MAC, "phone": PHONE_MAC})
    return wire["appliance"], wire["phone"]


def test_lldpd_receives_voice_policy(lab: Lab, workdir: Path) -> None:
    appliance, phone = segment(lab)
    lldpd = Lldpd(lab, phone, workdir)
    frames = FrameLog(lab, phone, workdir)
    server = NetbootServer(lab, appliance, write_config(workdir)).start()

    neighbor = wait_for(lldpd.neighbor, 15, "lldpd to list the appliance")
    chassis = neighbor["chassis"]["netboot-lab"]
    assert chassis["id"] == {"type": "mac", "value": APPLIANCE_MAC}
    assert chassis["mgmt-ip"] == "10.77.0.1"
    assert chassis["descr"].startswith("netboot ")
    assert {c["type"]: c["enabled"] for c in chassis["capability"]} == {
        "Bridge": True,
        "Router": True,
    }
    assert neighbor["port"]["id"] == {"type": "ifname", "value": "eth0"}
    assert neighbor["port"]["ttl"] == "120"
    assert neighbor["port"]["auto-negotiation"]["enabled"] is True
    med = neighbor["lldp-med"]
    assert med["device-type"] == "Network Connectivity Device"
    policies = {p["apptype"]: p for p in med["policy"]}
    voice, signaling = policies["Voice"], policies["Voice Signaling"]
    # lldpd shows `vlan` only when the Tagged bit is set.
    assert "unknown" not in voice and "unknown" not in signaling
    assert (voice["vlan"]["vid"], voice["pcp"], voice["dscp"]) == ("100", "5", "46")
    assert (signaling["vlan"]["vid"], signaling["pcp"], signaling["dscp"]) == ("100", "5", "26")

    # Stopping sends a shutdown LLDPDU (TTL 0): lldpd forgets us at once, not
    # after 120 s.
    assert server.stop() == 0
    wait_for(lambda: lldpd.neighbor() is None, 5, "lldpd to drop the appliance")
    last = wait_for(lambda: [n for _, n in frames.frames() if n.ttl == 0], 5, "a TTL-0 frame")
    assert last[-1].chassis_id == APPLIANCE_MAC and last[-1].policies == ()


def test_med_endpoint_inventory_and_fast_start(lab: Lab, workdir: Path) -> None:
    appliance, phone = segment(lab)
    # Logging before the appliance starts catches its start-up frame too.
    frames = FrameLog(lab, phone, workdir)
    server = NetbootServer(lab, appliance, write_config(workdir)).start()
    wait_for(lambda: len(frames.frames()) >= 1, 10, "the appliance's start-up LLDPDU")
    # lldpd as a class I LLDP-MED endpoint, as a phone would announce itself.
    lldpd = Lldpd(lab, phone, workdir, "-M", "1", config=PHONE_INVENTORY)

    def recorded() -> dict[str, Any] | None:
        phones = json.loads(server.cli("phones", "--json").stdout)
        found = [p for p in phones if p["mac"] == PHONE_MAC and p["model"]]
        return found[0] if found else None

    row = wait_for(recorded, 15, "the phone's LLDP-MED inventory in the registry")
    assert (row["vendor"], row["model"], row["firmware"]) == ("PLANET", "VIP-2140PT", "FW 2.10")
    timeline = json.loads(server.cli("phones", PHONE_MAC, "--json").stdout)["timeline"]
    details = [e["detail"] for e in timeline if e["service"] == "lldp"]
    inventory = {
        key: details[-1].get(key)
        for key in (
            "hardware_revision",
            "firmware_revision",
            "software_revision",
            "serial_number",
            "manufacturer",
            "model",
            "system_name",
            "med_device_type",
        )
    }
    assert inventory == {
        "hardware_revision": "HW 1.2",
        "firmware_revision": "FW 2.10",
        "software_revision": "2.10.2.6887",
        "serial_number": "SN0012345",
        "manufacturer": "PLANET",
        "model": "VIP-2140PT",
        "system_name": "VIP-2140PT-desk12",
        "med_device_type": "endpoint class I",
    }
    # The network policy the phone reports (what it will use) is kept too.
    assert sorted(details[-1]["policies"], key=lambda p: p["application"]) == [
        {"application": "voice", "vlan": 100, "tagged": True, "priority": 5, "dscp": 46},
        {"application": "voice signaling", "vlan": 100, "tagged": True, "priority": 5, "dscp": 26},
    ]

    # Hearing a new MED endpoint starts a fast start: 4 frames 1 s apart,
    # where the 30 s interval alone would have sent none in this time.
    sent = wait_for(
        lambda: frames.frames()[1:5] if len(frames.frames()) >= 5 else None,
        15,
        "4 fast-start LLDPDUs",
    )
    stamps = [t for t, _ in sent]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(g >= 0.9 for g in gaps), gaps  # never faster than 1 s
    assert stamps[-1] - frames.frames()[0][0] < 25  # well before the 30 s interval
    assert all(n.ttl == 120 and n.med is not None and len(n.policies) == 2 for _, n in sent)
    wait_for(lambda: lldpd.received() >= 4, 10, "the fast-start LLDPDUs at lldpd")
    assert "Network Connectivity Device" in json.dumps(lldpd.neighbor())


def cdp_listener(lab: Lab, ns: Netns, workdir: Path) -> tuple[subprocess.Popen[Any], Path]:
    """tshark decoding the appliance's next 2 CDP frames, for at most 25 s."""
    out = workdir / "tshark.out"
    err = workdir / "tshark.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = lab.spawn(
            ns,
            [
                "tshark",
                "-l",
                "-i",
                "eth0",
                "-c",
                "2",
                "-a",
                "duration:25",
                "-f",
                "ether dst 01:00:0c:cc:cc:cc and ether src " + APPLIANCE_MAC,
                "-T",
                "fields",
                "-e",
                "cdp.deviceid",
                "-e",
                "cdp.voice_vlan",
                "-e",
                "cdp.platform",
                "-e",
                "cdp.version",
                "-e",
                "frame.time_epoch",
            ],
            stdout=o,
            stderr=e,
        )
    wait_for(lambda: "Capturing on" in err.read_text(errors="replace"), 15, "tshark to capture")
    return proc, out


def test_cdp_voip_vlan_query_answered_and_decoded_by_tshark(lab: Lab, workdir: Path) -> None:
    appliance, phone = segment(lab)
    # tshark runs for 25 s from before the appliance starts: it sees the
    # start-up CDP frame, and the periodic one (30 s later) falls outside it,
    # so a second frame can only be the answer to the phone's query.
    tshark, out = cdp_listener(lab, phone, workdir)
    server = NetbootServer(lab, appliance, write_config(workdir, lldp="cdp = true")).start()
    wait_for(lambda: out.read_text().count("\n") >= 1, 10, "the start-up CDP frame")
    query = phone_cdp_query(source=PHONE_MAC)
    send = (
        "import socket,sys;s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW);"
        "s.bind(('eth0',0));s.send(bytes.fromhex(sys.argv[1]))"
    )
    asked = time.time()
    phone.run([sys.executable, "-c", send, query.hex()])
    assert tshark.wait(timeout=30) == 0
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    assert len(lines) == 2, "no CDP answer to the VoIP VLAN query"
    for fields in lines:
        assert fields[:4] == ["netboot-lab", "100", "netboot", "2"]
    # Promptly: within the 1 s minimum gap per interface (plus slack for a
    # loaded machine), not at the next 30 s interval.
    assert float(lines[1][4]) - asked < 3

    def cisco_phone() -> dict[str, Any] | None:
        phones = json.loads(server.cli("phones", "--json").stdout)
        return next((p for p in phones if p["mac"] == PHONE_MAC), None)

    row = wait_for(cisco_phone, 10, "the CDP phone in the registry")
    assert (row["vendor"], row["model"]) == ("Cisco", "Cisco IP Phone 7841")


def vlan_unsupported(ns: Netns) -> str | None:
    """Why this kernel cannot make an 802.1Q subinterface, or None if it can."""
    probe = ns.run(
        ["ip", "link", "add", "link", "eth0", "name", "probe.9", "type", "vlan", "id", "9"],
        check=False,
    )
    if probe.returncode == 0:
        ns.run(["ip", "link", "del", "probe.9"])
        return None
    return (probe.stderr or probe.stdout).strip() or f"exit status {probe.returncode}"


def test_vlan_subinterface_advertises_on_its_parent(lab: Lab, workdir: Path) -> None:
    appliance, phone = segment(lab)
    # Only the kernel side differs from test_voice_vlan_tagged_on_the_wire
    # (which runs everywhere): eth0.100 a real VLAN device, found through
    # /proc/net/vlan rather than by its name.
    why = vlan_unsupported(appliance)
    if why is not None:
        pytest.skip(
            f"kernel without 802.1Q (CONFIG_VLAN_8021Q): `ip link add ... type vlan` says {why!r};"
            " the voice VLAN on the wire is covered by test_voice_vlan_tagged_on_the_wire"
        )
    appliance.run(["ip", "addr", "flush", "dev", "eth0"])
    lab.vlan(appliance, "eth0", 100, "10.77.100.1/24")
    lldpd = Lldpd(lab, phone, workdir)
    NetbootServer(lab, appliance, write_config(workdir, interface="eth0.100")).start()
    neighbor = wait_for(lldpd.neighbor, 15, "lldpd (untagged, on eth0) to list the appliance")
    assert neighbor["port"]["id"]["value"] == "eth0"
    assert neighbor["chassis"]["netboot-lab"]["mgmt-ip"] == "10.77.100.1"


# ------------------------------------------------------------------ 802.1Q on the wire

VOICE_SITE = """
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.110"
router = "192.168.10.1"
ping_check = false
[[dhcp.scope]]
interface = "eth0.100"
address = "192.168.100.2"
subnet = "192.168.100.0/24"
pool = "192.168.100.100-192.168.100.110"
router = "192.168.100.1"
vlan = 100
[lldp]
voice_vlan = 100
priority = 5
dscp = 46
signaling_dscp = 26
"""

VLAN_SWITCH = str(Path(__file__).resolve().parent / "vlan_switch.py")


def vlan_switch(lab: Lab, ns: Netns, workdir: Path, trunk: str, *ports: str) -> None:
    log = workdir / f"{ns.name}-switch.log"
    with log.open("wb") as out:
        lab.spawn(ns, [sys.executable, VLAN_SWITCH, trunk, *ports, "--seconds", "120"], stdout=out)
    wait_for(lambda: log.read_text().startswith("ready"), 15, f"the 802.1Q switch in {ns}")


def test_voice_vlan_tagged_on_the_wire(lab: Lab, workdir: Path) -> None:
    """The phone side as a real site has it: an untagged access port and a
    VLAN-100 port on a switch, one 802.1Q trunk to the appliance, whose eth0
    and eth0.100 receive what a kernel VLAN subinterface would (tag removed).
    This kernel has no 8021q, bridge vlan_filtering or tc vlan action, so the
    tagging at both ends of the trunk is tests/vlan_switch.py (user space);
    the trunk between them carries real 802.1Q frames, which tshark decodes.
    Both sides of each link keep one MAC, as a phone's and a VLAN
    subinterface's do."""
    appliance, nic, switch, phone = (lab.netns(n) for n in ("appl", "nic", "sw", "phone"))
    lab.link(appliance, "eth0", nic, "a0", "192.168.10.2/24")
    lab.link(appliance, "eth0.100", nic, "a100", "192.168.100.2/24")
    lab.link(nic, "trunk", switch, "trunk")
    lab.link(phone, "eth0", switch, "p0")
    lab.link(phone, "eth0.100", switch, "p100")
    for ns, ifname, mac in (
        (appliance, "eth0", APPLIANCE_MAC),
        (appliance, "eth0.100", APPLIANCE_MAC),
        (phone, "eth0", PHONE_MAC),
        (phone, "eth0.100", PHONE_MAC),
    ):
        ns.run(["ip", "link", "set", ifname, "address", mac])
    vlan_switch(lab, nic, workdir, "trunk", "a0=0", "a100=100")
    vlan_switch(lab, switch, workdir, "trunk", "p0=0", "p100=100")

    wire = workdir / "trunk.tsv"
    err = workdir / "trunk.err"
    with wire.open("wb") as o, err.open("wb") as e:
        lab.spawn(
            switch,
            [
                "tshark", "-l", "-i", "trunk", "-a", "duration:90", "-Y", "dhcp or lldp",
                "-T", "fields", "-e", "vlan.id", "-e", "vlan.priority", "-e", "eth.src",
                "-e", "dhcp.option.dhcp", "-e", "lldp.chassis.id.mac",
            ],
            stdout=o,
            stderr=e,
        )  # fmt: skip
    wait_for(lambda: "Capturing on" in err.read_text(errors="replace"), 15, "tshark to capture")

    config = workdir / "netboot.toml"
    url = "http://192.168.10.2/$mac.cfg"
    config.write_text(
        server_config(VOICE_SITE, state=workdir / "state", url=url, name="netboot-lab")
    )
    lldpd = Lldpd(lab, phone, workdir)
    server = NetbootServer(lab, appliance, config).start()

    # LLDP goes out once, untagged, on the parent: lldpd on the phone's
    # untagged port hears the voice policy.
    neighbor = wait_for(lldpd.neighbor, 15, "lldpd (untagged access port) to list the appliance")
    assert neighbor["port"]["id"]["value"] == "eth0"
    policies = {p["apptype"]: p for p in neighbor["lldp-med"]["policy"]}
    assert policies["Voice"]["vlan"]["vid"] == "100"

    def lease_on(interface: str) -> dict[str, str]:
        return udhcpc_lease(phone, workdir, interface)

    voice = lease_on("eth0.100")
    assert voice["ip"].startswith("192.168.100.1") and voice["serverid"] == "192.168.100.2"
    data = lease_on("eth0")
    assert data["ip"].startswith("192.168.10.1") and data["serverid"] == "192.168.10.2"

    def seen() -> list[list[str]]:
        return [line.split("\t") for line in wire.read_text().splitlines()]

    def dhcp(vid: str) -> set[tuple[str, str]]:
        return {(src, kind) for v, _, src, kind, _ in seen() if kind and v == vid}

    exchange = {(PHONE_MAC, "1"), (APPLIANCE_MAC, "2"), (PHONE_MAC, "3"), (APPLIANCE_MAC, "5")}
    # DISCOVER, OFFER, REQUEST, ACK of the voice lease: tagged 100 on the trunk.
    wait_for(lambda: dhcp("100") >= exchange, 15, "the tagged voice-VLAN exchange on the trunk")
    wait_for(lambda: dhcp("") >= exchange, 15, "the untagged exchange on the trunk")
    lldp = [v for v, _, src, _, chassis in seen() if chassis == APPLIANCE_MAC]
    assert lldp and set(lldp) == {""}, lldp  # LLDP is link-local: never tagged
    leases = json.loads(server.cli("leases", "--json").stdout)
    assert sorted(lease["ip"] for lease in leases) == sorted([voice["ip"], data["ip"]])
