#!/usr/bin/env bash
# Open a sweep folder's journal.log in optuna-dashboard and take a picture of its study page.
#
#   scripts/dashboard_check.sh STUDY_DIR OUT_PNG
#
# 1. starts `optuna-dashboard STUDY_DIR/journal.log --host 127.0.0.1 --port P` (P a free port)
#    from the venv $OPTUNA_VENV (default /tmp/ov; `pip install optuna optuna-dashboard`) and
#    polls GET /api/studies until it answers (at most $DASHBOARD_TRIES tries, 0.25 s apart);
# 2. GET /api/studies -> {"study_summaries": [{"study_id", "study_name", "directions", ...}]}
#    must list the study named after STUDY_DIR's file name, maximizing;
#    GET /api/studies/ID -> {"name", "directions", "trials": [{"number", "state", ...}],
#    "best_trials", ...} must hold at least one trial (the count is printed);
# 3. renders http://127.0.0.1:P/dashboard/studies/ID in headless Chromium ($CHROMIUM, default
#    /usr/bin/chromium; `apt-get install -y chromium`) into OUT_PNG, which must be a 1400x1000
#    PNG that is not blank, and whose DOM shows the study loaded (header "NAME (id=ID)", chart
#    points).
# The dashboard is stopped on exit, failure included. One line on failure, exit status 1.
set -euo pipefail
prog=dashboard_check.sh
die() { echo "$prog: FAIL: $*" >&2; exit 1; }
[ $# -eq 2 ] || { echo "usage: $prog STUDY_DIR OUT_PNG" >&2; exit 2; }
study_dir=$1
out_png=$2
venv=${OPTUNA_VENV:-/tmp/ov}
chromium=${CHROMIUM:-/usr/bin/chromium}
tries=${DASHBOARD_TRIES:-240}
py="$venv/bin/python"

# optuna-dashboard creates a missing journal file: look first.
[ -f "$study_dir/journal.log" ] || die "$study_dir/journal.log does not exist"
[ -x "$venv/bin/optuna-dashboard" ] || die "no $venv/bin/optuna-dashboard (set OPTUNA_VENV to a venv with optuna-dashboard)"
command -v curl >/dev/null || die "curl is not installed"
[ -x "$chromium" ] || die "no Chromium at $chromium (apt-get install -y chromium, or set CHROMIUM)"
name=$(basename "$(cd "$study_dir" && pwd)")
journal="$(cd "$study_dir" && pwd)/journal.log"

work=$(mktemp -d)
dash_pid=""
cleanup() {
  if [ -n "$dash_pid" ]; then
    kill "$dash_pid" 2>/dev/null || true
    wait "$dash_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap stops the dashboard on a signal too

# A free port: bind port 0 and read what the kernel gave.
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/optuna-dashboard" "$journal" --port "$port" --host 127.0.0.1 >"$work/dashboard.log" 2>&1 &
dash_pid=$!
base="http://127.0.0.1:$port"

# Wait for the dashboard to answer (it replays the whole journal before it listens).
up=""
for _ in $(seq 1 "$tries"); do
  if curl -sf "$base/api/studies" -o "$work/studies.json"; then up=1; break; fi
  kill -0 "$dash_pid" 2>/dev/null || die "optuna-dashboard exited: $(tail -n 1 "$work/dashboard.log")"
  sleep 0.25
done
[ -n "$up" ] || die "optuna-dashboard did not answer $base/api/studies after $tries tries: $(tail -n 1 "$work/dashboard.log")"

# The study by name, then its trials.
study_id=$( ("$py" - "$work/studies.json" "$name" <<'EOF'
import json, sys
studies = json.load(open(sys.argv[1]))["study_summaries"]
hits = [s for s in studies if s["study_name"] == sys.argv[2]]
if len(hits) != 1:
    sys.exit(f"/api/studies lists {[s['study_name'] for s in studies]}, not one study named {sys.argv[2]!r}")
if hits[0]["directions"] != ["maximize"]:
    sys.exit(f"/api/studies: study {sys.argv[2]!r} has directions {hits[0]['directions']}, want ['maximize']")
print(hits[0]["study_id"])
EOF
) 2>&1) || die "$(tail -n 1 <<<"$study_id")"
if ! curl -sf "$base/api/studies/$study_id" -o "$work/study.json"; then
  body=$(curl -s "$base/api/studies/$study_id" | head -c 200)
  die "GET /api/studies/$study_id failed ($body): $(grep -m 1 -E 'Exception|Error' "$work/dashboard.log" || tail -n 1 "$work/dashboard.log")"
fi
summary=$( ("$py" - "$work/study.json" "$name" "$study_id" <<'EOF'
import collections, json, sys
d = json.load(open(sys.argv[1]))
if d["name"] != sys.argv[2]:
    sys.exit(f"/api/studies/{sys.argv[3]} is study {d['name']!r}, want {sys.argv[2]!r}")
trials = d["trials"]
if not trials:
    sys.exit(f"/api/studies/{sys.argv[3]} lists no trial")
states = collections.Counter(t["state"] for t in trials)
best = ", ".join(f"trial {t['number']} value {t['values'][0]}" for t in d["best_trials"]) or "none"
print(f"{len(trials)} trials ({', '.join(f'{n} {s}' for s, n in sorted(states.items()))}), best: {best}")
EOF
) 2>&1) || die "$(tail -n 1 <<<"$summary")"
echo "dashboard: $base/api/studies/$study_id: study '$name': $summary"

# The study page, rendered. --virtual-time-budget lets the page's fetches and charts finish.
url="$base/dashboard/studies/$study_id"
rm -f "$out_png"
mkdir -p "$(dirname "$out_png")"
out_abs="$(cd "$(dirname "$out_png")" && pwd)/$(basename "$out_png")"
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/chromium" --window-size=1400,1000 --virtual-time-budget=8000 \
  --dump-dom --screenshot="$out_abs" "$url" >"$work/dom.html" 2>"$work/chromium.log" \
  || die "chromium failed on $url: $(grep -v '^\[' "$work/chromium.log" | tail -n 1)"
[ -s "$out_abs" ] || die "chromium wrote no $out_png"

# The page loaded the study: its header reads "NAME (id=ID)" (a study it could not load reads
# "Study #ID"), and the history chart drew points.
dom=$( ("$py" - "$work/dom.html" "$name" "$study_id" <<'EOF'
import html, sys
dom = open(sys.argv[1], encoding="utf-8", errors="replace").read()
title = f">{html.escape(sys.argv[2], quote=False)} (id={sys.argv[3]})<"
if title not in dom:
    sys.exit(f"the rendered page does not show the study ({title[1:-1]!r} not in its DOM; {len(dom)} bytes)")
points = dom.count('<g class="point"')
if points == 0:
    sys.exit("the rendered page has no chart points")
print(f"header {title[1:-1]!r}, {points} chart points")
EOF
) 2>&1) || die "$(tail -n 1 <<<"$dom")"

# Non-trivial: a 1400x1000 PNG with many different rows (a blank page has nearly all rows alike).
check=$( ("$py" - "$out_abs" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("not a PNG")
pos, idat, ihdr = 8, [], None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        ihdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat.append(body)
    pos += 12 + n
w, h, depth, color = ihdr[:4]
if (w, h) != (1400, 1000):
    sys.exit(f"{w}x{h}, want 1400x1000")
channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
if depth != 8 or channels is None:
    print(f"{w}x{h}, {len(data)} bytes")  # unusual layout: size only
    sys.exit(0 if len(data) > 20000 else f"only {len(data)} bytes")
raw = zlib.decompress(b"".join(idat))
stride = w * channels + 1
rows = {raw[i * stride:(i + 1) * stride] for i in range(h)}
if len(rows) < 50 or len(data) < 20000:
    sys.exit(f"looks blank: {len(rows)} distinct rows of {h}, {len(data)} bytes")
print(f"{w}x{h}, {len(data)} bytes, {len(rows)} distinct rows of {h}")
EOF
) 2>&1) || die "$out_png: $(tail -n 1 <<<"$check")"
echo "ok: $url rendered into $out_png ($check; $dom)"
