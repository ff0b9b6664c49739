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
"""

from __future__ import annotations

from netboot.vendors.profile import DIRECTORY, VendorProfile

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
)

PROFILES = (GRANDSTREAM,)
