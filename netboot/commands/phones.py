"""`netboot phones [MAC]`: the phone registry, or one phone's timeline."""

from __future__ import annotations

import argparse
import json
import sys

from netboot.commands.common import Subparsers, add_config_arg, load_or_exit, print_table, when


def register(sub: Subparsers) -> None:
    p = sub.add_parser("phones", help="list phones, or one phone's timeline")
    add_config_arg(p)
    p.add_argument("mac", nargs="?", help="show this phone's timeline")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from netboot.state.registry import RegistryReader
    from netboot.wire import normalize_mac

    config = load_or_exit(args.config)
    registry = RegistryReader(config.appliance.state_dir)
    try:
        if args.mac:
            try:
                mac = normalize_mac(args.mac)
            except ValueError as exc:
                print(f"netboot: {exc}", file=sys.stderr)
                return 2
            phone = registry.phone(mac)
            if phone is None:
                print(f"netboot: no phone {mac} has been seen", file=sys.stderr)
                return 1
            events = registry.timeline(mac)
            if args.json:
                json.dump(
                    {
                        "phone": phone.as_dict(),
                        "timeline": [
                            {
                                "when": e.when,
                                "service": e.service,
                                "kind": e.kind,
                                "detail": dict(e.detail),
                            }
                            for e in events
                        ],
                    },
                    sys.stdout,
                    indent=2,
                )
                print()
                return 0
            print(
                f"{phone.mac}  {phone.ip or '-'}  {phone.vendor or '-'} {phone.model or ''}  "
                f"firmware {phone.firmware or '-'}  state {phone.state}"
                + (f" ({phone.state_detail})" if phone.state_detail else "")
            )
            for e in events:
                print(f"  {when(e.when)}  {e.describe()}")
            return 0
        phones = registry.phones()
        if args.json:
            json.dump([p.as_dict() for p in phones], sys.stdout, indent=2)
            print()
            return 0
        rows = [
            (
                p.mac,
                p.ip,
                " ".join(x for x in (p.vendor, p.model) if x) or None,
                p.firmware,
                when(p.last_seen),
                p.state + (f": {p.state_detail}" if p.state_detail and p.state == "failed" else ""),
            )
            for p in phones
        ]
        print_table(rows, ("MAC", "IP", "VENDOR/MODEL", "FIRMWARE", "LAST SEEN", "STATE"))
        print(f"{len(rows)} phone(s)")
        return 0
    finally:
        registry.close()
