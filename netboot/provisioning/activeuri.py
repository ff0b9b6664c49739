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

Each phone is spoken to in its family's protocol (`PROTOCOLS`, chosen by the
inventory's model or else the MAC's OUI; a phone of no known family gets the
PLANET/Fanvil request): PLANET/Fanvil `ConfigManApp.com?key=`, Yealink
`/servlet?key=`, Snom `/command.htm?key=` and `/advanced_update.htm?reboot=`.
A family without a request for the action (Snom has no re-provision request;
some families have no remote control at all) fails for that phone with a line
saying so, and nothing is sent to it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

from netboot.config import Config
from netboot.http.auth import parse_params
from netboot.wire import normalize_mac

if TYPE_CHECKING:
    # Imported where a request is sent: `netboot serve` imports this module
    # (through netboot.commands) and never sends one; aiohttp's client is
    # ~10 MB and ~0.15 s of every start.
    import aiohttp

PATH = "/cgi-bin/ConfigManApp.com"
MAX_ANSWER = 4096  # bytes of a phone's answer read (Grandstream's JSON verdict)
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


# ---------------------------------------------------------------- protocols


@dataclass(frozen=True)
class Protocol:
    """How `netboot phone` drives one family: the request paths per action."""

    label: str
    reboot: str | None  # path and query
    reprovision: str | None
    key_path: str  # with {key}; "" = no key presses
    one_key_per_request: bool = False
    key_names: Mapping[str, str] | None = None  # chapter-5 name -> the family's; None = as is
    missing: str = ""  # what to say for an action it has no request for
    source: str = ""
    user: str = ""  # its fixed login name ("": phones.admin_user)
    json_answer: bool = False  # 200 with {"response": "success"} or an error (Grandstream)

    def requests(self, action: str, keys: Sequence[str]) -> list[str] | str:
        """The GETs for `action` (and `keys`), or a sentence why there are none."""
        if action == "reboot":
            return (
                [self.reboot] if self.reboot else f"{self.label}: no reboot request. {self.missing}"
            )
        if action == "reprovision":
            if self.reprovision:
                return [self.reprovision]
            return f"{self.label}: no re-provision request. {self.missing}".strip()
        if not self.key_path:
            return f"{self.label}: no key presses over HTTP. {self.missing}".strip()
        names: list[str] = []
        for key in keys:
            if key.isdigit() or set(key) <= set("0123456789*"):
                names.extend(key if self.one_key_per_request else [key])
                continue
            if self.key_names is None:
                names.append(key)
            elif key in self.key_names:
                names.append(self.key_names[key])
            else:
                return f"{self.label}: no key {key!r} (it has {', '.join(sorted(self.key_names))})"
        if self.one_key_per_request:
            return [self.key_path.format(key=quote(k, safe="*")) for k in names]
        return [self.key_path.format(key=";".join(quote(k, safe="*") for k in names))]


# Snom key names for the chapter-5 ones (Snom's command.htm key names, as
# public Snom control code uses them: ENTER, CANCEL, SPEAKER, TRANSFER, F_HOLD ...).
_SNOM_KEYS = {
    "OK": "ENTER", "ENTER": "ENTER", "X": "CANCEL", "F_CANCEL": "CANCEL", "RELEASE": "CANCEL",
    "SPEAKER": "SPEAKER", "HEADSET": "HEADSET", "MUTE": "MUTE", "F_TRANSFER": "TRANSFER",
    "F_HOLD": "F_HOLD", "VOLUME_UP": "VOLUME_UP", "VOLUME_DOWN": "VOLUME_DOWN",
    "UP": "UP", "DOWN": "DOWN", "LEFT": "LEFT", "RIGHT": "RIGHT", "POUND": "#",
}  # fmt: skip

PROTOCOLS: Mapping[str, Protocol] = {
    "fanvil": Protocol(
        "PLANET/Fanvil",
        f"{PATH}?key=Reboot",
        f"{PATH}?key=Autoprovision",
        f"{PATH}?key={{key}}",
        source="PLANET admin guide chapter 5",
    ),
    "yealink": Protocol(
        "Yealink",
        "/servlet?key=Reboot",
        "/servlet?key=AutoP",
        "/servlet?key={key}",
        one_key_per_request=True,
        source="Yealink Action URI (/servlet?key=); Reboot, AutoP",
    ),
    "snom": Protocol(
        "Snom",
        "/advanced_update.htm?reboot=Reboot",
        None,
        "/command.htm?key={key}",
        one_key_per_request=True,
        key_names=_SNOM_KEYS,
        missing="Use `netboot phone reboot`: a Snom fetches its settings as it boots.",
        source="Snom remote control: command.htm?key=, advanced_update.htm?reboot=Reboot",
    ),
    "polycom": Protocol(
        "Polycom",
        "POST /api/v1/mgmt/safeReboot",
        "POST /api/v1/mgmt/safeRestart",  # the application restarts and reads its files
        "",
        missing="Its REST API has no key presses netboot sends.",
        source="Poly UC REST API (apps.restapi.enabled), login Polycom",
        user="Polycom",
    ),
    "grandstream": Protocol(
        "Grandstream",
        "/cgi-bin/api-sys_operation?passcode={passcode}&request=REBOOT",
        "/cgi-bin/api-sys_operation?passcode={passcode}&request=PROV",
        "",
        missing="netboot sends it no key presses.",
        source="Grandstream HTTP API api-sys_operation: passcode + REBOOT (public GXP "
        "scripts), PROV = provision now (public session-based clients)",
        user="admin",
        json_answer=True,
    ),
    "cisco-spa": Protocol(
        "Cisco SPA/3PCC",
        "/admin/reboot",
        "/admin/resync",  # without a URL: its own profile rules
        "",
        missing="Its web server takes no key presses.",
        source="Cisco SPA provisioning guide: /admin/resync?<url>, /admin/reboot",
        user="admin",
    ),
}
DEFAULT_PROTOCOL = "fanvil"


def protocol_for(family: str | None) -> Protocol | str:
    """The protocol of a family (None: unknown family, the PLANET/Fanvil one),
    or a sentence saying the family has none."""
    from netboot import vendors

    if family is None:
        return PROTOCOLS[DEFAULT_PROTOCOL]
    profile = vendors.by_name(family)
    name = profile.remote if profile is not None else family
    protocol = PROTOCOLS.get(name)
    if protocol is None:
        label = profile.label if profile is not None else family
        return f"{label}: its firmware has no remote control netboot can speak"
    return protocol


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    label: str  # what the user typed (or the MAC for --all)
    mac: str | None
    ip: str | None  # None: no address known
    family: str | None = None  # vendor profile name (inventory model, else OUI)


def _known_addresses(
    config: Config, now: float, every: dict[str, str] | None = None
) -> dict[str, str]:
    """MAC -> IP from the active leases, then the registry for the rest.
    `every` receives IP -> MAC for every active lease (a phone moved to its
    voice VLAN holds two)."""
    from netboot.state.db import open_reader, tolerant
    from netboot.state.leases import read_leases
    from netboot.state.registry import Phone, read_phones

    found: dict[str, str] = {}
    state_dir = config.appliance.state_dir
    newest: dict[str, float] = {}
    for lease in read_leases(state_dir):
        if lease.state == "bound" and lease.expires > now and every is not None:
            every[str(lease.address)] = lease.mac
        if (
            lease.state == "bound"
            and lease.expires > now
            and lease.updated >= newest.get(lease.mac, -1.0)
        ):
            found[lease.mac] = str(lease.address)
            newest[lease.mac] = lease.updated
    conn = open_reader(state_dir)  # None when there is no database yet
    if conn is not None:
        try:
            phones: list[Phone] = tolerant(read_phones, conn, [])
            for phone in phones:
                if phone.ip and phone.mac not in found:
                    found[phone.mac] = phone.ip
        finally:
            conn.close()
    return found


def resolve_targets(
    config: Config, names: Sequence[str], all_phones: bool, now: float
) -> list[Target]:
    """MACs, IPs or --all -> targets (ValueError for something that is neither)."""
    every: dict[str, str] = {}
    addresses = _known_addresses(config, now, every)
    by_ip = {**every, **{ip: mac for mac, ip in addresses.items()}}
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
    return with_families(config, targets)


def with_families(config: Config, targets: list[Target]) -> list[Target]:
    """Each target's family: its inventory model's, else its MAC's OUI's."""
    from dataclasses import replace

    from netboot import vendors

    models: dict[str, str] = {}
    if config.phones.inventory is not None:
        from netboot.provisioning.inventory import load_inventory

        models = {p.mac: p.model.vendor for p in load_inventory(config.phones.inventory).phones}
    out = []
    for t in targets:
        family = models.get(t.mac) if t.mac else None
        if family is None and t.mac:
            profile = vendors.by_oui(t.mac)
            family = profile.name if profile is not None else None
        out.append(replace(t, family=family))
    return out


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


def _body_headers(method: str) -> dict[str, str]:
    """A POST carries an empty JSON object (the Poly REST API's form)."""
    return {"Content-Type": "application/json"} if method == "POST" else {}


async def send_one(
    session: aiohttp.ClientSession,
    target: Target,
    query: str,
    user: str,
    password: str,
    timeout: float,
    port: int = 80,
    json_answer: bool = False,
) -> Outcome:
    """`query` is a path with its query (`/command.htm?key=ENTER`), or a bare
    query for the PLANET/Fanvil path (`key=Reboot`); `{passcode}` in it is
    the admin password (Grandstream's API takes it in the query).
    `json_answer`: the phone answers 200 with `{"response": "success"}` or
    an error in the same shape (Grandstream), so the body decides."""
    start = time.monotonic()

    def done(ok: bool, result: str) -> Outcome:
        return Outcome(target, ok, result, time.monotonic() - start)

    if target.ip is None:
        return done(False, "no address known (no lease, not in the registry)")
    method, _, rest = query.partition(" ") if query.startswith("POST ") else ("GET", "", query)
    uri = rest if rest.startswith("/") else f"{PATH}?{rest}"
    uri = uri.replace("{passcode}", quote(password, safe=""))
    host = target.ip if port == 80 else f"{target.ip}:{port}"
    url = f"http://{host}{uri}"
    import aiohttp

    basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    client_timeout = aiohttp.ClientTimeout(total=timeout)

    async def ask(authorization: str) -> tuple[int, str | None, bytes, list[str]]:
        async with session.request(
            method,
            url,
            headers={"Authorization": authorization, **_body_headers(method)},
            data=b"{}" if method == "POST" else None,
            timeout=client_timeout,
            allow_redirects=False,
        ) as resp:
            body = await resp.content.read(MAX_ANSWER)
            return resp.status, resp.reason, body, resp.headers.getall("WWW-Authenticate", [])

    try:
        status, reason, body, offered = await ask(basic)
        challenges = _digest_challenges(offered)
        if status == 401 and challenges:
            cnonce = os.urandom(8).hex()
            auth = digest_authorization(challenges[0], user, password, method, uri, cnonce)
            if auth is None:
                return done(False, "401 unsupported Digest challenge")
            status, reason, body, _ = await ask(auth)
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
    if 200 <= status < 300 and json_answer:
        try:
            answer = json.loads(body.decode("utf-8", "replace"))
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or answer.get("response") != "success":
            return done(False, f"{status} but the phone answered {body[:60]!r}")
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


async def send_requests(
    session: aiohttp.ClientSession,
    target: Target,
    requests: list[str] | str,
    user: str,
    password: str,
    timeout: float,
    port: int = 80,
    json_answer: bool = False,
) -> Outcome:
    """The target's GETs in order (a key press per request where its family
    wants that), stopping at the first failure; a str: nothing to send."""
    if isinstance(requests, str):
        return Outcome(target, False, requests, 0.0)
    start = time.monotonic()
    outcome = Outcome(target, False, "nothing to send", 0.0)
    for uri in requests:
        outcome = await send_one(session, target, uri, user, password, timeout, port, json_answer)
        if not outcome.ok:
            break
    return Outcome(target, outcome.ok, outcome.result, time.monotonic() - start)


async def send_all(
    targets: Sequence[Target],
    query: str | Callable[[Target], list[str] | str],
    user: str,
    password: str,
    *,
    concurrency: int = 20,
    timeout: float = 5.0,
    port: int = 80,
    progress: Progress | None = None,
    user_for: Callable[[Target], str] | None = None,
    json_for: Callable[[Target], bool] | None = None,
) -> list[Outcome]:
    """The GETs of each target (`query`: one for all, or per target), at most
    `concurrency` targets at a time; results in target order."""
    import aiohttp

    limit = asyncio.Semaphore(max(1, concurrency))
    connector = aiohttp.TCPConnector(limit=max(1, concurrency), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(target: Target) -> Outcome:
            requests = query(target) if callable(query) else [query]
            async with limit:
                login = (user_for(target) if user_for is not None else "") or user
                json_answer = json_for(target) if json_for is not None else False
                outcome = await send_requests(
                    session, target, requests, login, password, timeout, port, json_answer
                )
            if progress is not None:
                progress.step(outcome.ok)
            return outcome

        return list(await asyncio.gather(*(one(t) for t in targets)))


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
