"""Action URL events and variables (PLANET guide chapter 4).

A phone GETs a configured URL when one of these events happens, after
replacing `$variable` tokens in the URL's query with its own values. netboot
writes one URL per event into the configs it renders,
`http://<appliance>/action/<slug>?mac=$mac&ip=$ip&...`, and the HTTP receiver
(`netboot.http.action`) records each request in the phone registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class ActionEvent:
    slug: str  # path component under /action/ and the registry event kind
    label: str  # the guide's name (chapter 4 table; the web UI's label, not a config key)
    yealink: str  # Yealink's `action_url.<key>`
    # PLANET/Fanvil config keys: firmware 1.x (<GLOBAL CONFIG MODULE>) and 2.x
    # (<CTI CONFIG MODULE>); "" where that firmware has no such event.
    fanvil_global: str = ""
    fanvil_cti: str = ""


# Firmware keys: Digium A20 (Fanvil 1.x) and Fanvil X3U (2.x) exports in tests/data;
# netboot/provisioning/templates/SOURCES.md gives the reasoning per event.
EVENTS: tuple[ActionEvent, ...] = (
    ActionEvent(
        "setup-completed",
        "Setup Completed",
        "setup_completed",
        "Boot Completed Url",
        "Boot Completed Url",
    ),
    ActionEvent(
        "registration-succeeded", "Registration Succeeded", "registered", "Reg On Url", "Reg On Url"
    ),
    ActionEvent(
        "registration-disabled",
        "Registration Disabled",
        "unregistered",
        "Reg Off Url",
        "Reg Off Url",
    ),
    ActionEvent(
        "registration-failed",
        "Registration Failed",
        "register_failed",
        "Reg Failed Url",
        "Reg Failed Url",
    ),
    ActionEvent("off-hook", "Phone Off Hooked", "off_hook", "Offhook Url", "Offhook Url"),
    ActionEvent("on-hook", "Phone On Hooked", "on_hook", "Onhook Uri", "Onhook Uri"),
    ActionEvent(
        "incoming-call", "Incoming Call", "incoming_call", "Incmoing Call Url", "Incoming Call Url"
    ),
    ActionEvent(
        "outgoing-call", "Outgoing Call", "outgoing_call", "Outgoing Call Url", "Outgoing Call Url"
    ),
    ActionEvent(
        "call-established",
        "Call Established",
        "call_established",
        "Call Active Url",
        "Call Active Url",
    ),
    ActionEvent(
        "call-terminated", "Call Terminated", "call_terminated", "Call Stop Url", "Call Stop Url"
    ),
    ActionEvent("dnd-enabled", "DND Enabled", "dnd_on", "DND On Url", "DND On Url"),
    ActionEvent("dnd-disabled", "DND Disabled", "dnd_off", "DND Off Url", "DND Off Url"),
    ActionEvent(
        "cfwd-always-enabled",
        "Unconditional Call Forward Enabled",
        "always_fwd_on",
        "Always FWD On Url",
        "Always FWD On Url",
    ),
    ActionEvent(
        "cfwd-always-disabled",
        "Unconditional Call Forward Disabled",
        "always_fwd_off",
        "Always FWD Off Url",
        "Always FWD Off Url",
    ),
    ActionEvent(
        "cfwd-busy-enabled",
        "Call Forward on Busy Enabled",
        "busy_fwd_on",
        "Busy FWD On Url",
        "Busy FWD On Url",
    ),
    ActionEvent(
        "cfwd-busy-disabled",
        "Call Forward on Busy Disabled",
        "busy_fwd_off",
        "Busy FWD Off Url",
        "Busy FWD Off Url",
    ),
    ActionEvent(
        "cfwd-noanswer-enabled",
        "Call Forward on No Answer Enabled",
        "no_answer_fwd_on",
        "No Ans FWD On Url",
        "No Ans FWD On Url",
    ),
    ActionEvent(
        "cfwd-noanswer-disabled",
        "Call Forward on No Answer Disabled",
        "no_answer_fwd_off",
        "No Ans FWD Off Url",
        "No Ans FWD Off Url",
    ),
    ActionEvent("transfer", "Call transfer", "transfer_call", "Transfer Url", "Transfer Url"),
    ActionEvent(
        "blind-transfer", "Unattended Call Transfer", "blind_transfer_call", "B Transfer Url", ""
    ),
    ActionEvent(
        "attended-transfer",
        "Attended Call Transfer",
        "attended_transfer_call",
        "A Transfer Url",
        "",
    ),
    ActionEvent("hold", "Call hold", "hold", "Hold Url", "Hold On Url"),
    ActionEvent("resume", "Call resume", "unhold", "Unhold Url", "Hold Off Url"),
    ActionEvent("mute", "Mute", "mute", "Mute Url", "Mute On Call Url"),
    ActionEvent("unmute", "UnMute", "unmute", "Unmute Url", "Mute Off Call Url"),
    ActionEvent(
        "missed-call", "Missed Call", "missed_call", "Missed call Url", "New Missed call Url"
    ),
    ActionEvent("ip-changed", "IP Changed", "ip_change", "IP Change Url", "IP Change Url"),
    ActionEvent(
        "idle-to-busy", "Idle To Busy", "idle_to_busy", "Idle to Busy Url", "PhoneState Talking"
    ),
    ActionEvent(
        "busy-to-idle", "Busy To Idle", "busy_to_idle", "Busy to Idle Url", "PhoneState Idle Url"
    ),
)

BY_SLUG = {e.slug: e for e in EVENTS}

# query name -> the phone's variable (chapter 4 table). The receiver reads
# these names; a value still spelled `$...` means the phone did not fill it in.
VARIABLES: tuple[tuple[str, str], ...] = (
    ("mac", "$mac"),
    ("ip", "$ip"),
    ("model", "$model"),
    ("firmware", "$firmware"),
    ("active_url", "$active_url"),
    ("active_user", "$active_user"),
    ("active_host", "$active_host"),
    ("local", "$local"),
    ("remote", "$remote"),
    ("display_local", "$display_local"),
    ("display_remote", "$display_remote"),
    ("call_id", "$call_id"),
)


def action_url(base: str, event: ActionEvent) -> str:
    """The URL a phone is told to GET on `event`; `base` is `http://host[:port]`."""
    query = "&".join(f"{name}={var}" for name, var in VARIABLES)
    return f"{base.rstrip('/')}/action/{quote(event.slug)}?{query}"
