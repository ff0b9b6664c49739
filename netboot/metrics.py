"""Prometheus counters shared by the services (exposed at GET /metrics)."""

from __future__ import annotations

import logging

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
DHCP_ACKS_WITHHELD = Counter(
    "netboot_dhcp_acks_withheld_total",
    "DHCP ACKs not sent because their lease could not be written to state_dir",
    registry=REGISTRY,
)
DHCP_QUARANTINE_RECLAIMED = Counter(
    "netboot_dhcp_quarantine_reclaimed_total",
    "Quarantined (declined or ARP-answered) addresses offered again because the pool ran dry",
    registry=REGISTRY,
)
DHCP_ROGUE_REPLIES = Counter(
    "netboot_dhcp_rogue_replies_total",
    "DHCP replies (OFFER, ACK, NAK) from another DHCP server seen on a served segment",
    registry=REGISTRY,
)
DHCP_ROGUE_SERVERS = Gauge(
    "netboot_dhcp_rogue_servers",
    "Other DHCP servers heard recently on a served segment (the rogue-DHCP alarm is up while > 0)",
    registry=REGISTRY,
)
SERVICE_RUNNING = Gauge(
    "netboot_service_running",
    "1 when the service runs, 0 while it starts or when it refused to run",
    ["service"],
    registry=REGISTRY,
)
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
PHONES = Gauge(
    "netboot_phones", "Phones in the registry by provisioning state", ["state"], registry=REGISTRY
)
LIMITED = Counter(
    "netboot_limited_total",
    "Requests refused, sessions ended or entries evicted because a budget was reached",
    ["service", "budget"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "netboot_errors_total",
    "Errors logged, by the part that logged them",
    ["part"],
    registry=REGISTRY,
)

# Label values shown (at 0) before anything happens, so dashboards and alerts
# see every series from the first scrape.
_KNOWN_SERVICES = ("dhcp", "pnp", "tftp", "http", "ftp", "lldp", "stun", "action")
_KNOWN_BUDGETS = (
    ("tftp", "sessions-evicted"),
    ("tftp", "sessions-per-source"),
    ("tftp", "sessions-global"),
    ("http", "connections-per-address"),
    ("http", "connections-total"),
    ("http", "connections-evicted"),
    ("http", "accept-paused"),
    ("pnp", "answers-evicted"),
    ("pnp", "notify-unconfirmed"),
    ("dhcp", "off-segment"),
    ("dhcp", "inform-off-scope"),
    ("dhcp", "offer-reclaimed"),
    ("lldp", "neighbors-evicted"),
)


class _ErrorCounter(logging.Handler):
    """Counts ERROR and worse records of the `netboot.*` loggers in ERRORS."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        parts = record.name.split(".")
        ERRORS.labels(parts[1] if len(parts) > 1 else "main").inc()


_error_counter = _ErrorCounter()


def prepare_labels() -> None:
    """Create the usual series at 0 and count logged errors (idempotent)."""
    for kind in ("DISCOVER", "REQUEST", "DECLINE", "RELEASE", "INFORM"):
        DHCP_MESSAGES.labels("in", kind)
    for kind in ("OFFER", "ACK", "NAK"):
        DHCP_MESSAGES.labels("out", kind)
    for service in _KNOWN_SERVICES:
        BAD_INPUT.labels(service)
        ERRORS.labels(service)
    for service, budget in _KNOWN_BUDGETS:
        LIMITED.labels(service, budget)
    logger = logging.getLogger("netboot")
    if _error_counter not in logger.handlers:
        logger.addHandler(_error_counter)
