"""Which services run, and how well: one answer for READY's STATUS=, the log,
the status page and the `netboot_service_running` metric.

A service may carry a `health` attribute (a `Health`); one without it runs
once `start` has returned. DHCP, for example, is `starting` while it probes
for other DHCP servers, `not-running` when it refuses to serve because one
answered, and `running` with an `alarm` when one appears later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

RUNNING = "running"
STARTING = "starting"
NOT_RUNNING = "not-running"


@dataclass(frozen=True)
class Health:
    state: str = RUNNING  # running | starting | not-running
    detail: str = ""  # why (starting, not running), or what it serves
    alarm: str = ""  # something the operator must see, while running or not

    def as_dict(self) -> dict[str, str]:
        return {"state": self.state, "detail": self.detail, "alarm": self.alarm}


def health_of(service: Any) -> Health:
    health = getattr(service, "health", None)
    return health if isinstance(health, Health) else Health()


def status_text(services: Iterable[Any]) -> str:
    """`serving tftp, http; dhcp starting (probing ...)`: exactly what runs."""
    pairs = [(str(s.name), health_of(s)) for s in services]
    running = [name for name, h in pairs if h.state == RUNNING]
    parts = [f"serving {', '.join(running)}" if running else "serving nothing"]
    for name, h in pairs:
        if h.state == STARTING:
            parts.append(f"{name} starting ({h.detail})" if h.detail else f"{name} starting")
        elif h.state == NOT_RUNNING:
            parts.append(f"{name} NOT running ({h.detail})" if h.detail else f"{name} NOT running")
    for name, h in pairs:
        if h.alarm:
            parts.append(f"{name} ALARM: {h.alarm}")
    return "; ".join(parts)


def settled(services: Iterable[Any]) -> bool:
    """No service is still starting."""
    return all(health_of(s).state != STARTING for s in services)
