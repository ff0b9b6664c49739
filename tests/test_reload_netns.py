"""SIGHUP reloads the real `netboot serve` without dropping a lease or a socket;
a broken config is refused and the old one serves on; SIGTERM and SIGINT stop
it with exit 0 (issue 13). Real clients: busybox udhcpc, curl, tftp-hpa."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import netns
from tests.netns import REPO, Lab, NetbootServer, Netns, udhcpc_lease, wait_for

pytestmark = pytest.mark.netns

PHONE_MAC = "00:30:4f:11:3a:f8"
OTHER_MAC = "00:30:4f:11:3a:f9"
SERVER = "192.168.10.2"

CONFIG = """
[dhcp]
subnet = "192.168.10.0/24"
pool = "192.168.10.100-192.168.10.120"
lease_time = 600
ping_check = false
[[dhcp.class]]
name = "planet"
mac_prefix = "00:30:4f"
options = {{ 224 = "{site}" }}
[tftp]
enabled = true
port = {tftp_port}
[http]
enabled = true
port = 80
https_port = 0
bind_mac_files = false
[phones]
inventory = "{tmp}/{inventory}"
sip_server = "192.168.10.5"
"""


def write_config(path: Path, **values: Any) -> None:
    settings = {"root": "root1", "site": "site-one", "inventory": "one.csv", "tftp_port": 69}
    settings.update(values)
    state, root = path.parent / "state", path.parent / str(settings.pop("root"))
    body = CONFIG.format(tmp=path.parent, **settings)
    url = f"http://{SERVER}/$mac.cfg"
    path.write_text(netns.server_config(body, state=state, address=SERVER, url=url, root=root))


def sockets(pid: int) -> set[str]:
    """The socket inodes the process holds: the same set means no socket was reopened."""
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            out.add(target)
    return out


def steady_sockets(pid: int) -> set[str]:
    """The process's sockets once no short-lived one (an HTTP connection, a TFTP
    transfer, the sd_notify datagram) comes or goes: the same set on every read
    for 0.3 s."""
    last = sockets(pid)
    since = time.monotonic()

    def settled() -> set[str] | None:
        nonlocal last, since
        now = sockets(pid)
        if now != last:
            last, since = now, time.monotonic()
            return None
        return now if time.monotonic() - since >= 0.3 else None

    return wait_for(settled, 10, "the server's sockets to settle", interval=0.02)


def same_sockets(pid: int, held: set[str]) -> None:
    """The process holds the sockets it held, no more, no fewer."""
    now = steady_sockets(pid)
    assert now == held, f"sockets gone: {held - now}, new: {now - held}"


def http(phone: Netns, name: str) -> tuple[int, str]:
    proc = phone.run(
        ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", f"http://{SERVER}/{name}"], check=False
    )
    body, _, code = proc.stdout.rpartition("\n")
    return int(code), body


def tftp(phone: Netns, tmp: Path, name: str, port: int = 69) -> str:
    out = tmp / "tftp.out"
    out.unlink(missing_ok=True)
    phone.run(["tftp", SERVER, str(port), "-m", "binary", "-c", "get", name, str(out)])
    return out.read_text() if out.exists() else ""


def leases(server: NetbootServer) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(server.cli("leases", "--json").stdout)
    return result


def site(lab: Lab, tmp_path: Path) -> tuple[Netns, Netns, Path]:
    wire = netns.Segment(lab, {"srv": f"{SERVER}/24", "phone": None}, macs={"phone": PHONE_MAC})
    for root, text in (("root1", "from root one\n"), ("root2", "from root two\n")):
        (tmp_path / root).mkdir()
        (tmp_path / root / "site.txt").write_text(text)
    (tmp_path / "one.csv").write_text(f"{PHONE_MAC},VIP-2140PT,1001,pw1,Reception\n")
    (tmp_path / "two.csv").write_text(f"{OTHER_MAC},VIP-2140PT,1002,pw2,Office\n")
    config = tmp_path / "netboot.toml"
    write_config(config)
    return wire["srv"], wire["phone"], config


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    """A NOTIFY_SOCKET to hear what netboot tells systemd."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(30)
        yield path, listener


def notice(listener: socket.socket, word: str) -> str:
    """The next sd_notify message holding `word`: a STATUS= update (DHCP done
    probing for other servers, an alarm) may come between any two."""
    while True:
        message = listener.recv(4096).decode()
        if word in message:
            return message


def test_sighup_applies_class_root_and_inventory_and_keeps_the_lease(
    lab: Lab, tmp_path: Path, systemd: tuple[Path, socket.socket]
) -> None:
    srv, phone, config = site(lab, tmp_path)
    notify, listener = systemd
    log_path = config.with_suffix(".log")
    with log_path.open("wb") as out:
        proc = lab.spawn(
            srv,
            [sys.executable, "-m", "netboot.cli", "serve", "-c", str(config)],
            env={**os.environ, "NOTIFY_SOCKET": str(notify)},
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = NetbootServer(lab, srv, config)
    server.proc = proc
    assert "READY=1" in notice(listener, "READY=1")

    first = udhcpc_lease(phone, tmp_path, configure=True)
    assert first["opt224"] == b"site-one".hex()
    assert http(phone, "site.txt") == (200, "from root one\n")
    assert tftp(phone, tmp_path, "site.txt") == "from root one\n"
    assert http(phone, "00304F113AF8.cfg")[0] == 200  # in one.csv
    assert http(phone, "00304F113AF9.cfg")[0] == 404  # not yet
    before = leases(server)
    assert [(x["mac"], x["ip"]) for x in before] == [(PHONE_MAC, first["ip"])]
    held = steady_sockets(proc.pid)

    write_config(config, root="root2", site="site-two", inventory="two.csv")
    offset = len(server.log())
    os.kill(proc.pid, signal.SIGHUP)
    reloading = notice(listener, "RELOADING=1")
    assert "MONOTONIC_USEC=" in reloading
    ready = notice(listener, "READY=1")
    assert "READY=1" in ready and "refused" not in ready
    wait_for(lambda: "reload: done" in server.log()[offset:], 20, "the reload")
    said = server.log()[offset:]
    assert "applying in place, sockets and leases kept: dhcp, tftp, http" in said, said
    assert "restarting" not in said

    # Same sockets, same lease; the new class option, root and inventory serve.
    same_sockets(proc.pid, held)
    again = udhcpc_lease(phone, tmp_path)
    assert again["ip"] == first["ip"]
    assert again["opt224"] == b"site-two".hex()
    assert http(phone, "site.txt") == (200, "from root two\n")
    assert tftp(phone, tmp_path, "site.txt") == "from root two\n"
    assert http(phone, "00304F113AF9.cfg")[0] == 200
    assert "Office" in http(phone, "00304F113AF9.cfg")[1]
    assert http(phone, "00304F113AF8.cfg")[0] == 404
    after = leases(server)
    assert [(x["mac"], x["ip"]) for x in after] == [(PHONE_MAC, first["ip"])]
    assert after[0]["expires"] >= before[0]["expires"]

    # A broken config: refused, one line per problem, the old one serves on.
    good = config.read_text()
    config.write_text(good.replace("lease_time = 600", "lease_tme = 600"))
    offset = len(server.log())
    os.kill(proc.pid, signal.SIGHUP)
    notice(listener, "RELOADING=1")
    ready = notice(listener, "READY=1")
    assert "READY=1" in ready and "the last reload was refused" in ready
    wait_for(lambda: "keeping the config in use" in server.log()[offset:], 20, "the refusal")
    refused = [line for line in server.log()[offset:].splitlines() if "reload refused" in line]
    line = good.splitlines().index("lease_time = 600") + 1
    assert len(refused) == 1, refused
    assert refused[0].endswith(
        f"reload refused: {config}:{line}: dhcp.lease_tme: unknown key (did you mean lease_time?)"
    )
    assert proc.poll() is None
    same_sockets(proc.pid, held)
    assert udhcpc_lease(phone, tmp_path)["opt224"] == b"site-two".hex()
    assert http(phone, "site.txt") == (200, "from root two\n")

    # A socket-level key: that service alone restarts, the others keep theirs.
    config.write_text(good.replace("port = 69", "port = 6969"))
    offset = len(server.log())
    os.kill(proc.pid, signal.SIGHUP)
    wait_for(lambda: "reload: done" in server.log()[offset:], 20, "the tftp restart")
    assert "restarting tftp alone (tftp.port changed)" in server.log()[offset:]
    assert tftp(phone, tmp_path, "site.txt", port=6969) == "from root two\n"
    now_held = steady_sockets(proc.pid)
    assert len(held - now_held) == 1  # the TFTP listener, and only it
    assert http(phone, "site.txt") == (200, "from root two\n")

    assert server.stop(signal.SIGTERM) == 0
    log = server.log()
    assert "Traceback" not in log and "ExceptionGroup" not in log
    assert "stopped: leases and registry written" in log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_is_exit_0_with_leases_and_registry_written(
    lab: Lab, tmp_path: Path, sig: signal.Signals
) -> None:
    srv, phone, config = site(lab, tmp_path)
    server = NetbootServer(lab, srv, config).start()
    ip = udhcpc_lease(phone, tmp_path, configure=True)["ip"]
    assert http(phone, "site.txt")[0] == 200
    assert server.stop(sig) == 0
    log = server.log()
    assert "Traceback" not in log and "ExceptionGroup" not in log
    assert "stopped: leases and registry written" in log
    # Read after the process is gone: what it knew is on disk.
    assert [(x["mac"], x["ip"]) for x in leases(server)] == [(PHONE_MAC, ip)]
    phones = json.loads(server.cli("phones", "--json").stdout)
    assert PHONE_MAC in {p["mac"] for p in phones}


def test_sighup_gives_pnp_phones_a_new_rule_on_the_same_socket(lab: Lab, tmp_path: Path) -> None:
    """A PnP rule added by a reload answers the next SUBSCRIBE (real sipp phone);
    the multicast socket is the one it was."""
    from tests.test_pnp_netns import (
        ANSWER_NOTIFY,
        PLANET,
        RECV_NOTIFY,
        RECV_OK,
        SERVER_IP,
        SUBSCRIBE,
        URL,
        PnpSite,
        explain,
        received,
        scenario,
    )

    pnp = PnpSite(lab, tmp_path)
    assert pnp.server.proc is not None
    pid = pnp.server.proc.pid
    xml = scenario(
        SUBSCRIBE.format(via_extra="", **PLANET),
        RECV_OK,
        RECV_NOTIFY,
        ANSWER_NOTIFY.format(server=SERVER_IP),
    )
    proc, log = pnp.sipp("before", xml)
    assert proc.returncode == 0, explain(proc, pnp)
    assert received(log)[-1].body == URL.encode()
    held = steady_sockets(pid)

    planet_url = f"http://{SERVER_IP}/planet/$mac.cfg"
    text = pnp.config.read_text()
    pnp.config.write_text(
        text.replace(
            "[[pnp.rule]]",
            f'[[pnp.rule]]\nvendor = "PLANET"\nurl = "{planet_url}"\n[[pnp.rule]]',
            1,
        )
    )
    offset = len(pnp.server.log())
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: "reload: done" in pnp.server.log()[offset:], 20, "the reload")
    said = pnp.server.log()[offset:]
    assert "changed: pnp.rules" in said and "sockets and leases kept: pnp" in said, said
    same_sockets(pid, held)

    proc, log = pnp.sipp("after", xml)
    assert proc.returncode == 0, explain(proc, pnp)
    assert received(log)[-1].body == planet_url.encode()
    assert pnp.server.stop() == 0


def test_a_restart_that_cannot_bind_puts_the_old_config_back(lab: Lab, tmp_path: Path) -> None:
    """The new TFTP port is taken: the reload is refused as a whole (the class
    option changed in the same file does not apply) and TFTP serves on port 69."""
    srv, phone, config = site(lab, tmp_path)
    holder = lab.spawn(
        srv,
        [
            sys.executable,
            "-c",
            "import socket, time\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.bind(('0.0.0.0', 6969))\n"
            "time.sleep(120)\n",
        ],
    )
    wait_for(lambda: ":6969 " in srv.run(["ss", "-uln"]).stdout, 10, "port 6969 to be taken")
    server = NetbootServer(lab, srv, config).start()
    assert server.proc is not None
    assert udhcpc_lease(phone, tmp_path, configure=True)["opt224"] == b"site-one".hex()

    write_config(config, site="site-two", tftp_port=6969)
    offset = len(server.log())
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_for(lambda: "the old config serves on" in server.log()[offset:], 20, "the refusal")
    said = server.log()[offset:]
    assert "restarting tftp alone (tftp.port changed)" in said
    assert "reload refused: tftp: cannot bind UDP 0.0.0.0:6969" in said, said
    assert "root1 on UDP port 69\n" in said  # TFTP back on its old port, old root

    assert tftp(phone, tmp_path, "site.txt") == "from root one\n"
    assert udhcpc_lease(phone, tmp_path)["opt224"] == b"site-one".hex()
    assert http(phone, "site.txt") == (200, "from root one\n")
    assert server.stop() == 0
    holder.kill()


def test_sighup_sends_the_new_lldp_policy_at_once(lab: Lab) -> None:
    """lldpd (the phone's side) hears the new voice VLAN right after the reload,
    not after the 30 s interval, from the same socket."""
    import shutil
    import tempfile

    from tests.test_lldp_netns import Lldpd, segment
    from tests.test_lldp_netns import write_config as lldp_config

    def voice_vid(lldpd: Lldpd) -> str | None:
        neighbor = lldpd.neighbor()
        if neighbor is None:
            return None
        policies = {p["apptype"]: p for p in neighbor["lldp-med"]["policy"]}
        vid: str = policies["Voice"]["vlan"]["vid"]
        return vid

    # lldpd drops privileges: its socket directory must be open to its user.
    workdir = Path(tempfile.mkdtemp(prefix="netboot-lldp-"))
    try:
        workdir.chmod(0o755)
        appliance, phone = segment(lab)
        lldpd = Lldpd(lab, phone, workdir)
        config = lldp_config(workdir)
        server = NetbootServer(lab, appliance, config).start()
        assert server.proc is not None
        assert wait_for(lambda: voice_vid(lldpd), 15, "lldpd to hear the policy") == "100"
        held = steady_sockets(server.proc.pid)

        config.write_text(config.read_text().replace("voice_vlan = 100", "voice_vlan = 200"))
        offset = len(server.log())
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload: done" in server.log()[offset:], 20, "the reload")
        # Well inside the 30 s interval: the change went out at once.
        wait_for(lambda: voice_vid(lldpd) == "200", 5, "lldpd to hear VLAN 200")
        same_sockets(server.proc.pid, held)
        assert "changed: lldp.voice_vlan" in server.log()[offset:]
        assert server.stop() == 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_sighup_rereads_an_inventory_edited_in_place(lab: Lab, tmp_path: Path) -> None:
    """The config is unchanged, the inventory was edited keeping its size and
    mtime (rsync -t, a restored backup): the file watch misses it, a reload
    does not."""
    srv, phone, config = site(lab, tmp_path)
    server = NetbootServer(lab, srv, config).start()
    assert server.proc is not None
    udhcpc_lease(phone, tmp_path, configure=True)
    assert http(phone, "00304F113AF8.cfg")[0] == 200
    inventory = tmp_path / "one.csv"
    stat = inventory.stat()
    inventory.write_text(inventory.read_text().replace("3a:f8", "3a:f9"))
    os.utime(inventory, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert inventory.stat().st_size == stat.st_size
    assert http(phone, "00304F113AF9.cfg")[0] == 404  # not seen without a reload

    offset = len(server.log())
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_for(lambda: "reload: done" in server.log()[offset:], 20, "the reload")
    assert "the config is unchanged" in server.log()[offset:]
    assert http(phone, "00304F113AF9.cfg")[0] == 200
    assert http(phone, "00304F113AF8.cfg")[0] == 404
    assert server.stop() == 0
