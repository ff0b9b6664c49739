"""TFTP packets (RFC 1350) with option extension (RFC 2347).

Every packet starts with a 2-byte opcode:

    RRQ/WRQ  1/2  filename NUL mode NUL [option NUL value NUL]...   (RFC 1350 §5, RFC 2347)
    DATA     3    block(2) payload(0..blksize)                       (RFC 1350 §5)
    ACK      4    block(2)
    ERROR    5    code(2) message NUL
    OACK     6    [option NUL value NUL]...                          (RFC 2347)

Strings are netascii; they are decoded as Latin-1 so that any byte survives a
round trip. Option names are case-insensitive (RFC 2347): they are kept as
sent, and `ReadRequest.option()` looks them up case-insensitively. The option
values this server understands (blksize RFC 2348, timeout and tsize RFC 2349,
windowsize RFC 7440) are negotiated in `session.py`, not here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from netboot.wire import DecodeError

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6

# RFC 1350 §5 error codes, plus 8 from RFC 2347.
ERR_UNDEFINED = 0
ERR_NOT_FOUND = 1
ERR_ACCESS = 2
ERR_DISK_FULL = 3
ERR_ILLEGAL = 4
ERR_UNKNOWN_TID = 5
ERR_EXISTS = 6
ERR_NO_USER = 7
ERR_OPTIONS = 8

Options = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ReadRequest:
    filename: str
    mode: str = "octet"
    options: Options = ()

    def option(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.options:
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True, slots=True)
class WriteRequest:
    filename: str
    mode: str = "octet"
    options: Options = ()


@dataclass(frozen=True, slots=True)
class Data:
    block: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    block: int


@dataclass(frozen=True, slots=True)
class Error:
    code: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class OptionAck:
    options: Options = ()


Message = ReadRequest | WriteRequest | Data | Ack | Error | OptionAck

_HEAD = struct.Struct("!HH")


def _strings(body: bytes) -> list[str]:
    """NUL-terminated strings; the last must be terminated too."""
    if not body:
        return []
    if body[-1] != 0:
        raise DecodeError("string not NUL-terminated")
    return [part.decode("latin-1") for part in body[:-1].split(b"\0")]


def _options(items: list[str]) -> Options:
    if len(items) % 2:
        raise DecodeError(f"option {items[-1]!r} has no value")
    pairs = tuple((items[i], items[i + 1]) for i in range(0, len(items), 2))
    for key, _ in pairs:
        if not key:
            raise DecodeError("empty option name")
    return pairs


def decode(packet: bytes) -> Message:
    """One TFTP packet -> message, or DecodeError."""
    if len(packet) < 2:
        raise DecodeError(f"TFTP packet of {len(packet)} bytes")
    opcode = packet[0] << 8 | packet[1]
    if opcode in (ACK, DATA):
        if len(packet) < 4:
            raise DecodeError("TFTP DATA/ACK shorter than 4 bytes")
        block = packet[2] << 8 | packet[3]
        if opcode == ACK:
            if len(packet) != 4:
                raise DecodeError(f"TFTP ACK of {len(packet)} bytes")
            return Ack(block)
        return Data(block, bytes(packet[4:]))
    if opcode in (RRQ, WRQ):
        items = _strings(packet[2:])
        if len(items) < 2:
            raise DecodeError("request without filename and mode")
        filename, mode, rest = items[0], items[1], items[2:]
        if not filename:
            raise DecodeError("empty filename")
        if not mode:
            raise DecodeError("empty mode")
        options = _options(rest)
        if opcode == RRQ:
            return ReadRequest(filename, mode, options)
        return WriteRequest(filename, mode, options)
    if opcode == ERROR:
        if len(packet) < 4:
            raise DecodeError("TFTP ERROR shorter than 4 bytes")
        code = packet[2] << 8 | packet[3]
        body = packet[4:]
        # Some stacks omit the message's terminating NUL; accept that.
        message = body[:-1] if body.endswith(b"\0") else body
        if b"\0" in message:
            raise DecodeError("NUL inside TFTP error message")
        return Error(code, message.decode("latin-1"))
    if opcode == OACK:
        return OptionAck(_options(_strings(packet[2:])))
    raise DecodeError(f"unknown TFTP opcode {opcode}")


def _cstr(text: str) -> bytes:
    raw = text.encode("latin-1")
    if b"\0" in raw:
        raise ValueError(f"NUL in TFTP string {text!r}")
    return raw + b"\0"


def encode(message: Message) -> bytes:
    """Message -> bytes (ValueError for values that cannot be encoded)."""
    if isinstance(message, Data):
        return data_packet(message.block, message.payload)
    if isinstance(message, Ack):
        return _HEAD.pack(ACK, message.block)
    if isinstance(message, Error):
        return _HEAD.pack(ERROR, message.code) + _cstr(message.message)
    if isinstance(message, OptionAck):
        return struct.pack("!H", OACK) + b"".join(_cstr(k) + _cstr(v) for k, v in message.options)
    opcode = RRQ if isinstance(message, ReadRequest) else WRQ
    return (
        struct.pack("!H", opcode)
        + _cstr(message.filename)
        + _cstr(message.mode)
        + b"".join(_cstr(k) + _cstr(v) for k, v in message.options)
    )


def data_packet(block: int, payload: bytes) -> bytes:
    """DATA on the hot path, without building a dataclass."""
    return _HEAD.pack(DATA, block & 0xFFFF) + payload


def error_packet(code: int, message: str) -> bytes:
    return encode(Error(code, message))
