"""nat-check pieces that need no namespace: pystun3's loop on error responses is
fenced off, server parsing, advice wording, exit codes."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netboot.cli import main
from netboot.config import load_config
from netboot.provisioning.render import read_nat_check
from netboot.stun import codec, natcheck
from netboot.stun.codec import ErrorCode, StunMessage


@pytest.fixture
def error_server() -> Iterator[tuple[int, list[int]]]:
    """A loopback UDP server answering every datagram with a 400 error response."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    seen: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(2048)
            except TimeoutError:
                continue
            seen.append(len(data))
            header = codec.peek_header(data)
            if header is None:
                continue
            reply = StunMessage(
                codec.BINDING_ERROR, header.transaction_id, (ErrorCode(400, "Bad "),)
            )
            sock.sendto(codec.encode(reply), addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], seen
    stop.set()
    thread.join(timeout=5)
    sock.close()


def test_error_response_ends_the_test_instead_of_looping(
    error_server: tuple[int, list[int]],
) -> None:
    port, seen = error_server
    started = time.monotonic()
    nat_type, public_ip, public_port = natcheck.classic_test("127.0.0.1", port, "127.0.0.1", 0.3)
    assert nat_type == "Blocked"
    assert public_ip is None and public_port is None
    assert len(seen) == 1  # one request, one error, no resend storm
    assert time.monotonic() - started < 10


def test_no_server_is_blocked() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never read: nothing answers
        result = natcheck.run_check(f"127.0.0.1:{port}", "127.0.0.1", timeout=0.1)
    assert result.nat_type == "blocked"
    assert result.exit_code == natcheck.EXIT_FAILED
    assert "no STUN answer from 127.0.0.1" in result.advice


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("203.0.113.10", ("203.0.113.10", "203.0.113.10", 3478)),
        ("203.0.113.10:3479", ("203.0.113.10", "203.0.113.10", 3479)),
    ],
)
def test_resolve_literal(server: str, expected: tuple[str, str, int]) -> None:
    assert natcheck.resolve(server) == expected


@pytest.mark.parametrize("server", ["203.0.113.10:0", "203.0.113.10:x", "203.0.113.10:70000"])
def test_resolve_bad_port(server: str) -> None:
    with pytest.raises(natcheck.CheckError):
        natcheck.resolve(server)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (
            "symmetric",
            "symmetric NAT: STUN will not help; keep Rport on (SIP1 Enable Rport = 1) and use an SBC or a SIP ALG-free path",
        ),
        (
            "port-restricted-cone",
            "port-restricted cone: enable STUN (SIP1 NAT Type = 1) with this server",
        ),
        ("full-cone", "full cone: enable STUN (SIP1 NAT Type = 1)"),
        ("restricted-cone", "restricted cone: enable STUN (SIP1 NAT Type = 1)"),
        ("open-internet", "STUN is not needed (SIP1 NAT Type = 0)"),
        ("symmetric-udp-firewall", "STUN will not help"),
    ],
)
def test_advice_wording(code: str, words: str) -> None:
    assert words in natcheck.advice(code, "stun.example.net", 3478)


# --- --save: the result kept for the config renderer ---------------------------------


def _result(nat_type: str) -> natcheck.Result:
    code = next(v for v in natcheck.TYPES.values() if v[0] == nat_type)
    return natcheck.Result(
        server="stun.example.org",
        server_ip="203.0.113.10",
        server_port=3479,
        source_ip="10.0.0.2",
        nat_type=code[0],
        label=code[1],
        stun_usable=code[2],
        public_ip="203.0.113.1",
        public_port=40000,
        phone_settings={"STUN Refresh Time": natcheck.REFRESH},
    )


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "netboot.toml"
    path.write_text(
        f'[appliance]\ninterface = "lo"\nstate_dir = "{tmp_path / "state"}"\n'
        "[dhcp]\nenabled = false\n"
    )
    return path


@pytest.mark.parametrize(
    ("nat_type", "exit_code"),
    [("port-restricted-cone", 0), ("symmetric", 1), ("symmetric-udp-firewall", 1)],
)
def test_save_writes_what_the_renderer_reads(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    nat_type: str,
    exit_code: int,
) -> None:
    monkeypatch.setattr(natcheck, "run_check", lambda *a: _result(nat_type))
    config = _config(tmp_path)
    assert main(["nat-check", "-c", str(config), "--save", "--server", "x"]) == exit_code
    out, err = capsys.readouterr()
    assert "NAT type:" in out and "Phones:" in out
    saved_path = tmp_path / "state" / natcheck.SAVE_FILE
    assert f"saved to {saved_path}" in err
    record = json.loads(saved_path.read_text())
    assert record["nat_type"] == nat_type and record["exit_code"] == exit_code
    saved = read_nat_check(load_config(config).appliance.state_dir)
    assert saved == natcheck.SavedCheck(
        nat_type, exit_code == 0, "stun.example.org", 3479, natcheck.REFRESH
    )


def test_failed_check_is_not_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(natcheck, "run_check", lambda *a: _result("blocked"))
    config = _config(tmp_path)
    assert main(["nat-check", "-c", str(config), "--save", "--json", "--server", "x"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["exit_code"] == 2
    assert "not saved" in err
    assert not (tmp_path / "state" / natcheck.SAVE_FILE).exists()


def test_save_without_config_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(natcheck, "run_check", lambda *a: _result("full-cone"))
    missing = tmp_path / "missing.toml"
    assert main(["nat-check", "-c", str(missing), "--save", "--server", "x"]) == 0
    assert "--save needs the config" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[]", '{"nat_type": "blocked"}', '{"nat_type": "weird"}', '{"x": 1}'],
)
def test_saved_check_ignores_unusable_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / natcheck.SAVE_FILE
    path.write_text(text)
    assert natcheck.saved_check(path) is None


def test_saved_check_reads_pystun_wording_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / natcheck.SAVE_FILE
    path.write_text('{"nat_type": "Restric Port NAT", "server_port": 99999}')
    assert natcheck.saved_check(path) == natcheck.SavedCheck(
        "port-restricted-cone", True, "", natcheck.DEFAULT_PORT, natcheck.REFRESH
    )
