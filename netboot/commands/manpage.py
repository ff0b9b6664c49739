"""`netboot manpage`: the netboot(8) manual page (install.sh installs it)."""

from __future__ import annotations

import argparse

from netboot import __version__
from netboot.commands.common import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("manpage", help="print the netboot(8) manual page (install.sh installs it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from argparse_manpage.manpage import Manpage

    from netboot.cli import build_parser

    page = Manpage(
        build_parser(),
        _data={
            "prog": "netboot",
            "description": "phone-provisioning appliance: DHCP, SIP PnP, LLDP-MED, STUN, TFTP/HTTP",
            "long_description": (
                "netboot serves everything an IP-phone deployment needs from one process and one "
                "config file (default /etc/netboot/config.toml). The full documentation is "
                "/usr/share/doc/netboot/README.md; a commented example config is "
                "/usr/share/doc/netboot/examples/config.toml."
            ),
            "version": __version__,
            "project_name": "netboot",
            "manual_section": "8",
            "manual_title": "System Administration",
        },
    )
    print(str(page), end="")
    return 0
