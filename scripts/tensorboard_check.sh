#!/usr/bin/env bash
# Serve a sweep folder with `tensorboard --logdir STUDY_DIR` and check what its routes answer:
#   - /data/plugin/scalars/tags lists every trial's run with its validation/accuracy series;
#   - /data/plugin/hparams/experiment names the study's swept fields as hyper-parameters;
#   - /data/plugin/hparams/session_groups has one session per trial.
#
#   scripts/tensorboard_check.sh STUDY_DIR [EXPECTED_TRIALS]
#
# TENSORBOARD_VENV: a venv with `pip install tensorboard` (default: the CI venv's, else /tmp/tbv).
# It waits for the server's answers (bounded tries), never for a fixed time.
set -euo pipefail
study=${1:?usage: tensorboard_check.sh STUDY_DIR [EXPECTED_TRIALS]}
expect=${2:-}
venv=${TENSORBOARD_VENV:-/tmp/tbv}
die() { echo "tensorboard_check.sh: FAIL: $*" >&2; exit 1; }
[ -d "$study/trials" ] || die "$study: not a sweep folder (no trials/)"
[ -x "$venv/bin/tensorboard" ] || die "no $venv/bin/tensorboard (set TENSORBOARD_VENV to a venv with tensorboard)"
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
"$venv/bin/tensorboard" --logdir "$study" --host 127.0.0.1 --port "$port" --reload_interval 0 >"$work/tb.log" 2>&1 &
tb=$!
trap 'kill "$tb" 2>/dev/null; wait "$tb" 2>/dev/null; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port/data/plugin"
tags=""
for _ in $(seq 1 480); do
  kill -0 "$tb" 2>/dev/null || die "tensorboard exited: $(tail -n 3 "$work/tb.log")"
  if tags=$(curl -sf "$base/scalars/tags") && [ "$(printf '%s' "$tags" | "$venv/bin/python" -c 'import json, sys; print(len(json.load(sys.stdin)))')" != 0 ]; then
    break
  fi
  tags=""
  sleep 0.25
done
[ -n "$tags" ] || die "no scalars from $base/scalars/tags after 120 s: $(tail -n 3 "$work/tb.log")"
experiment=$(curl -sf -X POST -H 'Content-Type: application/json' -d '{"experimentName": ""}' "$base/hparams/experiment") || die "hparams/experiment did not answer"
groups=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"], "startIndex": 0, "sliceSize": 1000}' \
  "$base/hparams/session_groups") || die "hparams/session_groups did not answer"
TAGS=$tags EXPERIMENT=$experiment GROUPS_JSON=$groups "$venv/bin/python" - "$study" "$expect" <<'PY'
import csv, json, os, sys
study, expect = sys.argv[1], sys.argv[2]
tags, experiment, groups = json.loads(os.environ["TAGS"]), json.loads(os.environ["EXPERIMENT"]), json.loads(os.environ["GROUPS_JSON"])
def fail(m):
    print(f"tensorboard_check.sh: FAIL: {m}", file=sys.stderr)
    sys.exit(1)
header = next(csv.reader(open(os.path.join(study, "leaderboard.csv"))))
end = next(i for i, h in enumerate(header) if h in ("epochs", "trained"))
fields = header[2:end]
trials = sorted(d for d in os.listdir(os.path.join(study, "trials")) if d.isdigit())
runs = {r for r, t in tags.items() if "validation/accuracy" in t}
missing = [t for t in trials if not any(r.endswith(f"trials/{t}") or f"trials/{t}/" in r for r in runs)]
if missing:
    fail(f"trials without a validation/accuracy series: {missing}; runs: {sorted(tags)}")
names = {h["name"] for h in experiment.get("hparamInfos", [])}
if not set(fields) <= names:
    fail(f"hparams/experiment names {sorted(names)}, want the swept fields {fields}")
sessions = sum(len(g.get("sessions", [])) for g in groups.get("sessionGroups", []))
if sessions != len(trials) or (expect and sessions != int(expect)):
    fail(f"{sessions} hparams sessions for {len(trials)} trials (expected {expect or len(trials)})")
print(f"ok: tensorboard serves {len(trials)} trials' scalars and {sessions} hparams sessions over {', '.join(fields)}")
PY
