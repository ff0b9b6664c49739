"""One module per `netboot` subcommand.

Each module `netboot/commands/<name>.py` has `register(sub)`, which adds its
parser to the `netboot` subparsers and sets `func` (args -> exit code). The
modules are listed here, explicitly, in the order `netboot --help` shows them;
cli.build_parser registers each. No import-by-string: a new command is a new
module and one line below. A command module is thin: it parses, calls the
domain package that does the work, and prints (netboot.commands.common has
the config argument, the config loading and the table).
"""

from __future__ import annotations

from typing import Protocol

from netboot.commands import (
    check,
    completion,
    export,
    lab,
    leases,
    manpage,
    nat_check,
    neighbors,
    phone,
    phones,
    render,
    serve,
    status,
)
from netboot.commands.common import Subparsers


class Command(Protocol):
    """What cli.build_parser needs of a command module."""

    def register(self, sub: Subparsers) -> None: ...


COMMANDS: tuple[Command, ...] = (
    serve,
    check,
    leases,
    phones,
    nat_check,
    render,
    phone,
    neighbors,
    status,
    lab,
    export,
    completion,
    manpage,
)
