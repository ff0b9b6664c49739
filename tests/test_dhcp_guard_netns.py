"""The rogue-DHCP guard against a real dnsmasq (default ping check) on the segment:
found at start (DHCP then not served), and found when it appears later."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.netns import REPO, Lab, Segment, server_config, udhcpc_lease, wait_for

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="needs dnsmasq (dnsmasq-base)"),
]

SERVER = "192.168.10.2"
ROGUE = "192.168.10.3"

CONFIG = """
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.120"
router = "192.168.10.1"
ping_timeout_ms = 100
{dhcp_extra}
[http]
port = 80
"""


class GuardSite:
    """netboot, a client and a would-be rogue server on one bridge."""

    def __init__(self, lab: Lab, tmp: Path, dhcp_extra: str = "") -> None:
        self.lab = lab
        self.tmp = tmp
        wire = Segment(lab, {"srv": f"{SERVER}/24", "cli": None, "rogue": f"{ROGUE}/24"})
        self.srv, self.cli, self.rogue = wire["srv"], wire["cli"], wire["rogue"]
        self.rogue_mac = json.loads(self.rogue.run(["ip", "-j", "link", "show", "eth0"]).stdout)[0][
            "address"
        ]
        self.cli.run(["ip", "addr", "add", "192.168.10.50/24", "dev", "eth0"])
        state = tmp / "state"
        (state / "files").mkdir(parents=True)
        url = "http://192.168.10.2/$mac.cfg"
        text = server_config(
            CONFIG.format(dhcp_extra=dhcp_extra), state=state, url=url, root=state / "files"
        )
        self.server = wire.server("srv", tmp / "netboot.toml", text)
        self.dnsmasq_log = tmp / "dnsmasq.log"

    def start_dnsmasq(self) -> subprocess.Popen[Any]:
        """A stock dnsmasq: nothing but a range (its ping check is on by default)."""
        log = self.dnsmasq_log.open("ab")
        proc = self.lab.spawn(
            self.rogue,
            [
                "dnsmasq",
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                "--log-dhcp",
                "--interface=eth0",
                "--dhcp-range=192.168.10.150,192.168.10.160,1h",
                f"--dhcp-leasefile={self.tmp / 'dnsmasq.leases'}",
                f"--pid-file={self.tmp / 'dnsmasq.pid'}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(lambda: ":67 " in self.rogue.run(["ss", "-uln"]).stdout, 10, "dnsmasq on port 67")
        return proc

    def get(self, path: str) -> str:
        return self.cli.run(
            ["curl", "-sS", "--max-time", "5", f"http://{SERVER}{path}"], timeout=10
        ).stdout

    def metric(self, name: str, **labels: str) -> float:
        for family in text_string_to_metric_families(self.get("/metrics")):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        raise AssertionError(f"no sample {name} {labels}")

    def status_cli(self, *args: str) -> tuple[int, str]:
        """`netboot status` run beside the server (it asks 127.0.0.1)."""
        proc = self.srv.run(
            [
                sys.executable,
                "-m",
                "netboot.cli",
                "status",
                "-c",
                str(self.server.config_path),
                *args,
            ],
            check=False,
            cwd=REPO,
        )
        return proc.returncode, proc.stdout + proc.stderr


def status_lines(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if "netboot: ready: " in line or "netboot: status: " in line
    ]


def test_dnsmasq_on_the_segment_at_start_is_found_and_dhcp_not_served(
    lab: Lab, tmp_path: Path
) -> None:
    seg = GuardSite(lab, tmp_path)
    seg.start_dnsmasq()
    seg.server.start(ready_timeout=30)
    log = seg.server.log()
    found = re.search(
        rf"ERROR netboot\.dhcp: ANOTHER DHCP SERVER IS ON THE SEGMENT: {ROGUE} \(MAC {seg.rogue_mac}\)"
        r" on eth0, OFFER 192\.168\.10\.(\d+)\n",
        log,
    )
    assert found is not None and 150 <= int(found.group(1)) <= 160  # dnsmasq's range
    assert "not serving while another DHCP server answers" in log
    # READY said DHCP was still probing (http served at once); the next status, refused
    ready, *later = status_lines(log)
    assert "ready: serving http; dhcp starting (probing for other DHCP servers for 5 s)" in ready
    assert (
        later
        and f"status: serving http; dhcp NOT running (refused: another DHCP server answers: {ROGUE} (MAC {seg.rogue_mac})"
        in later[-1]
    )

    status = json.loads(seg.get("/api/status"))
    assert status["services"]["dhcp"]["state"] == "not-running"
    assert ROGUE in status["services"]["dhcp"]["detail"]
    assert [(s["server_id"], s["mac"]) for s in status["rogue_dhcp_servers"]] == [
        (ROGUE, seg.rogue_mac)
    ]
    assert "NOT running" in status["status"] and "serving http" in status["status"]
    assert status["alarms"] == [
        f"dhcp NOT running: refused: another DHCP server answers: {ROGUE} (MAC {seg.rogue_mac})"
        f" on eth0, OFFER {status['rogue_dhcp_servers'][0]['offered']}"
    ]
    page = seg.get("/")
    assert "ALARM: dhcp NOT running: refused: another DHCP server answers: " + ROGUE in page
    assert 'class="svc not-running" data-service="dhcp"' in page
    assert seg.metric("netboot_dhcp_rogue_replies_total") >= 1
    assert seg.metric("netboot_dhcp_rogue_servers") == 1
    assert seg.metric("netboot_service_running", service="dhcp") == 0
    assert seg.metric("netboot_service_running", service="http") == 1

    code, out = seg.status_cli()
    assert code == 1  # a monitoring check sees it
    assert f"ALARM: dhcp NOT running: refused: another DHCP server answers: {ROGUE}" in out
    first = out.splitlines()[0]
    assert ": netboot " in first and ", up " in first
    assert first.endswith(
        f": serving http; dhcp NOT running (refused: another DHCP server answers: {ROGUE} (MAC {seg.rogue_mac}) on eth0, OFFER {status['rogue_dhcp_servers'][0]['offered']})"
    )
    code, out = seg.status_cli("--json")
    assert code == 1 and json.loads(out)["services"]["dhcp"]["state"] == "not-running"

    # a phone booting now gets its lease from dnsmasq, never an OFFER from netboot
    lease = udhcpc_lease(seg.cli, tmp_path)
    assert lease["serverid"] == ROGUE
    assert seg.metric("netboot_dhcp_messages_total", direction="out", type="OFFER") == 0
    assert ":67 " not in seg.srv.run(["ss", "-uln"]).stdout


def test_dnsmasq_appearing_after_start_raises_the_alarm(lab: Lab, tmp_path: Path) -> None:
    # A probe round every 3 s while serving (the default is 300 s).
    seg = GuardSite(lab, tmp_path, dhcp_extra="guard_interval = 3")
    seg.server.start(ready_timeout=30)
    assert "dhcp: serving eth0" in seg.server.log()
    assert seg.metric("netboot_dhcp_rogue_servers") == 0
    assert json.loads(seg.get("/api/status"))["alarms"] == []

    code, out = seg.status_cli()
    assert code == 0, out
    assert "ALARM" not in out and "dhcp     running" in out
    assert "eth0       192.168.10.100-192.168.10.120" in out

    seg.start_dnsmasq()
    warning = f"WARNING netboot.dhcp: dhcp: ANOTHER DHCP SERVER IS ON THE SEGMENT: {ROGUE} (MAC {seg.rogue_mac})"
    wait_for(lambda: warning in seg.server.log(), 30, "the rogue-DHCP warning")
    # still serving: an alarm, not a stop
    status = json.loads(seg.get("/api/status"))
    assert status["services"]["dhcp"]["state"] == "running"
    assert status["alarms"] == [
        f"dhcp: another DHCP server on the segment: {ROGUE} (MAC {seg.rogue_mac}) on eth0, "
        + status["rogue_dhcp_servers"][0]["last_kind"]
        + f" {status['rogue_dhcp_servers'][0]['offered']}"
    ]
    assert "dhcp ALARM: another DHCP server on the segment" in status["status"]
    assert "ALARM: dhcp: another DHCP server on the segment: " + ROGUE in seg.get("/")
    assert seg.metric("netboot_dhcp_rogue_servers") == 1
    assert seg.metric("netboot_dhcp_rogue_replies_total") >= 1
    assert seg.metric("netboot_service_running", service="dhcp") == 1
    assert "dhcp ALARM" in status_lines(seg.server.log())[-1]
    # every probe round finds it again, but the warning is rate-limited (one a minute)
    wait_for(lambda: seg.metric("netboot_dhcp_rogue_replies_total") >= 3, 30, "more rogue replies")
    assert seg.server.log().count(warning) == 1
    code, out = seg.status_cli()
    assert code == 1 and f"ALARM: dhcp: another DHCP server on the segment: {ROGUE}" in out


def test_passive_listening_sees_a_broadcast_offer_to_a_client(lab: Lab, tmp_path: Path) -> None:
    # No probe rounds after start: only what reaches this host by itself.
    seg = GuardSite(lab, tmp_path, dhcp_extra="guard_interval = 0")
    seg.server.start(ready_timeout=30)
    seg.start_dnsmasq()
    # A client asking for broadcast replies (-B): both servers' OFFERs reach everybody.
    udhcpc_lease(seg.cli, tmp_path, args=["-B"])
    warning = f"dhcp: ANOTHER DHCP SERVER IS ON THE SEGMENT: {ROGUE} (MAC {seg.rogue_mac})"
    wait_for(lambda: warning in seg.server.log(), 20, "the passive rogue-DHCP warning")
    assert seg.metric("netboot_dhcp_rogue_servers") == 1
