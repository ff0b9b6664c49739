"""install.sh's promise: netboot runs in its own venv on Debian's /usr/bin/python3,
with no Debian python3-* package in sight (issue 13: pip's cryptography beside
Debian's python3-openssl crashed the pyftpdlib import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

VENV = Path("/opt/netboot")


@pytest.mark.skipif(not (VENV / "bin" / "python").exists(), reason="install.sh has not run here")
def test_venv_is_debian_python_without_system_packages() -> None:
    probe = (
        "import sys, pyftpdlib.handlers, netifaces, dns.resolver, aiohttp;"
        "print(sys.base_prefix, sys.version_info[:2], any('dist-packages' in p for p in sys.path))"
    )
    out = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    ).stdout.split(None, 1)
    assert out[0] == "/usr", out  # Debian's interpreter, not a newer one found on PATH
    assert out[1].strip().endswith("False"), out  # no Debian site-packages
    assert (VENV / "pyvenv.cfg").read_text().count("include-system-site-packages = false") == 1


def test_tests_run_on_the_venv_interpreter_in_ci() -> None:
    """CI's test command is the venv's python (README): this very process."""
    if not (VENV / "bin" / "python").exists():
        pytest.skip("install.sh has not run here")
    assert Path(sys.prefix).resolve() == VENV.resolve(), sys.prefix
