"""Every family's per-MAC file names are bound to the DHCP lease, over HTTP,
TFTP and FTP, against `netboot serve` in namespaces with real clients.

The phone namespace holds the lease of 00:30:4f:11:3a:f8 (from netboot's
DHCP, via udhcpc); a host on another link holds no lease. Under root sits one
file for each per-MAC name of each family (`netboot.vendors`: `<mac>.cfg`,
`cfg<mac>.xml`, `SEP<MAC>.cnf.xml`, `<mac>-phone.cfg`, `spa<mac>.xml`,
`<MAC>.xml`, `snom<model>-<MAC>.htm`, `Config<MAC>.cfg` ...). The host without
the lease is refused every one of them by curl over HTTP and FTP and by
tftp-hpa; the phone gets each of them over HTTP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netboot import vendors
from tests.netns import Lab
from tests.test_tftp_netns import PHONE_MAC, SERVER, Site

pytestmark = pytest.mark.netns

THIEF_SIDE = "192.168.11.2"  # the server's address on the lease-less host's link

SERVICES = """
[ftp]
enabled = true
port = 21
passive_ports = [30000, 30010]
[http]
enabled = true
port = 80
https_port = 0
"""


def names() -> list[str]:
    out: list[str] = []
    for profile in vendors.PROFILES:
        for name in profile.mac_file_names(PHONE_MAC):
            out.append(name.replace("*", "D785"))
    return sorted(set(out))


@pytest.fixture
def site(lab: Lab, tmp_path: Path) -> Site:
    return Site(lab, tmp_path, SERVICES)


def test_every_family_per_mac_name_is_lease_bound(site: Site) -> None:
    files = names()
    assert len(files) >= 15
    for index, name in enumerate(files):
        (site.root / name).write_text(f"secret {index} for {PHONE_MAC}\n")
    site.server.start()
    site.lease()

    refused: dict[str, list[str]] = {}
    for index, name in enumerate(files):
        body = f"secret {index} for {PHONE_MAC}\n"
        # The lease holder gets its file over HTTP.
        got = site.phone.run(
            ["curl", "-sS", "-f", "--max-time", "10", f"http://{SERVER}/{name}"], timeout=30
        ).stdout
        assert got == body, name
        # The host without the lease: HTTP 403, FTP 550, TFTP error; never the body.
        status = site.thief.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
             f"http://{THIEF_SIDE}/{name}"],
            timeout=30, check=False,
        ).stdout  # fmt: skip
        if status != "403":
            refused.setdefault(name, []).append(f"http {status}")
        ftp = site.thief.run(
            ["curl", "-sS", "--max-time", "10", f"ftp://{THIEF_SIDE}/{name}"],
            timeout=30, check=False,
        )  # fmt: skip
        if ftp.returncode != 78 or body in ftp.stdout:  # CURLE_REMOTE_FILE_NOT_FOUND (550)
            refused.setdefault(name, []).append(f"ftp rc={ftp.returncode}")
        local = site.tmp / "tftp.out"
        local.unlink(missing_ok=True)
        out = site.tftp_hpa(site.thief, name, local, server=THIEF_SIDE)
        if "Error code 2" not in out or (local.exists() and body in local.read_text()):
            refused.setdefault(name, []).append(f"tftp {out.strip()[:80]}")
    assert refused == {}, refused
