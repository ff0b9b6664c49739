"""`netboot status`: ask the running appliance (netboot.status)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from netboot.commands.common import Subparsers, add_config_arg, load_or_exit, print_table
from netboot.http.overview import uptime_text
from netboot.status import fetch_status, healthy


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "status",
        help="the running appliance: services, alarms, pools, unseen phones (exit 1 if unwell)",
    )
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="/api/status as it is")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import aiohttp

    config = load_or_exit(args.config)
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


def print_status(status: dict[str, Any]) -> None:
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
