"""Panasonic SIP phones (KX-UT, KX-TGP, KX-HDV).

Sources:
- [WAZO-PANA] wazo-platform/wazo-provd-plugins plugins/wazo_panasonic/common/common.py
  (commit 2321a3f390c23b47e2b4e62348418c15bc8cc09b): User-Agent
  `Panasonic_KX-UT113/01.133 (0080f0c8c381)`, per-MAC `Config<MAC>.cfg`
  (upper-case MAC).
- FIELD-NOTES "DHCP": Panasonic reads 160 > 159 > 66; PnP spells `vender`.
- [WAZO-PANA-TPL] same plugin, templates/common/KX-UT113.tpl: the model file
  `KX-UT113.cfg` sets `CFG_STANDARD_FILE_PATH="<server>/Panasonic/Config{MAC}.cfg"`,
  `{MAC}` being filled in by the phone (also in a public PBX's Panasonic
  files, index ids 52758194812, 55883892388).
- No HTTP remote control was found for the family (its re-provisioning is a
  SIP NOTIFY check-sync, `CFG_RESYNC_FROM_SIP`): `netboot phone` says so.
"""

from __future__ import annotations

from netboot.vendors.profile import Identity, VendorProfile

PANASONIC = VendorProfile(
    name="panasonic",
    label="Panasonic",
    ouis=("00:80:f0",),  # [WAZO-PANA] sample
    pnp_vendors=("panasonic",),
    dhcp_options=(160, 159, 66),  # FIELD-NOTES "DHCP"
    user_agents=(r"^Panasonic_(?P<model>[^ /]+)/(?P<fw>[^ ]+) \((?P<mac>[0-9a-f]{12})\)",),
    # [WAZO-PANA-TPL] the standard file URL with the phone's own {MAC} (weak
    # for a DHCP option: Wazo puts it in the model file).
    url_form="{dir}Config{MAC}.cfg",
    pnp_form="{dir}Config{MAC}.cfg",
    mac_macro="{MAC}",
    mac_files=("Config{MAC}.cfg",),  # [WAZO-PANA]
    common_files=(r"^KX-[A-Z]+\d+\w*\.cfg$",),  # [WAZO-PANA-TPL] KX-UT113.cfg
    sources=("wazo_panasonic common.py", "wazo_panasonic KX-UT113.tpl"),
    identity=Identity(
        model="KX-HDV130",
        firmware="01.050",
        manufacturer="Panasonic",
        vendor_class=b"",  # no public option 60 found: known by its OUI
        prl=bytes((1, 3, 6, 12, 15, 28, 42, 66, 159, 160)),  # assumption (FIELD-NOTES 160/159/66)
        url_options=(160, 159, 66),  # FIELD-NOTES "DHCP"
        pnp_user_agent="Panasonic_KX-HDV130/01.050",
        http_user_agent="Panasonic_{model}/{firmware} ({mac})",  # [WAZO-PANA]
        fetches_common=False,  # the standard file the URL names
        source="Wazo User-Agent sample and templates; FIELD-NOTES option order",
    ),
)

PROFILES = (PANASONIC,)


def panasonic_value(value: object) -> str:
    """A value for `KEY="value"`: the format has no escape for a double quote
    (none in any source), so a value holding one is a render error naming it."""
    import jinja2

    text = str(value)
    if '"' in text:
        raise jinja2.TemplateRuntimeError(
            f'{text!r}: a Panasonic value cannot hold a double quote (KEY="value" has no escape)'
        )
    return text


TEMPLATE_HELPERS = {"panasonic_value": panasonic_value}
