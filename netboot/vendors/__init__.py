"""Phone families: one data module each, one `VendorProfile` type, and the
look-ups the services use instead of branching on vendor names.

`identify` tells the family of a DHCP client (option 60, then OUI),
`by_pnp` of a PnP SUBSCRIBE (Event vendor, then OUI), `parse_user_agent` of
an HTTP client, `per_mac_name` whether a file name is some family's per-MAC
file (and whose MAC it names). The order of `PROFILES` is the matching order:
more specific option-60 forms come first (Cisco SPA before Cisco).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from netboot.vendors import (
    avaya,
    cisco,
    fanvil,
    gigaset,
    grandstream,
    panasonic,
    polycom,
    snom,
    yealink,
)
from netboot.vendors.profile import AgentInfo, Identity, VendorProfile, expand, split_site_url

__all__ = [
    "PROFILES",
    "TEMPLATE_HELPERS",
    "AgentInfo",
    "Identity",
    "PerMacName",
    "VendorProfile",
    "by_name",
    "by_oui",
    "by_pnp",
    "common_name",
    "expand",
    "identify",
    "parse_user_agent",
    "per_mac_name",
    "split_site_url",
]

PROFILES: tuple[VendorProfile, ...] = (
    *fanvil.PROFILES,
    *yealink.PROFILES,
    *snom.PROFILES,
    *grandstream.PROFILES,
    *polycom.PROFILES,
    *cisco.PROFILES,
    *avaya.PROFILES,
    *panasonic.PROFILES,
    *gigaset.PROFILES,
)

_BY_NAME = {p.name: p for p in PROFILES}

# Functions the config templates call for a family's own notations
# (`snom_timezone`, ...), collected from the family modules.
TEMPLATE_HELPERS: dict[str, object] = {
    **snom.TEMPLATE_HELPERS,
    **grandstream.TEMPLATE_HELPERS,
    **cisco.TEMPLATE_HELPERS,
    **panasonic.TEMPLATE_HELPERS,
}
_BY_OUI = {oui: p for p in PROFILES for oui in p.ouis}


def by_name(name: str) -> VendorProfile | None:
    return _BY_NAME.get(name.lower())


def _oui(mac: str | bytes | None) -> str | None:
    if not mac:
        return None
    if isinstance(mac, bytes):
        return ":".join(f"{b:02x}" for b in mac[:3]) if len(mac) >= 3 else None
    digits = re.sub(r"[^0-9a-fA-F]", "", mac).lower()
    if len(digits) < 6:
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 6, 2))


def by_oui(mac: str | bytes | None) -> VendorProfile | None:
    oui = _oui(mac)
    return _BY_OUI.get(oui) if oui else None


def identify(
    vendor_class: str = "", enterprise: int | None = None, mac: str | bytes | None = None
) -> VendorProfile | None:
    """The family of a DHCP client: by its option 60 (decoded text and RFC 3925
    enterprise number), else by its MAC's OUI."""
    if enterprise is not None:
        for profile in PROFILES:
            if profile.enterprise == enterprise:
                return profile
    if vendor_class:
        for pattern, profile in _class_patterns():
            if pattern.search(vendor_class):
                return profile
    return by_oui(mac)


@cache
def _class_patterns() -> tuple[tuple[re.Pattern[str], VendorProfile], ...]:
    return tuple(
        (re.compile(pattern, re.IGNORECASE), profile)
        for profile in PROFILES
        for pattern in profile.vendor_classes
    )


def by_pnp_vendor(vendor: str | None) -> VendorProfile | None:
    """The family a PnP SUBSCRIBE's Event `vendor=` names (none for "OEM", as
    old Snom firmware writes, or an unknown name)."""
    if vendor and vendor.upper() != "OEM":
        wanted = vendor.lower()
        for profile in PROFILES:
            if wanted in profile.pnp_vendors or wanted == profile.name:
                return profile
    return None


@cache
def _labels() -> dict[str, str]:
    """Each family's own spellings (its name, label and PnP Event vendors),
    lower-cased -> its label."""
    out: dict[str, str] = {}
    for profile in PROFILES:
        for spelling in (profile.name, profile.label, *profile.pnp_vendors):
            out.setdefault(spelling.lower(), profile.label)
    return out


def family_label(vendor: str) -> str:
    """A phone's vendor as one name: a family's own spelling (`snom`,
    `linksys`) becomes its label (`Snom`, `Cisco SPA / 3PCC`), what DHCP and
    the User-Agent give; any other text stays as it is."""
    return _labels().get(vendor.lower(), vendor)


def by_pnp(vendor: str | None, mac: str | None) -> VendorProfile | None:
    """The family of a PnP SUBSCRIBE: its Event vendor, else the MAC's OUI."""
    return by_pnp_vendor(vendor) or by_oui(mac)


def parse_user_agent(agent: str) -> AgentInfo | None:
    agent = agent.strip()
    if not agent:
        return None
    for profile in PROFILES:
        info = profile.parse_user_agent(agent)
        if info is not None:
            return info
    return None


@cache
def _common_patterns() -> tuple[tuple[re.Pattern[str], VendorProfile], ...]:
    return tuple(
        (re.compile(pattern, re.IGNORECASE), profile)
        for profile in PROFILES
        for pattern in profile.common_files
    )


def common_name(base: str) -> tuple[VendorProfile, str | None] | None:
    """Whether `base` is some family's common file name, and the model it names
    (PLANET/Fanvil `f0<model>hw1.100.cfg`), if any."""
    for pattern, profile in _common_patterns():
        m = pattern.match(base)
        if m is not None:
            return profile, m.groupdict().get("model")
    return None


@dataclass(frozen=True)
class PerMacName:
    """A file name that is some family's per-MAC file."""

    digits: str  # 12 lower-case hex
    canonical: str  # the name with the MAC spelt in the family's case
    profile: VendorProfile


def _template_regex(template: str) -> tuple[re.Pattern[str], bool]:
    upper = "{MAC}" in template
    text = re.escape(template.replace("{MAC}", "\0").replace("{mac}", "\0"))
    text = text.replace(r"\*", r"[\w.+-]+?").replace("\0", "(?P<mac>[0-9a-fA-F]{12})")
    return re.compile(f"^{text}$", re.IGNORECASE), upper


@cache
def _mac_patterns() -> tuple[tuple[re.Pattern[str], bool, VendorProfile], ...]:
    out = []
    for profile in PROFILES:
        for template in profile.mac_files:
            pattern, upper = _template_regex(template)
            out.append((pattern, upper, profile))
    return tuple(out)


def per_mac_name(base: str) -> PerMacName | None:
    """Whether `base` (one path component) is a per-MAC file name of any family."""
    for pattern, upper, profile in _mac_patterns():
        m = pattern.match(base)
        if m is None:
            continue
        digits = m.group("mac").lower()
        if digits == "000000000000":  # Polycom's master file is everyone's
            return None
        spelt = digits.upper() if upper else digits
        canonical = base[: m.start("mac")] + spelt + base[m.end("mac") :]
        return PerMacName(digits, canonical, profile)
    return None
