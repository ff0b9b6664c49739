"""`netboot nat-check`: the NAT type towards a STUN server (netboot.stun.natcheck)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from netboot.commands.common import Subparsers, add_config_arg
from netboot.stun import natcheck
from netboot.stun.natcheck import EXIT_FAILED, CheckError, Result, save


def _default_server(config_path: str) -> str | None:
    from netboot.config import ConfigError, load_config

    try:
        config = load_config(config_path)
    except ConfigError:
        return None
    if config.phones.stun_server:
        return config.phones.stun_server
    if config.stun.addresses:
        return f"{config.stun.addresses[0]}:{config.stun.ports[0]}"
    return None


def run(args: argparse.Namespace) -> int:
    server = args.server or _default_server(args.config)
    if not server:
        print(
            "netboot: nat-check: give --server HOST[:PORT] (or set phones.stun_server)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        result = natcheck.run_check(server, args.source_ip, args.timeout)
    except (CheckError, OSError) as exc:
        print(f"netboot: nat-check: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.save:
        _save(result, args.config)
    if args.json:
        print(json.dumps({**asdict(result), "exit_code": result.exit_code}, indent=2))
        return result.exit_code
    print(f"STUN server:  {result.server_ip}:{result.server_port} ({result.server})")
    print(f"Source:       {result.source_ip}")
    print(f"NAT type:     {result.label}")
    if result.public_ip:
        print(f"Public:       {result.public_ip}:{result.public_port}")
    if result.mapping or result.filtering:
        print(f"Mapping:      {result.mapping or 'unknown'} (RFC 5780)")
        print(f"Filtering:    {result.filtering or 'unknown'} (RFC 5780)")
    print(f"Phones:       {result.advice}")
    return result.exit_code


def _save(result: Result, config_path: str) -> None:
    from netboot.config import ConfigError, load_config

    if result.exit_code == EXIT_FAILED:
        print("netboot: nat-check: the check did not complete: not saved", file=sys.stderr)
        return
    try:
        state_dir = load_config(config_path).appliance.state_dir
        path = save(result, state_dir)
    except ConfigError as exc:
        print(f"netboot: nat-check: --save needs the config: {exc}", file=sys.stderr)
        return
    except OSError as exc:
        print(f"netboot: nat-check: cannot save: {exc}", file=sys.stderr)
        return
    print(f"netboot: nat-check: saved to {path}; `netboot render` now uses it", file=sys.stderr)


def register(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "nat-check",
        help="find the NAT type towards a STUN server and what to set on the phones",
        description="Exit code 0: phones can use STUN; 1: STUN will not help; 2: check failed.",
    )
    add_config_arg(parser)
    parser.add_argument("--server", help="STUN server HOST[:PORT] (default: from the config)")
    parser.add_argument("--source-ip", help="local address to test from (default: the route's)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--save",
        action="store_true",
        help="keep the result in the state directory: rendered phone configs follow it",
    )
    parser.add_argument(
        "--timeout", type=float, default=0.5, help="seconds per try (3-4 tries per test)"
    )
    parser.set_defaults(func=run)
