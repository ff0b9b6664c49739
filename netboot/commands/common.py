"""What the command modules share: the config argument, loading the config
with its problems on stderr, and the plain-text table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from netboot.config import Config, ConfigError, load_config

# What `register(sub)` of a command module is given: `netboot`'s subparsers.
if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # not subscriptable at run time
    Subparsers = argparse._SubParsersAction

DEFAULT_CONFIG = "/etc/netboot/config.toml"


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})"
    )


def load_or_exit(path: str) -> Config:
    """The config at `path`, or each of its problems on stderr and exit 1."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"netboot: config: {problem}", file=sys.stderr)
        raise SystemExit(1) from None


def warning(text: str) -> None:
    print(f"netboot: warning: {text}", file=sys.stderr)


def validated(
    path: str, host: bool = True, warn: Callable[[str], None] = warning, strict: bool = False
) -> Config | None:
    """The one validation of check, serve and reload (netboot.validate): each
    error on stderr (then None), each warning to `warn`. What serve runs on
    degraded (a read-only state_dir, malformed inventory lines) is logged as an
    error, and with `strict` (check) is one."""
    import logging

    from netboot.validate import validate

    report = validate(path, host=host)
    for error in report.errors:
        print(f"netboot: {error}", file=sys.stderr)
    for problem in report.degraded:
        if strict:
            print(f"netboot: {problem}", file=sys.stderr)
        else:
            logging.getLogger("netboot").error("%s", problem)
    for text in report.warnings:
        warn(text)
    return None if strict and report.degraded else report.config


def when(ts: float | None) -> str:
    """A timestamp as local `YYYY-mm-dd HH:MM:SS`, `-` for none."""
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def print_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    cells = [
        [str(c) for c in header],
        *[[("-" if c is None else str(c)) for c in row] for row in rows],
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
