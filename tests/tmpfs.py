"""A tiny tmpfs for `state_dir`, mounted under a test's temp dir and unmounted
after (root only: tests that need it skip without it, or fail when
NETBOOT_REQUIRE_NETNS asks for every privileged test)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size_kib: int) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        reason = f"cannot mount a tmpfs: {proc.stderr.strip()}"
        if os.environ.get("NETBOOT_REQUIRE_NETNS"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write zeros into `directory/name` until the file system is full."""
    path = directory / name
    chunk = b"\0" * 65536
    with path.open("ab", buffering=0) as raw:
        for size in (65536, 4096, 1):
            while True:
                try:
                    if not raw.write(chunk[:size]):
                        break
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return path


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)
