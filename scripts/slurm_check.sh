#!/usr/bin/env bash
# Run the job-array recipe of docs/experiments.md, as written, on a one-node Slurm cluster
# (scripts/slurm-single-node.sh), with a small study on the real data:
#   1. the leaderboard and the refit equal a local run of the same study;
#   2. a failed shard keeps the `afterok` collect job from running (no leaderboard appears);
#   3. every Slurm process the check started is stopped at the end.
# Needs root, Debian's slurm-wlm and munge, the data (dataset-fashion-mnist), and `d2l-mlp` on
# PATH (e.g. `cargo install --path . --locked`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
data=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
command -v d2l-mlp >/dev/null || { echo "slurm_check.sh: d2l-mlp is not on PATH; cargo install --path . --locked"; exit 1; }
[ -d "$data" ] || { echo "slurm_check.sh: no data in $data; apt-get install dataset-fashion-mnist"; exit 1; }
# The recipe asks --cpus-per-task=2: a one-CPU node could never run its tasks.
[ "$(nproc)" -ge 2 ] || { echo "slurm_check.sh: the recipe's tasks ask 2 CPUs (--cpus-per-task=2); this machine has $(nproc)"; exit 1; }
export FASHION_MNIST_DIR=$data D2L_MLP_BACKEND=flex
work=$(mktemp -d)
cluster="$repo/scripts/slurm-single-node.sh"
export SLURM_LOCAL_DIR="$work/slurm"
trap '"$cluster" stop >/dev/null || true' EXIT
"$cluster" start

# The two command lines of the doc's job-array block, exactly as written there.
mapfile -t recipe < <(sed -n '/^```console$/,/^```$/p' "$repo/docs/experiments.md" | grep -E '^\$ (jobs=|sbatch --dependency)' | sed 's/^\$ //')
[ "${#recipe[@]}" = 2 ] || { echo "slurm_check.sh: expected the jobs= and sbatch --dependency lines in docs/experiments.md, found ${#recipe[@]}"; exit 1; }
printf 'recipe: %s\n' "${recipe[@]}"

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

# 1. The recipe against a local run.
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
echo "1/3 the job array's leaderboard and refit equal a local run's"

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
echo "2/3 a failed shard keeps the collect job from running ($reason)"

# 3. Stop the cluster; nothing of it may be left running.
pids=$(cat "$SLURM_LOCAL_DIR/pids")
[ -n "$pids" ] || { echo "slurm_check.sh: no daemon PIDs recorded"; exit 1; }
"$cluster" stop
trap - EXIT
for pid in $pids; do
  if kill -0 "$pid" 2>/dev/null; then echo "slurm_check.sh: process $pid is still running"; exit 1; fi
done
echo "3/3 every Slurm process the check started is stopped"
echo "slurm check: passed"
