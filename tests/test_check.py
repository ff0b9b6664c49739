"""`netboot check` refuses what `serve` would refuse, at `file:line: key`, one
error per mistake, and `serve` refuses the same with the same words (issue 13).

Every config here names only loopback (`lo`, 127.0.0.1): nothing is bound or
sent; the checks read this host's interfaces and files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from netboot.cli import main
from netboot.validate import key_lines, line_of

REPO = Path(__file__).resolve().parent.parent
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")

BASE = """\
[appliance]
interface = "lo"
address = "127.0.0.1"
state_dir = "{state}"

[provisioning]
url = "http://127.0.0.1/$mac.cfg"
root = "{root}"

[dhcp]
subnet = "127.0.0.0/8"
pool = "127.0.0.100-127.0.0.200"

[[dhcp.class]]
name = "planet"
vendor = "PLANET"

[lldp]
enabled = false
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "root").mkdir(exist_ok=True)
    path = tmp_path / "netboot.toml"
    path.write_text(text.format(state=tmp_path / "state", root=tmp_path / "root", tmp=tmp_path))
    return path


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["check", "-c", str(path)])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if "warning:" not in line]


def line_number(path: Path, text: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def test_base_config_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BASE)
    code, errors = check(path, capsys)
    assert (code, errors) == (0, [])


# (what to change in BASE, what to append, the line that holds the mistake,
#  the key, what the message says)
HOST_MISTAKES = [
    pytest.param(
        ('interface = "lo"', 'interface = "nb-nope0"'),
        "",
        'interface = "nb-nope0"',
        "appliance.interface",
        "interface nb-nope0 does not exist on this host",
        id="no-such-interface",
    ),
    pytest.param(
        ('address = "127.0.0.1"', 'address = "127.0.0.9"'),
        "",
        'address = "127.0.0.9"',
        "appliance.address",
        "127.0.0.9 is not an address of lo (it has 127.0.0.1/8)",
        id="address-not-on-interface",
    ),
    pytest.param(
        ('state_dir = "{state}"', 'state_dir = "{tmp}/afile/state"'),
        "",
        "state_dir =",
        "appliance.state_dir",
        "afile is not a directory",
        id="state-dir-unusable",
    ),
    pytest.param(
        None,
        '[http]\nhttps_port = 8443\ntls_cert = "{tmp}/cert.pem"\ntls_key = "{tmp}/afile"\n',
        "tls_cert =",
        "http.tls_cert",
        "cert.pem does not exist",
        id="tls-cert-missing",
    ),
    pytest.param(
        None,
        '[http]\nhttps_port = 8443\ntls_cert = "{tmp}/afile"\ntls_key = "{tmp}/afile"\n',
        "tls_cert =",
        "http.tls_cert",
        "cannot load",
        id="tls-cert-not-a-certificate",
    ),
    pytest.param(
        None,
        '[stun]\nenabled = true\naddresses = ["127.0.0.1", "198.51.100.7"]\n',
        "addresses =",
        "stun.addresses",
        "198.51.100.7 is not an address of this host",
        id="stun-address-not-here",
    ),
    pytest.param(
        None,
        '[phones]\ninventory = "{tmp}/phones.csv"\n',
        "inventory =",
        "phones.inventory",
        "phones.csv does not exist",
        id="inventory-missing",
    ),
    pytest.param(
        ('subnet = "127.0.0.0/8"', 'subnet = "10.99.0.0/16"'),
        "",
        "",
        "",
        "",
        id="pool-outside-subnet",  # a file-level mistake: config.py names it
    ),
]


@pytest.mark.parametrize(("change", "extra", "where", "key", "says"), HOST_MISTAKES)
def test_each_mistake_is_one_error_at_its_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, str] | None,
    extra: str,
    where: str,
    key: str,
    says: str,
) -> None:
    (tmp_path / "afile").write_text("not a certificate\n")
    text = BASE if change is None else BASE.replace(*change)
    path = write(tmp_path, text + extra)
    if not where:  # the pool of 127.0.0.x is outside 10.99.0.0/16
        where, key, says = "pool =", "dhcp.pool", "is not inside subnet 10.99.0.0/16"
    code, errors = check(path, capsys)
    assert code == 1
    assert len(errors) == 1, errors
    prefix = f"netboot: {path}:{line_number(path, where)}: {key}: "
    assert errors[0].startswith(prefix), errors[0]
    assert says in errors[0]


def test_unwritable_state_dir_for_an_unprivileged_user() -> None:
    """Tried as an unprivileged user (as the unit runs), with real permissions."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    top = Path(tempfile.mkdtemp(prefix="netboot-check-"))
    try:
        top.chmod(0o755)  # readable by nobody; the state directory is not writable
        (top / "state").mkdir(mode=0o755)
        # The code, where nobody can read it whatever the clone's parents allow.
        src = top / "src"
        shutil.copytree(REPO / "netboot", src / "netboot")
        for d in (src, *(p for p in src.rglob("*") if p.is_dir())):
            d.chmod(0o755)
        path = write(top, BASE)
        proc = subprocess.run(
            [*NOBODY, sys.executable, "-m", "netboot.cli", "check", "-c", str(path)],
            capture_output=True,
            text=True,
            cwd=src,
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(top)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(
        f"netboot: {path}:4: appliance.state_dir: {top / 'state'} is not writable by user 65534"
    ), proc.stderr


@pytest.mark.parametrize(
    ("change", "typo", "meant"),
    [
        # Each misspelling would also have caused another error, not reported:
        (('interface = "lo"', 'intreface = "lo"'), "intreface", "interface"),  # required
        (("pool =", "pol ="), "pol", "pool"),  # pool required with subnet
        (('vendor = "PLANET"', 'vendr = "PLANET"'), "vendr", "vendor"),  # class matches nothing
        (('vendor = "PLANET"', 'mac_prefx = "00:30:4f"'), "mac_prefx", "mac_prefix"),
        (("[lldp]", "[lldq]"), "lldq", "lldp"),  # [lldp]'s defaults
        (("[dhcp]\n", "[dhpc]\n"), "dhpc", "dhcp"),  # [dhcp] then holds only the class
        (("[lldp]", '[http]\nusername = "u"\npasswrd = "p"\n[lldp]'), "passwrd", "password"),
        (
            (
                "[lldp]",
                '[[dhcp.scope]]\ninterfce = "lo"\nsubnet = "10.9.0.0/24"\n'
                'pool = "10.9.0.10-10.9.0.20"\n[lldp]',
            ),
            "interfce",
            "interface",
        ),
    ],
)
def test_a_typo_is_exactly_one_error_with_did_you_mean(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, str],
    typo: str,
    meant: str,
) -> None:
    path = write(tmp_path, BASE.replace(*change))
    code, errors = check(path, capsys)
    assert code == 1
    assert len(errors) == 1, errors
    spelled = next(line for line in path.read_text().splitlines() if typo in line)
    assert f":{line_number(path, spelled)}: " in errors[0]
    assert errors[0].endswith(f"{typo}: unknown key (did you mean {meant}?)"), errors[0]


def test_a_value_of_the_wrong_type_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table given as a value: one error, not one per key it should have held."""
    path = write(tmp_path, 'lldp = "off"\n' + BASE.replace("[lldp]\nenabled = false\n", ""))
    code, errors = check(path, capsys)
    assert code == 1
    assert errors == [
        f"netboot: {path}:{line_number(path, 'lldp =')}: lldp: must be a table, got 'off'"
    ]


def test_bad_toml_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BASE.replace("[lldp]", "[lldp"))
    code, errors = check(path, capsys)
    assert code == 1
    assert len(errors) == 1
    assert errors[0].startswith(f"netboot: {path}:{line_number(path, '[lldp')}: not valid TOML")


def test_warnings_stay_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BASE.replace('url = "http://127.0.0.1/$mac.cfg"\n', ""))
    assert main(["check", "-c", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "OK" in out
    assert "netboot: warning: provisioning.url: empty" in err


def test_no_host_checks_the_file_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BASE.replace('interface = "lo"', 'interface = "nb-nope0"'))
    assert main(["check", "--no-host", "-c", str(path)]) == 0
    assert main(["check", "-c", str(path)]) == 1


def test_serve_refuses_the_same_with_the_same_words(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace('address = "127.0.0.1"', 'address = "127.0.0.9"'))
    runs = [
        subprocess.run(
            [sys.executable, "-m", "netboot.cli", command, "-c", str(path)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=False,
        )
        for command in ("check", "serve")
    ]
    assert [r.returncode for r in runs] == [1, 1]
    expected = (
        f"netboot: {path}:3: appliance.address: 127.0.0.9 is not an address of lo "
        "(it has 127.0.0.1/8)"
    )
    for run in runs:
        assert run.stderr.splitlines() == [expected], run.stderr
    assert not (tmp_path / "state").exists()  # serve stopped before opening anything


def test_key_lines() -> None:
    text = """\
# comment = 1
top = 1
[a]
x = 1  # y = 2
"q.k" = 2
[[a.arr]]
v = 1
[a.arr.sub]
w = 2
[[a.arr]]
v = '''
[not.a.table]
z = 3
'''
[b]
  c.d = [
    1,
  ]
nested = [
  [1, "]"],  # ]
  [2],
]
after = 1
"""
    lines = key_lines(text)
    assert lines["top"] == 2
    assert lines["a"] == 3
    assert lines["a.x"] == 4
    assert lines["a.q.k"] == 5
    assert lines["a.arr"] == 6 and lines["a.arr[0]"] == 6
    assert lines["a.arr[0].v"] == 7
    assert lines["a.arr[0].sub"] == 8 and lines["a.arr[0].sub.w"] == 9
    assert lines["a.arr[1].v"] == 11
    assert "not.a.table" not in lines and "z" not in lines
    assert lines["b.c.d"] == 16
    assert lines["b.nested"] == 19 and lines["b.after"] == 23
    assert '1, "]"' not in lines
    assert line_of(lines, "a.arr[1].missing") == 10
    assert line_of(lines, "nowhere.at.all") == 1
