"""The inventory's MACs for pnp.policy "known", re-read when the file changes.

The rows are parsed and checked as everywhere (netboot.provisioning.inventory);
this only says when the set changed and which rows were bad."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from netboot.provisioning.inventory import InventoryCache

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
