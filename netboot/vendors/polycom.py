"""Polycom / Poly phones (SoundPoint IP, SoundStation IP, VVX, Trio).

Sources:
- [POLY-AG] Polycom SoundPoint IP / SoundStation IP Administrator's Guide
  (SIP 3.1, 1725-11530-310) C-24 "Parsing Vendor ID Information" and Poly UC
  Software 5.9 admin guide "Parse Vendor ID Information": option 60 follows
  RFC 3925, enterprise 13885 (00 00 36 3d), one length octet, sub-options
  (code, length, data): 1 company "Polycom", 2 part "SoundPointIP-SPIP_601",
  3 part number, 4 application version, 5 BootROM version, 0xff ends them;
  the full hex of an IP 601's option is printed there (kept in tests/data).
- [WAZO-POLY] wazo-platform/wazo-provd-plugins plugins/wazo_polycom/common/common.py
  (commit 2321a3f390c23b47e2b4e62348418c15bc8cc09b): HTTP User-Agent
  `FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application`, per-MAC
  paths `<mac>.cfg`, `<mac>-user.cfg`, `-phone.cfg`, `-license.cfg`,
  `-directory.xml`, `-boot.log`, `-app.log`; master file `000000000000.cfg`
  (v5_9_2 var/tftpboot: `CONFIG_FILES="[PHONE_MAC_ADDRESS]-user.cfg, common.cfg"`).
- [GFIBER-TAX] DentonGentry/gfiber-platform cmds/test-dhcpvendortax.sh:
  option 60 `Polycom-VVX310` (text form of later firmware).
- Issue 17 / [POLY-AG]: option 160 or 66 carries the provisioning server URL.
- [POLY-MASTER] the master file `000000000000.cfg` lists the files to read
  next in `CONFIG_FILES` with the `[PHONE_MAC_ADDRESS]` macro (Wazo's
  v5_5_1 master; Poly UC admin guide): netboot's lists
  `[PHONE_MAC_ADDRESS]-phone.cfg`, which carries the site and the line.
- [POLY-REST] Poly UC REST API: `POST /api/v1/mgmt/safeRestart` (restart the
  application: it reads its configuration again) and `/api/v1/mgmt/safeReboot`,
  HTTP Basic or Digest as `Polycom` with the admin password, enabled by
  `apps.restapi.enabled="1"` (public VVX management scripts; tests/data).
"""

from __future__ import annotations

from netboot.vendors.profile import DIRECTORY, Identity, VendorProfile

POLYCOM = VendorProfile(
    name="polycom",
    label="Polycom",
    ouis=("00:04:f2", "64:16:7f"),  # IEEE MA-L (test: wireshark manuf)
    vendor_classes=(r"^Polycom\b", r"\bPolycom\b"),  # [GFIBER-TAX], decoded [POLY-AG]
    enterprise=13885,  # [POLY-AG]
    pnp_vendors=("polycom",),
    dhcp_options=(160, 66),  # issue 17 / FIELD-NOTES: 160 (or custom), then 66
    user_agents=(r"Polycom\w*-(?P<model>\w*?)-UA/(?P<fw>[\d.]+)",),  # [WAZO-POLY]
    url_form=DIRECTORY,  # the server; the phone asks for 000000000000.cfg then <mac>.cfg
    pnp_form=DIRECTORY,
    common_files=(r"^0{12}\.cfg$", r"^common\.cfg$", r"^sip\.cfg$", r"^phone1\.cfg$"),
    mac_files=(  # [WAZO-POLY] _PATH_REGEX
        "{mac}.cfg",
        "{mac}-user.cfg",
        "{mac}-phone.cfg",
        "{mac}-license.cfg",
        "{mac}-directory.xml",
        "{mac}-boot.log",
        "{mac}-app.log",
    ),
    sources=("Polycom admin guide C-24", "wazo_polycom common.py"),
    remote="polycom",  # [POLY-REST]
    identity=Identity(
        model="VVX_410",
        firmware="5.9.5.0614",
        manufacturer="Polycom",
        # [POLY-AG] RFC 3925: enterprise 13885, sub-options 1 company, 2 part,
        # 3 part number, 4 application version.
        vendor_class=bytes.fromhex("0000363d")
        + bytes((43,))
        + b"\x01\x07Polycom\x02\x0bVVX-VVX_410\x03\x0f3111-46162-001,1\x04\x0aSIP/5.9.5"
        + b"\xff",
        # No public capture of a VVX's option 55: netboot's assumption, asking
        # for the options [POLY-AG] names (160, 66).
        prl=bytes((1, 3, 6, 12, 15, 28, 42, 43, 66, 150, 160)),
        url_options=(160, 66),
        pnp_user_agent="PolycomVVX-VVX_410-UA/5.9.5.0614",
        http_user_agent="FileTransport PolycomVVX-VVX_410-UA/{firmware} Type/Application",
        own_file="{mac}-phone.cfg",  # [POLY-MASTER]
        source="Polycom admin guide C-24 (option 60), Wazo UA sample, Wazo master file",
    ),
)

PROFILES = (POLYCOM,)
