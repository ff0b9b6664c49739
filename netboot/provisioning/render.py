"""Config files rendered from the inventory and the site settings.

A phone asks the file servers for its model's common file and then its own
per-MAC file (PLANET guide chapter 2). For every model in `inventory.MODELS`
netboot renders both from Jinja templates: PLANET/Fanvil text `.cfg`
(`<<VOIP CONFIG FILE>>Version:...`, `<... MODULE>` sections, `--SIP Line
List--`, `<<END OF FILE>>`) and Yealink `.cfg` (`#!version:1.0.0.1`, `key =
value`). The common file carries the site: time (NTP, zone, daylight saving
rule, guide 5.3), QoS (the [lldp] voice VLAN, priority and DSCP, guide
chapter 3), STUN (chapter 6), auto-provisioning and PnP pointing back here,
Action URLs for every chapter-4 event and the Active URI allowed IP (chapter
5). The per-MAC file carries the phone's SIP line (with per-line STUN "NAT
Type" and Rport, chapter 6).

Versions: a phone applies a file only if its Version is higher than the one it
runs, so each file name has a version in the state database that goes up by
one whenever the rendered content changes and stays put otherwise (the file is
rendered with version 0, hashed, the version looked up, rendered again).

Templates named `<vendor>-common.cfg` / `<vendor>-mac.cfg` in
`phones.templates` override the built-in ones under `templates/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import sqlite3
import threading
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jinja2

from netboot.config import Config
from netboot.provisioning import tznames
from netboot.provisioning.events import EVENTS, ActionEvent, action_url
from netboot.provisioning.inventory import (
    MODELS,
    Inventory,
    InventoryCache,
    InventoryPhone,
    Model,
    model_for_common_file,
)
from netboot.registry import open_state
from netboot.statedisk import HEALTH, StateWriteError, classify
from netboot.stun.natcheck import REFRESH, SAVE_FILE, SavedCheck, saved_check

if TYPE_CHECKING:
    from netboot.supervisor import Context

log = logging.getLogger("netboot.render")

BUILTIN_TEMPLATES = Path(__file__).resolve().parent / "templates"
NAT_CHECK_FILE = SAVE_FILE  # written by `netboot nat-check --save`
PNP_ADDRESS = "224.0.1.75"
_MAC_FILE = re.compile(r"^(?P<hex>[0-9a-f]{12})\.cfg$")


class RenderError(Exception):
    """The site settings or a template cannot produce a file."""


# ---------------------------------------------------------------- time


@dataclass(frozen=True)
class DstPoint:
    """When a change happens, as the phones' week rule: month 1-12, week of the
    month 1-4 or 5 (= last), weekday 0 (Sunday) - 6, local hour before the change."""

    month: int
    week: int
    weekday: int
    hour: int


@dataclass(frozen=True)
class DstRule:
    offset_minutes: int  # added to standard time while DST runs
    start: DstPoint
    end: DstPoint


@dataclass(frozen=True)
class TimeSettings:
    zone: str
    ntp: str
    offset_minutes: int  # standard time, east of UTC positive
    dst: DstRule | None

    @property
    def offset(self) -> str:
        """ "+01:00" style."""
        sign = "-" if self.offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(self.offset_minutes), 60)
        return f"{sign}{hours:02d}:{minutes:02d}"

    @property
    def offset_hours(self) -> str:
        """ "+1", "-5", "+5.5" (Yealink's local_time.time_zone)."""
        value = self.offset_minutes / 60
        text = f"{value:+.2f}".rstrip("0").rstrip(".")
        return text

    @property
    def quarter_hours(self) -> int:
        """PLANET/Fanvil `Time Zone`: quarter hours east of UTC (tznames)."""
        return tznames.fanvil_quarter_hours(self.offset_minutes)

    @property
    def fanvil_name(self) -> str:
        return tznames.fanvil_zone_name(self.offset_minutes)

    @property
    def yealink_name(self) -> str:
        return tznames.yealink_zone_name(self.zone, self.offset_minutes)


def _point(moment_local: datetime) -> DstPoint:
    week = (moment_local.day - 1) // 7 + 1
    days_in_month = (
        (moment_local.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    ).day
    if moment_local.day + 7 > days_in_month:
        week = 5  # the last such weekday of the month
    return DstPoint(moment_local.month, week, (moment_local.weekday() + 1) % 7, moment_local.hour)


def time_settings(zone: str, ntp: str, year: int) -> TimeSettings:
    """Standard offset and the daylight saving rule of `zone` in `year`."""
    try:
        tz = zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise RenderError(f"phones.time_zone: unknown time zone {zone!r}") from exc
    start = datetime(year, 1, 1, tzinfo=UTC)
    changes: list[tuple[datetime, timedelta, timedelta]] = []  # (utc instant, before, after)
    step = timedelta(hours=1)
    prev = start.astimezone(tz).utcoffset() or timedelta()
    moment = start
    while moment.year == year:
        moment += step
        now = moment.astimezone(tz).utcoffset() or timedelta()
        if now != prev:
            changes.append((moment, prev, now))
            prev = now
    if len(changes) != 2:
        offset = prev
        return TimeSettings(zone, ntp, int(offset.total_seconds() // 60), None)
    on = next(c for c in changes if c[2] > c[1])
    off = next(c for c in changes if c[2] < c[1])
    std, dst = on[1], on[2]
    # The wall clock at each change, in the time that was running until then.
    start_local = (on[0] + on[1]).replace(tzinfo=None)
    end_local = (off[0] + off[1]).replace(tzinfo=None)
    rule = DstRule(int((dst - std).total_seconds() // 60), _point(start_local), _point(end_local))
    return TimeSettings(zone, ntp, int(std.total_seconds() // 60), rule)


# ---------------------------------------------------------------- site


@dataclass(frozen=True)
class StunSettings:
    enabled: bool
    server: str
    port: int
    refresh: int = REFRESH  # seconds (guide 6.2 default)
    wait_ms: int = 800  # SIP Wait Stun Time
    nat_type: str = ""  # from `netboot nat-check`, "" when unknown


@dataclass(frozen=True)
class QosSettings:
    vlan: int | None
    priority: int
    rtp_dscp: int
    sip_dscp: int
    lldp: bool


# PLANET/Fanvil download protocol numbers by layout. 2.x `Flash Protocol`: 4 is
# HTTP (Wazo base-new.tpl: FlashServerIP http://..., FlashProtocol 4), 5 HTTPS
# (a Flash Server IP of https://...; Voissnet/protegeme prov.php), 2 the export
# default (TFTP). 1.x `Download Protocol`: every sample writes 2 with the
# scheme in `Download Server IP` (Wazo base.tpl with http://, Elastix with a
# TFTP host); the scheme in the server field is what names the protocol.
FANVIL_PROTOCOL = {
    1: {"tftp": 2, "http": 2, "https": 2, "ftp": 2},
    2: {"ftp": 1, "tftp": 2, "http": 4, "https": 5},
}


@dataclass(frozen=True)
class ProvisionSettings:
    url: str  # what DHCP/PnP hand out, e.g. http://192.0.2.1/$mac.cfg
    scheme: str
    server: str  # url without the file name
    file: str  # the file name part ($mac.cfg)
    pnp: bool
    pnp_server: str
    pnp_port: int
    interval_minutes: int = 60

    def fanvil_protocol(self, layout: int) -> int:
        return FANVIL_PROTOCOL.get(layout, FANVIL_PROTOCOL[2]).get(self.scheme, 4)


@dataclass(frozen=True)
class Site:
    host: str  # this appliance's address, as phones reach it
    http_base: str  # http://host[:port]
    name: str
    sip_server: str
    sip_port: int
    rport: bool
    admin_user: str
    admin_password: str
    stun: StunSettings
    qos: QosSettings
    provision: ProvisionSettings
    time: TimeSettings
    actions: tuple[tuple[ActionEvent, str], ...] = field(default=())  # (event, url)

    @property
    def active_uri_ip(self) -> str:
        return self.host


def read_nat_check(state_dir: Path) -> SavedCheck | None:
    """The result `netboot nat-check --save` left in the state directory."""
    return saved_check(state_dir / NAT_CHECK_FILE)


def site_settings(config: Config, year: int, nat: SavedCheck | None = None) -> Site:
    """Everything but the phone, from config.toml (RenderError when unusable) and
    the saved `netboot nat-check` result `nat`, which decides STUN and Rport:
    a cone NAT turns STUN on with the checked server, a symmetric NAT or UDP
    firewall turns STUN off and Rport on (guide 6.2 note 1: STUN cannot traverse
    them), open internet turns STUN off."""
    prov_url = config.provisioning.url
    host = str(config.appliance.address) if config.appliance.address else ""
    if not host and prov_url:
        host = urlsplit(prov_url.replace("$", "%24")).hostname or ""
    if not host:
        raise RenderError("appliance.address (or a host in provisioning.url) is needed to render")
    port = config.http.port
    http_base = f"http://{host}" if port == 80 else f"http://{host}:{port}"
    phones = config.phones
    stun_server, stun_port = "", 3478
    if phones.stun_server:
        name, sep, port_text = phones.stun_server.rpartition(":")
        if sep and port_text.isdigit():
            stun_server, stun_port = name, int(port_text)
        else:
            stun_server = phones.stun_server
    elif phones.stun:
        stun = config.stun
        stun_server = str(stun.addresses[0]) if stun.addresses else host
        stun_port = stun.ports[0] if stun.ports else 3478
    use_stun, rport, refresh = bool(stun_server), phones.rport, REFRESH
    if nat is not None:
        use_stun = nat.stun_usable and nat.nat_type != "open-internet" and bool(nat.server)
        if use_stun:
            stun_server, stun_port, refresh = nat.server, nat.port, nat.refresh
        if not nat.stun_usable:
            rport = True  # the NAT's mapping is the only address the server can answer
    lldp = config.lldp
    qos = QosSettings(lldp.voice_vlan, lldp.priority, lldp.dscp, lldp.signaling_dscp, lldp.enabled)
    url = prov_url or f"{http_base}/$mac.cfg"
    scheme = url.split(":", 1)[0].lower() if "://" in url else "http"
    server, _, file = url.rpartition("/")
    if "://" not in server:
        server, file = url, ""
    provision = ProvisionSettings(
        url, scheme, server, file or "$mac.cfg", config.pnp.enabled, PNP_ADDRESS, config.pnp.port
    )
    ntp = phones.ntp_server or (str(config.dhcp.ntp[0]) if config.dhcp.ntp else "")
    actions = tuple((e, action_url(http_base, e)) for e in EVENTS)
    return Site(
        host=host,
        http_base=http_base,
        name=config.appliance.name,
        sip_server=phones.sip_server or host,
        sip_port=phones.sip_port,
        rport=rport,
        admin_user=phones.admin_user,
        admin_password=phones.admin_password,
        stun=StunSettings(
            use_stun, stun_server, stun_port, refresh, nat_type=nat.nat_type if nat else ""
        ),
        qos=qos,
        provision=provision,
        time=time_settings(phones.time_zone, ntp, year),
        actions=actions,
    )


# ---------------------------------------------------------------- versions


class VersionStore:
    """File name -> (content hash, version) in the state database."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS config_versions ("
        "name TEXT PRIMARY KEY, hash TEXT NOT NULL, version INTEGER NOT NULL, changed REAL)"
    )

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._conn, storage = open_state(
            state_dir,
            "versions",
            self.SCHEMA,
            read_only="config file versions are read from disk; new ones are counted in memory",
            memory="config file versions are counted in memory only",
        )
        self.storage = storage
        self._cache: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def version(self, name: str, digest: str, now: float) -> int:
        """The version of `name` for this content: unchanged, or one higher.

        When the new version cannot be written (disk full, read-only), it is
        kept in memory and the file is served anyway; HEALTH says so."""
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and cached[0] == digest:
                return cached[1]
            try:
                version = self._store(name, digest, now)
            except (sqlite3.Error, OSError, StateWriteError) as exc:
                try:
                    row = self._conn.execute(
                        "SELECT hash, version FROM config_versions WHERE name = ?", (name,)
                    ).fetchone()
                except sqlite3.Error:
                    row = None
                base = cached[1] if cached is not None else (int(row[1]) if row else 0)
                same = row is not None and row[0] == digest and cached is None
                version = base if same else base + 1
                HEALTH.failed(
                    "versions",
                    classify("versions", exc, self.state_dir),
                    f"{name} version {version} is kept in memory only",
                )
            else:
                if "versions" in HEALTH.problems and self.storage == "disk":
                    HEALTH.ok("versions")
            self._cache[name] = (digest, version)
            return version

    def _store(self, name: str, digest: str, now: float) -> int:
        if self.storage == "read-only":
            raise StateWriteError("versions", "read-only", "state_dir cannot be written")
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            row = cur.execute(
                "SELECT hash, version FROM config_versions WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                version = 1
                cur.execute(
                    "INSERT INTO config_versions VALUES (?, ?, ?, ?)",
                    (name, digest, version, now),
                )
            elif row[0] != digest:
                version = int(row[1]) + 1
                cur.execute(
                    "UPDATE config_versions SET hash = ?, version = ?, changed = ? WHERE name = ?",
                    (digest, version, now, name),
                )
            else:
                version = int(row[1])
            cur.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
            raise
        return version


# ---------------------------------------------------------------- renderer


def template_environment(override: Path | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if override is not None:
        loaders.append(jinja2.FileSystemLoader(str(override)))
    loaders.append(jinja2.FileSystemLoader(str(BUILTIN_TEMPLATES)))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


@dataclass(frozen=True)
class Rendered:
    name: str  # the file name the content is versioned under
    kind: str  # "common" | "mac"
    data: bytes
    version: int
    layout: str = ""  # the reference layout it is checked against (vendorfile)


def reference_layout(vendor: str, layout: int) -> str:
    """ "fanvil-1", "fanvil-2", "yealink": the key set a rendered file must stay in."""
    return f"{vendor}-{layout}" if vendor == "fanvil" else vendor


class ConfigRenderer:
    """File name -> rendered bytes for the file servers and `netboot render`."""

    def __init__(
        self,
        config: Config,
        *,
        now: Callable[[], float] = time.time,
        versions: VersionStore | None = None,
    ) -> None:
        self.config = config
        self.now = now
        self.inventory_cache = InventoryCache(config.phones.inventory)
        self.env = template_environment(config.phones.templates)
        self._versions = versions
        self._site: tuple[tuple[int, SavedCheck | None], Site] | None = None
        self._reported: tuple[str, ...] = ()
        # Common files rendered for the current inventory and site: every
        # phone of a model fetches the same one (two template renders and a
        # version lookup each: the largest cost of a boot storm, issue 18).
        self._common: dict[tuple[str, int], tuple[Inventory, Site, Rendered]] = {}

    @property
    def versions(self) -> VersionStore:
        if self._versions is None:
            self._versions = VersionStore(self.config.appliance.state_dir)
        return self._versions

    def close(self) -> None:
        if self._versions is not None:
            self._versions.close()

    def inventory(self) -> Inventory:
        inv = self.inventory_cache.get()
        problems = (*inv.problems, *inv.layout_problems())
        if problems != self._reported:
            self._reported = problems
            for problem in problems:  # at most MAX_REPORTED, then one line with the rest
                if problem in inv.errors:
                    log.error("inventory: %s", problem)
                else:
                    log.warning("inventory: %s", problem)
        return inv

    def site(self) -> Site:
        year = datetime.fromtimestamp(self.now(), UTC).year
        nat = read_nat_check(self.config.appliance.state_dir)
        key = (year, nat)
        if self._site is None or self._site[0] != key:
            self._site = (key, site_settings(self.config, year, nat))
        return self._site[1]

    # ------------------------------------------------------------ names

    def file_names(self, mac: str | None = None) -> list[str]:
        """Every file this inventory renders (or one phone's: common + own)."""
        inv = self.inventory()
        phones = [p for p in inv.phones if mac is None or p.mac == mac]
        names = list(dict.fromkeys(p.model.common_file for p in phones))
        names.extend(f"{p.mac_hex}.cfg" for p in phones)
        return names

    def lookup_input(self, input_id: str) -> str | None:
        phone = self.inventory().by_input(input_id)
        return phone.mac if phone is not None else None

    # ------------------------------------------------------------ render

    def __call__(self, name: str) -> bytes | None:
        """The resolver's Renderer: bytes, or None when the name is not ours."""
        try:
            rendered = self.render(name)
        except RenderError as exc:
            log.warning("render %s: %s", name, exc)
            return None
        return rendered.data if rendered is not None else None

    def render(self, name: str, preview: bool = False) -> Rendered | None:
        """Render a file by name: common file, `<mac>.cfg` or `<input id>.cfg`.
        None: no such phone/model; RenderError: the site or a template is broken.
        `preview`: version 0, the state database untouched (`netboot check`)."""
        base = name.rpartition("/")[2]
        lower = base.lower()
        model = model_for_common_file(base)
        inv = self.inventory()
        if model is not None:
            layout = inv.common_layout(model)
            if preview:
                return self._render(model.common_file, "common", model, None, layout, preview)
            key = (model.common_file, layout)
            site = self.site()
            held = self._common.get(key)
            if held is not None and held[0] is inv and held[1] is site:
                return held[2]
            rendered = self._render(model.common_file, "common", model, None, layout)
            if len(self._common) >= MAX_COMMON_CACHED:
                self._common.clear()
            self._common[key] = (inv, site, rendered)
            return rendered
        match = _MAC_FILE.match(lower)
        phone: InventoryPhone | None = None
        if match is not None:
            hexmac = match.group("hex")
            phone = inv.by_mac(":".join(hexmac[i : i + 2] for i in range(0, 12, 2)))
        elif lower.endswith(".cfg"):
            phone = inv.by_input(base[: -len(".cfg")])
        if phone is None:
            return None
        return self._render(
            f"{phone.mac_hex}.cfg", "mac", phone.model, phone, phone.layout, preview
        )

    def _render(
        self,
        name: str,
        kind: str,
        model: Model,
        phone: InventoryPhone | None,
        layout: int,
        preview: bool = False,
    ) -> Rendered:
        site = self.site()
        try:
            template = self.env.get_template(f"{model.vendor}-{kind}.cfg")
            values: dict[str, Any] = {
                "site": site,
                "model": model,
                "phone": phone,
                "layout": layout,
            }
            draft = template.render(version=0, **values)
            if preview:
                version, text = 0, draft
            else:
                digest = hashlib.sha256(draft.encode()).hexdigest()
                version = self.versions.version(name, digest, self.now())
                text = template.render(version=version, **values)
        except jinja2.TemplateError as exc:
            where = getattr(exc, "filename", None) or f"{model.vendor}-{kind}.cfg"
            lineno = getattr(exc, "lineno", None)
            raise RenderError(
                f"template {where}{f':{lineno}' if lineno else ''}: {exc.message or exc}"
            ) from None
        return Rendered(name, kind, text.encode(), version, reference_layout(model.vendor, layout))


MAX_COMMON_CACHED = 64  # common files (one per model and layout) kept rendered


# ---------------------------------------------------------------- plug points

_RENDERERS: dict[int, tuple[object, ConfigRenderer]] = {}


def renderer_for(ctx: Context) -> ConfigRenderer:
    held = _RENDERERS.get(id(ctx))
    if held is not None and held[0] is ctx:
        return held[1]
    renderer = ConfigRenderer(ctx.config)
    _RENDERERS[id(ctx)] = (ctx, renderer)
    return renderer


def forget(ctx: Context) -> None:
    """A reload: the next renderer_for(ctx) reads ctx.config afresh."""
    held = _RENDERERS.pop(id(ctx), None)
    if held is not None and held[0] is ctx:
        held[1].close()


def renderer_factory(ctx: Context) -> Callable[[str], bytes | None] | None:
    """files.RENDERER_FACTORY: name -> bytes (None without an inventory)."""
    if ctx.config.phones.inventory is None:
        return None
    return renderer_for(ctx)


def input_lookup_factory(ctx: Context) -> Callable[[str], str | None] | None:
    """files.INPUT_LOOKUP_FACTORY: $input ID -> MAC."""
    if ctx.config.phones.inventory is None:
        return None
    return renderer_for(ctx).lookup_input


def check(config: Config) -> list[str]:
    """`netboot check`: settings or templates that cannot render, and rendered
    files with a module/key no firmware export has (vendorfile)."""
    if config.phones.inventory is None:
        return []
    problems: list[str] = []
    try:
        site_settings(config, datetime.now(UTC).year, read_nat_check(config.appliance.state_dir))
    except RenderError as exc:
        return [str(exc)]
    env = template_environment(config.phones.templates)
    for vendor in sorted({m.vendor for m in MODELS.values()}):
        for kind in ("common", "mac"):
            try:
                env.get_template(f"{vendor}-{kind}.cfg")
            except jinja2.TemplateError as exc:
                problems.append(f"template {vendor}-{kind}.cfg: {exc}")
    if problems:
        return problems
    renderer = ConfigRenderer(config)
    for name in renderer.file_names():
        try:
            rendered = renderer.render(name, preview=True)
        except RenderError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if rendered is not None:
            problems.extend(f"{name}: {p}" for p in check_file(rendered)[:3])
    return problems


# ---------------------------------------------------------------- CLI


def register(subparsers: Any) -> None:
    """`netboot render -c FILE [--out DIR] [MAC]` (cli.EXTRA_COMMANDS)."""
    from netboot.cli import add_config_arg

    p = subparsers.add_parser(
        "render", help="render the config files of the inventory (all, or one phone's)"
    )
    add_config_arg(p)
    p.add_argument("--out", metavar="DIR", help="write the files into DIR instead of printing")
    p.add_argument(
        "--check",
        action="store_true",
        help="parse every rendered file with the vendor's rules and fail on any module/key "
        "absent from the reference firmware exports",
    )
    p.add_argument("mac", nargs="?", help="only this phone's common and own file")
    p.set_defaults(func=cmd_render)


def check_file(rendered: Rendered) -> list[str]:
    """The key-level check of one rendered file (vendorfile.check_rendered)."""
    from netboot.provisioning.vendorfile import check_rendered

    return check_rendered(rendered.layout, rendered.data.decode("utf-8", "replace"))


def _check_files(renderer: ConfigRenderer, names: list[str]) -> int:
    import sys

    bad = 0
    for name in names:
        try:
            rendered = renderer.render(name)
        except RenderError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            bad += 1
            continue
        assert rendered is not None
        problems = check_file(rendered)
        print(f"{name}  {rendered.layout}  {'ok' if not problems else 'FAILED'}")
        for problem in problems:
            print(f"  {problem}")
        bad += bool(problems)
    if bad:
        print(f"netboot: render --check: {bad} of {len(names)} files fail", file=sys.stderr)
    return 1 if bad else 0


def cmd_render(args: Any) -> int:
    import os
    import sys

    from netboot.cli import _load
    from netboot.wire import normalize_mac

    config = _load(args.config)
    if config.phones.inventory is None:
        print("netboot: render: phones.inventory is not set", file=sys.stderr)
        return 1
    mac: str | None = None
    if args.mac:
        try:
            mac = normalize_mac(args.mac)
        except ValueError as exc:
            print(f"netboot: render: {exc}", file=sys.stderr)
            return 2
    renderer = ConfigRenderer(config)
    try:
        inv = renderer.inventory_cache.get()
        for problem in inv.problems:
            print(f"netboot: warning: {problem}", file=sys.stderr)
        if mac is not None and inv.by_mac(mac) is None:
            print(f"netboot: render: {mac} is not in the inventory", file=sys.stderr)
            return 1
        names = renderer.file_names(mac)
        if args.check:
            return _check_files(renderer, names)
        out = Path(args.out) if args.out else None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        for name in names:
            try:
                rendered = renderer.render(name)
            except RenderError as exc:
                print(f"netboot: render: {name}: {exc}", file=sys.stderr)
                return 1
            assert rendered is not None
            if out is None:
                if len(names) > 1:
                    print(f"==> {name} (version {rendered.version}) <==")
                sys.stdout.write(rendered.data.decode())
                continue
            tmp = out / f".{name}.tmp"
            tmp.write_bytes(rendered.data)
            os.chmod(tmp, 0o640 if rendered.kind == "mac" else 0o644)
            os.replace(tmp, out / name)
            print(f"{out / name}  version {rendered.version}  {len(rendered.data)} bytes")
        return 0
    finally:
        renderer.close()
