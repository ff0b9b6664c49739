"""Prometheus counters shared by the services (exposed at GET /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

BAD_INPUT = Counter(
    "netboot_bad_input_total",
    "Malformed packets or requests dropped",
    ["service"],
    registry=REGISTRY,
)
DHCP_MESSAGES = Counter(
    "netboot_dhcp_messages_total",
    "DHCP messages by direction and type",
    ["direction", "type"],
    registry=REGISTRY,
)
DHCP_LEASES = Gauge("netboot_dhcp_leases", "Active (bound) DHCP leases", registry=REGISTRY)
PNP_ANSWERS = Counter("netboot_pnp_answers_total", "SIP PnP NOTIFYs sent", registry=REGISTRY)
PNP_REFUSED = Counter(
    "netboot_pnp_refused_total", "SIP PnP SUBSCRIBEs not answered", ["reason"], registry=REGISTRY
)
FILES_SERVED = Counter(
    "netboot_files_total",
    "Config and firmware file requests by protocol and result",
    ["protocol", "result"],
    registry=REGISTRY,
)
STUN_RESPONSES = Counter(
    "netboot_stun_responses_total", "STUN responses sent", ["kind"], registry=REGISTRY
)
LLDP_FRAMES = Counter(
    "netboot_lldp_frames_total", "LLDP/CDP frames", ["direction", "protocol"], registry=REGISTRY
)
ACTION_EVENTS = Counter(
    "netboot_action_events_total", "Action URL events received", ["event"], registry=REGISTRY
)
