"""`netboot lab`: a virtual phone VLAN on this host (netboot.lab.cli)."""

from __future__ import annotations

import argparse

from netboot.commands.common import Subparsers
from netboot.lab.cli import DEFAULT_MIX, run_lab
from netboot.lab.phone import VENDORS


def register(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "lab",
        help="a virtual phone VLAN on this host: netboot plus simulated phones (root)",
        description="Create a phone VLAN out of network namespaces, start netboot in it and "
        "boot simulated phones through DHCP, SIP PnP and file fetches. Removes everything "
        "on exit.",
    )
    parser.add_argument("--phones", type=int, default=10, help="how many phones (default 10)")
    parser.add_argument(
        "--mix", default=DEFAULT_MIX, help=f"vendor weights (default {DEFAULT_MIX})"
    )
    parser.add_argument(
        "--vendors",
        action="store_true",
        help=f"a mixed fleet: every family the lab has ({', '.join(VENDORS)}), equal shares",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the lab running after the phones booted"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable results on stdout")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds a phone waits per step (default 30)"
    )
    parser.add_argument("--wrong-file", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--templates",
        metavar="DIR",
        help="template overrides for the lab's netboot (phones.templates): the lab phones "
        "apply what they render, and fail on keys their firmware would ignore",
    )
    parser.set_defaults(func=run_lab)
