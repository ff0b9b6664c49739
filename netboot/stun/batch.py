"""Many datagrams per system call: recvmmsg(2) and sendmmsg(2) through ctypes.

A STUN answer costs far less than the two system calls around it, so the
transport reads up to `size` datagrams with one recvmmsg and sends the answers
with one sendmmsg. `Batch` owns fixed buffers for one IPv4 UDP socket: after
`recv` returns n, datagram i is `data(i)`, its source the 16-byte sockaddr_in
at `names[i*16:(i+1)*16]`; answers are staged with `stage` and sent with
`send`. Each buffer slot holds SLOT bytes (longer datagrams are truncated, as
recvfrom(SLOT) would). `available()` is False where libc has no recvmmsg (the
transport then reads one datagram at a time).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
from typing import Any

SLOT = 2048
NAME = 16  # sizeof(struct sockaddr_in)
_AGAIN = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR})


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


def _load() -> tuple[Any, Any] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        recvmmsg, sendmmsg = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recvmmsg.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    ]
    recvmmsg.restype = ctypes.c_int
    sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    sendmmsg.restype = ctypes.c_int
    return recvmmsg, sendmmsg


_CALLS = _load()


def available() -> bool:
    return _CALLS is not None


class _Side:
    """`size` message headers, each with one iovec onto its SLOT and a name."""

    def __init__(self, size: int) -> None:
        self.raw = bytearray(size * SLOT)
        self.names_raw = bytearray(size * NAME)
        self.iov_raw = bytearray(size * ctypes.sizeof(_IoVec))
        self.msgs_raw = bytearray(size * ctypes.sizeof(_MMsgHdr))
        # ctypes views onto the bytearrays (they also pin them: no resizing)
        self._buf = (ctypes.c_char * len(self.raw)).from_buffer(self.raw)
        self._names = (ctypes.c_char * len(self.names_raw)).from_buffer(self.names_raw)
        self._iov = (_IoVec * size).from_buffer(self.iov_raw)
        self._msgs = (_MMsgHdr * size).from_buffer(self.msgs_raw)
        base, names = ctypes.addressof(self._buf), ctypes.addressof(self._names)
        for i in range(size):
            self._iov[i].iov_base = base + i * SLOT
            self._iov[i].iov_len = SLOT
            hdr = self._msgs[i].msg_hdr
            hdr.msg_name = names + i * NAME
            hdr.msg_namelen = NAME
            hdr.msg_iov = ctypes.addressof(self._iov[i])
            hdr.msg_iovlen = 1
        self.address = ctypes.addressof(self._msgs)
        self.buf = memoryview(self.raw)
        self.names = memoryview(self.names_raw)
        self.iov_len = memoryview(self.iov_raw).cast("L")  # size_t on Linux; [2*i + 1]: slot i
        self.msg_len = memoryview(self.msgs_raw).cast("I")  # [i*LEN_STRIDE + LEN_INDEX]


LEN_STRIDE = ctypes.sizeof(_MMsgHdr) // 4
LEN_INDEX = _MMsgHdr.msg_len.offset // 4
_MSG_SIZE = ctypes.sizeof(_MMsgHdr)


class Batch:
    def __init__(self, size: int = 64) -> None:
        if _CALLS is None:
            raise OSError(errno.ENOSYS, "recvmmsg/sendmmsg are not available")
        self.size = size
        self._in = _Side(size)
        self._out = _Side(size)
        self.names = self._in.names
        self.staged = 0
        # For hot loops: datagram i is inbuf[i*SLOT : i*SLOT + lens[i*LEN_STRIDE + LEN_INDEX]]
        self.inbuf = self._in.buf
        self.lens = self._in.msg_len

    def recv(self, fd: int) -> int:
        """Datagrams now waiting on `fd` (non-blocking), up to `size`; 0: none."""
        assert _CALLS is not None
        side = self._in
        n: int = _CALLS[0](fd, side.address, self.size, socket.MSG_DONTWAIT, None)
        if n < 0:
            err = ctypes.get_errno()
            if err in _AGAIN:
                return 0
            raise OSError(err, os.strerror(err))
        return n

    def length(self, i: int) -> int:
        return self._in.msg_len[i * LEN_STRIDE + LEN_INDEX]

    def data(self, i: int) -> bytes:
        """Datagram i of the last `recv`."""
        size = self._in.msg_len[i * LEN_STRIDE + LEN_INDEX]
        return self._in.buf[i * SLOT : i * SLOT + size].tobytes()

    def source(self, i: int) -> tuple[str, int]:
        """(host, port) of datagram i."""
        name = self.names[i * NAME : i * NAME + 8]
        return socket.inet_ntoa(name[4:8]), int.from_bytes(name[2:4], "big")

    def stage(self, data: bytes, to: int) -> None:
        """Queue `data` (<= SLOT bytes) for the source of received datagram `to`."""
        j = self.staged
        out = self._out
        out.buf[j * SLOT : j * SLOT + len(data)] = data
        out.iov_len[2 * j + 1] = len(data)
        out.names[j * NAME : j * NAME + NAME] = self.names[to * NAME : to * NAME + NAME]
        self.staged = j + 1

    def send(self, fd: int) -> tuple[int, list[tuple[tuple[str, int], int]]]:
        """Send what is staged: (datagrams sent, [(destination, errno)] of those
        the kernel refused). A full send buffer drops the rest, as UDP would."""
        assert _CALLS is not None
        count, self.staged = self.staged, 0
        sent, k = 0, 0
        failed: list[tuple[tuple[str, int], int]] = []
        out = self._out
        while k < count:
            r: int = _CALLS[1](fd, out.address + k * _MSG_SIZE, count - k, socket.MSG_DONTWAIT)
            if r > 0:
                sent += r
                k += r
                continue
            err = ctypes.get_errno() if r < 0 else errno.EAGAIN
            if err in _AGAIN:
                break
            name = out.names[k * NAME : k * NAME + 8]
            failed.append(((socket.inet_ntoa(name[4:8]), int.from_bytes(name[2:4], "big")), err))
            k += 1  # skip the datagram the kernel refused, send the rest
        return sent, failed
