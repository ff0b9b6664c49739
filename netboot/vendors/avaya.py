"""Avaya SIP phones (96x1, J100).

Sources:
- [AVAYA-J100] Avaya "Installing and Administering J100 Series IP Phones"
  DHCP options: option 12 host name `AVohhhhhh` where o names the OUI
  (00-04-0D, 00-1B-4F, 00-09-6E, 00-60-1D, 00-07-3B); option 242 (SSON)
  `L2Q=1,L2QVLAN=1212,HTTPSRVR=192.168.0.100`; settings file `46xxsettings.txt`.
- [AVAYA-96X1] Avaya 9601..9641G SIP admin guide: option 43 processed only
  when its first code is 1 with the value 6889 (Avaya's enterprise number);
  code 2 HTTPSRVR, 3 HTTPDIR.
- [AVAYA-DHCPLOG] a Microsoft DHCP server audit line kept as a test fixture
  in a public log-parser project: vendor class `0x6363702E61766179612E636F6D`
  = `ccp.avaya.com` from a phone host `AVXB27312`.
- [WAZO-AVAYA] wazo-platform/wazo-provd-plugins plugins/wazo_avaya/common/common.py
  (commit 2321a3f390c23b47e2b4e62348418c15bc8cc09b): User-Agent
  `Mozilla/4.0 (compatible; MSIE 6.0) AVAYA/J179-4.1.3.0.6 (MAC:c81fea83e85a)`;
  per-MAC `SIP<MAC>.cfg` (1200 series) and `<mac>.cfg` (J100, lower-case);
  templates/base-J100series.tpl and v4_1_3/var/tftpboot/J100Supgrade.txt:
  the J100 settings (`SET SIP_CONTROLLER_LIST host:port;transport=udp`,
  `SET TIMEZONE Europe/Paris`, `FORCE_SIP_USERNAME`, ...) and `GET
  $MACADDR.cfg` (the phone fills in its MAC).
- No HTTP remote control was found for the J100 family: `netboot phone` says so.
"""

from __future__ import annotations

from netboot.vendors.profile import HOST, Identity, VendorProfile

AVAYA = VendorProfile(
    name="avaya",
    label="Avaya",
    ouis=("00:04:0d", "00:1b:4f", "00:09:6e", "00:60:1d", "00:07:3b", "c8:1f:ea"),
    vendor_classes=(r"^ccp\.avaya\.com$",),  # [AVAYA-DHCPLOG]
    enterprise=6889,  # [AVAYA-96X1]
    pnp_vendors=("avaya",),
    dhcp_options=(242, 43),  # [AVAYA-J100] SSON 242; [AVAYA-96X1] 43 with 1=6889
    user_agents=(r"AVAYA/(?P<model>\w+)-(?P<fw>[\d.]+)\s\(MAC:(?P<mac>[0-9a-f]{12})\)",),
    # [AVAYA-J100] SSON in option 242; 66 as a plain server
    option_forms={242: "HTTPSRVR={host},HTTPDIR={path}", 66: HOST},
    url_form=HOST,
    pnp_form="{dir}",
    common_files=(r"^46xxsettings\.txt$", r"^J100Supgrade\.txt$", r"^96x1Supgrade\.txt$"),
    mac_files=("SIP{MAC}.cfg", "{mac}.cfg"),  # [WAZO-AVAYA]
    sources=("Avaya J100 admin guide", "wazo_avaya common.py"),
    identity=Identity(
        model="J179",
        firmware="4.1.3.0.6",
        manufacturer="Avaya",
        vendor_class=b"ccp.avaya.com",  # [AVAYA-DHCPLOG]
        prl=bytes((1, 3, 6, 12, 15, 28, 42, 43, 66, 242)),  # assumption: 242 [AVAYA-J100]
        url_options=(242,),  # [AVAYA-J100] SSON
        pnp_user_agent="AVAYA/J179-4.1.3.0.6",
        http_user_agent="Mozilla/4.0 (compatible; MSIE 6.0) AVAYA/{model}-{firmware} (MAC:{mac})",
        source="Avaya J100 admin guide (option 242), DHCP log fixture, Wazo User-Agent sample",
    ),
)

PROFILES = (AVAYA,)
