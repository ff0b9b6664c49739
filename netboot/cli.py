"""The `netboot` command: serve | check | leases | phones | ... ."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from netboot import __version__
from netboot.commands import COMMANDS
from netboot.config import Config, ConfigError, load_config

DEFAULT_CONFIG = "/etc/netboot/config.toml"

# Commands that live beside their protocol: "module:register", where
# register(subparsers) adds a parser whose `func` takes the parsed args.
EXTRA_COMMANDS: list[str] = [
    "netboot.stun.natcheck:register",
    "netboot.provisioning.render:register",
    "netboot.provisioning.activeuri:register",
    "netboot.lldp.neighbors:register",
    "netboot.status:register",
    "netboot.lab.cli:register",
]


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"netboot: config: {problem}", file=sys.stderr)
        raise SystemExit(1) from None


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from netboot import supervisor

    config = _validated(args.config, warn=logging.getLogger("netboot").warning)
    if config is None:
        return 1
    try:
        return asyncio.run(supervisor.run(config))
    except OSError as exc:
        print(f"netboot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _warning(text: str) -> None:
    print(f"netboot: warning: {text}", file=sys.stderr)


def _validated(
    path: str, host: bool = True, warn: Callable[[str], None] = _warning, strict: bool = False
) -> Config | None:
    """The one validation of check, serve and reload (netboot.validate): each
    error on stderr (then None), each warning to `warn`. What serve runs on
    degraded (a read-only state_dir, malformed inventory lines) is logged as an
    error, and with `strict` (check) is one."""
    from netboot.validate import validate

    report = validate(path, host=host)
    for error in report.errors:
        print(f"netboot: {error}", file=sys.stderr)
    for problem in report.degraded:
        if strict:
            print(f"netboot: {problem}", file=sys.stderr)
        else:
            logging.getLogger("netboot").error("%s", problem)
    for warning in report.warnings:
        warn(warning)
    return None if strict and report.degraded else report.config


def cmd_check(args: argparse.Namespace) -> int:
    config = _validated(args.config, host=not args.no_host, strict=True)
    if config is None:
        return 1
    enabled = [
        s
        for s in ("dhcp", "pnp", "tftp", "http", "ftp", "lldp", "stun")
        if getattr(config, s).enabled
    ]
    print(f"{config.source}: OK ({', '.join(enabled) or 'no service'} enabled)")
    return 0


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def print_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    cells = [
        [str(c) for c in header],
        *[[("-" if c is None else str(c)) for c in row] for row in rows],
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def cmd_leases(args: argparse.Namespace) -> int:
    from netboot.state.leases import read_leases

    config = _load(args.config)
    now = time.time()
    leases = read_leases(config.appliance.state_dir)
    if not args.all:
        leases = [lease for lease in leases if lease.active(now)]
    if args.json:
        out = [
            {
                "ip": str(lease.address),
                "mac": lease.mac,
                "state": lease.state if lease.expires > now else "expired",
                "expires": lease.expires,
                "hostname": lease.hostname,
            }
            for lease in leases
        ]
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    rows = [
        (
            lease.address,
            lease.mac,
            lease.state if lease.expires > now or lease.state != "bound" else "expired",
            _when(lease.expires),
            lease.hostname,
        )
        for lease in leases
    ]
    print_table(rows, ("IP", "MAC", "STATE", "EXPIRES", "HOSTNAME"))
    print(f"{len(rows)} lease(s)")
    return 0


def cmd_phones(args: argparse.Namespace) -> int:
    from netboot.registry import RegistryReader
    from netboot.wire import normalize_mac

    config = _load(args.config)
    registry = RegistryReader(config.appliance.state_dir)
    try:
        if args.mac:
            try:
                mac = normalize_mac(args.mac)
            except ValueError as exc:
                print(f"netboot: {exc}", file=sys.stderr)
                return 2
            phone = registry.phone(mac)
            if phone is None:
                print(f"netboot: no phone {mac} has been seen", file=sys.stderr)
                return 1
            events = registry.timeline(mac)
            if args.json:
                json.dump(
                    {
                        "phone": phone.as_dict(),
                        "timeline": [
                            {
                                "when": e.when,
                                "service": e.service,
                                "kind": e.kind,
                                "detail": dict(e.detail),
                            }
                            for e in events
                        ],
                    },
                    sys.stdout,
                    indent=2,
                )
                print()
                return 0
            print(
                f"{phone.mac}  {phone.ip or '-'}  {phone.vendor or '-'} {phone.model or ''}  "
                f"firmware {phone.firmware or '-'}  state {phone.state}"
                + (f" ({phone.state_detail})" if phone.state_detail else "")
            )
            for e in events:
                print(f"  {_when(e.when)}  {e.describe()}")
            return 0
        phones = registry.phones()
        if args.json:
            json.dump([p.as_dict() for p in phones], sys.stdout, indent=2)
            print()
            return 0
        rows = [
            (
                p.mac,
                p.ip,
                " ".join(x for x in (p.vendor, p.model) if x) or None,
                p.firmware,
                _when(p.last_seen),
                p.state + (f": {p.state_detail}" if p.state_detail and p.state == "failed" else ""),
            )
            for p in phones
        ]
        print_table(rows, ("MAC", "IP", "VENDOR/MODEL", "FIRMWARE", "LAST SEEN", "STATE"))
        print(f"{len(rows)} phone(s)")
        return 0
    finally:
        registry.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netboot", description="Phone-provisioning appliance")
    parser.add_argument("--version", action="version", version=f"netboot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="log this level and above (default info; -v is --log-level debug)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", help="run every enabled service in the foreground")
    add_config_arg(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("check", help="validate the config; exit 1 naming each bad key")
    add_config_arg(p)
    p.add_argument(
        "--no-host",
        action="store_true",
        help="the file only, not this host's interfaces, addresses and files",
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("leases", help="list DHCP leases")
    add_config_arg(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="also expired, released and declined")
    p.set_defaults(func=cmd_leases)

    p = sub.add_parser("phones", help="list phones, or one phone's timeline")
    add_config_arg(p)
    p.add_argument("mac", nargs="?", help="show this phone's timeline")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_phones)

    for target in EXTRA_COMMANDS:
        module, _, attr = target.partition(":")
        register: Callable[[Any], None] = getattr(importlib.import_module(module), attr)
        register(sub)
    for command in COMMANDS:
        command.register(sub)

    p = sub.add_parser(
        "completion", help="print a shell completion script (install.sh installs it)"
    )
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    p.set_defaults(func=cmd_completion)

    p = sub.add_parser("manpage", help="print the netboot(8) manual page (install.sh installs it)")
    p.set_defaults(func=cmd_manpage)
    return parser


def cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell), end="")
    return 0


def cmd_manpage(args: argparse.Namespace) -> int:
    from argparse_manpage.manpage import Manpage

    parser = build_parser()
    page = Manpage(
        parser,
        _data={
            "prog": "netboot",
            "description": "phone-provisioning appliance: DHCP, SIP PnP, LLDP-MED, STUN, TFTP/HTTP",
            "long_description": (
                "netboot serves everything an IP-phone deployment needs from one process and one "
                "config file (default /etc/netboot/config.toml). The full documentation is "
                "/usr/share/doc/netboot/README.md; a commented example config is "
                "/usr/share/doc/netboot/examples/config.toml."
            ),
            "version": __version__,
            "project_name": "netboot",
            "manual_section": "8",
            "manual_title": "System Administration",
        },
    )
    print(str(page), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from netboot.logformat import LEVELS, configure_logging

    args = build_parser().parse_args(argv)
    # journald: `<6>name: message` (it stamps lines itself); else with timestamps
    configure_logging(LEVELS[args.log_level or ("debug" if args.verbose else "info")])
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


def entry() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # `netboot render | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141  # 128 + SIGPIPE, as a shell reports it
    raise SystemExit(code)


if __name__ == "__main__":
    entry()
