"""The lab's user-space VLAN sidecar (netboot/lab/vlan.py).

Pure parts: tag handling. In namespaces: the real sidecar between a trunk
and a voice port, frames sent and read with raw sockets on either side.
"""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netboot.lab.cli import inside
from netboot.lab.vlan import (
    AUXDATA,
    PACKET_AUXDATA,
    SOL_PACKET,
    TP_STATUS_VLAN_VALID,
    VlanSidecar,
    add_tag,
    frame_vid,
)
from tests.netns import Lab

ETHERTYPE = 0x88B5  # IEEE 802 local experimental: only the test's frames
PHONE = bytes.fromhex("00304f000001")
SERVER = bytes.fromhex("020000000001")


def frame(dst: bytes, src: bytes, payload: bytes) -> bytes:
    return dst + src + struct.pack("!H", ETHERTYPE) + payload.ljust(46, b"\x00")


def test_tag_is_inserted_after_the_addresses() -> None:
    f = frame(SERVER, PHONE, b"hello")
    tagged = add_tag(f, 100)
    assert tagged[12:16] == bytes.fromhex("8100a064")  # PCP 5, VID 100
    assert frame_vid(tagged, []) == (f, 100)


def test_vid_from_auxdata_when_the_kernel_stripped_the_tag() -> None:
    f = frame(SERVER, PHONE, b"x")
    aux = AUXDATA.pack(TP_STATUS_VLAN_VALID, len(f), len(f), 14, 0, 5 << 13 | 100, 0x8100)
    assert frame_vid(f, [(SOL_PACKET, PACKET_AUXDATA, aux)]) == (f, 100)
    no_tag = AUXDATA.pack(0, len(f), len(f), 14, 0, 0, 0)
    assert frame_vid(f, [(SOL_PACKET, PACKET_AUXDATA, no_tag)]) == (f, None)


@given(st.binary(max_size=64), st.integers(1, 4094))
def test_any_bytes_give_a_frame_and_a_vid_or_none(data: bytes, vid: int) -> None:
    out, got = frame_vid(data, [])
    assert (out, got) == (data, None) or (
        got is not None and len(out) == len(data) - 4 and 0 <= got <= 4095
    )
    if len(data) >= 14:  # a frame: addresses and a type
        assert frame_vid(add_tag(data, vid), []) == (data, vid)


def _raw(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.bind((ifname, 0x0003))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.settimeout(10)
    return sock


def _next_test_frame(sock: socket.socket) -> tuple[bytes, int | None]:
    """The next of the test's frames arriving (not sent) on `sock`, and its VID."""
    while True:
        data, anc, _, address = sock.recvmsg(4096, socket.CMSG_SPACE(AUXDATA.size))
        if address[2] == socket.PACKET_OUTGOING:
            continue
        got, vid = frame_vid(data, anc)
        if got[12:14] == struct.pack("!H", ETHERTYPE):
            return got, vid


@pytest.mark.netns
def test_sidecar_joins_vlan_100_to_the_voice_port(lab: Lab) -> None:
    app = lab.netns("app")
    wire = lab.netns("wire")
    lab.link(app, "eth0", wire, "sw")
    app.batch(
        [
            "link add eth0.100 type veth peer name vl100",
            "link set vl100 promisc on",
            "link set vl100 up",
            "link set eth0.100 up",
        ]
    )
    sidecar = VlanSidecar("eth0", "vl100", 100)
    with inside(app):
        sidecar.open()
        voice = _raw("eth0.100")
        untagged = _raw("eth0")
    with inside(wire):
        switch = _raw("sw")
    sidecar.start()
    try:
        # Another VLAN and untagged frames stay out of the voice port; a
        # VLAN 100 frame arrives there untagged (and is the first to arrive).
        switch.send(add_tag(frame(SERVER, PHONE, b"vlan 200"), 200))
        switch.send(frame(SERVER, PHONE, b"untagged"))
        switch.send(add_tag(frame(SERVER, PHONE, b"vlan 100"), 100))
        got, vid = _next_test_frame(voice)
        assert (got, vid) == (frame(SERVER, PHONE, b"vlan 100"), None)
        # eth0 itself gets all three as sent: only VLAN 100 is diverted.
        seen = [_next_test_frame(untagged) for _ in range(3)]
        assert [(f[14:22], v) for f, v in seen] == [
            (b"vlan 200", 200), (b"untagged", None), (b"vlan 100", 100)
        ]  # fmt: skip

        # What the appliance sends out of eth0.100 leaves eth0 tagged 100.
        voice.send(frame(PHONE, SERVER, b"reply"))
        got, vid = _next_test_frame(switch)
        assert (got, vid) == (frame(PHONE, SERVER, b"reply"), 100)
        assert sidecar.counts.to_port == 1 and sidecar.counts.to_trunk >= 1
    finally:
        sidecar.close()
        for sock in (voice, untagged, switch):
            sock.close()
    assert sidecar.trunk is None and sidecar.port is None
