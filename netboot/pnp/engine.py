"""SIP Plug-and-Play decisions: which SUBSCRIBE gets which answer, and when.

Flow (RFC 6080 §4 as the phones implement it; RFC 3261 for the transactions):

1. A phone multicasts `SUBSCRIBE` with `Event: ua-profile` to 224.0.1.75.
   Sources outside `allowed_sources`, sources over their rate, and (policy
   "known") MACs not in the inventory get nothing: the responder must never
   become a reflector. Policy "discover" records the phone and stays silent.
2. `200 OK` goes back per RFC 3261 §18.2.2 and RFC 3581 §4: to the source
   address and port when the top Via has `rport` (filled in), else to the
   source address and the Via's sent-by port (5060 by default), with
   `received=` added when the source differs from sent-by. All Vias, From,
   Call-ID and CSeq are echoed, To gets our tag, `Expires: 0`.
   The 200 is kept for 32 s (Timer J, §17.2.2) per (Call-ID, From tag,
   CSeq): a retransmitted SUBSCRIBE gets the same bytes, and no second NOTIFY.
3. `NOTIFY` (RFC 6665 §4.2.2, a request inside the dialog the 200 made):
   new Via with a `z9hG4bK` branch (§8.1.1.7), From = their To plus our tag,
   To = their From, same Call-ID, `CSeq: 1 NOTIFY`, the Event echoed,
   `Subscription-State: terminated;reason=timeout`, `Content-Type:
   application/url`, the provisioning URL as the body. It goes to the
   Contact (when that is an allowed IPv4 address, else to where the 200 went).
4. The NOTIFY is a non-INVITE client transaction over UDP (§17.1.2.2):
   Timer E retransmits at T1=0.5 s doubling up to T2=4 s (T2 at once after a
   provisional response); Timer F gives up after 64*T1 = 32 s; any final
   response ends it. One NOTIFY is in flight per destination: a newer one
   replaces it.

A hostile segment (issue 16). The source address of a UDP SUBSCRIBE proves
nothing, so the responder must not become a reflector or run out of room:

- Only sources that could be phones are answered: inside `allowed_sources`
  and on the link the SUBSCRIBE came in on (`on_link`, the interface's own
  subnets).
- Timer E retransmits a NOTIFY only to a confirmed destination: the holder
  of a DHCP lease from netboot at that address, for the MAC the SUBSCRIBE
  names (the transport looks the lease up), or an address that has answered
  one of our NOTIFYs before. Anyone else gets the 200 and
  one NOTIFY, which is what the protocol needs; a phone that misses it
  subscribes again. An ICMP unreachable for a destination ends its NOTIFY.
  Spoofing a SUBSCRIBE thus buys its victim two datagrams, not twelve.
- The per-source rate has a second bucket for the lease holder of the
  address (a SUBSCRIBE naming the MAC that holds the lease), so SUBSCRIBEs
  forged in a phone's address do not lock that phone out.
- Every table (answers for Timer J, NOTIFYs in flight, rate buckets,
  confirmed addresses) holds at most `max_tracked` entries: at the cap the
  oldest entry goes (it used to refuse every new phone). `take_limited`
  tells the transport what was evicted, for the metric.

No I/O here: the transport passes `now` and sends what comes back.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING

from netboot import vendors
from netboot.config import PnpRule
from netboot.events import PnpAnswered, PnpNotified, PnpSubscribed, PnpTimedOut
from netboot.pnp import codec
from netboot.pnp.codec import SipMessage, UaProfile
from netboot.ratelimit import TokenBuckets
from netboot.wire import DecodeError, parse_mac

if TYPE_CHECKING:
    from netboot.config import Config

T1 = 0.5
T2 = 4.0
TIMER_F = 64 * T1
TIMER_J = 64 * T1
MAX_TRACKED = 4096  # bounded state per table, whatever the phones send
BUCKET_IDLE = 60.0  # a source's rate bucket is forgotten after this long unused

Address = tuple[str, int]


@dataclass(frozen=True)
class Send:
    data: bytes
    dest: Address


@dataclass(frozen=True)
class Outcome:
    """What one received message led to."""

    sends: tuple[Send, ...] = ()
    profile: UaProfile | None = None
    url: str | None = None  # set when a NOTIFY carrying it was started
    refused: str | None = None  # reason, when a SUBSCRIBE was not answered
    retransmission: bool = False
    answered: str | None = None  # MAC whose NOTIFY got its final response
    status: int | None = None


@dataclass(frozen=True)
class Expired:
    """A NOTIFY that got no final response within Timer F."""

    mac: str | None
    url: str
    dest: Address


@dataclass(frozen=True)
class Site:
    """What the responder needs to know from the config."""

    url: str
    local_ip: str
    local_port: int = 5060
    policy: str = "all"
    allowed_sources: tuple[IPv4Network, ...] = ()
    rules: tuple[PnpRule, ...] = ()
    rate_limit: float = 2.0  # SUBSCRIBEs per second per source, sustained
    burst: float = 6.0
    on_link: tuple[IPv4Network, ...] = ()  # the link's subnets (empty: not checked)
    max_tracked: int = MAX_TRACKED


@dataclass
class _NotifyTransaction:
    branch: str
    call_id: str
    data: bytes
    dest: Address
    mac: str | None
    url: str
    started: float
    interval: float
    next_at: float
    retransmit: bool = True


@dataclass
class PnpResponder:
    site: Site
    known_macs: frozenset[str] = frozenset()
    token: Callable[[], str] = field(default_factory=lambda: _random_token)
    _answers: dict[tuple[str, str, int], tuple[Send, float]] = field(default_factory=dict)
    _notifies: dict[str, _NotifyTransaction] = field(default_factory=dict)
    _buckets: TokenBuckets[str] = field(init=False)
    _answered: dict[str, float] = field(default_factory=dict)  # address -> when it answered
    _limited: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._buckets = self._new_buckets(self.site)

    @staticmethod
    def _new_buckets(site: Site) -> TokenBuckets[str]:
        return TokenBuckets(site.rate_limit, site.burst, site.max_tracked)

    # ------------------------------------------------------------ input

    def receive(
        self,
        msg: SipMessage,
        source: Address,
        now: float,
        lease_of: Callable[[str], str | None] | None = None,
    ) -> Outcome:
        """Decide on one decoded message from `source`. `lease_of(ip)`: the MAC
        holding a DHCP lease from netboot at `ip` (a real client), or None;
        without it every address is trusted. Raises DecodeError when a
        header the decision needs is malformed."""
        if not msg.is_request:
            return self._response(msg, now)
        if msg.method != "SUBSCRIBE":
            return Outcome(refused="not-subscribe")
        profile = codec.ua_profile(msg)
        if profile is None:
            return Outcome(refused="not-ua-profile")
        if not self._allowed(source[0]):
            return Outcome(refused="source")
        if not self._on_link(source[0]):
            return Outcome(refused="off-link")
        # Rate per source address, but a SUBSCRIBE from the lease holder of
        # that address (its MAC) has a bucket of its own: SUBSCRIBEs forged in
        # its address with other MACs cannot starve the phone.
        holder = lease_of(source[0]) if lease_of is not None else None
        own = holder is not None and profile.mac == holder
        if not self._take_token(f"{source[0]} {'holder' if own else 'any'}", now):
            return Outcome(profile=profile, refused="rate")
        self._expire(now)
        call_id = msg.header("Call-ID")
        cseq_text = msg.header("CSeq")
        from_text = msg.header("From")
        to_text = msg.header("To")
        vias = msg.values("Via")
        if not call_id or not cseq_text or not from_text or not to_text or not vias:
            raise DecodeError("SUBSCRIBE lacks Call-ID, CSeq, From, To or Via")
        cseq, _ = codec.parse_cseq(cseq_text)
        their_from = codec.parse_name_addr(from_text)
        key = (call_id, their_from.tag or "", cseq)
        cached = self._answers.get(key)
        if cached is not None:
            return Outcome(sends=(cached[0],), profile=profile, retransmission=True)
        if self.site.policy == "discover":
            return Outcome(profile=profile, refused="discover")
        if self.site.policy == "known" and (
            profile.mac is None or profile.mac not in self.known_macs
        ):
            return Outcome(profile=profile, refused="unknown-mac")
        url = self.url_for(profile)
        if not url:
            return Outcome(profile=profile, refused="no-url")
        while len(self._answers) >= self.site.max_tracked:
            del self._answers[next(iter(self._answers))]
            self._limited.append("answers-evicted")

        top = codec.parse_via(vias[0])
        reply_dest = self._response_dest(top, source)
        our_tag = self.token()
        echoed_vias = [self._stamp_via(vias[0], top, source), *vias[1:]]
        to_value = to_text if codec.parse_name_addr(to_text).tag else f"{to_text};tag={our_tag}"
        contact = f"<sip:{self.site.local_ip}:{self.site.local_port}>"
        ok = codec.response(
            200,
            "OK",
            [
                *(("Via", v) for v in echoed_vias),
                ("From", from_text),
                ("To", to_value),
                ("Call-ID", call_id),
                ("CSeq", cseq_text),
                ("Contact", contact),
                ("Expires", "0"),
            ],
        )
        ok_send = Send(codec.encode(ok), reply_dest)
        self._answers[key] = (ok_send, now + TIMER_J)

        branch = "z9hG4bK" + self.token() + self.token()
        notify_dest = self._contact_dest(msg.header("Contact"), reply_dest)
        target = f"sip:{notify_dest[0]}:{notify_dest[1]}"
        their_to = codec.parse_name_addr(to_value)
        event = msg.header("Event") or "ua-profile"
        notify = codec.request(
            "NOTIFY",
            target,
            [
                (
                    "Via",
                    f"SIP/2.0/UDP {self.site.local_ip}:{self.site.local_port};branch={branch};rport",
                ),
                ("Max-Forwards", "70"),
                ("From", _with_tag(their_to, to_value, our_tag)),
                ("To", from_text),
                ("Call-ID", call_id),
                ("CSeq", "1 NOTIFY"),
                ("Contact", contact),
                ("Event", event),
                ("Subscription-State", "terminated;reason=timeout"),
                ("Content-Type", "application/url"),
            ],
            url.encode(),
        )
        notify_send = Send(codec.encode(notify), notify_dest)
        # One NOTIFY in flight per destination: a phone that subscribes again
        # replaces its own, and a spoofed flood cannot multiply retransmissions.
        for stale in [b for b, t in self._notifies.items() if t.dest == notify_dest]:
            del self._notifies[stale]
        while len(self._notifies) >= self.site.max_tracked:
            del self._notifies[next(iter(self._notifies))]
            self._limited.append("notifies-evicted")
        retransmit = (
            lease_of is None
            or notify_dest[0] in self._answered
            or (profile.mac is not None and lease_of(notify_dest[0]) == profile.mac)
        )
        self._notifies[branch] = _NotifyTransaction(
            branch,
            call_id,
            notify_send.data,
            notify_dest,
            profile.mac,
            url,
            now,
            T1,
            now + T1,
            retransmit,
        )
        if not retransmit:
            self._limited.append("notify-unconfirmed")
        return Outcome(sends=(ok_send, notify_send), profile=profile, url=url)

    def _response(self, msg: SipMessage, now: float) -> Outcome:
        cseq_text = msg.header("CSeq")
        if not cseq_text or msg.status is None:
            return Outcome()
        _, method = codec.parse_cseq(cseq_text)
        if method != "NOTIFY":
            return Outcome()
        vias = msg.values("Via")
        transaction = None
        if vias:
            branch = codec.parse_via(vias[0]).branch
            transaction = self._notifies.get(branch or "")
        if transaction is None:
            # Some phones mangle the Via; fall back to the Call-ID (RFC 2543 style).
            call_id = msg.header("Call-ID")
            transaction = next((t for t in self._notifies.values() if t.call_id == call_id), None)
        if transaction is None:
            return Outcome()
        if msg.status < 200:
            transaction.interval = T2  # §17.1.2.2: Proceeding retransmits at T2
            return Outcome(status=msg.status)
        del self._notifies[transaction.branch]
        self._confirm(transaction.dest[0], now)
        return Outcome(answered=transaction.mac or "", status=msg.status, url=transaction.url)

    def _confirm(self, ip: str, now: float) -> None:
        """`ip` answered a NOTIFY (it carried our random branch or Call-ID):
        a real client, whose later NOTIFYs are retransmitted."""
        self._answered.pop(ip, None)
        self._answered[ip] = now
        while len(self._answered) > self.site.max_tracked:
            del self._answered[next(iter(self._answered))]

    def unreachable(self, dest: Address) -> list[Expired]:
        """An ICMP error said `dest` cannot be reached: its NOTIFY ends."""
        gone = [t for t in self._notifies.values() if t.dest == dest]
        for t in gone:
            del self._notifies[t.branch]
        self._answered.pop(dest[0], None)
        return [Expired(t.mac, t.url, t.dest) for t in gone]

    def take_limited(self) -> list[str]:
        """Budget hits since the last call (metric labels), oldest first."""
        out, self._limited = self._limited, []
        return out

    # ------------------------------------------------------------ timers

    def poll(self, now: float) -> tuple[list[Send], list[Expired]]:
        """Retransmissions due at `now` (Timer E) and NOTIFYs given up (Timer F)."""
        sends: list[Send] = []
        expired: list[Expired] = []
        for branch, t in list(self._notifies.items()):
            if now >= t.started + TIMER_F:
                del self._notifies[branch]
                expired.append(Expired(t.mac, t.url, t.dest))
                continue
            if now >= t.next_at and t.retransmit:
                sends.append(Send(t.data, t.dest))
                t.interval = min(t.interval * 2, T2)
                t.next_at = now + t.interval
        self._expire(now)
        return sends, expired

    def next_deadline(self) -> float | None:
        deadlines = [
            min(t.next_at, t.started + TIMER_F) if t.retransmit else t.started + TIMER_F
            for t in self._notifies.values()
        ]
        return min(deadlines) if deadlines else None

    @property
    def pending_notifies(self) -> int:
        return len(self._notifies)

    def _expire(self, now: float) -> None:
        # Both tables are in time order (answers all live TIMER_J; a bucket is
        # moved to the end when used): stale entries are at the front.
        while self._answers:
            key = next(iter(self._answers))
            if self._answers[key][1] > now:
                break
            del self._answers[key]
        self._buckets.expire(now, BUCKET_IDLE)

    # ------------------------------------------------------------ decisions

    def url_for(self, profile: UaProfile) -> str:
        """The first matching rule's URL as written (`$mac` filled in for a
        family whose firmware does not do it), else the site URL in the form
        the phone's family takes in a NOTIFY (`netboot.vendors`: PLANET/Fanvil
        the file URL with `$mac`, Yealink/Polycom/Grandstream the server
        directory, Snom a URL with its `{mac}`)."""
        family = vendors.by_pnp(profile.vendor, profile.mac)
        for rule in self.site.rules:
            if _matches(rule, profile):
                if family is not None and family.mac_macro == "$mac":
                    return rule.url
                mac = (profile.mac or "").replace(":", "")
                return rule.url.replace("$mac", mac) if mac else rule.url
        if family is None:
            url = self.site.url
            if profile.mac:
                url = url.replace("$mac", profile.mac.replace(":", ""))
            return url
        return family.pnp_url(self.site.url, profile.mac)

    def _allowed(self, ip: str) -> bool:
        if not self.site.allowed_sources:
            return False
        try:
            address = IPv4Address(ip)
        except ValueError:
            return False
        return any(address in net for net in self.site.allowed_sources)

    def _on_link(self, ip: str) -> bool:
        if not self.site.on_link:
            return True
        address = IPv4Address(ip)
        return any(address in net for net in self.site.on_link)

    def _take_token(self, key: str, now: float) -> bool:
        buckets = self._buckets
        if (buckets.rate, buckets.burst, buckets.max_keys) != (
            self.site.rate_limit,
            self.site.burst,
            self.site.max_tracked,
        ):  # a reload changed the limit: the new one from now on
            buckets.reconfigure(self.site.rate_limit, self.site.burst, self.site.max_tracked)
        allowed = buckets.allow(key, now)
        self._limited.extend(["buckets-evicted"] * buckets.take_evicted())
        return allowed

    @staticmethod
    def _response_dest(top: codec.Via, source: Address) -> Address:
        if "rport" in top.params:
            return source
        return (source[0], top.port or 5060)

    @staticmethod
    def _stamp_via(raw: str, top: codec.Via, source: Address) -> str:
        """RFC 3261 §18.2.1 `received`, RFC 3581 §4 `rport` value."""
        out = raw
        if "rport" in top.params:
            parts = [p for p in raw.split(";") if p.strip().lower().split("=")[0] != "rport"]
            out = ";".join(parts) + f";rport={source[1]}"
            if "received" not in top.params:
                out += f";received={source[0]}"
        elif top.host != source[0] and "received" not in top.params:
            out += f";received={source[0]}"
        return out

    def _contact_dest(self, contact: str | None, fallback: Address) -> Address:
        if not contact:
            return fallback
        try:
            uri = codec.parse_uri(codec.parse_name_addr(codec.split_list(contact)[0]).uri)
        except (DecodeError, IndexError):
            return fallback
        if not self._allowed(uri.host):
            return fallback
        return (uri.host, uri.port or 5060)


def _random_token() -> str:
    return secrets.token_hex(6)


def _matches(rule: PnpRule, profile: UaProfile) -> bool:
    if rule.vendor and (profile.vendor or "").lower() != rule.vendor.lower():
        return False
    if rule.model and (profile.model or "").lower() != rule.model.lower():
        return False
    return not rule.mac_prefix or (
        profile.mac is not None and parse_mac(profile.mac).startswith(rule.mac_prefix)
    )


def _with_tag(addr: codec.NameAddr, raw: str, tag: str) -> str:
    """Their To value as our From, carrying our tag."""
    if addr.tag:
        return raw
    return f"{raw};tag={tag}"


# ---------------------------------------------------------------- config and reports


def allowed_sources(config: Config, subnets: tuple[IPv4Network, ...]) -> tuple[IPv4Network, ...]:
    """pnp.allowed_sources, by default the served interfaces' subnets."""
    if config.pnp.allowed_sources is not None:
        return tuple(config.pnp.allowed_sources)
    return subnets


def site_for(
    config: Config,
    address: IPv4Address,
    allowed: tuple[IPv4Network, ...],
    on_link: tuple[IPv4Network, ...],
) -> Site:
    """The responder's view of the config for the link whose address is `address`."""
    pnp = config.pnp
    return Site(
        on_link=on_link,
        max_tracked=pnp.max_tracked,
        url=config.provisioning.url,
        local_ip=str(address),
        local_port=pnp.port,
        policy=pnp.policy,
        allowed_sources=allowed,
        rules=pnp.rules,
        rate_limit=pnp.rate_limit,
        burst=max(4.0, 3 * pnp.rate_limit),
    )


Record = PnpAnswered | PnpSubscribed | PnpNotified  # what the transport records


@dataclass(frozen=True)
class Report:
    """What one outcome means for the metrics, the log and the registry."""

    refused: str | None = None  # a SUBSCRIBE refused, for why (metric, rate-limited line)
    answered: bool = False  # a NOTIFY carrying the URL was started (metric)
    lines: tuple[str, ...] = ()  # a line per phone, within the log budget
    records: tuple[Record, ...] = ()


def report(method: str | None, out: Outcome, source: Address) -> Report:
    """The registry events and log lines of one outcome. A spoofable refusal
    (source, rate, off-link) and a retransmission record nothing: a flood of
    forged SUBSCRIBEs must not write the registry."""
    if out.answered is not None:
        line = f"pnp: {out.answered or source[0]} answered the NOTIFY with {out.status}"
        answered = (PnpAnswered(mac=out.answered, status=out.status),)
        return Report(lines=(line,), records=answered if out.answered else ())
    if method != "SUBSCRIBE":
        return Report()
    profile = out.profile
    if profile is None or out.retransmission or out.refused in ("source", "rate", "off-link"):
        return Report(refused=out.refused)
    lines: list[str] = []
    records: list[Record] = []
    if profile.mac is None:
        lines.append(
            f"pnp: SUBSCRIBE from {source[0]} without a MAC"
            f" ({profile.vendor} {profile.model} {profile.firmware})"
        )
    else:
        records.append(
            PnpSubscribed(
                mac=profile.mac,
                source=f"{source[0]}:{source[1]}",
                profile_type=profile.profile_type,
                user_agent=profile.user_agent,
                vendor_from_oui=profile.vendor_from_oui or None,
                refused=out.refused,
                ip=source[0],
                vendor=profile.vendor,
                model=profile.model,
                firmware=profile.firmware,
            )
        )
    if out.url is not None:
        notify_to = out.sends[1].dest if len(out.sends) > 1 else source
        lines.append(
            f"pnp: {profile.mac or '?'} {profile.vendor or '?'} {profile.model or '?'}"
            f" at {source[0]} -> NOTIFY {out.url}"
        )
        if profile.mac is not None:
            to = f"{notify_to[0]}:{notify_to[1]}"
            records.append(PnpNotified(mac=profile.mac, url=out.url, to=to))
    return Report(out.refused, out.url is not None, tuple(lines), tuple(records))


@dataclass(frozen=True)
class Ended:
    """What a NOTIFY given up means for the log and the registry."""

    key: str  # the rate-limited log line's key ("expired" or "unreachable")
    line: str
    record: PnpTimedOut | None = None


def ended(gone: Expired, *, unreachable: bool = False) -> Ended:
    """A NOTIFY that Timer F ended (recorded for its MAC) or that an ICMP error
    ended (`unreachable`: a line only, a spoofed source must not write the registry)."""
    to = f"{gone.dest[0]}:{gone.dest[1]}"
    if unreachable:
        return Ended(
            "unreachable",
            f"pnp: {to} ({gone.mac or 'no MAC'}) is unreachable (ICMP): NOTIFY given up",
        )
    record = PnpTimedOut(mac=gone.mac, url=gone.url, to=to) if gone.mac else None
    return Ended(
        "expired", f"pnp: NOTIFY to {to} ({gone.mac or 'no MAC'}) got no answer in 32 s", record
    )
