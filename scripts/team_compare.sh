#!/usr/bin/env bash
# The engine's team and vmath against kept crates, in one sitting: `bench` epoch times for each
# scheduler (D2L_MLP_TEAM) on the book's, the tanh and the wide recipe, and for the tanh recipe
# with each tanh (D2L_MLP_VMATH), runs alternated (A B C ... A B C ...); then the split-latency
# and vmath examples. Builds nothing: give it the binaries, built with
#   cargo build --release --features team-alternatives --ignore-rust-version \
#     --bin d2l-mlp --example team_latency --example vmath_compare
# Method and figures: docs/performance.md ("The team and vmath against kept crates").
#
# usage: scripts/team_compare.sh BINARY [ROUNDS] [EPOCHS] [DATA_DIR]
#   BINARY    target/release/d2l-mlp (the examples are looked for in its examples/ folder)
#   ROUNDS    alternation rounds (default 5); EPOCHS per run (default 4; `bench` reports the median)
#   DATA_DIR  Fashion-MNIST (default /usr/share/datasets/fashion-mnist)
set -euo pipefail

bin=${1:?usage: scripts/team_compare.sh BINARY [ROUNDS] [EPOCHS] [DATA_DIR]}
rounds=${2:-5}
epochs=${3:-4}
data=${4:-/usr/share/datasets/fashion-mnist}
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$bin" ] || { echo "team_compare: $bin is not an executable (build it first: see the header)" >&2; exit 2; }
[ -d "$data" ] || { echo "team_compare: no data folder $data (give DATA_DIR)" >&2; exit 2; }
examples=$(dirname "$bin")/examples
unset D2L_MLP_TEAM D2L_MLP_VMATH

schedulers="team team-noahead rayon rayon-awake chili forte"
tanhs="pulp rten"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
flags=$(for f in avx2 fma avx512f; do grep -qw "$f" /proc/cpuinfo && printf '%s ' "$f" || printf 'no-%s ' "$f"; done)
echo "CPU: $cpu | ${flags% } | $(nproc) cores | load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$rounds rounds x (3 recipes x 6 schedulers + 2 tanhs), bench --backend flex --epochs $epochs --tensorboard false, data $data"

# One run: VARIANT RECIPE ROUND -> $work/RECIPE.VARIANT.ROUND.json
one() {
  local variant=$1 recipe=$2 round=$3 sched=team tanh=vmath config=()
  case $variant in tanh-*) tanh=${variant#tanh-} ;; *) sched=$variant ;; esac
  [ "$recipe" = book ] || config=(--config "$root/config/$recipe.toml")
  local log=$work/$recipe.$variant.$round.log
  if ! D2L_MLP_TEAM=$sched D2L_MLP_VMATH=$tanh "$bin" bench --backend flex --epochs "$epochs" --tensorboard false \
      --data-dir "$data" "${config[@]}" --json "$work/$recipe.$variant.$round.json" >"$log" 2>&1; then
    cat "$log" >&2; exit 1
  fi
  # A binary built without the feature ignores the variables: refuse its figures.
  grep -q "engine alternatives: scheduler $sched, tanh $tanh" "$log" \
    || { echo "team_compare: $bin does not name scheduler $sched, tanh $tanh (built without --features team-alternatives?)" >&2; exit 1; }
}

for round in $(seq "$rounds"); do
  for recipe in book tanh wide; do
    for s in $schedulers; do one "$s" "$recipe" "$round"; done
    if [ "$recipe" = tanh ]; then for t in $tanhs; do one "tanh-$t" tanh "$round"; done; fi
  done
  echo "round $round of $rounds done (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done

python3 - "$work" "$rounds" <<'EOF'
import json, statistics, sys, glob, os
work, rounds = sys.argv[1], int(sys.argv[2])
print("\nEpoch seconds (each run's median epoch; median over the runs, then min-max), and the final train loss and test accuracy:")
print("| recipe | variant | median (s) | min-max (s) | vs team | final loss / accuracy |")
print("|---|---|---|---|---|---|")
for recipe in ["book", "tanh", "wide"]:
    variants = ["team", "team-noahead", "rayon", "rayon-awake", "chili", "forte"] + (["tanh-pulp", "tanh-rten"] if recipe == "tanh" else [])
    base = None
    for v in variants:
        runs = [json.load(open(f))["results"][0] for f in sorted(glob.glob(f"{work}/{recipe}.{v}.*.json"))]
        ep = [r["epoch_seconds"]["median"] for r in runs]
        med = statistics.median(ep)
        base = base or med
        finals = sorted({f'{r["final_train_loss"]:.10f} / {r["final_test_accuracy"]:.4f}' for r in runs})
        print(f"| {recipe} | {v} | {med:.3f} | {min(ep):.3f}-{max(ep):.3f} | {med / base:.2f}x | {', '.join(finals)} |")
EOF

if [ -x "$examples/team_latency" ]; then echo; "$examples/team_latency" "$rounds"; else echo "(no $examples/team_latency: build it to measure the split latency)"; fi
if [ -x "$examples/vmath_compare" ]; then echo; "$examples/vmath_compare" "$rounds"; else echo "(no $examples/vmath_compare: build it to compare the tanh)"; fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
