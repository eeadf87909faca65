#!/usr/bin/env python3
"""Cross-check the safetensors interchange against an independent numpy implementation.

Needs only `pip install safetensors numpy` (no torch). Steps:

1. `export` the trained run, run the book's forward pass in numpy on the test images: its
   accuracy must equal `eval`'s (to 1e-4).
2. Write a safetensors file with known weights, `import` it and `eval` it: accuracy and loss must
   equal numpy's.
3. `train --init-from` those weights with `shuffle = false` on a generated one-batch data set:
   the first step's loss must equal numpy's loss for that batch (to 1e-5).

The binary runs on `--backend B`, else `$D2L_MLP_BACKEND`, else the best CPU backend it was
built with: flex, else ndarray (read from `BIN --version`, which ends with
"(backends: wgpu, flex, ndarray)"; a binary that does not list them is taken to have flex).
"""
import argparse
import gzip
import json
import os
import re
import struct
import subprocess
import sys

try:
    import numpy as np
    from safetensors.numpy import load_file, save_file
except ImportError as e:  # reported after argument parsing, so --help works without them
    MISSING = e
else:
    MISSING = None


def read_idx(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x0803:
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 784)
    return np.frombuffer(data, np.uint8, offset=8)


def find(data_dir, name):
    for cand in (name, name + ".gz"):
        p = os.path.join(data_dir, cand)
        if os.path.exists(p):
            return p
    sys.exit(f"missing {name} in {data_dir}")


def forward(weights, x, act="relu"):
    """The book's nn.Sequential(Flatten, Linear, act, ..., Linear) in float32."""
    h = x.astype(np.float32) / np.float32(255.0)
    n_layers = len([k for k in weights if k.endswith(".weight")])
    for i in range(n_layers):
        w, b = weights[f"{2 * i + 1}.weight"], weights[f"{2 * i + 1}.bias"]
        h = h @ w.T + b
        if i < n_layers - 1:
            h = {"relu": lambda z: np.maximum(z, 0), "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh}[act](h)
    return h


def cross_entropy(logits, labels):
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(labels)), labels]


def run(*args):
    print("+", " ".join(map(str, args)), flush=True)
    status = subprocess.run([str(a) for a in args], stdout=subprocess.DEVNULL).returncode
    if status != 0:
        sys.exit(f"interchange_check.py: the command above failed with status {status}")


def built_backends(binary):
    """The backends BIN was built with, from `BIN --version`; None when it does not say."""
    version = subprocess.run([binary, "--version"], check=True, capture_output=True, text=True).stdout.strip()
    m = re.search(r"\(backends: ([^)]*)\)", version)
    return version, ([b.strip() for b in m.group(1).split(",") if b.strip()] if m else None)


def choose_backend(binary, requested):
    """--backend, else $D2L_MLP_BACKEND, else the best CPU backend built in (flex, else ndarray)."""
    version, backends = built_backends(binary)
    for chosen, why in ((requested, "--backend"), (os.environ.get("D2L_MLP_BACKEND"), "$D2L_MLP_BACKEND")):
        if chosen:
            if backends is not None and chosen not in backends:
                sys.exit(f"interchange_check.py: {why} {chosen}, but {binary} was built with {', '.join(backends)} ({version})")
            return chosen, why
    if backends is None:
        return "flex", f"'{version}' lists no backends; assuming the default build"
    for cpu in ("flex", "ndarray"):
        if cpu in backends:
            return cpu, f"the best CPU backend in '{version}'"
    sys.exit(f"interchange_check.py: {binary} has no CPU backend ({version}); pass --backend")


def write_idx(path, images=None, labels=None):
    with open(path, "wb") as f:
        if images is not None:
            f.write(struct.pack(">IIII", 0x0803, len(images), 28, 28) + images.astype(np.uint8).tobytes())
        else:
            f.write(struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes())


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bin", metavar="BIN", help="the d2l-mlp binary, e.g. target/release/d2l-mlp")
    parser.add_argument("run", metavar="RUN", help="a trained run folder (model.bpk, config.toml); eval writes eval.json there")
    parser.add_argument("data_dir", metavar="DATA_DIR", help="folder with the Fashion-MNIST test files (t10k-*-ubyte, optionally .gz)")
    parser.add_argument("work", metavar="WORK", help="scratch folder for the files this check writes (created if missing)")
    parser.add_argument("--backend", metavar="B", help="backend for every command (default: $D2L_MLP_BACKEND, else flex, else ndarray, as built in)")
    return parser.parse_args()


def main():
    args = parse_args()
    if MISSING is not None:
        sys.exit(f"interchange_check.py: {MISSING}; install the dependencies with `pip install safetensors numpy`")
    binary, run_dir, data_dir, work = args.bin, args.run, args.data_dir, args.work
    backend, why = choose_backend(binary, args.backend)
    print(f"backend {backend} ({why})", flush=True)
    os.makedirs(work, exist_ok=True)
    x = read_idx(find(data_dir, "t10k-images-idx3-ubyte"))
    y = read_idx(find(data_dir, "t10k-labels-idx1-ubyte")).astype(np.int64)

    # 1. The trained run, exported, evaluated by numpy and by `eval`.
    exported = os.path.join(work, "exported.safetensors")
    run(binary, "export", "--artifacts", run_dir, "--out", exported, "--backend", backend)
    w = load_file(exported)
    assert w["1.weight"].shape == (256, 784) and w["1.weight"].dtype == np.float32, w["1.weight"].shape
    assert w["3.weight"].shape == (10, 256), w["3.weight"].shape
    acc_np = float((forward(w, x).argmax(1) == y).mean())
    run(binary, "eval", "--artifacts", run_dir, "--data-dir", data_dir, "--backend", backend)
    acc_eval = json.load(open(os.path.join(run_dir, "eval.json")))["accuracy"]
    print(f"1. exported run: numpy accuracy {acc_np:.6f}, eval accuracy {acc_eval:.6f}")
    assert abs(acc_np - acc_eval) <= 1e-4, (acc_np, acc_eval)

    # 2. Known weights written here, imported and evaluated there.
    rng = np.random.default_rng(0)
    known = {
        "1.weight": rng.normal(0, 0.05, (256, 784)).astype(np.float32),
        "1.bias": rng.normal(0, 0.05, (256,)).astype(np.float32),
        "3.weight": rng.normal(0, 0.05, (10, 256)).astype(np.float32),
        "3.bias": rng.normal(0, 0.05, (10,)).astype(np.float32),
    }
    known_path = os.path.join(work, "known.safetensors")
    save_file(known, known_path)
    logits = forward(known, x)
    acc_known = float((logits.argmax(1) == y).mean())
    loss_known = float(cross_entropy(logits, y).mean())
    imported = os.path.join(work, "imported")
    run(binary, "import", known_path, "--artifacts", imported, "--overwrite", "--backend", backend)
    run(binary, "eval", "--artifacts", imported, "--data-dir", data_dir, "--backend", backend)
    rep = json.load(open(os.path.join(imported, "eval.json")))
    print(f"2. known weights: numpy accuracy {acc_known:.6f} loss {loss_known:.6f}; eval accuracy {rep['accuracy']:.6f} loss {rep['loss']:.6f}")
    assert abs(acc_known - rep["accuracy"]) <= 1e-4
    assert abs(loss_known - rep["loss"]) <= 1e-4 * max(1.0, loss_known)

    # 3. train --init-from with shuffle = false: the first step's loss.
    gen = os.path.join(work, "gen")
    os.makedirs(gen, exist_ok=True)
    gx = rng.integers(0, 256, (64, 784))
    gy = rng.integers(0, 10, (64,))
    write_idx(os.path.join(gen, "train-images-idx3-ubyte"), images=gx)
    write_idx(os.path.join(gen, "train-labels-idx1-ubyte"), labels=gy)
    write_idx(os.path.join(gen, "t10k-images-idx3-ubyte"), images=gx)
    write_idx(os.path.join(gen, "t10k-labels-idx1-ubyte"), labels=gy)
    cfg = os.path.join(work, "one-batch.toml")
    with open(cfg, "w") as f:
        f.write("epochs = 1\nbatch_size = 64\nhidden = [256]\nshuffle = false\n")
    first = os.path.join(work, "init-run")
    run(binary, "train", "--config", cfg, "--init-from", known_path, "--artifacts", first, "--overwrite",
        "--data-dir", gen, "--skip-checksum", "--backend", backend)
    # One batch per epoch: the epoch's train loss is the loss of the first step.
    with open(os.path.join(first, "metrics.csv")) as f:
        row = f.read().splitlines()[1].split(",")
    loss_rust = float(row[1])
    loss_np = float(cross_entropy(forward(known, gx), gy).mean())
    print(f"3. first step loss: numpy {loss_np:.6f}, train --init-from {loss_rust:.6f}")
    assert abs(loss_np - loss_rust) <= 1e-5, (loss_np, loss_rust)
    print("interchange check: all passed")


if __name__ == "__main__":
    main()
