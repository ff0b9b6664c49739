"""The open-file limit follows the TFTP and HTTP budgets (run in a child
process: the limit is the process's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from netboot.config import parse_config
from netboot.fdlimit import RESERVE, needed

REPO = Path(__file__).resolve().parent.parent
BASE = {"appliance": {"interface": "lo"}, "dhcp": {"enabled": False}}


def test_needed_counts_what_is_enabled() -> None:
    # A TFTP transfer: its socket. An HTTP connection: its socket and the
    # file it sends; HTTP and HTTPS share http.max_connections.
    config = parse_config({**BASE, "tftp": {"max_sessions": 100}, "http": {"https_port": 0}})
    assert needed(config) == RESERVE + 100 + 2 * 1024
    config = parse_config({**BASE, "tftp": {"enabled": False}, "http": {"https_port": 8443}})
    assert needed(config) == RESERVE + 2 * 1024
    config = parse_config({**BASE, "tftp": {"enabled": False}, "http": {"enabled": False}})
    assert needed(config) == RESERVE


def test_soft_limit_raised_towards_the_budget() -> None:
    child = """
import resource
from netboot.config import parse_config
from netboot.fdlimit import needed, raise_descriptor_limit
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096))
config = parse_config({"appliance": {"interface": "lo"}, "dhcp": {"enabled": False},
                       "http": {"https_port": 0}})
raise_descriptor_limit(config)
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], needed(config))
"""
    out = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, cwd=REPO, check=True
    )
    soft, want = map(int, out.stdout.split())
    assert soft == min(want, 4096) and soft > 256
