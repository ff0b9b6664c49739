from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from netboot.config import Config, load_config
from netboot.provisioning.files import FileResolver, Resolved
from netboot.provisioning.render import (
    ConfigRenderer,
    RenderError,
    check,
    time_settings,
)

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "render"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()

INVENTORY = """\
mac,model,extension,password,display_name,input_id
00:30:4f:11:3a:f8,VIP-2140PT,1001,s3cret,Reception,4711
00:30:4f:11:3a:f9,VIP-2140PT,1002,pw2,Office 2
80:5e:c0:00:00:01,T46S,2001,pw7,Yealink desk
bad-mac,VIP-2140PT,1003,pw3,Broken
"""

GOLDEN_FILES = (
    "f0VIP-2140PThw1.100.cfg",
    "00304f113af8.cfg",
    "y000000000066.cfg",
    "805ec0000001.cfg",
)


def write_config(tmp: Path, extra: str = "", phones_extra: str = "") -> Path:
    inv = tmp / "phones.csv"
    if not inv.exists():
        inv.write_text(INVENTORY)
    path = tmp / "config.toml"
    path.write_text(
        f"""
[appliance]
interface = "lo"
address = "192.0.2.1"
state_dir = "{tmp / "state"}"
[provisioning]
url = "http://192.0.2.1/$mac.cfg"
root = "{tmp / "root"}"
[dhcp]
enabled = false
[lldp]
voice_vlan = 100
priority = 5
dscp = 46
signaling_dscp = 26
{extra}
[phones]
inventory = "{inv}"
sip_server = "192.0.2.5"
sip_port = 5060
admin_user = "admin"
admin_password = "change-me"
stun = true
ntp_server = "192.0.2.1"
time_zone = "Europe/Berlin"
{phones_extra}
"""
    )
    return path


def renderer(tmp: Path, **kw: str) -> tuple[Config, ConfigRenderer]:
    config = load_config(write_config(tmp, **kw))
    return config, ConfigRenderer(config, now=lambda: NOW)


def data(r: ConfigRenderer, name: str) -> bytes:
    rendered = r.render(name)
    assert rendered is not None, name
    return rendered.data


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden(tmp_path: Path, name: str) -> None:
    _, r = renderer(tmp_path)
    got = data(r, name)
    golden = GOLDEN / name
    if os.environ.get("NETBOOT_UPDATE_GOLDEN"):
        golden.write_bytes(got)
    assert got.decode() == golden.read_text()


def test_fanvil_structure_and_contents(tmp_path: Path) -> None:
    _, r = renderer(tmp_path)
    common = data(r, "f0VIP-2140PThw1.100.cfg").decode()
    lines = common.splitlines()
    assert lines[0] == "<<VOIP CONFIG FILE>>Version:2.0000000001"
    assert lines[-1] == "<<END OF FILE>>"
    assert "VLAN ID                :100" in lines
    assert "Voice DSCP             :46" in lines and "Signalling DSCP        :26" in lines
    assert "STUN Server            :192.0.2.1" in lines
    assert "Active URI Limit IP    :192.0.2.1" in lines
    action_lines = [x for x in lines if "/action/" in x]
    assert len(action_lines) == 29  # every chapter-4 event
    assert all("?mac=$mac&ip=$ip&model=$model" in x for x in action_lines)
    own = data(r, "00304f113af8.cfg").decode().splitlines()
    assert own.index("--SIP Line List--      :") < own.index("SIP1 Register Pswd     :s3cret")
    assert "SIP1 NAT Type          :1" in own and "SIP1 Enable Rport      :1" in own


def test_names_case_input_and_unknown(tmp_path: Path) -> None:
    _, r = renderer(tmp_path)
    assert r(f"cfg/{'00304F113AF8'.lower()}.cfg") == data(r, "00304f113af8.cfg")
    assert r("F0VIP-2140PTHW1.100.CFG") == data(r, "f0VIP-2140PThw1.100.cfg")
    assert r("4711.cfg") == data(r, "00304f113af8.cfg")  # $input ID
    assert r.lookup_input("4711") == "00:30:4f:11:3a:f8"
    assert r.lookup_input("4712") is None
    assert r("00304f113aff.cfg") is None  # not in the inventory
    assert r("f0NOPEhw1.100.cfg") is None
    assert r("readme.txt") is None
    # Common file of a model nobody has yet still renders (a phone may come first).
    assert r("f0VIP-1120PThw1.100.cfg") is not None
    assert r.file_names() == [
        "f0VIP-2140PThw1.100.cfg",
        "y000000000066.cfg",
        "00304f113af8.cfg",
        "00304f113af9.cfg",
        "805ec0000001.cfg",
    ]
    assert r.file_names("80:5e:c0:00:00:01") == ["y000000000066.cfg", "805ec0000001.cfg"]
    assert len(r.inventory().problems) == 1  # the bad row is skipped, the rest work


def test_version_rises_only_when_content_changes(tmp_path: Path) -> None:
    config, r = renderer(tmp_path)
    assert r.render("00304f113af8.cfg").version == 1  # type: ignore[union-attr]
    assert r.render("00304f113af8.cfg").version == 1  # type: ignore[union-attr]
    inv = tmp_path / "phones.csv"
    inv.write_text(INVENTORY.replace("s3cret", "n3w"))
    mac = r.render("00304f113af8.cfg")
    assert mac is not None and mac.version == 2
    assert b"Version:2.0000000002" in mac.data and b":n3w" in mac.data
    assert r.render("00304f113af9.cfg").version == 1  # type: ignore[union-attr]
    assert r.render("f0VIP-2140PThw1.100.cfg").version == 1  # type: ignore[union-attr]
    # Back to the old content: still a change for the phone, so higher again.
    inv.write_text(INVENTORY)
    assert r.render("00304f113af8.cfg").version == 3  # type: ignore[union-attr]
    r.close()
    # Another process (a restart, `netboot render`) sees the same versions.
    again = ConfigRenderer(config, now=lambda: NOW)
    assert again.render("00304f113af8.cfg").version == 3  # type: ignore[union-attr]
    # A site change bumps the common files.
    path = write_config(tmp_path, phones_extra="rport = false")
    path.write_text(path.read_text().replace("voice_vlan = 100", "voice_vlan = 200"))
    third = ConfigRenderer(load_config(path), now=lambda: NOW)
    common = third.render("f0VIP-2140PThw1.100.cfg")
    assert (
        common is not None and common.version == 2 and b"VLAN ID                :200" in common.data
    )
    own = third.render("00304f113af8.cfg")
    assert own is not None and own.version == 4 and b"SIP1 Enable Rport      :0" in own.data
    assert third.render("00304f113af9.cfg").version == 2  # type: ignore[union-attr]


def test_template_override_and_errors(tmp_path: Path) -> None:
    tdir = tmp_path / "templates"
    tdir.mkdir()
    (tdir / "fanvil-mac.cfg").write_text(
        "<<VOIP CONFIG FILE>>Version:2.{{ '%010d' % version }}\n"
        "SIP1 Phone Number :{{ phone.extension }}\n<<END OF FILE>>\n"
    )
    config, r = renderer(tmp_path, phones_extra=f'templates = "{tdir}"')
    assert data(r, "00304f113af8.cfg") == (
        b"<<VOIP CONFIG FILE>>Version:2.0000000001\nSIP1 Phone Number :1001\n<<END OF FILE>>\n"
    )
    assert data(r, "805ec0000001.cfg").startswith(b"#!version:1.0.0.1")  # built-in still used
    assert check(config) == []
    (tdir / "yealink-mac.cfg").write_text("{{ phone.nonexistent }}\n")
    (tdir / "yealink-common.cfg").write_text("{% if %}\n")
    _, r = renderer(tmp_path, phones_extra=f'templates = "{tdir}"')
    with pytest.raises(RenderError, match="nonexistent"):
        r.render("805ec0000001.cfg")
    assert r("805ec0000001.cfg") is None  # the file servers get "not ours", no crash
    problems = check(load_config(write_config(tmp_path, phones_extra=f'templates = "{tdir}"')))
    assert len(problems) == 1 and "yealink-common.cfg" in problems[0]


def test_stun_settings(tmp_path: Path) -> None:
    _, r = renderer(tmp_path, phones_extra='stun_server = "stun.example.net:3479"')
    common = data(r, "y000000000066.cfg").decode()
    assert "static.sip.nat_stun.server = stun.example.net\n" in common
    assert "static.sip.nat_stun.port = 3479\n" in common
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (state / "nat-check.json").write_text(json.dumps({"nat_type": "Symmetric NAT"}))
    _, r = renderer(tmp_path)
    assert b"SIP1 NAT Type          :0" in data(r, "00304f113af8.cfg")  # STUN cannot help


def nat_check_json(nat_type: str, usable: bool) -> str:
    """What `netboot nat-check --save` writes (the fields the renderer reads)."""
    return json.dumps(
        {
            "server": "stun.example.org",
            "server_port": 3479,
            "nat_type": nat_type,
            "stun_usable": usable,
            "phone_settings": {"STUN Refresh Time": 40},
        }
    )


@pytest.mark.parametrize(
    ("nat_type", "usable", "stun_line", "nat_line", "rport_line"),
    [
        # a cone NAT: STUN on with the checked server, even though phones.stun is off
        ("port-restricted-cone", True, "stun.example.org", "1", "0"),
        ("full-cone", True, "stun.example.org", "1", "0"),
        # symmetric NAT / UDP firewall: STUN off, Rport on although phones.rport is off
        ("symmetric", False, "", "0", "1"),
        ("symmetric-udp-firewall", False, "", "0", "1"),
        # no NAT: STUN not needed
        ("open-internet", True, "", "0", "0"),
        # an inconclusive check changes nothing: the config's own settings
        ("blocked", False, "", "0", "0"),
    ],
)
def test_saved_nat_check_drives_stun_and_rport(
    tmp_path: Path, nat_type: str, usable: bool, stun_line: str, nat_line: str, rport_line: str
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "nat-check.json").write_text(nat_check_json(nat_type, usable))
    path = write_config(tmp_path, phones_extra="rport = false")
    path.write_text(path.read_text().replace("stun = true\n", "stun = false\n"))
    r = ConfigRenderer(load_config(path), now=lambda: NOW)
    common = data(r, "f0VIP-2140PThw1.100.cfg").decode().splitlines()
    own = data(r, "00304f113af8.cfg").decode().splitlines()
    assert f"STUN Server            :{stun_line}" in common
    assert f"SIP1 NAT Type          :{nat_line}" in own
    assert f"SIP1 Enable Rport      :{rport_line}" in own
    if stun_line:
        assert "STUN Port              :3479" in common
        assert "STUN Refresh Time      :40" in common
    yealink = data(r, "805ec0000001.cfg").decode()
    assert f"account.1.nat.rport = {rport_line}\n" in yealink


def test_new_nat_check_result_bumps_versions(tmp_path: Path) -> None:
    _, r = renderer(tmp_path)
    before = r.render("00304f113af8.cfg")
    assert before is not None and b"SIP1 NAT Type          :1" in before.data
    (tmp_path / "state" / "nat-check.json").write_text(nat_check_json("symmetric", False))
    after = r.render("00304f113af8.cfg")  # the same renderer notices the new result
    assert after is not None and b"SIP1 NAT Type          :0" in after.data
    assert after.version == before.version + 1


def test_no_address_is_an_error(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(
        path.read_text()
        .replace('address = "192.0.2.1"\n', "", 1)
        .replace("http://192.0.2.1/$mac.cfg", "")
    )
    config = load_config(path)
    with pytest.raises(RenderError, match=r"appliance\.address"):
        ConfigRenderer(config).render("00304f113af8.cfg")
    assert "appliance.address" in check(config)[0]


@pytest.mark.parametrize(
    ("zone", "offset", "dst"),
    [
        ("Europe/Berlin", 60, ((3, 5, 0, 2), (10, 5, 0, 3))),
        ("America/New_York", -300, ((3, 2, 0, 2), (11, 1, 0, 2))),
        ("Australia/Sydney", 600, ((10, 1, 0, 2), (4, 1, 0, 3))),
        ("Asia/Kolkata", 330, None),
        ("UTC", 0, None),
    ],
)
def test_time_zones(zone: str, offset: int, dst: object) -> None:
    t = time_settings(zone, "", 2026)
    assert t.offset_minutes == offset
    if dst is None:
        assert t.dst is None
    else:
        assert t.dst is not None and t.dst.offset_minutes == 60
        got = tuple((p.month, p.week, p.weekday, p.hour) for p in (t.dst.start, t.dst.end))
        assert got == dst
    with pytest.raises(RenderError):
        time_settings("Mars/Olympus", "", 2026)


def test_resolver_serves_rendered_and_real_file_wins(tmp_path: Path) -> None:
    config, r = renderer(tmp_path)
    root = config.provisioning.root
    root.mkdir(parents=True)
    resolver = FileResolver(root, r, bind_mac_files=False, input_lookup=r.lookup_input)
    got = resolver.resolve("00304F113AF8.cfg", "192.0.2.10")
    assert isinstance(got, Resolved) and got.rendered and got.data == data(r, "00304f113af8.cfg")
    by_input = resolver.resolve("4711.cfg", "192.0.2.10")
    assert isinstance(by_input, Resolved) and by_input.kind == "input"
    assert by_input.mac == "00:30:4f:11:3a:f8"
    (root / "00304f113af8.cfg").write_text("hand written\n")
    real = resolver.resolve("00304f113af8.cfg", "192.0.2.10")
    assert isinstance(real, Resolved) and not real.rendered and real.path is not None


def test_render_command(tmp_path: Path) -> None:
    path = write_config(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "netboot.cli", "render", "-c", str(path), *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=False,
        )

    one = run("00-30-4F-11-3A-F8")
    assert one.returncode == 0, one.stderr
    assert "==> f0VIP-2140PThw1.100.cfg (version 1) <==" in one.stdout
    assert "SIP1 Register Pswd     :s3cret" in one.stdout
    assert "phones.csv:5: bad MAC" in one.stderr
    out = tmp_path / "out"
    written = run("--out", str(out))
    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([*GOLDEN_FILES[:4], "00304f113af9.cfg"])
    assert (out / "00304f113af8.cfg").stat().st_mode & 0o777 == 0o640
    assert run("00:30:4f:00:00:00").returncode == 1
    assert run("zz").returncode == 2
