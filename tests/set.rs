//! `--set FIELD=VALUE` on `train`, `bench` and `sweep`, through the real binary: the values
//! reach the saved recipe, bad ones fail before any folder is made, a field named by --set and
//! by its own flag is refused, resume refuses recipe changes, a sweep refuses its swept fields.

mod common;
use common::*;

use d2l_mlp::config::{Activation, TrainConfig};

#[test]
fn set_values_reach_the_run_and_its_saved_recipe() {
    let f = Fixture::new();
    let out = f.train("run", &["--set", "hidden=[16,8]", "--set", "activation=tanh", "--set", "epochs=1", "--seed", "5"]);
    out.ok();
    assert!(out.stdout.contains("model 784-16-8-10 tanh"), "{}", out.stdout);
    let cfg = TrainConfig::load(&f.path("run/config.toml")).unwrap();
    // small.toml gives batch_size 32 and lr 0.1; --set and --seed the rest.
    assert_eq!(cfg, TrainConfig { epochs: 1, batch_size: 32, hidden: vec![16, 8], activation: Activation::Tanh, lr: 0.1, init_std: 0.1, seed: 5, ..TrainConfig::default() });
    assert_eq!(metrics(&f.path("run")).len(), 1);
}

#[test]
fn bad_settings_fail_with_one_line_before_any_folder_is_made() {
    let f = Fixture::new();
    for (args, want) in [
        (&["--set", "lr=fast"][..], "--set lr=fast: field `lr`: invalid type: string \"fast\", expected f64"),
        (&["--set", "learning_rate=0.1"], "--set learning_rate=0.1: unknown field `learning_rate`"),
        (&["--set", "lr"], "--set lr: not FIELD=VALUE"),
        (&["--set", "hidden=[0]"], "--set hidden=[0]: field `hidden` must not contain 0"),
        (&["--set", "lr=0.05", "--lr", "0.2"], "--set lr=0.05 and --lr both set `lr`; pass one of them"),
        (&["--set", "seed=1", "--set", "seed=2"], "--set seed=1 and --set seed=2 both set `seed`; pass it once"),
        (&["--set", "patience=2"], "field `patience` (2) needs a validation split to watch"),
    ] {
        let out = f.train("new", args);
        out.bad_input();
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
        assert!(!f.path("new").exists(), "{args:?} left a run folder");
    }
}

#[test]
fn resume_takes_epochs_from_set_and_refuses_recipe_changes() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1", "--set", "hidden=[16]"]).ok();
    let out = f.resume("run", CPU, &["--set", "hidden=[8]", "--set", "lr=0.1", "--set", "activation=relu"]);
    out.bad_input();
    // Repeating the run's own values (lr, activation) is no change.
    assert!(out.stderr.contains("refused: --set hidden=[8] (run has [16]); only --epochs may change"), "{}", out.stderr);
    let out = f.resume("run", CPU, &["--set", "epochs=2", "--set", "hidden=[16]"]);
    out.ok();
    assert!(out.stdout.contains("resuming at epoch 2 of 2"), "{}", out.stdout);
    assert_eq!(TrainConfig::load(&f.path("run/config.toml")).unwrap().epochs, 2);
}

#[test]
fn the_retry_after_a_divergence_keeps_the_set_fields() {
    let f = Fixture::new();
    let out = f.train("r", &["--set", "lr=50000", "--set", "hidden=[16,8]", "--epochs", "1"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let retry = out.stderr.split('`').nth(1).expect("a command in backticks");
    assert!(retry.contains("--set 'hidden=[16,8]'") && retry.contains("--lr 5000") && !retry.contains("lr=50000"), "{retry}");
}

#[test]
fn bench_measures_the_set_recipe_and_refuses_set_epochs() {
    let f = Fixture::new();
    let data = f.data();
    let d = data.to_str().unwrap();
    let json = f.path("bench.json");
    let args = ["bench", "--backend", CPU, "--epochs", "1", "--data-dir", d, "--skip-checksum", "--set", "hidden=[8]", "--set", "batch_size=64", "--json", json.to_str().unwrap()];
    let out = f.run(&args);
    out.ok();
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["batch_size"], 64);
    assert!(report["results"][0]["recipe"].as_str().unwrap().starts_with("784-8-10 relu, batch 64"), "{report}");
    for (set, want) in [("epochs=2", "pass --epochs instead"), ("val_size=100", "without a validation split")] {
        let out = f.run(&["bench", "--backend", CPU, "--data-dir", d, "--skip-checksum", "--set", set]);
        out.bad_input();
        assert!(out.stderr.contains(want), "{set}: {}", out.stderr);
    }
}

#[test]
fn sweep_sets_its_fixed_recipe_and_refuses_swept_fields() {
    let f = Fixture::new();
    f.write_config("s.toml", "val_size = 128\n[fixed]\nepochs = 1\nbatch_size = 32\n[space]\nlr = [0.05, 0.1]\n");
    let out = f.sweep(&["s.toml", "--out", "sw", "--set", "hidden=[8]", "--set", "init_std=0.1"]);
    out.ok();
    let saved = std::fs::read_to_string(f.path("sw/sweep.toml")).unwrap();
    assert!(saved.contains("hidden = [8]") && saved.contains("init_std = 0.1"), "{saved}");
    let trial = TrainConfig::load(&f.path("sw/trials/000/config.toml")).unwrap();
    assert_eq!((trial.hidden.clone(), trial.init_std), (vec![8], 0.1));
    for (args, want) in [
        (&["s.toml", "--out", "x", "--set", "lr=0.2"][..], "--set lr=0.2: `lr` is swept in the study's [space]"),
        (&["s.toml", "--out", "x", "--set", "val_size=10"], "[fixed]: field `val_size`"),
        (&["s.toml", "--out", "x", "--set", "lr=0.2x"], "--set lr=0.2x: `lr` is swept"),
        (&["--resume", "sw", "--set", "hidden=[4]"], "--set apply to a new sweep only"),
    ] {
        let out = f.sweep(args);
        out.bad_input();
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
    }
    assert!(!f.path("x").exists());
}
