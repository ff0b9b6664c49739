"""The installer's view of the appliance, on the HTTP server.

- `GET /`: every phone the appliance has met, with counts per provisioning
  state; the table refreshes itself every 2 s from `/api/phones` while phones
  boot, and each row opens that phone's timeline.
- `GET /phones/<mac>`: one phone's facts and every event about it.
- `GET /api/phones`, `GET /api/phones/<mac>`: the same data as JSON.
- `GET /metrics`: Prometheus text exposition (netboot/metrics.py registry).

Everything here shows MACs and addresses, so when `[http]` credentials are set
every route here asks for them (the same Basic/Digest check as the files).
Phone data is read from the registry's SQLite file on a connection of its own,
in one worker thread, never on the event loop. Anything a phone sent is
HTML-escaped on the server and inserted as text by the script; password-like
fields (and passwords inside URLs) are masked before they leave the process.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from netboot import metrics
from netboot.events import PhoneState
from netboot.http.app import require_auth
from netboot.http.overview import (
    appliance_status,
    phone_leases,
    services_health,
    unseen_inventory,
    uptime_text,
)
from netboot.provisioning.inventory import InventoryCache
from netboot.state.db import open_database, open_state, tolerant
from netboot.state.registry import (
    Phone,
    TimelineEntry,
    read_counts,
    read_phone,
    read_phones,
    read_timeline,
)
from netboot.statedisk import HEALTH
from netboot.supervisor import Context
from netboot.wire import normalize_mac

log = logging.getLogger("netboot.http.status")

POLL_MS = 2000
TIMELINE_LIMIT = 500  # events shown per phone (the latest)
MASK = "********"
_SECRET_WORDS = r"pass|pwd|secret|token|credential|authorization"
_SECRET_KEY = re.compile(_SECRET_WORDS, re.IGNORECASE)
# `?password=x` / `&sip_pwd=x` inside a URL (Action URLs carry query strings)
_SECRET_QUERY = re.compile(rf"([?&;][^=&;#]*(?:{_SECRET_WORDS})[^=&;#]*=)[^&;#]*", re.IGNORECASE)

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ---------------------------------------------------------------- reading


class StatusReader:
    """Reads (and renders) phones and timelines on its own SQLite connection,
    in one worker thread, so a page refresh never blocks the services' loop.

    The phones' JSON is kept until the database changes (`PRAGMA data_version`
    moves when the registry commits), so several open pages polling every 2 s
    cost one read per registry flush, not one per poll."""

    def __init__(self, state_dir: Path, registry_conn: sqlite3.Connection | None = None) -> None:
        self.state_dir = state_dir
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="status-db")
        # used only in the worker thread; the registry's own when it lives in memory
        self._conn: sqlite3.Connection | None = registry_conn
        self._owned = registry_conn is None
        self._cached: tuple[int, bytes, bytes] | None = None  # data_version, counts, phones

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self._conn = open_database(self.state_dir)
            except (sqlite3.Error, OSError):
                # state_dir cannot be written: read the file as it is (or nothing).
                self._conn = open_state(
                    self.state_dir, "status", "", read_only="", memory="", report=False
                )[0]
        return self._conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """fn(connection) in the worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._db()))

    def phones_json(self, conn: sqlite3.Connection) -> bytes:
        """`{"generated", "problems", "counts", "phones"}` as bytes (worker thread only);
        `problems`: what state_dir cannot do now (statedisk.HEALTH)."""
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        # data_version does not move for the registry's own commits: when the
        # page reads the registry's in-memory connection, read every time.
        if self._cached is None or self._cached[0] != version or not self._owned:
            phones = _read_phones(conn)
            self._cached = (
                version,
                _dumps(count_states(phones)).encode(),
                _dumps([phone_json(p) for p in phones]).encode(),
            )
        _, counts, phones_body = self._cached
        problems = _dumps(HEALTH.lines()).encode()
        return b'{"generated":%.3f,"problems":%s,"counts":%s,"phones":%s}' % (
            time.time(),
            problems,
            counts,
            phones_body,
        )

    async def close(self) -> None:
        def close_conn(_conn: sqlite3.Connection) -> None:
            if self._conn is not None and self._owned:
                self._conn.close()
                self._conn = None

        if self._conn is not None:
            await self.run(close_conn)
        self._executor.shutdown(wait=True)


def _read_phones(conn: sqlite3.Connection) -> list[Phone]:
    return tolerant(read_phones, conn, [])


def _read_phone(conn: sqlite3.Connection, mac: str) -> Phone | None:
    return tolerant(lambda c: read_phone(c, mac), conn, None)


def _read_timeline(
    conn: sqlite3.Connection, mac: str, limit: int = TIMELINE_LIMIT
) -> list[TimelineEntry]:
    """The phone's latest `limit` events, oldest first."""
    return tolerant(lambda c: read_timeline(c, mac, limit), conn, [])


def _read_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts: dict[str, int] = tolerant(read_counts, conn, {})
    return {str(k): int(v) for k, v in counts.items()}


# ---------------------------------------------------------------- masking


def mask_url(url: str) -> str:
    """`http://user:secret@host/x?pwd=y` -> `http://user:********@host/x?pwd=********`."""
    url = _SECRET_QUERY.sub(rf"\g<1>{MASK}", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:{MASK}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def mask_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key) and value not in (None, ""):
        return MASK
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    if isinstance(value, Mapping):
        return {str(k): mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(key, v) for v in value]
    return value


def phone_json(phone: Phone) -> dict[str, Any]:
    out = {k: mask_value(k, v) for k, v in phone.as_dict().items()}
    out["registered"] = phone.state == "registered"
    return out


def event_json(event: TimelineEntry) -> dict[str, Any]:
    detail = {str(k): mask_value(str(k), v) for k, v in event.detail.items()}
    text = " ".join(
        f"{k}={v}" for k, v in detail.items() if v not in (None, "", [], {})
    )  # same shape as TimelineEntry.describe, but masked
    return {
        "when": event.when,
        "service": event.service,
        "kind": event.kind,
        "detail": detail,
        "text": text,
    }


def count_states(phones: list[Phone]) -> dict[str, int]:
    counts = dict.fromkeys((s.value for s in PhoneState), 0)
    for phone in phones:
        counts[phone.state] = counts.get(phone.state, 0) + 1
    return counts


# ---------------------------------------------------------------- HTML

_CSS = """
:root{--bg:#f6f7f9;--fg:#1d2329;--mute:#5f6b76;--line:#dde2e7;--card:#fff;--accent:#1f6feb}
*{box-sizing:border-box}
body{margin:0;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{padding:14px 20px;background:#1d2329;color:#fff;display:flex;flex-wrap:wrap;gap:8px 16px;align-items:baseline}
header h1{margin:0;font-size:18px}
header a{color:#9ecbff}
header .sub{color:#b8c2cc;font-size:13px}
main{padding:16px 20px;max-width:1400px;margin:0 auto}
.counts{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 14px;padding:0;list-style:none}
.counts li{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:6px 12px;min-width:96px}
.counts b{display:block;font-size:20px}
.counts span{color:var(--mute);font-size:12px}
.tools{display:flex;gap:10px;align-items:center;margin-bottom:10px;flex-wrap:wrap}
.tools input{padding:7px 10px;border:1px solid var(--line);border-radius:6px;min-width:220px;font:inherit}
.tools .live{color:var(--mute);font-size:13px}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f4;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:var(--mute)}
tbody tr.phone{cursor:pointer}
tbody tr.phone:hover{background:#f0f6ff}
td.mac,td.ip,td.when{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;white-space:nowrap}
td a{color:var(--accent);text-decoration:none}
.state{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;white-space:nowrap;background:#e4e8ec}
.state.url-sent{background:#fff3c4}
.state.fetched-common{background:#d9ecff}
.state.fetched-own{background:#c8e1ff}
.state.registered{background:#cdeccf}
.state.failed,.state.registration-failed{background:#ffd6d6}
.empty{padding:24px;text-align:center;color:var(--mute)}
.problem{background:#fde8e8;color:#8a1f1f;border:1px solid #f0b4b4;border-radius:8px;padding:8px 12px;margin:0 0 10px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:0 0 16px}
dl.facts dt{color:var(--mute)}
dl.facts dd{margin:0;word-break:break-all}
td.detail{word-break:break-word}
td small{color:var(--mute);margin-left:6px;white-space:nowrap}
.health{margin:0 0 14px}
.alarm{background:#ffd6d6;border:1px solid #e5a0a0;border-radius:8px;padding:8px 12px;margin:0 0 8px;font-weight:600}
.alarm:empty{display:none}
.services{display:flex;flex-wrap:wrap;gap:6px;margin:0 0 8px;padding:0;list-style:none}
.services li{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:4px 10px;font-size:13px}
.services li span{color:var(--mute);margin-left:6px}
.services li.running{border-color:#8fd19e}
.services li.starting{border-color:#f0d27a}
.services li.not-running{border-color:#e5a0a0;background:#fff0f0}
.services li.disabled{opacity:.6}
.about{color:var(--mute);font-size:13px;margin:0 0 8px}
table.pools,table.unseen{margin:0 0 14px}
table.pools{width:auto;min-width:min(100%,640px)}
h2{font-size:15px;margin:18px 0 8px}
@media (max-width:720px){
 main{padding:10px}
 table,thead,tbody,tr,td{display:block;border:0}
 thead{display:none}
 table{background:none}
 tbody tr{background:var(--card);border:1px solid var(--line);border-radius:8px;margin-bottom:8px;padding:6px 10px}
 td{padding:3px 0;border:0;display:flex;gap:8px}
 td::before{content:attr(data-label);color:var(--mute);min-width:92px;font-size:12px;padding-top:2px;font-family:system-ui,sans-serif}
 td:empty{display:none}
 .counts{gap:6px}
 .counts li{min-width:0;flex:1 1 22%;padding:4px 8px}
 .counts b{font-size:16px}
 .counts span{font-size:11px}
 .tools input{flex:1;min-width:0}
}
"""

_INDEX_JS = """
(function(){
  var tbody=document.getElementById('phones'),counts=document.getElementById('counts'),
      problems=document.getElementById('problems'),
      live=document.getElementById('live'),filter=document.getElementById('filter'),
      alarm=document.getElementById('alarm'),services=document.getElementById('services'),
      about=document.getElementById('about'),pools=document.getElementById('pools'),
      unseen=document.getElementById('unseen'),unseenCount=document.getElementById('unseen-count');
  function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;
    if(text!==undefined&&text!==null)e.textContent=String(text);return e;}
  function ago(ts,now){if(!ts)return '';var s=Math.max(0,Math.round(now-ts));
    return s<60?s+' s ago':s<3600?Math.floor(s/60)+' min ago':s<86400?Math.floor(s/3600)+' h ago':Math.floor(s/86400)+' d ago';}
  function until(ts,now){if(!ts)return '';var s=Math.max(0,Math.round(ts-now));
    return 'in '+(s<60?s+' s':s<3600?Math.floor(s/60)+' min':s<86400?Math.floor(s/3600)+' h':Math.floor(s/86400)+' d');}
  function span(s){var d=Math.floor(s/86400),h=Math.floor(s%86400/3600),m=Math.floor(s%3600/60),x=Math.floor(s%60);
    return d?d+' d '+h+' h':h?h+' h '+m+' min':m?m+' min '+x+' s':x+' s';}
  function cell(tr,label,cls,text){var td=el('td',cls,text);td.setAttribute('data-label',label);tr.appendChild(td);return td;}
  function row(p,l,now){
    var tr=el('tr','phone');tr.dataset.href='/phones/'+encodeURI(p.mac);
    tr.dataset.search=[p.mac,p.ip,l.voice_ip,p.vendor,p.model,p.firmware,p.state,p.hostname].join(' ').toLowerCase();
    var a=el('a',null,p.mac);a.href=tr.dataset.href;cell(tr,'MAC','mac').appendChild(a);
    cell(tr,'IP','ip',p.ip||'');
    cell(tr,'Phone','model',[p.vendor,p.model].filter(Boolean).join(' '));
    cell(tr,'Firmware','fw',p.firmware||'');
    cell(tr,'State','').appendChild(el('span','state '+p.state,p.state));
    var ev=cell(tr,'Last event','event',p.last_event||'');
    if(p.last_seen){var t=el('small',null,ago(p.last_seen,now));t.title=new Date(p.last_seen*1000).toLocaleString();ev.appendChild(t);}
    cell(tr,'Files','files',p.files);
    cell(tr,'Registered','reg',p.registered?'yes':(p.state==='registration-failed'?'failed':'no'));
    cell(tr,'Voice IP','ip voice',l.voice_ip||'');
    var ex=cell(tr,'Lease expires','when lease',l.lease_expires?until(l.lease_expires,now):'');
    if(l.lease_expires)ex.title=new Date(l.lease_expires*1000).toLocaleString();
    return tr;}
  function applyFilter(){var q=filter.value.trim().toLowerCase();
    Array.prototype.forEach.call(tbody.rows,function(tr){
      if(tr.dataset.search!==undefined)tr.hidden=q!==''&&tr.dataset.search.indexOf(q)<0;});}
  function renderStatus(st){
    if(!st)return;
    alarm.textContent=st.alarms.length?'ALARM: '+st.alarms.join('; '):'';
    services.textContent='';
    Object.keys(st.services).forEach(function(name){var h=st.services[name];
      var li=el('li','svc '+h.state);li.dataset.service=name;li.appendChild(el('b',null,name));
      li.appendChild(el('span',null,h.state));li.title=[h.detail,h.alarm].filter(Boolean).join(' / ');
      services.appendChild(li);});
    about.textContent='netboot '+st.version+' \u00b7 up '+span(st.uptime)+' \u00b7 '+st.status;
    if(pools){pools.textContent='';st.pools.forEach(function(p){var tr=el('tr');
      [['Interface','',p.interface],['Pool','ip',p.pool],['Bound','',p.bound],['Declined','',p.declined],
       ['Free','',p.free],['Used','',p.percent+' %']].forEach(function(c){cell(tr,c[0],c[1],c[2]);});
      pools.appendChild(tr);});}}
  function renderUnseen(list){
    if(!unseen)return;unseen.textContent='';unseenCount.textContent=list.length;
    list.forEach(function(p){var tr=el('tr');
      [['MAC','mac',p.mac],['Model','',p.model],['Extension','',p.extension],['Name','',p.display_name]]
        .forEach(function(c){cell(tr,c[0],c[1],c[2]);});unseen.appendChild(tr);});}
  function render(data){
    problems.textContent='';
    (data.problems||[]).forEach(function(t){problems.appendChild(el('p','problem',t));});
    counts.textContent='';
    Object.keys(data.counts).forEach(function(s){var li=el('li','count '+s);
      li.appendChild(el('b',null,data.counts[s]));li.appendChild(el('span',null,s));counts.appendChild(li);});
    var total=el('li','count total');total.appendChild(el('b',null,data.phones.length));
    total.appendChild(el('span',null,'phones'));counts.insertBefore(total,counts.firstChild);
    tbody.textContent='';
    var leases=data.leases||{};
    if(!data.phones.length){var tr=el('tr');var td=el('td','empty','No phone seen yet.');td.colSpan=10;tr.appendChild(td);tbody.appendChild(tr);}
    data.phones.forEach(function(p){tbody.appendChild(row(p,leases[p.mac]||{},data.generated));});
    applyFilter();
    renderStatus(data.status);
    renderUnseen(data.unseen||[]);
    live.textContent='updated '+new Date().toLocaleTimeString();
    document.body.dataset.loaded=String(data.phones.length);}
  function poll(){fetch('/api/phones',{credentials:'same-origin',cache:'no-store'})
    .then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.json();})
    .then(render).catch(function(e){live.textContent='update failed: '+e.message;})
    .then(function(){setTimeout(poll,POLL_MS);});}
  tbody.addEventListener('click',function(ev){if(ev.target.closest('a'))return;
    var tr=ev.target.closest('tr.phone');if(tr)window.location.href=tr.dataset.href;});
  filter.addEventListener('input',applyFilter);
  poll();
})();
"""

_TIMELINE_JS = """
(function(){
  var tbody=document.getElementById('events'),live=document.getElementById('live'),
      state=document.getElementById('state'),mac=document.body.dataset.mac;
  function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;
    if(text!==undefined&&text!==null)e.textContent=String(text);return e;}
  function pad(n){return (n<10?'0':'')+n;}
  function stamp(ts){var d=new Date(ts*1000);return d.getFullYear()+'-'+pad(d.getMonth()+1)+'-'+pad(d.getDate())+
    ' '+pad(d.getHours())+':'+pad(d.getMinutes())+':'+pad(d.getSeconds());}
  function render(data){
    if(data.phone){state.textContent=data.phone.state;state.className='state '+data.phone.state;}
    tbody.textContent='';
    data.events.forEach(function(ev){var tr=el('tr');
      [['Time','when',stamp(ev.when)],['Service','',ev.service],
       ['Event','',ev.kind],['Detail','detail',ev.text]].forEach(function(c){
        var td=el('td',c[1],c[2]);td.setAttribute('data-label',c[0]);tr.appendChild(td);});
      tbody.appendChild(tr);});
    live.textContent='updated '+new Date().toLocaleTimeString();}
  function poll(){fetch('/api/phones/'+encodeURIComponent(mac),{credentials:'same-origin',cache:'no-store'})
    .then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.json();})
    .then(render).catch(function(e){live.textContent='update failed: '+e.message;})
    .then(function(){setTimeout(poll,POLL_MS);});}
  setTimeout(poll,POLL_MS);
})();
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _clock(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


def _page(title: str, body: str, script: str, nonce: str, appliance: str, data: str = "") -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        '<link rel="icon" href="data:,">'
        f'<style nonce="{nonce}">{_CSS}</style></head>'
        f"<body{data}><header><h1>{_e(appliance)}</h1>"
        f'<span class="sub">{_e(title)}</span><a href="/">all phones</a>'
        '<a href="/metrics">metrics</a></header>'
        f"<main>{body}</main>"
        f'<script nonce="{nonce}">{script.replace("POLL_MS", str(POLL_MS))}</script>'
        "</body></html>\n"
    )


def _registered(phone: Phone) -> str:
    if phone.state == "registered":
        return "yes"
    return "failed" if phone.state == "registration-failed" else "no"


def _ago(ts: float | None, now: float) -> str:
    if not ts:
        return ""
    s = max(0, round(now - ts))
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago" if s < 86400 else f"{s // 86400} d ago"


def _until(ts: float | None, now: float) -> str:
    if not ts:
        return ""
    s = max(0, round(ts - now))
    if s < 60:
        return f"in {s} s"
    if s < 3600:
        return f"in {s // 60} min"
    return f"in {s // 3600} h" if s < 86400 else f"in {s // 86400} d"


def render_health(status: Mapping[str, Any] | None) -> str:
    """The services, the alarm, version and uptime, and the pools (first paint;
    the script keeps them current)."""
    if status is None:
        return ""
    alarms = status.get("alarms") or []
    alarm = "ALARM: " + "; ".join(alarms) if alarms else ""
    items = []
    for name, h in status["services"].items():
        title = " / ".join(x for x in (h["detail"], h["alarm"]) if x)
        items.append(
            f'<li class="svc {_e(h["state"])}" data-service="{_e(name)}" title="{_e(title)}">'
            f"<b>{_e(name)}</b><span>{_e(h['state'])}</span></li>"
        )
    about = (
        f"netboot {status['version']} \u00b7 up {uptime_text(status['uptime'])}"
        f" \u00b7 {status['status']}"
    )
    pools = "".join(
        f'<tr><td data-label="Interface">{_e(p["interface"])}</td>'
        f'<td class="ip" data-label="Pool">{_e(p["pool"])}</td>'
        f'<td data-label="Bound">{p["bound"]}</td><td data-label="Declined">{p["declined"]}</td>'
        f'<td data-label="Free">{p["free"]}</td><td data-label="Used">{p["percent"]} %</td></tr>'
        for p in status["pools"]
    )
    pool_table = (
        '<table class="pools"><thead><tr><th>Interface</th><th>Pool</th><th>Bound</th>'
        "<th>Declined</th><th>Free</th><th>Used</th></tr></thead>"
        f'<tbody id="pools">{pools}</tbody></table>'
        if status["pools"]
        else ""
    )
    return (
        '<section class="health">'
        f'<div class="alarm" id="alarm" role="alert">{_e(alarm)}</div>'
        f'<ul class="services" id="services">{"".join(items)}</ul>'
        f'<p class="about" id="about">{_e(about)}</p>{pool_table}</section>'
    )


def render_index(
    phones: list[Phone],
    appliance: str,
    nonce: str,
    now: float | None = None,
    *,
    problems: list[str] | None = None,
    status: Mapping[str, Any] | None = None,
    leases: Mapping[str, Mapping[str, Any]] | None = None,
    unseen: list[dict[str, str]] | None = None,
) -> str:
    """The phones page; `problems` (state_dir cannot be written, ...) on top."""
    now = time.time() if now is None else now
    leases = leases or {}
    counts = count_states(phones)
    items = [f'<li class="count total"><b>{len(phones)}</b><span>phones</span></li>']
    items += [
        f'<li class="count {_e(s)}"><b>{n}</b><span>{_e(s)}</span></li>' for s, n in counts.items()
    ]
    rows = []
    for p in phones:
        j = phone_json(p)
        lease = leases.get(p.mac, {})
        href = "/phones/" + _e(p.mac)
        search = " ".join(str(j[k] or "") for k in ("mac", "ip", "vendor", "model", "firmware"))
        search += " " + str(lease.get("voice_ip") or "")
        rows.append(
            f'<tr class="phone" data-href="{href}" data-search="{_e(search.lower())}">'
            f'<td class="mac" data-label="MAC"><a href="{href}">{_e(p.mac)}</a></td>'
            f'<td class="ip" data-label="IP">{_e(p.ip)}</td>'
            f'<td class="model" data-label="Phone">{_e(" ".join(x for x in (p.vendor, p.model) if x))}</td>'
            f'<td class="fw" data-label="Firmware">{_e(p.firmware)}</td>'
            f'<td data-label="State"><span class="state {_e(p.state)}">{_e(p.state)}</span></td>'
            f'<td class="event" data-label="Last event">{_e(p.last_event)}'
            f'<small title="{_e(_clock(p.last_seen))}">{_ago(p.last_seen, now)}</small></td>'
            f'<td class="files" data-label="Files">{p.files}</td>'
            f'<td class="reg" data-label="Registered">{_registered(p)}</td>'
            f'<td class="ip voice" data-label="Voice IP">{_e(lease.get("voice_ip"))}</td>'
            f'<td class="when lease" data-label="Lease expires" '
            f'title="{_e(_clock(lease.get("lease_expires")))}">'
            f"{_until(lease.get('lease_expires'), now)}</td></tr>"
        )
    if not rows:
        rows.append('<tr><td class="empty" colspan="10">No phone seen yet.</td></tr>')
    unseen_rows = "".join(
        f'<tr><td class="mac" data-label="MAC">{_e(u["mac"])}</td>'
        f'<td data-label="Model">{_e(u["model"])}</td>'
        f'<td data-label="Extension">{_e(u["extension"])}</td>'
        f'<td data-label="Name">{_e(u["display_name"])}</td></tr>'
        for u in unseen or []
    )
    unseen_section = (
        f'<h2>In the inventory, never seen: <span id="unseen-count">{len(unseen or [])}</span></h2>'
        '<table class="unseen"><thead><tr><th>MAC</th><th>Model</th><th>Extension</th>'
        f'<th>Name</th></tr></thead><tbody id="unseen">{unseen_rows}</tbody></table>'
        if unseen is not None
        else ""
    )
    banner = "".join(f'<p class="problem">{_e(line)}</p>' for line in problems or ())
    body = (
        f'<div id="problems">{banner}</div>'
        + render_health(status)
        + f'<ul class="counts" id="counts">{"".join(items)}</ul>'
        '<div class="tools"><input id="filter" type="search" placeholder="Filter: MAC, IP, model, state"'
        ' aria-label="Filter phones"><span class="live" id="live"></span></div>'
        "<table><thead><tr><th>MAC</th><th>IP</th><th>Phone</th><th>Firmware</th><th>State</th>"
        "<th>Last event</th><th>Files</th><th>Registered</th><th>Voice IP</th>"
        "<th>Lease expires</th></tr></thead>"
        f'<tbody id="phones">{"".join(rows)}</tbody></table>' + unseen_section
    )
    return _page("Phones", body, _INDEX_JS, nonce, appliance)


def render_timeline(phone: Phone, events: list[TimelineEntry], appliance: str, nonce: str) -> str:
    j = phone_json(phone)
    facts = [
        ("MAC", phone.mac),
        ("IP", phone.ip),
        ("Vendor", phone.vendor),
        ("Model", phone.model),
        ("Firmware", phone.firmware),
        ("Hostname", phone.hostname),
        ("Vendor class", phone.vendor_class),
        ("Provisioning URL", j["url"]),
        ("State reason", phone.state_detail),
        ("Files fetched", phone.files),
        ("First seen", _clock(phone.first_seen)),
        ("Last seen", _clock(phone.last_seen)),
    ]
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts if v not in (None, ""))
    dl = (
        f'<dt>State</dt><dd><span id="state" class="state {_e(phone.state)}">{_e(phone.state)}</span></dd>'
        + dl
    )
    rows = []
    for ev in events:
        ej = event_json(ev)
        rows.append(
            f'<tr><td class="when" data-label="Time">{_e(_clock(ev.when))}</td>'
            f'<td data-label="Service">{_e(ev.service)}</td>'
            f'<td data-label="Event">{_e(ev.kind)}</td>'
            f'<td class="detail" data-label="Detail">{_e(ej["text"])}</td></tr>'
        )
    body = (
        f'<dl class="facts">{dl}</dl>'
        '<div class="tools"><span class="live" id="live"></span></div>'
        "<table><thead><tr><th>Time</th><th>Service</th><th>Event</th><th>Detail</th></tr></thead>"
        f'<tbody id="events">{"".join(rows)}</tbody></table>'
    )
    return _page(
        f"Phone {phone.mac}",
        body,
        _TIMELINE_JS,
        nonce,
        appliance,
        data=f' data-mac="{_e(phone.mac)}"',
    )


# ---------------------------------------------------------------- routes

READER = web.AppKey("netboot_status_reader", StatusReader)


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        denied = require_auth(request)
        if denied is not None:
            return denied
        response = await handler(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return guarded


def _html(text: str, nonce: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return response


def _mac_or_none(text: str) -> str | None:
    try:
        return normalize_mac(text)
    except ValueError:
        return None


# What browsers ask for by themselves: answered here, quietly, so that a laptop
# opening the status page is never recorded as a phone fetching a file.
_BROWSER_NOISE = r"favicon\.ico|apple-touch-icon[\w.-]*\.png|browserconfig\.xml|site\.webmanifest"
ROBOTS = "User-agent: *\nDisallow: /\n"


def _read_seen(conn: sqlite3.Connection) -> set[str]:
    return tolerant(lambda c: {str(r[0]) for r in c.execute("SELECT mac FROM phones")}, conn, set())


def add_routes(app: web.Application, ctx: Context) -> None:
    reader = StatusReader(
        ctx.config.appliance.state_dir,
        ctx.registry.connection if ctx.registry.storage == "memory" else None,
    )
    app[READER] = reader
    appliance = ctx.config.appliance.name
    inventory = InventoryCache(ctx.config.phones.inventory)
    has_inventory = ctx.config.phones.inventory is not None
    metrics.prepare_labels()

    async def close_reader(_app: web.Application) -> None:
        await reader.close()

    app.on_cleanup.append(close_reader)

    def unseen(conn: sqlite3.Connection) -> list[dict[str, str]] | None:
        """Inventory phones never seen (worker thread: reads the CSV when it changed)."""
        if not has_inventory:
            return None
        return unseen_inventory(inventory.get(), _read_seen(conn))

    def overview(now: float) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The appliance's state and the leases per MAC (on the loop, where they change)."""
        leases = phone_leases(ctx.config, ctx.leases, now) if ctx.config.dhcp.enabled else {}
        return appliance_status(ctx, now), leases

    async def index(request: web.Request) -> web.StreamResponse:
        nonce = secrets.token_urlsafe(16)
        now = time.time()
        problems = HEALTH.lines()
        status, leases = overview(now)

        def render(conn: sqlite3.Connection) -> str:
            return render_index(
                _read_phones(conn),
                appliance,
                nonce,
                now,
                problems=problems,
                status=status,
                leases=leases,
                unseen=unseen(conn),
            )

        page = await reader.run(render)
        return _html(page, nonce)

    def _timeline(
        conn: sqlite3.Connection, mac: str | None
    ) -> tuple[Phone | None, list[TimelineEntry]]:
        if mac is None:
            return None, []
        phone = _read_phone(conn, mac)
        return phone, _read_timeline(conn, mac) if phone is not None else []

    async def timeline(request: web.Request) -> web.StreamResponse:
        nonce = secrets.token_urlsafe(16)
        mac = _mac_or_none(request.match_info["mac"])

        def render(conn: sqlite3.Connection) -> str | None:
            phone, events = _timeline(conn, mac)
            return None if phone is None else render_timeline(phone, events, appliance, nonce)

        page = await reader.run(render)
        if page is None:
            body = f"<p class=empty>No phone {_e(request.match_info['mac'])} in the registry.</p>"
            return _html(_page("Unknown phone", body, "", nonce, appliance), nonce, status=404)
        return _html(page, nonce)

    async def api_phones(request: web.Request) -> web.StreamResponse:
        status, leases = overview(time.time())

        def read(conn: sqlite3.Connection) -> tuple[bytes, list[dict[str, str]] | None]:
            return reader.phones_json(conn), unseen(conn)

        phones, unseen_list = await reader.run(read)
        extra = _dumps({"status": status, "leases": leases, "unseen": unseen_list or []})
        body = phones[:-1] + b"," + extra[1:].encode()
        return web.Response(body=body, content_type="application/json")

    async def api_status(request: web.Request) -> web.StreamResponse:
        status, _ = overview(time.time())
        status["unseen_inventory"] = await reader.run(unseen)
        return web.Response(body=_dumps(status).encode(), content_type="application/json")

    async def api_phone(request: web.Request) -> web.StreamResponse:
        mac = _mac_or_none(request.match_info["mac"])

        def render(conn: sqlite3.Connection) -> bytes | None:
            phone, events = _timeline(conn, mac)
            if phone is None:
                return None
            data = {"phone": phone_json(phone), "events": [event_json(e) for e in events]}
            return _dumps(data).encode()

        body = await reader.run(render)
        if body is None:
            return web.json_response({"error": "unknown phone"}, status=404)
        return web.Response(body=body, content_type="application/json")

    async def scrape(request: web.Request) -> web.StreamResponse:
        now = time.time()
        metrics.DHCP_LEASES.set(
            sum(1 for lease in ctx.leases if lease.state == "bound" and lease.expires > now)
        )
        for name, health in services_health(ctx).items():
            metrics.SERVICE_RUNNING.labels(name).set(1 if health["state"] == "running" else 0)
        counts = await reader.run(_read_counts)
        for state in {s.value for s in PhoneState} | set(counts):
            metrics.PHONES.labels(state).set(counts.get(state, 0))
        # Prometheus text 0.0.4, or OpenMetrics when the scraper asks for it.
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        response = web.Response(body=encode(metrics.REGISTRY))
        response.headers["Content-Type"] = content_type
        return response

    async def browser_noise(request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, text="404: not a provisioning file\n")

    async def robots(request: web.Request) -> web.StreamResponse:
        return web.Response(text=ROBOTS, content_type="text/plain")

    app.router.add_get("/", _guarded(index))
    app.router.add_get("/phones/{mac}", _guarded(timeline))
    app.router.add_get("/api/phones", _guarded(api_phones))
    app.router.add_get("/api/phones/{mac}", _guarded(api_phone))
    app.router.add_get("/api/status", _guarded(api_status))
    app.router.add_get("/metrics", _guarded(scrape))
    app.router.add_get("/robots.txt", robots)
    app.router.add_get(f"/{{noise:(?:{_BROWSER_NOISE})}}", browser_noise)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, separators=(",", ":"))
