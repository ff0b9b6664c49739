"""`netboot neighbors`: the LLDP/CDP neighbours seen (netboot.lldp.neighbors)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from netboot.commands.common import Subparsers, add_config_arg, load_or_exit, print_table
from netboot.lldp.neighbors import Neighbor, lldpcli_json, read_neighbors, table_rows
from netboot.state.db import open_reader, tolerant


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "neighbors",
        help="LLDP/CDP neighbours the appliance has seen (--json: lldpcli's keys)",
    )
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="as `lldpcli -f json show neighbors`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    now = time.time()
    neighbors: list[Neighbor] = []
    conn = open_reader(config.appliance.state_dir)  # read-only: never creates the database
    if conn is not None:
        try:
            neighbors = tolerant(read_neighbors, conn, [])
        finally:
            conn.close()
    if args.json:
        json.dump(lldpcli_json(neighbors, now), sys.stdout, indent=2)
        print()
        return 0
    print_table(
        table_rows(neighbors, now),
        ("INTERFACE", "VIA", "MAC", "NAME", "PORT", "MGMT IP", "MODEL", "VOICE VLAN", "AGE"),
    )
    print(f"{len(neighbors)} neighbor(s)")
    return 0
