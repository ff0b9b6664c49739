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
    label: str  # the guide's name, also the PLANET/Fanvil config key
    yealink: str  # Yealink's `action_url.<key>`


EVENTS: tuple[ActionEvent, ...] = (
    ActionEvent("setup-completed", "Setup Completed", "setup_completed"),
    ActionEvent("registration-succeeded", "Registration Succeeded", "registered"),
    ActionEvent("registration-disabled", "Registration Disabled", "unregistered"),
    ActionEvent("registration-failed", "Registration Failed", "register_failed"),
    ActionEvent("off-hook", "Phone Off Hooked", "off_hook"),
    ActionEvent("on-hook", "Phone On Hooked", "on_hook"),
    ActionEvent("incoming-call", "Incoming Call", "incoming_call"),
    ActionEvent("outgoing-call", "Outgoing Call", "outgoing_call"),
    ActionEvent("call-established", "Call Established", "call_established"),
    ActionEvent("call-terminated", "Call Terminated", "call_terminated"),
    ActionEvent("dnd-enabled", "DND Enabled", "dnd_on"),
    ActionEvent("dnd-disabled", "DND Disabled", "dnd_off"),
    ActionEvent("cfwd-always-enabled", "Unconditional Call Forward Enabled", "always_fwd_on"),
    ActionEvent("cfwd-always-disabled", "Unconditional Call Forward Disabled", "always_fwd_off"),
    ActionEvent("cfwd-busy-enabled", "Call Forward on Busy Enabled", "busy_fwd_on"),
    ActionEvent("cfwd-busy-disabled", "Call Forward on Busy Disabled", "busy_fwd_off"),
    ActionEvent("cfwd-noanswer-enabled", "Call Forward on No Answer Enabled", "no_answer_fwd_on"),
    ActionEvent(
        "cfwd-noanswer-disabled", "Call Forward on No Answer Disabled", "no_answer_fwd_off"
    ),
    ActionEvent("transfer", "Call transfer", "transfer_call"),
    ActionEvent("blind-transfer", "Unattended Call Transfer", "blind_transfer_call"),
    ActionEvent("attended-transfer", "Attended Call Transfer", "attended_transfer_call"),
    ActionEvent("hold", "Call hold", "hold"),
    ActionEvent("resume", "Call resume", "unhold"),
    ActionEvent("mute", "Mute", "mute"),
    ActionEvent("unmute", "UnMute", "unmute"),
    ActionEvent("missed-call", "Missed Call", "missed_call"),
    ActionEvent("ip-changed", "IP Changed", "ip_change"),
    ActionEvent("idle-to-busy", "Idle To Busy", "idle_to_busy"),
    ActionEvent("busy-to-idle", "Busy To Idle", "busy_to_idle"),
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
