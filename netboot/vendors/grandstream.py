"""Grandstream phones and adapters (GXP, GRP, GXV, HT).

Sources:
- [WAZO-GS] wazo-platform/wazo-provd-plugins plugins/wazo_grandstream/common/common.py
  (commit 2321a3f390c23b47e2b4e62348418c15bc8cc09b): HTTP User-Agent
  `Grandstream Model HW GXP1628 SW 1.0.4.138 DevId c074ad2bd859`, per-MAC
  file `cfg<mac>.xml` (lower-case), OUIs 00:0b:82 and c0:74:ad in the samples.
- [GFIBER-TAX] DentonGentry/gfiber-platform cmds/test-dhcpvendortax.sh:
  option 60 `Grandstream GXP1405 dslforum.org`, `Grandstream HT702 dslforum.org`,
  `HT500 dslforum.org`, `DP7XX dslforum.org`.
- [GS-HT801] a public dhcpd.conf for an HT801: option 60 `HT8XX dslforum.org`,
  option 66 `40.40.40.40/ht801` (a server path, the phone adds its file names).
- [FIELD] FIELD-NOTES "SIP Plug-and-Play": user part `MAC%3A...`, port 5080,
  the PnP URL must end in `/` (a directory).
- [GS-TPL] Grandstream's config template comments as carried in a public
  HT80x V2 template (tests/data/SOURCES.md): `Config Provision Order. Default
  is cfg$mac.xml;cfg$mac;cfg$product.xml;cfg.xml` (P8501) and `Download and
  Process All Available Config Files ... Default is 0` (P8467): the phone
  asks for cfg<mac>.xml first and stops at the first file it finds, so
  netboot puts the site settings and the line in cfg<mac>.xml.
- [GS-API] Grandstream's HTTP API `GET /cgi-bin/api-sys_operation?passcode=
  <admin password>&request=REBOOT`, answered with JSON `{"response":
  "success"}` (two public GXP provisioning scripts, index ids 68892076833,
  54038693905); `request=PROV` (provision now) from public clients that log
  in first (`/cgi-bin/dologin`, then `request=PROV&sid=...`; index ids
  18689679888, 57469390680): netboot sends PROV with the passcode form, an
  inference from the two (weak).
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Any

from netboot.vendors.profile import DIRECTORY, Identity, VendorProfile

GRANDSTREAM = VendorProfile(
    name="grandstream",
    label="Grandstream",
    ouis=("00:0b:82", "c0:74:ad", "ec:74:d7"),  # [WAZO-GS] samples; ec:74:d7 IEEE MA-L
    vendor_classes=(r"^Grandstream\b", r"^(?:HT\w+|DP7XX|GXP\w+|GRP\w+) dslforum\.org"),
    pnp_vendors=("grandstream",),
    dhcp_options=(66, 43),  # issue 17: 66 a directory, 43 sub-options
    user_agents=(  # [WAZO-GS] _UA_REGEX_LIST
        r"^Grandstream Model HW (?P<model>\w+)(?:\s+V[^ ]+)?\s+SW (?P<fw>[^ ]+) DevId (?P<mac>[0-9a-f]{12})",
        r"^Grandstream (?P<model>GXP2000) .*:(?P<fw>[^ ]+)\) DevId (?P<mac>[0-9a-f]{12})",
    ),
    url_form=DIRECTORY,  # [GS-HT801] a server path; the firmware asks for cfg<mac>.xml
    pnp_form=DIRECTORY,  # [FIELD] must end in /
    common_files=(r"^cfg\.xml$",),  # issue 17 table: cfg.xml
    mac_files=("cfg{mac}.xml", "cfg{mac}"),  # [WAZO-GS]; cfg<mac> the binary form
    sources=("wazo_grandstream common.py", "gfiber dhcpvendortax test data"),
    identity=Identity(
        model="GXP2170",
        firmware="1.0.11.3",
        manufacturer="Grandstream",
        vendor_class=b"Grandstream GXP2170 dslforum.org",  # [GFIBER-TAX] form
        # No public capture of a GXP's option 55: netboot's assumption, asking
        # for the options it reads (66, 43) and the usual network ones.
        prl=bytes((1, 3, 6, 12, 15, 28, 42, 43, 66, 120, 160)),
        url_options=(66,),  # [GS-HT801] a server path
        pnp_user_agent="Grandstream GXP2170 1.0.11.3",
        pnp_user="MAC%3A{mac}",  # [FIELD]
        pnp_port=5080,  # [FIELD]
        http_user_agent="Grandstream Model HW {model} SW {firmware} DevId {mac}",  # [WAZO-GS]
        fetches_common=False,  # [GS-TPL] cfg<mac>.xml is found first; P8467 = 0
        source="Wazo UA sample, gfiber option 60, FIELD-NOTES PnP, GS template P8501/P8467",
    ),
    remote="grandstream",  # [GS-API]
)

PROFILES = (GRANDSTREAM,)


def posix_tz(zone: str, offset_minutes: int, dst: Any) -> str:
    """Grandstream P64: a POSIX TZ string, as Wazo's plugin writes it for
    Europe/Paris: `CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00`. `dst` is
    render.DstRule or None (month, week 5 = last, weekday 0 = Sunday, hour)."""
    tz = zoneinfo.ZoneInfo(zone)
    year = datetime.now().year

    def name(month: int) -> str:
        text = datetime(year, month, 1, 12, tzinfo=tz).tzname() or "UTC"
        return text if text.isalpha() else f"<{text}>"

    def hours(minutes: int) -> str:
        sign = "-" if minutes > 0 else ""  # POSIX counts west of UTC as positive
        h, m = divmod(abs(minutes), 60)
        return f"{sign}{h}" + (f":{m:02d}" if m else "")

    std_month, dst_month = (1, 7) if dst is None or dst.start.month < dst.end.month else (7, 1)
    text = f"{name(std_month)}{hours(offset_minutes)}"
    if dst is None:
        return text
    text += f"{name(dst_month)}{hours(offset_minutes + dst.offset_minutes)}"
    for point in (dst.start, dst.end):
        text += f",M{point.month}.{point.week}.{point.weekday}/{point.hour:02d}:00:00"
    return text


TEMPLATE_HELPERS = {"posix_tz": posix_tz}
