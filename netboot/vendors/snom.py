"""Snom phones.

Sources:
- [WAZO-SNOM] wazo-platform/wazo-provd-plugins plugins/wazo_snom/common/common.py
  (commit 2321a3f390c23b47e2b4e62348418c15bc8cc09b): HTTP User-Agent
  `Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)`,
  common files `snom<model>.htm` / `snom<model>.xml`, per-MAC
  `snom<model>-<MAC>.htm` and `<MAC>.xml` (upper-case MAC), OUI 00:04:13.
- [SNOM-MASS] "Configuring snom phones for Mass Deployment" (snom FAQ
  faq-02-09-30-sf): setting_server may contain `{mac}`, which the phone
  replaces with its MAC; set from DHCP options 66 and 67.
- [SNOM-PNP] Snom service wiki, SIP Plug & Play: SUBSCRIBE
  `sip:MAC%3a00135E874B49@...`, `Via ...;rport`, `vendor="OEM"`, NOTIFY body
  `http://192.168.100.10/sipphone/sipphoneconfig.xml?mac={mac}`.
- [SNOM-DHCP] Snom wiki Features/Auto_Provisioning/DHCP/Options: 66/67, or
  both tunnelled in option 43; option 60 supported since 7.3.15.
- [GFIBER-TAX] DentonGentry/gfiber-platform cmds/test-dhcpvendortax.sh:
  option 60 `snom320`, `snom-m3-SIP/02.11//18-Aug-10 15:36`.
"""

from __future__ import annotations

from netboot.vendors.profile import Identity, VendorProfile

SNOM = VendorProfile(
    name="snom",
    label="Snom",
    ouis=("00:04:13",),  # [WAZO-SNOM] UA sample 000413922D24
    vendor_classes=(r"^snom",),  # [GFIBER-TAX]
    pnp_vendors=("snom",),
    dhcp_options=(43, 66, 67),  # [SNOM-DHCP] 66/67, tunnelled in 43 taking precedence
    user_agents=(  # [WAZO-SNOM] _UA_REGEX, _UA_REGEX_MAC
        r"\b(?P<model>snom\w+?)-SIP\s+(?P<fw>[\d.]+)(?:\s+\S+\s+(?P<mac>[0-9A-F]{12})\b)?",
    ),
    # [SNOM-MASS] a settings URL with {mac}, which the phone fills in.
    url_form="{dir}{mac}.xml",
    pnp_form="{dir}{mac}.xml",  # [SNOM-PNP] the NOTIFY body carries {mac}
    mac_macro="{mac}",
    common_files=(r"^snom[\w-]*?\.(?:htm|xml)$",),  # [WAZO-SNOM] snom<model>.htm/.xml
    mac_files=("snom*-{MAC}.htm", "{MAC}.xml"),  # [WAZO-SNOM] _dev_specific_filenames
    identity=Identity(
        model="D785",
        firmware="10.1.101.11",
        manufacturer="snom",
        vendor_class=b"snomD785",  # [GFIBER-TAX] form "snom320": snom + model
        prl=bytes((1, 3, 6, 15, 28, 42, 66, 67, 120, 132, 133)),  # [SNOM-DHCP] 66/67/132/133
        url_options=(66,),  # [SNOM-DHCP] 66 (+67)
        pnp_user_agent="snomD785/10.1.101.11",
        pnp_user="MAC%3a{mac}",  # [SNOM-PNP]
        pnp_port=0,  # [SNOM-PNP] rport, source port chosen by the phone
        source="Snom wiki DHCP options and SIP PnP capture; gfiber dhcpvendortax test data",
    ),
    sources=("wazo_snom common.py", "snom mass deployment FAQ", "Snom PnP wiki"),
)

PROFILES = (SNOM,)
