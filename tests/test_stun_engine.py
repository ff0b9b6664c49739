"""STUN engine: table-driven decisions, amplification bounds, rate limit with a stepped clock."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netboot.stun import codec
from netboot.stun import engine as engine_mod
from netboot.stun.codec import (
    AddressAttribute,
    ChangeRequest,
    ErrorCode,
    Fingerprint,
    Padding,
    RawAttribute,
    ResponsePort,
    Software,
    StunMessage,
    UnknownAttributes,
)
from netboot.stun.engine import (
    AMPLIFICATION,
    RateLimiter,
    Site,
    StunEngine,
    respond,
    respond_malformed,
)
from netboot.wire import DecodeError
from tests.test_stun_codec import messages

A1, A2 = IPv4Address("203.0.113.10"), IPv4Address("203.0.113.11")
P1, P2 = 3478, 3479
FULL = Site((A1, A2), (P1, P2))
SINGLE = Site((A1,), (P1,))
CLIENT = (IPv4Address("198.51.100.7"), 40000)
TID12 = bytes(range(12))
TID16 = bytes(range(100, 116))


def req(tid: bytes, *attrs: codec.Attribute, type_: int = codec.BINDING_REQUEST) -> bytes:
    return codec.encode(StunMessage(type_, tid, attrs))


def answer(data: bytes, local: tuple[int, int] = (0, 0), site: Site = FULL):  # type: ignore[no-untyped-def]
    return respond(codec.decode(data), CLIENT, local, site, len(data))


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    local: tuple[int, int]
    site: Site
    socket: tuple[int, int] | None  # None: silence
    kind: str = ""


CASES = [
    Case("classic plain", req(TID16), (0, 0), FULL, (0, 0), "classic"),
    Case(
        "classic change ip+port",
        req(TID16, ChangeRequest(True, True)),
        (0, 0),
        FULL,
        (1, 1),
        "classic",
    ),
    Case(
        "classic change port",
        req(TID16, ChangeRequest(False, True)),
        (1, 1),
        FULL,
        (1, 0),
        "classic",
    ),
    Case(
        "classic change ip", req(TID16, ChangeRequest(True, False)), (0, 1), FULL, (1, 1), "classic"
    ),
    Case("cookie plain", req(TID12), (0, 1), FULL, (0, 1), "binding"),
    Case(
        "cookie change ip+port",
        req(TID12, ChangeRequest(True, True)),
        (1, 0),
        FULL,
        (0, 1),
        "binding",
    ),
    Case("single no change", req(TID12), (0, 0), SINGLE, (0, 0), "binding"),
    Case("single change: silence", req(TID16, ChangeRequest(True, True)), (0, 0), SINGLE, None),
    Case(
        "unknown required attr",
        req(TID12, RawAttribute(0x0031, b"abcd")),
        (0, 0),
        FULL,
        (0, 0),
        "error-420",
    ),
    Case(
        "unknown optional attr ok",
        req(TID12, RawAttribute(0x8031, b"abcd")),
        (0, 0),
        FULL,
        (0, 0),
        "binding",
    ),
    Case(
        "classic unknown attr",
        req(TID16, RawAttribute(0x0031, b"abcd")),
        (0, 0),
        FULL,
        (0, 0),
        "error-420",
    ),
    Case("response is not answered", req(TID12, type_=codec.BINDING_RESPONSE), (0, 0), FULL, None),
    Case(
        "indication is not answered", req(TID12, type_=codec.BINDING_INDICATION), (0, 0), FULL, None
    ),
    Case("other method, cookie: 400", req(TID12, type_=0x0003), (0, 0), FULL, (0, 0), "error-400"),
    Case("other method, classic: silence", req(TID16, type_=0x0002), (0, 0), FULL, None),
    Case(
        "padding + response-port: 400",
        req(TID12, Padding(8), ResponsePort(5000)),
        (0, 0),
        FULL,
        (0, 0),
        "error-400",
    ),
    Case("response port 0: silence", req(TID12, ResponsePort(0)), (0, 0), FULL, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decisions(case: Case) -> None:
    reply = answer(case.data, case.local, case.site)
    if case.socket is None:
        assert reply is None
        return
    assert reply is not None
    assert reply.socket == case.socket
    assert reply.kind == case.kind
    msg = codec.decode(reply.data)
    assert msg.transaction_id == codec.decode(case.data).transaction_id
    if case.kind.startswith("error-"):
        assert msg.type == codec.BINDING_ERROR or msg.message_class == 3
        err = msg.get(ErrorCode)
        assert err is not None and err.code == int(case.kind[-3:])
        if err.code == 420:
            unknown = msg.get(UnknownAttributes)
            assert unknown is not None and 0x0031 in unknown.types
        return
    assert msg.type == codec.BINDING_RESPONSE
    mapped = msg.address(codec.MAPPED_ADDRESS)
    assert mapped is not None and (mapped.address, mapped.port) == CLIENT
    origin_type = codec.SOURCE_ADDRESS if msg.classic else codec.RESPONSE_ORIGIN
    origin = msg.address(origin_type)
    assert origin is not None
    assert (origin.address, origin.port) == case.site.endpoint(case.socket)
    other_type = codec.CHANGED_ADDRESS if msg.classic else codec.OTHER_ADDRESS
    other = msg.address(other_type)
    if case.site.full:
        # always the other IP and other port relative to the receiving socket
        assert other is not None
        assert (other.address, other.port) == case.site.endpoint(
            (1 - case.local[0], 1 - case.local[1])
        )
    else:
        assert other is None
    if not msg.classic:
        xor = msg.address(codec.XOR_MAPPED_ADDRESS)
        assert xor is not None and (xor.address, xor.port) == CLIENT


def test_classic_reply_is_parseable_by_rfc3489_clients() -> None:
    """Every attribute length a multiple of 4, only RFC 3489 types, 16-byte tid echoed."""
    data = req(TID16, ChangeRequest(False, False), Padding(40))  # big enough for SOFTWARE
    reply = answer(data)
    assert reply is not None
    assert reply.data[4:20] == TID16
    pos, types = 20, []
    while pos < len(reply.data):
        t = int.from_bytes(reply.data[pos : pos + 2], "big")
        length = int.from_bytes(reply.data[pos + 2 : pos + 4], "big")
        assert length % 4 == 0, hex(t)
        types.append(t)
        pos += 4 + length
    assert pos == len(reply.data)
    assert set(types) <= {
        codec.MAPPED_ADDRESS,
        codec.SOURCE_ADDRESS,
        codec.CHANGED_ADDRESS,
        codec.SOFTWARE,
    }
    assert codec.SOFTWARE in types


def test_classic_error_reason_and_unknown_list_padded() -> None:
    data = req(TID16, RawAttribute(0x0031, b"abcd"))
    reply = answer(data)
    assert reply is not None
    msg = codec.decode(reply.data)
    err, unknown = msg.get(ErrorCode), msg.get(UnknownAttributes)
    assert err is not None and len(err.reason.encode()) % 4 == 0
    assert unknown is not None and len(unknown.types) % 2 == 0


def test_fingerprint_only_when_asked() -> None:
    plain = answer(req(TID12))
    asked = answer(req(TID12, Fingerprint()))
    assert plain is not None and asked is not None
    assert codec.decode(plain.data).get(Fingerprint) is None
    assert codec.decode(asked.data).get(Fingerprint) is not None


def test_response_port_changes_port_only() -> None:
    reply = answer(req(TID12, ResponsePort(5555)))
    assert reply is not None
    assert reply.destination == (CLIENT[0], 5555)


def test_padding_echoed() -> None:
    data = req(TID12, Padding(500))
    reply = answer(data)
    assert reply is not None
    pad = codec.decode(reply.data).get(Padding)
    assert pad == Padding(500)
    assert len(reply.data) <= len(data) + 100


def test_software_dropped_to_stay_within_amplification_budget() -> None:
    site = Site((A1, A2), (P1, P2), software="x" * 60)
    small = req(TID12)
    reply = respond(codec.decode(small), CLIENT, (0, 0), site, len(small))
    assert reply is not None
    assert codec.decode(reply.data).get(Software) is None
    assert len(reply.data) <= AMPLIFICATION * len(small)
    big = req(TID12, Padding(64))
    reply = respond(codec.decode(big), CLIENT, (0, 0), site, len(big))
    assert reply is not None and codec.decode(reply.data).get(Software) == Software("x" * 60)


@given(st.binary(min_size=0, max_size=300))
@settings(max_examples=400)
def test_garbage_gets_at_most_an_error(data: bytes) -> None:
    try:
        msg = codec.decode(data)
    except DecodeError as exc:
        reply = respond_malformed(data, exc, CLIENT, (0, 0))
    else:
        reply = respond(msg, CLIENT, (0, 0), FULL, len(data))
    if reply is None:
        return
    assert reply.destination[0] == CLIENT[0]
    assert len(reply.data) <= max(AMPLIFICATION * len(data), 0)
    out = codec.decode(reply.data)
    assert out.message_class in (2, 3)


def test_malformed_binding_gets_400_and_garbage_silence() -> None:
    good = req(TID12, Software("abc"))
    broken = good[:20] + b"\x80\x22\x00\x03\xff\xfe\xfd\x00"  # SOFTWARE not UTF-8
    broken = broken[:2] + (len(broken) - 20).to_bytes(2, "big") + broken[4:]
    with pytest.raises(DecodeError) as info:
        codec.decode(broken)
    reply = respond_malformed(broken, info.value, CLIENT, (0, 1))
    assert reply is not None and reply.kind == "error-400" and reply.socket == (0, 1)
    err = codec.decode(reply.data).get(ErrorCode)
    assert err is not None and err.code == 400
    for junk in (b"hello world, this is not stun", b"\x16\x03\x01" + bytes(40)):
        assert respond_malformed(junk, DecodeError("x"), CLIENT, (0, 0)) is None
    fp_bad = bytearray(req(TID12, Fingerprint()))
    fp_bad[-1] ^= 0xFF
    with pytest.raises(codec.FingerprintMismatch) as fp_info:
        codec.decode(bytes(fp_bad))
    assert respond_malformed(bytes(fp_bad), fp_info.value, CLIENT, (0, 0)) is None


# --- rate limit, stepped clock ---------------------------------------------------

STEPS = [
    # (time, source, expected allowed)
    *[(0.0, "198.51.100.1", True)] * 20,
    (0.0, "198.51.100.1", False),
    (0.0, "198.51.100.2", True),  # another source has its own bucket
    (0.05, "198.51.100.1", False),  # 0.05 s * 10/s = half a token
    (0.1, "198.51.100.1", True),  # one token back
    (0.1, "198.51.100.1", False),
    (10.0, "198.51.100.1", True),
]


def test_rate_limit_stepped_clock() -> None:
    limiter = RateLimiter(10.0)
    for now, ip, expected in STEPS:
        assert limiter.allow(int(IPv4Address(ip)), now) is expected, (now, ip)


def test_rate_limit_memory_bounded() -> None:
    from netboot.stun import engine

    limiter = RateLimiter(100.0)
    for i in range(engine.MAX_SOURCES + 10):
        limiter.allow(0x0A000000 + i, 0.0)
    assert len(limiter) <= engine.MAX_SOURCES
    # stale buckets are dropped once full again
    limiter.allow(int(IPv4Address("192.0.2.1")), 100.0)
    assert len(limiter) <= engine.MAX_SOURCES


def test_engine_applies_rate_limit() -> None:
    eng = StunEngine(FULL, rate_limit=1.0)
    data = req(TID12)
    msg = codec.decode(data)
    answered = sum(eng.handle(msg, len(data), CLIENT, (0, 0), 0.0) is not None for _ in range(50))
    assert answered == 20  # the minimum burst
    assert eng.handle(msg, len(data), CLIENT, (0, 0), 1.0) is not None


def test_mapped_address_is_source() -> None:
    reply = answer(req(TID12))
    assert reply is not None
    assert codec.decode(reply.data).address(codec.XOR_MAPPED_ADDRESS) == AddressAttribute(
        codec.XOR_MAPPED_ADDRESS, *CLIENT
    )


@given(messages())
@settings(max_examples=400)
def test_any_valid_message_never_amplified(msg: StunMessage) -> None:
    msg = StunMessage(codec.BINDING_REQUEST, msg.transaction_id, msg.attributes)
    data = codec.encode(msg)
    for site in (FULL, SINGLE):
        reply = respond(codec.decode(data), CLIENT, (0, 0), site, len(data))
        if reply is None:
            continue
        assert reply.destination[0] == CLIENT[0]
        assert len(reply.data) <= AMPLIFICATION * len(data)
        assert codec.decode(reply.data).transaction_id == msg.transaction_id


# --- the bare-request fast path: the same answers as the full path -------------------


@settings(max_examples=200, deadline=None)
@given(
    tid=st.binary(min_size=12, max_size=12),
    classic_tid=st.binary(min_size=16, max_size=16),
    classic=st.booleans(),
    ip=st.integers(0, 2**32 - 1),
    port=st.integers(1, 65535),
    local=st.sampled_from(FULL.sockets),
    single=st.booleans(),
)
def test_bare_fast_path_equals_full_path(
    tid: bytes,
    classic_tid: bytes,
    classic: bool,
    ip: int,
    port: int,
    local: tuple[int, int],
    single: bool,
) -> None:
    site = SINGLE if single else FULL
    local = (0, 0) if single else local
    engine = StunEngine(site, 1e9)
    source = (IPv4Address(ip), port)
    warm = bytes(12) if not classic else bytes(16)
    # the memo is filled by another transaction first, then reused for this one
    for request_tid in (warm, classic_tid if classic else tid):
        msg = StunMessage(codec.BINDING_REQUEST, request_tid, ())
        data = codec.encode(msg)
        assert engine_mod.is_bare(data)
        fast = engine.handle_bare(data, source, local, 0.0)
        full = respond(msg, source, local, site, len(data))
        assert full is not None and fast is not None
        assert fast == (full.data, full.kind)
        assert (full.socket, full.destination) == (local, source)
        assert codec.decode(fast[0]).transaction_id == request_tid


def test_bare_fast_path_is_rate_limited_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_mod, "MAX_BARE", 50)
    engine = StunEngine(FULL, 10.0)
    data = codec.encode(StunMessage(codec.BINDING_REQUEST, bytes(12), ()))
    answered = sum(engine.handle_bare(data, CLIENT, (0, 0), 0.0) is not None for _ in range(100))
    assert answered == engine.limiter.burst  # the same bucket as `handle`
    assert engine.handle(codec.decode(data), 20, CLIENT, (0, 0), 0.0) is None
    engine.limiter = RateLimiter(1e9)
    for port in range(1, 200):
        assert engine.handle_bare(data, (CLIENT[0], port), (0, 0), 0.0) is not None
        assert len(engine._bare) <= 50


@pytest.mark.parametrize(
    "data",
    [
        bytes(20),  # not a Binding request
        b"\x00\x01\x00\x04" + codec.COOKIE_BYTES + bytes(12),  # says it has attributes
        b"\x00\x01\x00\x00" + bytes(15),  # too short
        b"\x01\x01\x00\x00" + codec.COOKIE_BYTES + bytes(12),  # a response
    ],
)
def test_only_bare_requests_take_the_fast_path(data: bytes) -> None:
    assert not engine_mod.is_bare(data)
