"""One TFTP read transfer as a state machine without I/O (time passed as `now`).

RFC 1350 lock-step: the server sends DATA n, the client answers ACK n, a DATA
shorter than the block size ends the transfer (a file whose size is a multiple
of the block size ends with an empty DATA). With options (RFC 2347) the server
first sends OACK and the client's ACK 0 starts the data; an ERROR 8 from the
client refuses the options. RFC 7440 windowsize: the server sends up to
`windowsize` blocks, the client ACKs the last one it got in order, and the
server continues after that block (an ACK inside the window means the rest of
it was lost and is resent from there).

- Retransmission: when `deadline` passes without progress, the unacknowledged
  window (or the OACK) is sent again, up to `retries` times, then the transfer
  fails with "timeout". The client's first answer is waited for `first_wait`
  (at least `timeout`). Until the client has answered once (`confirmed`), the
  source address may be spoofed: the timer retransmits at most
  `unconfirmed_retries` times (none by default: RFC 1350 has the client
  retransmit its RRQ, and a repeated RRQ resends the first window), so one
  forged request buys its victim one answer, never a stream of them.
- A client's `timeout` option above `max_timeout` is ignored (RFC 2349 lets
  the server only accept the value or leave the option out of its OACK): a
  session with timeout=255 would hold its socket for over 20 minutes.
- Duplicate or old ACKs are ignored: answering them would start the Sorcerer's
  Apprentice syndrome (RFC 1123 §4.2.3.1).
- Blocks are counted absolutely here; on the wire the number wraps 65535 -> 0
  (what tftp-hpa, curl and U-Boot expect), so files over 32 MB (at 512-byte
  blocks) work. An ACK's 16-bit number is mapped back into the current window.

Block contents come from a `BlockSource` the transport provides (a file read
in chunks, or rendered bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netboot.tftp import codec

DEFAULT_BLKSIZE = 512
MAX_BLKSIZE = 65464  # RFC 2348
MAX_WINDOWSIZE = 64  # RFC 7440 allows 65535; a bounded burst keeps the client's buffer sane
MAX_TIMEOUT = 255  # RFC 2349

# read(offset, length) -> up to `length` bytes at `offset`
BlockSource = Callable[[int, int], bytes]


@dataclass(frozen=True)
class Negotiated:
    blksize: int = DEFAULT_BLKSIZE
    windowsize: int = 1
    timeout: float | None = None
    oack: codec.Options = ()


def negotiate(
    request: codec.ReadRequest,
    size: int,
    max_blksize: int = MAX_BLKSIZE,
    max_timeout: int = MAX_TIMEOUT,
) -> Negotiated:
    """Options this server accepts (RFC 2347 §"Negotiation"): understood and valid
    ones are echoed in the OACK, with the value we use; the rest are ignored.
    A `timeout` over `max_timeout` is left out (RFC 2349 §"Timeout Interval
    Option": the server may only echo the client's value)."""
    blksize, windowsize, timeout = DEFAULT_BLKSIZE, 1, None
    oack: list[tuple[str, str]] = []
    for key, value in request.options:
        name = key.lower()
        try:
            number = int(value)
        except ValueError:
            continue
        if name == "blksize" and number >= 8:  # RFC 2348: 8..65464
            blksize = min(number, max_blksize, MAX_BLKSIZE)
            oack.append((key, str(blksize)))
        elif name == "windowsize" and number >= 1:  # RFC 7440: 1..65535
            windowsize = min(number, MAX_WINDOWSIZE)
            oack.append((key, str(windowsize)))
        elif name == "timeout" and 1 <= number <= min(max_timeout, MAX_TIMEOUT):  # RFC 2349
            timeout = float(number)
            oack.append((key, str(number)))
        elif name == "tsize" and number >= 0:  # RFC 2349: in a RRQ the client sends 0
            oack.append((key, str(size)))
    return Negotiated(blksize, windowsize, timeout, tuple(oack))


class ReadSession:
    """The server side of one RRQ. Call `start`, then `receive` for each packet
    from the client and `on_timer` when `deadline` has passed; each returns the
    packets to send, in order. `done` / `failed` tell how it ended."""

    def __init__(
        self,
        source: BlockSource,
        size: int,
        negotiated: Negotiated,
        *,
        timeout: float = 1.0,
        retries: int = 5,
        unconfirmed_retries: int = 0,
        first_wait: float = 0.0,
    ) -> None:
        self.source = source
        self.size = size
        self.blksize = negotiated.blksize
        self.windowsize = negotiated.windowsize
        self.oack = negotiated.oack
        self.timeout = negotiated.timeout or timeout
        self.retries = retries
        self.unconfirmed_retries = min(unconfirmed_retries, retries)
        # How long a client that has not answered yet is waited for (at least
        # `timeout`): during a boot storm a loaded server sees the first ACK
        # late, and a session ended before it came fails a real phone.
        self.first_wait = first_wait
        # Blocks are 1-based; the last one is shorter than blksize (maybe empty).
        self.last_block = size // self.blksize + 1
        self.acked = 0  # highest block the client has confirmed
        self.sent = 0  # highest block sent so far
        self.tries = 0  # consecutive timeouts without progress
        self.deadline: float | None = None
        self.done = False
        self.failed: str | None = None
        self.bytes_sent = 0  # payload bytes the client has acknowledged
        self._oack_pending = bool(self.oack)
        self.started = 0.0
        self.last_heard = 0.0  # when the client last made progress (or `started`)
        self.confirmed = False  # the client answered once: its address is real

    @property
    def finished(self) -> bool:
        return self.done or self.failed is not None

    @property
    def ending(self) -> str | None:
        """How the transfer ended, for the record (None: it has not):
        "ok"; "unanswered" (the client never answered: a spoofed request or
        a client that left at once, so the address proves nothing and no
        phone's timeline gets it); "client-abort" (the client refused our
        options or the size before any data, and usually retries plainly);
        "timeout" or "aborted" (a phone's failed download)."""
        if self.done:
            return "ok"
        failed = self.failed
        if failed is None:
            return None
        client_error = failed.startswith("client error")
        if not self.confirmed and not client_error:
            return "unanswered"
        if client_error and self.acked == 0:
            return "client-abort"
        return "timeout" if failed == "timeout" else "aborted"

    def start(self, now: float) -> list[bytes]:
        self.started = self.last_heard = now
        self.deadline = now + max(self.timeout, self.first_wait)
        if self._oack_pending:
            return [codec.encode(codec.OptionAck(self.oack))]
        return self._window()

    def _block(self, number: int) -> bytes:
        offset = (number - 1) * self.blksize
        length = max(0, min(self.blksize, self.size - offset))
        payload = self.source(offset, length) if length else b""
        if len(payload) != length:  # the file shrank under us
            raise _SourceShort(number)
        return codec.data_packet(number, payload)

    def _window(self) -> list[bytes]:
        first = self.acked + 1
        last = min(self.acked + self.windowsize, self.last_block)
        try:
            out = [self._block(n) for n in range(first, last + 1)]
        except _SourceShort:
            self.failed = "file changed while being sent"
            self.deadline = None
            return [codec.error_packet(codec.ERR_UNDEFINED, "file changed while being sent")]
        self.sent = max(self.sent, last)
        return out

    def receive(self, message: codec.Message, now: float) -> list[bytes]:
        if self.finished:
            return []
        if isinstance(message, codec.Error):
            self.failed = f"client error {message.code}: {message.message}"
            self.deadline = None
            return []
        if not isinstance(message, codec.Ack):
            self.failed = f"unexpected {type(message).__name__} during a read"
            self.deadline = None
            return [codec.error_packet(codec.ERR_ILLEGAL, "expected an ACK")]
        return self.ack(message.block, now)

    def ack(self, wire_block: int, now: float) -> list[bytes]:
        """An ACK of `wire_block` (its 16-bit number): `receive` for an Ack, and
        the transport's hot path (no message object per block)."""
        if self.done or self.failed is not None:
            return []
        if self._oack_pending:
            if wire_block != 0:
                return []
            self._oack_pending = False
            self.confirmed = True
            self.last_heard = now
            self.tries = 0
            self.deadline = now + self.timeout
            return self._window()
        acked = self.acked
        delta = (wire_block - acked) & 0xFFFF  # the absolute block, within acked..sent
        if delta == 0 or delta > self.sent - acked:
            return []  # duplicate or stale ACK: never answered (Sorcerer's Apprentice)
        block = acked + delta
        self.bytes_sent = min(self.size, block * self.blksize)
        self.acked = block
        self.confirmed = True
        self.last_heard = now
        self.tries = 0
        if block >= self.last_block:
            self.done = True
            self.deadline = None
            return []
        self.deadline = now + self.timeout
        if self.windowsize == 1 and block >= self.sent:  # lock-step: the next block
            try:
                packet = self._block(block + 1)
            except _SourceShort:
                return self._window()  # reports the error
            self.sent = block + 1
            return [packet]
        return self._window()

    def on_timer(self, now: float) -> list[bytes]:
        if self.finished or self.deadline is None or now < self.deadline:
            return []
        self.tries += 1
        if self.tries > (self.retries if self.confirmed else self.unconfirmed_retries):
            self.failed = "timeout"
            self.deadline = None
            return []
        return self._resend(now)

    def request_again(self, now: float) -> list[bytes]:
        """The client sent its RRQ again while this session waits for its first
        answer: our first window (or OACK) was lost. One resend per RRQ, within
        `retries`; once the client has answered, a stray RRQ is ignored."""
        if self.finished or self.confirmed:
            return []
        self.tries += 1
        if self.tries > self.retries:
            self.failed = "timeout"
            self.deadline = None
            return []
        return self._resend(now)

    def _resend(self, now: float) -> list[bytes]:
        wait = self.timeout if self.confirmed else max(self.timeout, self.first_wait)
        self.deadline = now + wait
        if self._oack_pending:
            return [codec.encode(codec.OptionAck(self.oack))]
        return self._window()


class _SourceShort(Exception):
    def __init__(self, block: int) -> None:
        super().__init__(f"block {block} short")
