//! `train --val-size N [--patience P]` through the real binary: the last N training images are
//! scored every epoch, the best epoch's model is the run's, patience stops the run, the test set
//! is evaluated once at the end; a resume (interrupted, or after an early stop) ends as an
//! uninterrupted run; without --val-size nothing changes.

mod common;
use common::*;

use d2l_mlp::run::RunDir;
use d2l_mlp::run::checkpoint::epochs_on_disk;

fn run_json(f: &Fixture, run: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(f.path(&format!("{run}/run.json"))).unwrap()).unwrap()
}

/// The best epoch by validation accuracy, the earlier of equals.
fn best_epoch(rows: &[d2l_mlp::run::metrics::EpochRow]) -> usize {
    let top = rows.iter().map(|r| r.test_acc).fold(f64::MIN, f64::max);
    rows.iter().find(|r| r.test_acc == top).unwrap().epoch
}

#[test]
fn the_held_out_images_are_scored_and_the_best_epoch_is_the_model() {
    let f = Fixture::new();
    let out = f.train("run", &["--val-size", "64", "--epochs", "4"]);
    out.ok();
    let run = f.path("run");
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(text.starts_with("epoch,train_loss,train_acc,val_loss,val_acc,seconds\n"), "{text}");
    assert!(out.stdout.contains("epoch  1/4  train loss ") && out.stdout.contains(" | val loss "), "{}", out.stdout);
    assert!(out.stdout.contains("training on 448; the best epoch's model is kept"), "{}", out.stdout);
    let rows = metrics(&run);
    assert_eq!(rows.len(), 4);
    // The validation figures are the last 64 training images, scored by that epoch's model.
    let device = d2l_mlp::backend::cpu_device();
    let cfg = RunDir::new(&run).load_config().unwrap();
    let (_, val) = d2l_mlp::data::synthetic(N_TRAIN, 7).take_tail(64).unwrap();
    let m1 = d2l_mlp::run::checkpoint::load_model_file(&run.join("checkpoint/model-1.bpk"), &cfg, &device).unwrap();
    let scored = d2l_mlp::inference::evaluate(&m1, &val, &device, "epoch 1").unwrap();
    assert!((scored.accuracy - rows[0].test_acc).abs() < 1e-6 && (scored.loss - rows[0].test_loss).abs() < 1e-4, "{} {} vs {:?}", scored.accuracy, scored.loss, rows[0]);
    // The run's model is the best epoch's, named in the output, run.json and the report.
    let best = best_epoch(&rows);
    assert_eq!(weights(&run, &run.join("model.bpk")), weights(&run, &run.join(format!("checkpoint/model-{best}.bpk"))));
    assert_eq!(run_json(&f, "run")["best_epoch"], best);
    assert!(run_json(&f, "run").get("stopped_early_after").is_none());
    assert!(out.stdout.contains(&format!("best epoch {best} (validation loss")), "{}", out.stdout);
    let report = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(report.contains(&format!("model.bpk is epoch {best}'s")), "report names the best epoch");
    assert!(report.contains("Validation accuracy") && report.contains("Test accuracy"));
    // The test set, once, at the end: eval.json as `eval` writes it, for the best model.
    let eval: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert_eq!(eval["samples"], N_TEST);
    let line = out.stdout.lines().find(|l| l.starts_with("test (once, with the best epoch's model)")).expect("a test line");
    assert!(line.contains(&format!("acc {:.4}", eval["accuracy"].as_f64().unwrap())), "{line}");
    let saved = d2l_mlp::config::TrainConfig::load(&run.join("config.toml")).unwrap();
    assert_eq!((saved.val_size, saved.patience), (64, None));
}

#[test]
fn patience_stops_the_run_and_a_resume_ends_as_the_straight_run() {
    let f = Fixture::new();
    let args = ["--val-size", "64", "--patience", "1", "--epochs", "30", "--lr", "0.3"];
    let out = f.train("straight", &args);
    out.ok();
    let rows = metrics(&f.path("straight"));
    let (best, last) = (best_epoch(&rows), rows.last().unwrap().epoch);
    assert!(last < 30, "patience 1 never ran out in 30 epochs: {rows:?}");
    assert_eq!(last - best, 1, "stopped {last} with the best at {best}");
    // Every epoch before the last brought a better accuracy than its predecessors' best, or was the first after one.
    assert!(out.stdout.contains(&format!("stopped early after epoch {last}: no better validation accuracy for 1 epoch(s)")), "{}", out.stdout);
    assert_eq!(run_json(&f, "straight")["stopped_early_after"], last);

    // The same run in two sessions, keeping one checkpoint: the best one is kept too.
    let mut first = args.to_vec();
    first[5] = "2";
    f.train("split", &[&first[..], &["--keep-checkpoints", "1"]].concat()).ok();
    let resumed = f.resume("split", CPU, &["--epochs", "30", "--keep-checkpoints", "1"]);
    resumed.ok();
    assert_close(&figures(&metrics(&f.path("split"))), &figures(&rows), 1e-6);
    assert_eq!(weights(&f.path("split"), &f.path("split/model.bpk")), weights(&f.path("straight"), &f.path("straight/model.bpk")));
    let kept = epochs_on_disk(&RunDir::new(f.path("split")));
    assert!(kept.contains(&best) && kept.contains(&last), "{kept:?}");
    assert_eq!(run_json(&f, "split")["best_epoch"], best);

    // After an early stop a resume trains nothing and says why; the recipe may not change.
    let again = f.resume("straight", CPU, &["--epochs", "40"]);
    again.ok();
    assert!(again.stdout.contains(&format!("the run stopped early after epoch {last}")), "{}", again.stdout);
    assert_eq!(metrics(&f.path("straight")).len(), rows.len());
    let out = f.resume("straight", CPU, &["--patience", "5"]);
    out.bad_input();
    assert!(out.stderr.contains("refused: --patience (run has 1)"), "{}", out.stderr);
}

#[test]
fn validation_settings_are_checked_with_the_fix() {
    let f = Fixture::new();
    for (args, want) in [
        (&["--patience", "3"][..], "field `patience` (3) needs a validation split to watch: set `val_size` too"),
        (&["--val-size", "10", "--patience", "0"], "field `patience` must be at least 1"),
        (&["--val-size", "512"], "val_size = 512 leaves no training images (the training split has 512)"),
        (&["--val-size", "500"], "field `batch_size` (32) is larger than the training set (12 images)"),
        (&["--val-size", "10", "--set", "val_size=20"], "--set val_size=20 and --val-size both set `val_size`"),
    ] {
        let out = f.train("v", args);
        out.bad_input();
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
    }
    f.write_config("p.toml", "patience = 2\n");
    let out = f.run(&["train", "--config", "p.toml", "--artifacts", "w"]);
    out.bad_input();
    assert!(out.stderr.starts_with("error: p.toml: field `patience` (2) needs a validation split"), "{}", out.stderr);
}

#[test]
fn without_val_size_the_run_is_the_books_and_writes_no_test_evaluation() {
    let f = Fixture::new();
    let out = f.train("run", &["--epochs", "2"]);
    out.ok();
    let text = std::fs::read_to_string(f.path("run/metrics.csv")).unwrap();
    assert!(text.starts_with("epoch,train_loss,train_acc,test_loss,test_acc,seconds\n"));
    assert!(!out.stdout.contains("validation") && !out.stdout.contains("best epoch"), "{}", out.stdout);
    assert!(!f.path("run/eval.json").exists());
    assert!(run_json(&f, "run").get("best_epoch").is_none());
    let cfg = std::fs::read_to_string(f.path("run/config.toml")).unwrap();
    assert!(!cfg.contains("val_size") && !cfg.contains("patience"), "{cfg}");
}
