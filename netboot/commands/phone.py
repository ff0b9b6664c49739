"""`netboot phone ACTION TARGET...`: Active URI (netboot.provisioning.activeuri)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from netboot.commands.common import Subparsers, add_config_arg, load_or_exit, print_table
from netboot.provisioning.activeuri import (
    ACTION_KEYS,
    ACTIONS,
    Progress,
    Target,
    parse_keys,
    protocol_for,
    resolve_targets,
    results_json,
    send_all,
)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "phone",
        help="Active URI: reboot, reprovision or press keys on phones",
        description="ACTION is reboot, reprovision or `key KEY[;KEY...]`; TARGET a MAC or IP.",
    )
    add_config_arg(p)
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("targets", nargs="*", metavar="TARGET", help="MAC or IP (key: KEYS first)")
    p.add_argument("--all", action="store_true", help="every phone in the inventory/registry")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per phone (default 5)")
    p.add_argument("--concurrency", type=int, default=20, help="phones at once (default 20)")
    p.add_argument("--port", type=int, default=80, help="phones' web port (default 80)")
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: for 5+ phones on a terminal)",
    )
    p.add_argument("--json", action="store_true", help="the results as JSON (for scripts)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    names = list(args.targets)
    if args.action == "key":
        if not names:
            print("netboot: phone key: give KEY[;KEY...] then targets", file=sys.stderr)
            return 2
        key_text = names.pop(0)
        try:
            keys = parse_keys(key_text)
        except ValueError as exc:
            print(f"netboot: phone: {exc}", file=sys.stderr)
            return 2
    else:
        keys = [ACTION_KEYS[args.action]]
    if not names and not args.all:
        print("netboot: phone: give a MAC, an IP or --all", file=sys.stderr)
        return 2
    try:
        targets = resolve_targets(config, names, args.all, time.time())
    except ValueError as exc:
        print(f"netboot: phone: {exc}", file=sys.stderr)
        return 2
    if not targets:
        print("netboot: phone: no phones known", file=sys.stderr)
        return 1
    show = args.progress == "always" or (
        args.progress == "auto" and len(targets) >= 5 and sys.stderr.isatty()
    )
    progress = Progress(len(targets), sys.stderr) if show else None
    action = args.action

    def requests(target: Target) -> list[str] | str:
        protocol = protocol_for(target.family)
        if isinstance(protocol, str):
            return protocol
        return protocol.requests(action, keys)

    def user_for(target: Target) -> str:
        protocol = protocol_for(target.family)
        return "" if isinstance(protocol, str) else protocol.user

    def json_for(target: Target) -> bool:
        protocol = protocol_for(target.family)
        return not isinstance(protocol, str) and protocol.json_answer

    outcomes = asyncio.run(
        send_all(
            targets,
            requests,
            config.phones.admin_user,
            config.phones.admin_password,
            concurrency=args.concurrency,
            timeout=args.timeout,
            port=args.port,
            progress=progress,
            user_for=user_for,
            json_for=json_for,
        )
    )
    failed = sum(1 for o in outcomes if not o.ok)
    if args.json:
        json.dump(results_json(outcomes, args.action, keys), sys.stdout, indent=2)
        print()
        return 1 if failed else 0
    rows = [
        (o.target.mac, o.target.ip, "ok" if o.ok else "FAILED", o.result, f"{o.elapsed * 1000:.0f}")
        for o in outcomes
    ]
    print_table(rows, ("MAC", "IP", "STATUS", "ANSWER", "MS"))
    print(f"{len(outcomes) - failed} ok, {failed} failed ({';'.join(keys)})")
    return 1 if failed else 0
