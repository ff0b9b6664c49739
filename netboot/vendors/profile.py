"""What one phone family does on the wire, as data: `VendorProfile`.

A profile answers the questions the services would otherwise answer with a
branch on a vendor name:

- who is this? OUIs, option 60 (text forms, RFC 3925 enterprise number), the
  PnP `Event: ua-profile;vendor=` value, the HTTP User-Agent;
- what does it read from DHCP, and in what form? (`option_forms`: per option
  code, the site's one provisioning URL as a file URL with the vendor's own
  macro, a server directory, a host name, or a vendor text form);
- what URL does its PnP NOTIFY carry? (`pnp_form`);
- which files does it ask for? (`common_files`, `mac_files`: per-MAC names,
  all lease-bound by the file servers);
- what does its firmware send? (`identity`: option 60, PRL, PnP User-Agent,
  file request order, for the lab's phones);
- which config keys carry its Action URLs (`action_keys`: event slug -> key,
  only the events its firmware reports) and how it is driven remotely
  (`remote`: the protocol `netboot phone` speaks to it, "" for none).

Every fact names its public source next to it in the family's module; the
artefacts the tests check against are in tests/data (see its SOURCES.md).
No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

# URL forms. A form is a template over the site's provisioning URL:
#   {url}   the site URL as configured (`http://host/prov/$mac.cfg`)
#   {dir}   its directory, ending in `/` (`http://host/prov/`)
#   {host}  its host name or address (`host`), as a TFTP server name
#   {path}  the directory path without scheme and host (`/prov/`)
# anything else is literal, including the vendor's own macros (`$MA`, `{mac}`).
URL = "{url}"
DIRECTORY = "{dir}"
HOST = "{host}"


@dataclass(frozen=True)
class AgentInfo:
    """What an HTTP User-Agent says about the phone."""

    vendor: str
    model: str | None = None
    firmware: str | None = None
    mac: str | None = None  # 12 hex digits as the phone wrote them, or None


@dataclass(frozen=True)
class Identity:
    """How a phone of this family introduces itself, for the lab's phones."""

    model: str
    firmware: str
    manufacturer: str  # as in its PnP Event and its User-Agent
    vendor_class: bytes  # DHCP option 60; b"" = the firmware sends none
    prl: bytes  # DHCP option 55
    url_options: tuple[int, ...]  # the options it reads a URL from, in its order
    pnp_user_agent: str
    pnp_user: str = "MAC{mac}"  # the SUBSCRIBE's user part, {mac} = 12 hex digits
    pnp_port: int = 5060  # 0: a random source port (and rport)
    pnp_from_tag: bool = True
    # Its HTTP User-Agent: {model}, {firmware}, {mac} (lower-case hex), {MAC};
    # "" = netboot's generic "<manufacturer> <model> <firmware> <mac>".
    http_user_agent: str = ""
    # False: it asks for its per-MAC file only (the first name its order finds).
    fetches_common: bool = True
    # The per-MAC file it asks for when given a directory ("": its first mac_files).
    own_file: str = ""
    # The file it asks a bare TFTP server (option 66 without 67) for ("": none).
    default_file: str = ""
    source: str = ""  # where each of these facts was read


@dataclass(frozen=True)
class VendorProfile:
    name: str  # the family key: "planet", "yealink", "cisco-spa", ...
    label: str  # how people write it: "PLANET", "Cisco SPA / 3PCC"
    ouis: tuple[str, ...] = ()  # "00:30:4f"
    # Option 60 text forms (regex, searched case-insensitively in the decoded text).
    vendor_classes: tuple[str, ...] = ()
    # RFC 3925 enterprise number its binary option 60 starts with.
    enterprise: int | None = None
    pnp_vendors: tuple[str, ...] = ()  # Event vendor= values, lower case
    # User-Agent regexes with named groups model, fw and (optional) mac.
    user_agents: tuple[str, ...] = ()
    # The options its firmware reads a provisioning server from, in its order
    # (128 stands for "a custom option 128-254" where the phone is set to one).
    dhcp_options: tuple[int, ...] = ()
    # DHCP option code -> form of the site URL it carries (see the forms above).
    option_forms: dict[int, str] = field(default_factory=dict)
    url_form: str = URL  # form for an option code not in option_forms
    pnp_form: str = URL  # the NOTIFY body
    mac_macro: str | None = None  # the firmware's own MAC macro (it substitutes)
    # File names: regexes for the common files, templates for the per-MAC ones
    # with {mac} (lower-case hex) or {MAC} (upper-case), `*` = any model text.
    common_files: tuple[str, ...] = ()
    mac_files: tuple[str, ...] = ()
    identity: Identity | None = None
    sources: tuple[str, ...] = ()
    # Action URL event slug (provisioning.events) -> the firmware's config key.
    action_keys: Mapping[str, str] = field(default_factory=dict)
    # The remote-control protocol (provisioning.activeuri.PROTOCOLS), "" = none.
    remote: str = ""

    # ------------------------------------------------------------ URL forms

    def url_for_option(self, code: int, site_url: str) -> str:
        """The site URL in the form this family reads from option `code`."""
        return expand(self.option_forms.get(code, self.url_form), site_url)

    def provisioning_url(self, site_url: str) -> str:
        """The site URL as this family writes its provisioning server in its own
        config (the renderer's auto-provision key): its default URL form."""
        return expand(self.url_form, site_url)

    @staticmethod
    def server_url(site_url: str) -> str:
        """The site URL's directory (`http://host/prov/`), for keys that want a
        server and add the file names themselves."""
        return expand(DIRECTORY, site_url)

    def pnp_url(self, site_url: str, mac: str | None) -> str:
        """The NOTIFY body for a phone of this family. When the family has no
        MAC macro of its own, netboot writes the MAC in for `$mac`."""
        url = expand(self.pnp_form, site_url)
        if self.mac_macro != "$mac" and mac:
            url = url.replace("$mac", mac.replace(":", "").lower())
        return url

    # ------------------------------------------------------------ identity

    def matches_vendor_class(self, text: str, enterprise: int | None) -> bool:
        if enterprise is not None and enterprise == self.enterprise:
            return True
        return any(re.search(p, text, re.IGNORECASE) for p in self.vendor_classes)

    def parse_user_agent(self, agent: str) -> AgentInfo | None:
        for pattern in self.user_agents:
            m = re.search(pattern, agent, re.IGNORECASE)
            if m is not None:
                groups = m.groupdict()
                return AgentInfo(
                    self.label, groups.get("model"), groups.get("fw"), groups.get("mac")
                )
        return None

    def mac_file_names(self, mac: str) -> list[str]:
        """This phone's per-MAC names (models written as `*` stay `*`)."""
        digits = mac.replace(":", "").replace("-", "").lower()
        return [t.replace("{mac}", digits).replace("{MAC}", digits.upper()) for t in self.mac_files]


def split_site_url(site_url: str) -> tuple[str, str, str, str]:
    """(scheme, netloc, directory path ending in /, host) of the site URL. The
    last path component is a file name when it has a dot or a macro (`$`, `{`)."""
    parts = urlsplit(site_url)
    path = parts.path or "/"
    head, _, last = path.rpartition("/")
    if last and ("." in last or "$" in last or "{" in last):
        directory = head + "/"
    else:
        directory = path if path.endswith("/") else path + "/"
    return parts.scheme, parts.netloc, directory, parts.hostname or ""


def expand(form: str, site_url: str) -> str:
    """A URL form filled in from the site URL (see the forms at the top)."""
    if not site_url:
        return ""
    scheme, netloc, directory, host = split_site_url(site_url)
    server_dir = urlunsplit((scheme, netloc, directory, "", ""))
    return (
        form.replace("{url}", site_url)
        .replace("{dir}", server_dir)
        .replace("{host}", host)
        .replace("{path}", directory)
    )
