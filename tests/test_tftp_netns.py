"""The real TFTP service in namespaces against tftp-hpa, curl and busybox tftp.

A phone namespace gets its lease from netboot's DHCP (udhcpc), then fetches its
per-MAC file (spelled the way phones spell it), a 5 MB firmware with blksize,
and is refused `../` names; a second host that holds no lease asks for the
phone's per-MAC file and gets an access violation, which the registry shows.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.netns import Lab, Netns, Segment, server_config, udhcpc_lease, wait_for

pytestmark = pytest.mark.netns

PHONE_MAC = "00:30:4f:11:3a:f8"
THIEF_MAC = "00:30:4f:66:66:66"
SERVER = "192.168.10.2"

CONFIG = """
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.120"
lease_time = 600
ping_timeout_ms = 50
[tftp]
enabled = true
port = 69
timeout = 1
retries = 3
"""


class Site:
    def __init__(self, lab: Lab, tmp: Path, extra_config: str = "") -> None:
        self.tmp = tmp
        wire = Segment(lab, {"srv": f"{SERVER}/24", "phone": None}, macs={"phone": PHONE_MAC})
        self.srv, self.phone = wire["srv"], wire["phone"]
        self.thief = lab.netns("thief")
        # The thief sits on a second link with a static address: it holds no lease.
        lab.link(self.srv, "eth1", self.thief, "eth0", "192.168.11.2/24", "192.168.11.66/24")
        self.thief.run(["ip", "link", "set", "eth0", "address", THIEF_MAC])
        self.root = tmp / "root"
        self.root.mkdir()
        (self.root / "00304f113af8.cfg").write_bytes(
            b"<<VOIP CONFIG FILE>>Version:2.0000000001\n<SIP CONFIG MODULE>\n"
            b"SIP1 Register Pswd  :secret\n<<END OF FILE>>\n"
        )
        self.firmware = os.urandom(5 * 1024 * 1024 + 1234)
        (self.root / "fw.bin").write_bytes(self.firmware)
        (tmp / "secret.txt").write_text("outside root\n")
        self.config = tmp / "netboot.toml"
        url = "tftp://192.168.10.2/"
        text = server_config(CONFIG + extra_config, state=tmp / "state", url=url, root=self.root)
        self.server = wire.server("srv", self.config, text)

    def lease(self) -> str:
        return udhcpc_lease(self.phone, self.tmp, configure=True)["ip"]

    def tftp_hpa(self, ns: Netns, remote: str, local: Path, server: str = SERVER) -> str:
        """tftp-hpa's `get`; its output (it reports errors there, exit status 0 or not)."""
        proc = ns.run(
            ["tftp", "-m", "binary", "-v", server, "-c", "get", remote, str(local)],
            timeout=60,
            check=False,
        )
        return str(proc.stdout) + str(proc.stderr)

    def timeline(self, mac: str) -> list[dict[str, Any]]:
        proc = self.server.cli("phones", mac, "--json", check=False)
        if proc.returncode != 0:
            return []
        return list(json.loads(proc.stdout)["timeline"])


@pytest.fixture
def site(lab: Lab, tmp_path: Path) -> Site:
    return Site(lab, tmp_path)


def _fetches(site: Site, mac: str) -> list[dict[str, Any]]:
    return [e["detail"] for e in site.timeline(mac) if e["kind"] == "fetch"]


def test_tftp_per_mac_large_file_and_refusals(site: Site) -> None:
    site.server.start()
    ip = site.lease()
    assert ip.startswith("192.168.10.1")

    # Per-MAC file, asked for in upper case with dashes, by the phone holding the lease.
    own = site.tmp / "own.cfg"
    out = site.tftp_hpa(site.phone, "00-30-4F-11-3A-F8.cfg", own)
    assert own.read_bytes() == (site.root / "00304f113af8.cfg").read_bytes(), out

    # A 5 MB firmware: curl and busybox ask for blksize 1428, tftp-hpa uses 512.
    digest = hashlib.sha256(site.firmware).hexdigest()
    curl_out = site.tmp / "fw-curl.bin"
    proc = site.phone.run(
        [
            "curl",
            "-sS",
            "-v",
            "--tftp-blksize",
            "1428",
            "-o",
            str(curl_out),
            f"tftp://{SERVER}/fw.bin",
        ],
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "blksize parsed from OACK (1428)" in proc.stderr, proc.stderr
    assert hashlib.sha256(curl_out.read_bytes()).hexdigest() == digest
    bb_out = site.tmp / "fw-busybox.bin"
    site.phone.run(
        ["busybox", "tftp", "-b", "1428", "-g", "-r", "fw.bin", "-l", str(bb_out), SERVER],
        timeout=60,
    )
    assert hashlib.sha256(bb_out.read_bytes()).hexdigest() == digest
    hpa_out = site.tmp / "fw-hpa.bin"
    site.tftp_hpa(site.phone, "fw.bin", hpa_out)
    assert hashlib.sha256(hpa_out.read_bytes()).hexdigest() == digest

    # Names that leave root: refused with an access violation, nothing sent.
    for name in ("../secret.txt", "sub/../../secret.txt", "/etc/passwd"):
        local = site.tmp / "escape.out"
        out = site.tftp_hpa(site.phone, name, local)
        assert "Error code 2" in out, out
        assert not local.exists() or local.read_bytes() == b""
        local.unlink(missing_ok=True)

    # A missing file: "file not found", recorded for the phone holding the lease.
    out = site.tftp_hpa(site.phone, "f0VIP-2140PThw1.100.cfg", site.tmp / "missing.cfg")
    assert "Error code 1" in out, out

    # Write requests are refused (read-only server).
    upload = site.tmp / "upload.cfg"
    upload.write_text("x")
    proc = site.phone.run(
        ["tftp", "-m", "binary", "-v", SERVER, "-c", "put", str(upload), "up.cfg"],
        timeout=30,
        check=False,
    )
    assert "Error code 2" in str(proc.stdout) + str(proc.stderr)
    assert not (site.root / "up.cfg").exists()

    # The thief (no lease) asks for the phone's per-MAC file: access violation.
    stolen = site.tmp / "stolen.cfg"
    out = site.tftp_hpa(site.thief, "00304f113af8.cfg", stolen, "192.168.11.2")
    assert "Error code 2" in out, out
    assert not stolen.exists() or b"secret" not in stolen.read_bytes()

    def recorded() -> list[dict[str, Any]]:
        # A transfer is recorded when the server has read the client's last ACK,
        # which may be after the client moved on.
        fetches = _fetches(site, PHONE_MAC)
        refused = any(f["result"] == "forbidden" for f in fetches)
        firmware = [f for f in fetches if f["file"] == "fw.bin" and f["result"] == "ok"]
        return fetches if refused and len(firmware) == 3 else []

    fetches = wait_for(recorded, 20, "the refused fetch and three firmware fetches in the registry")
    results = [(f["file"], f["result"], f["client"]) for f in fetches]
    assert ("00-30-4F-11-3A-F8.cfg", "ok", ip) in results
    assert ("fw.bin", "ok", ip) in results
    assert ("f0VIP-2140PThw1.100.cfg", "not-found", ip) in results
    assert ("00304f113af8.cfg", "forbidden", "192.168.11.66") in results
    [forbidden] = [f for f in fetches if f["result"] == "forbidden"]
    assert forbidden["protocol"] == "tftp" and "holds no lease" in forbidden["reason"]
    fw = [f for f in fetches if f["file"] == "fw.bin"]
    assert len(fw) == 3 and all(f["bytes"] == len(site.firmware) for f in fw)
    phone = json.loads(site.server.cli("phones", PHONE_MAC, "--json").stdout)["phone"]
    assert phone["ip"] == ip
