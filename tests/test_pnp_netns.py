"""The real PnP responder in a namespace against real `sipp` phones.

The phone namespace multicasts its SUBSCRIBE to 224.0.1.75 over a veth pair;
sipp's message log is decoded with netboot's own codec and checked here, and
`netboot phones --json` shows what the registry learnt.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netboot.pnp import codec
from tests.netns import Lab, Netns, Segment, server_config, wait_for

pytestmark = pytest.mark.netns

SERVER_IP = "10.77.0.1"
PHONE_IP = "10.77.0.2"
URL = "http://10.77.0.1/$mac.cfg"
YEALINK_URL = "http://10.77.0.1/yealink/$mac.cfg"

CONFIG = """
[pnp]
policy = "all"
{allowed}
[[pnp.rule]]
vendor = "Yealink"
url = "{yealink_url}"
"""

# sipp scenario pieces. [local_ip]/[local_port]/[call_id] are sipp keywords;
# {mac_user}, {event}, ... are filled in here.
SUBSCRIBE = """
  <send>
    <![CDATA[

      SUBSCRIBE sip:{mac_user}@224.0.1.75 SIP/2.0
      Via: SIP/2.0/UDP [local_ip]:[local_port];branch=z9hG4bK-[call_number]-sub{via_extra}
      From: <sip:{mac_user}@224.0.1.75>{from_tag}
      To: <sip:{mac_user}@224.0.1.75>
      Call-ID: [call_id]
      CSeq: 1 SUBSCRIBE
      Contact: <sip:[local_ip]:[local_port]>
      Max-Forwards: 70
      User-Agent: {user_agent}
      Expires: 0
      Event: ua-profile;profile-type="device";{event}
      Accept: application/url
      Content-Length: 0

    ]]>
  </send>
"""

RECV_OK = """
  <recv response="200"/>
"""

RECV_NOTIFY = """
  <recv request="NOTIFY"/>
"""

# After a SUBSCRIBE to the group, answers go to the NOTIFY's unicast source.
ANSWER_NOTIFY = """
  <nop>
    <action>
      <setdest host="{server}" port="5060" protocol="udp"/>
    </action>
  </nop>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=phone-[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""


def scenario(*parts: str) -> str:
    body = "".join(parts)
    return (
        f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="pnp">{body}\n</scenario>\n'
    )


PLANET = {
    "mac_user": "MAC=00304fa99948",
    "from_tag": "",
    "user_agent": "PLANET VIP-2140PT",
    "event": 'vendor="PLANET";model="VIP-2140PT";version="2.0.3.2991"',
}
SNOM = {
    "mac_user": "MAC%3a000413291a4b",
    "from_tag": ";tag=snom-[call_number]",
    "user_agent": "snom300/8.7.3.25",
    "event": 'vendor="OEM";model="snom300";version="8.7.3.25"',
}
YEALINK = {
    "mac_user": "MAC001565a1b2c3",
    "from_tag": ";tag=yl-[call_number]",
    "user_agent": "Yealink SIP-T46S 66.85.0.5",
    "event": 'vendor="Yealink";model="T46S";version="66.85.0.5"',
}


class PnpSite:
    def __init__(self, lab: Lab, tmp: Path, allowed: str = "") -> None:
        self.lab = lab
        self.tmp = tmp
        wire = Segment(lab, {"srv": f"{SERVER_IP}/24", "phone": f"{PHONE_IP}/24"})
        self.srv, self.phone = wire["srv"], wire["phone"]
        self.phone.run(["ip", "route", "add", "224.0.0.0/4", "dev", "eth0"])
        self.state = tmp / "state"
        self.config = tmp / "netboot.toml"
        body = CONFIG.format(yealink_url=YEALINK_URL, allowed=allowed)
        text = server_config(body, state=self.state, url=URL, root=self.state / "files")
        self.server = wire.server("srv", self.config, text).start()

    def sipp(
        self, name: str, xml: str, port: int = 5060, timeout: int = 20, ns: Netns | None = None
    ) -> tuple[subprocess.CompletedProcess[str], list[Logged]]:
        """Run one sipp call; returns the process and its message log."""
        path = self.tmp / f"{name}.xml"
        path.write_text(xml)
        messages = self.tmp / f"{name}-messages.log"
        proc = (ns or self.phone).run(
            [
                "sipp",
                "-sf",
                str(path),
                "224.0.1.75:5060",
                "-i",
                PHONE_IP,
                "-p",
                str(port),
                "-m",
                "1",
                "-nd",
                "-timeout",
                f"{timeout}s",
                "-timeout_error",
                "-trace_msg",
                "-message_file",
                str(messages),
                "-trace_err",
                "-error_file",
                str(self.tmp / f"{name}-errors.log"),
                "-nostdin",
            ],
            check=False,
            timeout=timeout + 15,
        )
        return proc, parse_message_log(messages)

    def phones(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = json.loads(self.server.cli("phones", "--json").stdout)
        return result

    def phone_record(self, mac: str) -> dict[str, Any] | None:
        return next((p for p in self.phones() if p["mac"] == mac), None)


_ENTRY = re.compile(
    r"^-{20,} \S+ (\d+):(\d+):([\d.]+)\n"
    r"UDP message (received|sent)[^\n]*\n\n(.*?)(?=\n-{20,}|\Z)",
    re.DOTALL | re.MULTILINE,
)


@dataclass(frozen=True)
class Logged:
    when: float  # seconds since midnight
    direction: str  # "received" | "sent"
    msg: codec.SipMessage


def parse_message_log(path: Path) -> list[Logged]:
    """sipp's -trace_msg log, in order, each message decoded by our codec."""
    if not path.exists():
        return []
    out: list[Logged] = []
    for hours, minutes, seconds, direction, body in _ENTRY.findall(path.read_text()):
        raw = body.strip("\n").replace("\r\n", "\n").replace("\n", "\r\n").encode()
        when = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        out.append(Logged(when, direction, codec.decode(raw + b"\r\n\r\n")))
    return out


def received(log: list[Logged]) -> list[codec.SipMessage]:
    return [entry.msg for entry in log if entry.direction == "received"]


def sent(log: list[Logged]) -> list[codec.SipMessage]:
    return [entry.msg for entry in log if entry.direction == "sent"]


def explain(proc: subprocess.CompletedProcess[str], site: PnpSite) -> str:
    return f"sipp exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}\n{site.server.log()[-3000:]}"


@pytest.fixture
def site(lab: Lab, tmp_path: Path) -> PnpSite:
    return PnpSite(lab, tmp_path)


def test_planet_subscribe_ok_notify_and_answer(site: PnpSite) -> None:
    xml = scenario(
        SUBSCRIBE.format(via_extra="", **PLANET),
        RECV_OK,
        RECV_NOTIFY,
        ANSWER_NOTIFY.format(server=SERVER_IP),
    )
    proc, log = site.sipp("planet", xml)
    assert proc.returncode == 0, explain(proc, site)
    assert [m.status or m.method for m in received(log)] == [200, "NOTIFY"]
    sub = sent(log)[0]
    ok, notify = received(log)
    # 200 OK: Via, From, Call-ID, CSeq echoed; our tag in To.
    assert ok.values("Via") == sub.values("Via")
    for name in ("From", "Call-ID", "CSeq"):
        assert ok.header(name) == sub.header(name)
    our_tag = codec.parse_name_addr(ok.header("To") or "").tag
    assert our_tag
    assert ok.header("Expires") == "0"
    # NOTIFY: new Via and branch from our address, tags swapped, same Call-ID.
    assert notify.uri == f"sip:{PHONE_IP}:5060"
    via = codec.parse_via(notify.values("Via")[0])
    assert (via.host, via.port) == (SERVER_IP, 5060)
    assert via.branch and via.branch.startswith("z9hG4bK")
    assert via.branch != codec.parse_via(sub.values("Via")[0]).branch
    assert codec.parse_name_addr(notify.header("From") or "").tag == our_tag
    assert (
        codec.parse_name_addr(notify.header("From") or "").uri == "sip:MAC=00304fa99948@224.0.1.75"
    )
    assert notify.header("To") == sub.header("From")
    assert notify.header("Call-ID") == sub.header("Call-ID")
    assert codec.parse_cseq(notify.header("CSeq") or "")[1] == "NOTIFY"
    assert notify.header("Event") == sub.header("Event")
    assert notify.header("Subscription-State") == "terminated;reason=timeout"
    assert notify.header("Content-Type") == "application/url"
    assert notify.body == URL.encode()  # PLANET phones fill in $mac themselves

    def answered() -> dict[str, Any] | None:
        record = site.phone_record("00:30:4f:a9:99:48")
        return record if record and record["state"] == "url-sent" else None

    record = wait_for(answered, 20, "the PLANET phone in the registry")
    assert (record["vendor"], record["model"], record["firmware"]) == (
        "PLANET",
        "VIP-2140PT",
        "2.0.3.2991",
    )
    assert record["url"] == URL
    assert record["ip"] == PHONE_IP
    timeline = site.server.cli("phones", "00:30:4f:a9:99:48").stdout
    wait_for(
        lambda: "notify-answered" in site.server.cli("phones", "00:30:4f:a9:99:48").stdout,
        20,
        "the NOTIFY's 200 in the timeline",
    )
    assert "subscribe" in timeline


def test_late_answer_gets_retransmissions(site: PnpSite) -> None:
    # The phone leaves the NOTIFY unanswered for 1.8 s: netboot retransmits it
    # at T1 = 0.5 s and then 1 s later (timer E doubling), and stops at the 200.
    # (sipp takes a retransmitted NOTIFY as such, so one <recv> sees them all.)
    # Retransmissions go only to a confirmed address (a DHCP lease here, or an
    # earlier answer): without either the phone gets one NOTIFY ...
    unconfirmed = scenario(
        SUBSCRIBE.format(via_extra="", **SNOM),
        RECV_OK,
        RECV_NOTIFY,
        '\n  <pause milliseconds="2500"/>\n',
    )
    proc, log = site.sipp("unconfirmed", unconfirmed, timeout=25)
    assert proc.returncode == 0, explain(proc, site)
    assert len([e for e in log if e.msg.method == "NOTIFY"]) == 1, log
    # ... and once it has answered a NOTIFY, its later ones are retransmitted.
    prompt = scenario(
        SUBSCRIBE.format(via_extra="", **SNOM),
        RECV_OK,
        RECV_NOTIFY,
        ANSWER_NOTIFY.format(server=SERVER_IP),
    )
    proc, _ = site.sipp("prompt", prompt, timeout=25)
    assert proc.returncode == 0, explain(proc, site)
    xml = scenario(
        SUBSCRIBE.format(via_extra="", **SNOM),
        RECV_OK,
        RECV_NOTIFY,
        '\n  <pause milliseconds="1800"/>\n',
        ANSWER_NOTIFY.format(server=SERVER_IP),
        '\n  <pause milliseconds="4500"/>\n',
    )
    proc, log = site.sipp("late", xml, timeout=25)
    assert proc.returncode == 0, explain(proc, site)
    answer_at = next(e.when for e in log if e.direction == "sent" and e.msg.status == 200)
    notifies = [e for e in log if e.msg.method == "NOTIFY"]
    before = [e for e in notifies if e.when < answer_at]
    assert len(before) >= 3, [(e.when, e.msg.method or e.msg.status) for e in log]
    assert [e for e in notifies if e.when > answer_at + 0.2] == []  # the 200 ended it
    assert len({codec.encode(e.msg) for e in notifies}) == 1  # the same NOTIFY each time
    gaps = [b.when - a.when for a, b in itertools.pairwise(before)]
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95, gaps  # T1, then 2*T1
    # Snom fills in its own {mac} (Snom SIP PnP capture: NOTIFY body
    # ".../sipphoneconfig.xml?mac={mac}"); its per-MAC file is <MAC>.xml (wazo_snom).
    assert notifies[0].msg.body == b"http://10.77.0.1/{mac}.xml"


def test_repeated_subscribe_gets_no_second_notify(site: PnpSite) -> None:
    sub = SUBSCRIBE.format(via_extra="", **YEALINK)
    xml = scenario(
        sub,
        RECV_OK,
        RECV_NOTIFY,
        ANSWER_NOTIFY.format(server=SERVER_IP),
        '\n  <nop><action><setdest host="224.0.1.75" port="5060" protocol="udp"/></action></nop>\n',
        sub,
        RECV_OK,
        '\n  <pause milliseconds="3000"/>\n',
    )
    proc, log = site.sipp("repeat", xml, port=5059)
    assert proc.returncode == 0, explain(proc, site)
    got = received(log)
    assert [m.status or m.method for m in got] == [200, "NOTIFY", 200]
    assert codec.encode(got[0]) == codec.encode(got[2])  # the same 200 OK
    assert got[1].body == b"http://10.77.0.1/yealink/001565a1b2c3.cfg"  # the rule's URL
    assert codec.parse_via(sent(log)[0].values("Via")[0]).port == 5059
    record = wait_for(
        lambda: site.phone_record("00:15:65:a1:b2:c3"), 20, "the Yealink phone in the registry"
    )
    assert (record["vendor"], record["model"], record["firmware"]) == (
        "Yealink",
        "T46S",
        "66.85.0.5",
    )


def test_snom_oem_vendor_from_oui(site: PnpSite) -> None:
    xml = scenario(
        SUBSCRIBE.format(via_extra=";rport", **SNOM),
        RECV_OK,
        RECV_NOTIFY,
        ANSWER_NOTIFY.format(server=SERVER_IP),
    )
    proc, log = site.sipp("snom", xml, port=5071)
    assert proc.returncode == 0, explain(proc, site)
    ok = received(log)[0]
    via = codec.parse_via(ok.values("Via")[0])
    assert via.params.get("rport") == "5071"
    record = wait_for(
        lambda: site.phone_record("00:04:13:29:1a:4b"), 20, "the Snom phone in the registry"
    )
    assert (record["vendor"], record["model"]) == ("Snom", "snom300")


def test_source_outside_allowed_sources_gets_nothing(lab: Lab, tmp_path: Path) -> None:
    site = PnpSite(lab, tmp_path, allowed='allowed_sources = ["10.99.0.0/24"]')
    xml = scenario(
        SUBSCRIBE.format(via_extra="", **PLANET),
        '\n  <pause milliseconds="3000"/>\n',  # any answer would be an unexpected message
    )
    proc, log = site.sipp("outside", xml)
    assert proc.returncode == 0, explain(proc, site)
    assert len(sent(log)) == 1
    assert received(log) == []
    assert site.phone_record("00:30:4f:a9:99:48") is None
    assert "not answering 10.77.0.2" in site.server.log()
