"""The vendor parsers and the key-level check against the reference exports."""

from __future__ import annotations

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
    parse_fanvil,
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
    assert check_rendered("snom", "x") == ["no reference exports for layout 'snom'"]
    # The exports themselves pass their own layout's check.
    for layout, names in REFERENCE_EXPORTS.items():
        for name in names:
            assert check_rendered(layout, (DATA / name).read_text()) == [], name
