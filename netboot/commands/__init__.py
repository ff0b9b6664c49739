"""One module per `netboot` subcommand.

Each module `netboot/commands/<name>.py` has `register(sub)`, which adds its
parser to the `netboot` subparsers and sets `func` (args -> exit code). The
modules are listed here, explicitly, in the order `netboot --help` shows them;
cli.build_parser registers each. No import-by-string: a new command is a new
module and one line below.
"""

from __future__ import annotations

import argparse
from typing import Protocol

from netboot.commands import export


class Command(Protocol):
    """What cli.build_parser needs of a command module."""

    def register(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


COMMANDS: tuple[Command, ...] = (export,)
