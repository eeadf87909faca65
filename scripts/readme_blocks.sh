#!/usr/bin/env bash
# Run the README's ```sh code blocks in order, as a new user would, in a fresh clone of this
# repository, against an already built binary (BIN). `cargo run --release [--features X] --`
# is replaced by BIN; lines that build or test (`cargo test`, `cargo nextest`, `cargo build`)
# are skipped, as are blocks fenced ```console (those need a GPU or a large download).
# D2L_MLP_BACKEND=flex keeps a binary with wgpu built in on the CPU.
set -euo pipefail
bin=$(realpath "${1:?usage: scripts/readme_blocks.sh BIN}")
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
git clone -q "$repo" "$work/clone"
cd "$work/clone"
export D2L_MLP_BACKEND=flex
python3 - "$repo/README.md" "$bin" > "$work/blocks.sh" <<'PY'
import re, sys
readme, binary = open(sys.argv[1]).read(), sys.argv[2]
out = ["set -euxo pipefail"]
for block in re.findall(r"```sh\n(.*?)```", readme, re.S):
    for line in block.splitlines():
        cmd = line.split("  #")[0].strip()
        if not cmd or re.match(r"cargo (test|nextest|build|install)", cmd):
            continue
        cmd = re.sub(r"^cargo run --release( --features [\w,]+)? --", binary, cmd)
        out.append(cmd)
print("\n".join(out))
PY
echo "running $(grep -c . "$work/blocks.sh") README lines in $work/clone"
bash "$work/blocks.sh"
echo "README blocks: all ran"
