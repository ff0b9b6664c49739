"""Log lines: syslog priorities and no timestamps under journald, timestamps
elsewhere; --log-level; one INFO line per lease and per fetched file."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netboot.cli import build_parser, main
from netboot.logformat import (
    JournalFormatter,
    configure_logging,
    syslog_priority,
    under_journal,
)
from netboot.provisioning.files import FileResolver
from tests.netns import REPO, Lab, Segment, server_config, udhcpc_lease, wait_for


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def record(level: int, msg: str, name: str = "netboot.dhcp") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_priorities_follow_sd_daemon() -> None:
    assert [
        syslog_priority(n)
        for n in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG)
    ] == [2, 3, 4, 6, 7]
    fmt = JournalFormatter()
    assert fmt.format(record(logging.INFO, "dhcp: lease")) == "<6>netboot.dhcp: dhcp: lease"
    assert fmt.format(record(logging.WARNING, "x")) == "<4>netboot.dhcp: x"
    assert fmt.format(record(logging.ERROR, "x")) == "<3>netboot.dhcp: x"
    assert fmt.format(record(logging.DEBUG, "x")) == "<7>netboot.dhcp: x"
    # every line of a multi-line message keeps the priority (journald splits lines)
    assert fmt.format(record(logging.ERROR, "one\ntwo")) == "<3>netboot.dhcp: one\n<3>two"
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.LogRecord(
            "netboot", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    lines = fmt.format(rec).splitlines()
    assert len(lines) > 2 and all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>ValueError: boom"


def test_journal_is_recognised_by_journal_stream_or_invocation_id(tmp_path: Path) -> None:
    with (tmp_path / "err").open("w") as stream:
        st = os.fstat(stream.fileno())
        assert under_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        # stderr redirected elsewhere inside a unit: not the journal
        assert not under_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert under_journal(stream, {"INVOCATION_ID": "0123abcd"})
        assert not under_journal(stream, {})
    assert not under_journal(io.StringIO(), {"INVOCATION_ID": "x"})  # no file descriptor


def test_configured_handler_formats_for_journal_or_terminal(
    tmp_path: Path, restore_root: None
) -> None:
    path = tmp_path / "log"
    with path.open("w") as stream:
        st = os.fstat(stream.fileno())
        configure_logging(logging.INFO, stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        logging.getLogger("netboot.tftp").info("served")
        logging.getLogger("netboot.tftp").debug("hidden")
        configure_logging(logging.WARNING, stream, {})  # replaces the first handler
        logging.getLogger("netboot.tftp").info("hidden too")
        logging.getLogger("netboot.tftp").warning("slow")
    lines = path.read_text().splitlines()
    assert lines[0] == "<6>netboot.tftp: served"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING netboot.tftp: slow", lines[1]
    )
    assert len(lines) == 2


def test_log_level_option(
    restore_root: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    assert parser.parse_args(["--log-level", "warning", "leases"]).log_level == "warning"
    with pytest.raises(SystemExit):
        parser.parse_args(["--log-level", "loud", "leases"])
    assert "--log-level" in parser.format_help()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[appliance]\ninterface = "lo"\nstate_dir = "{tmp_path}"\n[dhcp]\nenabled = false\n'
    )
    assert main(["--log-level", "error", "leases", "-c", str(config)]) == 0
    assert logging.getLogger().level == logging.ERROR
    assert main(["-v", "leases", "-c", str(config)]) == 0
    assert logging.getLogger().level == logging.DEBUG
    assert main(["-v", "--log-level", "warning", "leases", "-c", str(config)]) == 0
    assert logging.getLogger().level == logging.WARNING  # the explicit level wins


def test_one_info_line_per_fetched_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "00304f113af8.cfg").write_text("x" * 912)
    resolver = FileResolver(root, bind_mac_files=False)
    with caplog.at_level(logging.INFO, logger="netboot.files"):
        resolver.record(resolver.resolve("00304f113af8.cfg", "192.168.10.100"), "tftp", sent=912)
        resolver.record(resolver.resolve("missing.cfg", "192.168.10.100"), "http")
    assert [r.getMessage() for r in caplog.records if r.name == "netboot.files"] == [
        "tftp: 00:30:4f:11:3a:f8 (192.168.10.100) fetched 00304f113af8.cfg: ok, 912 of 912 bytes",
        "http: unknown MAC (192.168.10.100) fetched missing.cfg: not-found, 0 of 0 bytes",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records)


@pytest.mark.netns
def test_serve_under_journald_logs_leases_and_fetches_with_priorities(
    lab: Lab, tmp_path: Path
) -> None:
    wire = Segment(lab, {"srv": "192.0.2.1/24", "cli": None})
    srv, cli = wire["srv"], wire["cli"]
    root = tmp_path / "files"
    root.mkdir()
    (root / "f0VIP-2140PThw1.100.cfg").write_text("common\n" * 100)
    config = tmp_path / "netboot.toml"
    body = """
[dhcp]
subnet = "192.0.2.0/24"
pool = "192.0.2.100-192.0.2.110"
guard_probe = 1
[[dhcp.class]]
name = "planet"
vendor = "PLANET"
[tftp]
"""
    url = "tftp://192.0.2.1/f0VIP-2140PThw1.100.cfg"
    config.write_text(server_config(body, state=tmp_path / "state", url=url, root=root))
    log = tmp_path / "journal.log"
    with log.open("wb") as out:
        st = os.fstat(out.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        proc = lab.spawn(
            srv,
            [sys.executable, "-m", "netboot.cli", "serve", "-c", str(config)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for(lambda: "<6>netboot: status: serving dhcp" in log.read_text(), 20, "dhcp serving")
    lease = udhcpc_lease(cli, tmp_path, args=["-V", "PLANET VIP-2140PT"], configure=True)
    cli.run(
        [
            "busybox",
            "tftp",
            "-g",
            "-r",
            "f0VIP-2140PThw1.100.cfg",
            "-l",
            str(tmp_path / "got"),
            "192.0.2.1",
        ]
    )
    mac = cli.run(["cat", "/sys/class/net/eth0/address"]).stdout.strip()
    wait_for(lambda: "fetched" in log.read_text(), 10, "the fetch line")
    proc.terminate()
    wait_for(lambda: proc.poll() is not None, 15, "netboot to stop")
    lines = log.read_text().splitlines()
    assert all(re.match(r"<[2-7]>netboot[\w.]*: ", line) for line in lines), lines
    assert not any(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", line) for line in lines)  # no timestamps
    leases = [line for line in lines if " lease " in line]
    assert leases == [
        f"<6>netboot.dhcp: dhcp: lease {lease['ip']} to {mac} (selecting) vendor 'PLANET VIP-2140PT' class planet"
    ]
    assert [line for line in lines if "fetched" in line] == [
        f"<6>netboot.files: tftp: {mac} ({lease['ip']}) fetched f0VIP-2140PThw1.100.cfg: ok, 700 of 700 bytes"
    ]
