"""Vendor profiles against real artefacts: option-60 strings phones send
(tests/data/vendors/option60.tsv, origins in tests/data/SOURCES.md), HTTP
User-Agents from the Wazo provd plugins, the URL form each family gets from
one site URL, and every family's per-MAC file names."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from netboot import vendors
from netboot.config import parse_config
from netboot.dhcp import codec
from netboot.dhcp.codec import DhcpMessage
from netboot.dhcp.engine import DhcpEngine
from netboot.dhcp.options import decode_vendor_class
from netboot.pnp import codec as sip
from netboot.pnp.engine import PnpResponder, Site
from netboot.provisioning.files import Refusal, classify, parse_user_agent
from netboot.state.leases import LeaseStore
from netboot.wire import parse_mac
from tests import test_pnp_codec
from tests.test_files import content, resolver

DATA = Path(__file__).resolve().parent / "data" / "vendors"


def option60_rows() -> list[tuple[str, bytes, str, str]]:
    rows = []
    for line in (DATA / "option60.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        family, hexed, text, source = line.split("\t")
        rows.append((family, bytes.fromhex(hexed.replace(" ", "")), text, source))
    return rows


ROWS = option60_rows()


def test_every_family_of_the_issue_has_a_real_option60() -> None:
    families = {row[0] for row in ROWS}
    assert {"cisco", "cisco-spa", "grandstream", "polycom", "snom", "avaya", "yealink"} <= families
    assert any(raw.endswith(b"\x00") for family, raw, _, _ in ROWS if family == "cisco")
    assert any(raw[:4] == b"\x00\x00\x36\x3d" for family, raw, _, _ in ROWS)


@pytest.mark.parametrize(("family", "raw", "text", "source"), ROWS, ids=[r[2][:32] for r in ROWS])
def test_option60_decodes_and_classifies(family: str, raw: bytes, text: str, source: str) -> None:
    decoded = decode_vendor_class(raw)
    assert decoded.text == text, source
    # No MAC: the option alone must name the family.
    profile = vendors.identify(decoded.text, decoded.enterprise, None)
    assert profile is not None and profile.name == family, source


def test_nul_terminated_text_is_not_rfc3925() -> None:
    raw = b"Cisco Systems, Inc. IP Phone CP-7945G\x00"
    decoded = decode_vendor_class(raw)
    assert decoded == decode_vendor_class(raw.rstrip(b"\x00"))
    assert decoded.enterprise is None and "enterprise" not in decoded.text


def test_polycom_binary_form_is_rfc3925_13885() -> None:
    [raw] = [r for f, r, _, _ in ROWS if f == "polycom" and r[:1] == b"\x00"]
    assert decode_vendor_class(raw).enterprise == 13885
    # One length octet short and the bytes are not that form any more.
    broken = raw[:4] + bytes((raw[4] - 1,)) + raw[5:]
    assert decode_vendor_class(broken).enterprise is None


@pytest.mark.parametrize(
    ("mac", "family"),
    [
        ("00:30:4f:a9:99:48", "planet"),  # PLANET guide 2.2.1 SUBSCRIBE
        ("0c:38:3e:07:e1:6c", "fanvil"),  # wazo_fanvil User-Agent sample
        ("00:15:65:4a:a9:37", "yealink"),  # wazo_yealink
        ("00:04:13:92:2d:24", "snom"),  # wazo_snom
        ("c0:74:ad:2b:d8:59", "grandstream"),  # wazo_grandstream
        ("c8:1f:ea:83:e8:5a", "avaya"),  # wazo_avaya J179
        ("00:1b:4f:27:31:20", "avaya"),  # Avaya J100 guide, option 12 OUI list
        ("00:80:f0:c8:c3:81", "panasonic"),  # wazo_panasonic
        ("7c:2f:80:e0:d6:05", "gigaset"),  # wazo_gigaset
        ("02:00:00:00:00:01", None),
    ],
)
def test_family_by_oui_without_option60(mac: str, family: str | None) -> None:
    profile = vendors.identify("", None, parse_mac(mac))
    assert (profile.name if profile else None) == family


@pytest.mark.parametrize(
    ("agent", "vendor", "model", "firmware", "mac"),
    [  # every line a User-Agent quoted in a wazo-provd-plugins extractor
        ("Fanvil X6U Pro 0.0.10 0c383e2cd782", "Fanvil", "X6U Pro", "0.0.10", "0c:38:3e:2c:d7:82"),
        ("Yealink SIP-T23G 44.80.0.60 00:15:65:93:70:f2", "Yealink", "SIP-T23G", "44.80.0.60",
         "00:15:65:93:70:f2"),
        ("Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 "
         "SXM:0 UXM:0)", "Snom", "snomD785", "10.1.33.33", "00:04:13:92:2d:24"),
        ("Grandstream Model HW GXP2200 V2.2A SW 1.0.1.33 DevId 000b82462d97", "Grandstream",
         "GXP2200", "1.0.1.33", "00:0b:82:46:2d:97"),
        ("FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application", "Polycom", "VVX_400",
         "4.1.4.7430", None),
        ("Cisco/SPA508G-7.4.4 (0002FDFF2103)(CBT141400UK)", "Cisco SPA / 3PCC", "SPA508G",
         "7.4.4", "00:02:fd:ff:21:03"),
        ("Mozilla/4.0 (compatible; MSIE 6.0) AVAYA/J179-4.1.3.0.6 (MAC:c81fea83e85a)", "Avaya",
         "J179", "4.1.3.0.6", "c8:1f:ea:83:e8:5a"),
        ("Panasonic_KX-UT113/01.133 (0080f0c8c381)", "Panasonic", "KX-UT113", "01.133",
         "00:80:f0:c8:c3:81"),
        ("Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605", "Gigaset", "N870 IP PRO",
         "83.V2.11.0+build.a546b91", "7c:2f:80:e0:d6:05"),
    ],
)  # fmt: skip
def test_user_agents(agent: str, vendor: str, model: str, firmware: str, mac: str | None) -> None:
    parsed = parse_user_agent(agent)
    assert parsed is not None
    assert (parsed.vendor, parsed.model, parsed.firmware, parsed.mac) == (
        vendor, model, firmware, mac,
    )  # fmt: skip


# ---------------------------------------------------------------- URL forms

SITE = "http://10.0.0.1/prov/$mac.cfg"


@pytest.mark.parametrize(
    ("family", "code", "url"),
    [
        ("planet", 66, SITE),  # PLANET guide 2.2.2: the file URL, $mac filled in by the phone
        ("planet", 43, SITE),
        ("fanvil", 66, SITE),
        ("yealink", 66, "http://10.0.0.1/prov/"),  # the server; y0...cfg and <mac>.cfg asked
        ("polycom", 160, "http://10.0.0.1/prov/"),  # the server; 000000000000.cfg asked
        ("grandstream", 66, "http://10.0.0.1/prov/"),  # the server path; cfg<mac>.xml asked
        ("snom", 66, "http://10.0.0.1/prov/{mac}.xml"),  # snom's own {mac} macro
        ("cisco", 66, "10.0.0.1"),  # a TFTP server name; SEP<MAC>.cnf.xml asked
        ("cisco-spa", 66, "10.0.0.1"),
        ("cisco-spa", 160, "http://10.0.0.1/prov/$MA.xml"),  # a profile rule with $MA
        ("avaya", 242, "HTTPSRVR=10.0.0.1,HTTPDIR=/prov/"),  # SSON
        ("gigaset", 66, "http://10.0.0.1/prov/[MAC].xml"),  # the base's own [MAC]
        ("panasonic", 160, "http://10.0.0.1/prov/Config{MAC}.cfg"),  # the phone's own {MAC}
    ],
)
def test_url_form_per_family(family: str, code: int, url: str) -> None:
    profile = vendors.by_name(family)
    assert profile is not None
    assert profile.url_for_option(code, SITE) == url


@pytest.mark.parametrize(
    ("site", "directory"),
    [
        ("http://h/$mac.cfg", "http://h/"),
        ("http://h:8080/a/b/", "http://h:8080/a/b/"),
        ("http://h/a/b", "http://h/a/b/"),
        ("tftp://h", "tftp://h/"),
        ("http://u:p@h/x/$input.cfg", "http://u:p@h/x/"),
    ],
)
def test_directory_of_a_site_url(site: str, directory: str) -> None:
    assert vendors.expand("{dir}", site) == directory


CONFIG = """
[appliance]
interface = "eth0"
address = "192.168.10.2"
state_dir = "/tmp/unused"
[provisioning]
url = "http://192.168.10.2/prov/$mac.cfg"
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.140"
url_options = [66, 160]
ping_check = false
"""


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DhcpEngine]:
    config = parse_config(tomllib.loads(CONFIG + EXTRA))
    eng = DhcpEngine(
        config.dhcp, config.provisioning.url, LeaseStore(tmp_path),
        {"eth0": int(IPv4Address("192.168.10.2"))},
    )  # fmt: skip
    yield eng
    eng.leases.close()


EXTRA = """
[[dhcp.class]]
name = "cisco"
vendor = "Cisco"
url_options = [150, 66]
[[dhcp.class]]
name = "pinned-yealink"
vendor = "yealink"
url = "http://192.168.10.9/y/"
"""


def offer(eng: DhcpEngine, mac: str, vendor_class: bytes | None) -> DhcpMessage:
    options = {53: bytes((codec.DISCOVER,))}
    if vendor_class is not None:
        options[60] = vendor_class
    msg = DhcpMessage(op=codec.BOOTREQUEST, xid=7, chaddr=parse_mac(mac), options=options)
    decision = eng.handle(msg, "eth0", 1000.0)
    assert decision.reply is not None, decision.note
    return decision.reply.message


@pytest.mark.parametrize(
    ("mac", "vendor_class", "expected"),
    [
        # PLANET sends no option 60 (PLANET guide 2.2.2): its OUI names it.
        ("00:30:4f:a9:99:48", None, {66: b"http://192.168.10.2/prov/$mac.cfg"}),
        ("00:15:65:01:02:03", None, {66: b"http://192.168.10.2/prov/"}),
        ("02:00:00:00:00:07", b"Polycom-VVX310", {160: b"http://192.168.10.2/prov/"}),
        ("02:00:00:00:00:08", b"Grandstream GXP1405 dslforum.org", {66: b"http://192.168.10.2/prov/"}),
        ("02:00:00:00:00:09", b"snom320", {66: b"http://192.168.10.2/prov/{mac}.xml"}),
        # (a "Cisco SPA508G" would fall in the site's class `vendor = "Cisco"` below)
        ("02:00:00:00:00:0a", b"LINKSYS SPA-942", {160: b"http://192.168.10.2/prov/$MA.xml"}),
        # The class `vendor = "Cisco"` matches the NUL-terminated text class
        # (it used to decode as RFC 3925) and gets option 150 + a TFTP name.
        ("02:00:00:00:00:0b", b"Cisco Systems, Inc. IP Phone CP-7945G\x00",
         {150: IPv4Address("192.168.10.2").packed, 66: b"192.168.10.2"}),
        # A class with its own url overrides the family's form.
        ("02:00:00:00:00:0c", b"yealink", {66: b"http://192.168.10.9/y/"}),
        # Unknown family: the site URL as configured.
        ("02:00:00:00:00:0d", None, {66: b"http://192.168.10.2/prov/$mac.cfg"}),
    ],
)  # fmt: skip
def test_dhcp_sends_each_family_its_form(
    engine: DhcpEngine, mac: str, vendor_class: bytes | None, expected: dict[int, bytes]
) -> None:
    got = offer(engine, mac, vendor_class)
    for code, value in expected.items():
        assert got.options.get(code) == value


def test_cisco_class_matches_nul_terminated_option60(engine: DhcpEngine) -> None:
    msg = DhcpMessage(
        op=codec.BOOTREQUEST,
        xid=8,
        chaddr=parse_mac("02:00:00:00:00:0e"),
        options={53: bytes((codec.DISCOVER,)), 60: b"Cisco Systems, Inc. IP Phone CP-7945G\x00"},
    )
    cls = engine.match_class(msg)
    assert cls is not None and cls.name == "cisco"


# ---------------------------------------------------------------- per-MAC names

MAC = "00:30:4f:11:3a:f8"


def all_mac_names() -> list[tuple[str, str]]:
    names = []
    for profile in vendors.PROFILES:
        for name in profile.mac_file_names(MAC):
            names.append((profile.name, name.replace("*", "D785")))
    return names


MAC_NAMES = all_mac_names()


def test_issue_names_are_all_per_mac() -> None:
    names = {n for _, n in MAC_NAMES}
    for wanted in (
        "00304f113af8.cfg",
        "cfg00304f113af8.xml",
        "SEP00304F113AF8.cnf.xml",
        "00304f113af8-phone.cfg",
        "spa00304f113af8.xml",
        "00304F113AF8.xml",
        "snomD785-00304F113AF8.htm",
        "Config00304F113AF8.cfg",
    ):
        assert wanted in names


@pytest.mark.parametrize(("family", "name"), MAC_NAMES, ids=[n for _, n in MAC_NAMES])
def test_per_mac_names_classify_as_mac(family: str, name: str) -> None:
    for spelling in (name, name.lower(), name.upper(), f"sub/{name}"):
        info = classify(spelling)
        assert info.kind == "mac", spelling
        assert info.mac == MAC, spelling


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("000000000000.cfg", "polycom"),  # the master file, not a MAC
        ("f0VIP-2140PThw1.100.cfg", "planet"),
        ("F0V00X5S0000.cfg", "fanvil"),
        ("y000000000044.cfg", "yealink"),
        ("cfg.xml", "grandstream"),
        ("46xxsettings.txt", "avaya"),
        ("spa504G.cfg", "cisco-spa"),
        ("snomD785.htm", "snom"),
        ("XMLDefault.cnf.xml", "cisco"),
    ],
)
def test_common_names(name: str, family: str) -> None:
    assert classify(name).kind == "common"
    found = vendors.common_name(name)
    assert found is not None and found[0].name == family


@pytest.mark.parametrize("name", ["SEP.cnf.xml", "cfg00304f113af.xml", "spare.cfg", "x.cfg"])
def test_neither_common_nor_per_mac(name: str) -> None:
    assert classify(name).kind == "custom"


# ---------------------------------------------------------------- PnP


@pytest.mark.parametrize(
    ("name", "url"),
    [
        (
            "PLANET",
            "http://192.168.1.2/prov/$mac.cfg",
        ),  # PLANET guide 2.2.1: the phone fills in $mac
        ("YEALINK", "http://192.168.1.2/prov/"),  # the server; it asks for its own names
        ("GRANDSTREAM", "http://192.168.1.2/prov/"),  # must end in /
        ("SNOM", "http://192.168.1.2/prov/{mac}.xml"),  # Snom PnP capture: {mac} in the body
    ],
)
def test_pnp_notify_url_per_family(name: str, url: str) -> None:
    raw = getattr(test_pnp_codec, name)
    responder = PnpResponder(
        Site(
            url="http://192.168.1.2/prov/$mac.cfg",
            local_ip="192.168.1.2",
            allowed_sources=(IPv4Network("192.168.0.0/16"),),
        )
    )
    msg = sip.decode(raw)
    via = sip.parse_via(msg.values("Via")[0])
    out = responder.receive(msg, (via.host, via.port or 5060), 0.0)
    assert out.url == url
    assert sip.decode(out.sends[1].data).body == url.encode()


# ---------------------------------------------------------------- profile hygiene


@pytest.mark.parametrize("profile", vendors.PROFILES, ids=[p.name for p in vendors.PROFILES])
def test_profile_is_well_formed(profile: vendors.VendorProfile) -> None:
    assert profile.sources, "every profile names its sources"
    assert profile.ouis and all(
        re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){2}", o) for o in profile.ouis
    )
    assert profile.mac_files and all("{mac}" in t or "{MAC}" in t for t in profile.mac_files)
    assert vendors.by_name(profile.name) is profile
    if profile.identity is not None:  # a lab phone reads only what its firmware reads
        assert set(profile.identity.url_options) <= set(profile.dhcp_options)
        assert all(code in profile.identity.prl for code in profile.identity.url_options)


def test_ouis_are_unique() -> None:
    ouis = [o for p in vendors.PROFILES for o in p.ouis]
    assert len(ouis) == len(set(ouis))


@pytest.mark.parametrize(
    ("real", "asked"),
    [
        ("SEP00304F113AF8.cnf.xml", "sep00304f113af8.cnf.xml"),
        ("cfg00304f113af8.xml", "cfg00304F113AF8.xml"),
        ("00304F113AF8.xml", "00304f113af8.xml"),
        ("00304f113af8-phone.cfg", "00304F113AF8-phone.cfg"),
    ],
)
def test_vendor_per_mac_file_found_in_any_case_and_bound(
    tmp_path: Path, real: str, asked: str
) -> None:
    (tmp_path / real).write_bytes(b"line secret\n")
    res = resolver(tmp_path, {"192.0.2.10": MAC, "192.0.2.11": "00:30:4f:99:88:77"})
    mine = res.resolve(asked, "192.0.2.10")
    assert content(mine) == b"line secret\n"
    theirs = res.resolve(asked, "192.0.2.11")
    assert isinstance(theirs, Refusal) and theirs.result == "forbidden"
    assert theirs.mac == MAC


MANUF = Path("/usr/share/wireshark/manuf")  # IEEE registry as Debian's libwireshark-data ships it
REGISTERED_AS = {
    "planet": ("PLANET",),
    "fanvil": ("Fanvil",),
    "yealink": ("Yealink",),
    "snom": ("snom",),
    "grandstream": ("Grandstream",),
    "polycom": ("Polycom",),
    "cisco": ("Cisco",),
    "cisco-spa": ("Cisco",),
    # Avaya J100 guide, option 12: Avaya also uses OUIs registered to the
    # companies whose phone lines it took over.
    "avaya": ("Avaya", "Lucent", "Tenovis", "Giant Electronics"),
    "panasonic": ("Panasonic",),
    "gigaset": ("Gigaset",),
}


@pytest.mark.skipif(not MANUF.exists(), reason="no /usr/share/wireshark/manuf (libwireshark-data)")
def test_every_oui_is_registered_to_its_family() -> None:
    registry: dict[str, str] = {}
    for line in MANUF.read_text(errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and len(parts[0]) == 8 and not line.startswith("#"):
            registry[parts[0].lower()] = parts[-1]
    wrong = {
        (p.name, oui, registry.get(oui, "unregistered"))
        for p in vendors.PROFILES
        for oui in p.ouis
        if not any(n.lower() in registry.get(oui, "").lower() for n in REGISTERED_AS[p.name])
    }
    assert wrong == set()


def test_every_lab_family_renders_and_has_a_remote_answer() -> None:
    """Each lab family has a profile identity, a model whose files netboot
    renders with that family's templates, and `netboot phone` either speaks
    its protocol or says it has none."""
    from netboot.lab.phone import VENDORS
    from netboot.provisioning.activeuri import protocol_for
    from netboot.provisioning.inventory import model_for_common_file

    assert len(VENDORS) == 9
    for name, vendor in VENDORS.items():
        profile = vendors.by_name(name)
        assert profile is not None and profile.identity is not None, name
        model = model_for_common_file(vendor.common_file)
        assert model is not None, name
        assert vendors.by_name(model.vendor) in (profile, vendors.by_name("fanvil")), name
        own = model.own_name("0004f2aabbcc")
        assert vendors.per_mac_name(own) is not None, own  # lease-bound
        protocol = protocol_for(name)
        if profile.remote:
            assert not isinstance(protocol, str), name
        else:
            assert isinstance(protocol, str) and "no remote control" in protocol, name
