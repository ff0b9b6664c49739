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
its line number and skipped; every other row still works.

`MODELS` lists the models netboot has templates for: their vendor (which
template family renders them) and the name of their common file.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from netboot.wire import normalize_mac

if TYPE_CHECKING:
    from netboot.config import Config


@dataclass(frozen=True)
class Model:
    name: str
    vendor: str  # template family: "fanvil" | "yealink"
    common_file: str
    layout: int = 0  # Fanvil firmware generation its config is written for (1 or 2)


def _fanvil(name: str, layout: int = 2) -> Model:
    return Model(name, "fanvil", f"f0{name}hw1.100.cfg", layout)


def _yealink(name: str, code: int) -> Model:
    return Model(name, "yealink", f"y0000000000{code:02d}.cfg")


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

    def by_mac(self, mac: str) -> InventoryPhone | None:
        return self._by_mac.get(mac)

    def by_input(self, input_id: str) -> InventoryPhone | None:
        return self._by_input.get(input_id)

    def models(self) -> list[Model]:
        """Models that at least one phone has, in first-seen order."""
        return list({p.model.name: p.model for p in self.phones}.values())

    def common_layout(self, model: Model) -> int:
        """The layout of `model`'s common file: the one all its phones have
        (firmware column, else the model's default); when they differ, the
        model's default (one common file cannot serve both; `layout_problems`
        says so)."""
        layouts = {p.layout for p in self.phones if p.model == model}
        return layouts.pop() if len(layouts) == 1 else model.layout

    def layout_problems(self) -> list[str]:
        out = []
        for model in self.models():
            layouts = {p.layout for p in self.phones if p.model == model}
            if len(layouts) > 1:
                out.append(
                    f"{model.name}: phones with firmware 1.x and 2.x share one common file "
                    f"{model.common_file}; it is written for layout {model.layout}"
                )
        return out


REQUIRED = ("mac", "model", "extension", "password", "display_name")
COLUMNS = (*REQUIRED, "input_id", "firmware")


def parse_inventory(text: str, source: str = "inventory") -> Inventory:
    """Rows of a CSV text -> Inventory (problems name `source:line`)."""
    phones: list[InventoryPhone] = []
    problems: list[str] = []
    macs: dict[str, int] = {}
    extensions: dict[str, int] = {}
    inputs: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text))
    first = True
    for row in reader:
        line = reader.line_num
        cells = [c.strip() for c in row]
        if not cells or all(c == "" for c in cells) or cells[0].startswith("#"):
            continue
        if first:
            first = False
            if cells[0].lower() == "mac":
                continue
        where = f"{source}:{line}"
        if len(cells) > len(COLUMNS):
            problems.append(f"{where}: {len(cells)} columns, at most {len(COLUMNS)} expected")
            continue
        values = dict(zip(COLUMNS, cells + [""] * (len(COLUMNS) - len(cells)), strict=True))
        missing = [c for c in REQUIRED if c != "password" and not values[c]]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        try:
            mac = normalize_mac(values["mac"])
        except ValueError:
            problems.append(f"{where}: bad MAC {values['mac']!r}")
            continue
        model = find_model(values["model"])
        if model is None:
            problems.append(
                f"{where}: unknown model {values['model']!r} (known: "
                + ", ".join(m.name for m in MODELS.values())
                + ")"
            )
            continue
        if mac in macs:
            problems.append(f"{where}: duplicate MAC {mac} (first on line {macs[mac]})")
            continue
        ext = values["extension"]
        if ext in extensions:
            problems.append(f"{where}: duplicate extension {ext} (first on line {extensions[ext]})")
            continue
        input_id = values["input_id"]
        firmware = values["firmware"]
        if firmware and not firmware.split(".", 1)[0].isdigit():
            problems.append(f"{where}: firmware {firmware!r} is not a version like 2.10.2.6887")
            continue
        if input_id and input_id in inputs:
            problems.append(
                f"{where}: duplicate input_id {input_id} (first on line {inputs[input_id]})"
            )
            continue
        if any(ch in v for v in values.values() for ch in "\r\n"):
            problems.append(f"{where}: line break inside a field")
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
    return Inventory(
        tuple(phones),
        tuple(problems),
        source,
        MappingProxyType({p.mac: p for p in phones}),
        MappingProxyType({p.input_id: p for p in phones if p.input_id}),
    )


def load_inventory(path: Path) -> Inventory:
    """Read the CSV file; an unreadable file is one problem and no phones."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Inventory(problems=(f"{path}: cannot read inventory: {reason}",), source=str(path))
    return parse_inventory(text, str(path))


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
    """`netboot check`: every bad inventory row (EXTRA_CHECKS entry)."""
    path = config.phones.inventory
    if path is None:
        return []
    return list(load_inventory(path).problems)
