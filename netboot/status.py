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

import argparse
import asyncio
import base64
import json
import sys
from typing import Any

from netboot.http.overview import uptime_text

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


def print_status(status: dict[str, Any]) -> None:
    from netboot.cli import print_table

    print(
        f"{status['appliance']}: netboot {status['version']}, up {uptime_text(status['uptime'])}: "
        f"{status['status']}"
    )
    for alarm in status.get("alarms", []):
        print(f"ALARM: {alarm}")
    print()
    print_table(
        [(name, h["state"], h["detail"] or None) for name, h in status["services"].items()],
        ("SERVICE", "STATE", "DETAIL"),
    )
    if status.get("pools"):
        print()
        print_table(
            [
                (
                    p["interface"],
                    p["pool"],
                    p["bound"],
                    p["declined"],
                    p["free"],
                    f"{p['percent']} %",
                )
                for p in status["pools"]
            ],
            ("INTERFACE", "POOL", "BOUND", "DECLINED", "FREE", "USED"),
        )
    unseen = status.get("unseen_inventory")
    if unseen is not None:
        print()
        print(f"{len(unseen)} inventory phone(s) never seen")
        if unseen:
            print_table(
                [(u["mac"], u["model"], u["extension"], u["display_name"]) for u in unseen],
                ("MAC", "MODEL", "EXTENSION", "NAME"),
            )


def register(subparsers: Any) -> None:
    """`netboot status -c FILE [--json]` (cli.EXTRA_COMMANDS)."""
    from netboot.cli import add_config_arg

    p = subparsers.add_parser(
        "status",
        help="the running appliance: services, alarms, pools, unseen phones (exit 1 if unwell)",
    )
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="/api/status as it is")
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    import aiohttp

    from netboot.cli import _load

    config = _load(args.config)
    http = config.http
    if not http.enabled:
        print("netboot: status: [http] is disabled, so there is nothing to ask", file=sys.stderr)
        return 2
    try:
        status = asyncio.run(fetch_status(http.port, http.username, http.password))
    except (OSError, TimeoutError, ValueError, aiohttp.ClientError) as exc:
        reason = str(exc) or type(exc).__name__
        print(
            f"netboot: status: netboot serve does not answer on 127.0.0.1:{http.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    if args.json:
        json.dump(status, sys.stdout, indent=2)
        print()
    else:
        print_status(status)
    return 0 if healthy(status) else 1
