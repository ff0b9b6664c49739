"""Issue 18, boot storms: more phones than `http.max_connections` fetch at
once from `netboot serve` in a namespace, with real `curl` clients. They are
accepted in turn (the rest wait in the listen backlog), never reset."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.hostile import SERVER, HostileSite
from tests.netns import Lab

pytestmark = pytest.mark.netns

CLIENTS = 40
SLOTS = 8


def test_forty_curls_against_eight_connections_all_get_their_file(lab: Lab, tmp_path: Path) -> None:
    site = HostileSite(lab, tmp_path, http_connections=SLOTS)
    sources = [f"192.168.10.{200 + i}" for i in range(CLIENTS)]  # outside the pool: 40 phones
    site.phone.batch([f"addr add {ip}/24 dev eth0" for ip in sources])
    fds_before = site.fds()
    paused = site.metric("netboot_limited_total", service="http", budget="accept-paused")
    size = len(site.firmware)
    # Each download is read at 128 kB/s (~2 s for the 256 kB file), so they
    # overlap: 40 at once against 8 slots.
    script = " ".join(
        f"curl -sS -o /dev/null --interface {ip} --limit-rate 128k --max-time 60"
        f" -w '{ip} %{{http_code}} %{{size_download}}\\n' http://{SERVER}/fw.bin &"
        for ip in sources
    )
    started = time.monotonic()
    storm = lab.spawn(
        site.phone,
        ["sh", "-c", f"{script} wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    fds: list[int] = []
    while storm.poll() is None and time.monotonic() - started < 90:
        fds.append(site.fds())
        time.sleep(0.05)
    out, err = storm.communicate(timeout=10)
    took = time.monotonic() - started
    lines = sorted(out.split("\n")[:-1])
    assert lines == sorted(f"{ip} 200 {size}" for ip in sources), (out, err)
    # They waited their turn: 5 rounds of ~2 s, not one 60 s curl timeout.
    assert took < 40, took
    # The cap bit (netboot stopped accepting) and held: at most 8
    # connections open at once, each with the file it sends open (a few
    # descriptors of slack: the /metrics connection, SQLite files).
    assert site.metric("netboot_limited_total", service="http", budget="accept-paused") > paused
    assert max(fds) <= fds_before + 2 * SLOTS + 4, (max(fds), fds_before)
    log = site.server.log()
    assert "Traceback" not in log, log[-3000:]
