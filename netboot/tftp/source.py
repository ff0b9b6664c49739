"""Where a TFTP transfer's blocks come from (the session's `BlockSource`).

Files are read in chunks with `os.pread` as blocks are needed (a 32 MB
firmware costs a chunk of memory per transfer, not 32 MB); rendered files are
bytes already. A transfer holds no open file between chunks: the file is
opened for each chunk and must still be the same file (inode, size, mtime).
netascii transfers convert line ends in memory (RFC 1350 appendix;
config-sized files only).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

from netboot.tftp.session import BlockSource

CHUNK = 256 * 1024
MAX_NETASCII = 1024 * 1024  # netascii is for config files; firmware goes octet


class FileChunks:
    """`BlockSource` over a file: one aligned chunk cached at a time, the file
    opened only while a chunk is read. Block 1 is read alone: until a client
    answers, its session holds one block, not a chunk."""

    def __init__(self, path: str | os.PathLike[str], identity: os.stat_result) -> None:
        self.path = path
        self.identity = _identity(identity)
        self.start = 0
        self.data = b""

    def __call__(self, offset: int, length: int) -> bytes:
        end = offset + length
        if not (self.start <= offset and end <= self.start + len(self.data)):
            start = offset - offset % CHUNK
            need = length if offset == 0 else max(CHUNK, end - start)
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _identity(os.fstat(fd)) != self.identity:
                    return b""  # replaced or changed: the session reports it
                self.data = os.pread(fd, need, start)
            finally:
                os.close(fd)
            self.start = start
        return self.data[offset - self.start : end - self.start]


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def netascii(data: bytes) -> bytes:
    """RFC 1350/RFC 764: CR -> CR NUL, LF -> CR LF."""
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


def bytes_source(data: bytes) -> BlockSource:
    view = memoryview(data)

    def read(offset: int, length: int) -> bytes:
        return bytes(view[offset : offset + length])

    return read


def from_file(path: str | os.PathLike[str]) -> tuple[BlockSource, int]:
    """A file read in chunks as blocks are needed, and its size."""
    st = os.stat(path)
    return FileChunks(path, st), st.st_size


def in_memory(open_file: Callable[[], BinaryIO], mode: str) -> tuple[BlockSource, int]:
    """A file (or rendered bytes) read whole, as netascii when `mode` says so, and its size."""
    with open_file() as handle:
        raw = handle.read()
    data = netascii(raw) if mode == "netascii" else raw
    return bytes_source(data), len(data)
