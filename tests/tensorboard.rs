//! TensorBoard reads what runs write: a run's per-epoch series equal its metrics.csv, a resume
//! appends only new epochs (an epoch written past the checkpoint is not shown twice), a sweep's
//! trials appear in the HParams tab with their values, metrics and statuses; `--tensorboard
//! false` is remembered; bad values name the flag or field.
//!
//! The TensorBoard checks need a Python with `tensorboard` (`D2L_MLP_TENSORBOARD_PYTHON`, else
//! `D2L_MLP_OPTUNA_PYTHON`, else `python3`): `scripts/tensorboard_check.py` reads the folder
//! with TensorBoard's own reader and hparams plugin and prints what they see.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{CPU, Fixture, metrics, skip};
use serde_json::Value as Json;

fn python() -> Option<PathBuf> {
    let candidates = [std::env::var_os("D2L_MLP_TENSORBOARD_PYTHON"), std::env::var_os("D2L_MLP_OPTUNA_PYTHON"), Some("python3".into())];
    candidates.into_iter().flatten().map(PathBuf::from).find(|p| {
        Command::new(p).args(["-c", "import tensorboard"]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    })
}

fn python_or_skip(test: &str) -> Option<PathBuf> {
    let p = python();
    if p.is_none() {
        skip(test, "no Python with tensorboard (pip install tensorboard; or set D2L_MLP_TENSORBOARD_PYTHON)");
    }
    p
}

/// What TensorBoard sees under `logdir` (see scripts/tensorboard_check.py).
fn tensorboard_reads(py: &Path, logdir: &Path) -> Json {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tensorboard_check.py");
    let out = Command::new(py).arg(script).arg(logdir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tensorboard_check.py {}: {stderr}", logdir.display());
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn events_files(run: &Path) -> usize {
    std::fs::read_dir(run.join("tb")).map_or(0, |d| d.flatten().filter(|e| e.file_name().to_string_lossy().contains("tfevents")).count())
}

/// Every series of `run` (in `seen`) is metrics.csv's column at steps 1..N, each step once, at
/// wall times within [after, before]; `lr` is the recipe's rate.
fn assert_series_match_metrics(seen: &Json, run: &Path, held: &str, lr: f64, (after, before): (f64, f64)) {
    let rows = metrics(run);
    let scalars = seen["scalars"].as_object().unwrap_or_else(|| panic!("no scalars: {seen}"));
    let mut tags: Vec<&str> = scalars.keys().map(String::as_str).collect();
    tags.sort();
    let mut want = vec!["lr".to_string(), format!("{held}/accuracy"), format!("{held}/loss"), "train/accuracy".into(), "train/loss".into()];
    want.sort();
    assert_eq!(tags, want, "{seen}");
    for tag in &want {
        let points = scalars[tag].as_array().unwrap();
        let steps: Vec<u64> = points.iter().map(|p| p[0].as_u64().unwrap()).collect();
        assert_eq!(steps, (1..=rows.len() as u64).collect::<Vec<_>>(), "{tag}: steps 1..{} once each: {seen}", rows.len());
        for (p, r) in points.iter().zip(&rows) {
            let want = match tag.as_str() {
                "train/loss" => r.train_loss,
                "train/accuracy" => r.train_acc,
                "lr" => lr,
                t if t.ends_with("/loss") => r.test_loss,
                _ => r.test_acc,
            };
            let (v, wall) = (p[1].as_f64().unwrap(), p[2].as_f64().unwrap());
            assert!((v - want).abs() <= 1e-6, "{tag} at epoch {}: TensorBoard has {v}, metrics.csv {want}", r.epoch);
            assert!(after <= wall && wall <= before, "{tag} at epoch {}: wall time {wall} outside [{after}, {before}]", r.epoch);
        }
    }
}

#[test]
fn tensorboard_reads_each_epoch_of_a_run_and_a_resume_adds_only_the_new_ones() {
    let Some(py) = python_or_skip("tensorboard_reads_each_epoch_of_a_run_and_a_resume_adds_only_the_new_ones") else { return };
    let f = Fixture::new();
    let run = f.path("run");
    let began = now();
    let out = f.train("run", &["--epochs", "2"]);
    out.ok();
    assert!(out.stdout.contains("run/tb (TensorBoard)"), "the summary names the events folder: {}", out.stdout);
    let seen = tensorboard_reads(&py, &run);
    assert_series_match_metrics(&seen["runs"]["tb"], &run, "test", 0.1, (began, now()));
    assert!(seen["runs"]["tb"]["hparams"].is_null(), "a plain run has no hparams: {seen}");

    f.resume("run", CPU, &["--epochs", "3"]).ok();
    assert_eq!(events_files(&run), 2, "a resumed session writes a file of its own");
    assert_series_match_metrics(&tensorboard_reads(&py, &run)["runs"]["tb"], &run, "test", 0.1, (began, now()));

    // An epoch written past the checkpoint resumed from (a kill between the row and its
    // checkpoint) is trained again: TensorBoard shows it once, with the new session's figures.
    for kind in ["model", "optim", "scheduler"] {
        std::fs::remove_file(run.join(format!("checkpoint/{kind}-3.bpk"))).unwrap();
    }
    let out = f.resume("run", CPU, &[]);
    out.ok();
    assert!(out.stdout.contains("dropping 1 row(s) after epoch 2"), "{}", out.stdout);
    assert_eq!(metrics(&run).len(), 3);
    assert_series_match_metrics(&tensorboard_reads(&py, &run)["runs"]["tb"], &run, "test", 0.1, (began, now()));
}

#[test]
fn tensorboard_false_writes_no_events_and_is_remembered_on_resume() {
    let f = Fixture::new();
    let run = f.path("run");
    let out = f.train("run", &["--epochs", "1", "--tensorboard", "false"]);
    out.ok();
    assert!(!run.join("tb").exists() && !out.stdout.contains("TensorBoard"), "{}", out.stdout);
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(saved.contains("tensorboard = false"), "{saved}");
    f.resume("run", CPU, &["--epochs", "2"]).ok();
    assert!(!run.join("tb").exists(), "--resume keeps the run's choice");
    // The flag turns them on again: this session writes its own epochs only.
    f.resume("run", CPU, &["--epochs", "3", "--tensorboard", "true"]).ok();
    assert_eq!(events_files(&run), 1);
    let events = std::fs::read_dir(run.join("tb")).unwrap().next().unwrap().unwrap().path();
    let steps: Vec<i64> = d2l_mlp::run::tensorboard::read_events(&events).unwrap().iter().filter(|e| e.step > 0).map(|e| e.step).collect();
    assert_eq!(steps, [3; 5], "one record per series of epoch 3");
    // On again, the field is not saved: config.toml reads as one written before the field
    // existed, and such a run resumes writing events.
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(!saved.contains("tensorboard"), "{saved}");
    f.resume("run", CPU, &["--epochs", "4"]).ok();
    assert_eq!(events_files(&run), 2);
}

#[test]
fn bad_tensorboard_values_name_the_flag_or_the_field() {
    let f = Fixture::new();
    let out = f.train("run", &["--tensorboard", "maybe"]);
    out.bad_input();
    assert!(out.stderr.contains("--tensorboard"), "{}", out.stderr);
    f.write_config("bad.toml", "epochs = 1\ntensorboard = 3\n");
    let out = f.run(&["train", "--config", "bad.toml", "--artifacts", "run"]);
    out.bad_input();
    assert!(out.stderr.contains("bad.toml") && out.stderr.contains("field `tensorboard`"), "{}", out.stderr);
    assert!(!f.path("run").exists());
}

/// A grid of four trials, two of which diverge.
const STUDY: &str = "val_size = 128\n[fixed]\nepochs = 2\nbatch_size = 32\nhidden = [16]\ninit_std = 0.1\nseed = 1\n[space]\nlr = [0.1, 1000.0]\nactivation = [\"relu\", \"tanh\"]\n";

#[test]
fn a_sweeps_trials_show_in_the_hparams_tab_with_their_values_metrics_and_status() {
    let Some(py) = python_or_skip("a_sweeps_trials_show_in_the_hparams_tab_with_their_values_metrics_and_status") else { return };
    let f = Fixture::new();
    f.write_config("grid.toml", STUDY);
    let data = f.data();
    let began = now();
    f.run(&["sweep", "grid.toml", "--out", "s", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU]).ok();
    let s = f.path("s");
    let seen = tensorboard_reads(&py, &s);
    let tab = &seen["tab"];
    assert_eq!(tab["experiment"]["metrics"], serde_json::json!(["validation/accuracy", "validation/loss"]), "{tab}");
    let mut swept: Vec<&str> = tab["experiment"]["hparams"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    swept.sort();
    assert_eq!(swept, ["activation", "lr"], "{tab}");
    let groups = tab["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 4, "{tab}");
    for i in 0..4 {
        let name = format!("{i:03}");
        let trial = s.join("trials").join(&name);
        let cfg = d2l_mlp::run::RunDir::new(&trial).load_config().unwrap();
        let values = serde_json::json!({"lr": cfg.lr, "activation": cfg.activation.name()});
        let diverged = cfg.lr > 1.0;
        // The trial's own run: its session start (read through the accumulator's metadata).
        let run = &seen["runs"][format!("trials/{name}/tb")];
        let hp = &run["hparams"];
        assert_eq!((&hp["values"], hp["group"].as_str()), (&values, Some(name.as_str())), "{run}");
        assert_eq!(hp["status"], if diverged { 2 } else { 1 }, "STATUS_FAILURE for a diverged trial, else STATUS_SUCCESS: {run}");
        if !diverged {
            assert_series_match_metrics(run, &trial, "validation", cfg.lr, (began, now()));
        }
        // The tab: one group per trial, with its values, status and last validation figures.
        let g = groups.iter().find(|g| g["name"] == name.as_str()).unwrap_or_else(|| panic!("no group {name}: {tab}"));
        assert_eq!(g["hparams"], values, "{g}");
        assert_eq!(g["statuses"], serde_json::json!([if diverged { 2 } else { 1 }]), "{g}");
        match metrics(&trial).last() {
            Some(last) => {
                let acc = g["metrics"]["validation/accuracy"].as_f64().unwrap();
                assert!((acc - last.test_acc).abs() <= 1e-6, "{g} vs {last:?}");
            }
            None => assert!(diverged && g["metrics"].as_object().unwrap().is_empty(), "{g}"),
        }
    }
    // The refit is scored on the test set, and is no trial.
    let best = &seen["runs"]["best/tb"];
    assert!(best["hparams"].is_null(), "{best}");
    let cfg = d2l_mlp::run::RunDir::new(s.join("best")).load_config().unwrap();
    assert_series_match_metrics(best, &s.join("best"), "test", cfg.lr, (began, now()));
}
