"""A lab phone applies the files it fetched the way its firmware would.

The phone parses its common and own file with the vendor's rules
(`netboot.provisioning.vendorfile`), keeps what its firmware reads and acts
on it: the voice VLAN and priority it must move to, the Action URLs it
reports to, the address Active URI requests must come from and the admin
account they must carry, its SIP line. A real phone silently ignores a key it
does not know, which is how a misspelt key goes unnoticed in the field; a lab
phone refuses the whole file instead (`ConfigRejected`), naming every key its
firmware would have ignored and every key it needed and did not find, so a
wrong config ends in a visible failure of `netboot lab`.

Which keys a firmware reads: the reference exports (tests/data), per layout:
PLANET/Fanvil 2.x (`fanvil-2`: `<CTI CONFIG MODULE>`), 1.x (`fanvil-1`:
`<GLOBAL CONFIG MODULE>`), Yealink, and one layout per other family (`snom`,
...), each applied by its own function below with the keys its family's
profile (`netboot.vendors`) and templates/SOURCES.md name. A family's remote
control (`REMOTE_PATHS`) is answered with the admin account its file set.
Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from netboot.provisioning.events import BY_SLUG
from netboot.provisioning.vendorfile import VendorFile, VendorFileError, check_rendered, parse

QOS, MMI, CTI, GLOBAL = (
    "<QOS CONFIG MODULE>",
    "<MMI CONFIG MODULE>",
    "<CTI CONFIG MODULE>",
    "<GLOBAL CONFIG MODULE>",
)
SIP = "<SIP CONFIG MODULE>"

# Active URI request paths: Fanvil/PLANET (PLANET guide chapter 5) and
# Yealink's `/servlet?key=` (Yealink Action URI).
ACTIVE_URI_PATHS = ("/cgi-bin/ConfigManApp.com", "/servlet")
# Remote-control paths per layout family (activeuri.PROTOCOLS names the sources).
REMOTE_PATHS: Mapping[str, tuple[str, ...]] = {
    "fanvil": ACTIVE_URI_PATHS,
    "yealink": ACTIVE_URI_PATHS,
    "snom": ("/command.htm", "/advanced_update.htm"),
    "grandstream": ("/cgi-bin/api-sys_operation",),
    "polycom": ("/api/v1/mgmt/safeRestart", "/api/v1/mgmt/safeReboot"),
    "cisco": ("/admin/reboot", "/admin/resync"),
    "gigaset": (),  # no remote control
    "panasonic": (),  # no HTTP remote control found
    "avaya": (),  # no HTTP remote control found
}
SNOM = "phone-settings"


class ConfigRejected(Exception):
    """The phone's firmware could not use the file: the message says why."""


@dataclass(frozen=True)
class Applied:
    """What a phone runs with after applying its files."""

    layout: str  # "fanvil-1" | "fanvil-2" | "yealink"
    vlan: int | None  # voice VLAN it tags with (None: untagged)
    priority: int
    admin_user: str
    admin_password: str
    active_uri_ip: str  # "" or "any": every source (PLANET guide 5.2)
    sip_user: str
    sip_server: str
    action_urls: Mapping[str, str] = field(default_factory=dict)  # event slug -> URL

    def action_url(self, slug: str, mac: str, ip: str, model: str) -> str:
        """The URL the phone GETs on `slug`, its variables filled in (chapter 4)."""
        url = self.action_urls.get(slug, "")
        return url.replace("$mac", mac).replace("$ip", ip).replace("$model", quote(model))


def layout_for(vendor: str, firmware: str) -> str:
    """The layout a phone's firmware reads: Fanvil 1.x or 2.x, Yealink, or
    the family's own (`snom`, ...)."""
    if vendor not in ("planet", "fanvil"):
        return vendor
    major = firmware.split(".", 1)[0]
    return "fanvil-1" if major.isdigit() and int(major) < 2 else "fanvil-2"


def _int(value: str | None, what: str) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise ConfigRejected(f"{what} is {value!r}, not a number") from None


def apply_files(layout: str, common: bytes, own: bytes, events: tuple[str, ...]) -> Applied:
    """Parse, check and apply a phone's common and own file. `events` are the
    Action URL events the phone will report: their keys must be there."""
    vendor = layout.split("-", 1)[0]
    texts = {
        "common file": common.decode("utf-8", "replace"),
        "own file": own.decode("utf-8", "replace"),
    }
    parsed: dict[str, VendorFile] = {}
    problems: list[str] = []
    for name, text in texts.items():
        if name == "common file" and not text:
            continue  # a family that asks for its own file only (Grandstream)
        try:
            parsed[name] = parse(vendor, text)
        except VendorFileError as exc:
            raise ConfigRejected(f"{name}: {exc}") from None
        problems += [f"{name}: {p} (the firmware ignores it)" for p in check_rendered(layout, text)]
    if problems:
        raise ConfigRejected(
            "; ".join(problems[:5]) + (f"; {len(problems) - 5} more" if len(problems) > 5 else "")
        )
    merged: dict[tuple[str, str], str] = {}
    for name in parsed:  # the own file overrides the common one
        merged.update({(e.module, e.key): e.value for e in parsed[name].entries})
    if vendor == "fanvil":
        return _apply_fanvil(layout, merged, events)
    if vendor == "snom":
        return _apply_snom(merged, events)
    if vendor == "grandstream":
        return _apply_grandstream(merged)
    if vendor == "polycom":
        return _apply_polycom(merged)
    if vendor == "cisco":
        return _apply_cisco(merged)
    if vendor == "gigaset":
        return _apply_gigaset(merged)
    if vendor == "panasonic":
        return _apply_panasonic(merged)
    if vendor == "avaya":
        return _apply_avaya(merged)
    return _apply_yealink(merged, parsed, events)


def _need(merged: Mapping[tuple[str, str], str], module: str, key: str, missing: list[str]) -> str:
    value = merged.get((module, key))
    if value is None:
        missing.append(f"{module} {key}" if module else key)
        return ""
    return value


def _take(
    merged: Mapping[tuple[str, str], str],
    module: str,
    keys: tuple[str, ...],
    must: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The values of `keys` in `module`; ConfigRejected naming every key that
    is missing, and every `must` key (case-insensitive) without its value."""
    missing: list[str] = []
    values = {key: _need(merged, module, key, missing) for key in keys}
    for key, wanted in (must or {}).items():
        if merged.get((module, key), "").lower() != wanted.lower():
            missing.append(f"{key} = {wanted}")
    if missing:
        raise ConfigRejected("no " + ", ".join(missing) + " in the files")
    return values


def _apply_fanvil(
    layout: str, merged: Mapping[tuple[str, str], str], events: tuple[str, ...]
) -> Applied:
    missing: list[str] = []
    enable_vlan = _need(merged, QOS, "Enable VLAN", missing)
    vlan_id = _need(merged, QOS, "VLAN ID", missing)
    priority = _need(merged, QOS, "Voice Priority", missing)
    user = _need(merged, MMI, "Account1 Name", missing)
    password = _need(merged, MMI, "Account1 Password", missing)
    action_module = CTI if layout == "fanvil-2" else GLOBAL
    allowed = _need(merged, action_module, "Active Uri IP", missing)
    urls: dict[str, str] = {}
    for slug in events:
        event = BY_SLUG[slug]
        key = event.fanvil_cti if layout == "fanvil-2" else event.fanvil_global
        urls[slug] = _need(merged, action_module, key, missing)
    sip_user = _need(merged, SIP, "SIP1 Register User", missing)
    sip_server = _need(merged, SIP, "SIP1 Register Addr", missing)
    if missing:
        raise ConfigRejected("no " + ", ".join(missing) + " in the files")
    vlan = _int(vlan_id, "VLAN ID") if enable_vlan == "1" else None
    return Applied(
        layout, vlan, _int(priority, "Voice Priority"), user, password, allowed,
        sip_user, sip_server, urls,
    )  # fmt: skip


def _apply_yealink(
    merged: Mapping[tuple[str, str], str],
    parsed: Mapping[str, VendorFile],
    events: tuple[str, ...],
) -> Applied:
    missing: list[str] = []
    enable_vlan = _need(merged, "", "static.network.vlan.internet_port_enable", missing)
    vlan_id = _need(merged, "", "static.network.vlan.internet_port_vid", missing)
    priority = _need(merged, "", "static.network.vlan.internet_port_priority", missing)
    # The admin login is `admin` unless the config renames it (Yealink default).
    admin = merged.get(("", "static.security.user_name.admin")) or "admin"
    allowed = _need(merged, "", "features.action_uri_limit_ip", missing)
    urls = {
        slug: _need(merged, "", f"action_url.{BY_SLUG[slug].yealink}", missing) for slug in events
    }
    sip_user = _need(merged, "", "account.1.user_name", missing)
    sip_server = _need(merged, "", "account.1.sip_server.1.address", missing)
    # `static.security.user_password = <login>:<password>`, one line per account.
    password = None
    for vf in parsed.values():
        for value in vf.values("static.security.user_password"):
            login, sep, secret = value.partition(":")
            if sep and login == admin:
                password = secret
    if password is None:
        missing.append(f"static.security.user_password = {admin}:...")
    if missing:
        raise ConfigRejected("no " + ", ".join(missing) + " in the files")
    vlan = _int(vlan_id, "internet_port_vid") if enable_vlan == "1" else None
    return Applied(
        "yealink", vlan, _int(priority, "internet_port_priority"), admin, password or "",
        allowed, sip_user, sip_server, urls,
    )  # fmt: skip


def _apply_snom(merged: Mapping[tuple[str, str], str], events: tuple[str, ...]) -> Applied:
    """Snom: `vlan_id`/`vlan_qos` (an empty vlan_id: untagged), the web
    account `http_user`/`http_pass` that remote control must carry, the
    Action URL keys of the Snom profile, line 1's `user_name`/`user_host`.
    Snom firmware has no allowed-address list for remote control: any source
    with the account is let in."""
    from netboot.vendors.snom import SNOM as PROFILE

    missing: list[str] = []
    vlan_id = _need(merged, SNOM, "vlan_id", missing)
    priority = _need(merged, SNOM, "vlan_qos", missing)
    user = _need(merged, SNOM, "http_user", missing)
    password = _need(merged, SNOM, "http_pass", missing)
    urls = {
        slug: _need(merged, SNOM, PROFILE.action_keys[slug], missing)
        for slug in events
        if slug in PROFILE.action_keys
    }
    sip_user = _need(merged, SNOM, "user_name[1]", missing)
    sip_server = _need(merged, SNOM, "user_host[1]", missing)
    if merged.get((SNOM, "user_active[1]")) != "on":
        missing.append("user_active[1] = on")
    if missing:
        raise ConfigRejected("no " + ", ".join(missing) + " in the files")
    vlan = _int(vlan_id, "vlan_id") if vlan_id else None
    return Applied(
        "snom", vlan, _int(priority, "vlan_qos") if vlan is not None else 0, user, password,
        "any", sip_user, sip_server.partition(":")[0], urls,
    )  # fmt: skip


def _apply_grandstream(merged: Mapping[tuple[str, str], str]) -> Applied:
    """Grandstream P-values: P51 VLAN tag (0: untagged), P87 its priority,
    P2 the admin password (the login is `admin`), line 1 P271 active, P35
    user, P47 server. No Action URLs and no remote control netboot speaks."""
    v = _take(merged, "config", ("P51", "P87", "P2", "P35", "P47"), must={"P271": "1"})
    vlan_id, priority, password, sip_user, sip_server = v.values()
    vlan = _int(vlan_id, "P51") or None
    return Applied(
        "grandstream", vlan, _int(priority, "P87") if vlan else 0, "admin", password,
        "any", sip_user, sip_server.partition(":")[0], {},
    )  # fmt: skip


def _apply_polycom(merged: Mapping[tuple[str, str], str]) -> Applied:
    """Polycom: the master file must name `[PHONE_MAC_ADDRESS]-phone.cfg` (the
    file the phone then asked for); `device.*` applies only with `device.set`
    and its own `.set`: `device.net.vlanId` (empty: untagged),
    `qos.ethernet.rtp.user_priority`, `device.auth.localAdminPassword` (the
    REST API login is `Polycom`, enabled by `apps.restapi.enabled`), line 1
    `reg.1.address`, `reg.1.server.1.address`. No Action URLs."""
    missing: list[str] = []
    listed = _need(merged, "APPLICATION", "CONFIG_FILES", missing)
    if listed and "[PHONE_MAC_ADDRESS]-phone.cfg" not in [f.strip() for f in listed.split(",")]:
        missing.append("[PHONE_MAC_ADDRESS]-phone.cfg in the master's CONFIG_FILES")

    def device(key: str) -> str:
        if merged.get(("", "device.set")) != "1" or merged.get(("", f"{key}.set")) != "1":
            missing.append(f'{key} with device.set="1" and {key}.set="1"')
            return ""
        return _need(merged, "", key, missing)

    vlan_id = device("device.net.vlanId")
    password = device("device.auth.localAdminPassword")
    priority = _need(merged, "", "qos.ethernet.rtp.user_priority", missing)
    sip_user = _need(merged, "", "reg.1.address", missing)
    sip_server = _need(merged, "", "reg.1.server.1.address", missing)
    if merged.get(("", "apps.restapi.enabled")) != "1":
        missing.append('apps.restapi.enabled="1"')
    if missing:
        raise ConfigRejected("no " + ", ".join(missing) + " in the files")
    vlan = _int(vlan_id, "device.net.vlanId") if vlan_id else None
    return Applied(
        "polycom", vlan, _int(priority, "qos.ethernet.rtp.user_priority"), "Polycom", password,
        "any", sip_user, sip_server, {},
    )  # fmt: skip


def next_file(layout: str, common: bytes, mac_hex: str, base: str) -> str | None:
    """The file a firmware asks for after its common file, as that file names
    it: a Cisco profile's Profile_Rule_B/C/D (`$MA`, `$MAU` filled in), a
    Polycom master's first CONFIG_FILES entry (`[PHONE_MAC_ADDRESS]` filled
    in, relative to `base`). None: the family names none (or the file is not
    its format; applying it will say so)."""
    vendor = layout.split("-", 1)[0]
    if vendor not in ("cisco", "polycom", "avaya"):
        return None
    try:
        parsed = parse(vendor, common.decode("utf-8", "replace"))
    except VendorFileError:
        return None
    if vendor == "cisco":
        for key in ("Profile_Rule_B", "Profile_Rule_C", "Profile_Rule_D"):
            rule = parsed.get(key)
            if rule:
                return rule.replace("$MAU", mac_hex.upper()).replace("$MA", mac_hex.lower())
        return None
    if vendor == "avaya":  # the last GET of the script, $MACADDR filled in
        gets = parsed.values("GET", "script")
        return f"{base}/{gets[-1].replace('$MACADDR', mac_hex.lower())}" if gets else None
    listed = parsed.get("CONFIG_FILES", "APPLICATION") or ""
    first = listed.split(",")[0].strip()
    if not first:
        return None
    return f"{base}/{first.replace('[PHONE_MAC_ADDRESS]', mac_hex.lower())}"


def _apply_cisco(merged: Mapping[tuple[str, str], str]) -> Applied:
    """Cisco SPA / 3PCC: Enable_VLAN + VLAN_ID, the voice CoS (802.1p) of line
    1, Admin_Passwd (the login is `admin`), line 1 enabled with User_ID and
    Proxy. No Action URLs; remote control is /admin/resync and /admin/reboot."""
    keys = ("Enable_VLAN", "VLAN_ID", "RTP_CoS_Value_1_", "Admin_Passwd", "User_ID_1_", "Proxy_1_")
    v = _take(merged, "", keys, must={"Line_Enable_1_": "Yes"})
    enable_vlan, vlan_id, priority, password, sip_user, sip_server = v.values()
    vlan = _int(vlan_id, "VLAN_ID") if enable_vlan.lower() == "yes" else None
    return Applied(
        "cisco-spa", vlan, _int(priority, "RTP_CoS_Value_1_"), "admin", password,
        "any", sip_user, sip_server.partition(":")[0], {},
    )  # fmt: skip


def _apply_gigaset(merged: Mapping[tuple[str, str], str]) -> Applied:
    """Gigaset Nx70: handset 00001 added (`add_hs`) with its SipAccount on
    provider 0, the provider's registrar, the web UI password (login
    `admin`). No VLAN parameter (no public source): the base keeps the VLAN
    LLDP-MED gave it. No Action URLs, no remote control."""
    missing: list[str] = []
    _need(merged, "nvm", "oper:add_hs", missing)
    sip_user = _need(merged, "nvm", "SipAccount.00001.UserName", missing)
    provider = _need(merged, "nvm", "SipAccount.00001.ProviderId", missing)
    sip_server = _need(merged, "nvm", f"SipProvider.{provider or 0}.RegServerAddress", missing)
    password = _need(merged, "nvm", "WebUIAccounts.1.Password", missing)
    if missing:
        raise ConfigRejected("no " + ", ".join(missing) + " in the files")
    return Applied("gigaset", None, 0, "admin", password, "any", sip_user, sip_server, {})


def _apply_panasonic(merged: Mapping[tuple[str, str], str]) -> Applied:
    """Panasonic: VLAN_ENABLE + VLAN_ID_IP_PHONE, ADMIN_ID/ADMIN_PASS, line 1
    PHONE_NUMBER_1 / SIP_AUTHID_1 on SIP_RGSTR_ADDR_1. No Action URLs, no
    HTTP remote control."""
    keys = ("VLAN_ENABLE", "VLAN_ID_IP_PHONE", "ADMIN_ID", "ADMIN_PASS")
    v = _take(merged, "", (*keys, "SIP_AUTHID_1", "SIP_RGSTR_ADDR_1"))
    enable_vlan, vlan_id, user, password, sip_user, sip_server = v.values()
    vlan = _int(vlan_id, "VLAN_ID_IP_PHONE") if enable_vlan == "Y" else None
    return Applied("panasonic", vlan, 0, user, password, "any", sip_user, sip_server, {})


def _apply_avaya(merged: Mapping[tuple[str, str], str]) -> Applied:
    """Avaya J100: L2Q (1: tagged) and L2QVLAN, L2QAUD its priority, the web
    admin password, the SIP user (FORCE_SIP_USERNAME) and the first host of
    SIP_CONTROLLER_LIST. No Action URLs, no HTTP remote control."""
    keys = ("L2Q", "L2QVLAN", "L2QAUD", "FORCE_WEB_ADMIN_PASSWORD")
    v = _take(merged, "", (*keys, "FORCE_SIP_USERNAME", "SIP_CONTROLLER_LIST"))
    l2q, vlan_id, priority, password, sip_user, controllers = v.values()
    vlan = _int(vlan_id, "L2QVLAN") if l2q == "1" else None
    server = controllers.split(",")[0].split(";")[0].rpartition(":")[0] or controllers
    return Applied(
        "avaya", vlan, _int(priority, "L2QAUD"), "admin", password, "any", sip_user, server, {}
    )


def active_uri_status(applied: Applied | None, source_ip: str, authorization: str) -> int:
    """How the phone answers an Active URI request: 200, 401 (no or wrong
    admin credentials) or 403 (from an address the config does not allow).
    A phone that applied no config yet runs factory settings: it refuses."""
    if applied is None:
        return 403
    if applied.active_uri_ip not in ("", "any") and source_ip not in {
        ip.strip() for ip in applied.active_uri_ip.split(",")
    }:
        return 403
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic":
        return 401
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return 401
    if not sep or (user, password) != (applied.admin_user, applied.admin_password):
        return 401
    return 200
