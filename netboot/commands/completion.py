"""`netboot completion SHELL`: the shell completion script (install.sh installs it)."""

from __future__ import annotations

import argparse

from netboot.commands.common import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "completion", help="print a shell completion script (install.sh installs it)"
    )
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shtab

    from netboot.cli import build_parser

    print(shtab.complete(build_parser(), shell=args.shell), end="")
    return 0
