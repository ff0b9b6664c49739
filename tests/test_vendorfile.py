"""The vendor parsers and the key-level check against the reference exports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netboot.provisioning.vendorfile import (
    REFERENCE_EXPORTS,
    REFERENCE_FILE,
    VendorFileError,
    build_reference,
    check_rendered,
    format_reference,
    load_reference,
    parse_avaya,
    parse_cisco,
    parse_fanvil,
    parse_gigaset,
    parse_grandstream,
    parse_panasonic,
    parse_polycom,
    parse_snom,
    parse_yealink,
)

DATA = Path(__file__).resolve().parent / "data"


def test_packaged_reference_is_built_from_the_exports() -> None:
    """templates/reference-keys.txt is exactly what tests/data's exports give."""
    built = format_reference(build_reference(DATA))
    assert REFERENCE_FILE.read_text(encoding="utf-8") == built
    listed = (DATA / "SOURCES.md").read_text()
    for names in REFERENCE_EXPORTS.values():
        for name in names:
            assert f"`{name}`" in listed, f"{name} has no origin in tests/data/SOURCES.md"


def test_reference_has_the_keys_the_issue_names() -> None:
    ref = load_reference()
    qos = "<QOS CONFIG MODULE>"
    for layout in ("fanvil-1", "fanvil-2"):
        for key in (
            "Enable VLAN",
            "VLAN ID",
            "Voice Priority",
            "Signalling Priority",
            "Enable diffServ",
            "Voice DSCP",
            "Singalling DSCP",
            "LLDP Transmit",
            "LLDP Learn Policy",
        ):
            assert (qos, key) in ref[layout], (layout, key)
        assert ("<MMI CONFIG MODULE>", "AccountN Password") in ref[layout]
    assert ("<CTI CONFIG MODULE>", "Boot Completed Url") in ref["fanvil-2"]
    assert ("<GLOBAL CONFIG MODULE>", "Boot Completed Url") in ref["fanvil-1"]
    assert ("<GLOBAL CONFIG MODULE>", "Incmoing Call Url") in ref["fanvil-1"]
    assert ("", "features.show_action_uri_option") in ref["yealink"]
    assert ("<QOS CONFIG MODULE>", "Signalling DSCP") not in ref["fanvil-2"]


def test_fanvil_rules() -> None:
    f = parse_fanvil(
        "\n<<VOIP CONFIG FILE>>Version:2.0000000007   \n\n<CTI CONFIG MODULE>\n"
        "Boot Completed Url :http://h:8080/a?mac=$mac\nWeb Auth Changed Url:\n"
        "<SIP CONFIG MODULE>\n--SIP Line List--  :\nSIP1 Record Start       :Record:on\n"
        "<<END OF FILE>>\n\n"
    )
    assert f.version == "2.0000000007"
    assert f.get("Boot Completed Url", "<CTI CONFIG MODULE>") == "http://h:8080/a?mac=$mac"
    assert f.get("Web Auth Changed Url", "<CTI CONFIG MODULE>") == ""
    assert f.get("SIP1 Record Start", "<SIP CONFIG MODULE>") == "Record:on"
    assert f.get("Boot Completed Url") is None  # keys live in modules
    assert f.modules() == ["<CTI CONFIG MODULE>", "<SIP CONFIG MODULE>"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "empty"),
        ("#!version:1.0.0.1\n", "not a <<VOIP CONFIG FILE>>"),
        ("<<VOIP CONFIG FILE>>\n", "no Version"),
        ("<<VOIP CONFIG FILE>>Version:2.0\nEnable VLAN :1\n", "outside any"),
        ("<<VOIP CONFIG FILE>>Version:2.0\n<QOS CONFIG MODULE>\nEnable VLAN 1\n", "not `Key"),
        ("<<VOIP CONFIG FILE>>Version:2.0\n<A MODULE>\nX :1\n<<END OF FILE>>\nY :2\n", "after"),
    ],
)
def test_fanvil_rule_breaks(text: str, error: str) -> None:
    with pytest.raises(VendorFileError, match=error):
        parse_fanvil(text)


def test_yealink_rules() -> None:
    y = parse_yealink(
        "#!version:1.0.0.1\n## comment\n\nstatic.security.user_password = user:u\n"
        "static.security.user_password = admin:a=b\naction_url.registered=http://h/?m=$mac\n"
    )
    assert y.values("static.security.user_password") == ["user:u", "admin:a=b"]
    assert y.get("action_url.registered") == "http://h/?m=$mac"
    with pytest.raises(VendorFileError, match="line 1"):
        parse_yealink("local_time.time_zone = +1\n")
    with pytest.raises(VendorFileError, match="line 2"):
        parse_yealink("#!version:1.0.0.1\nlocal time zone = +1\n")


def test_check_names_each_unknown_key_and_module() -> None:
    text = (
        "<<VOIP CONFIG FILE>>Version:2.1\n<QOS CONFIG MODULE>\nEnable VLAN        :1\n"
        "Singaling DSCP     :46\n<SIP CONFIG MODULE>\nSIP3 NAT Type           :1\n"
        "<FOO CONFIG MODULE>\nX :1\n<<END OF FILE>>\n"
    )
    problems = check_rendered("fanvil-2", text)
    assert problems == [
        "line 4: key 'Singaling DSCP' in <QOS CONFIG MODULE> is in no fanvil-2 export",
        "line 8: module <FOO CONFIG MODULE> is in no fanvil-2 export",
    ]  # SIP3 is line 3 of a key the export shows for SIP1..SIP6
    assert check_rendered("fanvil-1", text)[0].startswith("line 4")
    assert check_rendered("fanvil-2", "garbage") == [
        "line 1: not a <<VOIP CONFIG FILE>> file: 'garbage'"
    ]
    assert check_rendered("nokia", "x") == ["no reference exports for layout 'nokia'"]
    # The exports themselves pass their own layout's check.
    for layout, names in REFERENCE_EXPORTS.items():
        for name in names:
            assert check_rendered(layout, (DATA / name).read_text()) == [], name


# ---------------------------------------------------------------- Snom


def test_snom_rules() -> None:
    s = parse_snom(
        '<?xml version="1.0"?>\n<settings>\n <phone-settings e="2">\n'
        '  <vlan_id perm="R">100</vlan_id>\n  <user_name idx="1" perm="">1001</user_name>\n'
        '  <action_setup_url perm="rw">http://h/a?x=1&amp;y=$mac</action_setup_url>\n'
        '  <http_pass perm="R" />\n </phone-settings>\n</settings>\n'
    )
    assert s.get("vlan_id", "phone-settings") == "100"
    assert s.get("user_name[1]", "phone-settings") == "1001"
    assert s.get("action_setup_url", "phone-settings") == "http://h/a?x=1&y=$mac"
    assert s.get("http_pass", "phone-settings") == ""
    assert s.entries[1].line == 5
    files = parse_snom('<setting-files><file url="http://h/{mac}.xml"/></setting-files>')
    assert files.values("file", "setting-files") == ["http://h/{mac}.xml"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "line 1: not well-formed"),
        ("<settings><phone-settings><vlan_id>1</vlan_id></phone-settings></settings>", "no perm"),
        ('<settings><phone-settings><a perm="W">1</a></phone-settings></settings>', "perm='W'"),
        ('<settings><p><a perm="R"><b perm="R"/></a></p></settings>', "holds elements"),
        ("<config><a/></config>", "is <settings>, not <config>"),
        ('<setting-files><file href="x"/></setting-files>', "<file url=...> only"),
        (
            '<!DOCTYPE s [<!ENTITY a "aaaa">]><settings><p><a perm="">&a;</a></p></settings>',
            "DOCTYPE",
        ),
        ("<settings><p><a perm=''>1</p></settings>", "line 1: not well-formed"),
    ],
)
def test_snom_rule_breaks(text: str, error: str) -> None:
    with pytest.raises(VendorFileError, match=re.escape(error)):
        parse_snom(text)


def test_snom_reference_has_the_keys_the_templates_need() -> None:
    ref = load_reference()["snom"]
    for key in (
        "vlan_id", "vlan_qos", "lldp_enable", "codec_tos", "signaling_tos", "ntp_server",
        "timezone", "utc_offset", "http_user", "http_pass", "admin_mode_password",
        "setting_server", "settings_refresh_timer", "update_policy", "pnp_config",
        "action_setup_url", "action_log_on_url", "user_name[N]", "user_host[N]",
        "stun_server[N]", "stun_binding_interval[N]", "keepalive_interval[N]",
    ):  # fmt: skip
        assert ("phone-settings", key) in ref, key
    text = '<settings><phone-settings><vlan_tag perm="R">1</vlan_tag></phone-settings></settings>'
    assert check_rendered("snom", text) == [
        "line 1: key 'vlan_tag' in phone-settings is in no snom export"
    ]


# ---------------------------------------------------------------- Grandstream


def test_grandstream_rules() -> None:
    g = parse_grandstream(
        '<?xml version="1.0"?>\n<gs_provision version="1">\n  <mac>C074AD000201</mac>\n'
        '  <config version="1">\n    <P51>100</P51>\n    <P34>a&amp;b</P34>\n    <P76/>\n'
        '    <item name="account.1.enable">Yes</item>\n  </config>\n</gs_provision>\n'
    )
    assert g.get("mac", "gs_provision") == "c074ad000201"
    assert (g.get("P51", "config"), g.get("P34", "config"), g.get("P76", "config")) == (
        "100",
        "a&b",
        "",
    )
    assert g.get("account.1.enable", "config") == "Yes"
    assert g.entries[1].line == 5


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<settings/>", "is <gs_provision>, not <settings>"),
        ("<gs_provision><mac>00</mac><config/></gs_provision>", "not 12 hex digits"),
        ("<gs_provision><config><VLAN>1</VLAN></config></gs_provision>", "neither a P-value"),
        ("<gs_provision><config><P1><P2/></P1></config></gs_provision>", "<P1> holds elements"),
        ("<gs_provision><mac>000b82000001</mac></gs_provision>", "0 <config> elements"),
        ("<gs_provision><config/><config/></gs_provision>", "2 <config> elements"),
        ("<gs_provision><foo/><config/></gs_provision>", "<foo> in <gs_provision>"),
    ],
)
def test_grandstream_rule_breaks(text: str, error: str) -> None:
    with pytest.raises(VendorFileError, match=re.escape(error)):
        parse_grandstream(text)


def test_grandstream_reference_has_the_p_values_the_template_writes() -> None:
    ref = load_reference()["grandstream"]
    for key in (
        "P2", "P30", "P64", "P51", "P87", "P1684", "P5046", "P5050", "P212", "P237",
        "P194", "P193", "P76", "P84", "P52", "P271", "P270", "P47", "P35", "P36", "P34", "P3",
    ):  # fmt: skip
        assert ("config", key) in ref, key
    assert ("gs_provision", "mac") in ref
    assert check_rendered(
        "grandstream", '<gs_provision version="1"><config><P9999>1</P9999></config></gs_provision>'
    ) == ["line 1: key 'P9999' in config is in no grandstream export"]


# ---------------------------------------------------------------- Polycom


def test_polycom_rules() -> None:
    p = parse_polycom(
        '<?xml version="1.0"?>\n<polycomConfig device.set="1">\n'
        '  <reg reg.1.address="1001" reg.1.auth.password="a&amp;b"/>\n</polycomConfig>\n'
    )
    assert (p.get("device.set"), p.get("reg.1.address"), p.get("reg.1.auth.password")) == (
        "1",
        "1001",
        "a&b",
    )
    master = parse_polycom('<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="a.cfg, b.cfg"/>')
    assert master.get("CONFIG_FILES", "APPLICATION") == "a.cfg, b.cfg"
    with pytest.raises(VendorFileError, match="not <settings>"):
        parse_polycom("<settings/>")
    with pytest.raises(VendorFileError, match="holds text"):
        parse_polycom("<polycomConfig><reg>reg.1.address=1001</reg></polycomConfig>")
    ref = load_reference()["polycom"]
    for key in (
        "device.net.vlanId", "device.net.lldpEnabled", "device.auth.localAdminPassword",
        "device.prov.serverName", "device.prov.serverType", "qos.ip.rtp.dscp",
        "qos.ethernet.rtp.user_priority", "tcpIpApp.sntp.gmtOffset",
        "tcpIpApp.sntp.daylightSavings.start.dayOfWeek.lastInMonth", "prov.polling.period",
        "nat.keepalive.interval", "apps.restapi.enabled", "reg.N.address", "reg.N.server.1.address",
    ):  # fmt: skip
        assert ("", key) in ref, key
    assert ("APPLICATION", "CONFIG_FILES") in ref


# ---------------------------------------------------------------- Cisco SPA / 3PCC


def test_cisco_rules() -> None:
    c = parse_cisco(
        '<flat-profile>\n  <Proxy_1_ ua="na">pbx</Proxy_1_>\n  <Admin_Passwd>a&amp;b</Admin_Passwd>\n'
        '  <Reg_Retry_Intvl group="SIP/SIP_Timer_Values__sec_">30</Reg_Retry_Intvl>\n'
        '  <Profile_Rule_B ua="na"/>\n</flat-profile>'
    )
    assert (c.get("Proxy_1_"), c.get("Admin_Passwd"), c.get("Profile_Rule_B")) == ("pbx", "a&b", "")
    with pytest.raises(VendorFileError, match="not <settings>"):
        parse_cisco("<settings/>")
    with pytest.raises(VendorFileError, match="ua='x' is not na"):
        parse_cisco('<flat-profile><Proxy_1_ ua="x">p</Proxy_1_></flat-profile>')
    with pytest.raises(VendorFileError, match="holds elements"):
        parse_cisco("<flat-profile><A><B/></A></flat-profile>")
    ref = load_reference()["cisco-spa"]
    for key in (
        "Resync_Periodic", "Admin_Passwd", "Enable_VLAN", "VLAN_ID", "Enable_CDP",
        "Enable_LLDP-MED", "Primary_NTP_Server", "Time_Zone", "Daylight_Saving_Time_Rule",
        "STUN_Enable", "STUN_Server", "SIP_TOS_DiffServ_Value_N_", "RTP_CoS_Value_N_",
        "NAT_Keep_Alive_Enable_N_", "Profile_Rule_B", "Proxy_N_", "User_ID_N_", "Auth_ID_N_",
    ):  # fmt: skip
        assert ("", key) in ref, key


# ---------------------------------------------------------------- Gigaset


def test_gigaset_rules() -> None:
    g = parse_gigaset(
        '<provisioning version="1.1" productID="e2"><nvm>\n'
        '<param name="DmGlobal.0.TimeZone" value="Europe/Berlin"/>\n'
        '<oper name="add_hs" value="00001"><param name="hs.RegStatus" value="ToReg"/></oper>\n'
        "</nvm></provisioning>"
    )
    assert g.get("DmGlobal.0.TimeZone", "nvm") == "Europe/Berlin"
    assert (g.get("oper:add_hs", "nvm"), g.get("hs.RegStatus", "nvm")) == ("00001", "ToReg")
    for text, error in (
        ("<ProviderFrame/>", "not <ProviderFrame>"),
        ('<provisioning><nvm><param value="1"/></nvm></provisioning>', "not a <param name"),
        ('<provisioning><nvm><param name="a"/></nvm></provisioning>', "has no value"),
        ("<provisioning><x/></provisioning>", "<x> in <provisioning>"),
    ):
        with pytest.raises(VendorFileError, match=re.escape(error)):
            parse_gigaset(text)
    ref = load_reference()["gigaset"]
    for key in (
        "WebUIAccounts.1.Password", "Provisioning.global.ProvisioningServer", "DmGlobal.0.NtpServer",
        "DmGlobal.0.TimeZone", "SipProvider.N.RegServerAddress", "SipAccount.N.UserName",
        "oper:add_hs", "hs.RegStatus",
    ):  # fmt: skip
        assert ("nvm", key) in ref, key


# ---------------------------------------------------------------- Panasonic


def test_panasonic_rules() -> None:
    p = parse_panasonic(
        "# Panasonic SIP Phone Standard Format File # DO NOT CHANGE THIS LINE!\n# comment\n\n"
        'SIP_AUTHID_1="1001"\nCFG_STANDARD_FILE_PATH="http://h/Config{MAC}.cfg"\n'
    )
    assert (p.get("SIP_AUTHID_1"), p.get("CFG_STANDARD_FILE_PATH")) == (
        "1001",
        "http://h/Config{MAC}.cfg",
    )
    for text, error in (
        ('SIP_AUTHID_1="1001"\n', "line 1: a Panasonic file starts with"),
        ("# Panasonic SIP Phone Standard Format File #\nSIP_AUTHID_1=1001\n", "line 2: not"),
        ('# Panasonic SIP Phone Standard Format File #\nSIP_PORT_1=\u201c5060"\n', "line 2: not"),
        ('# Panasonic SIP Phone Standard Format File #\nsip_authid_1="1"\n', "line 2: not"),
    ):
        with pytest.raises(VendorFileError, match=re.escape(error)):
            parse_panasonic(text)
    ref = load_reference()["panasonic"]
    for key in (
        "OPTION66_ENABLE", "PROVISION_ENABLE", "CFG_STANDARD_FILE_PATH", "CFG_CYCLIC",
        "CFG_CYCLIC_INTVL", "CFG_RESYNC_FROM_SIP", "VLAN_ENABLE", "VLAN_ID_IP_PHONE", "NTP_ADDR",
        "LOCAL_TIME_ZONE_POSIX", "ADMIN_ID", "ADMIN_PASS", "PHONE_NUMBER_N", "DISPLAY_NAME_N",
        "SIP_AUTHID_N", "SIP_PASS_N", "SIP_RGSTR_ADDR_N", "SIP_RGSTR_PORT_N", "SIP_PRXY_ADDR_N",
        "SIP_PRXY_PORT_N",
    ):  # fmt: skip
        assert ("", key) in ref, key


# ---------------------------------------------------------------- Avaya


def test_avaya_rules() -> None:
    a = parse_avaya(
        '## comment\nSET L2QVLAN 100\nSET FORCE_SIP_PASSWORD "p w"\n'
        "IF $MODEL4 SEQ J179 GOTO J179_SW\nGOTO GETSET\n# GETSET\nGET $MACADDR.cfg\n"
    )
    assert (a.get("L2QVLAN"), a.get("FORCE_SIP_PASSWORD")) == ("100", "p w")
    assert a.values("GET", "script") == ["$MACADDR.cfg"]
    for text in ("L2QVLAN=100\n", "SET l2qvlan 1\n", "IF $MODEL4 GOTO X\n", "GET a b\n"):
        with pytest.raises(VendorFileError, match="line 1: not SET/IF/GOTO/GET"):
            parse_avaya(text)
    ref = load_reference()["avaya"]
    for key in (
        "L2Q", "L2QVLAN", "L2QAUD", "L2QSIG", "DSCPAUD", "DSCPSIG", "LLDP_ENABLED", "SNTPSRVR",
        "TIMEZONE", "HTTPSRVR", "FORCE_WEB_ADMIN_PASSWORD", "SIP_CONTROLLER_LIST", "SIPDOMAIN",
        "FORCE_SIP_USERNAME", "FORCE_SIP_PASSWORD", "ENABLE_3PCC_ENVIRONMENT",
    ):  # fmt: skip
        assert ("", key) in ref, key
    assert ("script", "GET") in ref
