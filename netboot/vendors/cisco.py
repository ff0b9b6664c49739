"""Cisco phones: enterprise (CP-79xx/78xx/88xx on CUCM-style TFTP) and the
SPA / 3PCC (multiplatform) family with profile rules.

Sources:
- [WAZO-CISCO-SIP] wazo-platform/wazo-provd-plugins plugins/wazo_cisco_sip/common/common.py
  (commit 2321a3f390c23b47e2b4e62348418c15bc8cc09b): option 60
  `Cisco Systems, Inc. IP Phone CP-7941G\\x00`, `... CP-8961\\x00`,
  `Cisco Systems, Inc. IP Phone 7912`, `Cisco Systems Inc. Wireless Phone 7921`;
  TFTP/HTTP names `SEP<MAC>.cnf.xml`, `CTLSEP<MAC>.tlv`, `ITLSEP<MAC>.tlv`
  (upper-case MAC), `ITLFile.tlv`.
- [WAZO-CISCO-SPA] plugins/wazo_cisco_spa/common/common.py (same commit):
  option 60 `Cisco SPA508G`, `Cisco SPA525G2`, `LINKSYS SPA-942`, `CISCO SPA122`;
  User-Agent `Cisco/SPA508G-7.4.4 (0002FDFF2103)(CBT141400UK)`; TFTP names
  `/spa$PSN.cfg`, `/init.cfg`, `ATA<MAC>.cnf.xml`; per-MAC `<mac>.xml`;
  templates set `Profile_Rule_C` to `<server>/$MA.xml`; install.md: without a
  valid option 66 the phones ask for XMLDefault instead of spa$PSN.
- [GFIBER-TAX] DentonGentry/gfiber-platform cmds/test-dhcpvendortax.sh:
  option 60 `Cisco Systems, Inc. IP Phone CP-7961G`, `Cisco SPA525G2`.
- [CISCO-SPA-PG] Cisco SPA provisioning guide: macros `$MA` (MAC, lower-case
  hex), `$MAU` (upper-case), `$PSN` (product series number); profile rule from
  option 66 (TFTP server), 150, or 159/160 (a URL); a resync URL
  `http://<phone>/admin/resync?<server>/<file>` (public copies of the guide,
  tests/data/SOURCES.md) and `/admin/reboot`, as `admin` with `Admin_Passwd`.
- [WAZO-SPA-TZ] plugins/wazo_cisco_spa/common/common.py `_format_tzinfo`:
  `Time_Zone` `GMT+01:00`, `Daylight_Saving_Time_Rule`
  `start=<month>/<day>/<weekday>/<h:m:s>;end=...;save=<h:m:s>` with day -1 for
  the last week and weekday 1 = Monday ... 7 = Sunday; common file
  `/spa$PSN.cfg` (`spa504G.cfg`) whose Profile_Rule_B/C name further files.
"""

from __future__ import annotations

from typing import Any

from netboot.vendors.profile import HOST, Identity, VendorProfile

CISCO = VendorProfile(
    name="cisco",
    label="Cisco",
    ouis=("00:1e:7a", "00:24:c4"),  # IEEE MA-L (test: wireshark manuf)
    vendor_classes=(r"^Cisco Systems,? Inc\.",),  # [WAZO-CISCO-SIP]
    pnp_vendors=("cisco",),
    dhcp_options=(150, 66),  # [WAZO-CISCO-SIP] TFTP: 150 addresses, 66 a name
    # TFTP: option 150 (addresses) and 66 (a TFTP server name) [WAZO-CISCO-SIP]
    option_forms={66: HOST, 150: HOST},
    url_form=HOST,
    pnp_form="{dir}",
    common_files=(r"^XMLDefault\.cnf\.xml$", r"^ITLFile\.tlv$"),
    mac_files=("SEP{MAC}.cnf.xml", "CTLSEP{MAC}.tlv", "ITLSEP{MAC}.tlv"),  # [WAZO-CISCO-SIP]
    sources=("wazo_cisco_sip common.py", "gfiber dhcpvendortax test data"),
)

CISCO_SPA = VendorProfile(
    name="cisco-spa",
    label="Cisco SPA / 3PCC",
    ouis=("00:02:fd", "88:43:e1"),  # [WAZO-CISCO-SPA] User-Agent samples
    vendor_classes=(r"^(?:CISCO|LINKSYS) (?:SPA-?\d|ATA19)",),  # [WAZO-CISCO-SPA]
    pnp_vendors=("linksys",),
    dhcp_options=(160, 159, 66, 150),  # [CISCO-SPA-PG]
    user_agents=(  # [WAZO-CISCO-SPA] _CISCO_UA_REGEX / _LINKSYS_UA_REGEX
        r"^(?:Cisco|Linksys)/(?P<model>[\w-]+?)-(?P<fw>[^\s-]+) (?:\((?P<mac>[0-9A-F]{12})\))?",
    ),
    # [CISCO-SPA-PG] 66: a TFTP server name; 159/160: a profile rule URL with $MA.
    option_forms={66: HOST, 150: HOST, 159: "{dir}$MA.xml", 160: "{dir}$MA.xml"},
    url_form="{dir}$MA.xml",
    pnp_form="{dir}$MA.xml",
    mac_macro="$MA",
    common_files=(r"^spa\d{3,4}\w*\.cfg$", r"^init\.cfg$", r"^spa(?:-phone|-ata)?\.xml$"),
    # [WAZO-CISCO-SPA] <mac>.xml, ATA<MAC>.cnf.xml; [CISCO-SPA-PG] spa$MA.cfg / spa$MA.xml
    mac_files=("{mac}.xml", "spa{mac}.xml", "spa{mac}.cfg", "ATA{MAC}.cnf.xml"),
    sources=("wazo_cisco_spa common.py", "Cisco SPA provisioning guide"),
    remote="cisco-spa",  # [CISCO-SPA-PG] /admin/resync, /admin/reboot
    identity=Identity(
        model="SPA504G",
        firmware="7.5.5",
        manufacturer="Cisco",
        vendor_class=b"Cisco SPA504G",  # [WAZO-CISCO-SPA] form `Cisco SPA508G`
        # No public capture of a SPA's option 55: netboot's assumption, asking
        # for the options [CISCO-SPA-PG] names.
        prl=bytes((1, 3, 6, 15, 42, 43, 66, 150, 159, 160)),
        url_options=(66,),  # a TFTP server name: it asks for /spa$PSN.cfg there
        default_file="spa504G.cfg",  # [WAZO-CISCO-SPA] /spa$PSN.cfg, PSN 504G
        pnp_user_agent="Cisco/SPA504G-7.5.5",
        http_user_agent="Cisco/{model}-{firmware} ({MAC})(CBT141400UK)",  # [WAZO-CISCO-SPA]
        source="Wazo option 60 / User-Agent samples and spa$PSN.cfg; SPA provisioning guide",
    ),
)

PROFILES = (CISCO_SPA, CISCO)


def cisco_time_zone(offset_minutes: int) -> str:
    """`GMT+01:00` (Time_Zone) [WAZO-SPA-TZ]."""
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"GMT{sign}{hours:02d}:{minutes:02d}"


def cisco_dst_rule(dst: Any) -> str:
    """Daylight_Saving_Time_Rule from render.DstRule [WAZO-SPA-TZ]:
    `start=3/-1/7/2:0:0;end=10/-1/7/3:0:0;save=1:0:0`."""

    def point(p: Any) -> str:
        day = -1 if p.week == 5 else (p.week - 1) * 7 + 1
        weekday = 7 if p.weekday == 0 else p.weekday  # Monday 1 ... Sunday 7
        return f"{p.month}/{day}/{weekday}/{p.hour}:0:0"

    hours, minutes = divmod(dst.offset_minutes, 60)
    return f"start={point(dst.start)};end={point(dst.end)};save={hours}:{minutes}:0"


TEMPLATE_HELPERS = {"cisco_time_zone": cisco_time_zone, "cisco_dst_rule": cisco_dst_rule}
