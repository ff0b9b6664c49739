"""Phone config files read the way the firmware reads them, and checked key by key.

Two text formats, two sets of rules:

- PLANET/Fanvil (`<<VOIP CONFIG FILE>>Version:2.xxxx`): `<NAME CONFIG MODULE>`
  lines open a module; every other line is `Key :value`, the key padded with
  spaces up to the colon (the padding is not part of the key, the first `:`
  ends it, so values may hold colons: URLs, `Record:on`). `--SIP Line List--  :`
  style lines mark a list inside a module and are kept as keys.
  `<<END OF FILE>>` ends the file; a line outside any module is an error.
  Evidence: the Fanvil X3U export and the Digium A20 (Fanvil-built) export in
  tests/data, the PLANET admin guide chapter 6 ("Items in configuration file").
- Yealink (`#!version:1.0.0.1` first): `key = value` per line, `#` comments,
  blank lines; a key may repeat (`static.security.user_password` once per
  account). Evidence: Yealink's template key lists in tests/data.

`check_rendered` compares a parsed file with the module/key pairs found in the
real exports kept in tests/data (tests/data/SOURCES.md names each one); the
package carries those pairs, derived from the exports, in
`templates/reference-keys.txt` (a test rebuilds it from tests/data and
compares, so the two cannot drift). A key the firmware would ignore - absent
from every reference export of that layout - is a problem; `netboot render
--check` and the tests fail on it.

XML families (one reader, `_xml_elements`: expat with its line numbers, no
DOCTYPE or entity declarations, a budget of elements), each with its own rules:

- Snom (`<settings><phone-settings>`): one element per setting, every one with
  a `perm` attribute (`""`, `R`, `RW`, `!`, `$`, `&`), `idx` for numbered ones
  (`<user_name idx="1" perm="R">`, key `user_name[1]`); a file may instead be a
  `<setting-files>` list of `<file url=...>`. Evidence: the snom821 settings
  dump and the key lists in tests/data (SOURCES.md).
- Grandstream (`<gs_provision version="1">`, an optional `<mac>` of 12 hex
  digits, `<config version="1">` with one `<Pnnn>` element per P-value, or
  `<item name="...">` in the alias form of `version="2"`). Evidence: Wazo's
  templates and the Grandstream template key lists in tests/data.
- Polycom UC Software (`<polycomConfig>` or a phone's `<PHONE_CONFIG>`
  export): every attribute of every element is a parameter
  (`reg.1.address="1001"`); the master file `000000000000.cfg` is one
  `<APPLICATION APP_FILE_PATH=... CONFIG_FILES=...>`. Evidence: a real IP650
  export and Wazo's and public key lists in tests/data.
- Gigaset Nx70 (`<provisioning version="1.1" productID="e2">`): `<nvm>` with
  `<param name=... value=...>` and `<oper name=... value=...>` (which may hold
  params: `add_hs` registers a handset), `<firmware><file .../>`. Evidence:
  a public N870 file and Wazo's Nx70 key list in tests/data.
- Panasonic (`# Panasonic SIP Phone Standard Format File #` first): one
  `KEY="value"` per line (upper-case key, value in straight double quotes),
  `#` comments, `_1` for line 1. Evidence: Panasonic's sample (as a public
  PBX carries it) and Wazo's key list in tests/data.
- Avaya J100 (`46xxsettings.txt`, `<mac>.cfg`): `SET NAME value` (value the
  rest of the line, optionally in double quotes), `## comment`, `# LABEL`,
  `IF $VAR SEQ text GOTO LABEL`, `GOTO LABEL`, `GET file` (processing goes
  on in that file). Evidence: Wazo's J100 key list and public 46xxsettings
  notes in tests/data (weak: no Avaya-shipped file was kept).
- Cisco SPA / 3PCC (`<flat-profile>`): one element per parameter, the
  parameter's web-UI name with `_` for spaces and `_<n>_` for a line
  (`<Proxy_1_ ua="na">`), an optional `ua` (`na`, `ro`, `rw`) or `group`.
  Evidence: Wazo's cisco_spa keys and public 3PCC key lists in tests/data.

Pure functions, no I/O except `load_reference` reading the packaged table.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

FANVIL_HEADER = "<<VOIP CONFIG FILE>>"
FANVIL_END = "<<END OF FILE>>"
YEALINK_HEADER = "#!version:"
REFERENCE_FILE = Path(__file__).resolve().parent / "templates" / "reference-keys.txt"
MAX_LINES = 20000  # a config file longer than this is not a phone config
MAX_ELEMENTS = 20000  # nor is an XML file with more elements

_MODULE = re.compile(r"^<(?P<name>[^<>]+)>$")
_YEALINK_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


class VendorFileError(ValueError):
    """The file breaks the vendor's format rules; the message names the line."""


@dataclass(frozen=True)
class Entry:
    module: str  # "" for Yealink
    key: str
    value: str
    line: int


@dataclass(frozen=True)
class VendorFile:
    vendor: str  # "fanvil" | "yealink"
    version: str
    entries: tuple[Entry, ...]
    _index: Mapping[tuple[str, str], str] = field(default_factory=dict, repr=False, compare=False)

    def get(self, key: str, module: str = "") -> str | None:
        """The last value of `key` (in `module` for Fanvil), None when absent."""
        return self._index.get((module, key))

    def values(self, key: str, module: str = "") -> list[str]:
        return [e.value for e in self.entries if e.module == module and e.key == key]

    def pairs(self) -> set[tuple[str, str]]:
        return {(e.module, e.key) for e in self.entries}

    def modules(self) -> list[str]:
        return list(dict.fromkeys(e.module for e in self.entries))


def _lines(text: str) -> list[str]:
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise VendorFileError(f"{len(lines)} lines, more than {MAX_LINES}")
    return lines


def _build(vendor: str, version: str, entries: list[Entry]) -> VendorFile:
    index = {(e.module, e.key): e.value for e in entries}
    return VendorFile(vendor, version, tuple(entries), MappingProxyType(index))


def parse_fanvil(text: str) -> VendorFile:
    """A PLANET/Fanvil `.cfg` as the firmware reads it (VendorFileError if not)."""
    lines = _lines(text.lstrip("\ufeff"))
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise VendorFileError("empty file")
    head = lines[first].strip()
    if not head.startswith(FANVIL_HEADER):
        raise VendorFileError(f"line {first + 1}: not a {FANVIL_HEADER} file: {head[:40]!r}")
    label, sep, version = head[len(FANVIL_HEADER) :].partition(":")
    if label.strip() != "Version" or not sep or not version.strip():
        raise VendorFileError(f"line {first + 1}: no Version after {FANVIL_HEADER}")
    module = ""
    entries: list[Entry] = []
    ended = False
    for number, raw in enumerate(lines[first + 1 :], first + 2):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if ended:
            raise VendorFileError(f"line {number}: text after {FANVIL_END}")
        if line.strip() == FANVIL_END:
            ended = True
            continue
        match = _MODULE.match(line.strip())
        if match is not None and ":" not in line:
            module = f"<{match.group('name').strip()}>"
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key:
            raise VendorFileError(f"line {number}: not `Key :value`: {line[:60]!r}")
        if not module:
            raise VendorFileError(f"line {number}: {key!r} outside any <... MODULE>")
        entries.append(Entry(module, key, value.rstrip(), number))
    return _build("fanvil", version.strip(), entries)


def parse_yealink(text: str) -> VendorFile:
    """A Yealink `.cfg` as the firmware reads it (VendorFileError if not)."""
    lines = _lines(text.lstrip("\ufeff"))
    if not lines or not lines[0].startswith(YEALINK_HEADER):
        raise VendorFileError(f"line 1: a Yealink file starts with {YEALINK_HEADER}1.0.0.1")
    version = lines[0][len(YEALINK_HEADER) :].strip()
    entries: list[Entry] = []
    for number, raw in enumerate(lines[1:], 2):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _YEALINK_KEY.match(key):
            raise VendorFileError(f"line {number}: not `key = value`: {line[:60]!r}")
        entries.append(Entry("", key, value.strip(), number))
    return _build("yealink", version, entries)


# ---------------------------------------------------------------- XML families


@dataclass
class XmlElement:
    tag: str
    attrs: dict[str, str]
    line: int
    depth: int  # 0 for the root
    parent: str  # the parent's tag ("" for the root)
    text: str = ""
    children: int = 0


def _xml_elements(text: str) -> list[XmlElement]:
    """Every element of an XML document in document order, with its line.
    A DOCTYPE, an entity declaration or a broken document is a VendorFileError."""
    _lines(text)
    parser = xml.parsers.expat.ParserCreate()
    out: list[XmlElement] = []
    stack: list[XmlElement] = []

    def refuse(*_: object) -> None:
        raise VendorFileError(f"line {parser.CurrentLineNumber}: DOCTYPE/ENTITY not allowed")

    def start(tag: str, attrs: dict[str, str]) -> None:
        if len(out) >= MAX_ELEMENTS:
            raise VendorFileError(f"more than {MAX_ELEMENTS} elements")
        parent = stack[-1] if stack else None
        if parent is not None:
            parent.children += 1
        element = XmlElement(
            tag, dict(attrs), parser.CurrentLineNumber, len(stack), parent.tag if parent else ""
        )
        out.append(element)
        stack.append(element)

    def end(_tag: str) -> None:
        element = stack.pop()
        element.text = element.text.strip()

    def chars(data: str) -> None:
        if stack:
            stack[-1].text += data

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(text.lstrip("\ufeff").encode("utf-8"), True)
    except xml.parsers.expat.ExpatError as exc:
        raise VendorFileError(f"line {exc.lineno}: not well-formed XML ({exc.code})") from None
    if not out:
        raise VendorFileError("empty file")
    return out


SNOM_PERMS = frozenset({"", "r", "rw", "!", "$", "&"})


def _rooted(text: str, roots: Collection[str], what: str) -> list[XmlElement]:
    """The elements of an XML file whose root must be one of `roots`."""
    elements = _xml_elements(text)
    root = elements[0]
    if root.tag not in roots:
        named = " or ".join(f"<{r}>" for r in roots)
        raise VendorFileError(f"line {root.line}: {what} is {named}, not <{root.tag}>")
    return elements


def parse_snom(text: str) -> VendorFile:
    """A Snom XML settings file as the firmware reads it: `<settings>` with
    `<phone-settings>` (each setting with `perm`, numbered ones with `idx`),
    or a `<setting-files>` list of further files."""
    elements = _xml_elements(text)
    root = elements[0]
    entries: list[Entry] = []
    if root.tag == "setting-files":
        for e in elements[1:]:
            if e.tag != "file" or e.depth != 1 or "url" not in e.attrs:
                raise VendorFileError(f"line {e.line}: <setting-files> holds <file url=...> only")
            entries.append(Entry("setting-files", "file", e.attrs["url"], e.line))
        return _build("snom", "", entries)
    if root.tag != "settings":
        raise VendorFileError(
            f"line {root.line}: a Snom settings file is <settings>, not <{root.tag}>"
        )
    for e in elements[1:]:
        if e.depth == 1:
            continue  # a section: <phone-settings>, <functionKeys>, ...
        if e.depth > 2:
            raise VendorFileError(f"line {e.line}: <{e.tag}> nested inside a setting")
        if e.children:
            raise VendorFileError(f"line {e.line}: <{e.tag}> holds elements, not a value")
        perm = e.attrs.get("perm")
        if perm is None:
            raise VendorFileError(f"line {e.line}: <{e.tag}> has no perm attribute")
        if perm.lower() not in SNOM_PERMS:
            raise VendorFileError(
                f"line {e.line}: <{e.tag}> perm={perm!r} is not a Snom permission"
            )
        idx = e.attrs.get("idx")
        key = f"{e.tag}[{idx}]" if idx is not None else e.tag
        entries.append(Entry(e.parent, key, e.text, e.line))
    return _build("snom", "", entries)


_P_VALUE = re.compile(r"^P\d{1,6}$")
_HEX12 = re.compile(r"^[0-9a-fA-F]{12}$")


def parse_grandstream(text: str) -> VendorFile:
    """A Grandstream XML config file (`cfg<mac>.xml`, `cfg.xml`) as the firmware reads it."""
    elements = _rooted(text, ("gs_provision",), "a Grandstream config file")
    entries: list[Entry] = []
    configs = 0
    for e in elements[1:]:
        if e.depth == 1:
            if e.tag == "mac":
                if not _HEX12.match(e.text):
                    raise VendorFileError(f"line {e.line}: <mac> {e.text!r} is not 12 hex digits")
                entries.append(Entry("gs_provision", "mac", e.text.lower(), e.line))
            elif e.tag == "config":
                configs += 1
            else:
                raise VendorFileError(f"line {e.line}: <{e.tag}> in <gs_provision>")
            continue
        if e.depth > 2 or e.parent != "config":
            raise VendorFileError(f"line {e.line}: <{e.tag}> nested inside a setting")
        if e.children:
            raise VendorFileError(f"line {e.line}: <{e.tag}> holds elements, not a value")
        if e.tag == "item" and e.attrs.get("name"):
            entries.append(Entry("config", e.attrs["name"], e.text, e.line))
        elif _P_VALUE.match(e.tag):
            entries.append(Entry("config", e.tag, e.text, e.line))
        else:
            raise VendorFileError(f"line {e.line}: <{e.tag}> is neither a P-value nor an <item>")
    if configs != 1:
        raise VendorFileError(f"{configs} <config> elements, not one")
    return _build("grandstream", "", entries)


POLYCOM_ROOTS = ("polycomConfig", "PHONE_CONFIG", "APPLICATION")


def parse_polycom(text: str) -> VendorFile:
    """A Polycom configuration file as UC Software reads it: every attribute
    a parameter (module ""), or the master file (module "APPLICATION")."""
    elements = _xml_elements(text)
    root = elements[0]
    if root.tag not in POLYCOM_ROOTS:
        raise VendorFileError(
            f"line {root.line}: a Polycom file is <polycomConfig>, <PHONE_CONFIG> or "
            f"<APPLICATION>, not <{root.tag}>"
        )
    module = "APPLICATION" if root.tag == "APPLICATION" else ""
    entries: list[Entry] = []
    for e in elements:
        if e.text and e is not root:
            raise VendorFileError(f"line {e.line}: <{e.tag}> holds text; parameters are attributes")
        for name, value in e.attrs.items():
            entries.append(Entry(module, name, value, e.line))
    return _build("polycom", "", entries)


def parse_gigaset(text: str) -> VendorFile:
    """A Gigaset Nx70 provisioning file (`<MAC>.xml`) as the base reads it."""
    elements = _rooted(text, ("provisioning",), "a Gigaset file")
    entries: list[Entry] = []
    for e in elements[1:]:
        if e.depth == 1:
            if e.tag not in ("nvm", "firmware"):
                raise VendorFileError(f"line {e.line}: <{e.tag}> in <provisioning>")
            continue
        if e.parent == "firmware" and e.tag == "file":
            entries.append(Entry("firmware", "file", e.attrs.get("url", ""), e.line))
            continue
        name = e.attrs.get("name")
        if e.tag not in ("param", "oper") or not name or e.parent not in ("nvm", "oper"):
            raise VendorFileError(f"line {e.line}: <{e.tag}> is not a <param name=...> or <oper>")
        if e.tag == "param" and "value" not in e.attrs:
            raise VendorFileError(f"line {e.line}: param {name!r} has no value")
        key = f"oper:{name}" if e.tag == "oper" else name
        entries.append(Entry("nvm", key, e.attrs.get("value", ""), e.line))
    return _build("gigaset", "", entries)


PANASONIC_HEADER = "# Panasonic SIP Phone Standard Format File #"
_PANASONIC_LINE = re.compile(r'^(?P<key>[A-Z][A-Z0-9_]*)="(?P<value>[^"]*)"$')


def parse_panasonic(text: str) -> VendorFile:
    """A Panasonic `.cfg` (KX-HDV/TGP/UT) as the firmware reads it."""
    lines = _lines(text.lstrip("\ufeff"))
    if not lines or not lines[0].startswith(PANASONIC_HEADER):
        raise VendorFileError(f"line 1: a Panasonic file starts with {PANASONIC_HEADER}")
    entries: list[Entry] = []
    for number, raw in enumerate(lines[1:], 2):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _PANASONIC_LINE.match(line)
        if match is None:
            raise VendorFileError(f'line {number}: not `KEY="value"`: {line[:60]!r}')
        entries.append(Entry("", match.group("key"), match.group("value"), number))
    return _build("panasonic", "", entries)


_AVAYA_SET = re.compile(r"^SET\s+(?P<key>[A-Z0-9_]+)\s*(?P<value>.*)$")
_AVAYA_IF = re.compile(r"^IF\s+\$\w+\s+SEQ\s+\S+\s+GOTO\s+\w+$")
_AVAYA_GOTO = re.compile(r"^GOTO\s+\w+$")
_AVAYA_GET = re.compile(r"^GET\s+(?P<file>\S+)$")
_AVAYA_LABEL = re.compile(r"^#\s*\w+$")


def parse_avaya(text: str) -> VendorFile:
    """An Avaya J100 settings script (`46xxsettings.txt`, `<mac>.cfg`) as the
    phone reads it: SET lines are settings, GET names the next file."""
    entries: list[Entry] = []
    for number, raw in enumerate(_lines(text.lstrip("\ufeff")), 1):
        line = raw.strip()
        if not line or line.startswith("##") or _AVAYA_LABEL.match(line):
            continue
        match = _AVAYA_SET.match(line)
        if match is not None:
            value = match.group("value").strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            entries.append(Entry("", match.group("key"), value, number))
            continue
        get = _AVAYA_GET.match(line)
        if get is not None:
            entries.append(Entry("script", "GET", get.group("file"), number))
            continue
        if _AVAYA_IF.match(line) or _AVAYA_GOTO.match(line):
            continue
        raise VendorFileError(f"line {number}: not SET/IF/GOTO/GET or a comment: {line[:60]!r}")
    return _build("avaya", "", entries)


CISCO_UA = frozenset({"na", "ro", "rw"})


def parse_cisco(text: str) -> VendorFile:
    """A Cisco SPA / 3PCC `<flat-profile>` as the firmware reads it."""
    elements = _rooted(text, ("flat-profile",), "a Cisco profile")
    entries: list[Entry] = []
    for e in elements[1:]:
        if e.children:
            raise VendorFileError(f"line {e.line}: <{e.tag}> holds elements, not a value")
        ua = e.attrs.get("ua")
        if ua is not None and ua.lower() not in CISCO_UA:
            raise VendorFileError(f"line {e.line}: <{e.tag}> ua={ua!r} is not na, ro or rw")
        entries.append(Entry("", e.tag, e.text, e.line))
    return _build("cisco", "", entries)


PARSERS = {
    "snom": parse_snom,
    "grandstream": parse_grandstream,
    "polycom": parse_polycom,
    "cisco": parse_cisco,
    "gigaset": parse_gigaset,
    "panasonic": parse_panasonic,
    "avaya": parse_avaya,
}


def parse(vendor: str, text: str) -> VendorFile:
    if vendor == "fanvil":
        return parse_fanvil(text)
    if vendor == "yealink":
        return parse_yealink(text)
    parser = PARSERS.get(vendor)
    if parser is not None:
        return parser(text)
    raise VendorFileError(f"no parser for vendor {vendor!r}")


# ---------------------------------------------------------------- reference keys

# Numbered keys: an export lists SIP1..SIP6, account.1..account.N; a rendered
# file may use any line number the export shows for line 1.
_NUMBERED = (
    re.compile(r"^(SIP|P|Account)\d+ "),
    re.compile(r"^account\.\d+\."),
    re.compile(r"\[\d+\]$"),  # Snom idx
    # Polycom per-line and per-server parameters (reg.1., msg.mwi.1., ...)
    re.compile(r"^(reg|msg\.mwi|dialplan|divert\.noanswer|voIpProt\.server)\.\d+\."),
    re.compile(r"(?<=[A-Za-z0-9])_\d+_$"),  # Cisco per-line parameters (Proxy_1_)
    re.compile(r"^(SipAccount|hs|SipProvider)\.\d+\."),  # Gigaset handset/provider
    re.compile(r"(?<=[A-Z])_\d+$"),  # Panasonic per-line parameters (SIP_AUTHID_1)
)


def normalise_key(key: str) -> str:
    for pattern in _NUMBERED:
        key = pattern.sub(lambda m: re.sub(r"\d+", "N", m.group(0)), key, count=1)
    return key


def reference_pairs(vendor: str, text: str) -> set[tuple[str, str]]:
    """The (module, key) pairs of one reference export."""
    parsed = parse(vendor, text)
    return {(module, normalise_key(key)) for module, key in parsed.pairs()}


# layout -> the reference exports under tests/data it is built from.
REFERENCE_EXPORTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "fanvil-1": ("fanvil-digium-a20-v1-export.cfg", "fanvil-v1-wazo-base-keys.cfg"),
        "fanvil-2": ("fanvil-x3u-v2-export.cfg",),
        "yealink": ("yealink-v84-template-keys.cfg",),
        "snom": (
            "snom-821-settings-dump.xml",
            "snom-wazo-keys.xml",
            "snom-action-url-keys.xml",
        ),
        "polycom": (
            "polycom-ip650-export.cfg",
            "polycom-wazo-keys.cfg",
            "polycom-master-keys.cfg",
            "polycom-public-keys.cfg",
        ),
        "cisco-spa": (
            "cisco-3pcc-keys.xml",
            "cisco-spa-wazo-keys.xml",
            "cisco-spa-public-keys.xml",
        ),
        "gigaset": ("gigaset-n870-user-config.xml", "gigaset-wazo-keys.xml"),
        "avaya": ("avaya-j100-wazo-keys.txt", "avaya-public-keys.txt"),
        "panasonic": (
            "panasonic-kx-hdv-sample.cfg",
            "panasonic-wazo-keys.cfg",
            "panasonic-public-keys.cfg",
        ),
        "grandstream": (
            "grandstream-wazo-keys.xml",
            "grandstream-ht80x-template-keys.xml",
            "grandstream-gxp-keys.xml",
        ),
    }
)


def build_reference(data_dir: Path) -> dict[str, set[tuple[str, str]]]:
    """The (module, key) pairs per layout, read from the exports in `data_dir`."""
    table: dict[str, set[tuple[str, str]]] = {}
    for layout, names in REFERENCE_EXPORTS.items():
        vendor = layout.split("-", 1)[0]
        pairs: set[tuple[str, str]] = set()
        for name in names:
            pairs |= reference_pairs(vendor, (data_dir / name).read_text(encoding="utf-8"))
        table[layout] = pairs
    return table


def format_reference(table: Mapping[str, Iterable[tuple[str, str]]]) -> str:
    """`layout<TAB>module<TAB>key` lines, sorted: the packaged table's form."""
    rows = sorted(
        f"{layout}\t{module}\t{key}" for layout, pairs in table.items() for module, key in pairs
    )
    header = (
        "# (module, key) pairs found in the reference exports under tests/data\n"
        "# (tests/data/SOURCES.md); rebuilt by tests/test_vendorfile.py. Do not edit.\n"
    )
    return header + "\n".join(rows) + "\n"


def parse_reference(text: str) -> dict[str, frozenset[tuple[str, str]]]:
    table: dict[str, set[tuple[str, str]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        layout, module, key = line.split("\t")
        table.setdefault(layout, set()).add((module, key))
    return {layout: frozenset(pairs) for layout, pairs in table.items()}


@lru_cache(maxsize=1)
def load_reference() -> Mapping[str, frozenset[tuple[str, str]]]:
    return MappingProxyType(parse_reference(REFERENCE_FILE.read_text(encoding="utf-8")))


def check_rendered(
    layout: str,
    text: str,
    reference: Mapping[str, frozenset[tuple[str, str]]] | None = None,
) -> list[str]:
    """Problems with a rendered file of `layout` ("fanvil-1", "fanvil-2",
    "yealink"): a format error, or every module/key no reference export of
    that layout has. Empty list: every key is one the firmware exports."""
    table = load_reference() if reference is None else reference
    known = table.get(layout)
    if known is None:
        return [f"no reference exports for layout {layout!r}"]
    vendor = layout.split("-", 1)[0]
    try:
        parsed = parse(vendor, text)
    except VendorFileError as exc:
        return [str(exc)]
    modules = {module for module, _ in known}
    problems: list[str] = []
    for entry in parsed.entries:
        pair = (entry.module, normalise_key(entry.key))
        if pair in known:
            continue
        if vendor == "fanvil" and entry.module not in modules:
            problems.append(f"line {entry.line}: module {entry.module} is in no {layout} export")
        else:
            where = f" in {entry.module}" if entry.module else ""
            problems.append(f"line {entry.line}: key {entry.key!r}{where} is in no {layout} export")
    return problems
