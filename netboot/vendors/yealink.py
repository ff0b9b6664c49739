"""Yealink phones.

Sources:
- [WAZO-YEALINK] wazo-platform/wazo-provd-plugins plugins/wazo_yealink/common/common.py
  (commit 2321a3f390c23b47e2b4e62348418c15bc8cc09b): HTTP User-Agents
  `Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37` (model, firmware, MAC with
  colons), common files `y0000000000xx.cfg`, per-MAC `<12 hex>.cfg`
  (`_SENSITIVE_FILENAME_REGEX`), OUI 00:15:65 in every sample.
- [YEALINK-AP] Yealink auto-provisioning guide: option 66/43/custom carry the
  provisioning *server* URL; the phone asks it for `y0000000000xx.cfg` and
  `<mac>.cfg` (issue 14, Wazo's DHCP classes point Yealink at the server).
- [FIELD] FIELD-NOTES "SIP Plug-and-Play": user part `MAC001565...`, port 5059.
- [DHCPD-SAMPLES] option 60 "yealink": ISC dhcpd classes matching
  `substring(option vendor-class-identifier, 0, 7) = "yealink"`.
"""

from __future__ import annotations

from netboot.vendors.profile import DIRECTORY, Identity, VendorProfile

YEALINK = VendorProfile(
    name="yealink",
    label="Yealink",
    ouis=(
        "00:15:65",
        "80:5e:c0",
        "24:9a:d8",
        "44:db:d2",
    ),  # IEEE MA-L (test: wireshark manuf); 00:15:65 [WAZO-YEALINK]
    vendor_classes=(r"^yealink",),  # [DHCPD-SAMPLES]
    pnp_vendors=("yealink",),
    dhcp_options=(128, 66, 43),  # [YEALINK-AP] custom > 66 > 43 (T5 admin guide)
    user_agents=(  # [WAZO-YEALINK] _UA_REGEX_LIST
        r"^yealink\s+(?P<model>(?:SIP(?: VP)?-)?\w+)\s+(?P<fw>[\d.]+)\s+(?P<mac>[0-9a-f:]{17})$",
        r"^yealink-(?P<model>\w+)\s+(?P<fw>[\d.]+)",
    ),
    url_form=DIRECTORY,  # [YEALINK-AP] the server, not a file
    pnp_form=DIRECTORY,
    common_files=(r"^y0{10}[0-9a-f]{2}\.(?:cfg|boot)$",),  # [WAZO-YEALINK]
    mac_files=("{mac}.cfg",),  # [WAZO-YEALINK] _dev_specific_filename
    identity=Identity(
        model="SIP-T54W",
        firmware="96.86.0.70",
        manufacturer="Yealink",
        vendor_class=b"yealink",  # [DHCPD-SAMPLES]
        # Not documented publicly as a capture: netboot's assumption, asking for
        # the options [YEALINK-AP] names (66, 43, a custom one).
        prl=bytes((1, 3, 6, 12, 15, 28, 42, 43, 66, 67, 120, 125, 128, 132, 160)),
        url_options=(128, 66, 43),  # [YEALINK-AP] custom > 66 > 43
        pnp_user_agent="Yealink SIP-T54W 96.86.0.70",
        pnp_port=5059,  # [FIELD]
        source="Yealink auto-provisioning guide (option order), FIELD-NOTES (PnP port)",
    ),
    sources=("wazo_yealink common.py", "Yealink auto-provisioning guide"),
    remote="yealink",  # Yealink Action URI: /servlet?key=
)

PROFILES = (YEALINK,)
