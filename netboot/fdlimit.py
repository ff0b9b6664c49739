"""The descriptor budget: a TFTP transfer holds one (its socket: the file is
opened only while a chunk is read, tftp/source.py), an HTTP connection two
while it sends a file (its socket and the file, aiohttp's FileResponse).
HTTP and HTTPS share `http.max_connections` (one `ConnectionBudget`).

`tftp.max_sessions` and `http.max_connections` cap them; the process limit
(RLIMIT_NOFILE) must stay above their sum, or accept() and socket() fail with
"Too many open files" before a budget bites (issue 16). systemd's unit sets
`LimitNOFILE=16384`; run by hand, the soft limit (often 1024) is raised
towards the hard one, and a budget that still does not fit is said once.
"""

from __future__ import annotations

import logging
import resource

from netboot.config import Config

log = logging.getLogger("netboot")

RESERVE = 256  # the services' own sockets, the databases, the log, threads' files
_done = False


def needed(config: Config) -> int:
    total = RESERVE
    if config.tftp.enabled:
        total += config.tftp.max_sessions
    if config.http.enabled:
        total += 2 * config.http.max_connections  # HTTPS included: one budget
    return total


def raise_descriptor_limit(config: Config) -> None:
    """Once per process: soft RLIMIT_NOFILE up to what the budgets need (as far
    as the hard limit allows), with a warning when that is not enough."""
    global _done
    if _done:
        return
    _done = True
    want = needed(config)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    if soft != resource.RLIM_INFINITY and soft < want:
        log.warning(
            "open-file limit %d is below what tftp.max_sessions and http.max_connections"
            " may use (%d): lower them or raise LimitNOFILE",
            soft,
            want,
        )
