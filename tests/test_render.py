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
    check_file,
    time_settings,
)
from netboot.provisioning.vendorfile import VendorFile, parse_fanvil, parse_yealink

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


def fanvil(r: ConfigRenderer, name: str) -> VendorFile:
    """A rendered PLANET/Fanvil file, parsed with the firmware's rules."""
    return parse_fanvil(data(r, name).decode())


QOS, CTI, GLOBAL = "<QOS CONFIG MODULE>", "<CTI CONFIG MODULE>", "<GLOBAL CONFIG MODULE>"
SIP, MMI, AUTO = "<SIP CONFIG MODULE>", "<MMI CONFIG MODULE>", "<AUTOUPDATE CONFIG MODULE>"
PHONE = "<PHONE FEATURE MODULE>"


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden(tmp_path: Path, name: str) -> None:
    _, r = renderer(tmp_path)
    got = data(r, name)
    golden = GOLDEN / name
    if os.environ.get("NETBOOT_UPDATE_GOLDEN"):
        golden.write_bytes(got)
    assert got.decode() == golden.read_text()
    rendered = r.render(name)
    assert rendered is not None and check_file(rendered) == []  # firmware keys only


def test_fanvil_structure_and_contents(tmp_path: Path) -> None:
    _, r = renderer(tmp_path)
    common = data(r, "f0VIP-2140PThw1.100.cfg").decode()
    lines = common.splitlines()
    assert lines[0] == "<<VOIP CONFIG FILE>>Version:2.0000000001"
    assert lines[-1] == "<<END OF FILE>>"
    f = parse_fanvil(common)
    # Voice VLAN, priority, DSCP, LLDP where the firmware reads them (QOS module,
    # the firmware's own spelling "Singalling DSCP"; Fanvil X3U / Digium exports).
    assert (f.get("Enable VLAN", QOS), f.get("VLAN ID", QOS)) == ("1", "100")
    assert (f.get("Voice Priority", QOS), f.get("Signalling Priority", QOS)) == ("5", "5")
    assert f.get("Enable diffServ", QOS) == "1"
    assert (f.get("Voice DSCP", QOS), f.get("Singalling DSCP", QOS)) == ("46", "26")
    assert (f.get("LLDP Transmit", QOS), f.get("LLDP Learn Policy", QOS)) == ("1", "1")
    # The web login is the MMI account.
    assert f.get("--MMI Account--", MMI) == ""
    assert (f.get("Account1 Name", MMI), f.get("Account1 Password", MMI)) == (
        "admin",
        "change-me",
    )
    assert f.get("Account1 Level", MMI) == "10"
    # Time: quarter hours and the firmware's zone name; DST as the week rule.
    assert (f.get("Time Zone", PHONE), f.get("Time Zone Name", PHONE)) == ("4", "UTC+1")
    assert f.get("SNTP Server", PHONE) == "192.0.2.1"
    assert [f.get(f"DST {k}", PHONE) for k in ("Start Mon", "Start Week", "End Mon")] == [
        "3",
        "5",
        "10",
    ]
    # Provisioning server, numeric protocol (4 = HTTP on 2.x), PnP.
    assert f.get("Flash Server IP", AUTO) == "http://192.0.2.1"
    assert (f.get("Flash File Name", AUTO), f.get("Flash Protocol", AUTO)) == ("$mac.cfg", "4")
    assert (f.get("PNP Enable", AUTO), f.get("PNP IP", AUTO)) == ("1", "224.0.1.75")
    assert f.get("STUN Server", SIP) == "192.0.2.1"
    # Action URLs in the CTI module (2.x), Active URI restricted to the appliance.
    assert f.get("Active Uri IP", CTI) == "192.0.2.1"
    actions = [e for e in f.entries if e.module == CTI and "/action/" in e.value]
    assert len(actions) == 27  # every chapter-4 event 2.x firmware has a key for
    assert f.get(
        "Boot Completed Url",
        CTI,
    ).startswith("http://192.0.2.1/action/setup-completed?")  # type: ignore[union-attr]
    assert all("?mac=$mac&ip=$ip&model=$model" in e.value for e in actions)
    assert GLOBAL not in f.modules()
    own = fanvil(r, "00304f113af8.cfg")
    assert own.get("--SIP Line List--", SIP) == ""
    assert own.get("SIP1 Register Pswd", SIP) == "s3cret"
    assert own.get("SIP1 NAT Type", SIP) == "1" and own.get("SIP1 Enable Rport", SIP) == "1"


def test_every_rendered_file_uses_only_firmware_keys(tmp_path: Path) -> None:
    """Both Fanvil layouts and Yealink: parsed with the vendor's rules, every
    module/key is one a real export of that layout has (tests/data)."""
    (tmp_path / "phones.csv").write_text(
        INVENTORY
        + "00:30:4f:11:3a:fa,X6,1009,pw9,Old X6\n"
        + "0c:38:3e:00:00:01,X4,1010,pw10,Desk X4,,2.14.0.7386\n"
    )
    _, r = renderer(tmp_path)
    names = r.file_names()
    layouts = {}
    for name in names:
        rendered = r.render(name)
        assert rendered is not None
        layouts[name] = rendered.layout
        assert check_file(rendered) == [], name
    assert set(layouts.values()) == {"fanvil-1", "fanvil-2", "yealink"}


def test_firmware_column_picks_the_fanvil_layout(tmp_path: Path) -> None:
    (tmp_path / "phones.csv").write_text(
        "00:30:4f:11:3a:f8,VIP-2140PT,1001,s3cret,Reception,,1.6.3.160\n"
    )
    _, r = renderer(tmp_path)
    common = fanvil(r, "f0VIP-2140PThw1.100.cfg")
    # 1.x: Action URLs and time in GLOBAL, with 1.x spellings; Download Server IP.
    assert CTI not in common.modules() and PHONE not in common.modules()
    assert common.get("Active Uri IP", GLOBAL) == "192.0.2.1"
    assert common.get("Incmoing Call Url", GLOBAL) is not None  # sic, the 1.x key
    assert common.get("B Transfer Url", GLOBAL) is not None
    assert len([e for e in common.entries if "/action/" in e.value]) == 29
    assert common.get("Time Zone", GLOBAL) == "4"
    assert common.get("DST Start Week", GLOBAL) == "-1"  # last week, as Wazo writes 1.x
    assert common.get("Download Server IP", AUTO) == "http://192.0.2.1"
    assert common.get("Flash Server IP", AUTO) is None
    # Mixed firmware of one model: the model's default, and a visible problem.
    (tmp_path / "phones.csv").write_text(
        "00:30:4f:11:3a:f8,VIP-2140PT,1001,s3cret,Reception,,1.6.3.160\n"
        "00:30:4f:11:3a:f9,VIP-2140PT,1002,pw,Office\n"
        "00:30:4f:11:3a:fa,VIP-2140PT,1003,pw,Bad,,beta\n"
    )
    inv = r.inventory()
    assert any("firmware 'beta'" in p for p in inv.problems)
    assert any("1.x and 2.x" in p for p in inv.layout_problems())
    assert CTI in fanvil(r, "f0VIP-2140PThw1.100.cfg").modules()


def test_yealink_keys_and_zone_names(tmp_path: Path) -> None:
    _, r = renderer(tmp_path)
    y = parse_yealink(data(r, "y000000000066.cfg").decode())
    assert y.get("features.show_action_uri_option") == "0"  # no pop-up per Active URI
    assert y.get("features.action_uri_limit_ip") == "192.0.2.1"
    assert y.get("local_time.time_zone") == "+1"
    assert y.get("local_time.time_zone_name") == "Germany(Berlin)"
    assert y.values("static.security.user_password") == ["admin:change-me"]
    assert y.get("static.network.vlan.internet_port_vid") == "100"
    assert y.get("static.network.lldp.enable") == "1"
    assert y.get("static.auto_provision.server.url") == "http://192.0.2.1/"
    assert y.get("action_url.setup_completed", "").startswith(  # type: ignore[union-attr]
        "http://192.0.2.1/action/setup-completed?"
    )
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("Europe/Berlin", "America/Chicago"))
    y = parse_yealink(
        data(ConfigRenderer(load_config(path), now=lambda: NOW), "y000000000066.cfg").decode()
    )
    assert (y.get("local_time.time_zone"), y.get("local_time.time_zone_name")) == (
        "-6",
        "United States-Central Time",
    )


def test_old_wrong_keys_fail_the_check() -> None:
    """What netboot used to write (issue 14) fails the key-level check."""
    from netboot.provisioning.vendorfile import check_rendered

    old = (
        "<<VOIP CONFIG FILE>>Version:2.0000000001\n"
        "<NET CONFIG MODULE>\nVoice 802.1P Priority  :5\nSignalling DSCP        :26\n"
        "<WEB CONFIG MODULE>\nUser Name              :admin\n"
        "<ACTION URL CONFIG MODULE>\nSetup Completed :http://x/\n<<END OF FILE>>\n"
    )
    problems = check_rendered("fanvil-2", old)
    assert len(problems) == 4
    assert "Voice 802.1P Priority" in problems[0] and "Signalling DSCP" in problems[1]
    assert "module <WEB CONFIG MODULE>" in problems[2]
    assert "module <ACTION URL CONFIG MODULE>" in problems[3]
    assert check_rendered("yealink", "#!version:1.0.0.1\nlocal_time.time_zone_nmae = x\n")


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
    assert common is not None and common.version == 2
    assert parse_fanvil(common.data.decode()).get("VLAN ID", QOS) == "200"
    own = third.render("00304f113af8.cfg")
    assert own is not None and own.version == 4
    assert parse_fanvil(own.data.decode()).get("SIP1 Enable Rport", SIP) == "0"
    assert third.render("00304f113af9.cfg").version == 2  # type: ignore[union-attr]


def test_template_override_and_errors(tmp_path: Path) -> None:
    tdir = tmp_path / "templates"
    tdir.mkdir()
    (tdir / "fanvil-mac.cfg").write_text(
        "<<VOIP CONFIG FILE>>Version:2.{{ '%010d' % version }}\n"
        "<SIP CONFIG MODULE>\nSIP1 Phone Number :{{ phone.extension }}\n<<END OF FILE>>\n"
    )
    config, r = renderer(tmp_path, phones_extra=f'templates = "{tdir}"')
    assert data(r, "00304f113af8.cfg") == (
        b"<<VOIP CONFIG FILE>>Version:2.0000000001\n<SIP CONFIG MODULE>\n"
        b"SIP1 Phone Number :1001\n<<END OF FILE>>\n"
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
    assert fanvil(r, "00304f113af8.cfg").get("SIP1 NAT Type", SIP) == "0"  # STUN cannot help


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
    common = fanvil(r, "f0VIP-2140PThw1.100.cfg")
    own = fanvil(r, "00304f113af8.cfg")
    assert common.get("STUN Server", SIP) == stun_line
    assert own.get("SIP1 NAT Type", SIP) == nat_line
    assert own.get("SIP1 Enable Rport", SIP) == rport_line
    if stun_line:
        assert common.get("STUN Port", SIP) == "3479"
        assert common.get("STUN Refresh Time", SIP) == "40"
    yealink = data(r, "805ec0000001.cfg").decode()
    assert f"account.1.nat.rport = {rport_line}\n" in yealink


def test_new_nat_check_result_bumps_versions(tmp_path: Path) -> None:
    _, r = renderer(tmp_path)
    before = r.render("00304f113af8.cfg")
    assert before is not None
    assert parse_fanvil(before.data.decode()).get("SIP1 NAT Type", SIP) == "1"
    (tmp_path / "state" / "nat-check.json").write_text(nat_check_json("symmetric", False))
    after = r.render("00304f113af8.cfg")  # the same renderer notices the new result
    assert after is not None
    assert parse_fanvil(after.data.decode()).get("SIP1 NAT Type", SIP) == "0"
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
    assert "SIP1 Register Pswd      :s3cret" in one.stdout
    assert "phones.csv:5: bad MAC" in one.stderr
    out = tmp_path / "out"
    written = run("--out", str(out))
    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([*GOLDEN_FILES[:4], "00304f113af9.cfg"])
    assert (out / "00304f113af8.cfg").stat().st_mode & 0o777 == 0o640
    assert run("00:30:4f:00:00:00").returncode == 1
    assert run("zz").returncode == 2
    checked = run("--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "00304f113af8.cfg  fanvil-2  ok" in checked.stdout
    assert "y000000000066.cfg  yealink  ok" in checked.stdout
    # An override template with a misspelt key fails the check, naming it.
    tdir = tmp_path / "templates"
    tdir.mkdir()
    (tdir / "fanvil-mac.cfg").write_text(
        "<<VOIP CONFIG FILE>>Version:2.{{ version }}\n<SIP CONFIG MODULE>\n"
        "SIP1 Register Pasword :{{ phone.password }}\n<<END OF FILE>>\n"
    )
    path.write_text(path.read_text() + f'templates = "{tdir}"\n')
    bad = run("--check", "00:30:4f:11:3a:f8")
    assert bad.returncode == 1
    assert "00304f113af8.cfg  fanvil-2  FAILED" in bad.stdout
    assert (
        "key 'SIP1 Register Pasword' in <SIP CONFIG MODULE> is in no fanvil-2 export" in bad.stdout
    )


# ---------------------------------------------------------------- other families

SNOM_ROW = '00:04:13:22:33:44,D785,3001,p&w<1,Snom "desk"\n'
SNOM_SET = "phone-settings"


def test_snom_files_carry_the_site_in_snom_keys(tmp_path: Path) -> None:
    from netboot.provisioning.vendorfile import parse_snom

    (tmp_path / "phones.csv").write_text(INVENTORY + SNOM_ROW)
    _, r = renderer(tmp_path)
    assert {"snomD785.htm", "000413223344.xml"} <= set(r.file_names())
    common = parse_snom(data(r, "snomD785.htm").decode())

    def get(key: str) -> str | None:
        return common.get(key, SNOM_SET)

    assert (get("vlan_id"), get("vlan_qos"), get("lldp_enable")) == ("100", "5", "on")
    assert (get("codec_tos"), get("signaling_tos")) == ("184", "104")  # DSCP 46, 26 as TOS bytes
    assert (get("timezone"), get("utc_offset"), get("ntp_server")) == ("GER+1", "3600", "192.0.2.1")
    assert (get("http_user"), get("http_pass")) == ("admin", "change-me")
    # Snom's own macro in its settings URL; refresh in seconds.
    assert get("setting_server") == "http://192.0.2.1/{mac}.xml"
    assert get("settings_refresh_timer") == "3600"
    assert get("action_log_on_url").startswith(  # type: ignore[union-attr]
        "http://192.0.2.1/action/registration-succeeded?mac=$mac&ip=$ip"
    )
    assert get("action_missed_url") is not None and get("action_hold_url") is None
    own = parse_snom(data(r, "000413223344.xml").decode())

    def line(key: str) -> str | None:
        return own.get(f"{key}[1]", SNOM_SET)

    assert (line("user_name"), line("user_pass"), line("user_realname")) == (
        "3001",
        "p&w<1",
        'Snom "desk"',
    )  # escaped in the XML, the phone reads them back as written
    assert (line("user_host"), line("stun_server")) == ("192.0.2.5", "192.0.2.1:3478")
    for name in ("snomD785.htm", "000413223344.xml"):
        rendered = r.render(name)
        assert rendered is not None and rendered.layout == "snom"
        assert check_file(rendered) == [], name
    # The name its firmware asks for, in any case; not another family's name for it.
    assert r.render("000413223344.XML") is not None
    assert r.render("000413223344.cfg") is None
    assert r.render("cfg000413223344.xml") is None


def test_snom_time_zone_without_a_snom_name(tmp_path: Path) -> None:
    from netboot.provisioning.vendorfile import parse_snom

    (tmp_path / "phones.csv").write_text(SNOM_ROW)
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("Europe/Berlin", "Asia/Kolkata"))
    r = ConfigRenderer(load_config(path), now=lambda: NOW)
    common = parse_snom(data(r, "snomD785.htm").decode())
    assert common.get("timezone", SNOM_SET) is None
    assert common.get("utc_offset", SNOM_SET) == str(330 * 60)


GS_ROW = "c0:74:ad:00:02:01,GXP2170,4001,p&w,GS desk\n"


def test_grandstream_file_carries_site_and_line_in_p_values(tmp_path: Path) -> None:
    from netboot.provisioning.vendorfile import parse_grandstream

    (tmp_path / "phones.csv").write_text(INVENTORY + GS_ROW)
    _, r = renderer(tmp_path)
    assert {"cfg.xml", "cfgc074ad000201.xml"} <= set(r.file_names())
    own = parse_grandstream(data(r, "cfgc074ad000201.xml").decode())

    def p(key: str) -> str | None:
        return own.get(key, "config")

    assert own.get("mac", "gs_provision") == "c074ad000201"
    # Voice VLAN, priority, LLDP, DSCP (SIP, RTP), as P-values.
    assert (p("P51"), p("P87"), p("P1684"), p("P5046"), p("P5050")) == ("100", "5", "1", "26", "46")
    # Time: NTP and a POSIX zone as Wazo writes it for Central Europe.
    assert (p("P30"), p("P64")) == ("192.0.2.1", "CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00")
    # Provisioning: HTTP (1) from the server path without scheme, every 60 minutes.
    assert (p("P212"), p("P237"), p("P194"), p("P193")) == ("1", "192.0.2.1", "1", "60")
    assert (p("P2"), p("P76"), p("P52")) == ("change-me", "192.0.2.1:3478", "1")
    assert (p("P271"), p("P35"), p("P34"), p("P47"), p("P3")) == (
        "1",
        "4001",
        "p&w",
        "192.0.2.5",
        "GS desk",
    )
    for name in ("cfg.xml", "cfgc074ad000201.xml"):
        rendered = r.render(name)
        assert rendered is not None and rendered.layout == "grandstream"
        assert check_file(rendered) == [], name
    assert r.render("CFGC074AD000201.xml") is not None
    assert r.render("c074ad000201.cfg") is None  # a Yealink/Fanvil name for the same MAC


POLY_ROW = '64:16:7f:00:00:01,VVX410,5001,p&w,Poly "desk"\n'


def test_polycom_master_and_phone_file(tmp_path: Path) -> None:
    from netboot.provisioning.vendorfile import parse_polycom

    (tmp_path / "phones.csv").write_text(INVENTORY + POLY_ROW)
    _, r = renderer(tmp_path)
    assert {"000000000000.cfg", "64167f000001-phone.cfg"} <= set(r.file_names())
    master = parse_polycom(data(r, "000000000000.cfg").decode())
    assert master.get("CONFIG_FILES", "APPLICATION") == "[PHONE_MAC_ADDRESS]-phone.cfg"
    own = parse_polycom(data(r, "64167f000001-phone.cfg").decode())
    get = own.get
    assert (get("device.set"), get("device.net.vlanId.set"), get("device.net.vlanId")) == (
        "1",
        "1",
        "100",
    )
    assert (get("qos.ethernet.rtp.user_priority"), get("qos.ip.rtp.dscp")) == ("5", "46")
    assert get("qos.ip.callControl.dscp") == "26" and get("device.net.lldpEnabled") == "1"
    assert (get("device.prov.serverName"), get("device.prov.serverType")) == ("192.0.2.1/", "HTTP")
    assert get("prov.polling.period") == "3600"
    # Time: offset in seconds, last Sunday of March 02:00 to last Sunday of October 03:00.
    assert get("tcpIpApp.sntp.gmtOffset") == "3600"
    dst = "tcpIpApp.sntp.daylightSavings."
    assert [get(dst + k) for k in ("start.month", "start.time", "start.dayOfWeek")] == [
        "3",
        "2",
        "1",
    ]
    assert get(dst + "stop.dayOfWeek.lastInMonth") == "1" and get(dst + "stop.time") == "3"
    assert (get("reg.1.auth.password"), get("reg.1.displayName")) == ("p&w", 'Poly "desk"')
    for name in ("000000000000.cfg", "64167f000001-phone.cfg"):
        rendered = r.render(name)
        assert rendered is not None and rendered.layout == "polycom"
        assert check_file(rendered) == [], name
    # Its per-phone master <mac>.cfg is not rendered: the phone falls back to 000000000000.cfg.
    assert r.render("64167f000001.cfg") is None


SPA_ROW = "00:02:fd:00:00:01,SPA504G,6001,p&w,Cisco desk\n"


def test_cisco_spa_profile_and_per_mac_file(tmp_path: Path) -> None:
    from netboot.provisioning.vendorfile import parse_cisco

    (tmp_path / "phones.csv").write_text(INVENTORY + SPA_ROW)
    _, r = renderer(tmp_path)
    assert {"spa504G.cfg", "0002fd000001.xml"} <= set(r.file_names())
    common = parse_cisco(data(r, "spa504G.cfg").decode())
    get = common.get
    assert get("Profile_Rule_B") == "http://192.0.2.1/$MA.xml"
    assert (get("Enable_VLAN"), get("VLAN_ID"), get("Enable_LLDP-MED")) == ("Yes", "100", "Yes")
    assert (get("SIP_TOS_DiffServ_Value_1_"), get("RTP_TOS_DiffServ_Value_1_")) == ("0x68", "0xb8")
    assert (get("RTP_CoS_Value_1_"), get("Resync_Periodic")) == ("5", "3600")
    assert (get("Time_Zone"), get("Daylight_Saving_Time_Rule")) == (
        "GMT+01:00",
        "start=3/-1/7/2:0:0;end=10/-1/7/3:0:0;save=1:0:0",
    )  # Wazo's form for Central Europe
    own = parse_cisco(data(r, "0002fd000001.xml").decode())
    assert (own.get("User_ID_1_"), own.get("Password_1_"), own.get("Proxy_1_")) == (
        "6001",
        "p&w",
        "192.0.2.5",
    )
    assert own.get("Admin_Passwd") == "change-me"  # also read alone (option 159/160)
    for name in ("spa504G.cfg", "0002fd000001.xml"):
        rendered = r.render(name)
        assert rendered is not None and rendered.layout == "cisco-spa"
        assert check_file(rendered) == [], name
    assert r.render("SPA504G.CFG") is not None  # TFTP names in any case


def test_gigaset_mac_file(tmp_path: Path) -> None:
    from netboot.provisioning.vendorfile import parse_gigaset

    (tmp_path / "phones.csv").write_text(INVENTORY + "7c:2f:80:00:00:01,N870,7001,p&w,DECT\n")
    _, r = renderer(tmp_path)
    assert "7C2F80000001.xml" in r.file_names()
    own = parse_gigaset(data(r, "7C2F80000001.xml").decode())

    def get(key: str) -> str | None:
        return own.get(key, "nvm")

    assert (get("DmGlobal.0.TimeZone"), get("DmGlobal.0.NtpServer")) == (
        "Europe/Berlin",
        "192.0.2.1",
    )
    assert get("Provisioning.global.ProvisioningServer") == "http://192.0.2.1/"
    assert (get("SipAccount.00001.UserName"), get("SipAccount.00001.AuthPassword")) == (
        "7001",
        "p&w",
    )
    assert get("SipProvider.0.RegServerAddress") == "192.0.2.5"
    rendered = r.render("7c2f80000001.xml")
    assert rendered is not None and check_file(rendered) == []


def test_panasonic_files_and_a_value_it_cannot_hold(tmp_path: Path) -> None:
    from netboot.provisioning.vendorfile import parse_panasonic

    (tmp_path / "phones.csv").write_text(INVENTORY + "00:80:f0:00:00:01,KX-HDV130,8001,p&w,Pana\n")
    _, r = renderer(tmp_path)
    assert {"KX-HDV130.cfg", "Config0080F0000001.cfg"} <= set(r.file_names())
    own = parse_panasonic(data(r, "Config0080F0000001.cfg").decode())
    get = own.get
    assert get("CFG_STANDARD_FILE_PATH") == "http://192.0.2.1/Config{MAC}.cfg"
    assert (get("VLAN_ENABLE"), get("VLAN_ID_IP_PHONE"), get("CFG_CYCLIC_INTVL")) == (
        "Y",
        "100",
        "60",
    )
    assert get("LOCAL_TIME_ZONE_POSIX") == "CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00"
    assert (get("SIP_AUTHID_1"), get("SIP_PASS_1"), get("SIP_RGSTR_ADDR_1")) == (
        "8001",
        "p&w",
        "192.0.2.5",
    )
    for name in ("KX-HDV130.cfg", "Config0080F0000001.cfg"):
        rendered = r.render(name)
        assert rendered is not None and check_file(rendered) == [], name
    (tmp_path / "phones.csv").write_text('00:80:f0:00:00:01,KX-HDV130,8001,"pw""x",Pana\n')
    with pytest.raises(RenderError, match="cannot hold a double quote"):
        r.render("Config0080F0000001.cfg")


def test_avaya_settings_and_mac_file(tmp_path: Path) -> None:
    from netboot.provisioning.vendorfile import parse_avaya

    (tmp_path / "phones.csv").write_text(INVENTORY + "c8:1f:ea:00:00:01,J179,9001,pw9,Avaya\n")
    _, r = renderer(tmp_path)
    assert {"46xxsettings.txt", "c81fea000001.cfg"} <= set(r.file_names())
    settings = parse_avaya(data(r, "46xxsettings.txt").decode())
    get = settings.get
    assert (get("L2Q"), get("L2QVLAN"), get("L2QAUD"), get("DSCPAUD"), get("DSCPSIG")) == (
        "1",
        "100",
        "5",
        "46",
        "26",
    )
    assert (get("TIMEZONE"), get("SNTPSRVR"), get("HTTPSRVR")) == (
        "Europe/Berlin",
        "192.0.2.1",
        "192.0.2.1",
    )
    assert get("SIP_CONTROLLER_LIST") == "192.0.2.5:5060;transport=udp"
    assert settings.values("GET", "script") == ["$MACADDR.cfg"]
    own = parse_avaya(data(r, "c81fea000001.cfg").decode())
    assert (own.get("FORCE_SIP_USERNAME"), own.get("FORCE_SIP_PASSWORD")) == ("9001", "pw9")
    for name in ("46xxsettings.txt", "c81fea000001.cfg"):
        rendered = r.render(name)
        assert rendered is not None and check_file(rendered) == [], name
