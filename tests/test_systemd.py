"""The systemd unit is valid, and `netboot serve` tells systemd when it is ready."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netns import Lab, wait_for

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
        "AmbientCapabilities=CAP_NET_RAW CAP_NET_BIND_SERVICE CAP_NET_ADMIN",
        "StateDirectory=netboot",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "LimitNOFILE=16384",
    ):
        assert line in text.splitlines(), line


@pytest.mark.netns
def test_ready_is_notified_after_sockets_are_bound(lab: Lab, tmp_path: Path) -> None:
    srv = lab.netns("srv")
    cli = lab.netns("cli")
    lab.link(srv, "eth0", cli, "eth0", "192.0.2.1/24", None)
    config = tmp_path / "netboot.toml"
    config.write_text(
        f"""
[appliance]
interface = "eth0"
state_dir = "{tmp_path / "state"}"
[provisioning]
url = "http://192.0.2.1/$mac.cfg"
[dhcp]
subnet = "192.0.2.0/24"
pool = "192.0.2.100-192.0.2.110"
[pnp]
enabled = false
[tftp]
enabled = false
[http]
enabled = false
[lldp]
enabled = false
"""
    )
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
    assert "READY=1" in message and "dhcp" in message
    # READY came after the DHCP socket was bound: port 67 is open by now.
    assert ":67 " in srv.run(["ss", "-uln"]).stdout
    proc.terminate()
    wait_for(lambda: proc.poll() is not None, 15, "netboot to stop on SIGTERM")
    assert proc.returncode == 0
    assert "STOPPING=1" in listener.recv(4096).decode()
    listener.close()
