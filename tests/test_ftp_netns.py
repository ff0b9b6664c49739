"""The read-only FTP service (pyftpdlib) in namespaces against curl.

Same site as the TFTP test: a phone with a lease from netboot's DHCP, a host
on another link without one. Anonymous read-only access, uploads and deletes
refused, names that leave root never reach a file outside it, per-MAC files
bound to the lease holder and the refusal recorded in the registry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.netns import Lab, Netns, wait_for
from tests.test_tftp_netns import PHONE_MAC, SERVER, Site

pytestmark = pytest.mark.netns

FTP = """
[ftp]
enabled = true
port = 21
passive_ports = [30000, 30010]
"""


@pytest.fixture
def site(lab: Lab, tmp_path: Path) -> Site:
    return Site(lab, tmp_path, FTP)


def curl(ns: Netns, *args: str) -> tuple[int, str, bytes]:
    proc = ns.run(["curl", "-sS", "--max-time", "20", *args], timeout=40, check=False)
    return proc.returncode, proc.stderr, proc.stdout.encode("latin-1", "replace")


def fetch(ns: Netns, url: str, out: Path, *extra: str) -> tuple[int, str]:
    out.unlink(missing_ok=True)
    code, err, _ = curl(ns, *extra, "-o", str(out), url)
    return code, err


def test_ftp_read_only_escape_and_mac_binding(site: Site) -> None:
    (site.root / "sub").mkdir()
    (site.root / "sub" / "custom.txt").write_text("custom\n")
    (site.root / "link.txt").symlink_to(site.tmp / "secret.txt")
    site.server.start()
    ip = site.lease()
    base = f"ftp://{SERVER}"
    own = (site.root / "00304f113af8.cfg").read_bytes()

    # Anonymous read: the per-MAC file in another spelling, a file in a
    # subdirectory, and the 5 MB firmware.
    out = site.tmp / "got"
    code, err = fetch(site.phone, f"{base}/00-30-4F-11-3A-F8.cfg", out, "-v")
    assert code == 0, err
    assert out.read_bytes() == own
    assert fetch(site.phone, f"{base}/sub/custom.txt", out)[0] == 0
    assert out.read_text() == "custom\n"
    assert fetch(site.phone, f"{base}/fw.bin", out)[0] == 0
    assert out.read_bytes() == site.firmware
    code, _, listing = curl(site.phone, f"{base}/")
    assert code == 0 and b"fw.bin" in listing

    # Uploads, deletes and renames are refused; nothing appears under root.
    upload = site.tmp / "upload.cfg"
    upload.write_text("x")
    code, err, _ = curl(site.phone, "-T", str(upload), f"{base}/up.cfg")
    assert code == 25, err  # CURLE_UPLOAD_FAILED: STOR refused
    assert not (site.root / "up.cfg").exists()
    code, err, _ = curl(site.phone, "-Q", "DELE fw.bin", f"{base}/")
    assert code != 0 and (site.root / "fw.bin").exists()
    code, err, _ = curl(site.phone, "-Q", "MKD newdir", f"{base}/")
    assert code != 0 and not (site.root / "newdir").exists()

    # Escapes: `..` stays inside root (pyftpdlib's chroot), a symlink pointing
    # out is refused by the resolver. The secret never arrives.
    for url, extra in [
        (f"{base}/../secret.txt", ["--path-as-is"]),
        (f"{base}/sub/../../secret.txt", ["--path-as-is"]),
        (f"{base}/../secret.txt", ["--path-as-is", "--ftp-method", "nocwd"]),
        (f"{base}/link.txt", []),
    ]:
        code, err = fetch(site.phone, url, out, *extra)
        assert code != 0, url
        assert not out.exists() or b"outside root" not in out.read_bytes()

    # The lease-less host asks for the phone's per-MAC file: 550, recorded.
    code, err = fetch(site.thief, "ftp://192.168.11.2/00304f113af8.cfg", out)
    assert code == 78, err  # CURLE_REMOTE_FILE_NOT_FOUND: the 550
    assert not out.exists() or out.read_bytes() != own

    def recorded() -> list[dict[str, Any]]:
        proc = site.server.cli("phones", PHONE_MAC, "--json", check=False)
        if proc.returncode != 0:
            return []
        events = json.loads(proc.stdout)["timeline"]
        fetches = [e["detail"] for e in events if e["kind"] == "fetch"]
        return fetches if any(f["result"] == "forbidden" for f in fetches) else []

    fetches = wait_for(recorded, 20, "the refused FTP fetch in the registry")
    results = [(f["protocol"], f["file"], f["result"], f["client"]) for f in fetches]
    assert ("ftp", "00-30-4F-11-3A-F8.cfg", "ok", ip) in results
    assert ("ftp", "fw.bin", "ok", ip) in results
    assert ("ftp", "00304f113af8.cfg", "forbidden", "192.168.11.66") in results
    [ok_own] = [f for f in fetches if f["file"] == "00-30-4F-11-3A-F8.cfg"]
    assert ok_own["bytes"] == len(own) and ok_own["file_kind"] == "mac"
