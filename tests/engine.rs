//! The fast path's one switch: `--reference-ops` (or `D2L_MLP_REFERENCE_OPS=1`) runs Burn's own
//! operations, and they train the recipe to the fused path's figures up to summation order.
mod common;

use common::*;

#[test]
fn reference_ops_train_to_the_fused_paths_figures() {
    let f = Fixture::new();
    f.train("fused", &["--epochs", "2"]).ok();
    let reference = f.train("reference", &["--epochs", "2", "--reference-ops"]);
    reference.ok();
    let first = reference.stdout.lines().next().unwrap_or_default();
    if CPU == "flex" {
        assert!(first.contains("Burn's reference ops"), "{first}");
    }
    let (a, b) = (metrics(&f.path("fused")), metrics(&f.path("reference")));
    assert_eq!(a.len(), 2);
    assert_close(&figures(&a), &figures(&b), 2e-3);
}

#[test]
fn the_switch_also_reads_the_environment() {
    let f = Fixture::new();
    let data = f.data();
    let args = ["train", "--config", "small.toml", "--epochs", "1", "--artifacts", "run", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU];
    let out = run_env(f.dir.path(), &args, &[("D2L_MLP_REFERENCE_OPS", "1")]);
    out.ok();
    if CPU == "flex" {
        assert!(out.stdout.lines().next().unwrap_or_default().contains("Burn's reference ops"), "{}", out.stdout);
    }
    let plain = run_env(f.dir.path(), &["train", "--config", "small.toml", "--epochs", "1", "--artifacts", "run2", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU], &[]);
    plain.ok();
    assert!(!plain.stdout.contains("reference ops"), "{}", plain.stdout);
}

#[test]
fn one_thread_and_two_train_to_the_same_bits() {
    // Wide layers (split between threads) and a narrow one (kept whole), as a sweep worker with
    // one thread and `train` with all of them run them. The kernel team has as many threads as
    // rayon's global pool, so the second run splits its work even on a one-core machine.
    let f = Fixture::new();
    f.write_config("mixed.toml", "hidden = [300, 32]\nbatch_size = 128\nlr = 0.2\nepochs = 2\n");
    let data = f.data();
    let d = data.to_str().unwrap();
    for (run, threads) in [("one", "1"), ("two", "2")] {
        let args = ["train", "--config", "mixed.toml", "--artifacts", run, "--data-dir", d, "--skip-checksum", "--backend", CPU];
        run_env(f.dir.path(), &args, &[("RAYON_NUM_THREADS", threads)]).ok();
    }
    let (one, two) = (metrics(&f.path("one")), metrics(&f.path("two")));
    assert_eq!(one.len(), 2);
    assert_eq!(figures(&one), figures(&two), "metrics.csv on 1 and on 2 threads");
    assert_eq!(weights(&f.path("one"), &f.path("one/model.bpk")), weights(&f.path("two"), &f.path("two/model.bpk")));
}
