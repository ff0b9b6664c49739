"""DHCP decisions (RFC 2131 §3 and §4.3), without I/O: time comes in as `now`.

DISCOVER -> OFFER of the MAC's reservation, its previous address, the address
it asks for, or the next free one (never-used addresses first, then the one
that expired longest ago), held for `offer_hold` seconds. A new address is
first returned as a `probe` so the transport can check it (ARP on our own
link, ICMP echo through a relay) without stalling anybody else; a host that
answers gets the address quarantined.

REQUEST is told apart by its fields (§4.3.2): SELECTING (server id + requested
address), INIT-REBOOT (requested address, no ciaddr), RENEWING/REBINDING
(ciaddr). An ACK carries a lease that must reach disk before the ACK leaves
(`Reply.durable`). NAK when authoritative and the address is wrong here.
DECLINE quarantines, RELEASE frees, INFORM gets the options without a lease.

Replies are routed per §4.1: giaddr -> the relay on port 67; NAK -> broadcast;
ciaddr -> unicast there; broadcast flag -> broadcast; else L2 unicast to chaddr.
Provisioning options go out whether or not the client asked for them, each in
the form the client's family reads (`netboot.vendors`: Yealink, Polycom and
Grandstream get the server directory, PLANET/Fanvil the file URL with `$mac`,
Cisco a TFTP server name in 66 ...), derived from the one site URL; a class
with its own `url` overrides that.

No reflection (issue 16): a request straight from the segment (no giaddr)
whose IP source is neither 0.0.0.0 nor inside the scope is not from a served
segment and is dropped; an INFORM (any request but REQUEST) is answered only
for a ciaddr inside the scope (the client's own subnet, or the relay's),
never through the default route. REQUEST is exempt: for a foreign address
its answer is a NAK broadcast on the segment, which a moved phone needs. Budgets: the offers are at most one per pool address; when the pool is
full the oldest offer held for another client is taken back. Hardening an
operator can turn on: `require_chaddr_match` (a direct request's chaddr must be
the frame's Ethernet source: one NIC cannot ask for a thousand MACs) and
`max_clients_per_source` (client MACs one source may get addresses for within
a lease time; the source is the Ethernet sender, or the relay and its RFC 3046
circuit id: a switch port).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any, TypedDict

from netboot import metrics, vendors
from netboot.config import DhcpClass, DhcpConfig, DhcpScope
from netboot.dhcp import codec
from netboot.dhcp.codec import (
    ACK,
    DECLINE,
    DISCOVER,
    INFORM,
    NAK,
    OFFER,
    RELEASE,
    REQUEST,
    DhcpMessage,
)
from netboot.dhcp.options import (
    decode_vendor_class,
    encode_suboptions,
    encode_value,
    url_option_value,
    vendor_class_text,
)
from netboot.events import (
    AckWithheld,
    AddressConflict,
    LeaseAcked,
    LeaseDeclined,
    LeaseInformed,
    LeaseNak,
    LeaseOffered,
    LeaseReleased,
    PoolExhausted,
)
from netboot.state.leases import Lease, LeaseStore
from netboot.vendors import VendorProfile
from netboot.wire import format_ip, format_mac

BROADCAST_IP = 0xFFFFFFFF
MAX_SOURCES = 4096  # sources tracked for max_clients_per_source (oldest forgotten)
# Memo budgets: client identities (option 60 and OUI) and reply templates seen.
MAX_IDENTITIES = 4096
MAX_TEMPLATES = 1024
# A reply whose options fit in this many bytes fits every client's buffer
# (576-byte IP datagram minimum, RFC 2131 §2: 576 - 28 - 236 - 4 cookie).
SMALLEST_OPTIONS_ROOM = 576 - 28 - codec.HEADER_LEN - 4
# Options that are never trimmed to fit a small client buffer.
ESSENTIAL = frozenset({53, 54, 51, 58, 59, 1, 3, 6})


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from on the wire (the transport knows, the message does not)."""

    mac: str  # Ethernet source
    ip: int  # IP source


@dataclass(frozen=True, slots=True)
class Route:
    kind: str  # "relay" | "unicast" | "broadcast" | "l2"
    ip: int
    port: int
    mac: bytes = codec.BROADCAST_MAC


@dataclass(frozen=True, slots=True)
class Reply:
    message: DhcpMessage
    route: Route
    interface: str
    server_ip: int
    durable: bool = False
    # The options already encoded (a reply template's, see `DhcpEngine._reply`):
    # the transport then packs only the fixed header in front of them.
    options_wire: bytes | None = None


# Every event the DHCP service records.
DhcpEvent = (
    LeaseOffered
    | PoolExhausted
    | LeaseAcked
    | LeaseInformed
    | LeaseNak
    | LeaseDeclined
    | LeaseReleased
    | AddressConflict
    | AckWithheld
)


class ClientFacts(TypedDict):
    vendor_class: str | None
    vendor: str | None
    hostname: str | None


@dataclass(frozen=True)
class Decision:
    reply: Reply | None = None
    probe: int | None = None  # ARP for this address first, then ask again
    event: DhcpEvent | None = None  # what to record in the registry
    note: str | None = None  # why nothing was sent (logged at debug)
    limited: str | None = None  # the budget or guard that dropped the request (a metric label)


@dataclass
class _Offer:
    mac: str
    expires: float
    made: float = 0.0


class ScopeState:
    """One served subnet: its addresses and which of them are handed out."""

    def __init__(self, scope: DhcpScope, server_ip: int) -> None:
        self.scope = scope
        self.server_ip = server_ip
        self.start = int(scope.pool_start)
        self.end = int(scope.pool_end)
        self.network = int(scope.subnet.network_address)
        self.mask = int(scope.subnet.netmask)
        self.broadcast = int(scope.subnet.broadcast_address)
        self.cursor = self.start
        self.unused_left = True
        self.excluded = {server_ip} | ({int(scope.router)} if scope.router else set())

    def contains(self, ip: int) -> bool:
        return ip & self.mask == self.network and ip not in (self.network, self.broadcast)

    def in_pool(self, ip: int) -> bool:
        return self.start <= ip <= self.end


class DhcpEngine:
    def __init__(
        self,
        config: DhcpConfig,
        url: str,
        leases: LeaseStore,
        server_ips: dict[str, int],
    ) -> None:
        self.config = config
        self.url = url
        self.leases = leases
        self.scopes = [ScopeState(s, server_ips[s.interface]) for s in config.scopes]
        self.by_interface = {s.scope.interface: s for s in self.scopes}
        self.reserved_ip = {int(h.ip): h.mac for h in config.hosts}
        self.reserved_mac = {h.mac: int(h.ip) for h in config.hosts}
        self.offers: dict[int, _Offer] = {}
        self.offer_by_mac: dict[tuple[str, int], int] = {}  # (mac, scope network) -> ip
        self.probed: dict[int, float] = {}  # ip -> when an ARP probe found it free
        # source -> {client MAC: last seen}, for max_clients_per_source
        self.clients_of: dict[str, dict[str, float]] = {}
        self.reclaimed = 0  # offers taken back from a full pool (a metric)
        # (option 60, OUI) -> (family, facts): the same few phone models ask
        # again and again; bounded, forgotten all at once when full.
        self._identities: dict[
            tuple[bytes, bytes, bytes], tuple[VendorProfile | None, dict[str, Any]]
        ] = {}
        self._identity_of: DhcpMessage | None = None  # the last message asked about
        self._identity_last: tuple[VendorProfile | None, dict[str, Any]] = (None, {})
        # Encoded options of a reply that depends only on its scope, type,
        # class and family (no relay agent option to echo): built once.
        self._templates: dict[
            tuple[int, int, bool, str | None, str | None], tuple[dict[int, bytes], bytes]
        ] = {}

    def reconfigure(self, config: DhcpConfig, url: str) -> None:
        """A reload with the same interfaces and server addresses: classes,
        options, pools and reservations change; the leases, the offers in
        flight and the probe results stay, and so does each scope's place in
        its pool when the pool is the same."""
        before = {state.scope.interface: state for state in self.scopes}
        self.config = config
        self.url = url
        self.scopes = []
        for scope in config.scopes:
            prev = before[scope.interface]
            state = ScopeState(scope, prev.server_ip)
            if (prev.start, prev.end) == (state.start, state.end):
                state.cursor, state.unused_left = prev.cursor, prev.unused_left
            self.scopes.append(state)
        self.by_interface = {s.scope.interface: s for s in self.scopes}
        self.reserved_ip = {int(h.ip): h.mac for h in config.hosts}
        self.reserved_mac = {h.mac: int(h.ip) for h in config.hosts}
        self._templates.clear()

    # ------------------------------------------------------------ lookup

    def scope_for(self, msg: DhcpMessage, interface: str) -> ScopeState | None:
        if msg.giaddr:
            for state in self.scopes:
                if state.contains(msg.giaddr):
                    return state
            return None
        return self.by_interface.get(interface)

    def match_class(self, msg: DhcpMessage) -> DhcpClass | None:
        """First class whose vendor (substring of option 60, any case) or MAC
        prefix matches."""
        raw = msg.options.get(60)
        vendor = vendor_class_text(raw).lower() if raw else ""
        mac = msg.mac_bytes
        for cls in self.config.classes:
            if cls.vendor is not None and vendor and cls.vendor.lower() in vendor:
                return cls
            if cls.mac_prefix is not None and mac.startswith(cls.mac_prefix):
                return cls
        return None

    def profile_for(self, msg: DhcpMessage) -> VendorProfile | None:
        """The client's phone family: option 60 (text or RFC 3925), else OUI."""
        return self._identity(msg)[0]

    def _identity(self, msg: DhcpMessage) -> tuple[VendorProfile | None, dict[str, Any]]:
        """(family, facts without the hostname) of a client, memoised by its
        option 60 and OUI (MAX_IDENTITIES of them)."""
        if self._identity_of is msg:  # asked again for the message in hand
            return self._identity_last
        raw = msg.options.get(60, b"")
        key = (raw, msg.chaddr[:3], bytes((msg.hlen,)))
        known = self._identities.get(key)
        if known is not None:
            self._identity_of, self._identity_last = msg, known
            return known
        decoded = decode_vendor_class(raw) if raw else None
        profile = vendors.identify(
            decoded.text if decoded else "",
            decoded.enterprise if decoded else None,
            msg.mac_bytes,
        )
        facts: dict[str, Any] = {}
        if raw:
            facts["vendor_class"] = vendor_class_text(raw)
        if profile is not None:  # the family: `netboot phones` names it
            facts["vendor"] = profile.label
        if len(self._identities) >= MAX_IDENTITIES:
            self._identities.clear()
        self._identities[key] = self._identity_last = (profile, facts)
        self._identity_of = msg
        return profile, facts

    def url_for(self, profile: VendorProfile | None, cls: DhcpClass | None, code: int) -> str:
        """The provisioning URL option `code` carries for a client of family
        `profile`: a class's own url as written, else the site URL in the
        family's form."""
        if cls is not None and cls.url:
            return cls.url
        if profile is None or not self.url:
            return self.url
        return profile.url_for_option(code, self.url)

    def _free(self, state: ScopeState, ip: int, mac: str, now: float) -> bool:
        """May `ip` be given to `mac` at `now`?"""
        if not state.contains(ip) or ip in state.excluded:
            return False
        owner = self.reserved_ip.get(ip)
        if owner is not None and owner != mac:
            return False
        lease = self.leases.get(ip)
        if lease is not None and lease.mac != mac and lease.active(now):
            return False
        if (
            lease is not None
            and lease.mac == mac
            and lease.state == "declined"
            and lease.expires > now
        ):
            return False
        offer = self.offers.get(ip)
        return offer is None or offer.mac == mac or offer.expires <= now

    def _pick_new(self, state: ScopeState, mac: str, now: float) -> int | None:
        if state.unused_left:
            size = state.end - state.start + 1
            ip = state.cursor
            for _ in range(size):
                if ip not in self.leases.by_ip and self._free(state, ip, mac, now):
                    state.cursor = ip + 1 if ip < state.end else state.start
                    return ip
                ip = ip + 1 if ip < state.end else state.start
            state.unused_left = False
        best: Lease | None = None
        for ip in range(state.start, state.end + 1):
            lease = self.leases.get(ip)
            if lease is None:
                if self._free(state, ip, mac, now):
                    return ip
                continue
            if (best is None or lease.expires < best.expires) and self._free(state, ip, mac, now):
                best = lease
        if best is not None:
            return best.ip
        # The pool is dry: an offer nobody took goes back first (a DISCOVER
        # flood), then the address quarantined longest ago.
        taken = self._reclaim_offer(state, mac, now)
        if taken is not None:
            return taken
        return self._reclaim(state, mac, now)

    def _reclaim(self, state: ScopeState, mac: str, now: float) -> int | None:
        """The pool is dry: give back the address quarantined longest ago (a
        DECLINE, or a host that answered our ARP probe), so one host that
        answers every probe cannot keep new phones out once it is gone. It is
        probed again before it is offered (ping_check): a host still there
        puts it back in quarantine and the next oldest is tried."""
        oldest: Lease | None = None
        for ip in range(state.start, state.end + 1):
            lease = self.leases.get(ip)
            if (
                lease is not None
                and lease.state == "declined"
                and lease.expires > now
                and ip not in state.excluded
                and self.reserved_ip.get(ip, mac) == mac
                and (oldest is None or lease.updated < oldest.updated)
            ):
                offer = self.offers.get(ip)
                if offer is None or offer.mac == mac or offer.expires <= now:
                    oldest = lease
        if oldest is None:
            return None
        self.leases.stage(replace(oldest, state="expired", expires=now, updated=now))
        self.probed.pop(oldest.ip, None)
        metrics.DHCP_QUARANTINE_RECLAIMED.inc()
        return oldest.ip

    def _reclaim_offer(self, state: ScopeState, mac: str, now: float) -> int | None:
        """The pool is full, maybe of offers nobody took (a DISCOVER flood from
        random MACs): the offer made longest ago to another client goes."""
        oldest: int | None = None
        for ip, offer in self.offers.items():
            if offer.mac == mac or not state.in_pool(ip):
                continue
            lease = self.leases.get(ip)
            if lease is not None and lease.active(now):
                continue
            if ip in state.excluded or (self.reserved_ip.get(ip) not in (None, mac)):
                continue
            if oldest is None or offer.made < self.offers[oldest].made:
                oldest = ip
        if oldest is None:
            return None
        offer = self.offers.pop(oldest)
        self.offer_by_mac.pop((offer.mac, state.network), None)
        self.reclaimed += 1
        return oldest

    def _previous(self, state: ScopeState, mac: str, now: float) -> int | None:
        best: Lease | None = None
        for lease in self.leases.for_mac(mac):
            fits = state.in_pool(lease.ip) and self._free(state, lease.ip, mac, now)
            if fits and (best is None or lease.updated > best.updated):
                best = lease
        return best.ip if best is not None else None

    def choose_address(self, state: ScopeState, msg: DhcpMessage, now: float) -> int | None:
        mac = msg.mac
        reserved = self.reserved_mac.get(mac)
        if reserved is not None and state.contains(reserved):
            return reserved
        held = self.offer_by_mac.get((mac, state.network))
        if held is not None and self._free(state, held, mac, now):
            return held
        previous = self._previous(state, mac, now)
        if previous is not None:
            return previous
        requested = msg.requested_ip
        if (
            requested is not None
            and state.in_pool(requested)
            and self._free(state, requested, mac, now)
        ):
            return requested
        return self._pick_new(state, mac, now)

    # ------------------------------------------------------------ handling

    def handle(
        self, msg: DhcpMessage, interface: str, now: float, origin: Origin | None = None
    ) -> Decision:
        if msg.op != codec.BOOTREQUEST or msg.htype != 1 or msg.hlen != 6:
            return Decision(note="not an Ethernet BOOTREQUEST")
        kind = msg.msg_type
        state = self.scope_for(msg, interface)
        if state is None:
            return Decision(note=f"no scope for {interface} giaddr={IPv4Address(msg.giaddr)}")
        guard = self._guard(state, msg, kind, origin, now)
        if guard is not None:
            return guard
        if kind == DISCOVER:
            return self._discover(state, msg, interface, now)
        if kind == REQUEST:
            return self._request(state, msg, interface, now)
        if kind == DECLINE:
            return self._decline(state, msg, now)
        if kind == RELEASE:
            return self._release(state, msg, now)
        if kind == INFORM:
            return self._inform(state, msg, interface, now)
        return Decision(note=f"ignored message type {kind}")

    def _guard(
        self,
        state: ScopeState,
        msg: DhcpMessage,
        kind: int | None,
        origin: Origin | None,
        now: float,
    ) -> Decision | None:
        """Drops what must not be answered (a Decision), else None."""
        # A REQUEST is exempt from both: its answer for a foreign address is a
        # NAK broadcast on the segment (a phone moved from another network
        # learns at once), and an ACK goes only to an address of the scope.
        if msg.ciaddr and kind != REQUEST and not state.contains(msg.ciaddr):
            kind_name = "INFORM" if kind == INFORM else "request"
            why = f"{kind_name} for {_ip(msg.ciaddr)}, outside {state.scope.subnet}"
            return Decision(note=why, limited="inform-off-scope" if kind == INFORM else "off-scope")
        if origin is None:
            return None
        direct = not msg.giaddr
        if direct and kind != REQUEST and origin.ip and not state.contains(origin.ip):
            why = f"from {_ip(origin.ip)}, not on the served segment {state.scope.subnet}"
            return Decision(note=why, limited="off-segment")
        if direct and self.config.require_chaddr_match and origin.mac != msg.mac:
            why = f"chaddr {msg.mac} sent by {origin.mac}"
            return Decision(note=why, limited="chaddr-mismatch")
        cap = self.config.max_clients_per_source
        if cap and kind in (DISCOVER, REQUEST):
            source = self._source_key(msg, origin)
            clients = self.clients_of.pop(source, None) or {}
            self.clients_of[source] = clients  # most recently heard last
            horizon = now - max(s.scope.lease_time for s in self.scopes)
            for mac in [m for m, seen in clients.items() if seen < horizon]:
                del clients[mac]
            if msg.mac not in clients and len(clients) >= cap:
                why = f"{source} already has {len(clients)} clients"
                return Decision(note=why, limited="clients-per-source")
            clients[msg.mac] = now
            while len(self.clients_of) > MAX_SOURCES:
                del self.clients_of[next(iter(self.clients_of))]
        return None

    @staticmethod
    def _source_key(msg: DhcpMessage, origin: Origin) -> str:
        if not msg.giaddr:
            return f"ethernet {origin.mac}"
        circuit = b""
        agent = msg.options.get(82, b"")
        i = 0
        while i + 2 <= len(agent):  # RFC 3046 §2.0: sub-option 1 is the circuit id
            code, size = agent[i], agent[i + 1]
            if code == 1:
                circuit = agent[i + 2 : i + 2 + size]
                break
            i += 2 + size
        return f"relay {_ip(msg.giaddr)} circuit {circuit.hex() or '-'}"

    def _discover(
        self, state: ScopeState, msg: DhcpMessage, interface: str, now: float
    ) -> Decision:
        ip = self.choose_address(state, msg, now)
        client = self._client_facts(msg)
        asked = tuple(msg.param_request_list)
        if ip is None:
            return Decision(
                event=PoolExhausted(mac=msg.mac, requested_options=asked, **client),
                note="pool exhausted",
            )
        mac = msg.mac
        if self.config.ping_check and self._needs_probe(state, msg, ip, now):
            self._hold(state, mac, ip, now)
            return Decision(probe=ip)
        self._hold(state, mac, ip, now)
        reply = self._reply(state, msg, OFFER, ip, interface, self.match_class(msg))
        offered = LeaseOffered(mac=mac, requested_options=asked, offered=_ip(ip), **client)
        return Decision(reply=reply, event=offered)

    def _needs_probe(self, state: ScopeState, msg: DhcpMessage, ip: int, now: float) -> bool:
        if self.reserved_mac.get(msg.mac) == ip:
            return False
        lease = self.leases.get(ip)
        if (
            lease is not None
            and lease.mac == msg.mac
            and lease.state == "bound"
            and lease.expires > now
        ):
            return False
        checked = self.probed.get(ip)
        return checked is None or now - checked > 60

    def probe_result(self, ip: int, in_use_by: bytes | None, now: float) -> None:
        """The transport's ARP probe for `ip` finished: free, or answered by `in_use_by`."""
        if in_use_by is None:
            self.probed[ip] = now
            return
        self.probed.pop(ip, None)
        offer = self.offers.pop(ip, None)
        if offer is not None:
            self.offer_by_mac.pop((offer.mac, self._network_of(ip)), None)
        self.leases.stage(
            Lease(
                ip, format_mac(in_use_by), "declined", now + self.config.decline_hold, updated=now
            )
        )

    def _network_of(self, ip: int) -> int:
        for state in self.scopes:
            if state.contains(ip):
                return state.network
        return 0

    def _hold(self, state: ScopeState, mac: str, ip: int, now: float) -> None:
        old = self.offer_by_mac.get((mac, state.network))
        if old is not None and old != ip:
            self.offers.pop(old, None)
        taken = self.offers.get(ip)
        if taken is not None and taken.mac != mac:
            self.offer_by_mac.pop((taken.mac, state.network), None)
        self.offers[ip] = _Offer(mac, now + self.config.offer_hold, now)
        self.offer_by_mac[(mac, state.network)] = ip

    def _release_hold(self, state: ScopeState, mac: str) -> None:
        ip = self.offer_by_mac.pop((mac, state.network), None)
        if ip is not None:
            self.offers.pop(ip, None)

    def _request(self, state: ScopeState, msg: DhcpMessage, interface: str, now: float) -> Decision:
        mac = msg.mac
        server_id = msg.server_id
        if server_id is not None:
            # SELECTING: the client answers one server's OFFER.
            if server_id != state.server_ip:
                self._release_hold(state, mac)
                return Decision(note="client chose another server")
            ip = msg.requested_ip or msg.ciaddr
            held = self.offer_by_mac.get((mac, state.network))
            if ip and (held == ip or self._acceptable(state, mac, ip, now)):
                return self._ack(state, msg, ip, interface, now, "selecting")
            return self._nak(state, msg, interface, f"{_ip(ip)} was not offered to {mac}")
        if msg.ciaddr:
            ip = msg.ciaddr  # RENEWING (unicast) or REBINDING (broadcast)
            how = "renewing"
        elif msg.requested_ip is not None:
            ip = msg.requested_ip  # INIT-REBOOT
            how = "init-reboot"
        else:
            return Decision(note="REQUEST without server id, requested address or ciaddr")
        if not state.contains(ip):
            if self.config.authoritative:
                return self._nak(state, msg, interface, f"{_ip(ip)} is not on this network")
            return Decision(note="not our network, not authoritative")
        if self._acceptable(state, mac, ip, now):
            return self._ack(state, msg, ip, interface, now, how)
        if self.config.authoritative:
            return self._nak(state, msg, interface, f"{_ip(ip)} is not available to {mac}")
        return Decision(note="address not available, not authoritative")

    def _acceptable(self, state: ScopeState, mac: str, ip: int, now: float) -> bool:
        reserved = self.reserved_mac.get(mac)
        if reserved is not None and state.contains(reserved):
            return ip == reserved
        lease = self.leases.get(ip)
        if lease is not None and lease.mac == mac and lease.active(now) and lease.state == "bound":
            return True
        return state.in_pool(ip) and self._free(state, ip, mac, now)

    def _ack(
        self, state: ScopeState, msg: DhcpMessage, ip: int, interface: str, now: float, how: str
    ) -> Decision:
        mac = msg.mac
        lease_time = state.scope.lease_time
        hostname = msg.options.get(12, b"").decode("ascii", "replace")[:63]
        client_id = msg.options.get(61, b"").hex()
        self.leases.stage(Lease(ip, mac, "bound", now + lease_time, hostname, client_id, now))
        self._release_hold(state, mac)
        cls = self.match_class(msg)
        reply = self._reply(state, msg, ACK, ip, interface, cls, durable=True)
        url_options = self._url_options(cls)
        profile = self.profile_for(msg)
        # What the phone was told: the first option that carries text (150 is addresses).
        shown = next((c for c in url_options if c != 150), url_options[0] if url_options else 0)
        url = self.url_for(profile, cls, shown) if url_options else ""
        acked = LeaseAcked(
            mac=mac,
            ip=_ip(ip),
            state=how,
            class_name=cls.name if cls else None,
            family=profile.name if profile else None,
            url=url,
            url_options=url_options if url else (),
            options_sent=tuple(sorted(reply.message.options)),
            requested_options=tuple(msg.param_request_list),
            **self._client_facts(msg),
        )
        return Decision(reply=reply, event=acked)

    def _nak(self, state: ScopeState, msg: DhcpMessage, interface: str, why: str) -> Decision:
        options = {
            53: bytes((NAK,)),
            54: struct.pack("!I", state.server_ip),
            56: why.encode()[:255],
        }
        if 82 in msg.options:
            options[82] = msg.options[82]
        message = DhcpMessage(
            op=codec.BOOTREPLY,
            xid=msg.xid,
            chaddr=msg.chaddr,
            htype=msg.htype,
            hlen=msg.hlen,
            flags=msg.flags | (codec.BROADCAST_FLAG if msg.giaddr else 0),
            giaddr=msg.giaddr,
            options=options,
        )
        if msg.giaddr:
            route = Route("relay", msg.giaddr, 67)
        else:
            route = Route("broadcast", BROADCAST_IP, 68)
        reply = Reply(message, route, interface, state.server_ip)
        return Decision(reply=reply, event=LeaseNak(mac=msg.mac, reason=why), note=why)

    def _decline(self, state: ScopeState, msg: DhcpMessage, now: float) -> Decision:
        ip = msg.requested_ip
        if ip is None or (msg.server_id is not None and msg.server_id != state.server_ip):
            return Decision(note="DECLINE not for us")
        lease = self.leases.get(ip)
        if lease is None or lease.mac != msg.mac:
            return Decision(note="DECLINE for an address this client does not hold")
        self.leases.stage(
            Lease(ip, msg.mac, "declined", now + self.config.decline_hold, updated=now)
        )
        return Decision(
            event=LeaseDeclined(mac=msg.mac, ip=_ip(ip), quarantine=self.config.decline_hold)
        )

    def _release(self, state: ScopeState, msg: DhcpMessage, now: float) -> Decision:
        ip = msg.ciaddr
        lease = self.leases.get(ip)
        if lease is None or lease.mac != msg.mac or lease.state != "bound":
            return Decision(note="RELEASE for an address this client does not hold")
        self.leases.stage(Lease(ip, msg.mac, "released", now, lease.hostname, lease.client_id, now))
        return Decision(event=LeaseReleased(mac=msg.mac, ip=_ip(ip)))

    def _inform(self, state: ScopeState, msg: DhcpMessage, interface: str, now: float) -> Decision:
        reply = self._reply(state, msg, ACK, 0, interface, self.match_class(msg))
        ip = _ip(msg.ciaddr) if msg.ciaddr else None
        informed = LeaseInformed(mac=msg.mac, ip=ip, **self._client_facts(msg))
        return Decision(reply=reply, event=informed)

    def expire(self, now: float) -> None:
        """Forget lapsed offer holds (called now and then by the transport)."""
        for ip, offer in list(self.offers.items()):
            if offer.expires <= now:
                del self.offers[ip]
                key = (offer.mac, self._network_of(ip))
                if self.offer_by_mac.get(key) == ip:
                    del self.offer_by_mac[key]

    # ------------------------------------------------------------ replies

    def _client_facts(self, msg: DhcpMessage) -> ClientFacts:
        """What the client says about itself: option 60, its family (`netboot
        phones` names it; both memoised by `_identity`), option 12."""
        facts = self._identity(msg)[1]
        host = msg.options.get(12)
        return {
            "vendor_class": facts.get("vendor_class"),
            "vendor": facts.get("vendor"),
            "hostname": host.decode("ascii", "replace")[:63] if host else None,
        }

    def _url_options(self, cls: DhcpClass | None) -> tuple[int, ...]:
        if cls is not None and cls.url_options is not None:
            return cls.url_options
        return self.config.url_options

    def reply_options(
        self, state: ScopeState, msg: DhcpMessage, kind: int, lease: bool, cls: DhcpClass | None
    ) -> dict[int, bytes]:
        scope = state.scope
        opts: dict[int, bytes] = {53: bytes((kind,)), 54: struct.pack("!I", state.server_ip)}
        if lease:
            t = scope.lease_time
            opts[51] = struct.pack("!I", t)
            opts[58] = struct.pack("!I", t // 2)
            opts[59] = struct.pack("!I", t * 7 // 8)
        opts[1] = struct.pack("!I", state.mask)
        if scope.router is not None:
            opts[3] = scope.router.packed
        if scope.dns:
            opts[6] = b"".join(a.packed for a in scope.dns)
        if scope.domain:
            opts[15] = scope.domain.encode()
        opts[28] = struct.pack("!I", state.broadcast)
        if self.config.ntp:
            opts[42] = b"".join(a.packed for a in self.config.ntp)
        url = (cls.url if cls and cls.url else None) or self.url
        if url:
            server = IPv4Address(state.server_ip)
            profile = None if cls is not None and cls.url else self.profile_for(msg)
            for code in self._url_options(cls):
                if code == 43 and cls is not None and cls.vendor_suboptions:
                    continue
                # Option 150 is addresses: from the URL's host whatever the form.
                form = url if code == 150 else self.url_for(profile, cls, code)
                opts[code] = url_option_value(code, form, server)
        if cls is not None:
            if cls.vendor_suboptions:
                opts[43] = encode_suboptions(cls.vendor_suboptions)
            for code, value in cls.options.items():
                opts[code] = encode_value(code, value)
        if 82 in msg.options:
            opts[82] = msg.options[82]  # RFC 3046 §2.2: echo relay agent information
        return opts

    def _fit(self, msg: DhcpMessage, opts: dict[int, bytes], keep: set[int]) -> dict[int, bytes]:
        """Trim options the client did not ask for until the reply fits its buffer
        (option 57; 576 bytes of IP datagram when it gives none)."""
        limit = max(576, msg.max_message_size or 576) - 28
        if len(opts) < 12 and sum(len(v) for v in opts.values()) < limit - 300:
            return opts
        size = (
            codec.HEADER_LEN + 4 + 1 + sum(2 + len(v) + 2 * (len(v) // 256) for v in opts.values())
        )
        if size <= limit:
            return opts
        asked = set(msg.param_request_list)
        for code in reversed(list(opts)):
            if size <= limit:
                break
            if code in ESSENTIAL or code in keep or code in asked or code == 82:
                continue
            size -= 2 + len(opts[code])
            del opts[code]
        return opts

    def _reply(
        self,
        state: ScopeState,
        msg: DhcpMessage,
        kind: int,
        ip: int,
        interface: str,
        cls: DhcpClass | None,
        durable: bool = False,
    ) -> Reply:
        informing = msg.msg_type == INFORM
        wire: bytes | None = None
        if 82 in msg.options:  # echoed per request: no template
            opts = self.reply_options(state, msg, kind, not informing, cls)
            opts = self._fit(msg, opts, set(self._url_options(cls)))
        else:
            opts, wire = self._template(state, msg, kind, not informing, cls)
        message = DhcpMessage(
            op=codec.BOOTREPLY,
            xid=msg.xid,
            chaddr=msg.chaddr,
            htype=msg.htype,
            hlen=msg.hlen,
            flags=msg.flags,
            ciaddr=msg.ciaddr if (informing or kind == ACK) else 0,
            yiaddr=ip,
            siaddr=state.server_ip,
            giaddr=msg.giaddr,
            options=opts,
        )
        return Reply(message, self.route(msg, ip), interface, state.server_ip, durable, wire)

    def _template(
        self, state: ScopeState, msg: DhcpMessage, kind: int, lease: bool, cls: DhcpClass | None
    ) -> tuple[dict[int, bytes], bytes | None]:
        """The reply's options and their encoding, built once per scope, type,
        class and family. A reply too big for the smallest client buffer is
        fitted to each client (`_fit`) and not kept."""
        profile = None if cls is not None and cls.url else self.profile_for(msg)
        key = (
            id(state),
            kind,
            lease,
            cls.name if cls is not None else None,
            profile.name if profile is not None else None,
        )
        known = self._templates.get(key)
        if known is not None:
            return known
        opts = self.reply_options(state, msg, kind, lease, cls)
        wire = codec.encode_options(opts)
        if len(wire) > SMALLEST_OPTIONS_ROOM:
            return self._fit(msg, opts, set(self._url_options(cls))), None
        if len(self._templates) >= MAX_TEMPLATES:
            self._templates.clear()
        self._templates[key] = (opts, wire)
        return opts, wire

    @staticmethod
    def route(msg: DhcpMessage, yiaddr: int) -> Route:
        """RFC 2131 §4.1 reply routing (NAKs are routed in `_nak`)."""
        if msg.giaddr:
            return Route("relay", msg.giaddr, 67)
        if msg.ciaddr:
            return Route("unicast", msg.ciaddr, 68, msg.mac_bytes)
        if msg.broadcast or not yiaddr:
            return Route("broadcast", BROADCAST_IP, 68)
        return Route("l2", yiaddr, 68, msg.mac_bytes)


def _ip(value: int) -> str:
    return format_ip(value)
