"""`netboot status [--json]`: what the running appliance says about itself.

Asks the running `netboot serve` for `/api/status` on 127.0.0.1 (the HTTP
service's port, with the `[http]` credentials when they are set) and prints
the health of every service, the alarms (a service that should run and does
not, another DHCP server on the segment), version and uptime, pool usage and
the inventory phones never seen. Exit status: 0 when every enabled service
runs and nothing is alarming, 1 otherwise or when the daemon does not answer
(usable as a monitoring check), 2 when `[http]` is disabled (nothing to ask).
"""

from __future__ import annotations

import base64
from typing import Any

TIMEOUT = 5.0


async def fetch_status(port: int, username: str, password: str) -> dict[str, Any]:
    import aiohttp

    headers = {}
    if username:  # Basic over loopback (the service takes Basic and Digest)
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"http://127.0.0.1:{port}/api/status", headers=headers) as resp,
    ):
        if resp.status != 200:
            raise OSError(f"HTTP {resp.status} {resp.reason}")
        data: dict[str, Any] = await resp.json()
        return data


def healthy(status: dict[str, Any]) -> bool:
    return not status.get("alarms") and all(
        h.get("state") in ("running", "disabled") for h in status.get("services", {}).values()
    )
