"""A minimal 802.1Q access/trunk switch in user space, for kernels without
802.1Q (no 8021q module, no bridge vlan_filtering, no tc vlan action).

    python3 tests/vlan_switch.py TRUNK PORT=VID ... [--seconds N]

Run inside one namespace. A frame arriving on an access port PORT=VID goes out
on TRUNK tagged with VID (IEEE 802.1Q-2018 §9: TPID 0x8100, TCI = PCP(3) DEI(1)
VID(12)); VID 0 means the native VLAN: forwarded untagged. A frame arriving on
TRUNK goes out, tag removed, on the access port of its VID (untagged: the
native port); frames of other VIDs, and tagged frames arriving on access
ports, are dropped. Link-local groups (LLDP, CDP, STP) are forwarded like
anything else, as a phone-side switch port in front of the appliance would.

The receiving kernel strips a VLAN tag before a packet socket sees the frame
(it is reported in PACKET_AUXDATA instead), so the VID is read from there, or
from the frame itself where a tag is still inline. Prints "ready" once all
sockets are open; exits after --seconds (bounded by design).
"""

from __future__ import annotations

import select
import socket
import sys
import time

from netboot.lab.vlan import (
    AUXDATA,
    ETH_P_ALL,
    PACKET_AUXDATA,
    PACKET_OUTGOING,
    SOL_PACKET,
    add_tag,
    frame_vid,
)


def open_port(name: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((name, ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    return sock


def receive(sock: socket.socket) -> tuple[bytes, int | None] | None:
    """One frame without its tag, and the VID it was tagged with (None: untagged);
    None for our own transmissions."""
    data, ancillary, _, address = sock.recvmsg(65536, socket.CMSG_SPACE(AUXDATA.size))
    if address[2] == PACKET_OUTGOING:
        return None
    return frame_vid(data, ancillary)


def main(argv: list[str]) -> int:
    seconds = 120.0
    if "--seconds" in argv:
        at = argv.index("--seconds")
        seconds = float(argv[at + 1])
        del argv[at : at + 2]
    trunk_name, *specs = argv
    trunk = open_port(trunk_name)
    access: dict[int, socket.socket] = {}  # VID (0: native) -> port
    vid_of: dict[socket.socket, int] = {}
    for spec in specs:
        name, _, vid_text = spec.partition("=")
        sock = open_port(name)
        access[int(vid_text)] = sock
        vid_of[sock] = int(vid_text)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    sockets = [trunk, *vid_of]
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select(sockets, [], [], left)
        for sock in readable:
            got = receive(sock)
            if got is None:
                continue
            frame, vid = got
            if sock is trunk:
                out = access.get(vid or 0)
                if out is not None:
                    out.send(frame)
            elif vid is None:
                port_vid = vid_of[sock]
                trunk.send(add_tag(frame, port_vid) if port_vid else frame)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
