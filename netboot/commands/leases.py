"""`netboot leases`: the DHCP leases in the state directory."""

from __future__ import annotations

import argparse
import json
import sys
import time

from netboot.commands.common import Subparsers, add_config_arg, load_or_exit, print_table, when


def register(sub: Subparsers) -> None:
    p = sub.add_parser("leases", help="list DHCP leases")
    add_config_arg(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="also expired, released and declined")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from netboot.state.leases import read_leases

    config = load_or_exit(args.config)
    now = time.time()
    leases = read_leases(config.appliance.state_dir)
    if not args.all:
        leases = [lease for lease in leases if lease.active(now)]
    if args.json:
        out = [
            {
                "ip": str(lease.address),
                "mac": lease.mac,
                "state": lease.state if lease.expires > now else "expired",
                "expires": lease.expires,
                "hostname": lease.hostname,
            }
            for lease in leases
        ]
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    rows = [
        (
            lease.address,
            lease.mac,
            lease.state if lease.expires > now or lease.state != "bound" else "expired",
            when(lease.expires),
            lease.hostname,
        )
        for lease in leases
    ]
    print_table(rows, ("IP", "MAC", "STATE", "EXPIRES", "HOSTNAME"))
    print(f"{len(rows)} lease(s)")
    return 0
