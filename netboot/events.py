"""Everything the services tell the phone registry: one frozen dataclass per event.

A service records what happened to a phone as one of these (DHCP
`LeaseAcked`, PnP `PnpNotified`, a file server's `FileFetched`, an Action URL
`ActionReceived`, ...). Each event names its `service` and `kind` (the
registry's columns, unchanged since events were strings), its typed fields
(the timeline's detail, stored as JSON under the same keys as before, so old
databases stay readable) and the phone facts it carries (ip, vendor, model,
firmware, ...: they update the phone's row; fields marked `fact`).

Where a phone is in its provisioning is `PhoneState`; what an event means for
it is its `step()` (a `Step` and why); `TRANSITIONS` is the whole table of
which step moves a phone from which state to which. Successes only move a
phone forward; a failed fetch is shown (unless the phone has registered)
until a later success replaces it.

Reading: `decode(service, kind, stored)` turns a stored row back into its
event (None for a row no event class describes: an older or foreign kind).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypedDict

from netboot.provisioning.events import BY_SLUG

# Facts an event may carry about its phone: columns of the phone's row.
FACTS = ("ip", "vendor", "model", "firmware", "hostname", "vendor_class", "url", "lldp_name")
FACTS_KEY = "facts"  # the stored JSON's key for facts that are not part of the detail


class PhoneState(enum.Enum):
    """Where a phone is in its provisioning (the `phones.state` column)."""

    SEEN = "seen"
    URL_SENT = "url-sent"
    FAILED = "failed"
    FETCHED_COMMON = "fetched-common"
    FETCHED_OWN = "fetched-own"
    REGISTRATION_FAILED = "registration-failed"
    REGISTERED = "registered"


class Step(enum.Enum):
    """What an event means for a phone's provisioning."""

    URL_SENT = "url-sent"  # told where its config is (DHCP option, SIP PnP NOTIFY)
    FETCH_FAILED = "fetch-failed"  # a file it asked for was missing or refused
    FETCHED_COMMON = "fetched-common"  # got its model's common file
    FETCHED_OWN = "fetched-own"  # got its own (per-MAC) file
    REGISTRATION_FAILED = "registration-failed"  # its SIP line failed to register
    REGISTERED = "registered"  # its SIP line registered


_S, _T = PhoneState, Step
# state -> {step: the state it moves to}. A step missing from a state's row
# leaves the phone (and the reason shown) as it is; a step that "moves" to the
# same state updates the reason (the file last fetched, the line).
TRANSITIONS: Mapping[PhoneState, Mapping[Step, PhoneState]] = {
    _S.SEEN: {
        _T.URL_SENT: _S.URL_SENT,
        _T.FETCH_FAILED: _S.FAILED,
        _T.FETCHED_COMMON: _S.FETCHED_COMMON,
        _T.FETCHED_OWN: _S.FETCHED_OWN,
        _T.REGISTRATION_FAILED: _S.REGISTRATION_FAILED,
        _T.REGISTERED: _S.REGISTERED,
    },
    _S.URL_SENT: {
        _T.URL_SENT: _S.URL_SENT,
        _T.FETCH_FAILED: _S.FAILED,
        _T.FETCHED_COMMON: _S.FETCHED_COMMON,
        _T.FETCHED_OWN: _S.FETCHED_OWN,
        _T.REGISTRATION_FAILED: _S.REGISTRATION_FAILED,
        _T.REGISTERED: _S.REGISTERED,
    },
    # A failure is shown until any success replaces it.
    _S.FAILED: {
        _T.URL_SENT: _S.URL_SENT,
        _T.FETCH_FAILED: _S.FAILED,
        _T.FETCHED_COMMON: _S.FETCHED_COMMON,
        _T.FETCHED_OWN: _S.FETCHED_OWN,
        _T.REGISTRATION_FAILED: _S.REGISTRATION_FAILED,
        _T.REGISTERED: _S.REGISTERED,
    },
    _S.FETCHED_COMMON: {
        _T.FETCH_FAILED: _S.FAILED,
        _T.FETCHED_COMMON: _S.FETCHED_COMMON,
        _T.FETCHED_OWN: _S.FETCHED_OWN,
        _T.REGISTRATION_FAILED: _S.REGISTRATION_FAILED,
        _T.REGISTERED: _S.REGISTERED,
    },
    _S.FETCHED_OWN: {
        _T.FETCH_FAILED: _S.FAILED,
        _T.FETCHED_OWN: _S.FETCHED_OWN,
        _T.REGISTRATION_FAILED: _S.REGISTRATION_FAILED,
        _T.REGISTERED: _S.REGISTERED,
    },
    _S.REGISTRATION_FAILED: {
        _T.FETCH_FAILED: _S.FAILED,
        _T.REGISTRATION_FAILED: _S.REGISTRATION_FAILED,
        _T.REGISTERED: _S.REGISTERED,
    },
    # Registered: only another registration report changes what is shown.
    _S.REGISTERED: {
        _T.REGISTERED: _S.REGISTERED,
    },
}


def next_state(current: PhoneState, step: Step) -> PhoneState | None:
    """The state `step` moves a phone in `current` to; None when it stays."""
    return TRANSITIONS[current].get(step)


_BY_VALUE = {state.value: state for state in PhoneState}


def state_named(value: str) -> PhoneState:
    """The state stored as `value` (an unknown value, from a newer netboot, reads as seen)."""
    return _BY_VALUE.get(value, PhoneState.SEEN)


# ---------------------------------------------------------------- fields

_SCALARS = frozenset((str, int, float, bool))


def fact(*, name: str | None = None, shown: bool = False) -> Any:
    """A field that is a phone fact (`name`, default the field's own name);
    `shown`: also part of the timeline's detail."""
    return field(default=None, metadata={"fact": name, "shown": shown})


def keyed(key: str, default: Any = None) -> Any:
    """A detail field stored under another JSON key (`from`, `class`)."""
    return field(default=default, metadata={"key": key})


def _column() -> Any:
    """A field stored as the row's `kind`, not in its JSON."""
    return field(default="", metadata={"column": True})


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, tuple):
        if all(type(v) in _SCALARS for v in value):
            return list(value)
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


@dataclass(frozen=True, kw_only=True)
class Event:
    """One thing that happened to one phone (by MAC)."""

    SERVICE: ClassVar[str] = ""
    KIND: ClassVar[str] = ""

    mac: str

    @property
    def service(self) -> str:
        return self.SERVICE

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def by_phone(self) -> bool:
        """False for an event the phone did not cause (its per-MAC file asked
        for by someone else): it never moves the phone's state, facts, last-seen
        time or last event."""
        return True

    @property
    def counts_file(self) -> bool:
        """A file the phone got (the row's `files` count)."""
        return False

    def step(self) -> tuple[Step, str] | None:
        """What this event means for the phone's provisioning, and why (shown as
        the state's reason); None when nothing."""
        return None

    def detail(self) -> dict[str, Any]:
        """The timeline's detail: JSON key -> value, None left out."""
        out: dict[str, Any] = {}
        for name, key in _plan(type(self)).shown:
            value = getattr(self, name)
            if value is not None:
                out[key] = _plain(value)
        return out

    def facts(self) -> dict[str, str]:
        """The phone facts this event carries (empty values left out)."""
        out: dict[str, str] = {}
        for name, key in _plan(type(self)).facts:
            value = getattr(self, name)
            if value is not None and value != "":
                out[key] = str(value)
        return out

    def stored(self) -> dict[str, Any]:
        """What the `events.detail` column holds: the detail, plus the facts
        that are not part of it under "facts" (so the event can be read back whole)."""
        plan = _plan(type(self))
        nested = plan.nested
        out: dict[str, Any] = {}
        for name, key in plan.shown:
            value = getattr(self, name)
            if value is not None:
                out[key] = _plain(value) if name in nested else value
        if plan.hidden:
            hidden = {}
            for name, key in plan.hidden:
                value = getattr(self, name)
                if value is not None:
                    hidden[key] = _plain(value) if name in nested else value
            if hidden:
                out[FACTS_KEY] = hidden
        return out

    def describe(self) -> str:
        """One line: `service kind key=value ...`, keys in order (as the timeline
        shows it: the store keeps the JSON's keys sorted)."""
        return describe(self.service, self.kind, json.loads(to_json(self.detail())))

    @classmethod
    def from_stored(cls, mac: str, kind: str, stored: Mapping[str, Any]) -> Event:
        """The event a stored row holds (TypeError/ValueError/KeyError when it does not fit)."""
        hints = _hints(cls)
        hidden = stored.get(FACTS_KEY)
        hidden = hidden if isinstance(hidden, Mapping) else {}
        kwargs: dict[str, Any] = {"mac": mac}
        for f in dataclasses.fields(cls):
            meta = f.metadata
            if f.name == "mac":
                continue
            if meta.get("column"):
                kwargs[f.name] = kind
                continue
            if "fact" in meta and not meta["shown"]:
                raw = hidden.get(meta["fact"] or f.name)
            else:
                raw = stored.get(meta.get("key", f.name))
            if raw is None:
                continue  # the field's default (a required one raises TypeError)
            kwargs[f.name] = _typed(hints[f.name], raw)
        return cls(**kwargs)


@dataclass(frozen=True)
class _Plan:
    """How an event class's fields are stored, worked out once per class (the
    registry encodes thousands of events a second): (field, JSON key) pairs."""

    shown: tuple[tuple[str, str], ...]  # the timeline's detail
    facts: tuple[tuple[str, str], ...]  # every phone fact
    hidden: tuple[tuple[str, str], ...]  # facts kept beside the detail ("facts")
    # Fields whose values may hold dataclasses (made plain for JSON); the
    # others (text, numbers, tuples of them) go to the JSON encoder as they are.
    nested: frozenset[str] = frozenset()


_PLANS: dict[type, _Plan] = {}  # one per event class: bounded


def _plan(cls: type) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        shown, facts, hidden = [], [], []
        hints = _hints(cls)
        nested = frozenset(
            f.name for f in dataclasses.fields(cls) if _holds_dataclass(hints[f.name])
        )
        for f in dataclasses.fields(cls):
            meta = f.metadata
            if "fact" in meta:
                facts.append((f.name, meta["fact"] or f.name))
                if not meta["shown"]:
                    hidden.append((f.name, meta["fact"] or f.name))
                    continue
            if f.name == "mac" or meta.get("column"):
                continue
            shown.append((f.name, meta.get("key", f.name)))
        plan = _PLANS[cls] = _Plan(tuple(shown), tuple(facts), tuple(hidden), nested)
    return plan


def _holds_dataclass(hint: Any) -> bool:
    """May a value of this type hint be or contain a dataclass instance?"""
    if dataclasses.is_dataclass(hint):
        return True
    if hint is Any:
        return True
    return any(_holds_dataclass(arg) for arg in typing.get_args(hint) if arg is not Ellipsis)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The class's field types, resolved once (a bounded table: one per event class)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


_ENCODER = json.JSONEncoder(default=str, sort_keys=True)
# The C encoder json.dumps builds on every call (with its circular-reference
# check, useless for an event's plain values), built once: the registry
# encodes every event, thousands a second under a DHCP load. Same output.
_MAKE_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)  # not in the stubs
_C_ENCODER: Any = (
    _MAKE_C_ENCODER(
        None, str, json.encoder.encode_basestring_ascii, None, ": ", ", ", True, False, True
    )
    if _MAKE_C_ENCODER is not None
    else None
)


def to_json(detail: Mapping[str, Any]) -> str:
    """The JSON the store keeps (keys sorted, at every depth)."""
    if _C_ENCODER is None:
        return _ENCODER.encode(detail)
    return "".join(_C_ENCODER(detail, 0))


def describe(service: str, kind: str, detail: Mapping[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in detail.items() if v not in (None, "", [], {})]
    return f"{service} {kind} " + " ".join(parts)


def _typed(hint: Any, raw: Any) -> Any:
    """A JSON value as the field's type: lists become tuples (of nested events' parts)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _typed(args[0], raw) if len(args) == 1 else raw
    if origin is tuple:
        if not isinstance(raw, list):
            raise TypeError(f"expected a list, got {raw!r}")
        item = args[0] if args else Any
        return tuple(_typed(item, x) for x in raw)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(raw, Mapping):
            raise TypeError(f"expected an object, got {raw!r}")
        return hint(**raw)
    if hint is float and isinstance(raw, int):
        return float(raw)
    if hint is int and not isinstance(raw, int):
        raise TypeError(f"expected an integer, got {raw!r}")
    return raw


# ---------------------------------------------------------------- DHCP


@dataclass(frozen=True, kw_only=True)
class _DhcpClient(Event):
    """What a DHCP client says about itself (option 60, its family, option 12)."""

    SERVICE: ClassVar[str] = "dhcp"
    vendor_class: str | None = fact(shown=True)
    vendor: str | None = fact()
    hostname: str | None = fact()


@dataclass(frozen=True, kw_only=True)
class LeaseOffered(_DhcpClient):
    """DHCPDISCOVER answered with an OFFER."""

    KIND: ClassVar[str] = "discover"
    requested_options: tuple[int, ...] = ()
    offered: str


@dataclass(frozen=True, kw_only=True)
class PoolExhausted(_DhcpClient):
    """DHCPDISCOVER left unanswered: no free address."""

    KIND: ClassVar[str] = "pool-exhausted"
    requested_options: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LeaseAcked(_DhcpClient):
    """DHCPREQUEST acknowledged (the lease is on disk), or an ACK recovered from
    the lease store at start (`recovered`)."""

    KIND: ClassVar[str] = "ack"
    ip: str = fact(shown=True)
    state: str | None = None  # selecting | renewing | init-reboot
    class_name: str | None = keyed("class")
    family: str | None = None
    url: str | None = fact(shown=True)  # the provisioning URL the phone was told
    url_options: tuple[int, ...] = ()
    options_sent: tuple[int, ...] = ()
    requested_options: tuple[int, ...] = ()
    recovered: str | None = None

    def step(self) -> tuple[Step, str] | None:
        if self.url:
            return Step.URL_SENT, f"DHCP option {list(self.url_options)}"
        return None


@dataclass(frozen=True, kw_only=True)
class LeaseInformed(_DhcpClient):
    """DHCPINFORM answered (options only, no lease)."""

    KIND: ClassVar[str] = "inform"
    ip: str | None = fact(shown=True)


@dataclass(frozen=True, kw_only=True)
class LeaseNak(Event):
    """DHCPNAK sent."""

    SERVICE: ClassVar[str] = "dhcp"
    KIND: ClassVar[str] = "nak"
    reason: str


@dataclass(frozen=True, kw_only=True)
class LeaseDeclined(Event):
    """DHCPDECLINE: the client found its address in use; quarantined."""

    SERVICE: ClassVar[str] = "dhcp"
    KIND: ClassVar[str] = "decline"
    ip: str
    quarantine: float


@dataclass(frozen=True, kw_only=True)
class LeaseReleased(Event):
    """DHCPRELEASE of a bound lease."""

    SERVICE: ClassVar[str] = "dhcp"
    KIND: ClassVar[str] = "release"
    ip: str


@dataclass(frozen=True, kw_only=True)
class AddressConflict(Event):
    """An ARP probe found the address in use by this MAC without a lease."""

    SERVICE: ClassVar[str] = "dhcp"
    KIND: ClassVar[str] = "conflict"
    ip: str = fact(shown=True)


@dataclass(frozen=True, kw_only=True)
class AckWithheld(Event):
    """An ACK not sent: its lease could not reach disk."""

    SERVICE: ClassVar[str] = "dhcp"
    KIND: ClassVar[str] = "ack-withheld"
    ip: str | None = None
    reason: str


# ---------------------------------------------------------------- SIP PnP


@dataclass(frozen=True, kw_only=True)
class PnpSubscribed(Event):
    """A SIP PnP SUBSCRIBE (ua-profile) from the phone."""

    SERVICE: ClassVar[str] = "pnp"
    KIND: ClassVar[str] = "subscribe"
    source: str = keyed("from", "")  # "address:port"
    profile_type: str | None = None
    user_agent: str | None = None
    vendor_from_oui: bool | None = None  # the vendor was guessed from the MAC's OUI
    refused: str | None = None
    ip: str | None = fact()
    vendor: str | None = fact()
    model: str | None = fact()
    firmware: str | None = fact()


@dataclass(frozen=True, kw_only=True)
class PnpNotified(Event):
    """A NOTIFY carrying the provisioning URL sent to the phone."""

    SERVICE: ClassVar[str] = "pnp"
    KIND: ClassVar[str] = "notify"
    url: str = fact(shown=True)
    to: str

    def step(self) -> tuple[Step, str] | None:
        return Step.URL_SENT, "SIP PnP NOTIFY"


@dataclass(frozen=True, kw_only=True)
class PnpAnswered(Event):
    """The phone answered the NOTIFY (a SIP status)."""

    SERVICE: ClassVar[str] = "pnp"
    KIND: ClassVar[str] = "notify-answered"
    status: int | None = None


@dataclass(frozen=True, kw_only=True)
class PnpTimedOut(Event):
    """A NOTIFY got no answer (RFC 3261 timer F)."""

    SERVICE: ClassVar[str] = "pnp"
    KIND: ClassVar[str] = "notify-timeout"
    url: str | None = None
    to: str


# ---------------------------------------------------------------- LLDP / CDP


@dataclass(frozen=True)
class MedPolicy:
    """One LLDP-MED network policy a phone advertised."""

    application: str | int
    vlan: int
    tagged: bool
    priority: int
    dscp: int


@dataclass(frozen=True, kw_only=True)
class LldpSeen(Event):
    """An LLDP(-MED) frame from the phone (new or changed)."""

    SERVICE: ClassVar[str] = "lldp"
    KIND: ClassVar[str] = "neighbor"
    interface: str
    protocol: str = "lldp"
    chassis_id: str | None = None
    port_id: str | None = None
    ttl: int | None = None
    system_name: str | None = fact(name="lldp_name", shown=True)
    system_description: str | None = None
    management_addresses: tuple[str, ...] = ()
    med_device_type: str | int | None = None
    policies: tuple[MedPolicy, ...] | None = None
    # LLDP-MED inventory
    hardware_revision: str | None = None
    firmware_revision: str | None = None
    software_revision: str | None = None
    serial_number: str | None = None
    manufacturer: str | None = fact(name="vendor", shown=True)
    model: str | None = fact(shown=True)
    asset_id: str | None = None
    ip: str | None = fact()  # its first IPv4 management address
    firmware: str | None = fact()  # the firmware revision, else the software one


@dataclass(frozen=True, kw_only=True)
class CdpSeen(Event):
    """A CDP frame from a phone (new or changed)."""

    SERVICE: ClassVar[str] = "lldp"
    KIND: ClassVar[str] = "neighbor"
    interface: str
    protocol: str = "cdp"
    device_id: str | None = fact(name="lldp_name", shown=True)
    port_id: str | None = None
    platform: str | None = fact(name="model", shown=True)
    software_version: str | None = fact(name="firmware", shown=True)
    addresses: tuple[str, ...] = ()
    voip_vlan_query: int | None = None
    ip: str | None = fact()
    vendor: str | None = fact()


@dataclass(frozen=True, kw_only=True)
class NeighborGone(Event):
    """The phone's LLDP/CDP entry aged out (or it sent a shutdown frame)."""

    SERVICE: ClassVar[str] = "lldp"
    KIND: ClassVar[str] = "neighbor-gone"
    interface: str
    protocol: str = "lldp"


# ---------------------------------------------------------------- files


@dataclass(frozen=True, kw_only=True)
class _Fetch(Event):
    """A file asked for over TFTP, HTTP or FTP (`protocol` is the service)."""

    KIND: ClassVar[str] = "fetch"
    file: str
    file_kind: str  # common | mac | input | other (provisioning.files)
    result: str
    protocol: str
    bytes: int = 0
    client: str | None = None
    user_agent: str | None = None
    reason: str | None = None

    @property
    def service(self) -> str:
        return self.protocol


@dataclass(frozen=True, kw_only=True)
class FileFetched(_Fetch):
    """A file served whole."""

    result: str = "ok"
    ip: str | None = fact()
    vendor: str | None = fact()
    model: str | None = fact()
    firmware: str | None = fact()

    @property
    def counts_file(self) -> bool:
        return True

    def step(self) -> tuple[Step, str] | None:
        if self.file_kind == "common":
            return Step.FETCHED_COMMON, self.file
        return Step.FETCHED_OWN, self.file


@dataclass(frozen=True, kw_only=True)
class FileNotServed(_Fetch):
    """A file the phone asked for and did not get: not found, refused,
    unreadable, the transfer aborted."""

    ip: str | None = fact()
    vendor: str | None = fact()
    model: str | None = fact()
    firmware: str | None = fact()

    def step(self) -> tuple[Step, str] | None:
        return Step.FETCH_FAILED, f"{self.protocol} {self.file}: {self.result}"


@dataclass(frozen=True, kw_only=True)
class FileForbidden(_Fetch):
    """The phone's per-MAC file asked for by an address that does not hold its
    lease (someone else): shown in its timeline, nothing else about it moves."""

    result: str = "forbidden"

    @property
    def by_phone(self) -> bool:
        return False


class FetchDetail(TypedDict):
    """The fields every fetch event has (but its result)."""

    file: str
    file_kind: str
    protocol: str
    bytes: int
    client: str | None
    user_agent: str | None
    reason: str | None


class FetchFacts(TypedDict, total=False):
    """What a fetch says about the phone that made it."""

    ip: str | None
    vendor: str | None
    model: str | None
    firmware: str | None


# ---------------------------------------------------------------- Action URL


@dataclass(frozen=True, kw_only=True)
class ActionReceived(Event):
    """An Action URL request (PLANET guide chapter 4): `event` is its slug
    (netboot.provisioning.events), stored as the row's kind; the fields are the
    `$variables` the phone filled in."""

    SERVICE: ClassVar[str] = "action"
    event: str = _column()
    client: str  # the address the request came from
    ip: str | None = None
    model: str | None = None
    firmware: str | None = None
    active_url: str | None = None
    active_user: str | None = None
    active_host: str | None = None
    local: str | None = None
    remote: str | None = None
    display_local: str | None = None
    display_remote: str | None = None
    call_id: str | None = None
    line: str | None = None  # registration events: the SIP line (active_user)
    # What the request says about the phone: its address (from $ip, else the
    # client's), model and firmware ($model/$firmware, else its User-Agent).
    phone_ip: str | None = fact(name="ip")
    vendor: str | None = fact()
    phone_model: str | None = fact(name="model")
    phone_firmware: str | None = fact(name="firmware")

    def __post_init__(self) -> None:
        if self.event not in BY_SLUG:
            raise ValueError(f"unknown Action URL event {self.event!r}")

    @property
    def kind(self) -> str:
        return self.event

    def step(self) -> tuple[Step, str] | None:
        why = str(self.line or self.active_user or "")
        if self.event == "registration-succeeded":
            return Step.REGISTERED, why
        if self.event == "registration-failed":
            return Step.REGISTRATION_FAILED, why
        return None


# ---------------------------------------------------------------- reading

_BY_KIND: dict[tuple[str, str], type[Event]] = {
    (cls.SERVICE, cls.KIND): cls
    for cls in (
        LeaseOffered,
        PoolExhausted,
        LeaseAcked,
        LeaseInformed,
        LeaseNak,
        LeaseDeclined,
        LeaseReleased,
        AddressConflict,
        AckWithheld,
        PnpSubscribed,
        PnpNotified,
        PnpAnswered,
        PnpTimedOut,
        NeighborGone,
    )
}
FETCH_SERVICES = ("tftp", "http", "ftp")


def event_class(service: str, kind: str, stored: Mapping[str, Any]) -> type[Event] | None:
    """The class of a stored (service, kind, detail) row, None when none fits."""
    if kind == "fetch" and service in FETCH_SERVICES:
        result = stored.get("result")
        return {"ok": FileFetched, "forbidden": FileForbidden}.get(str(result), FileNotServed)
    if service == "action":
        return ActionReceived if kind in BY_SLUG else None
    if (service, kind) == ("lldp", "neighbor"):
        return CdpSeen if stored.get("protocol") == "cdp" else LldpSeen
    return _BY_KIND.get((service, kind))


def decode(mac: str, service: str, kind: str, stored: Mapping[str, Any]) -> Event | None:
    """A stored row as its event; None for a row no event describes (or one
    that does not fit its class: a hand-edited or foreign database)."""
    cls = event_class(service, kind, stored)
    if cls is None:
        return None
    try:
        return cls.from_stored(mac, kind, stored)
    except (TypeError, ValueError, KeyError):
        return None
