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

import hashlib
import logging
import re
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2

from netboot import vendors
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
from netboot.state.versions import VersionStore
from netboot.stun.natcheck import REFRESH, SAVE_FILE, SavedCheck, saved_check

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


# ---------------------------------------------------------------- renderer


def template_environment(override: Path | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if override is not None:
        loaders.append(jinja2.FileSystemLoader(str(override)))
    loaders.append(jinja2.FileSystemLoader(str(BUILTIN_TEMPLATES)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.globals.update(vendors.TEMPLATE_HELPERS)  # each family's own notations
    return env


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
        names.extend(p.model.own_name(p.mac_hex) for p in phones)
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
        named = vendors.per_mac_name(base)
        phone: InventoryPhone | None = None
        if named is not None:
            digits = named.digits
            phone = inv.by_mac(":".join(digits[i : i + 2] for i in range(0, 12, 2)))
            # Only the name its own family's firmware asks for (a Snom's
            # <MAC>.xml, not a Fanvil's <mac>.cfg for the same MAC).
            if phone is not None and phone.model.own_name(digits).lower() != lower:
                phone = None
        elif lower.endswith(".cfg") and _MAC_FILE.match(lower) is None:
            phone = inv.by_input(base[: -len(".cfg")])
        if phone is None:
            return None
        own = phone.model.own_name(phone.mac_hex)
        return self._render(own, "mac", phone.model, phone, phone.layout, preview)

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
                "family": vendors.by_name(model.vendor),
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


def check_file(rendered: Rendered) -> list[str]:
    """The key-level check of one rendered file (vendorfile.check_rendered)."""
    from netboot.provisioning.vendorfile import check_rendered

    return check_rendered(rendered.layout, rendered.data.decode("utf-8", "replace"))
