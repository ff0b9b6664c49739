"""FileResolver: name safety, per-MAC matching, MAC binding, renderer, $input, registry."""

from __future__ import annotations

import os
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from netboot import metrics
from netboot.provisioning.files import (
    FileResolver,
    NameInfo,
    Refusal,
    Resolved,
    UnsafeName,
    classify,
    normalize_name,
    parse_user_agent,
)
from netboot.registry import Registry

MAC = "00:30:4f:11:3a:f8"
OTHER = "00:30:4f:99:88:77"
NOW = 1_000_000.0


class FakeLeases:
    """ip -> mac, as LeaseStore.mac_for_ip answers (IPv4 only)."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.asked: list[tuple[str, float]] = []

    def mac_for_ip(self, ip: str | IPv4Address, now: float) -> str | None:
        self.asked.append((str(IPv4Address(ip)), now))
        return self.table.get(str(ip))


class SpyRenderer:
    def __init__(self, content: dict[str, bytes] | None = None) -> None:
        self.content = content or {}
        self.calls: list[str] = []

    def __call__(self, name: str) -> bytes | None:
        self.calls.append(name)
        return self.content.get(name)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    (r / "f0VIP-2140PThw1.100.cfg").write_bytes(b"common\n")
    (r / "00304f113af8.cfg").write_bytes(b"own file\n")
    (r / "sub").mkdir()
    (r / "sub" / "custom.txt").write_bytes(b"custom\n")
    (r / "sub" / "00-30-4F-99-88-77.xml").write_bytes(b"other phone\n")
    return r


def resolver(
    root: Path,
    leases: dict[str, str] | None = None,
    *,
    renderer: SpyRenderer | None = None,
    bind: bool = True,
    registry: Registry | None = None,
    inputs: dict[str, str] | None = None,
) -> FileResolver:
    return FileResolver(
        root,
        renderer,
        FakeLeases(leases or {}),
        bind,
        lambda: NOW,
        registry=registry,
        input_lookup=(inputs or {}).get if inputs is not None else None,
    )


def content(outcome: Resolved | Refusal) -> bytes:
    assert isinstance(outcome, Resolved), outcome
    with outcome.open() as handle:
        return handle.read()


# ---------------------------------------------------------------- name safety

UNSAFE = [
    ("", "empty"),
    ("..", "'..'"),
    ("../etc/passwd", "'..'"),
    ("sub/../../etc/passwd", "'..'"),
    ("sub/..", "'..'"),
    ("..\\..\\windows\\win.ini", "'..'"),
    ("/etc/passwd", "absolute"),
    ("\\etc\\passwd", "absolute"),
    ("C:\\boot.ini", "absolute"),
    ("c:boot.ini", "absolute"),
    ("file\0.cfg", "control"),
    ("file\n.cfg", "control"),
    ("a\x7fb", "control"),
    ("x" * 256, "component longer"),
    ("a/" * 600, "longer than 1024"),
    ("./.", "empty"),
]


@pytest.mark.parametrize(("name", "why"), UNSAFE)
def test_unsafe_names_are_refused(name: str, why: str) -> None:
    with pytest.raises(UnsafeName, match=why):
        normalize_name(name)


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("a.cfg", "a.cfg"),
        ("./a.cfg", "a.cfg"),
        ("sub//custom.txt", "sub/custom.txt"),
        ("sub\\custom.txt", "sub/custom.txt"),
        ("x" * 255, "x" * 255),
        ("..cfg", "..cfg"),  # a name that starts with dots is not `..`
    ],
)
def test_safe_names_normalize(name: str, clean: str) -> None:
    assert normalize_name(name) == clean


@pytest.mark.parametrize(("name", "_why"), UNSAFE)
def test_unsafe_name_touches_nothing(
    root: Path, monkeypatch: pytest.MonkeyPatch, name: str, _why: str
) -> None:
    spy = SpyRenderer({name: b"must not be served"})
    res = resolver(root, renderer=spy)

    def no_fs(*args: object, **kwargs: object) -> None:
        raise AssertionError("file system touched for an unsafe name")

    monkeypatch.setattr(os, "stat", no_fs)
    monkeypatch.setattr(os, "listdir", no_fs)
    monkeypatch.setattr(os.path, "realpath", no_fs)
    outcome = res.resolve(name, "192.0.2.10")
    assert isinstance(outcome, Refusal)
    assert outcome.result == "refused-name"
    assert spy.calls == []
    assert "\0" not in outcome.name and len(outcome.name) <= 123


def test_symlink_out_of_root_is_refused(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root password")
    (root / "link.cfg").symlink_to(secret)
    (root / "outdir").symlink_to(tmp_path)
    spy = SpyRenderer({"link.cfg": b"rendered"})
    res = resolver(root, renderer=spy)
    for name in ("link.cfg", "outdir/secret.txt"):
        outcome = res.resolve(name, "192.0.2.10")
        assert isinstance(outcome, Refusal), name
        assert outcome.result == "refused-name"
        assert "outside root" in outcome.reason
    assert spy.calls == []  # a refused name is not handed to the renderer either


def test_symlink_inside_root_is_served(root: Path) -> None:
    (root / "alias.cfg").symlink_to(root / "sub" / "custom.txt")
    outcome = resolver(root).resolve("alias.cfg", "192.0.2.10")
    assert isinstance(outcome, Resolved)
    assert content(outcome) == b"custom\n"


def test_directory_is_not_a_file(root: Path) -> None:
    outcome = resolver(root).resolve("sub", "192.0.2.10")
    assert isinstance(outcome, Refusal) and outcome.result == "not-found"


# ---------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("f0VIP-2140PThw1.100.cfg", NameInfo("common", model="VIP-2140PT")),
        ("F0X4hw1.cfg", NameInfo("common", model="X4")),
        ("y000000000044.cfg", NameInfo("common")),
        ("000000000000.cfg", NameInfo("common")),
        ("00304f113af8.cfg", NameInfo("mac", MAC, canonical="00304f113af8.cfg")),
        ("00304F113AF8.CFG", NameInfo("mac", MAC, canonical="00304f113af8.cfg")),
        ("00-30-4f-11-3a-f8.cfg", NameInfo("mac", MAC, canonical="00304f113af8.cfg")),
        ("00:30:4F:11:3A:F8.cfg", NameInfo("mac", MAC, canonical="00304f113af8.cfg")),
        ("00.30.4f.11.3a.f8", NameInfo("mac", MAC, canonical="00304f113af8")),
        ("d/00_30_4f_11_3a_f8.xml", NameInfo("mac", MAC, canonical="d/00304f113af8.xml")),
        ("00-30:4f-11:3a-f8.cfg", NameInfo("custom")),  # mixed separators: not a MAC
        ("00304f113af.cfg", NameInfo("custom")),
        ("phone.cfg", NameInfo("custom")),
    ],
)
def test_classify(name: str, expected: NameInfo) -> None:
    assert classify(name) == expected


# ---------------------------------------------------------------- per-MAC matching


@pytest.mark.parametrize(
    "asked",
    ["00304f113af8.cfg", "00304F113AF8.cfg", "00-30-4f-11-3a-f8.cfg", "00:30:4F:11:3A:F8.CFG"],
)
def test_per_mac_name_matches_any_spelling(root: Path, asked: str) -> None:
    outcome = resolver(root, {"192.0.2.10": MAC}).resolve(asked, "192.0.2.10")
    assert isinstance(outcome, Resolved), outcome
    assert outcome.kind == "mac" and outcome.mac == MAC
    assert content(outcome) == b"own file\n"


@pytest.mark.parametrize("asked", ["sub/00304f998877.xml", "sub/00:30:4F:99:88:77.XML"])
def test_per_mac_file_on_disk_spelled_otherwise(root: Path, asked: str) -> None:
    outcome = resolver(root, {"192.0.2.11": OTHER}).resolve(asked, "192.0.2.11")
    assert isinstance(outcome, Resolved), outcome
    assert content(outcome) == b"other phone\n"


def test_mac_index_follows_directory_changes(root: Path) -> None:
    res = resolver(root, {"192.0.2.11": OTHER}, bind=False)
    assert isinstance(res.resolve("sub/00304f998877.xml", "192.0.2.11"), Resolved)
    (root / "sub" / "00-30-4F-99-88-77.xml").rename(root / "sub" / "moved.xml")
    (root / "sub" / "00_30_4f_99_88_77.XML").write_bytes(b"renamed\n")
    # the directory mtime may not tick between the two writes on coarse clocks
    os.utime(root / "sub", ns=(0, 1))
    outcome = res.resolve("sub/00304f998877.xml", "192.0.2.11")
    assert isinstance(outcome, Resolved) and content(outcome) == b"renamed\n"


# ---------------------------------------------------------------- MAC binding


@pytest.mark.parametrize(
    ("leases", "bind", "expected", "reason"),
    [
        ({"192.0.2.10": MAC}, True, "ok", None),
        ({}, True, "forbidden", "holds no lease"),
        ({"192.0.2.10": OTHER}, True, "forbidden", f"holds the lease of {OTHER}"),
        ({}, False, "ok", None),
        ({"192.0.2.10": OTHER}, False, "ok", None),
    ],
)
def test_mac_binding(
    root: Path, leases: dict[str, str], bind: bool, expected: str, reason: str | None
) -> None:
    spy = SpyRenderer()
    res = resolver(root, leases, bind=bind, renderer=spy)
    outcome = res.resolve("00304F113AF8.cfg", "192.0.2.10")
    if expected == "ok":
        assert isinstance(outcome, Resolved)
    else:
        assert isinstance(outcome, Refusal)
        assert outcome.result == expected
        assert reason is not None and reason in outcome.reason
        assert spy.calls == []
    assert outcome.lease_mac == leases.get("192.0.2.10")


def test_binding_asks_the_lease_view_with_now(root: Path) -> None:
    leases = FakeLeases({"192.0.2.10": MAC})
    res = FileResolver(root, None, leases, True, lambda: NOW)
    assert isinstance(res.resolve("00304f113af8.cfg", "192.0.2.10"), Resolved)
    assert ("192.0.2.10", NOW) in leases.asked


def test_common_and_custom_files_are_not_bound(root: Path) -> None:
    res = resolver(root, {})
    assert isinstance(res.resolve("f0VIP-2140PThw1.100.cfg", "192.0.2.99"), Resolved)
    assert isinstance(res.resolve("sub/custom.txt", "192.0.2.99"), Resolved)


def test_ipv6_client_holds_no_lease(root: Path) -> None:
    outcome = resolver(root, {"192.0.2.10": MAC}).resolve("00304f113af8.cfg", "2001:db8::1")
    assert isinstance(outcome, Refusal) and outcome.result == "forbidden"


# ---------------------------------------------------------------- renderer


def test_real_file_wins_over_renderer(root: Path) -> None:
    spy = SpyRenderer({"f0VIP-2140PThw1.100.cfg": b"rendered"})
    outcome = resolver(root, renderer=spy).resolve("f0VIP-2140PThw1.100.cfg", "192.0.2.10")
    assert isinstance(outcome, Resolved) and not outcome.rendered
    assert content(outcome) == b"common\n"
    assert spy.calls == []


def test_renderer_used_when_no_file(root: Path) -> None:
    spy = SpyRenderer({"00304f998877.cfg": b"<<VOIP CONFIG FILE>>Version:2.0000000001\n"})
    res = resolver(root, {"192.0.2.11": OTHER}, renderer=spy)
    outcome = res.resolve("00-30-4F-99-88-77.cfg", "192.0.2.11")
    assert isinstance(outcome, Resolved) and outcome.rendered
    assert spy.calls == ["00304f998877.cfg"]  # the renderer gets the canonical name
    data = content(outcome)
    assert data.startswith(b"<<VOIP CONFIG FILE>>") and outcome.size == len(data)
    assert outcome.etag() != Resolved("x", outcome.info, 1, 0, data=b"other").etag()


def test_renderer_none_is_not_found(root: Path) -> None:
    spy = SpyRenderer()
    outcome = resolver(root, renderer=spy).resolve("nothing.cfg", "192.0.2.10")
    assert isinstance(outcome, Refusal) and outcome.result == "not-found"
    assert spy.calls == ["nothing.cfg"]


# ---------------------------------------------------------------- $input


def test_input_id_names_map_to_the_inventory_mac(root: Path) -> None:
    spy = SpyRenderer({"desk42.cfg": b"input file"})
    res = resolver(root, renderer=spy, inputs={"desk42": MAC, "spare": ""})
    outcome = res.resolve("desk42.cfg", "192.0.2.50")
    assert isinstance(outcome, Resolved)
    assert outcome.kind == "input" and outcome.mac == MAC
    assert content(outcome) == b"input file"
    spare = res.resolve("spare.cfg", "192.0.2.50")
    assert spare.kind == "input" and spare.mac is None
    assert res.resolve("unknown.cfg", "192.0.2.50").kind == "custom"


# ---------------------------------------------------------------- registry


def test_not_found_is_recorded_as_a_failed_fetch(root: Path, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "state")
    res = resolver(root, {"192.0.2.10": MAC}, registry=registry)
    outcome = res.resolve("00304f113af8.xml", "192.0.2.10")
    assert isinstance(outcome, Refusal) and outcome.result == "not-found"
    res.record(outcome, "tftp")
    [event] = registry.timeline(MAC)
    assert (event.service, event.kind) == ("tftp", "fetch")
    assert event.detail["result"] == "not-found"
    assert event.detail["file"] == "00304f113af8.xml"
    assert event.detail["file_kind"] == "mac"
    assert event.detail["protocol"] == "tftp"
    phone = registry.phone(MAC)
    assert phone is not None and phone.state == "failed" and phone.ip == "192.0.2.10"
    registry.close()


def test_common_404_recorded_under_the_lease_holder(root: Path, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "state")
    res = resolver(root, {"192.0.2.10": MAC}, registry=registry)
    res.record(res.resolve("f0X4hw1.100.cfg", "192.0.2.10"), "http")
    [event] = registry.timeline(MAC)
    assert event.detail["file_kind"] == "common" and event.detail["result"] == "not-found"
    registry.close()


def test_forbidden_recorded_for_the_file_owner_without_the_thief_ip(
    root: Path, tmp_path: Path
) -> None:
    registry = Registry(tmp_path / "state")
    res = resolver(root, {"192.0.2.10": MAC, "192.0.2.66": OTHER}, registry=registry)
    res.record(res.resolve("00304f113af8.cfg", "192.0.2.66"), "tftp")
    [event] = registry.timeline(MAC)
    assert event.detail["result"] == "forbidden"
    assert event.detail["client"] == "192.0.2.66"
    assert "holds the lease of" in event.detail["reason"]
    phone = registry.phone(MAC)
    assert phone is not None and phone.ip is None  # not the owner's address
    registry.close()


def test_a_strangers_forbidden_fetch_leaves_the_phones_state_and_facts(
    root: Path, tmp_path: Path
) -> None:
    registry = Registry(tmp_path / "state")
    res = resolver(root, {"192.0.2.10": MAC, "192.0.2.66": OTHER}, registry=registry)
    res.record(
        res.resolve("f0VIP-2140PThw1.100.cfg", "192.0.2.10"),
        "http",
        sent=7,
        user_agent="PLANET VIP-2140PT 2.10.2.6887 00304f113af8",
    )
    before = metrics.FILES_SERVED.labels("http", "forbidden")._value.get()
    res.record(
        res.resolve("00304f113af8.cfg", "192.0.2.66"),
        "http",
        user_agent="Yealink SIP-T46S 66.86.0.15",
    )
    assert metrics.FILES_SERVED.labels("http", "forbidden")._value.get() == before + 1
    results = [e.detail["result"] for e in registry.timeline(MAC)]
    assert results == ["ok", "forbidden"]
    phone = registry.phone(MAC)
    assert phone is not None
    assert (phone.state, phone.ip, phone.vendor, phone.model, phone.firmware) == (
        "fetched-common",
        "192.0.2.10",
        "PLANET",
        "VIP-2140PT",
        "2.10.2.6887",
    )
    registry.close()


def test_success_recorded_with_bytes_and_user_agent(root: Path, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "state")
    res = resolver(root, {"192.0.2.10": MAC}, registry=registry)
    outcome = res.resolve("f0VIP-2140PThw1.100.cfg", "192.0.2.10")
    res.record(outcome, "http", sent=7, user_agent="PLANET VIP-2140PT 2.10.2.6887 00304f113af8")
    [event] = registry.timeline(MAC)
    assert event.detail["bytes"] == 7 and event.detail["result"] == "ok"
    phone = registry.phone(MAC)
    assert phone is not None
    assert (phone.state, phone.vendor, phone.model, phone.firmware) == (
        "fetched-common",
        "PLANET",
        "VIP-2140PT",
        "2.10.2.6887",
    )
    registry.close()


def test_unsafe_name_without_any_mac_is_only_counted(root: Path, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "state")
    res = resolver(root, {}, registry=registry)
    res.record(res.resolve("../etc/passwd", "192.0.2.77"), "tftp")
    assert registry.phones() == []
    registry.close()


@pytest.mark.parametrize(
    ("agent", "vendor", "model", "firmware", "mac"),
    [
        ("Fanvil X4 2.10.2.6887 0c383e07e16c", "Fanvil", "X4", "2.10.2.6887", "0c:38:3e:07:e1:6c"),
        ("PLANET VIP-2140PT 2.10.2.6887", "PLANET", "VIP-2140PT", "2.10.2.6887", None),
        (
            "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc",
            "Yealink",
            "SIP-T46S",
            "66.86.0.15",
            "00:15:65:aa:bb:cc",
        ),
        ("curl/8.5.0", None, None, None, None),
    ],
)
def test_user_agent(
    agent: str, vendor: str | None, model: str | None, firmware: str | None, mac: str | None
) -> None:
    parsed = parse_user_agent(agent)
    if vendor is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert (parsed.vendor, parsed.model, parsed.firmware, parsed.mac) == (
            vendor,
            model,
            firmware,
            mac,
        )


def test_a_file_the_server_cannot_read_is_unreadable_not_a_bad_name(root: Path) -> None:
    (root / "a.cfg").symlink_to(root / "b.cfg")
    (root / "b.cfg").symlink_to(root / "a.cfg")  # a loop: stat fails with ELOOP
    outcome = resolver(root).resolve("a.cfg", "192.0.2.10")
    assert isinstance(outcome, Refusal)
    assert (outcome.result, outcome.name) == ("unreadable", "a.cfg")
    assert outcome.reason.startswith("cannot read")
