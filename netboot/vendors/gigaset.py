"""Gigaset (N510/N720/N870 DECT IP bases).

Sources:
- [WAZO-GIGASET] wazo-platform/wazo-provd-plugins plugins/wazo_gigaset/common/common.py
  (commit 2321a3f390c23b47e2b4e62348418c15bc8cc09b): option 60
  `Gigaset_N720_DM_PRO`, `N510_IP_PRO`; User-Agent
  `Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605`; per-MAC
  `<MAC>.xml` (upper-case); OUI 7c:2f:80 in the samples.
"""

from __future__ import annotations

from netboot.vendors.profile import URL, VendorProfile

GIGASET = VendorProfile(
    name="gigaset",
    label="Gigaset",
    ouis=("7c:2f:80",),  # [WAZO-GIGASET] samples
    vendor_classes=(r"^Gigaset_", r"^N\d{3}_(?:IP|DM)_PRO$"),  # [WAZO-GIGASET]
    pnp_vendors=("gigaset",),
    user_agents=(
        r"^(?:Gigaset )?(?P<model>N\d{3} [^/]+)/(?P<fw>[\w.+]+?)(?:;(?P<mac>[0-9A-F]{12}))?$",
    ),
    url_form=URL,
    pnp_form=URL,
    mac_files=("{MAC}.xml",),  # [WAZO-GIGASET]
    sources=("wazo_gigaset common.py",),
)

PROFILES = (GIGASET,)
