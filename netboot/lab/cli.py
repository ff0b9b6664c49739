"""`netboot lab`: a phone VLAN made of namespaces, netboot in it, a fleet of phones.

Topology (every name carries the lab's prefix, `nblab<pid>`):

    <prefix>-netboot  eth0 (appliance) ──┐
                        eth0.100 ─ vl100 │ (veth pair + the VLAN sidecar, vlan.py)
                                         ├─ br0 in <prefix>-switch
    <prefix>-phones   eth0 (all phones) ─┘

The appliance's voice VLAN interface `eth0.100` is one end of a veth pair
whose other end the lab's VLAN sidecar (a thread of this process) joins to
VLAN 100 on `eth0`: the tagged DHCP the phones send after learning the VLAN
from LLDP-MED is answered from the voice scope on `eth0.100`.

The phones share one namespace and one interface: each has its own MAC on
the wire for DHCP and LLDP (raw sockets, `segment.py`), and its leased
address is added to that interface so its HTTP and TFTP go out from its own
IP (which is what the server's per-MAC file binding checks). Everything is
removed on exit, on Ctrl-C, on SIGTERM and on error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from types import FrameType
from typing import Any

import netboot
from netboot import vendors
from netboot.lab.apply import Applied
from netboot.lab.netns import CLONE_NEWNET, Lab, Netns, settled, wait_for
from netboot.lab.phone import (
    VENDORS,
    Phone,
    PhoneEnv,
    PhoneResult,
    StepFailed,
    Vendor,
    VoiceScope,
    expected_common_file,
    expected_own_file,
    http_get,
    phone_mac,
    pnp_subscribe,
)
from netboot.lab.segment import DhcpMux, LldpListener, PlumbedInterface, Plumber
from netboot.lab.vlan import VlanSidecar
from netboot.lab.webui import ActiveUriLog, PhoneWebServer
from netboot.provisioning.inventory import model_for_common_file

DEFAULT_MIX = "planet=60,yealink=20,snom=20"
VOICE_VLAN = 100
VOICE_IF = f"eth0.{VOICE_VLAN}"  # the appliance's voice interface (a veth end)
SIDECAR_PORT = f"vl{VOICE_VLAN}"  # its peer, the VLAN sidecar's port
ACTION_EVENTS = ("setup-completed", "registration-succeeded")
ADMIN_USER = "admin"  # the lab's [phones] admin account; phones apply it from their files
INVENTORY = "phones.csv"


class LabError(Exception):
    """The lab cannot be set up or run; the message says why."""


def parse_mix(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, weight = part.strip().partition("=")
        if not sep or name not in VENDORS:
            raise LabError(f"--mix: {part!r}: use VENDOR=WEIGHT with vendors {', '.join(VENDORS)}")
        try:
            out[name] = int(weight)
        except ValueError:
            raise LabError(f"--mix: {part!r}: weight must be an integer") from None
        if out[name] < 0:
            raise LabError(f"--mix: {part!r}: weight must not be negative")
    if not sum(out.values()):
        raise LabError("--mix: all weights are zero")
    return out


def assign_vendors(count: int, mix: dict[str, int]) -> list[Vendor]:
    """Exactly `count` phones split by the weights (largest remainder)."""
    total = sum(mix.values())
    shares = {name: count * weight / total for name, weight in mix.items()}
    counts = {name: int(share) for name, share in shares.items()}
    by_remainder = sorted(shares, key=lambda n: shares[n] - counts[n], reverse=True)
    for name in by_remainder[: count - sum(counts.values())]:
        counts[name] += 1
    return [VENDORS[name] for name, n in counts.items() for _ in range(n)]


@dataclass(frozen=True)
class Addressing:
    network: IPv4Network
    server: IPv4Address
    pool_start: IPv4Address
    pool_end: IPv4Address
    voice_network: IPv4Network
    voice_server: IPv4Address
    voice_pool_start: IPv4Address
    voice_pool_end: IPv4Address


def addressing(phones: int) -> Addressing:
    """192.0.2.0/24 and, for the voice VLAN, 198.51.100.0/24 (RFC 5737) fit
    240 phones; more go into 198.18.0.0/16 and 198.19.0.0/16 (RFC 2544, the
    range set aside for benchmarking network devices)."""
    if phones > 65000:
        raise LabError(f"--phones {phones}: at most 65000 phones")
    if phones <= 240:
        net, voice = IPv4Network("192.0.2.0/24"), IPv4Network("198.51.100.0/24")
    else:
        prefix = 32 - (phones + 30).bit_length()
        net = IPv4Network(f"198.18.0.0/{prefix}")
        voice = IPv4Network(f"198.19.0.0/{prefix}")
    last = min(net.num_addresses - 2, 10 + phones + 15)
    return Addressing(net, net[1], net[10], net[last], voice, voice[1], voice[10], voice[last])


def available_services() -> set[str]:
    from netboot.app import SERVICE_NAMES

    return set(SERVICE_NAMES)


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def write_config(
    path: Path,
    base: Path,
    addr: Addressing,
    services: set[str],
    phones: int,
    admin_password: str = "lab",
    templates: Path | None = None,
) -> dict[str, Any]:
    """The lab's config.toml: every service this build has, switched on."""
    server = addr.server
    features = {
        "tftp": "tftp" in services,
        "http": "http" in services,
        "pnp": "pnp" in services,
        "lldp": "lldp" in services,
        "stun": "stun" in services,
        "action": "http" in services and has_module("netboot.http.action"),
        "status": "http" in services and has_module("netboot.http.status"),
    }
    http_url = f"http://{server}/$mac.cfg"
    planet_url = f"tftp://{server}/$mac.cfg" if features["tftp"] else http_url
    # Snom phones find the URL by SIP PnP when the build has it: DHCP then
    # leaves it out for them.
    snom_options = "[]" if features["pnp"] else "[66]"
    # The voice VLAN the appliance advertises (LLDP-MED, CDP) is served on
    # eth0.100, the veth end the VLAN sidecar joins to VLAN 100.
    voice_scope = (
        f"""
[[dhcp.scope]]
interface = "{VOICE_IF}"
vlan = {VOICE_VLAN}
subnet = "{addr.voice_network}"
pool = "{addr.voice_pool_start}-{addr.voice_pool_end}"
router = "{addr.voice_server}"
dns = ["{addr.voice_server}"]
"""
        if features["lldp"]
        else ""
    )
    text = f"""# written by `netboot lab`
[appliance]
interface = "eth0"
address = "{server}"
state_dir = "{base / "state"}"
name = "netboot-lab"

[provisioning]
url = "{http_url}"
root = "{base / "files"}"

[dhcp]
enabled = true
subnet = "{addr.network}"
pool = "{addr.pool_start}-{addr.pool_end}"
router = "{server}"
dns = ["{server}"]
lease_time = 3600
url_options = [66]
{voice_scope}
[[dhcp.class]]
name = "planet"
mac_prefix = "00:30:4f"
url = "{planet_url}"
url_options = [200, 66, 43]

[[dhcp.class]]
name = "yealink"
vendor = "yealink"
url_options = [66, 43]

[[dhcp.class]]
name = "snom"
vendor = "snom"
url_options = {snom_options}

[[dhcp.class]]
name = "avaya"
vendor = "avaya"
url_options = [242]

[pnp]
enabled = {str(features["pnp"]).lower()}

[tftp]
enabled = {str(features["tftp"]).lower()}

[http]
enabled = {str(features["http"]).lower()}
port = 80
https_port = 0

[ftp]
enabled = false

[lldp]
enabled = {str(features["lldp"]).lower()}
voice_vlan = {VOICE_VLAN}
cdp = true

[stun]
enabled = {str(features["stun"]).lower()}
addresses = ["{server}"]

[phones]
inventory = "{base / INVENTORY}"
sip_server = "{server}"
admin_user = "{ADMIN_USER}"
admin_password = "{admin_password}"
stun = {str(features["stun"]).lower()}
ntp_server = "{server}"
time_zone = "Europe/Berlin"
{f'templates = "{templates}"' if templates else ""}
"""
    path.write_text(text)
    return features


def renders_for(vendor: Vendor) -> bool:
    """netboot renders this vendor's files (it has a model with that common file)."""
    return model_for_common_file(vendor.common_file) is not None


def phone_line(index: int) -> str:
    return str(10000 + index)


def write_files(root: Path, phones: list[Phone], wrong: int = 0) -> list[str]:
    """Files for the phones, the first `wrong` of them wrong (to show the check
    catches it). A vendor netboot renders for gets an inventory row (netboot
    renders its common and own file; the phone applies them and checks its
    line is its own: a wrong phone's row carries another line). Any other
    vendor gets a static common and own file under `root`, a wrong one
    another MAC's. Returns the inventory's rows."""
    root.mkdir(parents=True, exist_ok=True)
    rows = ["mac,model,extension,password,display_name"]
    for vendor in {p.vendor.name: p.vendor for p in phones}.values():
        if not renders_for(vendor):
            (root / vendor.common_file).write_bytes(expected_common_file(vendor))
    for index, phone in enumerate(phones):
        model = model_for_common_file(phone.vendor.common_file)
        if model is not None:
            line = phone_line(index)
            phone.env.lines[phone.mac] = line
            written = line if index >= wrong else phone_line(index + len(phones))
            rows.append(f"{phone.result.mac},{model.name},{written},pw{index},lab {index}")
            continue
        mac = phone.mac if index >= wrong else phone.mac[:5] + bytes((phone.mac[5] ^ 0xFF,))
        own = root / phone.vendor.own_name(phone.mac)
        own.write_bytes(expected_own_file(mac, phone.vendor))
    return rows


def interface_mac(ns: Netns, ifname: str) -> str:
    out = ns.run(["cat", f"/sys/class/net/{ifname}/address"]).stdout.strip()
    return out


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` so far (/proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Progress:
    """A one-line live bar on stderr (only on a terminal)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.started = time.monotonic()

    def draw(self, done: int, failed: int) -> None:
        if not self.enabled:
            return
        width = 40
        filled = width * done // max(1, self.total)
        elapsed = time.monotonic() - self.started
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
            f"failed {failed}  {elapsed:5.1f}s"
        )
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


async def run_fleet(
    phones: list[Phone], mux: DhcpMux, plumber: Plumber, progress: Progress
) -> list[PhoneResult]:
    mux.start()
    try:
        failed = 0
        tasks = [asyncio.create_task(p.boot()) for p in phones]
        for done, next_done in enumerate(asyncio.as_completed(tasks), 1):
            result = await next_done
            failed += not result.ok
            progress.draw(done, failed)
        progress.finish()
        return [t.result() for t in tasks]
    finally:
        mux.close()


@contextlib.contextmanager
def inside(ns: Netns) -> Any:
    """Run the calling (main) thread in `ns`, and come back afterwards."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        ns.enter()
        yield
    finally:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.setns(home, CLONE_NEWNET)
        os.close(home)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_lab(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print(
            "netboot lab: needs root (it creates network namespaces): run it with sudo",
            file=sys.stderr,
        )
        return 2
    if shutil.which("ip") is None:
        print("netboot lab: needs the `ip` command (Debian package iproute2)", file=sys.stderr)
        return 2
    try:
        mix = {name: 1 for name in VENDORS} if args.vendors else parse_mix(args.mix)
        addr = addressing(args.phones)
    except LabError as exc:
        print(f"netboot lab: {exc}", file=sys.stderr)
        return 2
    old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    lab = Lab(prefix=f"nblab{os.getpid()}")
    base = Path(tempfile.mkdtemp(prefix=f"{lab.prefix}-"))
    try:
        return _run(args, lab, base, mix, addr)
    except LabError as exc:
        print(f"netboot lab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nnetboot lab: interrupted, removing the lab", file=sys.stderr)
        return 130
    finally:
        lab.close()
        shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGTERM, old_term)


def _run(
    args: argparse.Namespace,
    lab: Lab,
    base: Path,
    mix: dict[str, int],
    addr: Addressing,
) -> int:
    t0 = time.monotonic()
    switch = lab.netns("switch")
    server_ns = lab.netns("netboot")
    phones_ns = lab.netns("phones")
    prefix_len = addr.network.prefixlen
    lab.link(switch, "srv", server_ns, "eth0", None, f"{addr.server}/{prefix_len}")
    lab.link(switch, "phones", phones_ns, "eth0")
    lab.bridge(switch, "br0", ["srv", "phones"])
    phones_ns.run(["ip", "link", "set", "eth0", "promisc", "on"])
    phones_ns.run(["ip", "route", "add", "224.0.0.0/4", "dev", "eth0"])  # SIP PnP's group
    # The kernel ARP table is shared by all namespaces: with a thousand phones
    # the server's entries must not push each other out.
    for ns in (server_ns, phones_ns):
        ns.run(["sysctl", "-q", "-w", "net.ipv4.neigh.eth0.gc_stale_time=3600"], check=False)

    salt = random.randrange(256)
    vendors = assign_vendors(args.phones, mix)
    random.shuffle(vendors)
    services = available_services()
    config_path = base / "config.toml"
    # The phones' rows come once their MACs are known (boot_phones); serve
    # refuses a missing inventory file, so it starts from the header alone.
    (base / INVENTORY).write_text("mac,model,extension,password,display_name\n")
    features = write_config(
        config_path,
        base,
        addr,
        services,
        args.phones,
        admin_password=secrets.token_hex(6),
        templates=Path(args.templates).resolve() if args.templates else None,
    )
    (base / "state").mkdir()
    sidecar: VlanSidecar | None = None
    if features["lldp"]:
        sidecar = voice_vlan(server_ns, addr)
    try:
        return _serve(
            args, lab, base, addr, features, vendors, salt, server_ns, phones_ns, sidecar, t0
        )
    finally:
        if sidecar is not None:
            sidecar.close()


def voice_vlan(server_ns: Netns, addr: Addressing) -> VlanSidecar:
    """The appliance's eth0.100 (a veth end) and the sidecar joining its peer
    to VLAN 100 on eth0. The sidecar's port carries no address and no IPv6,
    so only the appliance's own frames go through it."""
    server_ns.batch(
        [
            f"link add {VOICE_IF} type veth peer name {SIDECAR_PORT}",
            f"address add {addr.voice_server}/{addr.voice_network.prefixlen} dev {VOICE_IF}",
            f"link set {SIDECAR_PORT} promisc on",
        ]
    )
    for name in (VOICE_IF, SIDECAR_PORT):
        server_ns.run(["sysctl", "-q", "-w", f"net/ipv6/conf/{name}/disable_ipv6=1"], check=False)
    server_ns.batch([f"link set {SIDECAR_PORT} up", f"link set {VOICE_IF} up"])
    sidecar = VlanSidecar("eth0", SIDECAR_PORT, VOICE_VLAN)
    with inside(server_ns):
        sidecar.open()
    sidecar.start()
    return sidecar


def _serve(
    args: argparse.Namespace,
    lab: Lab,
    base: Path,
    addr: Addressing,
    features: dict[str, bool],
    vendors: list[Vendor],
    salt: int,
    server_ns: Netns,
    phones_ns: Netns,
    sidecar: VlanSidecar | None,
    t0: float,
) -> int:
    config_path = base / "config.toml"
    prefix_len = addr.network.prefixlen
    plumbed = PlumbedInterface(
        name="eth0",
        mac=interface_mac(phones_ns, "eth0"),
        prefix=prefix_len,
        server_ns=server_ns,
        server_if="eth0",
        server_mac=interface_mac(server_ns, "eth0"),
        server_ips=(str(addr.server),),
    )

    log_path = base / "netboot.log"
    env = dict(os.environ)
    package_root = str(Path(netboot.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
    with log_path.open("wb") as log:
        server = lab.spawn(
            server_ns,
            [sys.executable, "-m", "netboot", "serve", "-c", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def server_log() -> str:
        return log_path.read_bytes().decode(errors="replace")

    def ready() -> bool:
        if server.poll() is not None:
            raise LabError(f"netboot serve exited {server.returncode}:\n{server_log()}")
        return settled(server_log())

    try:
        wait_for(ready, 60, "netboot serve to be ready")
    except AssertionError as exc:
        raise LabError(f"{exc}\n{server_log()}") from None
    setup_time = time.monotonic() - t0
    print(
        f"lab {lab.prefix}: netboot ready at {addr.server} after {setup_time:.1f}s "
        f"(services: {', '.join(sorted(k for k, v in features.items() if v)) or 'dhcp'}); "
        f"booting {args.phones} phones",
        file=sys.stderr,
    )

    stats: dict[str, Any] = {}
    with inside(phones_ns):
        results, fleet_time, server_rss = asyncio.run(
            _boot_all(
                args,
                vendors,
                salt,
                base,
                addr,
                features,
                plumbed,
                phones_ns,
                server,
                config_path,
                server_ns,
                stats,
            )
        )

    ok = sum(r.ok for r in results)
    totals = sorted(r.total for r in results if r.ok)
    summary = {
        "lab": lab.prefix,
        "phones": len(results),
        "provisioned": ok,
        "failed": len(results) - ok,
        "setup_seconds": round(setup_time, 3),
        "fleet_seconds": round(fleet_time, 3),
        "p50_seconds": round(_percentile(totals, 50), 3),
        "p99_seconds": round(_percentile(totals, 99), 3),
        "server_peak_rss_kb": server_rss,
        "server_cpu_seconds": stats.get("server_cpu"),
        "lab_cpu_seconds": stats.get("lab_cpu"),
        "retries": sum(r.retries for r in results),
        "services": sorted(k for k, v in features.items() if v),
        "applied": sum(r.ok and "apply" in r.steps for r in results),
        "active_uri": stats.get("active_uri"),
        "server_limited": stats.get("limited"),
        "voice_vlan": (
            {
                "vlan": VOICE_VLAN,
                "interface": VOICE_IF,
                "subnet": str(addr.voice_network),
                "leased": sum(bool(r.voice_ip) for r in results),
                "sidecar_frames_in": sidecar.counts.to_port,
                "sidecar_frames_out": sidecar.counts.to_trunk,
                "sidecar_dropped": sidecar.counts.dropped,
                "sidecar_overflowed": sidecar.overflows(),
            }
            if sidecar is not None
            else None
        ),
        "notes": [
            f"voice VLAN {VOICE_VLAN}: each phone re-runs DHCP tagged in it and gets a lease "
            f"from the voice scope on {VOICE_IF} ({addr.voice_network}); the phones' later "
            "steps (PnP, files, Action URL, STUN) stay on their data address"
        ]
        if sidecar is not None
        else [],
    }
    if args.json:
        json.dump({**summary, "results": [r.as_dict() for r in results]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _print_results(results, summary)
    if server.poll() is not None:
        print(f"netboot lab: netboot serve died:\n{server_log()}", file=sys.stderr)
        return 1
    if ok != len(results):
        tail = "\n".join(server_log().splitlines()[-30:])
        print(f"netboot lab: some phones failed; netboot's log ends:\n{tail}", file=sys.stderr)
    if args.keep:
        print(
            f"\nlab {lab.prefix} kept running. Status page: http://{addr.server}/\n"
            f"  reach it:  sudo ip netns exec {server_ns.name} curl http://{addr.server}/\n"
            f"  phones:    sudo ip netns exec {phones_ns.name} ...\n"
            f"  config:    {config_path}   log: {log_path}\n"
            "Press Ctrl-C to remove the lab.",
            file=sys.stderr,
        )
        with contextlib.suppress(KeyboardInterrupt):
            while server.poll() is None:
                time.sleep(1)
        print("netboot lab: removing the lab", file=sys.stderr)
    return 0 if ok == len(results) else 1


async def _boot_all(
    args: argparse.Namespace,
    vendors: list[Vendor],
    salt: int,
    base: Path,
    addr: Addressing,
    features: dict[str, bool],
    plumbed: PlumbedInterface,
    phones_ns: Netns,
    server: subprocess.Popen[Any],
    config_path: Path,
    server_ns: Netns | None = None,
    stats: dict[str, Any] | None = None,
) -> tuple[list[PhoneResult], float, int | None]:
    stats = {} if stats is None else stats
    mux = DhcpMux(["eth0"])
    plumber = Plumber(phones_ns, {"eth0": plumbed})

    listener: LldpListener | None = None
    if features["lldp"]:
        listener = LldpListener("eth0")
        listener.start()

    env = PhoneEnv(
        dhcp=mux,
        untagged_if="eth0",
        voice_scopes=(
            {VOICE_VLAN: VoiceScope(addr.voice_server, addr.voice_network)}
            if features["lldp"]
            else {}
        ),
        plumb=plumber.add,
        lldp_wait=listener.wait_voice_vlan if listener else None,
        lldp_send=listener.send if listener else None,
        lldp_required=listener is not None,
        pnp=(lambda mac, vendor, ip, t: pnp_subscribe(vendor, mac, ip, t))
        if features["pnp"]
        else None,
        action_url=(
            f"http://{addr.server}/action/{{event}}?mac=$mac&ip=$ip&model=$model"
            if features["action"]
            else ""
        ),
        action_events=ACTION_EVENTS,
        fetch_files=features["http"] or features["tftp"],
        stun_server=(str(addr.server), 3478) if features["stun"] else None,
        timeout=args.timeout,
    )
    phones = [Phone(v, phone_mac(v, i, salt), env) for i, v in enumerate(vendors)]
    rows = write_files(base / "files", phones, args.wrong_file)
    tmp = base / f".{INVENTORY}.tmp"
    tmp.write_text("\n".join(rows) + "\n")
    os.replace(tmp, base / INVENTORY)  # netboot re-reads the inventory when it changes
    web = PhoneWebServer(phone_lookup(phones))
    await web.start()
    progress = Progress(len(phones), sys.stderr.isatty())
    t = time.monotonic()
    server_cpu, lab_cpu = cpu_seconds(server.pid), time.process_time()
    try:
        try:
            results = await run_fleet(phones, mux, plumber, progress)
            fleet_time = time.monotonic() - t
            after = cpu_seconds(server.pid)
            if after is not None and server_cpu is not None:
                stats["server_cpu"] = round(after - server_cpu, 2)
            stats["lab_cpu"] = round(time.process_time() - lab_cpu, 2)
        finally:
            if listener is not None:
                listener.close()
        if features["status"]:
            stats["limited"] = await server_budgets(results, str(addr.server))
        if env.voice_scopes:
            await check_leases(results, config_path)
        if features["status"] and env.fetch_files:
            # A family whose firmware reports no registration Action URL
            # (Grandstream, ...) stays "fetched-own" in the registry.
            reports = {
                p.result.mac for p in phones if reports_registration(p)
            } if features["action"] else set()  # fmt: skip
            await check_registry(
                results,
                str(addr.server),
                lambda r: "registered" if r.mac in reports else "fetched-own",
            )
        if server_ns is not None:
            stats["active_uri"] = await check_active_uri(
                phones, server_ns, config_path, str(addr.server)
            )
    finally:
        web.close()
        for phone in phones:  # the phones stay on (SIP socket open) until checked
            phone.close()
    return results, fleet_time, peak_rss_kb(server.pid)


async def server_budgets(results: list[PhoneResult], server: str) -> dict[str, float] | None:
    """The budgets that bit during the boot (netboot_limited_total above 0 in
    the appliance's /metrics, as `service/budget`): where a storm queued or
    was refused. None when /metrics cannot be read."""
    source = next((r.ip for r in results if r.ip), "")
    if not source:
        return None
    try:
        status, body = await http_get(f"http://{server}/metrics", source, "netboot-lab", 10)
    except (OSError, TimeoutError, StepFailed):
        return None
    if status != 200:
        return None
    found: dict[str, float] = {}
    for line in body.decode(errors="replace").splitlines():
        match = _LIMITED.match(line)
        if match and float(match["value"]) > 0:
            found[f"{match['service']}/{match['budget']}"] = float(match["value"])
    return found


_LIMITED = re.compile(
    r'^netboot_limited_total\{budget="(?P<budget>[^"]*)",service="(?P<service>[^"]*)"\}'
    r" (?P<value>\S+)$"
)


def phone_lookup(
    phones: list[Phone],
) -> Callable[[str], tuple[Applied | None, ActiveUriLog] | None]:
    """A phone's address -> what it applied and its Active URI log."""
    by_ip: dict[str, Phone] = {}

    def lookup(ip: str) -> tuple[Applied | None, ActiveUriLog] | None:
        phone = by_ip.get(ip)
        if phone is None:
            by_ip.update({p.result.ip: p for p in phones if p.result.ip})
            phone = by_ip.get(ip)
        return (phone.applied, phone.active_uri) if phone is not None else None

    return lookup


async def check_active_uri(
    phones: list[Phone], server_ns: Netns, config_path: Path, server_ip: str
) -> dict[str, int]:
    """Active URI as the phones applied it: `netboot phone reboot` on the
    appliance (its address, the admin account of the config, each phone's
    family's request) must be accepted by every phone that applied a config
    and whose family has a remote control netboot speaks, and the same request with the same account
    from another address (a phone's) must be refused with 403."""
    from netboot.provisioning.activeuri import protocol_for

    # Only phones whose family has a remote control netboot speaks.
    applied = [
        p
        for p in phones
        if p.result.ok
        and p.applied is not None
        and not isinstance(protocol_for(p.vendor.name), str)
    ]
    if not applied:
        return {"phones": 0, "accepted": 0, "refused_from_other_address": 0}
    env = dict(os.environ)
    package_root = str(Path(netboot.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "netboot", "phone", "-c", str(config_path), "reboot"]
    proc = await asyncio.create_subprocess_exec(
        *server_ns.argv([*cmd, *(p.result.ip for p in applied)]),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60 + len(applied) / 4)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        err = b"timed out"
    for phone in applied:
        if not phone.active_uri.accepted_from(server_ip):
            phone.result.ok = False
            seen = phone.active_uri.entries[-1:] or "nothing"
            phone.result.error = (
                f"active-uri: `netboot phone` from {server_ip} not accepted "
                f"(phone saw {seen}; {err.decode(errors='replace').strip()[-200:]})"
            )
    # The right account from the wrong address: refused (by a phone whose
    # firmware has an allowed-address list: PLANET/Fanvil, Yealink).
    restricted = [
        p for p in applied if p.applied is not None and p.applied.active_uri_ip not in ("", "any")
    ]
    if not restricted:
        return {
            "phones": len(applied),
            "accepted": sum(p.active_uri.accepted_from(server_ip) for p in applied),
            "refused_from_other_address": 0,
        }
    target, other = restricted[0], applied[-1] if applied[-1] is not restricted[0] else applied[0]
    assert target.applied is not None
    status = await active_uri_get(
        target.result.ip, other.result.ip, target.applied.admin_user, target.applied.admin_password
    )
    if status != 403:
        target.result.ok = False
        target.result.error = (
            f"active-uri: accepted from {other.result.ip} (HTTP {status}); "
            f"its config allows only {target.applied.active_uri_ip}"
        )
    return {
        "phones": len(applied),
        "accepted": sum(p.active_uri.accepted_from(server_ip) for p in applied),
        "refused_from_other_address": int(status == 403),
    }


async def active_uri_get(phone_ip: str, source_ip: str, user: str, password: str) -> int:
    """One Active URI GET with Basic auth from `source_ip`: the HTTP status."""
    import base64

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(phone_ip, 80, local_addr=(source_ip, 0)), 10
    )
    try:
        writer.write(
            f"GET /cgi-bin/ConfigManApp.com?key=OK HTTP/1.1\r\nHost: {phone_ip}\r\n"
            f"Authorization: Basic {token}\r\nConnection: close\r\n\r\n".encode()
        )
        line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


async def check_leases(results: list[PhoneResult], config_path: Path) -> None:
    """`netboot leases` on the appliance must agree: each phone that booted
    holds exactly two leases, its data address and its voice VLAN address."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "netboot", "leases", "--json", "-c", str(config_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    by_mac: dict[str, list[str]] = {}
    try:
        if proc.returncode != 0:
            raise ValueError(err.decode(errors="replace").strip())
        for lease in json.loads(out):
            by_mac.setdefault(lease["mac"], []).append(lease["ip"])
    except (ValueError, KeyError, TypeError) as exc:
        for r in results:
            if r.ok:
                r.ok, r.error = False, f"leases: `netboot leases` failed: {exc}"
        return
    for r in results:
        r.leases = sorted(by_mac.get(r.mac, []), key=IPv4Address)
        if r.ok and set(r.leases) != {r.ip, r.voice_ip}:
            r.ok = False
            r.error = (
                f"leases: the appliance holds {', '.join(r.leases) or 'none'} for {r.mac}, "
                f"not {r.ip} (data) and {r.voice_ip} (voice)"
            )


PNP_EVENTS = ("pnp subscribe", "pnp notify", "pnp notify-answered")


def reports_registration(phone: Phone) -> bool:
    """The phone's config gave it a registration Action URL (or it runs on
    static files, which report every event)."""
    applied = phone.applied
    return applied is None or "registration-succeeded" in applied.action_urls


async def check_registry(
    results: list[PhoneResult], server: str, expected_for: Callable[[PhoneResult], str]
) -> None:
    """The appliance's own view (its /api/phones) must agree: every phone that
    booted shows `expected` there, and every phone that found its URL by SIP
    PnP has the SUBSCRIBE, the NOTIFY (with that URL) and the phone's answer to
    it in its timeline. The registry is flushed in batches, so this polls for
    a while; a phone it still disagrees on fails."""
    booted = {r.mac: r for r in results if r.ok}
    if not booted:
        return
    source = next(iter(booted.values())).ip
    deadline = time.monotonic() + 15
    states: dict[str, str] = {}
    families: dict[str, str] = {}
    while True:
        try:
            status, body = await http_get(f"http://{server}/api/phones", source, "netboot-lab", 10)
            if status == 200:
                listed = json.loads(body)["phones"]
                states = {p["mac"]: p["state"] for p in listed}
                families = {p["mac"]: p.get("vendor") or "" for p in listed}
        except (OSError, TimeoutError, ValueError, KeyError, StepFailed):
            pass
        if (
            all(states.get(mac) == expected_for(r) for mac, r in booted.items())
            or time.monotonic() > deadline
        ):
            break
        await asyncio.sleep(0.25)
    for mac, r in booted.items():
        expected = expected_for(r)
        profile = vendors.by_name(r.vendor)
        if states.get(mac) != expected:
            r.ok = False
            r.error = f"registry: the appliance shows {states.get(mac, 'nothing')}, not {expected}"
        elif profile is not None and families.get(mac) != profile.label:
            # `netboot phones` and the status page name each phone's family.
            r.ok = False
            r.error = f"registry: the appliance names {families.get(mac)!r}, not {profile.label!r}"
    by_pnp = [r for r in booted.values() if r.ok and r.url_source == "pnp"]
    gate = asyncio.Semaphore(16)
    await asyncio.gather(*(_check_pnp_timeline(r, server, source, gate) for r in by_pnp))


async def _check_pnp_timeline(
    r: PhoneResult, server: str, source: str, gate: asyncio.Semaphore
) -> None:
    async with gate:
        try:
            status, body = await http_get(
                f"http://{server}/api/phones/{r.mac}", source, "netboot-lab", 10
            )
            events = json.loads(body)["events"] if status == 200 else []
        except (OSError, TimeoutError, ValueError, KeyError, StepFailed) as exc:
            r.ok, r.error = False, f"registry: timeline of {r.mac}: {exc}"
            return
    seen = [f"{e['service']} {e['kind']}" for e in events]
    r.appliance = [kind for kind in dict.fromkeys(seen) if kind.startswith("pnp ")]
    missing = [kind for kind in PNP_EVENTS if kind not in seen]
    urls = {
        e["detail"].get("url") for e in events if (e["service"], e["kind"]) == ("pnp", "notify")
    }
    if missing:
        r.ok, r.error = False, f"registry: no {', '.join(missing)} in the appliance's timeline"
    elif r.url not in urls:
        r.ok, r.error = (
            False,
            f"registry: the appliance's NOTIFY sent {urls}, the phone got {r.url}",
        )


def _percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, round(pct / 100 * len(values) + 0.5) - 1))
    return values[index]


def _print_results(results: list[PhoneResult], summary: dict[str, Any]) -> None:
    from netboot.commands.common import print_table

    step_names = ["dhcp", "lldp", "dhcp-voice", "pnp", "common", "own", "apply", "action", "stun"]
    used = [s for s in step_names if any(s in r.steps for r in results)]
    rows = []
    for r in results:
        rows.append(
            [
                r.mac,
                r.model,
                r.ip or "-",
                r.voice_ip or "-",
                "-" if r.vlan is None else f"{r.vlan} ({r.vlan_source})",
                r.url_source or "-",
                *(f"{r.steps[s]:.2f}" if s in r.steps else "-" for s in used),
                f"{r.total:.2f}",
                "ok" if r.ok else f"FAILED {r.error}",
            ]
        )
    print_table(
        rows,
        [
            "MAC",
            "MODEL",
            "IP",
            "VOICE IP",
            "VLAN",
            "URL FROM",
            *[s.upper() for s in used],
            "TOTAL",
            "RESULT",
        ],
    )
    print(
        f"\n{summary['provisioned']}/{summary['phones']} phones provisioned in "
        f"{summary['fleet_seconds']:.1f}s (p50 {summary['p50_seconds']:.2f}s, "
        f"p99 {summary['p99_seconds']:.2f}s), {summary['failed']} failed, "
        f"{summary['retries']} retries; netboot peak RSS "
        f"{(summary['server_peak_rss_kb'] or 0) / 1024:.1f} MB, CPU netboot "
        f"{summary['server_cpu_seconds']}s lab {summary['lab_cpu_seconds']}s"
    )
