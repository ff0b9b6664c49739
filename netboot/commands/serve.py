"""`netboot serve`: every enabled service in the foreground (netboot.app)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from netboot.commands.common import Subparsers, add_config_arg, validated


def register(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="run every enabled service in the foreground")
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from netboot import app

    config = validated(args.config, warn=logging.getLogger("netboot").warning)
    if config is None:
        return 1
    try:
        return asyncio.run(app.run(config))
    except OSError as exc:
        print(f"netboot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
