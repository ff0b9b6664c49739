from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from netboot.config import Config, load_config
from netboot.events import LeaseAcked
from netboot.http.auth import Authenticator, parse_params
from netboot.provisioning.activeuri import (
    digest_authorization,
    key_query,
    parse_keys,
    resolve_targets,
)
from netboot.registry import Registry
from tests.netns import Lab, Segment, wait_for

REPO = Path(__file__).resolve().parent.parent
MAC_A = "00:30:4f:00:00:0a"
MAC_B = "00:30:4f:00:00:0b"
MAC_C = "00:30:4f:00:00:0c"


def test_keys() -> None:
    assert parse_keys("SPEAKER;8311;ENTER") == ["SPEAKER", "8311", "ENTER"]
    assert parse_keys("D40; F4 ;*;POUND;Reboot") == ["D40", "F4", "*", "POUND", "Reboot"]
    for bad in ("", "D41", "F5", "reboot", "SPEAKER;NOPE"):
        with pytest.raises(ValueError):
            parse_keys(bad)
    assert key_query(["SPEAKER", "*", "8311"]) == "key=SPEAKER;*;8311"


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
@pytest.mark.parametrize("password", ["right", "wrong"])
def test_digest_answers_a_real_challenge(algorithm: str, password: str) -> None:
    server = Authenticator("admin", "right", realm="phone")
    challenge = next(
        parse_params(c.partition(" ")[2])
        for c in server.challenges()
        if c.startswith("Digest") and f"algorithm={algorithm}" in c.replace('"', "")
    )
    uri = "/cgi-bin/ConfigManApp.com?key=Reboot"
    header = digest_authorization(challenge, "admin", password, "GET", uri, "0a1b2c3d")
    assert header is not None
    assert server.check(header, "GET", uri) == ("ok" if password == "right" else "denied")
    assert (
        digest_authorization({**challenge, "algorithm": "SHA-512"}, "a", "b", "GET", uri, "c")
        is None
    )


def write_config(tmp: Path, password: str = "pw") -> Path:
    (tmp / "phones.csv").write_text(
        f"{MAC_A},VIP-2140PT,1001,x,A\n{MAC_B},VIP-2140PT,1002,x,B\n{MAC_C},X4,1003,x,C\n"
    )
    path = tmp / "config.toml"
    path.write_text(
        f"""
[appliance]
interface = "eth0"
address = "10.0.0.1"
state_dir = "{tmp / "state"}"
[dhcp]
enabled = false
[phones]
inventory = "{tmp / "phones.csv"}"
admin_user = "admin"
admin_password = "{password}"
"""
    )
    return path


def seed_registry(config: Config, known: dict[str, str]) -> None:
    reg = Registry(config.appliance.state_dir)
    for mac, ip in known.items():
        reg.record(LeaseAcked(mac=mac, ip=ip))
    reg.close()


def test_resolve_targets(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    seed_registry(config, {MAC_A: "10.0.0.11", "00:30:4f:00:00:99": "10.0.0.99"})
    now = time.time()
    got = resolve_targets(config, ["00304F00000A", "10.0.0.12", "10.0.0.11"], False, now)
    assert [(t.label, t.mac, t.ip) for t in got] == [
        ("00304F00000A", MAC_A, "10.0.0.11"),
        ("10.0.0.12", None, "10.0.0.12"),
    ]  # 10.0.0.11 is the same phone as the MAC: once
    every = resolve_targets(config, [], True, now)
    assert [(t.mac, t.ip) for t in every] == [
        (MAC_A, "10.0.0.11"),
        (MAC_B, None),
        (MAC_C, None),
        ("00:30:4f:00:00:99", "10.0.0.99"),
    ]
    with pytest.raises(ValueError, match="neither"):
        resolve_targets(config, ["phone-7"], False, now)


@pytest.mark.netns
def test_active_uri_against_fake_phones(lab: Lab, tmp_path: Path) -> None:
    wire = Segment(lab, {"nb": "10.0.0.1/24", "phones": "10.0.0.11/24"})
    nb, phones = wire["nb"], wire["phones"]
    for host in (12, 13, 14, 15):
        phones.run(["ip", "addr", "add", f"10.0.0.{host}/24", "dev", "eth0"])
    config_path = write_config(tmp_path)
    config = load_config(config_path)
    seed_registry(config, {MAC_A: "10.0.0.11", MAC_B: "10.0.0.12"})
    logs = {}
    for host, mode, password in (
        (11, "any", "pw"),
        (12, "digest", "pw"),
        (13, "hang", "pw"),
        (14, "any", "other"),
    ):
        logs[host] = tmp_path / f"phone{host}.log"
        lab.spawn(
            phones,
            [
                sys.executable, "-m", "tests.fake_phone", "--bind", f"10.0.0.{host}",
                "--password", password, "--mode", mode, "--log", str(logs[host]),
            ],
            cwd=REPO,
        )  # fmt: skip
    wait_for(lambda: all(p.exists() for p in logs.values()), 20, "fake phones to listen")

    def phone_cmd(*args: str) -> tuple[int, str, str]:
        proc = nb.run(
            [sys.executable, "-m", "netboot.cli", "phone", "-c", str(config_path), *args],
            check=False,
            timeout=60,
            cwd=REPO,
        )
        return proc.returncode, proc.stdout, proc.stderr

    code, out, err = phone_cmd(
        "reboot", MAC_A, MAC_B, "10.0.0.13", "10.0.0.14", "10.0.0.15",
        "--timeout", "2", "--progress", "always",
    )  # fmt: skip
    assert code == 1, (out, err)
    rows = {line.split()[1]: line for line in out.splitlines()[1:] if line.startswith(("00:", "-"))}
    assert "ok" in rows["10.0.0.11"].split() and "200 OK" in rows["10.0.0.11"]
    assert "ok" in rows["10.0.0.12"].split()  # Digest after the challenge
    assert "FAILED" in rows["10.0.0.13"] and "timeout after 2 s" in rows["10.0.0.13"]
    assert "FAILED" in rows["10.0.0.14"] and "401 wrong credentials" in rows["10.0.0.14"]
    assert "FAILED" in rows["10.0.0.15"] and "refused" in rows["10.0.0.15"]
    assert "2 ok, 3 failed (Reboot)" in out
    assert "5/5  3 failed" in err  # the progress bar's last state

    def entries(host: int) -> list[dict[str, str]]:
        return [json.loads(line) for line in logs[host].read_text().splitlines()]

    assert entries(11) == [{"keys": "Reboot", "auth": "Basic"}]
    assert entries(12) == [{"keys": "Reboot", "auth": "Digest"}]
    assert entries(14) == []  # the wrong password changed nothing

    code, out, err = phone_cmd("key", "SPEAKER;8311;ENTER", "10.0.0.11", "10.0.0.12")
    assert code == 0, (out, err)
    assert entries(11)[-1]["keys"] == "SPEAKER;8311;ENTER"
    assert entries(12)[-1]["keys"] == "SPEAKER;8311;ENTER"

    code, out, _ = phone_cmd("reprovision", "--all", "--timeout", "2")
    assert code == 1  # MAC_C has no known address
    assert entries(11)[-1]["keys"] == "Autoprovision"
    assert "no address known" in next(line for line in out.splitlines() if MAC_C in line)

    code, _, err = phone_cmd("key", "NOPE", "10.0.0.11")
    assert code == 2 and "unknown key 'NOPE'" in err

    # --json: the same results for scripts, nothing else on stdout
    code, out, _ = phone_cmd("reboot", MAC_A, "10.0.0.14", "--timeout", "2", "--json")
    assert code == 1
    result = json.loads(out)
    assert (result["action"], result["keys"], result["ok"], result["failed"]) == (
        "reboot",
        ["Reboot"],
        1,
        1,
    )
    by_ip = {p["ip"]: p for p in result["phones"]}
    assert by_ip["10.0.0.11"]["mac"] == MAC_A and by_ip["10.0.0.11"]["target"] == MAC_A
    assert by_ip["10.0.0.11"]["ok"] is True and by_ip["10.0.0.11"]["result"] == "200 OK"
    assert by_ip["10.0.0.14"]["ok"] is False
    assert by_ip["10.0.0.14"]["result"].startswith("401 wrong credentials")
    assert isinstance(by_ip["10.0.0.14"]["ms"], int)


def test_each_family_is_spoken_to_in_its_protocol() -> None:
    from netboot.provisioning.activeuri import PROTOCOLS, protocol_for

    fanvil, yealink, snom = (PROTOCOLS[n] for n in ("fanvil", "yealink", "snom"))
    assert fanvil.requests("key", ["SPEAKER", "8311"]) == [
        "/cgi-bin/ConfigManApp.com?key=SPEAKER;8311"
    ]
    assert yealink.requests("reprovision", []) == ["/servlet?key=AutoP"]
    assert yealink.requests("key", ["OK", "12"]) == [
        "/servlet?key=OK",
        "/servlet?key=1",
        "/servlet?key=2",
    ]
    assert snom.requests("reboot", []) == ["/advanced_update.htm?reboot=Reboot"]
    assert snom.requests("key", ["OK", "*1", "POUND"]) == [
        "/command.htm?key=ENTER",
        "/command.htm?key=*",
        "/command.htm?key=1",
        "/command.htm?key=%23",
    ]
    no_resync = snom.requests("reprovision", [])
    assert isinstance(no_resync, str) and "no re-provision request" in no_resync
    assert "no key 'DNDOn'" in str(snom.requests("key", ["DNDOn"]))
    assert protocol_for(None) is fanvil  # a phone of no known family: PLANET's request
    assert protocol_for("planet") is fanvil and protocol_for("snom") is snom
    polycom = PROTOCOLS["polycom"]
    assert polycom.requests("reprovision", []) == ["POST /api/v1/mgmt/safeRestart"]
    assert polycom.user == "Polycom" and "no key presses" in str(polycom.requests("key", ["OK"]))
    spa = protocol_for("cisco-spa")
    assert not isinstance(spa, str) and spa.requests("reprovision", []) == ["/admin/resync"]
    assert spa.requests("reboot", []) == ["/admin/reboot"] and spa.user == "admin"
    gs = protocol_for("grandstream")
    assert not isinstance(gs, str) and gs.json_answer and gs.user == "admin"
    assert gs.requests("reboot", []) == [
        "/cgi-bin/api-sys_operation?passcode={passcode}&request=REBOOT"
    ]  # send_one writes the admin password in for {passcode}
    none = protocol_for("avaya")
    assert isinstance(none, str) and "no remote control" in none


def test_targets_know_their_family(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    with (tmp_path / "phones.csv").open("a") as f:
        f.write("00:04:13:00:00:01,D785,3001,x,S\n")
    config = load_config(path)
    got = resolve_targets(config, ["00:04:13:00:00:01", "00:15:65:00:00:02", MAC_A], False, 0)
    assert [t.family for t in got] == ["snom", "yealink", "fanvil"]


def test_grandstream_answer_decides_and_passcode_is_sent() -> None:
    """A Grandstream answers 200 either way; `{"response": "error"}` is a failure."""
    import asyncio

    import aiohttp
    from aiohttp import web

    from netboot.provisioning.activeuri import Target, send_one

    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.query_string)
        ok = request.query.get("passcode") == "p w&1"
        return web.json_response({"response": "success" if ok else "error"})

    async def run() -> tuple[bool, bool]:
        app = web.Application()
        app.router.add_get("/cgi-bin/api-sys_operation", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        target = Target("gs", None, "127.0.0.1", "grandstream")
        uri = "/cgi-bin/api-sys_operation?passcode={passcode}&request=REBOOT"
        try:
            async with aiohttp.ClientSession() as session:
                good = await send_one(session, target, uri, "admin", "p w&1", 5, port, True)
                bad = await send_one(session, target, uri, "admin", "wrong", 5, port, True)
        finally:
            await runner.cleanup()
        assert "error" in bad.result
        return good.ok, bad.ok

    assert asyncio.run(run()) == (True, False)  # the password arrived whole, quoted
    assert len(seen) == 2 and all(q.endswith("&request=REBOOT") for q in seen)
