"""`netboot export kea`: netboot's DHCP config as a kea-dhcp4 configuration
(netboot/kea/export.py), one file, or one per peer of a hot-standby pair."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from netboot.commands.common import Subparsers, add_config_arg, load_or_exit
from netboot.kea.export import (
    CONTROL_SOCKET,
    HOOKS_DIR,
    LEASE_FILE,
    ExportError,
    ExportOptions,
    HaTiming,
    export,
    parse_peer,
)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("export", help="write another server's configuration from netboot's")
    p.add_argument("target", choices=("kea",), help="kea: a kea-dhcp4 (2.2) configuration")
    add_config_arg(p)
    p.add_argument(
        "--ha-peer",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="an HA hot-standby peer and its HA listener URL (twice: primary, then standby)",
    )
    p.add_argument("--out", help="directory to write into (default: print to stdout)")
    p.add_argument(
        "--control-socket",
        default=CONTROL_SOCKET,
        help=f"Kea's control socket ({{name}}: the peer's name; default {CONTROL_SOCKET})",
    )
    p.add_argument(
        "--lease-file",
        default=LEASE_FILE,
        help=f"Kea's memfile ({{name}}: the peer's name; default {LEASE_FILE})",
    )
    p.add_argument("--hooks-dir", default=HOOKS_DIR, help=f"default {HOOKS_DIR}")
    timing = HaTiming()
    p.add_argument("--heartbeat-delay", type=int, default=timing.heartbeat_delay_ms, help="ms")
    p.add_argument(
        "--max-response-delay", type=int, default=timing.max_response_delay_ms, help="ms"
    )
    p.add_argument("--max-ack-delay", type=int, default=timing.max_ack_delay_ms, help="ms")
    p.add_argument("--max-unacked-clients", type=int, default=timing.max_unacked_clients)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    try:
        options = ExportOptions(
            control_socket=args.control_socket,
            lease_file=args.lease_file,
            hooks_dir=args.hooks_dir,
            peers=tuple(parse_peer(p) for p in args.ha_peer),
            timing=HaTiming(
                args.heartbeat_delay,
                args.max_response_delay,
                args.max_ack_delay,
                args.max_unacked_clients,
            ),
        )
        files = export(config, options)
    except ExportError as exc:
        print(f"netboot: export kea: {exc}", file=sys.stderr)
        return 1
    if args.out is None:
        if len(files) > 1:
            print("netboot: export kea: an HA pair is two files: give --out DIR", file=sys.stderr)
            return 1
        print(json.dumps(next(iter(files.values())), indent=2))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (out / name).write_text(json.dumps(body, indent=2) + "\n")
        print(out / name)
    return 0
