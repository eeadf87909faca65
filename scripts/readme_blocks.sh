#!/usr/bin/env bash
# Run the ```sh code blocks of the README and of docs/ in order, as a new user would, in a fresh
# clone of this repository, against an already built binary (BIN); and check the README's
# headline figures (the Results table and the example epoch line) against a fresh seed-42 run.
#
# Pages, in this order: README.md, docs/operations.md, docs/interchange.md, docs/experiments.md,
# docs/performance.md, docs/build.md, docs/architecture.md (the list `pages` below; a page added to docs/ must
# be added there, the script refuses to run while one is missing from it).
#
# Rewriting rules:
# - `cargo run --release [--features X] --` is replaced by BIN. A line whose --features name a
#   backend (ndarray, wgpu, flex) that BIN was not built with is skipped, with a line saying so;
#   BIN's backends are read from `BIN --version` ("d2l-mlp 0.1.0 (backends: wgpu, flex, ndarray)").
# - lines that build or test (`cargo test`, `cargo nextest`, `cargo build`, `cargo install`) and
#   any other `cargo` line are skipped, with a line saying so;
# - trailing comments (two spaces, then #) are dropped; blocks fenced ```console are not run
#   (those need a GPU, a large download or a cluster).
# - D2L_MLP_BACKEND=flex keeps a binary with wgpu built in on the CPU.
#
# The pages are read from the clone (the committed text). READMES_FROM_WORKTREE=1 copies the
# working tree's README.md and docs/*.md over the clone first, to try uncommitted edits.
# The data: /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist); without it the
# headline check is skipped with a notice (the blocks then look for the data as the binary does).
# HEADLINE_RUN=DIR: a run of the default recipe that BIN already trained on flex on that data
# (CI's flex acceptance run): its metrics.csv is checked instead of training the same run again.
set -euo pipefail
bin=$(realpath "${1:?usage: scripts/readme_blocks.sh BIN}")
repo=$(cd "$(dirname "$0")/.." && pwd)
data=/usr/share/datasets/fashion-mnist
pages=(README.md docs/operations.md docs/interchange.md docs/experiments.md docs/performance.md docs/build.md docs/architecture.md)
work=$(mktemp -d)
git clone -q "$repo" "$work/clone"
if [ "${READMES_FROM_WORKTREE:-0}" = 1 ]; then
  echo "READMES_FROM_WORKTREE=1: using the working tree's README.md and docs/*.md"
  mkdir -p "$work/clone/docs"
  cp "$repo/README.md" "$work/clone/README.md"
  cp "$repo"/docs/*.md "$work/clone/docs/"
fi
cd "$work/clone"

# Every listed page must exist, and every page under docs/ must be listed (none silently left unrun).
for page in "${pages[@]}"; do
  [ -f "$page" ] || { echo "readme_blocks.sh: $page is in the script's list of pages but not in the repository"; exit 1; }
done
shopt -s nullglob
for page in docs/*.md; do
  [[ " ${pages[*]} " == *" $page "* ]] || { echo "readme_blocks.sh: $page is not in the script's list of pages; add it to \`pages\`"; exit 1; }
done

version=$("$bin" --version)
backends=$(sed -n 's/.*(backends: \([^)]*\)).*/\1/p' <<<"$version" | tr -d ' ')
if [ -z "$backends" ]; then
  backends=flex
  echo "note: '$version' names no backends (a binary older than that line); assuming the default build: flex"
fi
echo "binary: $bin ($version); backends: $backends"
case ",$backends," in
  *,flex,*) export D2L_MLP_BACKEND=flex ;;
esac

# 1. The headline figures: the README's Results table and epoch line against a fresh run.
if [ ! -d "$data" ]; then
  echo "headline check skipped: no data in $data (apt-get install dataset-fashion-mnist)"
elif [[ ",$backends," != *,flex,* ]]; then
  echo "headline check skipped: the README's figures are flex's and this binary has no flex (backends: $backends)"
else
  headline=${HEADLINE_RUN:-$work/headline}
  if [ -n "${HEADLINE_RUN:-}" ]; then
    echo "headline check: the run in $headline (HEADLINE_RUN), trained by $bin"
  else
    echo "headline check: $bin train --artifacts $headline --data-dir $data"
    "$bin" train --artifacts "$headline" --data-dir "$data" >"$work/headline.log" 2>&1 \
      || { cat "$work/headline.log"; echo "headline check: the seed-42 run failed"; exit 1; }
  fi
  python3 - README.md "$headline/metrics.csv" <<'PY'
import csv, re, sys
readme_path, metrics_path = sys.argv[1], sys.argv[2]
readme = open(readme_path).read()
rows = {int(r["epoch"]): r for r in csv.DictReader(open(metrics_path))}
cols = ["train_loss", "train_acc", "test_loss", "test_acc"]
fail = []

# The Results table: the first table under "## Results" whose header starts with "| epoch |".
section = readme.split("\n## Results", 1)
if len(section) < 2:
    sys.exit(f"headline check: {readme_path} has no '## Results' section")
body = section[1].split("\n## ", 1)[0]
table = re.search(r"^\| epoch \| train loss \| train acc \| test loss \| test acc \|\n\|[-| ]+\|\n((?:\|.*\|\n?)+)", body, re.M)
if not table:
    sys.exit(f"headline check: no '| epoch | train loss | train acc | test loss | test acc |' table under '## Results' in {readme_path}")
rows_checked = lines_checked = 0
for line in table.group(1).strip().splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    epoch = int(cells[0])
    if epoch not in rows:
        fail.append(f"README Results row '{line.strip()}': the run has no epoch {epoch}")
        continue
    want = [f"{float(rows[epoch][c]):.4f}" for c in cols]
    if cells[1:5] != want:
        fail.append(f"README Results row '{line.strip()}' != the run's epoch {epoch}: | {epoch} | {' | '.join(want)} |")
    rows_checked += 1

# The example epoch line ("epoch  3/10  train loss ... acc ... | test loss ... acc ... | ... s").
line_re = r"^epoch +(\d+)/(\d+) +train loss ([\d.]+) acc ([\d.]+) \| test loss ([\d.]+) acc ([\d.]+) \|.*$"
for m in re.finditer(line_re, readme, re.M):
    epoch = int(m.group(1))
    want = [f"{float(rows[epoch][c]):.4f}" for c in cols] if epoch in rows else None
    if want is None or list(m.group(3, 4, 5, 6)) != want or int(m.group(2)) != max(rows):
        got = "no such epoch" if want is None else f"train loss {want[0]} acc {want[1]} | test loss {want[2]} acc {want[3]}"
        fail.append(f"README epoch line '{m.group(0)}' != the run's epoch {epoch}/{max(rows)}: {got}")
    lines_checked += 1

if fail:
    print("headline check FAILED: the README's figures differ from what this binary prints (seed 42, default recipe):")
    print("\n".join("  " + f for f in fail))
    print("update README.md from " + metrics_path)
    sys.exit(1)
print(f"headline check: the README's Results table ({rows_checked} rows) and {lines_checked} epoch line(s) equal the run's metrics.csv")
PY
fi

# 2. The ```sh blocks, page by page.
python3 - "$bin" "$backends" "${pages[@]}" > "$work/blocks.sh" <<'PY'
import re, shlex, sys
binary, backends, pages = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
q = shlex.quote
out = ["set -euo pipefail", "where=start", "trap 'echo \"readme_blocks.sh: failed at $where\" >&2' ERR"]
count = 0
for page in pages:
    text = open(page).read()
    out.append(f"echo {q('== ' + page)}")
    for block in re.finditer(r"^```sh[ \t]*\n(.*?)^```[ \t]*$", text, re.S | re.M):
        first = text.count("\n", 0, block.start(1)) + 1
        lines = block.group(1).splitlines()
        i = 0
        while i < len(lines):
            where = f"{page}:{first + i}"
            raw = lines[i]
            while raw.endswith("\\") and i + 1 < len(lines):  # continued lines
                i += 1
                raw = raw[:-1] + " " + lines[i].strip()
            i += 1
            cmd = raw.split("  #")[0].strip()
            if not cmd or cmd.startswith("#"):
                continue
            m = re.match(r"cargo run --release(?: --features ([\w,-]+))? --(?=\s|$)", cmd)
            if m:
                wanted = [f for f in (m.group(1) or "").split(",") if f in ("ndarray", "wgpu", "flex")]
                missing = [f for f in wanted if f not in backends]
                if missing:
                    note = f"skipped {where} (this binary has no {', '.join(missing)}; backends: {','.join(backends)}): {cmd}"
                    out.append(f"echo {q(note)}")
                    continue
                cmd = q(binary) + cmd[m.end():]
            elif re.match(r"cargo (test|nextest|build|install)\b", cmd):
                out.append(f"echo {q(f'skipped {where} (builds or tests; CI does that itself): {cmd}')}")
                continue
            elif re.match(r"cargo\b", cmd):
                out.append(f"echo {q(f'skipped {where} (needs cargo, not the built binary): {cmd}')}")
                continue
            out += [f"where={q(where)}", f"echo {q('$ ' + cmd + '    # ' + where)}", cmd]
            count += 1
out.append(f"echo 'readme blocks: all {count} commands ran'")
print("\n".join(out))
PY
echo "running the sh blocks of ${pages[*]} in $work/clone"
bash "$work/blocks.sh"
