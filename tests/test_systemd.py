"""The systemd unit is valid, and `netboot serve` tells systemd when it is ready."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netns import Lab, Segment, server_config, wait_for

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "netboot.service"


def test_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    netboot = shutil.which("netboot")
    assert netboot is not None, "the netboot command is not installed (pip install .)"
    # The unit names /usr/local/bin/netboot (install.sh's venv); point it at this install.
    unit = tmp_path / "netboot.service"
    unit.write_text(UNIT.read_text().replace("/opt/netboot/bin/netboot", netboot))
    proc = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "AmbientCapabilities=CAP_NET_RAW CAP_NET_BIND_SERVICE CAP_NET_ADMIN",
        "StateDirectory=netboot",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "LimitNOFILE=16384",
    ):
        assert line in text.splitlines(), line


def test_unit_exposure_is_low(tmp_path: Path) -> None:
    """`systemd-analyze security` rates the unit at most 2.5 (issue 13: it was 3.9)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    unit = tmp_path / "netboot.service"
    unit.write_text(UNIT.read_text())
    proc = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for netboot.service: ([0-9.]+)", proc.stdout)
    assert found, proc.stdout + proc.stderr
    assert float(found.group(1)) <= 2.5, proc.stdout
    # Only the capabilities the code uses, each named in the unit's comment.
    caps = next(
        line.split("=", 1)[1].split()
        for line in UNIT.read_text().splitlines()
        if line.startswith("CapabilityBoundingSet=")
    )
    assert sorted(caps) == ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]


@pytest.mark.netns
def test_ready_is_notified_after_sockets_are_bound(lab: Lab, tmp_path: Path) -> None:
    srv = Segment(lab, {"srv": "192.0.2.1/24", "cli": None})["srv"]
    config = tmp_path / "netboot.toml"
    body = '[dhcp]\nsubnet = "192.0.2.0/24"\npool = "192.0.2.100-192.0.2.110"'
    url = "http://192.0.2.1/$mac.cfg"
    config.write_text(server_config(body, state=tmp_path / "state", url=url))
    notify = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(20)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify)}
    with (tmp_path / "serve.log").open("wb") as log:
        proc = lab.spawn(
            srv,
            [sys.executable, "-m", "netboot.cli", "serve", "-c", str(config)],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    message = listener.recv(4096).decode()
    # READY does not wait for DHCP's probe for other servers, and says so; the
    # STATUS= that follows says DHCP serves, once its socket is bound.
    assert "READY=1" in message
    assert "STATUS=serving nothing; dhcp starting (probing for other DHCP servers" in message
    message = listener.recv(4096).decode()
    assert message == "STATUS=serving dhcp"
    assert ":67 " in srv.run(["ss", "-uln"]).stdout
    proc.terminate()
    wait_for(lambda: proc.poll() is not None, 15, "netboot to stop on SIGTERM")
    assert proc.returncode == 0
    assert "STOPPING=1" in listener.recv(4096).decode()
    listener.close()
