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
- [SNOM-KEYS] the Action URL setting names, from the public Snom settings
  dumps and provisioning code listed in tests/data/SOURCES.md
  (`snom-action-url-keys.xml`): `action_setup_url`, `action_log_on_url`
  (registered), `action_log_off_url`, `action_offhook_url`, ...
- [SNOM-REMOTE] `GET /command.htm?key=<KEY>` (one key per request) and
  `GET /advanced_update.htm?reboot=Reboot`, HTTP Basic with `http_user` /
  `http_pass`: public Snom remote-control code (xivo-cti's snom answerer
  test, several phone-control tools; activeuri.py names them).
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
        # [WAZO-SNOM] the User-Agent sample, this model and firmware
        http_user_agent="Mozilla/4.0 (compatible; snom{model}-SIP {firmware} "
        "2010.12-00004-g9ba52f5 {MAC} SXM:0 UXM:0)",
        source="Snom wiki DHCP options and SIP PnP capture; gfiber dhcpvendortax test data",
    ),
    sources=("wazo_snom common.py", "snom mass deployment FAQ", "Snom PnP wiki"),
    action_keys={  # [SNOM-KEYS]
        "setup-completed": "action_setup_url",
        "registration-succeeded": "action_log_on_url",
        "registration-disabled": "action_log_off_url",
        "off-hook": "action_offhook_url",
        "on-hook": "action_onhook_url",
        "incoming-call": "action_incoming_url",
        "outgoing-call": "action_outgoing_url",
        "call-established": "action_connected_url",
        "call-terminated": "action_disconnected_url",
        "dnd-enabled": "action_dnd_on_url",
        "dnd-disabled": "action_dnd_off_url",
        "cfwd-always-enabled": "action_redirection_on_url",
        "cfwd-always-disabled": "action_redirection_off_url",
        "missed-call": "action_missed_url",
    },
    remote="snom",  # [SNOM-REMOTE]
)

PROFILES = (SNOM,)


# Snom's `timezone` setting is a country code and the standard offset in whole
# hours: `GER+1` (CalloraCTI prov_gen_snom.php), `USA-5` (snom821 dump in
# tests/data), `GBR-0` (same source's general settings); Wazo's snom plugin
# builds it as <tone scheme country><offset:+d> from its locale table
# (GER, USA, ESP, FRA, ITA, NLD). The country per IANA zone below is ours.
SNOM_COUNTRY = {
    "Europe/Berlin": "GER",
    "Europe/Paris": "FRA",
    "Europe/Madrid": "ESP",
    "Europe/Rome": "ITA",
    "Europe/Amsterdam": "NLD",
    "Europe/London": "GBR",
    "America/New_York": "USA",
    "America/Chicago": "USA",
    "America/Denver": "USA",
    "America/Los_Angeles": "USA",
}


def snom_timezone(zone: str, offset_minutes: int) -> str:
    """`GER+1` for Europe/Berlin; "" when netboot knows no Snom name for the
    zone (the template then gives only `utc_offset`, without daylight saving)."""
    country = SNOM_COUNTRY.get(zone)
    if country is None or offset_minutes % 60:
        return ""
    hours = offset_minutes // 60
    return f"{country}{'-0' if hours == 0 else f'{hours:+d}'}"


TEMPLATE_HELPERS = {"snom_timezone": snom_timezone}
