"""Active URI: drive phones from the appliance (PLANET guide chapter 5).

A phone's web server performs `GET /cgi-bin/ConfigManApp.com?key=K1;K2;...`
(keys pressed in order, or `Reboot`, `DNDOn`, ..., and `Autoprovision` to
fetch its config again) for a client with the admin credentials, and answers
200. The configs netboot renders restrict Active URI to this appliance's
address.

`netboot phone -c FILE ACTION TARGET...` sends that GET to many phones at once
(bounded concurrency), Basic auth first (what `http://user:pass@phone/...`
does) and Digest (RFC 7616, MD5 or SHA-256, qop=auth) when the phone
challenges for it; it prints a progress bar on stderr for many phones and a
summary table. A failure (timeout, refused, 401, any other status) is
reported for that phone and changes nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, TextIO
from urllib.parse import quote

import aiohttp

from netboot.config import Config
from netboot.http.auth import parse_params
from netboot.wire import normalize_mac

PATH = "/cgi-bin/ConfigManApp.com"
ACTIONS = ("reboot", "reprovision", "key")
ACTION_KEYS = {"reboot": "Reboot", "reprovision": "Autoprovision"}

# Chapter 5 keys (plus Autoprovision from the field); digits may be grouped ("8311").
NAMED_KEYS = frozenset(
    {
        "OK", "ENTER", "SPEAKER", "RELEASE", "F_TRANSFER", "VOLUME_UP", "VOLUME_DOWN",
        "MUTE", "F_CFWD", "F_HOLD", "F_CANCEL", "X", "POUND", "F_CONFERENCE", "MSG",
        "F_PBOOK", "HEADSET", "F_HEADSET", "RD", "UP", "DOWN", "LEFT", "RIGHT", "Reboot",
        "DNDOn", "DNDOff", "F_LOCK", "Autoprovision",
    }
)  # fmt: skip
_KEY_PATTERNS = (
    re.compile(r"^[0-9*]+$"),
    re.compile(r"^D([1-9]|[1-3][0-9]|40)$"),
    re.compile(r"^F[1-4]$"),
)


def parse_keys(text: str) -> list[str]:
    """`SPEAKER;8311;ENTER` -> keys, or ValueError naming the unknown one."""
    keys = [k.strip() for k in text.split(";") if k.strip()]
    if not keys:
        raise ValueError("no key given")
    for key in keys:
        if key not in NAMED_KEYS and not any(p.match(key) for p in _KEY_PATTERNS):
            raise ValueError(f"unknown key {key!r} (chapter 5 keys: OK, ENTER, SPEAKER, ...)")
    return keys


def key_query(keys: Sequence[str]) -> str:
    return "key=" + ";".join(quote(k, safe="*") for k in keys)


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    label: str  # what the user typed (or the MAC for --all)
    mac: str | None
    ip: str | None  # None: no address known


def _known_addresses(config: Config, now: float) -> dict[str, str]:
    """MAC -> IP from the active leases, then the registry for the rest."""
    from netboot.registry import DB_NAME, open_database, read_phones
    from netboot.state.leases import read_leases

    found: dict[str, str] = {}
    state_dir = config.appliance.state_dir
    newest: dict[str, float] = {}
    for lease in read_leases(state_dir):
        if (
            lease.state == "bound"
            and lease.expires > now
            and lease.updated >= newest.get(lease.mac, -1.0)
        ):
            found[lease.mac] = str(lease.address)
            newest[lease.mac] = lease.updated
    if (state_dir / DB_NAME).exists():
        conn = open_database(state_dir)
        try:
            for phone in read_phones(conn):
                if phone.ip and phone.mac not in found:
                    found[phone.mac] = phone.ip
        except Exception:  # no phones table yet
            pass
        finally:
            conn.close()
    return found


def resolve_targets(
    config: Config, names: Sequence[str], all_phones: bool, now: float
) -> list[Target]:
    """MACs, IPs or --all -> targets (ValueError for something that is neither)."""
    addresses = _known_addresses(config, now)
    by_ip = {ip: mac for mac, ip in addresses.items()}
    targets: list[Target] = []
    seen: set[str] = set()

    def add(target: Target) -> None:
        key = target.ip or target.mac or target.label
        if key not in seen:
            seen.add(key)
            targets.append(target)

    for name in names:
        try:
            ip = str(IPv4Address(name))
        except ValueError:
            pass
        else:
            add(Target(name, by_ip.get(ip), ip))
            continue
        try:
            mac = normalize_mac(name)
        except ValueError:
            raise ValueError(f"{name!r} is neither a MAC nor an IPv4 address") from None
        add(Target(name, mac, addresses.get(mac)))
    if all_phones:
        macs = list(addresses)
        if config.phones.inventory is not None:
            from netboot.provisioning.inventory import load_inventory

            macs = [p.mac for p in load_inventory(config.phones.inventory).phones] + macs
        for mac in dict.fromkeys(macs):
            add(Target(mac, mac, addresses.get(mac)))
    return targets


# ---------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class Outcome:
    target: Target
    ok: bool
    result: str  # "200 OK", "timeout", "refused", "401 wrong credentials", ...
    elapsed: float


def digest_authorization(
    challenge: dict[str, str], user: str, password: str, method: str, uri: str, cnonce: str
) -> str | None:
    """The Authorization value answering one Digest challenge (RFC 7616 §3.4), or
    None for an algorithm or qop this client does not do."""
    algorithm = challenge.get("algorithm", "MD5")
    base = algorithm.upper().removesuffix("-SESS")
    hashers: dict[str, Callable[[bytes], str]] = {
        "MD5": lambda b: hashlib.md5(b).hexdigest(),
        "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
    }
    h = hashers.get(base)
    if h is None:
        return None
    realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    if qops and "auth" not in qops:
        return None
    ha1 = h(f"{user}:{realm}:{password}".encode())
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode())
    ha2 = h(f"{method}:{uri}".encode())
    nc = "00000001"
    if qops:
        response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode())
    else:  # RFC 2069
        response = h(f"{ha1}:{nonce}:{ha2}".encode())
    parts = [
        f'username="{user}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f"algorithm={algorithm}",
        f'response="{response}"',
    ]
    if qops:
        parts += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(parts)


def _digest_challenges(headers: Sequence[str]) -> list[dict[str, str]]:
    out = []
    for header in headers:
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() == "digest":
            out.append(parse_params(rest))
    # Prefer SHA-256 (RFC 7616 §3.7), then MD5.
    out.sort(key=lambda c: 0 if c.get("algorithm", "MD5").upper().startswith("SHA-256") else 1)
    return out


async def send_one(
    session: aiohttp.ClientSession,
    target: Target,
    query: str,
    user: str,
    password: str,
    timeout: float,
    port: int = 80,
) -> Outcome:
    start = time.monotonic()

    def done(ok: bool, result: str) -> Outcome:
        return Outcome(target, ok, result, time.monotonic() - start)

    if target.ip is None:
        return done(False, "no address known (no lease, not in the registry)")
    uri = f"{PATH}?{query}"
    host = target.ip if port == 80 else f"{target.ip}:{port}"
    url = f"http://{host}{uri}"
    basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    try:
        async with session.get(
            url, headers={"Authorization": basic}, timeout=client_timeout, allow_redirects=False
        ) as resp:
            await resp.read()
            status, reason = resp.status, resp.reason
            challenges = _digest_challenges(resp.headers.getall("WWW-Authenticate", []))
        if status == 401 and challenges:
            cnonce = os.urandom(8).hex()
            auth = digest_authorization(challenges[0], user, password, "GET", uri, cnonce)
            if auth is None:
                return done(False, "401 unsupported Digest challenge")
            async with session.get(
                url, headers={"Authorization": auth}, timeout=client_timeout, allow_redirects=False
            ) as resp:
                await resp.read()
                status, reason = resp.status, resp.reason
    except TimeoutError:
        return done(False, f"timeout after {timeout:g} s")
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ConnectionRefusedError):
            return done(False, "refused")
        return done(False, f"cannot connect: {exc.os_error.strerror or exc.os_error}")
    except aiohttp.ClientError as exc:
        return done(False, f"error: {exc.__class__.__name__}: {exc}"[:120])
    if status == 401:
        return done(False, "401 wrong credentials")
    return done(200 <= status < 300, f"{status} {reason or ''}".strip())


class Progress:
    """`[#####.....] 12/40` redrawn on one stderr line."""

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.done = 0
        self.failed = 0

    def step(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        filled = self.width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total}  {self.failed} failed")
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


async def send_all(
    targets: Sequence[Target],
    query: str,
    user: str,
    password: str,
    *,
    concurrency: int = 20,
    timeout: float = 5.0,
    port: int = 80,
    progress: Progress | None = None,
) -> list[Outcome]:
    """One GET per target, at most `concurrency` at a time; results in target order."""
    limit = asyncio.Semaphore(max(1, concurrency))
    connector = aiohttp.TCPConnector(limit=max(1, concurrency), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(target: Target) -> Outcome:
            async with limit:
                outcome = await send_one(session, target, query, user, password, timeout, port)
            if progress is not None:
                progress.step(outcome.ok)
            return outcome

        return list(await asyncio.gather(*(one(t) for t in targets)))


# ---------------------------------------------------------------- CLI


def register(subparsers: Any) -> None:
    """`netboot phone -c FILE ACTION TARGET...` (cli.EXTRA_COMMANDS)."""
    from netboot.cli import add_config_arg

    p = subparsers.add_parser(
        "phone",
        help="Active URI: reboot, reprovision or press keys on phones",
        description="ACTION is reboot, reprovision or `key KEY[;KEY...]`; TARGET a MAC or IP.",
    )
    add_config_arg(p)
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("targets", nargs="*", metavar="TARGET", help="MAC or IP (key: KEYS first)")
    p.add_argument("--all", action="store_true", help="every phone in the inventory/registry")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per phone (default 5)")
    p.add_argument("--concurrency", type=int, default=20, help="phones at once (default 20)")
    p.add_argument("--port", type=int, default=80, help="phones' web port (default 80)")
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: for 5+ phones on a terminal)",
    )
    p.add_argument("--json", action="store_true", help="the results as JSON (for scripts)")
    p.set_defaults(func=cmd_phone)


def cmd_phone(args: argparse.Namespace) -> int:
    from netboot.cli import _load, print_table

    config = _load(args.config)
    names = list(args.targets)
    if args.action == "key":
        if not names:
            print("netboot: phone key: give KEY[;KEY...] then targets", file=sys.stderr)
            return 2
        key_text = names.pop(0)
        try:
            keys = parse_keys(key_text)
        except ValueError as exc:
            print(f"netboot: phone: {exc}", file=sys.stderr)
            return 2
    else:
        keys = [ACTION_KEYS[args.action]]
    if not names and not args.all:
        print("netboot: phone: give a MAC, an IP or --all", file=sys.stderr)
        return 2
    try:
        targets = resolve_targets(config, names, args.all, time.time())
    except ValueError as exc:
        print(f"netboot: phone: {exc}", file=sys.stderr)
        return 2
    if not targets:
        print("netboot: phone: no phones known", file=sys.stderr)
        return 1
    show = args.progress == "always" or (
        args.progress == "auto" and len(targets) >= 5 and sys.stderr.isatty()
    )
    progress = Progress(len(targets), sys.stderr) if show else None
    outcomes = asyncio.run(
        send_all(
            targets,
            key_query(keys),
            config.phones.admin_user,
            config.phones.admin_password,
            concurrency=args.concurrency,
            timeout=args.timeout,
            port=args.port,
            progress=progress,
        )
    )
    failed = sum(1 for o in outcomes if not o.ok)
    if args.json:
        json.dump(results_json(outcomes, args.action, keys), sys.stdout, indent=2)
        print()
        return 1 if failed else 0
    rows = [
        (o.target.mac, o.target.ip, "ok" if o.ok else "FAILED", o.result, f"{o.elapsed * 1000:.0f}")
        for o in outcomes
    ]
    print_table(rows, ("MAC", "IP", "STATUS", "ANSWER", "MS"))
    print(f"{len(outcomes) - failed} ok, {failed} failed ({';'.join(keys)})")
    return 1 if failed else 0


def results_json(outcomes: Sequence[Outcome], action: str, keys: Sequence[str]) -> dict[str, Any]:
    """`netboot phone --json`: one object per phone, and the totals."""
    failed = sum(1 for o in outcomes if not o.ok)
    return {
        "action": action,
        "keys": list(keys),
        "ok": len(outcomes) - failed,
        "failed": failed,
        "phones": [
            {
                "target": o.target.label,
                "mac": o.target.mac,
                "ip": o.target.ip,
                "ok": o.ok,
                "result": o.result,
                "ms": round(o.elapsed * 1000),
            }
            for o in outcomes
        ],
    }
