"""The config schema (netboot.config: the section dataclasses and `setting`)
is the one source of defaults, ranges and docs: the loader takes its defaults
from it, and the commented config.toml and README's table agree with it."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from netboot.config import (
    SECTIONS,
    ApplianceConfig,
    Config,
    ConfigError,
    DhcpConfig,
    PnpPolicy,
    parse_config,
    schema,
    schema_markdown,
)

REPO = Path(__file__).resolve().parent.parent
_LINE = re.compile(r"^(#\s*)?([a-z_]+)\s*=\s*(.*?)\s*(?:#.*)?$")
_SECTION = re.compile(r"^#?\s*\[([a-z_]+)\]\s*(?:#.*)?$")
_ARRAY = re.compile(r"^#?\s*\[\[([a-z_.]+)\]\]")


def _example_keys() -> dict[str, tuple[str, bool]]:
    """config.toml's `key = value` lines, set or commented out, by dotted key:
    (value text, commented). Keys inside [[...]] tables are left out."""
    found: dict[str, tuple[str, bool]] = {}
    section: str | None = None
    for line in (REPO / "config.toml").read_text().splitlines():
        line = line.strip()
        if _ARRAY.match(line):
            section = None
            continue
        header = _SECTION.match(line)
        if header:
            section = header.group(1)
            continue
        match = _LINE.match(line)
        if match and section is not None:
            found.setdefault(f"{section}.{match.group(2)}", (match.group(3), bool(match.group(1))))
    return found


def test_every_section_of_config_is_in_the_schema() -> None:
    sections = {f.name for f in dataclasses.fields(Config)} - {"source"}
    assert set(SECTIONS) == sections


def test_the_loader_takes_every_default_from_the_schema() -> None:
    loaded = parse_config({"appliance": {"interface": "lo"}, "dhcp": {"enabled": False}})
    declared = Config(ApplianceConfig(interface="lo"), dhcp=DhcpConfig(enabled=False))
    assert loaded == declared


def test_a_key_is_checked_as_the_schema_declares() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "appliance": {"interface": "lo"},
                "dhcp": {"enabled": False},
                "lldp": {"priority": 8},
                "pnp": {"policy": "some"},
            }
        )
    assert caught.value.problems == [
        "pnp.policy: must be one of all, known, discover; got 'some'",
        "lldp.priority: must be between 0 and 7, got 8",
    ]
    config = parse_config(
        {"appliance": {"interface": "lo"}, "dhcp": {"enabled": False}, "pnp": {"policy": "known"}}
    )
    assert config.pnp.policy is PnpPolicy.KNOWN
    assert f"{config.pnp.policy}" == "known"  # a StrEnum: logs and comparisons as before


def test_the_example_config_shows_every_key_and_its_default() -> None:
    example = _example_keys()
    missing = [k.name for k in schema() if k.name not in example]
    assert not missing, f"config.toml does not show {missing}"
    for key in schema():
        text, commented = example[key.name]
        if not commented or key.default in (None, "", ()):
            continue  # a site's value, or an example of a key that has no default
        value = tomllib.loads(f"v = {text}")["v"]
        default = key.default
        if isinstance(default, tuple):
            default = list(default)
        elif isinstance(default, Path):
            default = str(default)
        assert value == default, f"config.toml: `# {key.name} = {text}` is not its default"


def test_the_readme_table_is_the_schema() -> None:
    table = schema_markdown()
    readme = (REPO / "README.md").read_text()
    assert table in readme, (
        "README.md: the config key table differs from the schema; paste the output of "
        '`python -c "from netboot.config import schema_markdown; print(schema_markdown())"`'
    )
