"""The `netboot` command: global flags, logging, and dispatch to the
subcommand modules of `netboot.commands` (one module each)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from netboot import __version__
from netboot.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netboot", description="Phone-provisioning appliance")
    parser.add_argument("--version", action="version", version=f"netboot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="log this level and above (default info; -v is --log-level debug)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from netboot.logformat import LEVELS, configure_logging

    args = build_parser().parse_args(argv)
    # journald: `<6>name: message` (it stamps lines itself); else with timestamps
    configure_logging(LEVELS[args.log_level or ("debug" if args.verbose else "info")])
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


def entry() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # `netboot render | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141  # 128 + SIGPIPE, as a shell reports it
    raise SystemExit(code)


if __name__ == "__main__":
    entry()
