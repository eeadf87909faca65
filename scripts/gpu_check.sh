#!/usr/bin/env bash
# The GPU check: the book's recipe and the 4096-unit recipe on wgpu and on flex (`bench`), and
# PyTorch with the data resident on the same GPU, on generated data of Fashion-MNIST's shape;
# one table at the end (docs/performance.md, "GPU"). Under 10 minutes on a machine with a GPU.
#
# A GPU machine cannot reach the package registries, so the check has two steps:
#   scripts/gpu_check.sh prepare   here, on the CPU machine: builds the binary with
#                                  `--features wgpu` (and with `--features vulkan`, cubecl's
#                                  SPIR-V compiler) and gathers in gpu-check/ what the GPU
#                                  machine needs (the binaries, torch_gpu.py, the Vulkan loader)
#   scripts/gpu_check.sh run       there, from the repository root with gpu-check/ carried
#                                  (`run` is the default)
# Settings (environment):
#   GPU_CHECK_SMALL=1   a tiny check (1,024 training and 256 test images, 2 epochs) to try the
#                       script where there is no GPU (wgpu then runs on lavapipe, on the CPU)
#   EPOCHS=N            epochs per measurement (default 5; the first holds the kernels' compiling
#                       and autotuning, so the table gives the median)
#   DATA=DIR            Fashion-MNIST IDX files to use instead of generated data
#   BIN=PATH            the binary (default gpu-check/d2l-mlp, else target/release/d2l-mlp)
#   SPIRV_BIN=PATH      the SPIR-V build (default gpu-check/d2l-mlp-spirv; measured where present)
#   TORCH_GPU=PATH      torch_gpu.py (default gpu-check/torch_gpu.py, else ../shared/bench/)
#   OUT=DIR             also leave the JSON figures and the logs there
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
kit="$repo/gpu-check"
step=${1:-run}

prepare() {
  cd "$repo"
  cargo build --release --features wgpu --locked
  mkdir -p "$kit/debs"
  cp target/release/d2l-mlp "$kit/"
  # Its own target folder: the feature change would otherwise rebuild the first binary's crates.
  cargo build --release --features vulkan --locked --target-dir target/spirv
  cp target/spirv/release/d2l-mlp "$kit/d2l-mlp-spirv"
  local torch=${TORCH_GPU:-$repo/../shared/bench/torch_gpu.py}
  if [ -f "$torch" ]; then cp "$torch" "$kit/"; else echo "note: $torch not found: the check will skip PyTorch"; fi
  # The Vulkan loader, for a machine whose image lacks it (the GPU driver brings its own ICD).
  (cd "$kit/debs" && apt-get download libvulkan1) || echo "note: could not download libvulkan1; the GPU machine must have a Vulkan loader"
  echo "gpu-check/ is ready ($(du -sh "$kit" | cut -f1)): carry it to the GPU machine and run scripts/gpu_check.sh there"
}

# A Vulkan loader and the NVIDIA driver's ICD, where the machine has them but does not say so.
vulkan_setup() {
  if ! ldconfig -p | grep -q 'libvulkan.so.1' && compgen -G "$kit/debs/*.deb" >/dev/null; then
    echo "no Vulkan loader installed: unpacking gpu-check/debs"
    for f in "$kit"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$icd" ]; then
    export VK_DRIVER_FILES=$icd
  fi
}

# IDX files of Fashion-MNIST's shape: random pixels with a bright band of rows that names the
# class (learnable), random labels.
generate() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, random, struct, sys
out, n_train, n_test = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out, exist_ok=True)
rng = random.Random(1)
for prefix, n in (("train", n_train), ("t10k", n_test)):
    labels = bytes(rng.randrange(10) for _ in range(n))
    pixels = bytearray(os.urandom(n * 784))
    for i, c in enumerate(labels):
        start = i * 784 + c * 2 * 28
        pixels[start:start + 56] = b"\xc8" * 56
    with open(f"{out}/{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, 28, 28) + bytes(pixels))
    with open(f"{out}/{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 2049, n) + labels)
PY
}

run() {
  local small=${GPU_CHECK_SMALL:-0} bin spirv torch work
  bin=${BIN:-$kit/d2l-mlp}
  spirv=${SPIRV_BIN:-$kit/d2l-mlp-spirv}
  [ -x "$bin" ] || bin="$repo/target/release/d2l-mlp"
  [ -x "$bin" ] || { echo "no binary: run scripts/gpu_check.sh prepare first (or set BIN)"; exit 1; }
  "$bin" --version | grep -q wgpu || { echo "$bin was built without wgpu: build it with --features wgpu"; exit 1; }
  torch=${TORCH_GPU:-$kit/torch_gpu.py}
  [ -f "$torch" ] || torch="$repo/../shared/bench/torch_gpu.py"
  work=${OUT:-$(mktemp -d)}
  mkdir -p "$work"
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$work}"
  vulkan_setup
  local epochs=${EPOCHS:-5} data n_train=60000 n_test=10000
  if [ "$small" = 1 ]; then epochs=${EPOCHS:-2}; n_train=1024; n_test=256; fi
  data=${DATA:-$work/data}
  if [ -z "${DATA:-}" ]; then generate "$data" "$n_train" "$n_test"; fi
  printf 'hidden = [4096]\n' > "$work/wide.toml"
  echo "== $(date -u +%FT%TZ) $("$bin" --version), $epochs epochs each, data: ${DATA:-generated, $n_train train / $n_test test images}"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "(no nvidia-smi)"
  local started=$SECONDS
  for recipe in book wide; do
    for backend in wgpu spirv flex; do
      for ops in fast reference; do
        # Burn's own path on wgpu (host batches, per-step reads) beside ours; flex and the
        # SPIR-V build only as they run.
        [ "$backend" != wgpu ] && [ "$ops" = reference ] && continue
        local name="$recipe-$backend-$ops" exe=$bin args=(bench --backend "${backend/spirv/wgpu}" --epochs "$epochs" --data-dir "$data" --skip-checksum --tensorboard false)
        if [ "$backend" = spirv ]; then [ -x "$spirv" ] || continue; exe=$spirv; fi
        [ "$recipe" = wide ] && args+=(--config "$work/wide.toml")
        [ "$ops" = reference ] && args+=(--reference-ops)
        echo "== $name: $(basename "$exe") ${args[*]}"
        "$exe" "${args[@]}" --json "$work/$name.json" 2>&1 | tee "$work/$name.log"
      done
    done
  done
  if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && [ -f "$torch" ]; then
    echo "== torch: $torch"
    PYTHONUNBUFFERED=1 python3 "$torch" "$data" "$((epochs + 1))" 2>&1 | tee "$work/torch.log"
    grep '^RESULT_JSON ' "$work/torch.log" | sed 's/^RESULT_JSON //' > "$work/torch.json"
  else
    echo "== torch: skipped (no PyTorch with a CUDA GPU here, or no torch_gpu.py at $torch)"
  fi
  echo "== the table ($((SECONDS - started)) s of measuring)"
  python3 - "$work" <<'PY'
import glob, json, os, sys
work = sys.argv[1]
rows = []
for recipe, label in (("book", "book's (784-256-10)"), ("wide", "4096 units")):
    for name, what in (("wgpu-fast", "wgpu"), ("wgpu-reference", "wgpu --reference-ops"), ("spirv-fast", "wgpu, SPIR-V"), ("flex-fast", "flex (CPU)")):
        p = f"{work}/{recipe}-{name}.json"
        if not os.path.exists(p):
            continue
        r = json.load(open(p))["results"][0]
        e = r["epoch_seconds"]
        rows.append((label, what, e["median"], e["min"], e["max"], r["train_seconds"]["median"], r["test_seconds"]["median"], r["final_train_loss"], r["final_test_accuracy"], r["device"]))
        machine = r["machine"]
t = f"{work}/torch.json"
if os.path.exists(t) and os.path.getsize(t) > 0:
    r = json.load(open(t))
    for mode, what in (("sync", "PyTorch, per-step reads"), ("device", "PyTorch, on-device sums")):
        m = r[mode]
        rows.append(("book's (784-256-10)", what, m["median_epoch_s"], None, None, None, None, m["last"][0], m["last"][2], f"{r['device']}, torch {r['torch']}"))
print(f"CPU: {machine['cpu']} | {machine['threads']} threads")
print("| recipe | backend | epoch s (median) | min | max | train s | test s | train loss | test acc |")
print("|---|---|---|---|---|---|---|---|---|")
fmt = lambda v, p=3: "-" if v is None else f"{v:.{p}f}"
for label, what, med, lo, hi, tr, te, loss, acc, dev in rows:
    print(f"| {label} | {what} | {fmt(med)} | {fmt(lo)} | {fmt(hi)} | {fmt(tr)} | {fmt(te)} | {fmt(loss, 4)} | {fmt(acc, 4)} |")
print("devices: " + "; ".join(sorted({f"{w}: {d}" for _, w, *_, d in rows})))
PY
}

case "$step" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: scripts/gpu_check.sh [prepare|run]"; exit 2 ;;
esac
