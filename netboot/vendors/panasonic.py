"""Panasonic SIP phones (KX-UT, KX-TGP, KX-HDV).

Sources:
- [WAZO-PANA] wazo-platform/wazo-provd-plugins plugins/wazo_panasonic/common/common.py
  (commit 2321a3f390c23b47e2b4e62348418c15bc8cc09b): User-Agent
  `Panasonic_KX-UT113/01.133 (0080f0c8c381)`, per-MAC `Config<MAC>.cfg`
  (upper-case MAC).
- FIELD-NOTES "DHCP": Panasonic reads 160 > 159 > 66; PnP spells `vender`.
"""

from __future__ import annotations

from netboot.vendors.profile import URL, VendorProfile

PANASONIC = VendorProfile(
    name="panasonic",
    label="Panasonic",
    ouis=("00:80:f0",),  # [WAZO-PANA] sample
    pnp_vendors=("panasonic",),
    dhcp_options=(160, 159, 66),  # FIELD-NOTES "DHCP"
    user_agents=(r"^Panasonic_(?P<model>[^ /]+)/(?P<fw>[^ ]+) \((?P<mac>[0-9a-f]{12})\)",),
    url_form=URL,
    pnp_form=URL,
    mac_files=("Config{MAC}.cfg",),  # [WAZO-PANA]
    sources=("wazo_panasonic common.py",),
)

PROFILES = (PANASONIC,)
