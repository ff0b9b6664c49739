"""HTTP authentication for the config files: Basic (RFC 7617) and Digest (RFC 7616).

When `http.username`/`password` are set, every file request must carry one of
them. A 401 offers, in order of preference (RFC 7616 §3.7): Digest SHA-256,
Digest MD5, Basic. Digest nonces are stateless: base64(issue time + HMAC of it
under a per-process secret), good for `NONCE_LIFETIME` seconds, after which the
client is challenged again with `stale=true` (RFC 7616 §3.3). qop "auth" (and
the RFC 2069 form without qop, which old phones still send) and the `-sess`
algorithm variants are accepted; nonce-count replay tracking is not kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
import time
from collections.abc import Callable

NONCE_LIFETIME = 300.0
ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
    "MD5": lambda b: hashlib.md5(b).hexdigest(),
}

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)')


def parse_params(text: str) -> dict[str, str]:
    """`k=v, k2="quoted \\" value"` -> dict (keys lowercased)."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _PARAM.match(text, pos)
        if m is None or m.end() == pos:
            break
        value = m.group(2) if m.group(2) is not None else m.group(3)
        out[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    return out


class Authenticator:
    def __init__(
        self,
        username: str,
        password: str,
        realm: str = "netboot",
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.username = username
        self.password = password
        self.realm = realm
        self.secret = secret or os.urandom(32)
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return bool(self.username)

    # ------------------------------------------------------------ nonces

    def make_nonce(self) -> str:
        stamp = struct.pack("!d", self.clock())
        mac = hmac.new(self.secret, stamp, hashlib.sha256).digest()[:16]
        return base64.b64encode(stamp + mac).decode()

    def nonce_state(self, nonce: str) -> str:
        """ "fresh", "stale" or "bad"."""
        try:
            raw = base64.b64decode(nonce, validate=True)
        except ValueError:
            return "bad"
        if len(raw) != 24:
            return "bad"
        stamp, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, hmac.new(self.secret, stamp, hashlib.sha256).digest()[:16]):
            return "bad"
        age = self.clock() - struct.unpack("!d", stamp)[0]
        return "fresh" if -5.0 <= age <= NONCE_LIFETIME else "stale"

    def challenges(self, stale: bool = False) -> list[str]:
        nonce = self.make_nonce()
        opaque = hashlib.sha256(self.secret + b"opaque").hexdigest()[:32]
        out = [
            f'Digest realm="{self.realm}", qop="auth", algorithm={alg}, nonce="{nonce}", '
            f'opaque="{opaque}"' + (", stale=true" if stale else "")
            for alg in ALGORITHMS
        ]
        out.append(f'Basic realm="{self.realm}", charset="UTF-8"')
        return out

    # ------------------------------------------------------------ checking

    def check(self, header: str | None, method: str, uri: str) -> str:
        """ "ok", "stale" (digest with an expired nonce) or "denied"."""
        if not header:
            return "denied"
        scheme, _, rest = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            return "ok" if self._basic(rest.strip()) else "denied"
        if scheme == "digest":
            return self._digest(parse_params(rest), method, uri)
        return "denied"

    def _basic(self, token: str) -> bool:
        try:
            user, sep, password = (
                base64.b64decode(token, validate=True).decode("utf-8").partition(":")
            )
        except (ValueError, UnicodeDecodeError):
            return False
        return bool(sep) and _same(user, self.username) & _same(password, self.password)

    def _digest(self, p: dict[str, str], method: str, uri: str) -> str:
        algorithm = p.get("algorithm", "MD5")
        sess = algorithm.upper().endswith("-SESS")
        base = algorithm[:-5] if sess else algorithm
        hasher = next((h for name, h in ALGORITHMS.items() if name.upper() == base.upper()), None)
        nonce = p.get("nonce", "")
        if (
            hasher is None
            or not _same(p.get("username", ""), self.username)
            or p.get("realm") != self.realm
            or p.get("uri") != uri
            or "response" not in p
        ):
            return "denied"
        qop = p.get("qop")
        if qop not in (None, "auth"):
            return "denied"
        ha1 = hasher(f"{self.username}:{self.realm}:{self.password}".encode())
        if sess:
            ha1 = hasher(f"{ha1}:{nonce}:{p.get('cnonce', '')}".encode())
        ha2 = hasher(f"{method}:{uri}".encode())
        if qop:
            expected = hasher(
                f"{ha1}:{nonce}:{p.get('nc', '')}:{p.get('cnonce', '')}:{qop}:{ha2}".encode()
            )
        else:
            expected = hasher(f"{ha1}:{nonce}:{ha2}".encode())
        if not _same(p["response"].lower(), expected):
            return "denied"
        state = self.nonce_state(nonce)
        if state == "fresh":
            return "ok"
        return "stale" if state == "stale" else "denied"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))
