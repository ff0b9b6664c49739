"""`netboot serve` with HTTP and HTTPS in a namespace, real `curl` as the phone.

The client namespace takes a DHCP lease from netboot (dhclient) with the phone's
MAC, so the per-MAC file is bound to that address; a second address on the same
interface plays the neighbour that must not get the file.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.netns import Lab, NetbootServer, Segment, server_config, wait_for

pytestmark = pytest.mark.netns

MAC = "00:30:4f:11:3a:f8"
OWN = "SIP1 Password :only-for-3af8\n"
INTRUDER = "192.168.10.250"
SERVER = "192.168.10.2"

CONFIG = """
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.120"
router = "192.168.10.1"
lease_time = 600
ping_timeout_ms = 100
[http]
enabled = true
port = 80
https_port = 443
username = "{username}"
password = "{password}"
"""

DHCLIENT_SCRIPT = """#!/bin/sh
case "$reason" in BOUND|RENEW|REBIND|REBOOT)
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    echo "$new_ip_address" > "{out}";;
esac
exit 0
"""


class Site:
    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.tmp = tmp
        wire = Segment(lab, {"srv": f"{SERVER}/24", "cli": None}, macs={"cli": MAC})
        self.srv, self.cli = wire["srv"], wire["cli"]
        self.state = tmp / "state"
        self.root = tmp / "root"
        self.root.mkdir()
        (self.root / "00304F113AF8.cfg").write_text(OWN)
        (self.root / "f0VIP-2140PThw1.100.cfg").write_text("<<VOIP CONFIG FILE>>\n")
        (tmp / "outside.cfg").write_text("outside root\n")
        self.config = tmp / "netboot.toml"
        self.server = NetbootServer(lab, self.srv, self.config)

    def start(self, username: str = "", password: str = "") -> None:
        body = CONFIG.format(username=username, password=password)
        url = f"http://{SERVER}/$mac.cfg"
        self.config.write_text(
            server_config(body, state=self.state, address=SERVER, url=url, root=self.root)
        )
        self.server.start()

    def lease(self) -> str:
        out = self.tmp / "leased-ip"
        script = self.tmp / "dhclient-script"
        script.write_text(DHCLIENT_SCRIPT.format(out=out))
        script.chmod(0o755)
        self.cli.run(
            [
                "dhclient",
                "-1",
                "-sf",
                str(script),
                "-lf",
                str(self.tmp / "dhclient.leases"),
                "-pf",
                str(self.tmp / "dhclient.pid"),
                "eth0",
            ],
            timeout=40,
        )
        self.cli.run(["sh", "-c", f"kill $(cat {self.tmp / 'dhclient.pid'}) 2>/dev/null; true"])
        return out.read_text().strip()

    def curl(self, url: str, *extra: str, source: str | None = None) -> tuple[int, str]:
        """(HTTP status, body) of one `curl` fetch from the client namespace."""
        body = self.tmp / "body"
        argv = ["curl", "-sS", "-o", str(body), "-w", "%{http_code}", "--max-time", "15"]
        if source is not None:
            argv += ["--interface", source]
        proc = self.cli.run([*argv, *extra, url])
        return int(proc.stdout), body.read_text(errors="replace") if body.exists() else ""

    def fetches(self) -> list[dict[str, object]]:
        record = json.loads(self.server.cli("phones", MAC, "--json").stdout)
        return [e["detail"] for e in record["timeline"] if e["kind"] == "fetch"]


@pytest.fixture
def site(lab: Lab, tmp_path: Path) -> Site:
    return Site(lab, tmp_path)


def test_curl_http_https_binding_auth_and_traversal(site: Site) -> None:
    site.start()
    ip = site.lease()
    site.cli.run(["ip", "addr", "add", f"{INTRUDER}/24", "dev", "eth0"])

    # The phone fetches its own file over HTTP and over HTTPS (self-signed).
    assert site.curl(f"http://{SERVER}/00304f113af8.cfg", "-A", "PLANET VIP-2140PT 2.0.3") == (
        200,
        OWN,
    )
    assert site.curl(f"https://{SERVER}/00304f113af8.cfg", "-k", source=ip) == (200, OWN)
    cert = site.state / "tls" / "cert.pem"
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert (site.state / "tls" / "key.pem").exists()

    def phone() -> dict[str, object]:
        phones = json.loads(site.server.cli("phones", "--json").stdout)
        return next(p for p in phones if p["mac"] == MAC)

    wait_for(lambda: phone()["state"] == "fetched-own", 15, "the phone to show fetched-own")
    assert phone()["ip"] == ip
    assert (phone()["vendor"], phone()["model"], phone()["firmware"]) == (
        "PLANET",
        "VIP-2140PT",
        "2.0.3",
    )
    # Without -k curl refuses the self-signed certificate: it is really TLS.
    refused = site.cli.run(
        ["curl", "-sS", "--max-time", "15", f"https://{SERVER}/00304f113af8.cfg"], check=False
    )
    assert refused.returncode == 60, refused

    # Another address on the same wire: no lease for that MAC, 403 on both ports.
    assert site.curl(f"http://{SERVER}/00304f113af8.cfg", source=INTRUDER)[0] == 403
    status, body = site.curl(f"https://{SERVER}/00-30-4F-11-3A-F8.cfg", "-k", source=INTRUDER)
    assert status == 403 and "only-for" not in body
    # The common file is for everybody.
    assert site.curl(f"http://{SERVER}/f0VIP-2140PThw1.100.cfg", source=INTRUDER)[0] == 200

    # `..` and friends, sent as-is: refused, nothing outside root leaks.
    for path in ("/../outside.cfg", "/%2e%2e/outside.cfg", "/..%2foutside.cfg", "//etc/passwd"):
        status, body = site.curl(f"http://{SERVER}{path}", "--path-as-is")
        assert status in (400, 404), path
        assert "outside root" not in body and "root:" not in body

    def recorded() -> list[dict[str, object]]:
        got = site.fetches()
        return got if len(got) >= 5 else []

    fetches = wait_for(recorded, 15, "the fetches in the registry")
    assert [(f["protocol"], f["result"]) for f in fetches[:4]] == [
        ("http", "ok"),
        ("https", "ok"),
        ("http", "forbidden"),
        ("https", "forbidden"),
    ]
    assert fetches[2]["client"] == INTRUDER
    # The refusals are in the phone's timeline, and its address is still its own.
    assert phone()["ip"] == ip

    # No access-log line per request at info level (that is debug), but one INFO
    # line per fetched file (issue 13: mac, name, size, result).
    log = site.server.log()
    assert "GET '/00304f113af8.cfg'" not in log
    assert f"INFO netboot.files: http: {MAC} ({ip}) fetched 00304f113af8.cfg: ok," in log
    assert (
        f"INFO netboot.files: http: {MAC} ({INTRUDER}) fetched 00304f113af8.cfg: forbidden" in log
    )

    # Graceful stop, then the same service with auth (the lease and the certificate stay).
    assert site.server.stop(signal.SIGTERM) == 0
    first_cert = cert.read_bytes()
    site.start("admin", "s3cret")
    assert cert.read_bytes() == first_cert
    url = f"http://{SERVER}/00304f113af8.cfg"
    assert site.curl(url, source=ip)[0] == 401
    assert site.curl(url, "--basic", "-u", "admin:s3cret", source=ip) == (200, OWN)
    assert site.curl(url, "--digest", "-u", "admin:s3cret", source=ip) == (200, OWN)
    assert site.curl(
        f"https://{SERVER}/00304f113af8.cfg", "-k", "--digest", "-u", "admin:s3cret", source=ip
    ) == (200, OWN)
    assert site.curl(url, "--basic", "-u", "admin:wrong", source=ip)[0] == 401
    assert site.curl(url, "--digest", "-u", "admin:wrong", source=ip)[0] == 401
    # Auth does not lift the MAC binding.
    assert site.curl(url, "--digest", "-u", "admin:s3cret", source=INTRUDER)[0] == 403
