#!/usr/bin/env python3
"""Status page cost with a full site: how long `/`, `/api/phones`, a timeline and
`/metrics` take with N phones in the registry, and the longest stretch the event
loop was blocked while serving them (what DHCP/TFTP would wait during a refresh).

In-process aiohttp server on 127.0.0.1 (loopback only), registry in a temporary
directory. There is no reference server for this page: figures are absolute.

    /opt/netboot/bin/python bench/status.py [--phones 1000] [--requests 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from netboot.app import build_context  # noqa: E402
from netboot.config import parse_config  # noqa: E402
from netboot.events import (  # noqa: E402
    ActionReceived,
    FileFetched,
    LeaseAcked,
    LeaseOffered,
    PnpNotified,
)
from netboot.http.app import build_app  # noqa: E402
from netboot.registry import Registry  # noqa: E402
from netboot.state.leases import LeaseStore  # noqa: E402


def seed(reg: Registry, phones: int) -> list[str]:
    macs = []
    t = time.time() - 600
    for n in range(phones):
        mac = f"00:30:4f:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"
        macs.append(mac)
        ip = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        offer = LeaseOffered(mac=mac, vendor_class="PLANET VIP-2140PT", offered=ip)
        reg.record(offer, now=t)
        reg.record(LeaseAcked(mac=mac, ip=ip, url="http://x/$mac.cfg"), now=t + 1)
        reg.record(PnpNotified(mac=mac, url="http://x/$mac.cfg", to=f"{ip}:5060"), now=t + 2)
        for k, (name, kind) in enumerate((("common.cfg", "common"), (f"{mac}.cfg", "mac"))):
            fetch = FileFetched(
                mac=mac,
                file=name,
                file_kind=kind,
                protocol="http",
                vendor="PLANET",
                model="VIP-2140PT",
                firmware="2.0.3",
            )
            reg.record(fetch, now=t + 3 + k)
        registered = ActionReceived(mac=mac, event="registration-succeeded", client=ip, line="1001")
        reg.record(registered, now=t + 6)
    reg.flush()
    return macs


async def measure(client: TestClient, path: str, requests: int) -> tuple[list[float], float, int]:  # type: ignore[type-arg]
    stalls: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stalls.append(now - last - 0.001)
            last = now

    tick = asyncio.create_task(ticker())
    times = []
    size = 0
    for _ in range(requests):
        start = time.perf_counter()
        resp = await client.get(path)
        body = await resp.read()
        times.append(time.perf_counter() - start)
        assert resp.status == 200, (path, resp.status)
        size = len(body)
    done = True
    await tick
    return times, max(stalls, default=0.0), size


async def run(phones: int, requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        config = parse_config(
            {
                "appliance": {"interface": "eth0", "state_dir": str(state)},
                "provisioning": {"root": str(state / "files")},
                "dhcp": {"enabled": False},
            }
        )
        registry = Registry(state)
        leases = LeaseStore(state)
        started = time.perf_counter()
        macs = seed(registry, phones)
        print(
            f"seeded {phones} phones, {phones * 7} events in {time.perf_counter() - started:.1f} s"
        )
        client = TestClient(
            TestServer(build_app(build_context(config, registry, leases)), host="127.0.0.1")
        )
        await client.start_server()
        try:
            print(f"{'path':<28}{'p50 ms':>9}{'p99 ms':>9}{'loop stall ms':>15}{'bytes':>10}")
            for path in ("/", "/api/phones", f"/phones/{macs[len(macs) // 2]}", "/metrics"):
                times, stall, size = await measure(client, path, requests)
                times.sort()
                p50 = statistics.median(times) * 1000
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
                print(f"{path[:27]:<28}{p50:>9.1f}{p99:>9.1f}{stall * 1000:>15.1f}{size:>10}")
        finally:
            await client.close()
            registry.close()
            leases.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.phones, args.requests))


if __name__ == "__main__":
    main()
