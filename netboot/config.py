"""config.toml -> frozen, typed configuration.

Every key has a default that serves, or is required and says so. Unknown keys
are errors: a typo must never be silently ignored. Errors are collected, not
raised one at a time, so `netboot check` can name every bad key at once, the
way `kea-dhcp4 -t` does.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from netboot.text import bad_character, describe_character
from netboot.wire import normalize_mac

T = TypeVar("T")

URL_OPTION_CODES = frozenset({66, 43, 150, 160, *range(128, 255)})


@dataclass(frozen=True)
class Problem:
    """One mistake: the dotted key it is about (`dhcp.class[1].vendor`, "" for
    the file as a whole) and what was expected. `root`: the key's value has the
    wrong type, so nothing below it is reported (no cascades)."""

    key: str
    message: str
    root: bool = False
    absent: bool = False  # about a key that is missing ("is required")
    also: tuple[str, ...] = ()  # other keys whose absence this is about
    # `serve` runs on without what this names (a read-only state_dir: leases
    # are not ACKed, the registry lives in memory); `check` still fails on it.
    degraded: bool = False

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


class ConfigError(Exception):
    """One or more problems in a config file; `problems` lists each one as
    text, `entries` as Problem (key and message apart)."""

    def __init__(self, problems: list[str] | list[Problem]) -> None:
        self.entries = [p if isinstance(p, Problem) else Problem("", p) for p in problems]
        self.problems = [str(p) for p in self.entries]
        super().__init__("; ".join(self.problems))


def _under(key: str, root: str) -> bool:
    return key.startswith((root + ".", root + "["))


def _without_cascades(problems: list[Problem]) -> list[Problem]:
    """Drop problems about keys below a table whose own value was wrong."""
    roots = [p.key for p in problems if p.root]
    return [p for p in problems if not any(_under(p.key, r) for r in roots)]


# ---------------------------------------------------------------- schema
#
# One declaration per key: the section dataclasses below. A key's type is its
# field's annotation, its default the field's default, and `setting()` adds the
# range, the allowed values and a one-line doc. The loader (`_read_section`),
# the error messages, `schema()` (what tests/test_config_schema.py holds the
# commented config.toml and README to) all read it from there.


class DhcpMode(StrEnum):
    """Who answers DHCP: netboot itself, or Kea (netboot reads its leases)."""

    NETBOOT = "netboot"
    KEA = "kea"


DHCP_MODES = tuple(m.value for m in DhcpMode)


class PnpPolicy(StrEnum):
    """Which SUBSCRIBEs SIP PnP answers."""

    ALL = "all"  # every phone
    KNOWN = "known"  # phones in phones.inventory
    DISCOVER = "discover"  # none: phones are recorded, not answered


@dataclass(frozen=True)
class Setting:
    """What a field's annotation and default do not say about its key."""

    doc: str = ""
    low: float | None = None  # range (integers: both ends; numbers: the lower)
    high: float | None = None
    required: bool = False
    custom: bool = False  # read by hand in its section's reader, not by _read_section


def setting(
    default: Any = MISSING,
    doc: str = "",
    *,
    low: float | None = None,
    high: float | None = None,
    required: bool = False,
    custom: bool = False,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A config key: a dataclass field with its default and its Setting."""
    meta = {"setting": Setting(doc, low, high, required, custom)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


SECTIONS: dict[str, type] = {}  # [section] -> its class; filled after the classes


@dataclass(frozen=True)
class Key:
    """One documented key of the schema (`schema()`)."""

    name: str  # dotted: section.key
    type: Any
    default: Any
    setting: Setting


# ---------------------------------------------------------------- sections


@dataclass(frozen=True)
class ApplianceConfig:
    interface: str = setting(
        "", "the phone-VLAN interface (or a VLAN subinterface, eth0.100)", required=True
    )
    address: IPv4Address | None = setting(
        None, "this host's IPv4 on it (default: the interface's first address)"
    )
    state_dir: Path = setting(Path("/var/lib/netboot"), "leases and the phone registry (SQLite)")
    name: str = setting("netboot", "the appliance's name (status page, LLDP system name, realm)")
    # netboot/statedisk.py
    state_reserve_kib: int = setting(
        8192, "KiB kept back for DHCP leases when state_dir fills up (0: none)", low=0, high=1 << 22
    )


@dataclass(frozen=True)
class RegistryConfig:
    """Budgets of the phone registry (netboot/registry.py `Registry.prune`)."""

    retention_days: float = setting(
        90.0, "events, and phones not seen for longer, are deleted", low=0.01
    )
    max_phones: int = setting(
        10000,
        "phone rows; the least recently seen go first (unknown first)",
        low=1,
        high=10_000_000,
    )
    max_events: int = setting(
        100000, "events of all phones; the oldest go first", low=1, high=100_000_000
    )
    max_events_per_phone: int = setting(
        200, "a phone's latest events are kept", low=1, high=1_000_000
    )
    unknown_max_age: float = setting(
        3600.0, "seconds a never-leased, never-provisioned MAC is kept", low=1.0
    )
    max_unknown: int = setting(
        1000, "never-leased, never-provisioned MACs kept", low=0, high=10_000_000
    )
    max_queued: int = setting(
        20000,
        "events waiting in memory to be written (a failing disk, or DHCP leaving no gap)",
        low=100,
        high=10_000_000,
    )


@dataclass(frozen=True)
class ProvisioningConfig:
    url: str = setting("", "what phones are told to fetch; $mac / $input are left for the phone")
    root: Path = setting(Path("/srv/netboot"), "the files phones fetch (a real file wins)")


@dataclass(frozen=True)
class DhcpScope:
    """One served subnet on one interface (the untagged phone VLAN, or a
    voice-VLAN subinterface such as `eth0.100`)."""

    interface: str
    subnet: IPv4Network
    pool_start: IPv4Address
    pool_end: IPv4Address
    address: IPv4Address | None = None
    router: IPv4Address | None = None
    dns: tuple[IPv4Address, ...] = ()
    lease_time: int = 3600
    domain: str = ""
    vlan: int | None = None


OptionValue = str | int | bool | tuple[str, ...] | dict[int, str]


@dataclass(frozen=True)
class DhcpClass:
    name: str
    vendor: str | None = None
    mac_prefix: bytes | None = None
    url: str | None = None
    url_options: tuple[int, ...] | None = None
    options: dict[int, OptionValue] = field(default_factory=dict)
    vendor_suboptions: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DhcpHost:
    mac: str
    ip: IPv4Address
    hostname: str = ""


@dataclass(frozen=True)
class DhcpConfig:
    enabled: bool = setting(True, "serve DHCP")
    # subnet, pool, router, dns, lease_time, domain, address, interface, vlan:
    # the [dhcp] scope (DhcpScope, _read_dhcp); [[dhcp.scope]] more of them
    scopes: tuple[DhcpScope, ...] = setting((), custom=True)
    url_options: tuple[int, ...] = setting(
        (66, 160), "options that carry provisioning.url: 66, 43, 150 (IPs), 160, 128..254"
    )
    authoritative: bool = setting(
        True, "NAK foreign addresses; refuse to start if another DHCP server answers"
    )
    classes: tuple[DhcpClass, ...] = setting((), custom=True)
    hosts: tuple[DhcpHost, ...] = setting((), custom=True)
    ntp: tuple[IPv4Address, ...] = setting((), "NTP servers (option 42)")
    ping_check: bool = setting(True, "ARP-probe an address before offering it")
    ping_timeout_ms: int = setting(300, "how long the probe waits", low=10, high=5000)
    ignore_other_servers: bool = setting(
        False, "serve even when another DHCP server is on the segment"
    )
    guard_probe: int = setting(
        5, "seconds to listen for other DHCP servers before serving (0: don't)", low=0, high=60
    )
    guard_interval: int = setting(
        300,
        "seconds between probes for other servers while serving (0: listen only)",
        low=0,
        high=86400,
    )
    offer_hold: int = setting(
        60, "seconds an offered address waits for its REQUEST", low=5, high=3600
    )
    decline_hold: int = setting(
        600, "seconds a declined (in use) address is kept out of the pool", low=10, high=86400
    )
    require_chaddr_match: bool = setting(
        False, "hardening: a direct request's chaddr must be its Ethernet source"
    )
    max_clients_per_source: int = setting(
        0,
        "hardening: client MACs per Ethernet source or relay port (0: no cap)",
        low=0,
        high=100000,
    )
    mode: DhcpMode = setting(
        DhcpMode.NETBOOT,
        "netboot (answer DHCP) | kea (Kea answers, netboot reads its leases: `netboot export kea`)",
    )
    kea_control_sockets: tuple[str, ...] = setting(
        ("/run/kea/kea4-ctrl-socket",),
        "dhcp.mode = kea: Kea control sockets to read leases from (absolute paths, at most 8)",
        custom=True,
    )
    kea_poll_interval: float = setting(
        2.0, "dhcp.mode = kea: seconds between lease reads", low=0.1, high=300
    )
    kea_max_leases: int = setting(
        100000,
        "dhcp.mode = kea: leases read per poll, all sockets together",
        low=100,
        high=10_000_000,
    )


@dataclass(frozen=True)
class PnpRule:
    url: str
    vendor: str | None = None
    model: str | None = None
    mac_prefix: bytes | None = None


@dataclass(frozen=True)
class PnpConfig:
    enabled: bool = setting(True, "answer SIP PnP SUBSCRIBEs")
    policy: PnpPolicy = setting(
        PnpPolicy.ALL, "all | known (only inventory MACs) | discover (record, never answer)"
    )
    allowed_sources: tuple[IPv4Network, ...] | None = setting(
        None, "networks answered (default: the served interfaces' subnets)"
    )
    rules: tuple[PnpRule, ...] = setting((), custom=True)
    port: int = setting(5060, "the SIP port SUBSCRIBEs come to", low=1, high=65535)
    rate_limit: float = setting(2.0, "SUBSCRIBEs per second per source", low=0.01)
    max_tracked: int = setting(
        4096,
        "entries per table (answers, NOTIFYs, rate buckets); the oldest goes",
        low=16,
        high=1_000_000,
    )


@dataclass(frozen=True)
class TftpConfig:
    enabled: bool = setting(True, "serve TFTP")
    port: int = setting(69, "UDP port", low=1, high=65535)
    timeout: float = setting(1.0, "seconds before a block is sent again", low=0.05)
    retries: int = setting(5, "retransmissions to a client that has answered", low=1, high=20)
    max_client_timeout: int = setting(
        5, "a client's RFC 2349 timeout option above this is ignored", low=1, high=255
    )
    max_sessions: int = setting(1024, "transfers at once", low=1, high=30000)
    max_sessions_per_source: int = setting(
        8, "transfers at once per client address", low=1, high=30000
    )
    max_queued: int = setting(
        4096,
        "requests over max_sessions that wait for a free slot (when full, one is dropped unanswered)",
        low=0,
        high=100000,
    )


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool = setting(True, "serve HTTP (files, status page, Action URL, /metrics)")
    port: int = setting(80, "TCP port", low=1, high=65535)
    username: str = setting("", "set both to require auth (Digest or Basic) for every file")
    password: str = setting("", "with username")
    bind_mac_files: bool = setting(
        True, "a per-MAC file only goes to the IP holding that MAC's lease"
    )
    https_port: int = setting(443, "HTTPS port (0: no HTTPS)", low=0, high=65535)
    tls_cert: Path | None = setting(None, "with tls_key; unset: self-signed, under state_dir")
    tls_key: Path | None = setting(None, "with tls_cert")
    idle_timeout: float = setting(
        15.0,
        "seconds for a whole request header after connect or the previous response",
        low=1.0,
    )
    body_timeout: float = setting(10.0, "seconds to read a request body (408 after)", low=1.0)
    max_connections: int = setting(
        1024,
        "at once; at the cap new ones wait in the listen backlog (a keep-alive connection"
        " idle 1 s makes room)",
        low=1,
        high=30000,
    )
    max_connections_per_address: int = setting(
        32, "at once from one client address", low=1, high=30000
    )
    max_queued: int = setting(
        4096,
        "connections over max_connections waiting to be accepted (the listen backlog,"
        " capped by net.core.somaxconn; past it a client's SYN is dropped and resent)",
        low=16,
        high=65535,
    )
    action_from_lease_only: bool = setting(
        False, "Action URL events only from the IP holding that MAC's lease"
    )


@dataclass(frozen=True)
class FtpConfig:
    enabled: bool = setting(False, "serve FTP (read-only)")
    port: int = setting(21, "TCP port", low=1, high=65535)
    username: str = setting("", "one user (empty: anonymous)")
    password: str = setting("", "its password")
    passive_ports: tuple[int, int] = setting(
        (30000, 30100), "[first, last] passive data ports (above 1023)", custom=True
    )


@dataclass(frozen=True)
class LldpConfig:
    enabled: bool = setting(True, "advertise the voice VLAN with LLDP-MED (and CDP)")
    voice_vlan: int | None = setting(None, "the voice VLAN ID advertised", low=1, high=4094)
    priority: int = setting(5, "802.1p priority of voice", low=0, high=7)
    dscp: int = setting(46, "DSCP of voice", low=0, high=63)
    signaling_dscp: int = setting(26, "DSCP of signaling", low=0, high=63)
    interval: int = setting(30, "seconds between LLDPDUs (TTL 4x)", low=5, high=3600)
    cdp: bool = setting(True, "CDP too")
    max_neighbors: int = setting(
        1024,
        "LLDP/CDP neighbours remembered; the one heard least recently goes",
        low=16,
        high=100_000,
    )


@dataclass(frozen=True)
class StunConfig:
    enabled: bool = setting(False, "answer STUN (belongs on the far side of the NAT)")
    addresses: tuple[IPv4Address, ...] = setting(
        (), "one address (binding only) or two (primary and alternate)", custom=True
    )
    ports: tuple[int, ...] = setting((3478, 3479), "one or two UDP ports", custom=True)
    rate_limit: float = setting(200.0, "answers per second per source", low=1.0)


@dataclass(frozen=True)
class PhonesConfig:
    inventory: Path | None = setting(
        None, "CSV: mac, model, extension, password, display_name[, input_id[, firmware]]"
    )
    sip_server: str = setting("", "the SIP server written into the phones' configs")
    sip_port: int = setting(5060, "its port", low=1, high=65535)
    admin_user: str = setting(
        "admin", "phone web login: written into configs, used by `netboot phone`"
    )
    admin_password: str = setting("admin", "its password")
    stun: bool = setting(False, "phones use this appliance's [stun] server (or stun_server)")
    stun_server: str = setting("", "host:port of another STUN server")
    rport: bool = setting(True, "phones ask for rport (RFC 3581)")
    templates: Path | None = setting(
        None, "a directory of <vendor>-common.cfg / <vendor>-mac.cfg overrides"
    )
    ntp_server: str = setting("", "NTP server written into the phones' configs")
    time_zone: str = setting("UTC", "IANA time zone of the phones")


@dataclass(frozen=True)
class Config:
    appliance: ApplianceConfig
    provisioning: ProvisioningConfig = ProvisioningConfig()
    dhcp: DhcpConfig = DhcpConfig()
    pnp: PnpConfig = PnpConfig()
    tftp: TftpConfig = TftpConfig()
    http: HttpConfig = HttpConfig()
    ftp: FtpConfig = FtpConfig()
    lldp: LldpConfig = LldpConfig()
    stun: StunConfig = StunConfig()
    phones: PhonesConfig = PhonesConfig()
    source: Path | None = None
    registry: RegistryConfig = RegistryConfig()

    @property
    def interfaces(self) -> tuple[str, ...]:
        """Every interface the appliance serves, primary first."""
        seen = [self.appliance.interface]
        for scope in self.dhcp.scopes:
            if scope.interface not in seen:
                seen.append(scope.interface)
        return tuple(seen)

    def scope_for(self, interface: str) -> DhcpScope | None:
        for scope in self.dhcp.scopes:
            if scope.interface == interface:
                return scope
        return None

    def server_address(self, interface: str | None = None) -> IPv4Address | None:
        """This host's address on `interface` as configured (None: ask the OS)."""
        name = interface or self.appliance.interface
        scope = self.scope_for(name)
        if scope is not None and scope.address is not None:
            return scope.address
        if name == self.appliance.interface:
            return self.appliance.address
        return None


SECTIONS.update(
    appliance=ApplianceConfig,
    registry=RegistryConfig,
    provisioning=ProvisioningConfig,
    dhcp=DhcpConfig,
    pnp=PnpConfig,
    tftp=TftpConfig,
    http=HttpConfig,
    ftp=FtpConfig,
    lldp=LldpConfig,
    stun=StunConfig,
    phones=PhonesConfig,
)

# ---------------------------------------------------------------- reading


class _Table:
    """One TOML table being read: typed getters that record problems under the
    key's dotted path and fall back to the default, and `done()` that reports
    keys nobody asked for."""

    def __init__(self, raw: object, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            problems.append(Problem(path, "must be a table", root=True))
            raw = {}
        self.raw: dict[str, Any] = raw
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(
        self,
        name: str,
        message: str,
        root: bool = False,
        absent: bool = False,
        also: tuple[str, ...] = (),
    ) -> None:
        """`absent`: the problem is that `name` (or one of `also`) is missing."""
        also_keys = tuple(self.key(a) for a in also)
        self.problems.append(Problem(self.key(name), message, root, absent, also_keys))

    def has(self, name: str) -> bool:
        return name in self.raw

    def _get(self, name: str, kinds: tuple[type, ...], what: str) -> Any:
        self.seen.add(name)
        if name not in self.raw:
            return None
        value = self.raw[name]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            self.problem(name, f"must be {what}, got {_shown(value)}", root=True)
            return None
        return value

    def required(self, name: str, getter: Callable[..., T | None], *args: Any) -> T | None:
        if name not in self.raw:
            self.seen.add(name)
            self.problem(name, "is required", absent=True)
            return None
        return getter(name, *args)

    def string(self, name: str, default: str = "") -> str:
        value = self._get(name, (str,), "a string")
        if value is None:
            return default
        bad = bad_character(value)
        if bad is not None:
            # It could end a line of a phone's config file (netboot/text.py).
            self.problem(
                name,
                f"{describe_character(value[bad])} at character {bad + 1} of the value "
                "is not allowed",
            )
            return default
        return str(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name, (bool,), "true or false")
        return default if value is None else bool(value)

    def integer(
        self, name: str, default: int, low: int | None = None, high: int | None = None
    ) -> int:
        value = self._get(name, (int,), "an integer")
        if value is None:
            return default
        if (low is not None and value < low) or (high is not None and value > high):
            self.problem(name, f"must be between {low} and {high}, got {value}")
            return default
        return int(value)

    def number(self, name: str, default: float, low: float = 0.0) -> float:
        value = self._get(name, (int, float), "a number")
        if value is None:
            return default
        if value < low:
            self.problem(name, f"must be at least {low}, got {value}")
            return default
        return float(value)

    def optional_int(self, name: str, low: int, high: int) -> int | None:
        if name not in self.raw:
            self.seen.add(name)
            return None
        value = self.integer(name, -1, low, high)
        return None if value == -1 else value

    def ipv4(self, name: str) -> IPv4Address | None:
        value = self._get(name, (str,), "an IPv4 address")
        if value is None:
            return None
        try:
            return IPv4Address(value)
        except ValueError:
            self.problem(name, f"not an IPv4 address: {value!r}")
            return None

    def ipv4_list(self, name: str) -> tuple[IPv4Address, ...]:
        value = self._get(name, (list, str), "a list of IPv4 addresses")
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        out: list[IPv4Address] = []
        for item in items:
            try:
                out.append(IPv4Address(item))
            except (ValueError, TypeError):
                self.problem(name, f"not an IPv4 address: {item!r}")
        return tuple(out)

    def network(self, name: str) -> IPv4Network | None:
        value = self._get(name, (str,), "an IPv4 network like 192.168.10.0/24")
        if value is None:
            return None
        try:
            return IPv4Network(value, strict=True)
        except ValueError as exc:
            self.problem(name, f"not an IPv4 network: {value!r} ({exc})")
            return None

    def network_list(self, name: str) -> tuple[IPv4Network, ...] | None:
        value = self._get(name, (list,), "a list of IPv4 networks")
        if value is None:
            return None
        out: list[IPv4Network] = []
        for item in value:
            try:
                out.append(IPv4Network(item, strict=False))
            except (ValueError, TypeError):
                self.problem(name, f"not an IPv4 network: {item!r}")
        return tuple(out)

    def path_value(self, name: str, default: Path | None) -> Path | None:
        value = self._get(name, (str,), "a path")
        if value is None or value == "":
            return default
        return Path(value)

    def mac_prefix(self, name: str) -> bytes | None:
        value = self._get(name, (str,), "a MAC prefix like 00:30:4f")
        if value is None:
            return None
        digits = "".join(ch for ch in value if ch not in ":-. ")
        try:
            prefix = bytes.fromhex(digits)
        except ValueError:
            prefix = b""
        if not 1 <= len(prefix) <= 6 or len(digits) % 2:
            self.problem(name, f"not a MAC prefix: {value!r}")
            return None
        return prefix

    def option_codes(self, name: str, default: tuple[int, ...]) -> tuple[int, ...]:
        value = self._get(name, (list,), "a list of DHCP option codes")
        if value is None:
            return default
        out: list[int] = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or item not in URL_OPTION_CODES:
                self.problem(
                    name, f"{item!r} cannot carry the URL: use 66, 43, 150, 160 or 128..254"
                )
            else:
                out.append(item)
        return tuple(out)

    def tables(self, name: str) -> Iterator[_Table]:
        value = self._get(name, (list,), "an array of tables ([[...]])")
        if value is None:
            return
        for index, item in enumerate(value):
            yield _Table(item, f"{self.key(name)}[{index}]", self.problems)

    def done(self) -> None:
        """Report keys nobody asked for. A near miss of a known key names it, and
        what its absence caused (`is required`, a default table's problems) is
        not reported again: one mistake, one error."""
        known = sorted(self.seen)
        for name in self.raw:
            if name in self.seen:
                continue
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            if not close:
                self.problem(name, "unknown key")
                continue
            # What the misspelt key's absence caused: every problem of a table
            # that is not there (its defaults), the missing keys of one that is.
            meant = close[0]
            gone, whole = self.key(meant), meant not in self.raw
            self.problems[:] = [
                p
                for p in self.problems
                if not (
                    (p.key == gone or _under(p.key, gone) or gone in p.also) and (whole or p.absent)
                )
            ]
            self.problem(name, f"unknown key (did you mean {meant}?)")


def _setting(f: Any) -> Setting:
    found = f.metadata.get("setting")
    return found if isinstance(found, Setting) else Setting(custom=True)


def _read_key(t: _Table, name: str, kind: Any, default: Any, meta: Setting) -> Any:
    """One key by its declared type, default and range; a problem (and the
    default) when it is wrong."""
    low, high = meta.low, meta.high
    if meta.required and not t.has(name):
        t.seen.add(name)
        t.problem(name, "is required", absent=True)
        return default
    if kind is bool:
        return t.boolean(name, default)
    if kind is int:
        return t.integer(name, default, _whole(low), _whole(high))
    if kind is float:
        value = t.number(name, default, 0.0 if low is None else low)
        if high is not None and value > high:
            t.problem(name, f"must be at most {high:g}, got {value}")
            return default
        return value
    if kind is str:
        return t.string(name, default)
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        text = t.string(name, str(default))
        try:
            return kind(text)
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            t.problem(name, f"must be one of {allowed}; got {text!r}")
            return default
    if kind == Path:
        return t.path_value(name, default) or default
    if kind == Path | None:
        return t.path_value(name, default)
    if kind == IPv4Address | None:
        return t.ipv4(name)
    if kind == int | None:
        return t.optional_int(name, _whole(low) or 0, _whole(high) or 0)
    if kind == tuple[IPv4Address, ...]:
        return t.ipv4_list(name)
    if kind == tuple[IPv4Network, ...] | None:
        return t.network_list(name)
    if kind == tuple[int, ...]:
        return t.option_codes(name, default)
    raise TypeError(f"config schema: no reader for {t.key(name)}: {kind}")


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def _read_section(t: _Table, cls: type[T], **custom: Any) -> T:
    """`cls` from table `t`: every key its schema declares, in field order;
    `custom` gives the values of the keys read by hand."""
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        meta = _setting(f)
        if f.name in custom:
            values[f.name] = custom[f.name]
            continue
        if meta.custom:
            continue
        default = f.default if f.default is not MISSING else None
        values[f.name] = _read_key(t, f.name, hints[f.name], default, meta)
    return cls(**values)


def schema() -> list[Key]:
    """Every key of every section, as declared (docs and the config test)."""
    keys: list[Key] = []
    for section, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        for f in fields(cls):
            meta = _setting(f)
            if meta.custom and not meta.doc:
                continue  # a table of its own ([[dhcp.class]] ...), documented with it
            default = f.default if f.default is not MISSING else None
            keys.append(Key(f"{section}.{f.name}", hints[f.name], default, meta))
    return keys


def _toml(value: Any) -> str:
    """A default as it would be written in config.toml (`-` for none)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, StrEnum | str | Path):
        return f'"{value}"'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _type_name(kind: Any) -> str:
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return " \\| ".join(f'"{m.value}"' for m in kind)
    names = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        Path: "path",
        Path | None: "path",
        IPv4Address | None: "IPv4 address",
        int | None: "integer",
        tuple[IPv4Address, ...]: "IPv4 addresses",
        tuple[IPv4Network, ...] | None: "IPv4 networks",
        tuple[int, ...]: "integers",
        tuple[str, ...]: "strings",
        tuple[int, int]: "[first, last]",
    }
    return names.get(kind, str(kind))


def schema_markdown() -> str:
    """The README's table of every key (tests/test_config_schema.py checks it)."""
    lines = ["| key | type | default | range | what |", "| --- | --- | --- | --- | --- |"]
    for key in schema():
        meta = key.setting
        if meta.low is None and meta.high is None:
            bounds = ""
        elif meta.high is None:
            bounds = f">= {_toml(meta.low)}"
        else:
            bounds = f"{_toml(meta.low)}..{_toml(meta.high)}"
        default = "required" if meta.required else _toml(key.default)
        doc = meta.doc.replace("|", "\\|")
        lines.append(f"| `{key.name}` | {_type_name(key.type)} | {default} | {bounds} | {doc} |")
    return "\n".join(lines) + "\n"


def _shown(value: object) -> str:
    """A value in an error message: a table or long list shortened to its kind."""
    if isinstance(value, dict):
        return "a table"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dhcp_options(table: _Table, name: str) -> dict[int, OptionValue]:
    value = table._get(name, (dict,), "a table of option code = value")
    if value is None:
        return {}
    out: dict[int, OptionValue] = {}
    for key, item in value.items():
        try:
            code = int(key)
        except ValueError:
            code = -1
        if not 1 <= code <= 254 or code in (50, 51, 53, 54, 55, 57, 61, 82):
            table.problem(
                name, f"{key!r} is not an option code a class may set (1..254, not 50-57/61/82)"
            )
            continue
        if isinstance(item, list):
            out[code] = tuple(str(x) for x in item)
        elif isinstance(item, dict):
            try:
                out[code] = {int(k): str(v) for k, v in item.items()}
            except ValueError:
                table.problem(name, f"option {code}: sub-option codes must be integers")
        elif isinstance(item, str | int | bool):
            out[code] = item
        else:
            table.problem(name, f"option {code}: unsupported value {item!r}")
    return out


def _pool(table: _Table, subnet: IPv4Network | None) -> tuple[IPv4Address, IPv4Address] | None:
    text = table.required("pool", table.string)
    if not text:
        return None
    start_text, sep, end_text = text.partition("-")
    try:
        start = IPv4Address(start_text.strip())
        end = IPv4Address(end_text.strip()) if sep else start
    except ValueError:
        table.problem("pool", f"must be FIRST-LAST addresses, got {text!r}")
        return None
    if end < start:
        table.problem("pool", f"ends before it starts: {text!r}")
        return None
    if subnet is not None and (start not in subnet or end not in subnet):
        table.problem("pool", f"{text} is not inside subnet {subnet}")
        return None
    if subnet is not None and (start == subnet.network_address or end == subnet.broadcast_address):
        table.problem("pool", f"{text} includes the network or broadcast address of {subnet}")
        return None
    return start, end


def _scope(table: _Table, interface_default: str | None, lease_default: int) -> DhcpScope | None:
    """`interface_default`: appliance.interface for the [dhcp] scope (already
    reported when missing), None for a [[dhcp.scope]], which must name one."""
    interface = table.string("interface", interface_default or "")
    if not interface and interface_default is None:
        table.problem("interface", "is required for a [[dhcp.scope]]", absent=True)
    subnet = table.required("subnet", table.network)
    pool = _pool(table, subnet)
    address = table.ipv4("address")
    router = table.ipv4("router")
    dns = table.ipv4_list("dns")
    lease_time = table.integer("lease_time", lease_default, 60, 365 * 86400)
    domain = table.string("domain")
    vlan = table.optional_int("vlan", 1, 4094)
    if subnet is not None:
        for key, addr in (("address", address), ("router", router)):
            if addr is not None and addr not in subnet:
                table.problem(key, f"{addr} is not inside subnet {subnet}")
    if subnet is None or pool is None or not interface:
        return None
    if address is not None and pool[0] <= address <= pool[1]:
        table.problem("address", f"{address} is inside the pool {pool[0]}-{pool[1]}")
    return DhcpScope(
        interface=interface,
        subnet=subnet,
        pool_start=pool[0],
        pool_end=pool[1],
        address=address,
        router=router,
        dns=dns,
        lease_time=lease_time,
        domain=domain,
        vlan=vlan,
    )


_SCOPE_KEYS = ("subnet", "pool", "router", "dns", "domain", "address", "interface", "vlan")


def _read_dhcp(t: _Table, appliance: ApplianceConfig | None) -> DhcpConfig:
    enabled = t.boolean("enabled", DhcpConfig.enabled)
    lease_time = t.integer("lease_time", DhcpScope.lease_time, 60, 365 * 86400)
    scopes: list[DhcpScope] = []
    scopes_given = any(t.has(k) for k in ("subnet", "pool", "scope"))
    scope_failed = False
    if any(t.has(k) for k in ("subnet", "pool")):
        default_if = appliance.interface if appliance else None
        scope = _scope(t, default_if, lease_time)
        scope_failed = scope is None
        if scope is not None:
            if (
                scope.address is None
                and appliance is not None
                and scope.interface == appliance.interface
            ):
                scope = DhcpScope(**{**scope.__dict__, "address": appliance.address})
            scopes.append(scope)
    else:
        for key in _SCOPE_KEYS:
            t.seen.add(key)
            if t.has(key):
                t.problem(key, "belongs with subnet and pool (or inside a [[dhcp.scope]])")
    for sub in t.tables("scope"):
        scope = _scope(sub, None, lease_time)
        sub.done()
        if scope is not None:
            scopes.append(scope)
        else:
            scope_failed = True
    seen_if: set[str] = set()
    for index, scope in enumerate(scopes):
        if scope.interface in seen_if:
            t.problem("scope", f"interface {scope.interface} has more than one scope (#{index})")
        seen_if.add(scope.interface)
    for i, a in enumerate(scopes):
        for b in scopes[i + 1 :]:
            if a.subnet.overlaps(b.subnet):
                t.problem(
                    "scope",
                    f"subnets {a.subnet} ({a.interface}) and {b.subnet} ({b.interface}) overlap",
                )
    if enabled and not scopes_given:
        t.problem(
            "subnet",
            "is required when dhcp is enabled (set dhcp.subnet and dhcp.pool, "
            "or add a [[dhcp.scope]], or set dhcp.enabled = false)",
            absent=True,
        )

    classes: list[DhcpClass] = []
    for sub in t.tables("class"):
        name = sub.string("name", f"class{len(classes)}")
        vendor = sub.string("vendor") or None
        prefix = sub.mac_prefix("mac_prefix")
        url = sub.string("url") or None
        url_options = sub.option_codes("url_options", ()) if sub.has("url_options") else None
        options = _dhcp_options(sub, "options")
        subopts_raw = _dhcp_options(sub, "vendor_suboptions")
        subopts = {code: str(v) for code, v in subopts_raw.items()}
        if vendor is None and prefix is None:
            sub.problem(
                "vendor",
                "a class needs vendor or mac_prefix to match on",
                absent=True,
                also=("mac_prefix",),
            )
        sub.done()
        classes.append(DhcpClass(name, vendor, prefix, url, url_options, options, subopts))

    hosts: list[DhcpHost] = []
    seen_mac: dict[str, int] = {}
    seen_ip: dict[IPv4Address, int] = {}
    for index, sub in enumerate(t.tables("host")):
        mac_text = sub.required("mac", sub.string)
        ip = sub.required("ip", sub.ipv4)
        hostname = sub.string("hostname")
        sub.done()
        try:
            mac = normalize_mac(mac_text or "")
        except ValueError:
            if mac_text:
                sub.problem("mac", f"not a MAC address: {mac_text!r}")
            continue
        if ip is None:
            continue
        if mac in seen_mac:
            sub.problem("mac", f"{mac} is reserved twice (also dhcp.host[{seen_mac[mac]}])")
            continue
        if ip in seen_ip:
            sub.problem("ip", f"{ip} is reserved twice (also dhcp.host[{seen_ip[ip]}])")
            continue
        if scopes and not scope_failed and not any(ip in s.subnet for s in scopes):
            sub.problem("ip", f"{ip} is in no served subnet")
            continue
        seen_mac[mac] = index
        seen_ip[ip] = index
        hosts.append(DhcpHost(mac, ip, hostname))

    config = _read_section(
        t,
        DhcpConfig,
        enabled=enabled,
        scopes=tuple(scopes),
        classes=tuple(classes),
        hosts=tuple(hosts),
        kea_control_sockets=_kea_sockets(t),
    )
    t.done()
    return config


def _kea_sockets(t: _Table) -> tuple[str, ...]:
    default = DhcpConfig.kea_control_sockets
    value = t._get("kea_control_sockets", (list,), "a list of socket paths")
    if value is None:
        return default
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.startswith("/") or "\0" in item:
            t.problem("kea_control_sockets", f"not an absolute socket path: {_shown(item)}")
        else:
            out.append(item)
    if not value:
        t.problem("kea_control_sockets", "needs at least one socket path")
    if len(out) > 8:
        t.problem("kea_control_sockets", "at most 8 sockets")
        out = out[:8]
    return tuple(out) or default


def _read_pnp(t: _Table) -> PnpConfig:
    rules: list[PnpRule] = []
    for sub in t.tables("rule"):
        url = sub.required("url", sub.string)
        rule = PnpRule(
            url=url or "",
            vendor=sub.string("vendor") or None,
            model=sub.string("model") or None,
            mac_prefix=sub.mac_prefix("mac_prefix"),
        )
        sub.done()
        if url:
            rules.append(rule)
    config = _read_section(t, PnpConfig, rules=tuple(rules))
    t.done()
    return config


def _read_lldp(t: _Table) -> LldpConfig:
    config = _read_section(t, LldpConfig)
    t.done()
    return config


def _read_stun(t: _Table) -> StunConfig:
    enabled = t.boolean("enabled", StunConfig.enabled)
    addresses = t.ipv4_list("addresses")
    ports_raw = t._get("ports", (list,), "a list of one or two UDP ports")
    ports: tuple[int, ...] = StunConfig.ports
    if ports_raw is not None:
        if not 1 <= len(ports_raw) <= 2 or not all(
            isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports_raw
        ):
            t.problem("ports", f"must be one or two UDP ports, got {ports_raw!r}")
        elif len(set(ports_raw)) != len(ports_raw):
            t.problem("ports", "the two ports must differ")
        else:
            ports = tuple(ports_raw)
    if len(addresses) > 2:
        t.problem("addresses", "give one address (binding only) or two (primary and alternate)")
    elif len(addresses) == 2 and addresses[0] == addresses[1]:
        t.problem("addresses", "the two addresses must differ")
    if enabled and not addresses:
        t.problem("addresses", "is required when stun is enabled")
    config = _read_section(t, StunConfig, enabled=enabled, addresses=addresses, ports=ports)
    t.done()
    return config


def _read_phones(t: _Table) -> PhonesConfig:
    config = _read_section(t, PhonesConfig)
    t.done()
    return config


def parse_config(raw: dict[str, Any], source: Path | None = None) -> Config:
    """Build a Config from parsed TOML, or raise ConfigError naming every problem."""
    problems: list[Problem] = []
    top = _Table(raw, "", problems)

    a = _Table(top._get("appliance", (dict,), "a table"), "appliance", problems)
    appliance = _read_section(a, ApplianceConfig)
    a.done()

    r = _Table(top._get("registry", (dict,), "a table"), "registry", problems)
    registry = _read_section(r, RegistryConfig)
    r.done()

    p = _Table(top._get("provisioning", (dict,), "a table"), "provisioning", problems)
    provisioning = _read_section(p, ProvisioningConfig)
    p.done()
    if provisioning.url and "://" not in provisioning.url:
        problems.append(
            Problem(
                "provisioning.url",
                f"must be a URL like http://host/$mac.cfg, got {provisioning.url!r}",
            )
        )

    dhcp = _read_dhcp(_Table(top._get("dhcp", (dict,), "a table"), "dhcp", problems), appliance)
    pnp = _read_pnp(_Table(top._get("pnp", (dict,), "a table"), "pnp", problems))

    t = _Table(top._get("tftp", (dict,), "a table"), "tftp", problems)
    tftp = _read_section(t, TftpConfig)
    t.done()

    h = _Table(top._get("http", (dict,), "a table"), "http", problems)
    http = _read_section(h, HttpConfig)
    if bool(http.username) != bool(http.password):
        h.problem(
            "password" if http.username else "username",
            "set both username and password, or neither",
            absent=True,
        )
    if (http.tls_cert is None) != (http.tls_key is None):
        h.problem(
            "tls_key" if http.tls_cert else "tls_cert",
            "set both tls_cert and tls_key, or neither (one is generated)",
            absent=True,
        )
    h.done()

    f = _Table(top._get("ftp", (dict,), "a table"), "ftp", problems)
    passive = f._get("passive_ports", (list,), "a list [first, last]")
    passive_ports = FtpConfig.passive_ports
    if passive is not None:
        if (
            len(passive) == 2
            and all(isinstance(x, int) and 1024 <= x <= 65535 for x in passive)
            and passive[0] <= passive[1]
        ):
            passive_ports = (passive[0], passive[1])
        else:
            f.problem("passive_ports", f"must be [first, last] ports above 1023, got {passive!r}")
    ftp = _read_section(f, FtpConfig, passive_ports=passive_ports)
    f.done()

    lldp = _read_lldp(_Table(top._get("lldp", (dict,), "a table"), "lldp", problems))
    stun = _read_stun(_Table(top._get("stun", (dict,), "a table"), "stun", problems))
    phones = _read_phones(_Table(top._get("phones", (dict,), "a table"), "phones", problems))
    top.done()

    if http.enabled and http.https_port and http.https_port == http.port:
        problems.append(Problem("http.https_port", "must differ from http.port"))

    if problems:
        raise ConfigError(_without_cascades(problems))
    return Config(
        appliance, provisioning, dhcp, pnp, tftp, http, ftp, lldp, stun, phones, source, registry
    )


def read_config_text(path: Path) -> str:
    """The config file's text; ConfigError (file:line:column for a byte that
    is not UTF-8) when it cannot be had."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem("", f"{path}: cannot read: {exc.strerror}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[start : exc.start].decode("utf-8", "replace")) + 1
        byte = data[exc.start]
        problem = f"{path}:{line}:{column}: not UTF-8 (byte 0x{byte:02X}): save it as UTF-8"
        raise ConfigError([Problem("", problem)]) from None


def load_config(path: Path | str) -> Config:
    """Read and validate a config file; ConfigError names each problem."""
    path = Path(path)
    text = read_config_text(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_config(raw, path)


def site_warnings(config: Config) -> list[str]:
    """Things that are legal but probably wrong (`netboot check` prints them)."""
    warnings: list[str] = []
    if config.lldp.enabled and config.lldp.voice_vlan is not None and config.dhcp.enabled:
        served = {s.vlan for s in config.dhcp.scopes} | {
            _vlan_of(s.interface) for s in config.dhcp.scopes
        }
        if config.lldp.voice_vlan not in served:
            warnings.append(
                f"lldp.voice_vlan: VLAN {config.lldp.voice_vlan} is advertised but no DHCP scope serves it "
                f"(add a [[dhcp.scope]] on {config.appliance.interface.split('.')[0]}.{config.lldp.voice_vlan})"
            )
    if not config.provisioning.url and (config.dhcp.enabled or config.pnp.enabled):
        warnings.append("provisioning.url: empty, so phones are told no provisioning URL")
    reserve = config.appliance.state_reserve_kib
    if config.dhcp.enabled and 0 < reserve < 4096:
        warnings.append(
            f"appliance.state_reserve_kib: {reserve} KiB may not be enough to write leases "
            "once state_dir is full (the WAL alone can need 4 MiB): 4096 or more is safer"
        )
    elif config.dhcp.enabled and reserve == 0:
        warnings.append(
            "appliance.state_reserve_kib: 0, so once state_dir is full DHCP sends no ACK "
            "until there is room again"
        )
    return warnings


def _vlan_of(interface: str) -> int | None:
    _, dot, tail = interface.rpartition(".")
    return int(tail) if dot and tail.isdigit() else None


def ip_in_any(ip: IPv4Address, networks: tuple[IPv4Network, ...]) -> bool:
    return any(ip in n for n in networks)


__all__ = [
    "ApplianceConfig",
    "Config",
    "ConfigError",
    "DhcpClass",
    "DhcpConfig",
    "DhcpHost",
    "DhcpScope",
    "FtpConfig",
    "HttpConfig",
    "LldpConfig",
    "PhonesConfig",
    "PnpConfig",
    "PnpRule",
    "Problem",
    "ProvisioningConfig",
    "StunConfig",
    "TftpConfig",
    "load_config",
    "parse_config",
    "site_warnings",
]
