"""One validation for `netboot check`, `netboot serve` and a reload (SIGHUP).

Three stages, each only when the one before found no error, so one mistake
gives one error and not its consequences:

1. the file: readable, valid TOML;
2. the keys and values (`config.parse_config`: types, ranges, unknown keys
   with a "did you mean");
3. this host: interfaces that exist, addresses that are on them, a writable
   `state_dir`, TLS files, STUN addresses, the inventory file — everything
   `serve` would otherwise refuse at start.

Every error reads `file:line: key: what was expected`. tomllib gives no
positions, so `key_lines` finds each key's line in the TOML text itself.
Warnings (legal but probably wrong: `site_warnings`, inventory rows, templates)
stay warnings and come only when there is no error.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

from netboot import netif
from netboot.config import (
    Config,
    ConfigError,
    Problem,
    parse_config,
    read_config_text,
    site_warnings,
)


@dataclass
class Report:
    """What a validation found: `config` is set when there is no error."""

    source: Path
    config: Config | None = None
    errors: list[str] = field(default_factory=list)
    # Mistakes `check` fails on (exit 1) but `serve` and a reload run on
    # without, degraded, logging each: a read-only state_dir, malformed
    # inventory lines (the good rows keep being served).
    degraded: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def validate(path: Path | str, *, host: bool = True) -> Report:
    """Validate the config at `path` (and, with `host`, against this host)."""
    path = Path(path)
    report = Report(path)
    try:
        text = read_config_text(path)
    except ConfigError as exc:
        report.errors.extend(exc.problems)
        return report
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = match.group(1) if match else str(max(1, len(text.splitlines())))
        message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
        report.errors.append(f"{path}:{line}: not valid TOML: {message}")
        return report
    lines = key_lines(text)

    def where(problem: Problem) -> str:
        return f"{path}:{line_of(lines, problem.key)}: {problem}"

    try:
        config = parse_config(raw, path)
    except ConfigError as exc:
        report.errors.extend(where(p) for p in exc.entries)
        return report
    if host:
        found = host_problems(config, raw)
        report.errors.extend(where(p) for p in found if not p.degraded)
        if report.errors:
            return report
        report.degraded.extend(where(p) for p in found if p.degraded)
    report.config = config
    report.warnings.extend(site_warnings(config))
    if host:
        # A malformed inventory (bytes, quoting, control characters) is an
        # error naming file:line:column; bad values in good rows are warnings.
        from netboot.pnp import known as pnp
        from netboot.provisioning import inventory, render

        report.degraded.extend(inventory.errors(config))
        # What needs more than the config file: each returns warnings.
        for check in (pnp.check, inventory.check, render.check):
            report.warnings.extend(check(config))
    return report


# ---------------------------------------------------------------- lines


_KEY = re.compile(
    r"""\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")
_STRINGS_AND_COMMENT = re.compile(r""""(?:\\.|[^"\\])*"|'[^']*'|#.*""")


def _depth(text: str) -> int:
    """How many more brackets `text` opens than it closes (strings and comment aside)."""
    bare = _STRINGS_AND_COMMENT.sub("", text)
    return bare.count("[") + bare.count("{") - bare.count("]") - bare.count("}")


def _parts(dotted: str) -> list[str]:
    return [p.strip("\"'") for p in _PART.findall(dotted)]


def key_lines(text: str) -> dict[str, int]:
    """Dotted key (as config.py names it: `dhcp.class[1].vendor`) -> line number
    of the first line that sets it; a table's header line under its own name."""
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}  # array-of-tables path -> last index
    table = ""
    closing: str | None = None  # inside a multi-line string ending with this
    depth = 0  # inside a multi-line array this many brackets deep

    def resolve(parts: list[str]) -> str:
        path = ""
        for part in parts:
            path = f"{path}.{part}" if path else part
            if path in counts:
                path = f"{path}[{counts[path]}]"
        return path

    for number, line in enumerate(text.splitlines(), 1):
        if closing is not None:
            if closing in line:
                closing = None
            continue
        if depth > 0:
            depth += _depth(line)
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[["):
            parts = _parts(stripped[2 : stripped.find("]]")])
            parent = resolve(parts[:-1])
            name = f"{parent}.{parts[-1]}" if parent else parts[-1]
            counts[name] = counts.get(name, -1) + 1
            table = f"{name}[{counts[name]}]"
            lines.setdefault(name, number)
            lines.setdefault(table, number)
            continue
        if stripped.startswith("["):
            table = resolve(_parts(stripped[1 : stripped.find("]")]))
            lines.setdefault(table, number)
            continue
        match = _KEY.match(line)
        if match is None:
            continue
        key = ".".join(_parts(match.group(1)))
        lines.setdefault(f"{table}.{key}" if table else key, number)
        value = line[match.end() :].lstrip()
        for quote in ('"""', "'''"):
            if value.startswith(quote) and value.count(quote) == 1:
                closing = quote
        if value.startswith("["):
            depth = _depth(value)
    return lines


def line_of(lines: dict[str, int], key: str) -> int:
    """The line of `key`, else of the nearest table that holds it, else 1."""
    while key:
        if key in lines:
            return lines[key]
        cut = max(key.rfind("."), key.rfind("["))
        key = key[:cut] if cut > 0 else ""
    return 1


# ---------------------------------------------------------------- this host


def _shown(addrs: list[IPv4Interface]) -> str:
    return ", ".join(str(a) for a in addrs) or "no IPv4 address"


def _writable_dir(path: Path) -> str | None:
    """Why `path` cannot hold netboot's state, or None. Tried for real (a file
    made and removed): permissions, a read-only mount, root or not. A missing
    directory is made at start, so its nearest existing parent is tried."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    try:
        with tempfile.TemporaryFile(dir=probe, prefix=".netboot-check-"):
            pass
    except OSError as exc:
        who = f"user {os.geteuid()}"
        if probe == path:
            return f"{path} is not writable by {who}: {exc.strerror}"
        return f"{path} does not exist and cannot be made in {probe} by {who}: {exc.strerror}"
    return None


def _readable_file(path: Path) -> str | None:
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        return f"{path} does not exist"
    except IsADirectoryError:
        return f"{path} is a directory, not a file"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    return None


def host_problems(config: Config, raw: dict[str, Any]) -> list[Problem]:
    """What `serve` would refuse on this host: each problem once, at the key
    that names it."""
    problems: list[Problem] = []
    present = set(netif.names())
    dhcp_raw = raw.get("dhcp", {}) if isinstance(raw.get("dhcp"), dict) else {}

    # Where each scope came from: [dhcp] itself first when it has subnet/pool.
    scope_keys: list[str] = []
    if "subnet" in dhcp_raw or "pool" in dhcp_raw:
        scope_keys.append("dhcp")
    scope_keys += [f"dhcp.scope[{i}]" for i in range(len(dhcp_raw.get("scope", [])))]

    def explicit(prefix: str, name: str) -> bool:
        table: Any = raw
        for part in re.findall(r"[^.\[\]]+", prefix):
            table = table[int(part)] if isinstance(table, list) else table.get(part, {})
        return isinstance(table, dict) and name in table

    reported: set[str] = set()

    def interface_ok(key: str, name: str) -> bool:
        if name in present:
            return True
        if name not in reported:
            reported.add(name)
            problems.append(
                Problem(
                    key,
                    f"interface {name} does not exist on this host "
                    f"(it has: {', '.join(sorted(present))})",
                )
            )
        return False

    appliance = config.appliance
    if interface_ok("appliance.interface", appliance.interface) and appliance.address:
        addrs = netif.addresses(appliance.interface)
        if appliance.address not in [a.ip for a in addrs]:
            problems.append(
                Problem(
                    "appliance.address",
                    f"{appliance.address} is not an address of {appliance.interface} "
                    f"(it has {_shown(addrs)})",
                )
            )
    scoped = config.dhcp.scopes if config.dhcp.enabled else ()
    for key, scope in zip(scope_keys, scoped, strict=False):
        if_key = f"{key}.interface" if explicit(key, "interface") else "appliance.interface"
        if not interface_ok(if_key, scope.interface):
            continue
        addrs = netif.addresses(scope.interface)
        if scope.address is not None:
            if explicit(key, "address") and scope.address not in [a.ip for a in addrs]:
                problems.append(
                    Problem(
                        f"{key}.address",
                        f"{scope.address} is not an address of {scope.interface} "
                        f"(it has {_shown(addrs)})",
                    )
                )
        elif not any(a.ip in scope.subnet for a in addrs):
            problems.append(
                Problem(
                    f"{key}.subnet",
                    f"{scope.interface} has no address in {scope.subnet} (it has "
                    f"{_shown(addrs)}): give it one, or set {key}.address",
                )
            )
    if config.pnp.enabled:
        for name in config.interfaces:
            if (
                name in present
                and config.server_address(name) is None
                and not netif.addresses(name)
            ):
                key = "appliance.interface" if name == appliance.interface else "dhcp.scope"
                problems.append(Problem(key, f"{name} has no IPv4 address (SIP PnP needs one)"))

    why = _writable_dir(appliance.state_dir)
    if why:
        problems.append(
            Problem(
                "appliance.state_dir",
                f"{why} (leases and the phone registry live there)",
                degraded=True,
            )
        )

    http = config.http
    if http.enabled and http.https_port and http.tls_cert and http.tls_key:
        bad = False
        for name, file in (("tls_cert", http.tls_cert), ("tls_key", http.tls_key)):
            why = _readable_file(file)
            if why:
                problems.append(Problem(f"http.{name}", why))
                bad = True
        if not bad:
            from netboot.http.tls import check as tls_check

            problems.extend(
                Problem("http.tls_cert", p.removeprefix("http.tls_cert/tls_key: "))
                for p in tls_check(config)
            )

    if config.stun.enabled:
        local = {a.ip for name in present for a in netif.addresses(name)}
        for address in config.stun.addresses:
            if address not in local:
                problems.append(
                    Problem(
                        "stun.addresses",
                        f"{address} is not an address of this host "
                        f"(it has: {', '.join(sorted(map(str, local))) or 'none'})",
                    )
                )

    if config.phones.inventory is not None:
        why = _readable_file(config.phones.inventory)
        if why:
            problems.append(Problem("phones.inventory", why))

    if config.ftp.enabled and not config.provisioning.root.is_dir():
        problems.append(
            Problem(
                "provisioning.root",
                f"{config.provisioning.root} is not a directory (the FTP server serves it)",
            )
        )
    return problems
