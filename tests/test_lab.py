"""`netboot lab`: the whole appliance end to end, as CI runs it.

The namespace tests run the real command (`python -m netboot lab`) and
check its JSON, its exit code, and that nothing is left behind afterwards:
no namespace with the lab's prefix, no netboot process, no temp directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from netboot.dhcp import codec
from netboot.dhcp.codec import DhcpMessage
from netboot.lab.cli import LabError, addressing, assign_vendors, parse_mix
from netboot.lab.phone import (
    VENDORS,
    Phone,
    PhoneEnv,
    Retryable,
    _SipEndpoint,
    expected_own_file,
    http_get,
    phone_mac,
)
from netboot.lab.segment import build_lldp_med, parse_lldp_policies
from tests.netns import REPO, wait_for


def lab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "netboot", "lab", *args]


def namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def assert_nothing_left(prefix: str) -> None:
    assert not [ns for ns in namespaces() if ns.startswith(prefix + "-")]
    procs = subprocess.run(["pgrep", "-f", prefix], capture_output=True, text=True, check=False)
    assert procs.stdout.strip() == "", f"processes of {prefix} still running: {procs.stdout}"
    assert not list(Path(tempfile.gettempdir()).glob(f"{prefix}-*"))


def run_lab(*args: str, timeout: float = 180) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        lab_cmd(*args, "--json"), capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON (exit {proc.returncode}):\n{proc.stderr}") from None
    return proc.returncode, data, proc.stderr


# ------------------------------------------------------------------ pure parts


@pytest.mark.parametrize(
    ("count", "mix", "expected"),
    [
        (10, "planet=60,yealink=20,snom=20", {"planet": 6, "yealink": 2, "snom": 2}),
        (7, "planet=1,yealink=1,snom=1", {"planet": 3, "yealink": 2, "snom": 2}),
        (3, "snom=5", {"snom": 3}),
        (1, "planet=60,yealink=20,snom=20", {"planet": 1}),
    ],
)
def test_assign_vendors_splits_exactly(count: int, mix: str, expected: dict[str, int]) -> None:
    vendors = assign_vendors(count, parse_mix(mix))
    assert len(vendors) == count
    got = {name: sum(v.name == name for v in vendors) for name in VENDORS}
    assert {k: v for k, v in got.items() if v} == expected


@pytest.mark.parametrize("mix", ["planet", "nokia=3", "planet=x", "planet=-1", "planet=0"])
def test_bad_mix_is_refused(mix: str) -> None:
    with pytest.raises(LabError):
        parse_mix(mix)


@pytest.mark.parametrize("phones", [1, 20, 240, 241, 1000, 5000, 65000])
def test_addressing_fits_the_fleet(phones: int) -> None:
    addr = addressing(phones)
    assert addr.server in addr.network
    pool = int(addr.pool_end) - int(addr.pool_start) + 1
    assert pool >= phones
    assert addr.pool_end < addr.network.broadcast_address
    assert addr.network.is_private  # documentation / benchmarking ranges only
    voice_pool = int(addr.voice_pool_end) - int(addr.voice_pool_start) + 1
    assert voice_pool >= phones and addr.voice_server in addr.voice_network
    assert addr.voice_network.is_private and not addr.voice_network.overlaps(addr.network)
    assert addr.voice_pool_end < addr.voice_network.broadcast_address


def ack_with(options: dict[int, bytes]) -> DhcpMessage:
    return DhcpMessage(op=codec.BOOTREPLY, xid=1, yiaddr=int(IPv4Address("192.0.2.10")),
                       options={53: bytes((codec.ACK,)), **options})  # fmt: skip


@pytest.mark.parametrize(
    ("vendor", "options", "url", "source"),
    [
        # The lab's PLANET runs in option 43 mode, the mode whose DISCOVER the
        # PLANET guide (2.2.2) shows: it reads 43 and nothing else.
        ("planet", {66: b"http://a/$mac.cfg", 200: b"tftp://b/$mac.cfg"}, "", ""),
        ("planet", {66: b"http://a/$mac.cfg", 43: b"http://c/x"}, "http://c/x", "option 43"),
        ("planet", {43: b"http://c/x"}, "http://c/x", "option 43"),
        ("yealink", {128: b"http://y/", 66: b"http://a/"}, "http://y/", "option 128"),
        ("snom", {66: b"192.0.2.1", 67: b"/snom.htm"}, "tftp://192.0.2.1/snom.htm", "options 66+67"),
        ("snom", {43: b"http://c/x"}, "", ""),
        ("yealink", {}, "", ""),
    ],
)  # fmt: skip
def test_url_taken_in_vendor_order(
    vendor: str, options: dict[int, bytes], url: str, source: str
) -> None:
    env = PhoneEnv(dhcp=None, untagged_if="eth0", plumb=print)  # type: ignore[arg-type]
    phone = Phone(VENDORS[vendor], phone_mac(VENDORS[vendor], 1, 2), env)
    assert phone.url_from(ack_with(options)) == (url, source)


def test_own_file_names_its_mac() -> None:
    a = phone_mac(VENDORS["planet"], 1, 7)
    b = phone_mac(VENDORS["planet"], 2, 7)
    assert a != b and a[:3] == VENDORS["planet"].oui
    assert expected_own_file(a, VENDORS["planet"]) != expected_own_file(b, VENDORS["planet"])
    assert a.hex().encode() in expected_own_file(a, VENDORS["planet"])


def test_phone_lldpdu_is_not_a_policy() -> None:
    frame = build_lldp_med(bytes.fromhex("00304f000001"), "p1", "VIP-2140PT", "2.1", "PLANET")
    assert frame[:6] == bytes.fromhex("0180c200000e")
    assert parse_lldp_policies(frame) == []  # a phone's own frame advertises no VLAN


def test_phone_lldpdu_decodes_as_a_med_endpoint() -> None:
    lldp_codec = pytest.importorskip("netboot.lldp.codec")
    mac = bytes.fromhex("001565000001")
    neighbor = lldp_codec.decode_lldp(build_lldp_med(mac, "yl-1", "SIP-T54W", "96.86", "Yealink"))
    text = repr(neighbor)
    assert "SIP-T54W" in text and "Yealink" in text and "yl-1" in text


def test_phone_answers_every_notify_retransmission_on_loopback() -> None:
    """The notifier resends a NOTIFY until it hears the 200 (RFC 3261 §17.2.1):
    the phone's SIP port answers each copy, echoing its Via/CSeq."""
    notify = (
        b"NOTIFY sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKn1\r\n"
        b"From: <sip:pnp@127.0.0.1>;tag=a\r\nTo: <sip:MAC@224.0.1.75>;tag=b\r\n"
        b"Call-ID: c1\r\nCSeq: 7 NOTIFY\r\nEvent: ua-profile\r\nContent-Length: 17\r\n\r\n"
        b"http://x/$mac.cfg"
    )

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        phone, proto = await loop.create_datagram_endpoint(
            _SipEndpoint, local_addr=("127.0.0.1", 0)
        )
        notifier = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        notifier.bind(("127.0.0.1", 0))
        notifier.settimeout(5)
        try:
            address = phone.get_extra_info("sockname")
            answers = []
            for _ in range(2):
                notifier.sendto(notify, address)
                answers.append(await asyncio.to_thread(notifier.recv, 2048))
            assert proto.queue.qsize() == 2  # both copies reach the phone too
            return answers
        finally:
            notifier.close()
            phone.close()

    answers = asyncio.run(main())
    for answer in answers:
        assert answer.startswith(b"SIP/2.0 200 OK\r\n")
        assert b"CSeq: 7 NOTIFY" in answer and b"branch=z9hG4bKn1" in answer


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"", "no complete HTTP response"),  # closed before answering (a reset storm)
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "5 of 10 bytes"),
    ],
)
def test_http_get_a_cut_off_answer_is_a_download_the_firmware_tries_again(
    answer: bytes, why: str
) -> None:
    """A connection closed before the whole answer is a failed transfer: the
    phone's fetch tries it again (Retryable), as it does a reset; a whole
    answer is returned."""

    async def main(answer: bytes) -> tuple[int, bytes]:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await http_get(f"http://127.0.0.1:{port}/a.cfg", "127.0.0.1", "lab", 5)
        finally:
            server.close()

    with pytest.raises(Retryable, match=why):
        asyncio.run(main(answer))
    whole = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    assert asyncio.run(main(whole)) == (200, b"hello")


# ------------------------------------------------------------------ the real thing


@pytest.mark.netns
@pytest.mark.timeout(240)
def test_lab_provisions_twenty_phones_and_leaves_nothing() -> None:
    code, data, stderr = run_lab("--phones", "20")
    assert code == 0, stderr
    assert data["phones"] == 20 and data["provisioned"] == 20 and data["failed"] == 0
    results = data["results"]
    assert len({r["mac"] for r in results}) == 20
    assert len({r["ip"] for r in results}) == 20
    assert {r["vendor"] for r in results} == {"planet", "yealink", "snom"}
    for r in results:
        assert r["result"] == "ok", r
        assert IPv4Address(r["ip"]) in IPv4Network("192.0.2.0/24")
        assert r["url"], r
        if "http" in data["services"] or "tftp" in data["services"]:
            assert "common" in r["steps"] and "own" in r["steps"], r
        if "lldp" in data["services"]:  # the voice VLAN the lab's config advertises
            assert (r["vlan"], r["vlan_source"]) == (100, "lldp-med"), r
            # ... and then DHCP tagged in it, answered from the voice scope,
            # and the appliance's `netboot leases` holds both for the MAC.
            assert "dhcp-voice" in r["steps"], r
            assert IPv4Address(r["voice_ip"]) in IPv4Network("198.51.100.0/24"), r
            assert r["leases"] == [r["ip"], r["voice_ip"]], r
        if r["vendor"] == "planet" and "tftp" in data["services"]:
            assert r["url"].startswith("tftp://"), r
        if r["vendor"] == "snom" and "pnp" in data["services"]:
            # The lab's DHCP leaves the URL out for snom: the phone finds it by
            # SIP PnP, and the appliance's registry shows the whole exchange.
            assert r["url_source"] == "pnp" and "pnp" in r["steps"], r
            # Snom's own {mac} macro, which the phone fills in (Snom PnP capture).
            assert r["url"] == "http://192.0.2.1/{mac}.xml", r
            assert r["appliance"] == ["pnp subscribe", "pnp notify", "pnp notify-answered"], r
        else:
            assert r["url_source"].startswith("option"), r
            assert "pnp" not in r["steps"] and r["appliance"] == [], r
        if "stun" in data["services"]:
            assert "stun" in r["steps"], r
    if "lldp" in data["services"]:
        assert len({r["voice_ip"] for r in results}) == 20
        voice = data["voice_vlan"]
        assert (voice["vlan"], voice["interface"], voice["leased"]) == (100, "eth0.100", 20)
        # DISCOVER + REQUEST per phone went through the sidecar, nothing else untagged
        assert voice["sidecar_frames_in"] >= 40 and voice["sidecar_dropped"] == 0
    assert data["server_peak_rss_kb"] > 0
    assert_nothing_left(data["lab"])


@pytest.mark.netns
@pytest.mark.timeout(240)
def test_a_wrong_file_fails_the_phone_and_the_lab() -> None:
    code, data, _ = run_lab("--phones", "4", "--wrong-file", "1", "--mix", "yealink=1")
    if "http" not in data["services"]:
        pytest.skip("this build serves no files")
    assert code == 1
    failed = [r for r in data["results"] if r["result"] != "ok"]
    assert len(failed) == 1 and data["failed"] == 1
    assert "not the file written for" in failed[0]["error"]
    assert_nothing_left(data["lab"])


@pytest.mark.netns
@pytest.mark.timeout(240)
@pytest.mark.parametrize("when", ["setup", "keep"])
def test_sigint_removes_the_lab(when: str, tmp_path: Path) -> None:
    stderr_path = tmp_path / "stderr"
    args = ["--phones", "30"] + (["--keep"] if when == "keep" else [])
    with stderr_path.open("w") as err:
        proc = subprocess.Popen(lab_cmd(*args), stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
    prefix = f"nblab{proc.pid}"
    try:
        if when == "setup":  # as soon as its first namespace exists
            wait_for(lambda: any(ns.startswith(prefix) for ns in namespaces()), 60, "a namespace")
        else:
            wait_for(lambda: "Press Ctrl-C" in stderr_path.read_text(), 120, "the kept lab")
            assert any(ns.startswith(prefix) for ns in namespaces())
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == (0 if when == "keep" else 130), stderr_path.read_text()
    assert_nothing_left(prefix)
