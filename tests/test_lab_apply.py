"""Lab phones apply what they fetched with the vendor's rules (netboot/lab/apply.py)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
from pathlib import Path

import pytest

from netboot.config import load_config
from netboot.lab.apply import (
    Applied,
    ConfigRejected,
    active_uri_status,
    apply_files,
    layout_for,
    next_file,
)
from netboot.lab.webui import ActiveUriLog, PhoneWebServer
from netboot.provisioning.render import ConfigRenderer
from tests.test_lab import assert_nothing_left, run_lab
from tests.test_render import INVENTORY, NOW, write_config

EVENTS = ("setup-completed", "registration-succeeded")


def rendered(tmp_path: Path, inventory: str = INVENTORY) -> ConfigRenderer:
    (tmp_path / "phones.csv").write_text(inventory)
    return ConfigRenderer(load_config(write_config(tmp_path)), now=lambda: NOW)


def files(r: ConfigRenderer, common: str, own: str) -> tuple[bytes, bytes]:
    a, b = r.render(common), r.render(own)
    assert a is not None and b is not None
    return a.data, b.data


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_fanvil_2x_phone_applies_its_files(tmp_path: Path) -> None:
    r = rendered(tmp_path)
    common, own = files(r, "f0VIP-2140PThw1.100.cfg", "00304f113af8.cfg")
    applied = apply_files(layout_for("planet", "2.10.2.6887"), common, own, EVENTS)
    assert applied.layout == "fanvil-2"
    assert (applied.vlan, applied.priority) == (100, 5)
    assert (applied.admin_user, applied.admin_password) == ("admin", "change-me")
    assert applied.active_uri_ip == "192.0.2.1"
    assert (applied.sip_user, applied.sip_server) == ("1001", "192.0.2.5")
    url = applied.action_url("registration-succeeded", "00304f113af8", "192.0.2.10", "VIP 1")
    assert url.startswith(
        "http://192.0.2.1/action/registration-succeeded?mac=00304f113af8&ip=192.0.2.10&model=VIP%201"
    )


def test_fanvil_1x_and_yealink_phones_apply_theirs(tmp_path: Path) -> None:
    r = rendered(tmp_path, INVENTORY + "00:30:4f:11:3a:fa,X6,1009,pw9,Old X6\n")
    common, own = files(r, "f0X6hw1.100.cfg", "00304f113afa.cfg")
    old = apply_files(layout_for("planet", "1.6.3"), common, own, EVENTS)
    assert (old.layout, old.vlan, old.sip_user) == ("fanvil-1", 100, "1009")
    assert old.action_urls["setup-completed"].startswith("http://192.0.2.1/action/setup-")
    # A 2.x phone given the 1.x file finds none of its CTI keys: it refuses it.
    with pytest.raises(ConfigRejected, match="GLOBAL CONFIG MODULE"):
        apply_files("fanvil-2", common, own, EVENTS)
    common, own = files(r, "y000000000066.cfg", "805ec0000001.cfg")
    y = apply_files("yealink", common, own, EVENTS)
    assert (y.vlan, y.admin_user, y.admin_password, y.sip_user) == (
        100,
        "admin",
        "change-me",
        "2001",
    )
    assert y.action_urls["registration-succeeded"].startswith("http://192.0.2.1/action/")


def test_a_misspelt_or_missing_key_is_refused_naming_it(tmp_path: Path) -> None:
    r = rendered(tmp_path)
    common, own = files(r, "f0VIP-2140PThw1.100.cfg", "00304f113af8.cfg")
    misspelt = common.replace(b"Singalling DSCP", b"Signalling DSCP")
    with pytest.raises(ConfigRejected, match="'Signalling DSCP' in <QOS CONFIG MODULE>"):
        apply_files("fanvil-2", misspelt, own, EVENTS)
    no_vlan = b"\n".join(line for line in common.split(b"\n") if not line.startswith(b"VLAN ID"))
    with pytest.raises(ConfigRejected, match="no <QOS CONFIG MODULE> VLAN ID"):
        apply_files("fanvil-2", no_vlan, own, EVENTS)
    with pytest.raises(ConfigRejected, match="own file: line 1"):
        apply_files("fanvil-2", common, b"hello", EVENTS)
    common, own = files(r, "y000000000066.cfg", "805ec0000001.cfg")
    no_admin = common.replace(b"static.security.user_password = admin:", b"# ")
    with pytest.raises(ConfigRejected, match="user_password = admin"):
        apply_files("yealink", no_admin, own, EVENTS)


def test_active_uri_only_from_the_allowed_address_with_the_admin_account(tmp_path: Path) -> None:
    r = rendered(tmp_path)
    applied = apply_files(
        "fanvil-2", *files(r, "f0VIP-2140PThw1.100.cfg", "00304f113af8.cfg"), EVENTS
    )
    good = basic("admin", "change-me")
    assert active_uri_status(applied, "192.0.2.1", good) == 200
    assert active_uri_status(applied, "192.0.2.99", good) == 403
    assert active_uri_status(applied, "192.0.2.1", basic("admin", "admin")) == 401
    assert active_uri_status(applied, "192.0.2.1", "") == 401
    assert active_uri_status(applied, "192.0.2.1", "Basic !!!") == 401
    assert active_uri_status(None, "192.0.2.1", good) == 403  # nothing applied yet


@pytest.mark.netns
@pytest.mark.timeout(240)
def test_lab_phones_apply_rendered_files_and_answer_active_uri() -> None:
    code, data, stderr = run_lab("--phones", "6", "--mix", "planet=1,yealink=1")
    if "http" not in data["services"]:
        pytest.skip("this build serves no files")
    assert code == 0, stderr
    assert data["applied"] == 6
    # `netboot phone` from the appliance is accepted by every phone; the same
    # account from a phone's address is refused.
    assert data["active_uri"] == {"phones": 6, "accepted": 6, "refused_from_other_address": 1}
    for r in data["results"]:
        assert "apply" in r["steps"] and r["vlan"] == 100, r
    assert_nothing_left(data["lab"])


@pytest.mark.netns
@pytest.mark.timeout(240)
def test_lab_phone_given_a_misspelt_key_fails_visibly(tmp_path: Path) -> None:
    builtin = Path(__file__).resolve().parent.parent / "netboot/provisioning/templates"
    text = (builtin / "fanvil-common.cfg").read_text()
    (tmp_path / "fanvil-common.cfg").write_text(text.replace("Singalling DSCP", "Signalling DSCP"))
    code, data, _ = run_lab(
        "--phones", "4", "--mix", "planet=1,yealink=1", "--templates", str(tmp_path)
    )
    if "http" not in data["services"]:
        pytest.skip("this build serves no files")
    assert code == 1
    failed = [r for r in data["results"] if r["result"] != "ok"]
    assert {r["vendor"] for r in failed} == {"planet"} and len(failed) == 2
    for r in failed:
        assert "config rejected" in r["error"] and "'Signalling DSCP'" in r["error"], r
    assert_nothing_left(data["lab"])


def test_phone_web_server_answers_as_the_config_says(tmp_path: Path) -> None:
    """The lab phones' port-80 server, on loopback: 200 / 401 with a Basic
    challenge / 403 / 404, and a bounded log per phone."""
    r = rendered(tmp_path)
    applied = apply_files(
        "fanvil-2", *files(r, "f0VIP-2140PThw1.100.cfg", "00304f113af8.cfg"), EVENTS
    )
    allowed = dataclasses.replace(applied, active_uri_ip="127.0.0.1")
    log = ActiveUriLog()
    state: dict[str, Applied] = {"127.0.0.1": allowed}

    def lookup(ip: str) -> tuple[Applied | None, ActiveUriLog] | None:
        return (state[ip], log) if ip in state else None

    async def get(port: int, path: str, auth: str) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n".encode())
        data = await reader.read(-1)
        writer.close()
        return data

    async def main() -> list[bytes]:
        server = PhoneWebServer(lookup)
        port = await server.start(port=0, host="127.0.0.1")
        try:
            good = basic("admin", "change-me")
            answers = [
                await get(port, "/cgi-bin/ConfigManApp.com?key=OK", good),
                await get(port, "/servlet?key=Reboot", good),
                await get(port, "/cgi-bin/ConfigManApp.com?key=OK", basic("admin", "x")),
                await get(port, "/index.html", good),
            ]
            state["127.0.0.1"] = dataclasses.replace(allowed, active_uri_ip="192.0.2.1")
            answers.append(await get(port, "/cgi-bin/ConfigManApp.com?key=OK", good))
            for _ in range(40):
                await get(port, "/servlet?key=OK", good)
            return answers
        finally:
            server.close()

    ok, yealink, wrong, other, elsewhere = asyncio.run(main())
    assert ok.startswith(b"HTTP/1.1 200 ") and yealink.startswith(b"HTTP/1.1 200 ")
    assert (
        wrong.startswith(b"HTTP/1.1 401 ") and b'WWW-Authenticate: Basic realm="lab phone"' in wrong
    )
    assert other.startswith(b"HTTP/1.1 404 ")
    assert elsewhere.startswith(b"HTTP/1.1 403 ")
    assert len(log.entries) == 32  # bounded
    assert log.entries[-1] == ("127.0.0.1", "OK", 403)


@pytest.mark.netns
@pytest.mark.timeout(240)
def test_lab_phone_moves_to_the_vlan_its_config_names(tmp_path: Path) -> None:
    """A config naming VLAN 200 (LLDP says 100): the PLANET phones go by their
    config; the lab serves no DHCP scope in VLAN 200, so they fail, saying why.
    The Yealink phones (built-in template, VLAN 100) pass."""
    builtin = Path(__file__).resolve().parent.parent / "netboot/provisioning/templates"
    text = (builtin / "fanvil-common.cfg").read_text()
    assert "site.qos.vlan or 256" in text
    (tmp_path / "fanvil-common.cfg").write_text(text.replace("site.qos.vlan or 256", "200"))
    code, data, _ = run_lab(
        "--phones",
        "4",
        "--mix",
        "planet=1,yealink=1",
        "--templates",
        str(tmp_path),
        "--timeout",
        "4",
    )
    if "lldp" not in data["services"]:
        pytest.skip("this build has no voice VLAN")
    assert code == 1
    failed = [r for r in data["results"] if r["result"] != "ok"]
    assert {r["vendor"] for r in failed} == {"planet"} and len(failed) == 2
    for r in failed:
        assert r["error"].startswith("apply: moving to VLAN 200 of its config"), r
    assert_nothing_left(data["lab"])


# ---------------------------------------------------------------- other families

SNOM_ROW = "00:04:13:22:33:44,D785,3001,pw1,Snom desk\n"


def test_snom_phone_applies_its_files(tmp_path: Path) -> None:
    r = rendered(tmp_path, INVENTORY + SNOM_ROW)
    common, own = files(r, "snomD785.htm", "000413223344.xml")
    applied = apply_files(layout_for("snom", "10.1.101.11"), common, own, EVENTS)
    assert (applied.layout, applied.vlan, applied.priority) == ("snom", 100, 5)
    assert (applied.admin_user, applied.admin_password) == ("admin", "change-me")
    assert (applied.sip_user, applied.sip_server) == ("3001", "192.0.2.5")
    assert applied.action_urls["registration-succeeded"].startswith(
        "http://192.0.2.1/action/registration-succeeded?mac=$mac"
    )
    # Snom has no allowed-address list: the account is what counts.
    good = basic("admin", "change-me")
    assert active_uri_status(applied, "192.0.2.99", good) == 200
    assert active_uri_status(applied, "192.0.2.1", basic("admin", "x")) == 401
    # A misspelt key, a missing line, a setting without perm: refused, named.
    with pytest.raises(ConfigRejected, match="'vlan_qso' in phone-settings"):
        apply_files("snom", common.replace(b"vlan_qos", b"vlan_qso"), own, EVENTS)
    with pytest.raises(ConfigRejected, match=r"no phone-settings user_name\[1\]"):
        apply_files("snom", common, own.replace(b"user_name", b"user_pname"), EVENTS)
    with pytest.raises(ConfigRejected, match=r"common file: line .* no perm"):
        apply_files("snom", common.replace(b'<vlan_id perm="R">', b"<vlan_id>"), own, EVENTS)
    # A Fanvil file handed to a Snom: not its format.
    fanvil_common, _ = files(r, "f0VIP-2140PThw1.100.cfg", "00304f113af8.cfg")
    with pytest.raises(ConfigRejected, match="not well-formed"):
        apply_files("snom", fanvil_common, own, EVENTS)


GS_ROW = "c0:74:ad:00:02:01,GXP2170,4001,pw4,GS desk\n"


def test_grandstream_phone_applies_its_own_file_alone(tmp_path: Path) -> None:
    r = rendered(tmp_path, INVENTORY + GS_ROW)
    own = r.render("cfgc074ad000201.xml")
    assert own is not None
    applied = apply_files(layout_for("grandstream", "1.0.11.3"), b"", own.data, EVENTS)
    assert (applied.layout, applied.vlan, applied.priority) == ("grandstream", 100, 5)
    assert (applied.admin_user, applied.admin_password) == ("admin", "change-me")
    assert (applied.sip_user, applied.sip_server) == ("4001", "192.0.2.5")
    assert applied.action_urls == {}  # its firmware reports no Action URL events
    with pytest.raises(ConfigRejected, match="'P5101' in config"):  # a misspelt P51
        apply_files("grandstream", b"", own.data.replace(b"P51>", b"P5101>"), EVENTS)
    with pytest.raises(ConfigRejected, match="neither a P-value"):
        apply_files("grandstream", b"", own.data.replace(b"P51>", b"P5l>"), EVENTS)
    with pytest.raises(ConfigRejected, match="no config P35"):
        apply_files("grandstream", b"", own.data.replace(b"P35>", b"P36>"), EVENTS)


@pytest.mark.netns
@pytest.mark.timeout(240)
def test_lab_mixed_fleet_of_every_family() -> None:
    """`netboot lab --vendors`: every family the lab has boots, applies the
    files netboot rendered for it, moves to the voice VLAN and (where its
    firmware has one) answers `netboot phone` in its own protocol."""
    code, data, stderr = run_lab("--phones", "18", "--vendors")
    if "http" not in data["services"]:
        pytest.skip("this build serves no files")
    assert code == 0, stderr
    families = {
        "planet", "yealink", "snom", "grandstream", "polycom", "cisco-spa", "gigaset", "panasonic",
        "avaya",
    }  # fmt: skip
    assert {r["vendor"] for r in data["results"]} == families
    assert data["applied"] == 18
    # An Avaya J100 reads its HTTP server from option 242 (HTTPSRVR=).
    assert {r["url_source"] for r in data["results"] if r["vendor"] == "avaya"} == {"option 242"}
    # A Cisco SPA reads /spa$PSN.cfg from the TFTP server option 66 names.
    spa = [r["url"] for r in data["results"] if r["vendor"] == "cisco-spa"]
    assert spa and all(u.startswith("tftp://") and u.endswith("/spa504G.cfg") for u in spa)
    for r in data["results"]:
        assert "apply" in r["steps"] and r["vlan"] == 100, r
        # A Grandstream, Gigaset or Panasonic asks for its own file only; the
        # others for their common file first.
        own_only = ("grandstream", "gigaset", "panasonic")
        assert ("common" in r["steps"]) == (r["vendor"] not in own_only), r
    # Gigaset, Panasonic and Avaya have no remote control netboot speaks: the
    # other twelve answer `netboot phone reboot` in their own protocol.
    assert data["active_uri"] == {"phones": 12, "accepted": 12, "refused_from_other_address": 1}
    assert_nothing_left(data["lab"])


POLY_ROW = "64:16:7f:00:00:01,VVX410,5001,pw5,Poly desk\n"


def test_polycom_phone_applies_master_and_its_phone_file(tmp_path: Path) -> None:
    r = rendered(tmp_path, INVENTORY + POLY_ROW)
    master, own = files(r, "000000000000.cfg", "64167f000001-phone.cfg")
    applied = apply_files(layout_for("polycom", "5.9.5"), master, own, EVENTS)
    assert (applied.layout, applied.vlan, applied.priority) == ("polycom", 100, 5)
    assert (applied.admin_user, applied.admin_password) == ("Polycom", "change-me")
    assert (applied.sip_user, applied.sip_server) == ("5001", "192.0.2.5")
    # device.* without its .set is ignored by the firmware: refused here.
    with pytest.raises(ConfigRejected, match=re.escape("device.net.vlanId with device.set")):
        apply_files("polycom", master, own.replace(b'device.net.vlanId.set="1"', b""), EVENTS)
    with pytest.raises(ConfigRejected, match=re.escape("-phone.cfg in the master")):
        apply_files("polycom", master.replace(b"-phone.cfg", b"-user.cfg"), own, EVENTS)
    with pytest.raises(ConfigRejected, match=re.escape("'qos.ip.rtp.dscpp'")):
        apply_files("polycom", master, own.replace(b"qos.ip.rtp.dscp", b"qos.ip.rtp.dscpp"), EVENTS)


SPA_ROW = "00:02:fd:00:00:01,SPA504G,6001,pw6,Cisco desk\n"


def test_cisco_spa_phone_follows_its_profile_rule(tmp_path: Path) -> None:
    r = rendered(tmp_path, INVENTORY + SPA_ROW)
    common, own = files(r, "spa504G.cfg", "0002fd000001.xml")
    # The common profile names the phone's own file with Cisco's $MA macro.
    assert next_file("cisco-spa", common, "0002fd000001", "tftp://h") == (
        "http://192.0.2.1/0002fd000001.xml"
    )
    applied = apply_files(layout_for("cisco-spa", "7.5.5"), common, own, EVENTS)
    assert (applied.layout, applied.vlan, applied.priority) == ("cisco-spa", 100, 5)
    assert (applied.admin_user, applied.admin_password) == ("admin", "change-me")
    assert (applied.sip_user, applied.sip_server) == ("6001", "192.0.2.5")
    with pytest.raises(ConfigRejected, match="'VLAN_Id' is in no cisco-spa export"):
        apply_files("cisco-spa", common.replace(b"VLAN_ID", b"VLAN_Id"), own, EVENTS)
    with pytest.raises(ConfigRejected, match="Line_Enable_1_ = Yes"):
        apply_files(
            "cisco-spa",
            common,
            own.replace(b">Yes</Line_Enable_1_", b">No</Line_Enable_1_"),
            EVENTS,
        )
    # Polycom's master names its phone file too.
    r = rendered(tmp_path, INVENTORY + POLY_ROW)
    master, _ = files(r, "000000000000.cfg", "64167f000001-phone.cfg")
    assert next_file("polycom", master, "64167f000001", "http://h") == (
        "http://h/64167f000001-phone.cfg"
    )
    assert next_file("snom", master, "64167f000001", "http://h") is None


GIGASET_ROW = "7c:2f:80:00:00:01,N870,7001,pw7,DECT base\n"


def test_gigaset_base_applies_its_mac_file(tmp_path: Path) -> None:
    r = rendered(tmp_path, INVENTORY + GIGASET_ROW)
    own = r.render("7C2F80000001.xml")
    assert own is not None
    applied = apply_files(layout_for("gigaset", "2.65.0"), b"", own.data, EVENTS)
    assert (applied.layout, applied.vlan, applied.sip_user, applied.sip_server) == (
        "gigaset",
        None,
        "7001",
        "192.0.2.5",
    )
    assert (applied.admin_user, applied.admin_password) == ("admin", "change-me")
    with pytest.raises(ConfigRejected, match=re.escape("'SipAccount.00001.Username' in nvm")):
        apply_files("gigaset", b"", own.data.replace(b".UserName", b".Username"), EVENTS)
    with pytest.raises(ConfigRejected, match="no nvm oper:add_hs"):
        apply_files(
            "gigaset",
            b"",
            own.data.replace(b'name="add_hs"', b'name="DeleteNotProvisionedHS"'),
            EVENTS,
        )


def test_panasonic_phone_applies_its_standard_file(tmp_path: Path) -> None:
    r = rendered(tmp_path, INVENTORY + "00:80:f0:00:00:01,KX-HDV130,8001,pw8,Pana desk\n")
    own = r.render("Config0080F0000001.cfg")
    assert own is not None
    applied = apply_files(layout_for("panasonic", "01.050"), b"", own.data, EVENTS)
    assert (applied.layout, applied.vlan, applied.admin_user, applied.sip_user) == (
        "panasonic",
        100,
        "admin",
        "8001",
    )
    with pytest.raises(ConfigRejected, match="'VLAN_ID_IP_PHON' is in no panasonic"):
        apply_files(
            "panasonic", b"", own.data.replace(b"VLAN_ID_IP_PHONE", b"VLAN_ID_IP_PHON"), EVENTS
        )


def test_avaya_phone_follows_its_settings_script(tmp_path: Path) -> None:
    r = rendered(tmp_path, INVENTORY + "c8:1f:ea:00:00:01,J179,9001,pw9,Avaya desk\n")
    common, own = files(r, "46xxsettings.txt", "c81fea000001.cfg")
    assert next_file("avaya", common, "c81fea000001", "http://h") == "http://h/c81fea000001.cfg"
    applied = apply_files(layout_for("avaya", "4.1.3"), common, own, EVENTS)
    assert (
        applied.layout,
        applied.vlan,
        applied.priority,
        applied.sip_user,
        applied.sip_server,
    ) == (
        "avaya",
        100,
        5,
        "9001",
        "192.0.2.5",
    )
    with pytest.raises(ConfigRejected, match="'L2QVID' is in no avaya"):
        apply_files("avaya", common.replace(b"L2QVLAN", b"L2QVID"), own, EVENTS)
