"""nat-check pieces that need no namespace: pystun3's loop on error responses is
fenced off, server parsing, advice wording, exit codes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

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
