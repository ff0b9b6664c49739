"""Gigaset (N510/N720/N870 DECT IP bases).

Sources:
- [WAZO-GIGASET] wazo-platform/wazo-provd-plugins plugins/wazo_gigaset/common/common.py
  (commit 2321a3f390c23b47e2b4e62348418c15bc8cc09b): option 60
  `Gigaset_N720_DM_PRO`, `N510_IP_PRO`; User-Agent
  `Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605`; per-MAC
  `<MAC>.xml` (upper-case); OUI 7c:2f:80 in the samples.
- [WAZO-NX70] plugins/wazo_gigaset/Nx70_83_v2_65_0/templates/base.tpl (same
  commit): the Nx70 (N670/N870) file `<provisioning version="1.1"
  productID="e2"><nvm><param name=... value=.../>`, `DmGlobal.0.TimeZone`
  written with the IANA zone name, handsets added with `<oper name="add_hs">`
  and given a `SipAccount.<00001>.*` each.
- [GS-URL] public notes in two home-automation provisioning projects (index
  ids 58522037306, 58833780490; weak): the base's data-server URL
  `http://<server>/.../[MAC].xml`, `[MAC]` filled in by the base.
- [GS-ADAPTER] a public PBX's vendor table (index id 66634833713; weak): the
  Gigaset PRO provisioning guide's DHCP option 114, SIP multicast PnP with
  `sip:MAC%3A<MAC>@...`; no HTTP remote control (the web UI only).
"""

from __future__ import annotations

from netboot.vendors.profile import Identity, VendorProfile

GIGASET = VendorProfile(
    name="gigaset",
    label="Gigaset",
    ouis=("7c:2f:80",),  # [WAZO-GIGASET] samples
    vendor_classes=(r"^Gigaset_", r"^N\d{3}_(?:IP|DM)_PRO$"),  # [WAZO-GIGASET]
    pnp_vendors=("gigaset",),
    user_agents=(
        r"^(?:Gigaset )?(?P<model>N\d{3} [^/]+)/(?P<fw>[\w.+]+?)(?:;(?P<mac>[0-9A-F]{12}))?$",
    ),
    dhcp_options=(114, 66),  # [GS-ADAPTER] 114
    url_form="{dir}[MAC].xml",  # [GS-URL]
    pnp_form="{dir}[MAC].xml",
    mac_macro="[MAC]",
    mac_files=("{MAC}.xml",),  # [WAZO-GIGASET]
    sources=("wazo_gigaset common.py", "wazo_gigaset Nx70 base.tpl"),
    identity=Identity(
        model="N870 IP PRO",
        firmware="2.65.0",
        manufacturer="Gigaset",
        vendor_class=b"",  # no public N870 option 60 found: known by its OUI
        prl=bytes((1, 3, 6, 12, 15, 28, 42, 66, 114)),  # assumption, incl. [GS-ADAPTER] 114
        url_options=(114, 66),
        pnp_user_agent="Gigaset N870 IP PRO/83.V2.65.0",
        pnp_user="MAC%3A{mac}",  # [GS-ADAPTER]
        http_user_agent="Gigaset N870 IP PRO/83.V2.65.0+build.a546b91;{MAC}",  # [WAZO-GIGASET]
        fetches_common=False,  # it asks for its own [MAC].xml only
        source="Wazo UA sample and Nx70 template; public notes on [MAC] and option 114",
    ),
)

PROFILES = (GIGASET,)
