"""`netboot render [MAC]`: the inventory's config files (netboot.provisioning.render)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from netboot.commands.common import Subparsers, add_config_arg, load_or_exit
from netboot.provisioning.render import ConfigRenderer, RenderError, check_file


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "render", help="render the config files of the inventory (all, or one phone's)"
    )
    add_config_arg(p)
    p.add_argument("--out", metavar="DIR", help="write the files into DIR instead of printing")
    p.add_argument(
        "--check",
        action="store_true",
        help="parse every rendered file with the vendor's rules and fail on any module/key "
        "absent from the reference firmware exports",
    )
    p.add_argument("mac", nargs="?", help="only this phone's common and own file")
    p.set_defaults(func=run)


def _check_files(renderer: ConfigRenderer, names: list[str]) -> int:
    bad = 0
    for name in names:
        try:
            rendered = renderer.render(name)
        except RenderError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            bad += 1
            continue
        assert rendered is not None
        problems = check_file(rendered)
        print(f"{name}  {rendered.layout}  {'ok' if not problems else 'FAILED'}")
        for problem in problems:
            print(f"  {problem}")
        bad += bool(problems)
    if bad:
        print(f"netboot: render --check: {bad} of {len(names)} files fail", file=sys.stderr)
    return 1 if bad else 0


def run(args: argparse.Namespace) -> int:
    from netboot.wire import normalize_mac

    config = load_or_exit(args.config)
    if config.phones.inventory is None:
        print("netboot: render: phones.inventory is not set", file=sys.stderr)
        return 1
    mac: str | None = None
    if args.mac:
        try:
            mac = normalize_mac(args.mac)
        except ValueError as exc:
            print(f"netboot: render: {exc}", file=sys.stderr)
            return 2
    renderer = ConfigRenderer(config)
    try:
        inv = renderer.inventory_cache.get()
        for problem in inv.problems:
            print(f"netboot: warning: {problem}", file=sys.stderr)
        if mac is not None and inv.by_mac(mac) is None:
            print(f"netboot: render: {mac} is not in the inventory", file=sys.stderr)
            return 1
        names = renderer.file_names(mac)
        if args.check:
            return _check_files(renderer, names)
        out = Path(args.out) if args.out else None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        for name in names:
            try:
                rendered = renderer.render(name)
            except RenderError as exc:
                print(f"netboot: render: {name}: {exc}", file=sys.stderr)
                return 1
            assert rendered is not None
            if out is None:
                if len(names) > 1:
                    print(f"==> {name} (version {rendered.version}) <==")
                sys.stdout.write(rendered.data.decode())
                continue
            tmp = out / f".{name}.tmp"
            tmp.write_bytes(rendered.data)
            os.chmod(tmp, 0o640 if rendered.kind == "mac" else 0o644)
            os.replace(tmp, out / name)
            print(f"{out / name}  version {rendered.version}  {len(rendered.data)} bytes")
        return 0
    finally:
        renderer.close()
