"""The PnP service's timers on a stepped clock, with a stand-in socket."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from types import SimpleNamespace

from netboot.clock import SteppedClock
from netboot.config import ApplianceConfig, Config
from netboot.pnp import codec
from netboot.pnp.engine import T1, T2, TIMER_F, PnpResponder
from netboot.pnp.transport import Link, PnpService
from netboot.registry import Registry
from tests.test_pnp_codec import SNOM
from tests.test_pnp_engine import SNOM_MAC, site

PHONE = ("192.168.10.31", 5060)


class _Socket:
    def __init__(self, clock: SteppedClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes, dest: tuple[str, int]) -> int:
        self.sent.append((self.clock.now(), data, dest))
        return len(data)


def test_notify_retransmitted_on_timer_e_then_given_up_on_timer_f(tmp_path: Path) -> None:
    config = Config(appliance=ApplianceConfig(interface="eth0", state_dir=tmp_path))
    registry = Registry(tmp_path)
    leases = SimpleNamespace(mac_for_ip=lambda ip, now: SNOM_MAC)  # the phone holds a lease
    clock = SteppedClock(1000.0)
    service = PnpService(SimpleNamespace(config=config, registry=registry, leases=leases), clock)  # type: ignore[arg-type]
    sock = _Socket(clock)
    link = Link("eth0", IPv4Address("192.168.1.2"), sock, PnpResponder(site()))  # type: ignore[arg-type]
    service.links.append(link)
    try:
        service.receive(link, SNOM, PHONE)
        service._tick()  # what a read wake-up does after receiving
        assert [codec.decode(d).method or codec.decode(d).status for _, d, _ in sock.sent] == [
            200,
            "NOTIFY",
        ]
        clock.advance(TIMER_F + 1.0)
        times = [round(t - 1000.0, 3) for t, _, _ in sock.sent[2:]]
        # Timer E: T1, doubling to T2, from each send; Timer F ends it at 32 s.
        expected, at, interval = [], 0.0, T1
        while at + interval < TIMER_F:
            at += interval
            expected.append(at)
            interval = min(2 * interval, T2)
        assert times == expected
        assert clock.pending == 0  # nothing left to wait for
        registry.flush()
        kinds = [e.kind for e in registry.timeline(SNOM_MAC)]
        assert kinds[-1] == "notify-timeout"
    finally:
        registry.close()


def test_config_with_the_site_url(tmp_path: Path) -> None:
    # The site comes from the config (engine.site_for), not from the transport.
    from netboot.pnp.engine import site_for

    config = Config(appliance=ApplianceConfig(interface="eth0", state_dir=tmp_path))
    config = replace(config, pnp=replace(config.pnp, rate_limit=5.0))
    s = site_for(config, IPv4Address("192.168.1.2"), (), ())
    assert (s.local_ip, s.rate_limit, s.burst) == ("192.168.1.2", 5.0, 15.0)
