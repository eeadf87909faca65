#!/usr/bin/env bash
# Run the two job-array recipes of docs/experiments.md ("On a cluster"), as written, on a
# one-node Slurm cluster (scripts/slurm-single-node.sh), with small studies on the real data:
#   1. --shard: the leaderboard and the refit equal a local run of the same grid;
#   2. --shard: a failed shard keeps the `afterok` collect job from running (no leaderboard);
#   3. --join: a 3-task array on one tpe study, then the collect job: the journal holds trials
#      0..5 once each, every one COMPLETE or FAIL, trained by more than one task; every task
#      ended as a joined process does; the leaderboard has a row per trial and best/ the refit;
#   4. every Slurm process the check started is stopped at the end.
# Needs root, Debian's slurm-wlm and munge, the data (dataset-fashion-mnist), python3, and
# `d2l-mlp` on PATH (e.g. `cargo install --path . --locked`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
data=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
command -v d2l-mlp >/dev/null || { echo "slurm_check.sh: d2l-mlp is not on PATH; cargo install --path . --locked"; exit 1; }
[ -d "$data" ] || { echo "slurm_check.sh: no data in $data; apt-get install dataset-fashion-mnist"; exit 1; }
# The shard recipe asks --cpus-per-task=2, and the join check needs two of its one-CPU tasks
# running at once: a one-CPU node could do neither.
[ "$(nproc)" -ge 2 ] || { echo "slurm_check.sh: the recipe's tasks ask 2 CPUs (--cpus-per-task=2); this machine has $(nproc)"; exit 1; }
export FASHION_MNIST_DIR=$data D2L_MLP_BACKEND=flex
work=$(mktemp -d)
cluster="$repo/scripts/slurm-single-node.sh"
export SLURM_LOCAL_DIR="$work/slurm"
trap '"$cluster" stop >/dev/null || true' EXIT

# The two command lines (`$ jobs=...` and `$ sbatch --dependency...`) of each job-array block of
# the doc, exactly as written there: recipe_of FLAG prints those of the ```console block whose
# jobs= line names FLAG (--shard or --join).
recipe_of() {
  awk -v flag="$1" '
    /^```console$/ { inside = 1; n = 0; hit = 0; next }
    /^```$/ && inside { if (hit) for (i = 1; i <= n; i++) print lines[i]; inside = 0; next }
    inside && /^\$ (jobs=|sbatch --dependency)/ {
      line = substr($0, 3); lines[++n] = line
      if (line ~ /^jobs=/ && index(line, " " flag " ")) hit = 1
    }' "$repo/docs/experiments.md"
}
mapfile -t recipe < <(recipe_of --shard)
mapfile -t joined < <(recipe_of --join)
for flag in --shard --join; do
  if [ "$flag" = --shard ]; then lines=("${recipe[@]}"); else lines=("${joined[@]}"); fi
  if [ "${#lines[@]}" != 2 ] || [[ "${lines[0]}" != jobs=* ]] || [[ "${lines[1]}" != "sbatch --dependency"* ]]; then
    echo "slurm_check.sh: expected in docs/experiments.md one console block with a jobs= line naming $flag, then an sbatch --dependency line; found ${#lines[@]} line(s):"
    [ "${#lines[@]}" = 0 ] || printf '  %s\n' "${lines[@]}"
    exit 1
  fi
done
printf 'shard recipe: %s\n' "${recipe[@]}"
printf 'join recipe: %s\n' "${joined[@]}"

"$cluster" start

wait_idle() {  # wait until no job is left, at most $1 seconds
  for _ in $(seq 1 $(( $1 * 2 ))); do
    [ -z "$(squeue -h -o %i)" ] && return 0
    sleep 0.5
  done
  echo "slurm_check.sh: jobs still queued after $1 s:"; squeue; return 1
}

cd "$work"
cat > small.toml <<'TOML'
method = "grid"
val_size = 5000
[fixed]
epochs = 1
hidden = [32]
[space]
lr = [0.05, 0.1, 0.2]
seed = [1, 2]
TOML

# 1. The shard recipe against a local run.
study=$work/small.toml out=$work/cluster n=3
began=$(date +%s)
eval "${recipe[0]}"
eval "${recipe[1]}"
wait_idle 600
echo "cluster run: $(( $(date +%s) - began )) s"
[ -f "$out/leaderboard.csv" ] || { echo "slurm_check.sh: the collect job wrote no leaderboard"; cat slurm-*.out; exit 1; }
d2l-mlp sweep "$study" --out "$work/local" > local.log
strip() { cut -d, -f1-$(( $(head -1 "$1" | tr ',' '\n' | grep -n '^seconds$' | cut -d: -f1) - 1 )) "$1"; }
diff <(strip "$out/leaderboard.csv") <(strip "$work/local/leaderboard.csv") \
  || { echo "slurm_check.sh: the cluster's leaderboard differs from the local run's"; exit 1; }
diff <(cut -d, -f1-5 "$out/best/metrics.csv") <(cut -d, -f1-5 "$work/local/best/metrics.csv") \
  || { echo "slurm_check.sh: the cluster's refit differs from the local run's"; exit 1; }
echo "1/4 the job array's leaderboard and refit equal a local run's"

# 2. A failed shard: the shards cannot find their data, so afterok never lets the collect run.
study=$work/small.toml out=$work/failed n=3
FASHION_MNIST_DIR=$work/no-data
eval "${recipe[0]}"
eval "${recipe[1]}"
export FASHION_MNIST_DIR=$data
reason=""
for _ in $(seq 1 240); do
  reason=$(squeue -h -o %r 2>/dev/null | sort -u | tr '\n' ' ')
  [[ "$reason" == *DependencyNeverSatisfied* ]] && break
  sleep 0.5
done
[[ "$reason" == *DependencyNeverSatisfied* ]] || { echo "slurm_check.sh: the collect job is not held back (reason: '$reason')"; squeue; exit 1; }
[ ! -f "$out/leaderboard.csv" ] || { echo "slurm_check.sh: a leaderboard appeared although a shard failed"; exit 1; }
scancel --user="$(id -un)"
wait_idle 60
echo "2/4 a failed shard keeps the collect job from running ($reason)"

# 3. The join recipe: the three tasks of one array run one tpe study together (a node of 2 CPUs
# runs two one-CPU tasks at once), then the collect job ranks it and refits the best.
cat > tpe.toml <<'TOML'
method = "tpe"
trials = 6
seed = 0
val_size = 128
[tpe]
startup = 2
[fixed]
epochs = 2
batch_size = 32
[space]
lr = { log_uniform = [0.01, 0.5] }
width = { int_log_uniform = [8, 32] }
TOML
study=$work/tpe.toml out=$work/joined n=3
began=$(date +%s)
eval "${joined[0]}"
eval "${joined[1]}"
wait_idle 600
echo "joined run: $(( $(date +%s) - began )) s"
tasks=()
for k in $(seq 0 $(( n - 1 ))); do tasks+=("slurm-${jobs}_$k.out"); done
show() { for f in "${tasks[@]}" $(ls slurm-*.out | grep -v "^slurm-${jobs}_"); do echo "== $f"; cat "$f" || true; done; }
for f in "${tasks[@]}"; do
  grep -qE '^(this process is done; [0-9]+ trial\(s\) are still running elsewhere|the study is finished)' "$f" 2>/dev/null \
    || { echo "slurm_check.sh: $f does not end the way a joined process does"; show; exit 1; }
done
grep -q '^the study is finished' "${tasks[@]}" || { echo "slurm_check.sh: no task saw the study finished"; show; exit 1; }
[ -f "$out/best/model.bpk" ] || { echo "slurm_check.sh: the collect job wrote no refit in $out/best"; show; exit 1; }
python3 - "$out" 6 2 <<'PY' || { show; exit 1; }
import csv, json, sys
out, n, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# Optuna's journal, replayed as Optuna does: op 4 creates a trial (ids in order of creation, its
# state RUNNING unless given), 6 sets a state (ignored once the trial is finished), 8 sets a user
# attr, 9 a system attr. States: RUNNING 0, COMPLETE 1, PRUNED 2, FAIL 3, WAITING 4.
names = {0: "RUNNING", 1: "COMPLETE", 2: "PRUNED", 3: "FAIL", 4: "WAITING"}
state, creator, owner, folder = {}, {}, {}, {}
for line in open(f"{out}/journal.log"):
    if not line.endswith("\n"):
        continue
    op = json.loads(line)
    code, tid = op["op_code"], op.get("trial_id")
    if code == 4:
        tid = len(state)
        state[tid] = op.get("state", 0)
        creator[tid] = op["worker_id"].rsplit("-", 1)[0]  # the process's uuid, without its thread
        continue
    if tid is not None and tid not in state:
        sys.exit(f"slurm_check.sh: journal op {code} names trial {tid}, which was never created")
    if code == 6 and state[tid] not in (1, 2, 3):
        state[tid] = op["state"]
    elif code == 8 and "folder" in op["user_attr"]:
        folder[tid] = op["user_attr"]["folder"]
    elif code == 9 and "d2l:owner" in op["system_attr"]:
        owner[tid] = op["system_attr"]["d2l:owner"]
if sorted(state) != list(range(n)):
    sys.exit(f"slurm_check.sh: the journal holds trials {sorted(state)}, not 0..{n - 1} once each")
bad = {t: names.get(s, s) for t, s in state.items() if s not in (1, 3)}
if bad:
    sys.exit(f"slurm_check.sh: trials neither COMPLETE nor FAIL in the journal: {bad}")
wrong = sorted(t for t in state if folder.get(t) != f"trials/{t:03}")
if wrong:
    sys.exit(f"slurm_check.sh: trials without the user attr folder = trials/NNN: {wrong}")
if sorted(owner) != list(range(n)):
    sys.exit(f"slurm_check.sh: trials without the system attr d2l:owner: {sorted(set(range(n)) - set(owner))}")
processes = {(o["host"], o["pid"]) for o in owner.values()}
workers = set(creator.values())
if len(processes) < 2 or len(workers) < 2:
    sys.exit(f"slurm_check.sh: one task trained every trial (owners {sorted(processes)}, worker ids {sorted(workers)})")
rows = list(csv.DictReader(open(f"{out}/leaderboard.csv")))
if sorted(int(r["trial"]) for r in rows) != list(range(n)):
    sys.exit(f"slurm_check.sh: leaderboard.csv has the trials {[r['trial'] for r in rows]}, not one row for each of 0..{n - 1}")
refit = list(csv.DictReader(open(f"{out}/best/metrics.csv")))
if len(refit) != epochs:
    sys.exit(f"slurm_check.sh: best/metrics.csv has {len(refit)} epoch(s), not the recipe's {epochs}")
per = {}
for t, o in sorted(owner.items()):
    per.setdefault(o["pid"], []).append(f"{t:03}")
print(f"journal: trials 0..{n - 1} once each, {sum(s == 1 for s in state.values())} COMPLETE, "
      f"{sum(s == 3 for s in state.values())} FAIL; trained by {len(processes)} processes "
      f"({'; '.join('pid %s: %s' % (p, ' '.join(ts)) for p, ts in per.items())}); "
      f"leaderboard.csv {len(rows)} rows; best/ refitted {len(refit)} epochs")
PY
echo "3/4 the join array's tasks shared one tpe study, and the collect job ranked it and refitted the best"

# 4. Stop the cluster; nothing of it may be left running.
pids=$(cat "$SLURM_LOCAL_DIR/pids")
[ -n "$pids" ] || { echo "slurm_check.sh: no daemon PIDs recorded"; exit 1; }
"$cluster" stop
trap - EXIT
for pid in $pids; do
  if kill -0 "$pid" 2>/dev/null; then echo "slurm_check.sh: process $pid is still running"; exit 1; fi
done
echo "4/4 every Slurm process the check started is stopped"
echo "slurm check: passed"
