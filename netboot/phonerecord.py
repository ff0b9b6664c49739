"""What an engine hands back for the registry: one event about one phone.

Engines decide, transports apply: `registry.record(r.mac, service, r.event,
r.detail, **r.facts)`. (Typed per-event classes may replace this; until then
it is the one shape every engine uses.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PhoneRecord:
    mac: str
    event: str
    detail: dict[str, Any]
    facts: dict[str, Any] = field(default_factory=dict)  # registry FACTS: ip, vendor, ...
