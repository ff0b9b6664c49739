"""The inventory's MACs for pnp.policy "known", re-read when the file changes.

The rows are parsed and checked as everywhere (netboot.provisioning.inventory);
this only says when the set changed and which rows were bad. `check` is what
`netboot check` says of the PnP section beyond the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from netboot.provisioning.inventory import InventoryCache, load_inventory

if TYPE_CHECKING:
    from netboot.config import Config


@dataclass(frozen=True)
class Changed:
    macs: frozenset[str]
    errors: tuple[str, ...]
    path: Path


class KnownMacs:
    def __init__(self) -> None:
        self._inventory = InventoryCache(None)
        self.macs: frozenset[str] = frozenset()

    def refresh(self, config: Config) -> Changed | None:
        """The new set when the file changed, else None (and nothing read
        unless the policy is "known" with an inventory)."""
        path = config.phones.inventory
        if config.pnp.policy != "known" or path is None:
            return None
        if self._inventory.path != path:
            self._inventory = InventoryCache(path)
        inventory = self._inventory.get()
        if inventory.macs == self.macs:
            return None
        self.macs = inventory.macs
        return Changed(inventory.macs, tuple(inventory.errors), path)


def check(config: Config) -> list[str]:
    """`netboot check` problems of the PnP section that need more than the file."""
    pnp = config.pnp
    if not pnp.enabled:
        return []
    problems: list[str] = []
    if pnp.policy == "known":
        path = config.phones.inventory
        if path is None:
            problems.append(
                'pnp.policy: "known" needs phones.inventory (no phone would be answered)'
            )
        elif not load_inventory(path).macs:
            problems.append(f'pnp.policy: "known" but {path} lists no valid phone')
    if pnp.allowed_sources == ():
        problems.append("pnp.allowed_sources: empty, so no phone is answered")
    return problems
