"""`netboot check`: validate the config (netboot.validate); exit 1 naming each bad key."""

from __future__ import annotations

import argparse

from netboot.commands.common import Subparsers, add_config_arg, validated


def register(sub: Subparsers) -> None:
    p = sub.add_parser("check", help="validate the config; exit 1 naming each bad key")
    add_config_arg(p)
    p.add_argument(
        "--no-host",
        action="store_true",
        help="the file only, not this host's interfaces, addresses and files",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = validated(args.config, host=not args.no_host, strict=True)
    if config is None:
        return 1
    # In the order a phone meets them (not app.SERVICE_NAMES, the start order).
    enabled = [
        s
        for s in ("dhcp", "pnp", "tftp", "http", "ftp", "lldp", "stun")
        if getattr(config, s).enabled
    ]
    print(f"{config.source}: OK ({', '.join(enabled) or 'no service'} enabled)")
    return 0
