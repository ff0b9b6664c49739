"""netboot's DHCP config as a kea-dhcp4 configuration (no I/O).

What a phone is sent depends, in netboot, on two things (netboot/dhcp/engine.py
`reply_options`): the first `[[dhcp.class]]` it matches (option 60 substring,
MAC prefix) and its phone family (`netboot.vendors.identify`: RFC 3925
enterprise number, option 60 text, OUI). The export writes that as Kea client
classes (Kea ARM, "Client Classification"), evaluated in order:

1. `nb-e-<family>`, `nb-r-<family>`: the family's enterprise number and its
   option 60 text (netboot/kea/match.py writes the regexes as Kea
   expressions); `nb-vendor-<family>`: netboot's order, every enterprise
   before any text before any OUI;
2. `nb-class-<name>`: each `[[dhcp.class]]`, first match wins;
3. one option class per situation (class x family), mutually exclusive, so a
   phone gets exactly one set of provisioning options, byte for byte what
   netboot itself sends: the values come from the same functions
   (`url_for_option`, `url_option_value`, `encode_value`), written as hex
   (`csv-format: false`) so Kea sends them unchanged.

Subnet-level data (routers, DNS, domain, broadcast, lease and renew/rebind
times: T1 = 1/2, T2 = 7/8 as netboot), reservations (`[[dhcp.host]]`), a
memfile lease database, the control socket with `libdhcp_lease_cmds.so`
(netboot's kea mode reads `lease4-get-page` from it), and with HA peers
`libdhcp_ha.so` in hot-standby, its peers talking over the HA hook's own
HTTP listener (`multi-threading.http-dedicated-listener`, Kea ARM hooks
chapter, "Multi-Threaded Configuration (HA+MT)":
no kea-ctrl-agent needed), one file per peer differing only in
`this-server-name`.

No per-packet value is needed (each family's URL macro, `$mac`, `{mac}`,
`$MA`, is filled in by the phone), so no flex_option: the hook is loaded
only when a class sets an option whose value Kea must compute, which
netboot's config cannot express today.
"""

from __future__ import annotations

import re
import sysconfig
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from netboot.config import Config, DhcpClass, DhcpScope
from netboot.dhcp.options import encode_suboptions, encode_value, url_option_value
from netboot.kea.match import (
    all_of,
    any_of,
    enterprise_test,
    expand_regex,
    mac_prefix_test,
    member,
    substring_test,
    text_test,
)
from netboot.vendors import PROFILES, VendorProfile

# Debian's kea-dhcp4-server puts the hooks under the multiarch directory
# (x86_64-linux-gnu here, aarch64-linux-gnu on a Raspberry Pi).
HOOKS_DIR = f"/usr/lib/{sysconfig.get_config_var('MULTIARCH') or 'x86_64-linux-gnu'}/kea/hooks"
CONTROL_SOCKET = "/run/kea/kea4-ctrl-socket"
LEASE_FILE = "/var/lib/kea/kea-leases4.csv"

# Options Kea 2.2 defines with a type that is not a plain string or binary
# (kea std_option_defs.h): their data is checked against the type, so a URL
# cannot be sent there as hex. netboot sends the URL as text in any code.
_TYPED = {159: "v4-portparams"}


@dataclass(frozen=True)
class HaPeer:
    name: str
    url: str  # http://address:port/ of the peer's HA listener


@dataclass(frozen=True)
class HaTiming:
    """libdhcp_ha.so timers (Kea ARM, "High Availability"; Kea's defaults)."""

    heartbeat_delay_ms: int = 10000
    max_response_delay_ms: int = 60000
    max_ack_delay_ms: int = 10000
    max_unacked_clients: int = 10


@dataclass(frozen=True)
class ExportOptions:
    control_socket: str = CONTROL_SOCKET  # `{name}` is the peer's name
    lease_file: str = LEASE_FILE  # `{name}` is the peer's name
    hooks_dir: str = HOOKS_DIR
    peers: tuple[HaPeer, ...] = ()
    timing: HaTiming = HaTiming()


class ExportError(ValueError):
    """The config cannot be written for Kea (one line, for the operator)."""


def parse_peer(text: str) -> HaPeer:
    name, sep, url = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name):
        raise ExportError(f"--ha-peer {text!r}: expected NAME=URL (NAME letters, digits, .-_)")
    if not re.fullmatch(r"https?://[^/\s]+/?", url):
        raise ExportError(f"--ha-peer {text!r}: URL must be http://ADDRESS:PORT/")
    return HaPeer(name, url if url.endswith("/") else url + "/")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _hex_option(code: int, data: bytes) -> dict[str, Any]:
    if code in _TYPED:
        raise ExportError(
            f"option {code} is Kea's {_TYPED[code]} (not text): netboot's value cannot go there"
        )
    return {
        "code": code,
        "space": "dhcp4",
        "csv-format": False,
        "data": data.hex().upper(),
        "always-send": True,  # netboot sends them whether or not the phone asked
    }


# ---------------------------------------------------------------- classes


def _family_tests(profile: VendorProfile) -> tuple[str | None, str | None, str | None]:
    """(enterprise, option 60 text, OUI) tests of one family."""
    ent = enterprise_test(profile.enterprise) if profile.enterprise is not None else None
    texts = [text_test(lit) for p in profile.vendor_classes if (lit := expand_regex(p))]
    text = any_of(texts) if texts else None
    ouis = [mac_prefix_test(bytes.fromhex(o.replace(":", ""))) for o in profile.ouis]
    return ent, text, any_of(ouis) if ouis else None


def _family_classes() -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """The families in netboot's identification order; (classes, family
    class names, notes on what Kea cannot tell apart)."""
    classes: list[dict[str, Any]] = []
    notes: list[str] = []
    tests = [(p, *_family_tests(p)) for p in PROFILES]
    ent_names: list[str] = []
    text_names: list[str] = []
    for profile, ent, text, _ in tests:
        slug = _slug(profile.name)
        if ent is not None:
            classes.append({"name": f"nb-e-{slug}", "test": ent})
            ent_names.append(f"nb-e-{slug}")
        if text is not None:
            classes.append({"name": f"nb-r-{slug}", "test": text})
            text_names.append(f"nb-r-{slug}")
        dropped = [p for p in profile.vendor_classes if expand_regex(p) is None]
        if dropped:
            notes.append(
                f"{profile.label}: option 60 form(s) {', '.join(dropped)} not expressible "
                "in Kea 2.2: told by OUI only"
            )
    names: list[str] = []
    for profile, ent, text, oui in tests:
        slug = _slug(profile.name)
        no_ent = f"not ({any_of([member(n) for n in ent_names])})" if ent_names else None
        no_text = f"not ({any_of([member(n) for n in text_names])})" if text_names else None
        ways: list[str] = []
        if ent is not None:
            ways.append(member(f"nb-e-{slug}"))
        if text is not None:
            earlier = text_names[: text_names.index(f"nb-r-{slug}")]
            ways.append(
                all_of(
                    [t for t in (no_ent,) if t]
                    + [member(f"nb-r-{slug}")]
                    + [f"not {member(n)}" for n in earlier]
                )
            )
        if oui is not None:
            ways.append(all_of([t for t in (no_ent, no_text) if t] + [oui]))
        if not ways:
            continue
        classes.append({"name": f"nb-vendor-{slug}", "test": any_of(ways)})
        names.append(f"nb-vendor-{slug}")
    return classes, names, notes


def _netboot_class_test(cls: DhcpClass) -> str:
    ways: list[str] = []
    if cls.vendor:
        ways.append(substring_test(cls.vendor))
    if cls.mac_prefix is not None:
        ways.append(mac_prefix_test(cls.mac_prefix))
    return any_of(ways)


def _url_option_data(
    codes: tuple[int, ...],
    url: str,
    profile: VendorProfile | None,
    cls: DhcpClass | None,
    server: IPv4Address | None,
) -> list[dict[str, Any]]:
    """netboot's `reply_options` for the provisioning options, as Kea option-data."""
    out: list[dict[str, Any]] = []
    if not url:
        return out
    for code in codes:
        if code == 43 and cls is not None and cls.vendor_suboptions:
            continue
        if code == 150:
            form = url
        elif cls is not None and cls.url:
            form = cls.url
        elif profile is None:
            form = url
        else:
            form = profile.url_for_option(code, url)
        try:
            data = url_option_value(code, form, server)
        except ValueError as exc:
            raise ExportError(f"option {code}: {exc}") from None
        out.append(_hex_option(code, data))
    return out


def _class_option_data(cls: DhcpClass) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if cls.vendor_suboptions:
        out.append(_hex_option(43, encode_suboptions(cls.vendor_suboptions)))
    for code, value in cls.options.items():
        out.append(_hex_option(code, encode_value(code, value)))
    return out


def _merge(first: list[dict[str, Any]], then: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Option-data by code, a later entry replacing an earlier one (as a
    class's own options replace the URL options in netboot)."""
    by_code: dict[int, dict[str, Any]] = {}
    for item in first + then:
        by_code[int(item["code"])] = item
    return list(by_code.values())


def client_classes(config: Config) -> tuple[list[dict[str, Any]], list[str]]:
    """Every Kea client class netboot's matching needs, in evaluation order."""
    dhcp = config.dhcp
    url = config.provisioning.url
    server = config.server_address()
    classes, family_names, notes = _family_classes()
    profiles = {f"nb-vendor-{_slug(p.name)}": p for p in PROFILES}
    class_names: list[str] = []
    for index, cls in enumerate(dhcp.classes):
        name = f"nb-class-{_slug(cls.name)}"
        if name in class_names:  # two names that write the same ("a b", "a-b")
            name = f"{name}-{index}"
        earlier = [f"not {member(n)}" for n in class_names]
        classes.append({"name": name, "test": all_of([*earlier, _netboot_class_test(cls)])})
        class_names.append(name)
    any_class = any_of([member(n) for n in class_names]) if class_names else None
    any_family = any_of([member(n) for n in family_names]) if family_names else None

    def situation(
        name: str, tests: list[str], cls: DhcpClass | None, profile: VendorProfile | None
    ) -> None:
        codes = cls.url_options if cls is not None and cls.url_options is not None else None
        data = _url_option_data(codes or dhcp.url_options, url, profile, cls, server)
        if cls is not None:
            data = _merge(data, _class_option_data(cls))
        if not data:
            return
        entry: dict[str, Any] = {"name": name, "test": all_of(tests), "option-data": data}
        if any(item["code"] == 43 for item in data):
            # Kea decodes 43 as sub-options unless a class redefines it
            # (Kea ARM, "DHCPv4 Vendor-Specific Options": binary in a class;
            # checked against a real client in tests/test_kea_netns.py).
            entry["option-def"] = [
                {"name": "vendor-encapsulated-options", "code": 43, "type": "binary"}
            ]
        classes.append(entry)

    for cls, cname in zip(dhcp.classes, class_names, strict=True):
        if cls.url:  # a class url is sent as written, whatever the family
            situation(f"{cname}.any", [member(cname)], cls, None)
            continue
        for fname in family_names:
            situation(
                f"{cname}.{fname.removeprefix('nb-vendor-')}",
                [member(cname), member(fname)],
                cls,
                profiles[fname],
            )
        tests = [member(cname)] + ([f"not ({any_family})"] if any_family else [])
        situation(f"{cname}.any", tests, cls, None)
    no_class = [f"not ({any_class})"] if any_class else []
    for fname in family_names:
        situation(
            f"nb-opts.{fname.removeprefix('nb-vendor-')}",
            [*no_class, member(fname)],
            None,
            profiles[fname],
        )
    situation(
        "nb-opts.default",
        no_class + ([f"not ({any_family})"] if any_family else []),
        None,
        None,
    )
    return classes, notes


# ---------------------------------------------------------------- subnets


def _subnet(index: int, scope: DhcpScope, config: Config) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    if scope.router is not None:
        data.append({"name": "routers", "data": str(scope.router), "always-send": True})
    if scope.dns:
        data.append(
            {
                "name": "domain-name-servers",
                "data": ", ".join(map(str, scope.dns)),
                "always-send": True,
            }
        )
    if scope.domain:
        data.append({"name": "domain-name", "data": scope.domain, "always-send": True})
    data.append(
        {
            "name": "broadcast-address",
            "data": str(scope.subnet.broadcast_address),
            "always-send": True,
        }
    )
    t = scope.lease_time
    subnet: dict[str, Any] = {
        "id": index,
        "subnet": str(scope.subnet),
        "interface": scope.interface,
        "pools": [{"pool": f"{scope.pool_start} - {scope.pool_end}"}],
        "valid-lifetime": t,
        "renew-timer": t // 2,
        "rebind-timer": t * 7 // 8,
        "option-data": data,
    }
    address = config.server_address(scope.interface)
    if address is not None:
        subnet["next-server"] = str(address)
    reservations = [
        {
            "hw-address": h.mac,
            "ip-address": str(h.ip),
            **({"hostname": h.hostname} if h.hostname else {}),
        }
        for h in config.dhcp.hosts
        if h.ip in scope.subnet
    ]
    if reservations:
        subnet["reservations"] = reservations
    return subnet


def _ha(name: str, options: ExportOptions) -> dict[str, Any]:
    t = options.timing
    roles = ("primary", "standby")
    return {
        "high-availability": [
            {
                "this-server-name": name,
                "mode": "hot-standby",
                "heartbeat-delay": t.heartbeat_delay_ms,
                "max-response-delay": t.max_response_delay_ms,
                "max-ack-delay": t.max_ack_delay_ms,
                "max-unacked-clients": t.max_unacked_clients,
                "multi-threading": {
                    "enable-multi-threading": True,
                    "http-dedicated-listener": True,
                    "http-listener-threads": 2,
                    "http-client-threads": 2,
                },
                "peers": [
                    {"name": p.name, "url": p.url, "role": role, "auto-failover": True}
                    for p, role in zip(options.peers, roles, strict=False)
                ],
            }
        ]
    }


def kea_config(config: Config, options: ExportOptions, this: str | None = None) -> dict[str, Any]:
    """The kea-dhcp4 configuration (a dict for json.dumps); `this`: the HA
    peer it is for (one of options.peers), None without HA."""
    dhcp = config.dhcp
    if not dhcp.scopes:
        raise ExportError("dhcp: no subnet to export (set dhcp.subnet and dhcp.pool)")
    if options.peers and len(options.peers) != 2:
        raise ExportError("a hot-standby pair needs exactly two --ha-peer (primary first)")
    if len({p.name for p in options.peers}) != len(options.peers):
        raise ExportError("--ha-peer names must differ")
    name = this or "kea"
    classes, notes = client_classes(config)
    hooks: list[dict[str, Any]] = [{"library": f"{options.hooks_dir}/libdhcp_lease_cmds.so"}]
    if options.peers:
        hooks.append(
            {"library": f"{options.hooks_dir}/libdhcp_ha.so", "parameters": _ha(name, options)}
        )
    glob: list[dict[str, Any]] = []
    if dhcp.ntp:
        glob.append(
            {"name": "ntp-servers", "data": ", ".join(map(str, dhcp.ntp)), "always-send": True}
        )
    t = dhcp.scopes[0].lease_time
    dhcp4: dict[str, Any] = {
        "interfaces-config": {"interfaces": list(dict.fromkeys(s.interface for s in dhcp.scopes))},
        "authoritative": dhcp.authoritative,
        "control-socket": {
            "socket-type": "unix",
            "socket-name": options.control_socket.replace("{name}", name),
        },
        "lease-database": {
            "type": "memfile",
            "persist": True,
            "name": options.lease_file.replace("{name}", name),
            "lfc-interval": 3600,
        },
        "valid-lifetime": t,
        # RFC 2131 §4.4.1: the client identifier is option 61, else chaddr;
        # netboot binds leases to the MAC, so does this.
        "match-client-id": False,
        "client-classes": classes,
        "subnet4": [_subnet(i, s, config) for i, s in enumerate(dhcp.scopes, start=1)],
        "hooks-libraries": hooks,
        "loggers": [
            {
                "name": "kea-dhcp4",
                "output_options": [{"output": "stdout"}],
                "severity": "INFO",
            }
        ],
    }
    if glob:
        dhcp4["option-data"] = glob
    if options.peers:
        # The HA hook's dedicated HTTP listener needs a multi-threaded server.
        dhcp4["multi-threading"] = {
            "enable-multi-threading": True,
            "thread-pool-size": 2,
            "packet-queue-size": 64,
        }
    comment = [f"written by `netboot export kea` from {config.source or 'its config'}", *notes]
    dhcp4["user-context"] = {"netboot": comment}
    return {"Dhcp4": dhcp4}


def export(config: Config, options: ExportOptions) -> dict[str, dict[str, Any]]:
    """File name -> configuration: `kea-dhcp4.conf`, or one per HA peer."""
    if not options.peers:
        return {"kea-dhcp4.conf": kea_config(config, options)}
    return {f"kea-dhcp4-{p.name}.conf": kea_config(config, options, p.name) for p in options.peers}
