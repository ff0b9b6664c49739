from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netboot.provisioning.inventory import (
    InventoryCache,
    find_model,
    load_inventory,
    model_for_common_file,
    parse_inventory,
)

REPO = Path(__file__).resolve().parent.parent

GOOD_AND_BAD = """\
mac,model,extension,password,display_name,input_id
00:30:4f:11:3a:f8,VIP-2140PT,1001,s3cret,Reception,4711
# a comment line
00304F113AF9,vip-1120pt,1002,pw2,Office 2

zz:30:4f:11:3a:fa,VIP-2140PT,1003,pw3,Bad MAC
00-30-4f-11-3a-f8,VIP-2140PT,1004,pw4,Dup MAC
00:30:4f:11:3a:fb,VIP-2140PT,1001,pw5,Dup extension
00:30:4f:11:3a:fc,VIP-9999,1005,pw6,Unknown model
80:5e:c0:00:00:01,T46S,2001,pw7,Yealink desk,4711
80:5e:c0:00:00:02,T46S,,pw8,No extension
80:5e:c0:00:00:03,T46S,2003,pw9,Too,many,columns
80:5e:c0:00:00:04,T42S,2004,pw10,"Smith, John"
"""


def test_good_rows_kept_bad_rows_reported_with_line_numbers() -> None:
    inv = parse_inventory(GOOD_AND_BAD, "phones.csv")
    assert [p.mac for p in inv.phones] == [
        "00:30:4f:11:3a:f8",
        "00:30:4f:11:3a:f9",
        "80:5e:c0:00:00:04",
    ]
    first = inv.phones[0]
    assert (first.model.name, first.extension, first.password, first.display_name) == (
        "VIP-2140PT",
        "1001",
        "s3cret",
        "Reception",
    )
    assert (first.input_id, first.line, first.mac_hex) == ("4711", 2, "00304f113af8")
    assert inv.phones[1].model.name == "VIP-1120PT"  # model matched without regard to case
    assert inv.phones[2].display_name == "Smith, John"
    problems = inv.problems
    assert len(problems) == 7, problems
    expect = [
        ("phones.csv:6:", "bad MAC"),
        ("phones.csv:7:", "duplicate MAC 00:30:4f:11:3a:f8 (first on line 2)"),
        ("phones.csv:8:", "duplicate extension 1001 (first on line 2)"),
        ("phones.csv:9:", "unknown model 'VIP-9999'"),
        ("phones.csv:10:", "duplicate input_id 4711"),
        ("phones.csv:11:", "missing extension"),
        ("phones.csv:12:", "columns"),
    ]
    for problem, (prefix, text) in zip(problems, expect, strict=True):
        assert problem.startswith(prefix) and text in problem, problem
    assert inv.by_mac("00:30:4f:11:3a:f9") is inv.phones[1]
    assert inv.by_input("4711") is first
    assert inv.by_input("nope") is None
    assert [m.name for m in inv.models()] == ["VIP-2140PT", "VIP-1120PT", "T42S"]


def test_no_header_and_optional_input_column() -> None:
    inv = parse_inventory("00:30:4f:00:00:01,X4,300,p,Desk\n")
    assert inv.problems == ()
    assert inv.phones[0].input_id == ""


def test_models_and_common_files() -> None:
    model = find_model(" vip-2140pt ")
    assert model is not None and model.common_file == "f0VIP-2140PThw1.100.cfg"
    assert model_for_common_file("F0VIP-2140PTHW1.100.CFG") is model
    t46s = find_model("T46S")
    assert t46s is not None and (t46s.vendor, t46s.common_file) == ("yealink", "y000000000066.cfg")
    assert find_model("nope") is None


def test_missing_file_is_one_problem(tmp_path: Path) -> None:
    inv = load_inventory(tmp_path / "absent.csv")
    assert inv.phones == () and len(inv.problems) == 1 and "cannot read" in inv.problems[0]


def test_cache_rereads_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "phones.csv"
    path.write_text("00:30:4f:00:00:01,X4,300,p,Desk\n")
    cache = InventoryCache(path)
    assert len(cache.get().phones) == 1
    assert cache.get() is cache.get()
    path.write_text("00:30:4f:00:00:01,X4,300,p,Desk\n00:30:4f:00:00:02,X4,301,p,Desk 2\n")
    assert len(cache.get().phones) == 2


@pytest.mark.parametrize("with_bad", [False, True])
def test_netboot_check_reports_bad_rows(tmp_path: Path, with_bad: bool) -> None:
    inv = tmp_path / "phones.csv"
    rows = "00:30:4f:00:00:01,X4,300,p,Desk\n"
    if with_bad:
        rows += "00:30:4f:00:00:02,NOPE,301,p,Desk\n"
    inv.write_text(rows)
    config = tmp_path / "config.toml"
    config.write_text(
        # lo's own address: check now refuses one the interface lacks (issue 13).
        f'[appliance]\ninterface = "lo"\naddress = "127.0.0.1"\nstate_dir = "{tmp_path}"\n'
        f'[provisioning]\nurl = "http://127.0.0.1/$mac.cfg"\nroot = "{tmp_path}"\n'
        "[dhcp]\nenabled = false\n"
        f'[phones]\ninventory = "{inv}"\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "netboot.cli", "check", "-c", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (f"{inv}:2: unknown model 'NOPE'" in proc.stderr) is with_bad, proc.stderr


def test_firmware_column_picks_the_fanvil_layout() -> None:
    inv = parse_inventory(
        "00:30:4f:00:00:01,VIP-2140PT,1,p,a\n"
        "00:30:4f:00:00:02,VIP-2140PT,2,p,b,,1.6.3.160\n"
        "00:30:4f:00:00:03,X6,3,p,c\n"
        "00:30:4f:00:00:04,X6,4,p,d,,2.14.0.7386\n"
        "80:5e:c0:00:00:05,T46S,5,p,e,,66.86.0.15\n"
        "00:30:4f:00:00:06,X4,6,p,f,,v2\n"
    )
    layouts = [p.layout for p in inv.phones]
    assert layouts == [2, 1, 1, 2, 0]  # model default, 1.x, model default (X6), 2.x, Yealink
    assert inv.problems == ("inventory:6: firmware 'v2' is not a version like 2.10.2.6887",)
    vip, x6 = inv.phones[0].model, inv.phones[2].model
    # Mixed layouts of one model: the common file keeps the model's, and it is said.
    assert inv.common_layout(vip) == 2 and inv.common_layout(x6) == 1
    assert len(inv.layout_problems()) == 2
    one = parse_inventory("00:30:4f:00:00:02,VIP-2140PT,2,p,b,,1.6.3.160\n")
    assert one.common_layout(vip) == 1 and one.layout_problems() == []
