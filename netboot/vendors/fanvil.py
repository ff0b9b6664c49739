"""PLANET (Fanvil-built) and Fanvil phones.

Sources:
- [PLANET] PLANET VIP-1120PT/VIP-2140PT admin guide, chapter 2 (the seed's
  reference, /work/shared/reference/000_f0f2a8d94d293cf6.txt): per-MAC file
  `00304f113af8.cfg`, common file `f0VIP-2140PThw1.100.cfg`, `$mac`/`$input`
  macros in the URL from PnP, option 66, option 43 or a custom option
  128-254 (`http://192.168.1.118/$mac.cfg`), the PnP SUBSCRIBE (user part
  `MAC=00304fa99948`, no From tag, `User-Agent: PLANET VIP-2140PT`,
  `vendor="PLANET"`), the option-43-mode DHCP DISCOVER with
  `Parameter Request List 011c0302042b06` and no option 60 shown.
- [WAZO-FANVIL] wazo-platform/wazo-provd-plugins plugins/wazo_fanvil/common/common.py
  (commit 2321a3f390c23b47e2b4e62348418c15bc8cc09b): HTTP User-Agent
  `Fanvil X4 2.10.2.6887 0c383e07e16c` (model, firmware, MAC), per-MAC path
  `<12 hex>.cfg` (not 000000000000), OUI 0c:38:3e in every sample.
"""

from __future__ import annotations

from netboot.vendors.profile import URL, Identity, VendorProfile

_UA = r"^{vendor}\s+(?P<model>\S+(?:\s+Pro)?)\s+(?P<fw>\d[\w.\-]*)(?:\s+(?P<mac>[0-9a-f]{{12}}))?"
_COMMON = r"^f0(?P<model>.+?)hw\d+(?:\.\d+)*\.cfg$"  # [PLANET] f0VIP-2140PThw1.100.cfg

PLANET = VendorProfile(
    name="planet",
    label="PLANET",
    ouis=("00:30:4f",),  # [PLANET] 00:30:4f:11:3a:f8, 00304fa99948
    vendor_classes=(r"^PLANET\b",),  # a class string, should a firmware send one
    pnp_vendors=("planet",),  # [PLANET] Event ... vendor="PLANET"
    dhcp_options=(66, 43, 128),  # [PLANET] 2.2.2: 66, 43 or a custom 128-254, as set
    user_agents=(_UA.format(vendor="PLANET"),),  # Fanvil-built: Fanvil's form [WAZO-FANVIL]
    # [PLANET] 2.2.2: 66, 43 and 128-254 all carry the file URL; the phone fills in $mac.
    url_form=URL,
    pnp_form=URL,  # [PLANET] 2.2.1: NOTIFY body http://192.168.1.118/$mac.cfg
    mac_macro="$mac",
    common_files=(_COMMON,),
    mac_files=("{mac}.cfg",),  # [PLANET] 2.1: 00304f113af8.cfg
    remote="fanvil",  # [PLANET] chapter 5: /cgi-bin/ConfigManApp.com?key=
    identity=Identity(
        model="VIP-2140PT",
        firmware="2.0.3.2991",  # [PLANET] PnP Event version
        manufacturer="PLANET",
        vendor_class=b"",  # [PLANET] 2.2.2: the DISCOVER shown carries no option 60
        prl=bytes.fromhex("011c0302042b06"),  # [PLANET] 2.2.2, option 43 mode
        url_options=(43,),  # [PLANET] 2.2.2: the one option selected (43 in the example)
        pnp_user_agent="PLANET VIP-2140PT",  # [PLANET] 2.2.1
        pnp_user="MAC={mac}",
        pnp_port=5060,
        pnp_from_tag=False,  # [PLANET] 2.2.1: From has no tag
        source="PLANET admin guide 2.2.1 (SUBSCRIBE) and 2.2.2 (DISCOVER, option 43 mode)",
    ),
    sources=("PLANET admin guide ch. 2", "wazo_fanvil common.py"),
)

FANVIL = VendorProfile(
    name="fanvil",
    label="Fanvil",
    ouis=("0c:38:3e",),  # [WAZO-FANVIL] every User-Agent sample
    pnp_vendors=("fanvil",),
    dhcp_options=(66, 43, 128),  # same firmware family as PLANET
    user_agents=(_UA.format(vendor="Fanvil"),),  # [WAZO-FANVIL] _UA_REGEX
    url_form=URL,  # same firmware family as PLANET: $mac in the file URL
    pnp_form=URL,
    mac_macro="$mac",
    # [WAZO-FANVIL] serie_x entry.py: f0X3shw1.100.cfg, F0V00X5S0000.cfg
    common_files=(_COMMON, r"^F0V00[0-9A-Z]+\.cfg$"),
    mac_files=("{mac}.cfg",),  # [WAZO-FANVIL] _PATH_REGEX
    remote="fanvil",
    sources=("wazo_fanvil common.py",),
)

PROFILES = (PLANET, FANVIL)
