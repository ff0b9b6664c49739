"""Kea scale-out in namespaces: two real kea-dhcp4 processes as a hot-standby
pair written by `netboot export kea`, a real client (busybox udhcpc), and
netboot in kea mode binding per-MAC files to the lease holder.

One segment (a bridge in `sw`): netboot at .2, Kea primary at .3, standby at
.4, the phones, and a host at .50 that holds no lease."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import netns
from tests.netns import REPO, Lab, NetbootServer, Netns, udhcpc_lease, wait_for

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(shutil.which("kea-dhcp4") is None, reason="kea-dhcp4 not installed"),
]

PLANET_MAC = "00:30:4f:5a:01:02"
YEALINK_MAC = "02:00:00:5a:01:03"  # a local MAC: Yealink only by its option 60

CONFIG = """
[dhcp]
mode = "{mode}"
kea_control_sockets = ["{tmp}/kea1.sock", "{tmp}/kea2.sock"]
kea_poll_interval = 0.2
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.120"
router = "192.168.10.1"
dns = ["192.168.10.1"]
lease_time = 600
url_options = [66, 160]
guard_probe = 0
ping_check = false
[[dhcp.class]]
name = "planet"
vendor = "PLANET"
mac_prefix = "00:30:4f"
url_options = [66, 43, 200]
[[dhcp.class]]
name = "yealink"
vendor = "yealink"
url_options = [66, 43]
[http]
enabled = true
port = 80
bind_mac_files = true
"""

# What a phone is sent, compared between netboot and Kea (udhcpc's names).
# (udhcpc shows option 66 holding a URL as "bad": 43, 160, 200 are shown in hex)
COMPARED = ("mask", "router", "dns", "broadcast", "opt43", "opt200", "opt160")


def kea_command(path: Path, command: str, timeout: float = 3.0) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"command": command}).encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer: dict[str, Any] = json.loads(data)
    return answer


def ha_state(path: Path) -> str:
    try:
        answer = kea_command(path, "ha-heartbeat")
    except (OSError, ValueError):
        return ""
    return str((answer.get("arguments") or {}).get("state", ""))


def shown(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k in ("tftp", "ip", "serverid") or k.startswith("opt")}


class KeaSite:
    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        hosts = {
            "nb": "192.168.10.2/24",
            "kea1": "192.168.10.3/24",
            "kea2": "192.168.10.4/24",
            "ph1": None,
            "ph2": None,
            "oth": "192.168.10.50/24",
        }
        wire = netns.Segment(lab, hosts, macs={"ph1": PLANET_MAC, "ph2": YEALINK_MAC})
        self.nb, self.other = wire["nb"], wire["oth"]
        self.kea = [wire["kea1"], wire["kea2"]]
        self.phones = [wire["ph1"], wire["ph2"]]
        self.root = tmp / "files"
        self.root.mkdir()
        for mac in (PLANET_MAC, YEALINK_MAC):
            name = mac.replace(":", "") + ".cfg"
            (self.root / name).write_text(f"# secrets of {mac}\n")
        self.procs: list[subprocess.Popen[Any]] = []

    def config(self, mode: str) -> Path:
        path = self.tmp / f"netboot-{mode}.toml"
        body = CONFIG.format(mode=mode, tmp=self.tmp)
        url = "http://192.168.10.2/$mac.cfg"
        state = self.tmp / f"state-{mode}"
        path.write_text(
            netns.server_config(body, state=state, address="192.168.10.2", url=url, root=self.root)
        )
        return path

    def export(self, config: Path) -> list[Path]:
        out = self.tmp / "kea"
        proc = subprocess.run(
            [
                sys.executable, "-m", "netboot.cli", "export", "kea", "-c", str(config),
                "--out", str(out),
                "--ha-peer", "kea1=http://192.168.10.3:8001/",
                "--ha-peer", "kea2=http://192.168.10.4:8001/",
                "--control-socket", f"{self.tmp}/{{name}}.sock",
                "--lease-file", f"{self.tmp}/{{name}}-leases.csv",
                "--heartbeat-delay", "500", "--max-response-delay", "1500",
                "--max-ack-delay", "500", "--max-unacked-clients", "0",
            ],
            capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return [out / "kea-dhcp4-kea1.conf", out / "kea-dhcp4-kea2.conf"]

    def start_kea(self, files: list[Path]) -> None:
        for ns, conf, name in zip(self.kea, files, ("kea1", "kea2"), strict=True):
            run_dir = self.tmp / f"run-{name}"
            run_dir.mkdir()
            log = (self.tmp / f"{name}.log").open("ab")
            env = {"KEA_PIDFILE_DIR": str(run_dir), "KEA_LOCKFILE_DIR": str(run_dir)}
            self.procs.append(
                self.lab.spawn(
                    ns,
                    ["env", *(f"{k}={v}" for k, v in env.items()), "kea-dhcp4", "-c", str(conf)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()

    def kea_log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def lease(self, phone: int, vendor: str) -> dict[str, str]:
        ns = self.phones[phone]
        ns.run(["ip", "addr", "flush", "dev", "eth0"])
        args = ["-V", vendor, "-O", "66", "-O", "43", "-O", "160", "-O", "200"]
        return udhcpc_lease(ns, self.tmp, args=args, configure=True)

    def curl(self, ns: Netns, mac: str) -> int:
        name = mac.replace(":", "") + ".cfg"
        proc = ns.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5",
             f"http://192.168.10.2/{name}"],
            check=False,
        )  # fmt: skip
        return int(proc.stdout.strip() or 0)


@pytest.fixture
def segment(lab: Lab, tmp_path: Path) -> KeaSite:
    return KeaSite(lab, tmp_path)


def test_kea_ha_pair_serves_netboots_options_and_fails_over(segment: KeaSite) -> None:
    # 1. What netboot itself sends a PLANET and a Yealink phone.
    netboot_cfg = segment.config("netboot")
    server = NetbootServer(segment.lab, segment.nb, netboot_cfg).start()
    from_netboot = [segment.lease(0, "PLANET VIP-2140PT"), segment.lease(1, "Yealink SIP-T46S")]
    server.stop()
    assert from_netboot[0]["serverid"] == "192.168.10.2"
    # udhcpc shows a known option with a `$` as "bad": 43 and 200 (unknown to it) are hex.
    planet_url = b"http://192.168.10.2/$mac.cfg".hex()
    assert from_netboot[0].get("opt43") == from_netboot[0].get("opt200") == planet_url, from_netboot
    assert from_netboot[1].get("opt43") == b"http://192.168.10.2/".hex()  # Yealink: the directory

    # 2. The same config, exported for a Kea hot-standby pair.
    kea_cfg = segment.config("kea")
    files = segment.export(kea_cfg)
    for conf in files:
        check = subprocess.run(["kea-dhcp4", "-t", str(conf)], capture_output=True, timeout=60)
        assert check.returncode == 0, check.stdout.decode(errors="replace")[-2000:]
    segment.start_kea(files)
    socks = [segment.tmp / "kea1.sock", segment.tmp / "kea2.sock"]
    wait_for(
        lambda: ha_state(socks[0]) == "hot-standby" and ha_state(socks[1]) == "hot-standby",
        60,
        "the Kea pair to reach hot-standby",
    )
    # netboot in kea mode: no DHCP of its own, the leases from the sockets.
    nb = NetbootServer(segment.lab, segment.nb, kea_cfg).start()

    from_kea = [segment.lease(0, "PLANET VIP-2140PT"), segment.lease(1, "Yealink SIP-T46S")]
    for mine, theirs in zip(from_netboot, from_kea, strict=True):
        assert theirs["serverid"] == "192.168.10.3"  # the primary answers
        for key in COMPARED:
            assert theirs.get(key) == mine.get(key), (key, shown(mine), shown(theirs))
    planet_ip = from_kea[0]["ip"]

    # 3. netboot binds the per-MAC file to the lease holder Kea chose.
    wait_for(
        lambda: segment.curl(segment.phones[0], PLANET_MAC) == 200,
        10,
        "the PLANET phone's file from its Kea lease address",
    )
    assert segment.curl(segment.other, PLANET_MAC) == 403  # not the lease holder
    assert segment.curl(segment.phones[1], PLANET_MAC) == 403  # another phone
    assert f"lease {planet_ip} to {PLANET_MAC} (from Kea)" in nb.log()

    # 4. The primary dies; the standby takes over and serves a new phone.
    primary = segment.procs[0]
    primary.send_signal(signal.SIGKILL)
    primary.wait(timeout=10)
    wait_for(
        lambda: ha_state(socks[1]) == "partner-down", 30, "the standby to declare partner-down"
    )
    segment.phones[1].run(["ip", "link", "set", "eth0", "address", "02:00:00:5a:01:04"])
    moved = segment.lease(1, "Yealink SIP-T46S")
    assert moved["serverid"] == "192.168.10.4"
    assert moved.get("opt43") == from_netboot[1]["opt43"]
    # The PLANET phone's lease is still known (the standby held a copy), and
    # the new phone's lease reaches netboot from the standby's socket alone.
    assert segment.curl(segment.phones[0], PLANET_MAC) == 200
    (segment.root / "0200005a0104.cfg").write_text("# the moved phone\n")
    wait_for(
        lambda: segment.curl(segment.phones[1], "02:00:00:5a:01:04") == 200,
        10,
        "the new phone's file from its standby-lease address",
    )
    assert segment.curl(segment.other, "02:00:00:5a:01:04") == 403
    assert "kea:" in nb.log()  # the dead socket is reported

    # 5. The status page counts Kea's leases and raises the dead peer; the
    # registry has each phone's `dhcp ack` with the address Kea gave.
    def status() -> dict[str, Any]:
        out = segment.nb.run(["curl", "-s", "-m", "5", "http://127.0.0.1/api/status"]).stdout
        answer: dict[str, Any] = json.loads(out)
        return answer

    wait_for(
        lambda: "kea1.sock" in status()["services"]["dhcp"]["alarm"], 10, "the dead-peer alarm"
    )
    assert status()["pools"][0]["bound"] >= 3
    phone = json.loads(nb.cli("phones", "--json", PLANET_MAC).stdout)
    assert any(e["service"] == "dhcp" and e["kind"] == "ack" for e in phone["timeline"]), phone
    assert phone["phone"]["ip"] == planet_ip, phone
    nb.stop()


FAMILY_CONFIG = """
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.160"
router = "192.168.10.1"
dns = ["192.168.10.1"]
lease_time = 600
url_options = [66, 43, 150, 160, 242]
guard_probe = 0
ping_check = false
"""

LOCAL = "02:00:00:5b:00:{:02x}"  # no family's OUI: told by option 60 alone
UDHCPC = ""  # udhcpc's own option 60 ("udhcp 1.35.0"): no family's, so the OUI decides


def family_cases() -> list[tuple[str, str]]:
    from netboot.vendors import PROFILES

    cases = [(f"{p.ouis[0]}:5a:00:{i:02x}", UDHCPC) for i, p in enumerate(PROFILES) if p.ouis]
    texts = (
        "yealink SIP-T46S", "YEALINK T54W", "snomD785", "Cisco Systems, Inc. IP Phone CP-7945G",
        "CISCO SPA504G", "ccp.avaya.com", "Grandstream GXP2170", "Polycom-VVX411",
        "Gigaset_N510", "PLANET VIP-2140PT", "generic-phone",
    )  # fmt: skip
    cases += [(LOCAL.format(i), text) for i, text in enumerate(texts)]
    return cases


def offered(env: dict[str, str]) -> dict[str, str]:
    """What a phone was told, less what names the server and the address."""
    # Kea echoes the client's own identifier (RFC 6842 §3), netboot does not:
    # not something the site's config says.
    skip = {"ip", "serverid", "siaddr", "opt54", "opt61"}
    return {
        k: v
        for k, v in env.items()
        if k not in skip
        and (k.startswith("opt") or k in ("mask", "router", "dns", "broadcast", "tftp", "lease"))
    }


def test_kea_sends_each_family_what_netboot_sends(lab: Lab, tmp_path: Path) -> None:
    wire = netns.Segment(lab, {"srv": "192.168.10.2/24", "ph": None}, switch=True)
    srv, phone = wire["srv"], wire["ph"]
    config = tmp_path / "netboot.toml"
    url, root = "http://192.168.10.2/prov/$mac.cfg", tmp_path / "files"
    config.write_text(
        netns.server_config(
            FAMILY_CONFIG, state=tmp_path / "state", address="192.168.10.2", url=url, root=root
        )
    )

    def leases() -> dict[tuple[str, str], dict[str, str]]:
        out = {}
        for mac, vendor in family_cases():
            phone.run(["ip", "addr", "flush", "dev", "eth0"])
            phone.run(["ip", "link", "set", "eth0", "address", mac])
            args = ["-V", vendor] if vendor else []
            out[(mac, vendor)] = udhcpc_lease(phone, tmp_path, args=args)
        return out

    server = NetbootServer(lab, srv, config).start()
    from_netboot = leases()
    server.stop()

    conf = tmp_path / "kea-dhcp4.conf"
    proc = subprocess.run(
        [sys.executable, "-m", "netboot.cli", "export", "kea", "-c", str(config),
         "--out", str(tmp_path), "--control-socket", str(tmp_path / "kea.sock"),
         "--lease-file", str(tmp_path / "kea-leases.csv")],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    log = (tmp_path / "kea.log").open("ab")
    lab.spawn(
        srv,
        ["env", f"KEA_PIDFILE_DIR={run_dir}", f"KEA_LOCKFILE_DIR={run_dir}",
         "kea-dhcp4", "-c", str(conf)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    wait_for(
        lambda: (
            (tmp_path / "kea.sock").exists()
            and kea_command(tmp_path / "kea.sock", "status-get").get("result") == 0
        ),
        30,
        "kea-dhcp4 to answer on its control socket",
    )
    from_kea = leases()
    # Each family's forms really differ (the comparison is not of one URL).
    assert len({offered(env).get("opt160") for env in from_netboot.values()}) >= 5
    for case, mine in from_netboot.items():
        assert offered(from_kea[case]) == offered(mine), (
            case,
            offered(mine),
            offered(from_kea[case]),
        )
