"""What `netboot serve` imports before READY: no module only a command other
than serve needs (each costs start-up time and resident memory in the
server for as long as it runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_serve_path_does_not_import_the_http_client() -> None:
    # What `netboot serve` imports with only DHCP on: the CLI (every
    # command's parser), the composition root, the supervisor, DHCP.
    code = (
        "import sys\n"
        "import netboot.cli, netboot.commands, netboot.app, netboot.supervisor\n"
        "import netboot.dhcp.service\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiohttp'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    # aiohttp's client (~10 MB, ~0.15 s) is for `netboot phone` (Active URI)
    # and the HTTP service; netboot.provisioning.activeuri imports it when sending.
    assert out.strip() == "[]"
