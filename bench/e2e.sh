#!/bin/sh
# End-to-end benchmark: `netboot lab --phones N --json` (default 1000) and the
# figures that matter for a site power-on: time until every phone is
# provisioned, p50/p99 per phone, failures (must be 0) and netboot's peak RSS
# (VmHWM from /proc, read just before the lab stops it).
# Targets: 1000 phones < 30 s, no failure, RSS < 150 MB.  Needs root.
#   sudo bench/e2e.sh [PHONES] [extra `netboot lab` arguments]
set -eu
cd "$(dirname "$0")/.."
PHONES="${1:-1000}"
[ $# -gt 0 ] && shift
PYTHON="${PYTHON:-/opt/netboot/bin/python}"
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
START=$(date +%s.%N)
set +e
"$PYTHON" -m netboot lab --phones "$PHONES" --json "$@" >"$OUT"
CODE=$?
set -e
END=$(date +%s.%N)
"$PYTHON" - "$OUT" "$START" "$END" "$CODE" <<'PY'
import json, sys
path, start, end, code = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
try:
    d = json.load(open(path))
except ValueError:
    print(f"netboot lab exited {code} without results"); sys.exit(1)
rss_mb = (d["server_peak_rss_kb"] or 0) / 1024
ok_time = d["fleet_seconds"] < 30 if d["phones"] >= 1000 else True
print(f"phones                 {d['phones']} ({', '.join(['dhcp', *d['services']])})")
print(f"all provisioned after  {d['fleet_seconds']:.2f} s   (target < 30 s for 1000: {'ok' if ok_time and not d['failed'] else 'MISSED'})")
print(f"per phone              p50 {d['p50_seconds']:.3f} s   p99 {d['p99_seconds']:.3f} s")
print(f"failures               {d['failed']}   (must be 0)")
print(f"netboot peak RSS       {rss_mb:.1f} MB   (target < 150 MB: {'ok' if rss_mb < 150 else 'MISSED'})")
voice = d.get("voice_vlan")
if voice:
    print(f"voice VLAN leases      {voice['leased']}/{d['phones']}   (VLAN {voice['vlan']}, {voice['subnet']} on {voice['interface']}; "
          f"sidecar frames in {voice['sidecar_frames_in']}, out {voice['sidecar_frames_out']}, dropped {voice['sidecar_dropped']})")
print(f"lab setup              {d['setup_seconds']:.2f} s; whole command {end - start:.2f} s (exit {code})")
for note in d.get("notes", []):
    print(f"note: {note}")
for r in d["results"]:
    if r["result"] != "ok":
        print(f"FAILED {r['mac']} {r['model']}: {r['error']}")
sys.exit(0 if code == 0 and d["failed"] == 0 and rss_mb < 150 and ok_time else 1)
PY
