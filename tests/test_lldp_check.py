"""`netboot check` says when the advertised voice VLAN has no interface serving it."""

from __future__ import annotations

from pathlib import Path

import pytest

from netboot.cli import main

BASE = """
[appliance]
interface = "{interface}"
address = "192.168.10.2"
state_dir = "{state}"
[provisioning]
url = "http://192.168.10.2/$mac.cfg"
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.199"
"""

SCOPE = """
[[dhcp.scope]]
interface = "{name}"
subnet = "192.168.100.0/24"
pool = "192.168.100.10-192.168.100.20"
address = "192.168.100.2"
"""

WARNING = "VLAN {vlan} is advertised but no DHCP scope serves it"

CASES = [
    # (appliance.interface, extra scope, scope vlan key, [lldp] lines, warned VLAN or None)
    ("eth0", None, None, "voice_vlan = 100", 100),
    ("eth0", "eth0.100", None, "voice_vlan = 100", None),
    ("eth0", "eth0.100", None, "voice_vlan = 200", 200),
    ("eth0", "voice", 100, "voice_vlan = 100", None),
    ("eth0", "voice", 300, "voice_vlan = 100", 100),
    ("eth0.100", None, None, "voice_vlan = 100", None),
    ("eth0", None, None, "voice_vlan = 100\nenabled = false", None),
    ("eth0", None, None, "", None),
]


@pytest.mark.parametrize(("interface", "scope", "scope_vlan", "lldp", "warned"), CASES)
def test_check_warns_about_unserved_voice_vlan(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    interface: str,
    scope: str | None,
    scope_vlan: int | None,
    lldp: str,
    warned: int | None,
) -> None:
    text = BASE.format(interface=interface, state=tmp_path / "state")
    if scope is not None:
        text += SCOPE.format(name=scope)
        if scope_vlan is not None:
            text += f"vlan = {scope_vlan}\n"
    text += f"[lldp]\n{lldp}\n"
    path = tmp_path / "netboot.toml"
    path.write_text(text)

    # --no-host: these interfaces and addresses are not this machine's (issue 13).
    assert main(["check", "--no-host", "-c", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "OK" in out
    vlan_warnings = [line for line in err.splitlines() if "lldp.voice_vlan" in line]
    if warned is None:
        assert vlan_warnings == []
    else:
        assert len(vlan_warnings) == 1
        assert vlan_warnings[0].startswith("netboot: warning: lldp.voice_vlan:")
        assert WARNING.format(vlan=warned) in vlan_warnings[0]
