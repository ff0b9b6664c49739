"""The phone inventory: a CSV the installer writes, one phone per row.

Columns: `mac, model, extension, password, display_name, input_id, firmware`
(the last two optional). `firmware` is the phone's firmware version
(`2.10.2.6887`); for PLANET/Fanvil it picks the config layout: 1.x firmware
reads Action URLs and time from `<GLOBAL CONFIG MODULE>` and the provisioning
server from `Download Server IP`, 2.x from `<CTI CONFIG MODULE>`, `<PHONE
FEATURE MODULE>` and `Flash Server IP` (templates/SOURCES.md). Empty: the
model's default layout. A first row starting with `mac` is a header; blank lines and
lines starting with `#` are skipped. A bad row (bad MAC, unknown model, a MAC
or extension already used by an earlier row, a missing field) is reported with
its line number and skipped; every other row still works. Malformed input (a
byte that is not UTF-8, a line over MAX_LINE characters, broken quoting, a
control character such as NUL, VT, FF, NEL or U+2028 that would end or hide a
line of a phone's config) is an error naming file, line and column: that line
is skipped too, and `netboot check` exits 1.

`MODELS` lists the models netboot has templates for: their vendor (which
template family renders them) and the name of their common file.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from netboot.text import bad_character, describe_character
from netboot.wire import normalize_mac

if TYPE_CHECKING:
    from netboot.config import Config


@dataclass(frozen=True)
class Model:
    name: str
    vendor: str  # template family: "fanvil" | "yealink" | "snom" | ...
    common_file: str
    layout: int = 0  # Fanvil firmware generation its config is written for (1 or 2)
    # Its per-MAC file name: {mac} lower-case hex, {MAC} upper-case (the
    # family's profile in netboot.vendors names the source).
    own_file: str = "{mac}.cfg"

    def own_name(self, mac_hex: str) -> str:
        return self.own_file.replace("{mac}", mac_hex.lower()).replace("{MAC}", mac_hex.upper())


def _fanvil(name: str, layout: int = 2) -> Model:
    return Model(name, "fanvil", f"f0{name}hw1.100.cfg", layout)


def _yealink(name: str, code: int) -> Model:
    return Model(name, "yealink", f"y0000000000{code:02d}.cfg")


def _grandstream(name: str) -> Model:
    # cfg.xml is every Grandstream's last choice (P8501 order), cfg<mac>.xml its first.
    return Model(name, "grandstream", "cfg.xml", own_file="cfg{mac}.xml")


def _polycom(name: str) -> Model:
    # The master file names [PHONE_MAC_ADDRESS]-phone.cfg (netboot/vendors/polycom.py).
    return Model(name, "polycom", "000000000000.cfg", own_file="{mac}-phone.cfg")


def _cisco_spa(name: str) -> Model:
    # /spa$PSN.cfg (spa504G.cfg), then the $MA.xml its Profile_Rule_B names (Wazo).
    return Model(name, "cisco-spa", f"spa{name[3:]}.cfg", own_file="{mac}.xml")


def _gigaset(name: str) -> Model:
    # A base asks for its <MAC>.xml only; the common name is netboot's own
    # (the site part, for `netboot render`), no Gigaset asks for it.
    return Model(name, "gigaset", f"gigaset-{name}-site.xml", own_file="{MAC}.xml")


def _panasonic(name: str) -> Model:
    # <model>.cfg names Config{MAC}.cfg (Wazo's panasonic plugin).
    return Model(name, "panasonic", f"{name}.cfg", own_file="Config{MAC}.cfg")


def _avaya(name: str) -> Model:
    # 46xxsettings.txt ends with GET $MACADDR.cfg (Wazo's J100 files).
    return Model(name, "avaya", "46xxsettings.txt", own_file="{mac}.cfg")


def _snom(name: str) -> Model:
    # Wazo's snom plugin: snom<model>.htm per model, <MAC>.xml per phone.
    return Model(name, "snom", f"snom{name}.htm", own_file="{MAC}.xml")


# PLANET VIP phones are Fanvil-built and share the Fanvil text format.
# Yealink common files carry a per-model hardware code.
MODELS: Mapping[str, Model] = MappingProxyType(
    {
        m.name.lower(): m
        for m in (
            _fanvil("VIP-1120PT"),
            _fanvil("VIP-2140PT"),
            _fanvil("VIP-1140PT"),
            _fanvil("VIP-2020PT"),
            _fanvil("X1S"),
            _fanvil("X3S"),
            _fanvil("X4"),
            # Wazo's wazo_fanvil serie_x ships 1.12.2 firmware for these two.
            _fanvil("X5S", 1),
            _fanvil("X6", 1),
            _yealink("T46G", 28),
            _yealink("T42G", 29),
            _yealink("T48G", 35),
            _yealink("T41P", 36),
            _yealink("T48S", 65),
            _yealink("T46S", 66),
            _yealink("T42S", 67),
            _yealink("T41S", 68),
            _yealink("T54W", 96),
            _snom("D715"),
            _snom("D735"),
            _snom("D765"),
            _snom("D785"),
            _snom("D865"),
            _grandstream("GXP1628"),
            _grandstream("GXP2170"),
            _grandstream("GRP2614"),
            _polycom("VVX250"),
            _polycom("VVX410"),
            _polycom("VVX450"),
            _polycom("Trio8800"),
            _cisco_spa("SPA504G"),
            _cisco_spa("SPA508G"),
            _cisco_spa("SPA525G2"),
            _gigaset("N670"),
            _gigaset("N870"),
            _panasonic("KX-HDV130"),
            _panasonic("KX-HDV230"),
            _panasonic("KX-TGP600"),
            _avaya("J139"),
            _avaya("J179"),
            _avaya("J189"),
        )
    }
)


def find_model(name: str) -> Model | None:
    return MODELS.get(name.strip().lower())


def model_for_common_file(name: str) -> Model | None:
    """The model whose common file is `name` (case-insensitive)."""
    lower = name.lower()
    for model in MODELS.values():
        if model.common_file.lower() == lower:
            return model
    return None


@dataclass(frozen=True)
class InventoryPhone:
    mac: str  # canonical "00:30:4f:11:3a:f8"
    model: Model
    extension: str
    password: str
    display_name: str
    input_id: str = ""
    line: int = 0
    firmware: str = ""

    @property
    def mac_hex(self) -> str:
        return self.mac.replace(":", "")

    @property
    def layout(self) -> int:
        """The Fanvil config layout for this phone (0 for other vendors)."""
        return firmware_layout(self.firmware, self.model)


def firmware_layout(firmware: str, model: Model) -> int:
    """1 for Fanvil firmware 1.x, 2 for 2.x and later, else the model's default."""
    if model.vendor != "fanvil":
        return 0
    major = firmware.strip().split(".", 1)[0]
    if major.isdigit():
        return 1 if int(major) < 2 else 2
    return model.layout


@dataclass(frozen=True)
class Inventory:
    phones: tuple[InventoryPhone, ...] = ()
    problems: tuple[str, ...] = ()
    source: str = ""
    _by_mac: Mapping[str, InventoryPhone] = field(default_factory=dict, repr=False, compare=False)
    _by_input: Mapping[str, InventoryPhone] = field(default_factory=dict, repr=False, compare=False)
    errors: tuple[str, ...] = ()  # malformed input (`netboot check` exits 1)

    def by_mac(self, mac: str) -> InventoryPhone | None:
        return self._by_mac.get(mac)

    @property
    def macs(self) -> frozenset[str]:
        """The MACs of the rows that parsed (PnP's policy "known")."""
        return frozenset(self._by_mac)

    def by_input(self, input_id: str) -> InventoryPhone | None:
        return self._by_input.get(input_id)

    def models(self) -> list[Model]:
        """Models that at least one phone has, in first-seen order."""
        return list(self._models)

    @functools.cached_property
    def _models(self) -> tuple[Model, ...]:
        return tuple({p.model.name: p.model for p in self.phones}.values())

    def common_layout(self, model: Model) -> int:
        """The layout of `model`'s common file: the one all its phones have
        (firmware column, else the model's default); when they differ, the
        model's default (one common file cannot serve both; `layout_problems`
        says so)."""
        layouts = self._layouts.get(model, set())
        return next(iter(layouts)) if len(layouts) == 1 else model.layout

    @functools.cached_property
    def _layouts(self) -> dict[Model, set[int]]:
        """Per model, the layouts its phones have: once per inventory, not
        once per file rendered (a scan of every phone per request made
        10 000 phones booting at once cost O(n²), issue 18)."""
        out: dict[Model, set[int]] = {}
        for phone in self.phones:
            out.setdefault(phone.model, set()).add(phone.layout)
        return out

    def layout_problems(self) -> list[str]:
        return list(self._layout_problems)

    @functools.cached_property
    def _layout_problems(self) -> tuple[str, ...]:
        out = []
        for model in self.models():
            layouts = self._layouts.get(model, set())
            if len(layouts) > 1:
                out.append(
                    f"{model.name}: phones with firmware 1.x and 2.x share one common file "
                    f"{model.common_file}; it is written for layout {model.layout}"
                )
        return tuple(out)


REQUIRED = ("mac", "model", "extension", "password", "display_name")
COLUMNS = (*REQUIRED, "input_id", "firmware")

# Budgets: a row is a handful of short fields, and the file a few thousand rows.
MAX_LINE = 4096  # characters in one line (csv's own field limit is 128 KiB)
MAX_FILE = 8 << 20  # bytes of inventory read
MAX_REPORTED = 50  # problems kept (and logged); the rest are counted in one line

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _lines(text: str) -> list[str]:
    """Physical lines, split only on CR, LF and CRLF (str.splitlines would also
    split on VT, FF, NEL and U+2028, which must be reported, not obeyed)."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class _Problems:
    """Problems in file order; `errors` are the malformed-input ones (`check` exit 1)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.all: list[str] = []
        self.errors: list[str] = []
        self.more = 0

    def row(self, line: int, message: str) -> None:
        self._add(f"{self.source}:{line}: {message}", False)

    def error(self, line: int, column: int, message: str) -> None:
        self._add(f"{self.source}:{line}:{column}: {message}", True)

    def _add(self, text: str, error: bool) -> None:
        if error and len(self.errors) < MAX_REPORTED:
            self.errors.append(text)
        if len(self.all) >= MAX_REPORTED:
            self.more += 1
        else:
            self.all.append(text)

    def done(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        tail = [f"{self.source}: {self.more} more problem(s) not shown"] if self.more else []
        return tuple(self.all + tail), tuple(self.errors)


def parse_inventory(text: str | bytes, source: str = "inventory") -> Inventory:
    """Rows of a CSV (text, or the file's bytes: UTF-8, a BOM allowed) ->
    Inventory. Problems name `source:line` (a bad row: bad MAC, unknown model,
    duplicate) or `source:line:column` (malformed input: not UTF-8, a line too
    long, broken quoting, a control character); each bad line is skipped and
    every other row still works."""
    if isinstance(text, bytes):
        raw = text[3:] if text.startswith(b"\xef\xbb\xbf") else text
        text = raw.decode("utf-8", "surrogateescape")
    elif text.startswith("\ufeff"):
        text = text[1:]
    phones: list[InventoryPhone] = []
    report = _Problems(source)
    macs: dict[str, int] = {}
    extensions: dict[str, int] = {}
    inputs: dict[str, int] = {}
    first = True
    for line, physical in enumerate(_lines(text), start=1):
        if len(physical) > MAX_LINE:
            report.error(
                line, MAX_LINE + 1, f"line is {len(physical)} characters long, at most {MAX_LINE}"
            )
            continue
        bad = bad_character(physical)
        if bad is not None:
            field_no = len(next(csv.reader([physical[:bad] + "x"]), [""]))
            what = "not UTF-8: " if 0xDC80 <= ord(physical[bad]) <= 0xDCFF else ""
            column_name = COLUMNS[field_no - 1] if field_no <= len(COLUMNS) else f"#{field_no}"
            report.error(
                line,
                bad + 1,
                f"{what}{describe_character(physical[bad])} in field {column_name}; "
                "the row is skipped",
            )
            continue
        try:
            row = next(csv.reader([physical], strict=True), [])
        except csv.Error as exc:
            quote = physical.find('"')
            why = str(exc)
            if "end of data" in why:
                why = "a quoted field is not closed on its line (a field may not span lines)"
            report.error(line, quote + 1 if quote >= 0 else 1, f"malformed CSV: {why}")
            continue
        cells = [c.strip() for c in row]
        if not cells or all(c == "" for c in cells) or cells[0].startswith("#"):
            continue
        if first:
            first = False
            if cells[0].lower() == "mac":
                continue
        if len(cells) > len(COLUMNS):
            report.row(line, f"{len(cells)} columns, at most {len(COLUMNS)} expected")
            continue
        values = dict(zip(COLUMNS, cells + [""] * (len(COLUMNS) - len(cells)), strict=True))
        missing = [c for c in REQUIRED if c != "password" and not values[c]]
        if missing:
            report.row(line, f"missing {', '.join(missing)}")
            continue
        try:
            mac = normalize_mac(values["mac"])
        except ValueError:
            report.row(line, f"bad MAC {values['mac']!r}")
            continue
        model = find_model(values["model"])
        if model is None:
            report.row(
                line,
                f"unknown model {values['model']!r} (known: "
                + ", ".join(m.name for m in MODELS.values())
                + ")",
            )
            continue
        if mac in macs:
            report.row(line, f"duplicate MAC {mac} (first on line {macs[mac]})")
            continue
        ext = values["extension"]
        if ext in extensions:
            report.row(line, f"duplicate extension {ext} (first on line {extensions[ext]})")
            continue
        input_id = values["input_id"]
        firmware = values["firmware"]
        if firmware and not firmware.split(".", 1)[0].isdigit():
            report.row(line, f"firmware {firmware!r} is not a version like 2.10.2.6887")
            continue
        if input_id and input_id in inputs:
            report.row(line, f"duplicate input_id {input_id} (first on line {inputs[input_id]})")
            continue
        macs[mac] = line
        extensions[ext] = line
        if input_id:
            inputs[input_id] = line
        phones.append(
            InventoryPhone(
                mac,
                model,
                ext,
                values["password"],
                values["display_name"],
                input_id,
                line,
                firmware,
            )
        )
    problems, errors = report.done()
    return Inventory(
        tuple(phones),
        problems,
        source,
        MappingProxyType({p.mac: p for p in phones}),
        MappingProxyType({p.input_id: p for p in phones if p.input_id}),
        errors,
    )


def load_inventory(path: Path) -> Inventory:
    """Read the CSV file; an unreadable file is one problem and no phones."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        problem = f"{path}: cannot read inventory: {reason}"
        return Inventory(problems=(problem,), source=str(path), errors=(problem,))
    if len(data) <= MAX_FILE:
        return parse_inventory(data, str(path))
    # Too big: the complete lines of the first MAX_FILE bytes still work.
    data = data[: data.rfind(b"\n", 0, MAX_FILE) + 1]
    inv = parse_inventory(data, str(path))
    line = data.count(b"\n") + 1
    problem = f"{path}:{line}:1: larger than {MAX_FILE >> 20} MiB: this line and the rest not read"
    return replace(inv, problems=(*inv.problems, problem), errors=(*inv.errors, problem))


class InventoryCache:
    """The inventory of a config, re-read when the file changes (mtime, size)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._inventory = Inventory()

    def get(self) -> Inventory:
        if self.path is None:
            return self._inventory
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (-1, -1)
        if stamp != self._stamp:
            self._stamp = stamp
            self._inventory = load_inventory(self.path)
        return self._inventory


def check(config: Config) -> list[str]:
    """`netboot check`: every bad inventory row (validate: warnings)."""
    path = config.phones.inventory
    if path is None:
        return []
    inv = load_inventory(path)
    return [p for p in inv.problems if p not in inv.errors]


def errors(config: Config) -> list[str]:
    """`netboot check`: a malformed inventory (ERROR_CHECKS entry: exit 1)."""
    path = config.phones.inventory
    if path is None:
        return []
    return list(load_inventory(path).errors)
