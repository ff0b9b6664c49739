"""Which file a phone gets for a name it asks for, shared by TFTP, HTTP(S) and FTP.

Phones ask for names in a few shapes (FIELD-NOTES "PLANET / Fanvil config
files"): the common file of their model (`f0VIP-2140PThw1.100.cfg`, Yealink
`y000000000044.cfg`, Polycom `000000000000.cfg`), their own per-MAC file
(`00304f113af8.cfg`, spelled in any case and with any separator), a file named
after an ID typed on the phone (`$input`, mapped by the inventory), or any
custom name. `FileResolver.resolve` turns a name into `Resolved` (a real file
under root, which wins, or bytes the renderer produced) or a `Refusal`:

1. name safety first: a name that could leave root (`..`, absolute, NUL and
   control bytes, too long, a symlink that points out) is refused, and nothing
   else happens (no file system lookup, no renderer call);
2. MAC binding: with `bind_mac_files`, a per-MAC file goes only to the IP that
   holds that MAC's DHCP lease (the file carries the phone's SIP passwords).
   Per-MAC means every family's per-MAC names (`netboot.vendors`: `<mac>.cfg`,
   Grandstream `cfg<mac>.xml`, Cisco `SEP<MAC>.cnf.xml`, Polycom
   `<mac>-phone.cfg`, Cisco SPA `spa<mac>.xml`, Snom `<MAC>.xml` ...);
3. a real file under root, matched for per-MAC names without regard to case or
   separators; then the renderer; else not found.

`FileResolver.record` puts the outcome into the phone registry and metrics once
the transport knows how it ended (bytes sent, User-Agent). A MAC is taken from
the file name, else from the User-Agent, else from the lease of the client IP.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import BinaryIO, Protocol

from netboot import metrics, vendors
from netboot.events import FetchDetail, FetchFacts, FileFetched, FileForbidden, FileNotServed
from netboot.registry import Registry
from netboot.wire import format_mac, parse_mac

log = logging.getLogger("netboot.files")

MAX_NAME = 255  # one path component
MAX_PATH = 1024  # the whole name
MAX_INDEXED = 65536  # names per directory in the per-MAC spelling index

Renderer = Callable[[str], bytes | None]
InputLookup = Callable[[str], str | None]


class LeaseView(Protocol):
    def mac_for_ip(self, ip: str | IPv4Address, now: float) -> str | None: ...


# ---------------------------------------------------------------- names

_HEX2 = "[0-9a-fA-F]{2}"
# Six hex pairs with one consistent optional separator, then an optional extension.
_MAC_NAME = re.compile(
    rf"^(?P<mac>{_HEX2}(?P<sep>[-:._]?){_HEX2}(?:(?P=sep){_HEX2}){{4}})(?P<ext>\.[^/]*)?$"
)
_ZERO_MAC = "000000000000"


@dataclass(frozen=True)
class NameInfo:
    """What a (safe, normalized) name is: its kind, and the MAC or model it names."""

    kind: str  # "common" | "mac" | "input" | "custom"
    mac: str | None = None
    model: str | None = None
    canonical: str = ""  # per-MAC: `<12 lowercase hex><ext lowercase>` in the same directory


class UnsafeName(ValueError):
    """The name could leave root or is not a name at all."""


def normalize_name(name: str) -> str:
    """The name as a root-relative path with `/` separators, or UnsafeName.

    Refused: empty, absolute (`/x`, `\\x`, `C:x`), any `..` component, NUL or
    other control characters, a component over 255 or a whole over 1024
    characters. Backslashes count as separators (3CDaemon/tftpd32 users write
    them). `.` and empty components are dropped.
    """
    if not name:
        raise UnsafeName("empty name")
    if len(name) > MAX_PATH:
        raise UnsafeName(f"name longer than {MAX_PATH} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise UnsafeName("control character in name")
    text = name.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise UnsafeName("absolute path")
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise UnsafeName("'..' in name")
        if len(part) > MAX_NAME:
            raise UnsafeName(f"name component longer than {MAX_NAME} characters")
        parts.append(part)
    if not parts:
        raise UnsafeName("empty name")
    return "/".join(parts)


def classify(name: str, input_lookup: InputLookup | None = None) -> NameInfo:
    """Kind of a normalized name (see module docstring)."""
    directory, _, base = name.rpartition("/")
    match = _MAC_NAME.match(base)
    if match is not None:
        digits = re.sub(r"[-:._]", "", match.group("mac")).lower()
        ext = (match.group("ext") or "").lower()
        if digits == _ZERO_MAC:  # Polycom's 000000000000.cfg is the common file
            return NameInfo("common")
        canonical = f"{directory}/{digits}{ext}" if directory else f"{digits}{ext}"
        return NameInfo("mac", format_mac(bytes.fromhex(digits)), canonical=canonical)
    named = vendors.per_mac_name(base)
    if named is not None:
        canonical = f"{directory}/{named.canonical}" if directory else named.canonical
        return NameInfo("mac", format_mac(bytes.fromhex(named.digits)), canonical=canonical)
    common = vendors.common_name(base)  # each family's common names (its profile)
    if common is not None:
        return NameInfo("common", model=common[1])
    if input_lookup is not None:
        stem = base.rsplit(".", 1)[0] if "." in base else base
        mac = input_lookup(stem)
        if mac is not None:
            return NameInfo("input", mac=mac or None)
    return NameInfo("custom")


# ---------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Resolved:
    """A file to send: a real one under root (`path`) or rendered bytes (`data`)."""

    name: str
    info: NameInfo
    size: int
    mtime: float
    path: Path | None = None
    data: bytes | None = None
    client_ip: str = ""
    lease_mac: str | None = None

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def mac(self) -> str | None:
        return self.info.mac

    @property
    def rendered(self) -> bool:
        return self.path is None

    def open(self) -> BinaryIO:
        """A binary file object positioned at 0 (the caller closes it)."""
        if self.path is not None:
            return self.path.open("rb")
        return io.BytesIO(self.data or b"")

    def etag(self) -> str:
        if self.path is not None:
            return f'"{int(self.mtime * 1e9):x}-{self.size:x}"'
        return '"r-' + hashlib.sha256(self.data or b"").hexdigest()[:24] + '"'


@dataclass(frozen=True)
class Refusal:
    """Why a name is not served: `result` is "not-found", "forbidden", "refused-name"
    or "unreadable" (the file is there but the server cannot read it: its fault)."""

    name: str
    result: str
    reason: str
    info: NameInfo = field(default_factory=lambda: NameInfo("custom"))
    client_ip: str = ""
    lease_mac: str | None = None

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def mac(self) -> str | None:
        return self.info.mac


Outcome = Resolved | Refusal


@dataclass(frozen=True)
class PhoneAgent:
    vendor: str
    model: str | None = None
    firmware: str | None = None
    mac: str | None = None


# ---------------------------------------------------------------- User-Agent

# "<Vendor> <Model> <firmware> [<mac>]" from brands without a profile.
_GENERIC_UA = re.compile(
    r"^(?P<vendor>Htek|Flyingvoice|Akuvox|Escene)\s+"
    r"(?P<model>\S+)\s+(?P<fw>\d[\w.\-]*)(?:\s+(?P<mac>\S+))?",
    re.IGNORECASE,
)


def _mac_or_none(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return format_mac(parse_mac(text))
    except ValueError:
        return None


def parse_user_agent(agent: str) -> PhoneAgent | None:
    """Vendor, model, firmware and MAC from a phone's HTTP User-Agent, by the
    families' profiles (`netboot.vendors`), if it is a phone's."""
    info = vendors.parse_user_agent(agent)
    if info is not None:
        return PhoneAgent(info.vendor, info.model, info.firmware, _mac_or_none(info.mac))
    m = _GENERIC_UA.match(agent.strip())
    if m is not None:
        vendor = m.group("vendor")
        return PhoneAgent(vendor, m.group("model"), m.group("fw"), _mac_or_none(m.group("mac")))
    return None


# ---------------------------------------------------------------- resolver


class FileResolver:
    """Name -> file decisions for every file protocol (see module docstring)."""

    def __init__(
        self,
        root: Path,
        renderer: Renderer | None = None,
        leases: LeaseView | None = None,
        bind_mac_files: bool = True,
        now: Callable[[], float] = time.time,
        *,
        registry: Registry | None = None,
        input_lookup: InputLookup | None = None,
    ) -> None:
        self.root = Path(root)
        self.renderer = renderer
        self.leases = leases
        self.bind_mac_files = bind_mac_files
        self.now = now
        self.registry = registry
        self.input_lookup = input_lookup
        # directory -> (mtime_ns, {normalized mac name: real name})
        self._mac_index: dict[str, tuple[int, dict[str, str]]] = {}

    def reconfigure(
        self,
        root: Path,
        renderer: Renderer | None,
        bind_mac_files: bool,
        input_lookup: InputLookup | None,
    ) -> None:
        """A reload: what the new config says, in place (TFTP, HTTP and FTP
        hold this resolver); the per-MAC spelling index is read afresh."""
        self.root = Path(root)
        self.renderer = renderer
        self.bind_mac_files = bind_mac_files
        self.input_lookup = input_lookup
        self._mac_index.clear()

    # ------------------------------------------------------------ resolve

    def lease_mac(self, client_ip: str) -> str | None:
        if self.leases is None or not client_ip:
            return None
        try:
            return self.leases.mac_for_ip(client_ip, self.now())
        except ValueError:  # not an IPv4 address (an IPv6 peer)
            return None

    def resolve(self, name: str, client_ip: str) -> Outcome:
        try:
            clean = normalize_name(name)
        except UnsafeName as exc:
            return Refusal(
                _printable(name),
                "refused-name",
                str(exc),
                client_ip=client_ip,
                lease_mac=self.lease_mac(client_ip),
            )
        info = classify(clean, self.input_lookup)
        holder = self.lease_mac(client_ip)
        if info.kind == "mac" and self.bind_mac_files and holder != info.mac:
            why = (
                f"{client_ip} holds no lease"
                if holder is None
                else f"{client_ip} holds the lease of {holder}"
            )
            return Refusal(
                clean, "forbidden", f"per-MAC file of {info.mac}: {why}", info, client_ip, holder
            )
        found = self._find(clean, info)
        if isinstance(found, Refusal):
            return Refusal(clean, found.result, found.reason, info, client_ip, holder)
        if found is not None:
            path, st = found
            return Resolved(
                clean,
                info,
                st.st_size,
                st.st_mtime,
                path=path,
                client_ip=client_ip,
                lease_mac=holder,
            )
        if self.renderer is not None:
            data = self.renderer(info.canonical or clean)
            if data is not None:
                return Resolved(
                    clean,
                    info,
                    len(data),
                    self.now(),
                    data=data,
                    client_ip=client_ip,
                    lease_mac=holder,
                )
        return Refusal(clean, "not-found", "no such file", info, client_ip, holder)

    def _find(self, clean: str, info: NameInfo) -> tuple[Path, os.stat_result] | Refusal | None:
        """The real file under root for a safe name, None, or why it is not served
        (only `result` and `reason` of that Refusal are filled in)."""
        candidates = [clean]
        if info.kind == "mac":
            candidates.append(info.canonical)
            directory, _, base = info.canonical.rpartition("/")
            candidates.append(f"{directory}/{base.upper()}" if directory else base.upper())
            indexed = self._mac_lookup(directory, base)
            if indexed is not None:
                candidates.append(f"{directory}/{indexed}" if directory else indexed)
        root_real = os.path.realpath(self.root)
        for candidate in dict.fromkeys(candidates):
            path = os.path.join(root_real, candidate)
            try:
                st = os.stat(path)  # follows symlinks: checked below
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                return Refusal(clean, "unreadable", f"cannot read: {exc.strerror}")
            real = os.path.realpath(path)
            if os.path.commonpath([root_real, real]) != root_real:
                return Refusal(clean, "refused-name", "symlink points outside root")
            if not stat.S_ISREG(st.st_mode):
                continue
            return Path(real), st
        return None

    def _mac_lookup(self, directory: str, canonical_base: str) -> str | None:
        """The real name in `directory` whose MAC spelling matches, via a
        per-directory index rebuilt when the directory changes."""
        path = os.path.join(self.root, directory) if directory else str(self.root)
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return None
        cached = self._mac_index.get(directory)
        if cached is None or cached[0] != mtime:
            index: dict[str, str] = {}
            try:
                names = os.listdir(path)
            except OSError:
                names = []
            for real in names[:MAX_INDEXED]:
                m = _MAC_NAME.match(real)
                if m is not None:
                    digits = re.sub(r"[-:._]", "", m.group("mac")).lower()
                    index.setdefault(digits + (m.group("ext") or "").lower(), real)
                    continue
                named = vendors.per_mac_name(real)
                if named is not None:
                    index.setdefault(named.canonical.lower(), real)
            cached = (mtime, index)
            self._mac_index[directory] = cached
        return cached[1].get(canonical_base) or cached[1].get(canonical_base.lower())

    # ------------------------------------------------------------ record

    def record(
        self,
        outcome: Outcome,
        protocol: str,
        *,
        sent: int = 0,
        result: str | None = None,
        user_agent: str = "",
    ) -> None:
        """Count the outcome and put it in the phone registry (when a MAC is known)."""
        final = result or ("ok" if isinstance(outcome, Resolved) else outcome.result)
        metrics.FILES_SERVED.labels(protocol, final).inc()
        agent = parse_user_agent(user_agent) if user_agent else None
        mac = outcome.info.mac or (agent.mac if agent else None) or outcome.lease_mac
        # One line per fetch: "tftp: 00:30:4f:11:3a:f8 (192.168.10.100) fetched
        # 00304f113af8.cfg: ok, 912 of 912 bytes"
        log.info(
            "%s: %s (%s) fetched %s: %s, %d of %d bytes",
            protocol,
            mac or "unknown MAC",
            outcome.client_ip or "-",
            outcome.name,
            final,
            sent,
            outcome.size if isinstance(outcome, Resolved) else 0,
        )
        if self.registry is None:
            return
        if mac is None:
            return
        what: FetchDetail = {
            "file": outcome.name,
            "file_kind": outcome.info.kind,
            "protocol": protocol,
            "bytes": sent,
            "client": outcome.client_ip,
            "user_agent": user_agent or None,
            "reason": outcome.reason if isinstance(outcome, Refusal) else None,
        }
        facts: FetchFacts = {}
        if final == "forbidden":
            # Someone else asked for this phone's file: the phone's timeline shows
            # it, but nothing about the asker (address, User-Agent) is the phone's.
            self.registry.record(FileForbidden(mac=mac, **what), now=self.now())
            return
        # The phone's address is what the client IP is only if it is that phone's
        # (its lease), or nothing contradicts it and the fetch succeeded.
        if outcome.lease_mac == mac or (outcome.lease_mac is None and final == "ok"):
            facts["ip"] = outcome.client_ip or None
        if agent is not None and (agent.mac is None or agent.mac == mac):
            facts.update({"vendor": agent.vendor, "model": agent.model, "firmware": agent.firmware})
        elif outcome.info.model and outcome.lease_mac == mac:
            facts["model"] = outcome.info.model
        if final == "ok":
            self.registry.record(FileFetched(mac=mac, **what, **facts), now=self.now())
        else:
            event = FileNotServed(mac=mac, result=final, **what, **facts)
            self.registry.record(event, now=self.now())


def _printable(name: str) -> str:
    """A refused name as it can be shown in a log or the registry."""
    text = name.encode("unicode_escape", "replace").decode("ascii", "replace")
    return text[:120] + ("..." if len(text) > 120 else "")
