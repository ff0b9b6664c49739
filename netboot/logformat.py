"""Log lines for journald or for a terminal.

Under systemd, stderr goes to the journal, which stamps every line itself and
reads a syslog priority from a `<N>` prefix (sd-daemon(3): `<3>` error,
`<4>` warning, `<6>` info, `<7>` debug). So there a line is
`<6>netboot.dhcp: message`, with every line of a multi-line message (a
traceback) carrying the prefix; anywhere else it keeps its own timestamp:
`2026-06-01 12:00:00,000 INFO netboot.dhcp: message`.

The journal is recognised as systemd.exec(5) says: `JOURNAL_STREAM` holds the
device and inode of the stream connected to the journal, and it is stderr;
or, without it, the process runs in a unit (`INVOCATION_ID`) and stderr is no
terminal.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

TERMINAL_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def syslog_priority(levelno: int) -> int:
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


class JournalFormatter(logging.Formatter):
    """`<priority>logger: message`, the prefix on every line, no timestamp."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def under_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Is `stream` connected to the journal?"""
    journal = environ.get("JOURNAL_STREAM", "")
    if journal:
        try:
            st = os.fstat(stream.fileno())
        except (OSError, ValueError):
            return False
        return journal == f"{st.st_dev}:{st.st_ino}"
    if environ.get("INVOCATION_ID"):
        try:
            return not os.isatty(stream.fileno())
        except (OSError, ValueError):
            return False
    return False


def configure_logging(
    level: int,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Install one handler on the root logger; returns it."""
    stream = sys.stderr if stream is None else stream
    environ = os.environ if environ is None else environ
    handler = logging.StreamHandler(stream)
    if under_journal(stream, environ):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter(TERMINAL_FORMAT))
    # Neither format shows the source line, thread or process: skip looking
    # them up on every record (the logging HOWTO's "Optimization"; one INFO
    # line per lease is on the DHCP hot path).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_netboot", False):
            root.removeHandler(old)
    handler._netboot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler
