"""A malformed inventory (issue 16): each bad line is one clear error naming
file, line and column; every good row still works; `netboot check` exits 1;
`netboot serve` keeps serving the good phones their files."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netboot.config import ConfigError, load_config, parse_config
from netboot.provisioning.inventory import MAX_LINE, MAX_REPORTED, load_inventory, parse_inventory
from netboot.provisioning.render import ConfigRenderer
from netboot.state.versions import VersionStore
from netboot.text import bad_character

REPO = Path(__file__).resolve().parent.parent

GOOD_1 = b"00:30:4f:00:00:01,X4,301,pw,Desk one\n"
GOOD_2 = b"00:30:4f:00:00:02,X4,302,pw,Desk two\n"


def one_bad_line(bad: bytes) -> tuple[list[str], list[str], list[str]]:
    inv = parse_inventory(
        b"mac,model,extension,password,display_name\n" + GOOD_1 + bad + GOOD_2, "p.csv"
    )
    return [p.mac for p in inv.phones], list(inv.errors), list(inv.problems)


@pytest.mark.parametrize(
    ("bad", "where", "what"),
    [
        (
            b"00:30:4f:00:00:09,X4,309,pw,Caf\xe9\n",
            "p.csv:3:32:",
            "not UTF-8: byte 0xE9 in field display_name",
        ),
        (
            b"00:30:4f:00:00:09,X4,309,p\x00w,Desk\n",
            "p.csv:3:27:",
            "U+0000 (NUL) in field password",
        ),
        (
            b"00:30:4f:00:00:09,X4,309,pw,De\x0bsk\n",
            "p.csv:3:31:",
            "U+000B (VT) in field display_name",
        ),
        (
            b"00:30:4f:00:00:09,X4,309,pw,De\x0csk\n",
            "p.csv:3:31:",
            "U+000C (FF) in field display_name",
        ),
        (
            "00:30:4f:00:00:09,X4,309,pw,De\u0085sk\n".encode(),
            "p.csv:3:31:",
            "U+0085 (NEL) in field display_name",
        ),
        (
            "00:30:4f:00:00:09,X4,309,pw,De\u2028sk\n".encode(),
            "p.csv:3:31:",
            "U+2028 (LINE SEPARATOR)",
        ),
        (
            "00:30:4f:00:00:09,X4,3\u202e09,pw,Desk\n".encode(),
            "p.csv:3:23:",
            "U+202E (RIGHT-TO-LEFT OVERRIDE) in field extension",
        ),
        (
            b"00:30:4f:00:00:09,X4,309,pw,\tDesk\n",
            "p.csv:3:29:",
            "U+0009 (TAB) in field display_name",
        ),
        (
            b'00:30:4f:00:00:09,X4,309,pw,"Desk\n',
            "p.csv:3:29:",
            "malformed CSV: a quoted field is not closed",
        ),
        (b'00:30:4f:00:00:09,X4,309,pw,"De"sk\n', "p.csv:3:29:", "malformed CSV"),
        (
            b"00:30:4f:00:00:09,X4,309,pw," + b"x" * (200 * 1024) + b"\n",
            f"p.csv:3:{MAX_LINE + 1}:",
            f"line is {28 + 200 * 1024} characters long, at most {MAX_LINE}",
        ),
    ],
)
def test_a_malformed_line_is_one_error_and_the_good_rows_stay(
    bad: bytes, where: str, what: str
) -> None:
    macs, errors, problems = one_bad_line(bad)
    assert macs == ["00:30:4f:00:00:01", "00:30:4f:00:00:02"]
    assert len(errors) == 1, errors
    assert errors[0].startswith(where) and what in errors[0], errors[0]
    assert errors == problems


def test_utf8_with_a_bom_and_crlf_is_fine() -> None:
    inv = parse_inventory(
        b"\xef\xbb\xbf"
        + GOOD_1.replace(b"\n", b"\r\n")
        + "00:30:4f:00:00:03,X4,303,pw,Büro\r\n".encode()
    )
    assert [p.display_name for p in inv.phones] == ["Desk one", "Büro"]
    assert inv.problems == () and inv.errors == ()


def test_a_flood_of_bad_lines_reports_a_bounded_number() -> None:
    data = GOOD_1 + b"\x0b\n" * 10000 + GOOD_2
    inv = parse_inventory(data, "p.csv")
    assert len(inv.phones) == 2
    assert len(inv.problems) == MAX_REPORTED + 1
    assert inv.problems[-1] == f"p.csv: {10000 - MAX_REPORTED} more problem(s) not shown"


def check(tmp_path: Path, inventory: bytes) -> subprocess.CompletedProcess[str]:
    inv = tmp_path / "phones.csv"
    inv.write_bytes(inventory)
    config = tmp_path / "config.toml"
    config.write_text(
        # lo's own address: check refuses one the interface lacks (issue 13).
        f'[appliance]\ninterface = "lo"\naddress = "127.0.0.1"\nstate_dir = "{tmp_path}"\n'
        f'[provisioning]\nurl = "http://127.0.0.1/$mac.cfg"\nroot = "{tmp_path}"\n'
        "[dhcp]\nenabled = false\n"
        f'[phones]\ninventory = "{inv}"\n'
    )
    return subprocess.run(
        [sys.executable, "-m", "netboot.cli", "check", "-c", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_netboot_check_exits_1_naming_file_line_column(tmp_path: Path) -> None:
    proc = check(
        tmp_path, GOOD_1 + b"00:30:4f:00:00:09,X4,309,pw,Caf\xe9\n" + b"x," * 70000 + b"\n"
    )
    assert proc.returncode == 1, proc.stderr
    inv = tmp_path / "phones.csv"
    assert f"netboot: {inv}:2:32: not UTF-8: byte 0xE9 in field display_name" in proc.stderr
    assert f"netboot: {inv}:3:{MAX_LINE + 1}: line is 140000 characters long" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert check(tmp_path, GOOD_1).returncode == 0


def test_the_renderer_serves_the_good_phones_of_a_broken_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inv = tmp_path / "phones.csv"
    inv.write_bytes(
        GOOD_1
        + b'"'
        + b"y" * (140 * 1024)
        + b'"\n'
        + b"00:30:4f:00:00:09,X4,309,pw,Caf\xe9\n"
        + GOOD_2
    )
    config = parse_config(
        tomllib.loads(
            f'[appliance]\ninterface = "lo"\naddress = "192.0.2.1"\nstate_dir = "{tmp_path}"\n'
            '[provisioning]\nurl = "http://192.0.2.1/$mac.cfg"\n[dhcp]\nenabled = false\n'
            f'[phones]\ninventory = "{inv}"\nsip_server = "192.0.2.5"\n'
        )
    )
    renderer = ConfigRenderer(config, versions=VersionStore(tmp_path))
    for mac in ("003045000001", "00304f000001", "00304f000002"):
        got = renderer(f"{mac}.cfg")
        assert (got is not None) is (mac != "003045000001")
    assert renderer("00304f000009.cfg") is None
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and all(f"{inv}:" in e for e in errors), errors
    renderer.close()
    assert len(load_inventory(inv).errors) == 2


def test_config_values_with_control_characters_are_refused(tmp_path: Path) -> None:
    raw = tomllib.loads(
        '[appliance]\ninterface = "lo"\n[dhcp]\nenabled = false\n'
        '[phones]\nsip_server = "pbx\\u2028evil = 1"\nadmin_password = "a\\u000bb"\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert caught.value.problems == [
        "phones.sip_server: U+2028 (LINE SEPARATOR) at character 4 of the value is not allowed",
        "phones.admin_password: U+000B (VT) at character 2 of the value is not allowed",
    ]
    latin = tmp_path / "c.toml"
    latin.write_bytes(b'[appliance]\ninterface = "lo"\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(latin)
    assert caught.value.problems == [f"{latin}:3:12: not UTF-8 (byte 0xE9): save it as UTF-8"]


@pytest.mark.netns
def test_serve_keeps_giving_good_phones_their_files(tmp_path: Path) -> None:
    """In `serve`, a 140 KiB field and a Latin-1 byte used to cost a valid
    phone its file (HTTP 500 / TFTP not found)."""
    from tests.netns import Lab, Segment, server_config, udhcpc_lease

    mac = "00:30:4f:11:3a:f8"
    inv = tmp_path / "phones.csv"
    inv.write_bytes(
        b'00:30:4f:00:00:01,X4,301,pw,"'
        + b"y" * (140 * 1024)
        + b'"\n'
        + f"{mac},VIP-2140PT,1001,s3cret,Reception\n".encode()
        + b"00:30:4f:00:00:09,X4,309,pw,Caf\xe9\n"
    )
    body = (
        '[dhcp]\nsubnet = "192.168.10.0/24"\npool = "192.168.10.100-192.168.10.120"\n'
        "ping_check = false\n[tftp]\nenabled = true\n[http]\nenabled = true\nhttps_port = 0\n"
        f'[phones]\ninventory = "{inv}"\nsip_server = "192.168.10.5"\n'
    )
    url, root = "http://192.168.10.2/$mac.cfg", tmp_path / "files"
    text = server_config(body, state=tmp_path / "state", address="192.168.10.2", url=url, root=root)
    root.mkdir()
    with Lab() as lab:
        wire = Segment(lab, {"srv": "192.168.10.2/24", "phone": None}, macs={"phone": mac})
        phone = wire["phone"]
        server = wire.server("srv", tmp_path / "netboot.toml", text).start()
        udhcpc_lease(phone, tmp_path, configure=True)
        got = phone.run(["curl", "-sS", "-f", "-m", "10", "http://192.168.10.2/00304f113af8.cfg"])
        assert "1001" in got.stdout
        out = tmp_path / "tftp.cfg"
        phone.run(["tftp", "192.168.10.2", "-c", "get", "00304f113af8.cfg", str(out)], timeout=30)
        assert out.read_text() == got.stdout
        log = server.log()
        assert f"inventory: {inv}:1:{MAX_LINE + 1}: line is" in log, log
        assert f"inventory: {inv}:3:32: not UTF-8: byte 0xE9" in log, log
        assert "Traceback" not in log, log
        server.stop()


def test_an_oversized_file_keeps_the_rows_it_could_read(tmp_path: Path) -> None:
    from netboot.provisioning.inventory import MAX_FILE

    inv = tmp_path / "phones.csv"
    filler = b"# " + b"z" * 1000 + b"\n"
    count = MAX_FILE // len(filler) + 10
    inv.write_bytes(GOOD_1 + filler * count + GOOD_2)
    loaded = load_inventory(inv)
    assert [p.mac for p in loaded.phones] == ["00:30:4f:00:00:01"]
    line = MAX_FILE // len(filler) + 1  # GOOD_1, then the comment lines that fit
    assert loaded.errors == (
        f"{inv}:{line + 1}:1: larger than 8 MiB: this line and the rest not read",
    )


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=80),
            st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.just(GOOD_1.rstrip(b"\n")),
        ),
        max_size=12,
    )
)
@settings(max_examples=300, deadline=None)
def test_any_bytes_give_an_inventory_never_an_exception(lines: list[bytes]) -> None:
    inv = parse_inventory(b"\n".join(lines), "p.csv")
    assert all(p.startswith("p.csv:") for p in inv.problems)
    assert set(inv.errors) <= set(inv.problems) or len(inv.problems) > MAX_REPORTED
    for phone in inv.phones:  # nothing that could end or hide a config line gets through
        for value in (phone.extension, phone.password, phone.display_name, phone.input_id):
            assert bad_character(value) is None and "\n" not in value and "\r" not in value
