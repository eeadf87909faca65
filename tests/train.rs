//! `train` end to end on small generated data: artifacts, output, reproducibility, no clobbering,
//! resume (exact continuation, extension, refused overrides, kill -9, damaged checkpoints).

mod common;
use common::*;
use d2l_mlp::run::RunDir;
use d2l_mlp::run::checkpoint::epochs_on_disk;

#[test]
fn a_short_run_lowers_the_loss_and_writes_every_artifact() {
    let f = Fixture::new();
    let out = f.train("run", &[]);
    out.ok();
    let run = f.path("run");
    for p in ["config.toml", "metrics.csv", "model.bpk", "curves.png", "run.json", "report.html"] {
        assert!(run.join(p).is_file(), "missing {p}");
    }
    for e in 1..=3 {
        for kind in ["model", "optim", "scheduler"] {
            assert!(run.join(format!("checkpoint/{kind}-{e}.bpk")).is_file(), "missing {kind}-{e}");
        }
    }
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(text.starts_with("epoch,train_loss,train_acc,test_loss,test_acc,seconds\n"));
    let rows = metrics(&run);
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(rows[2].train_loss < rows[0].train_loss, "{rows:?}");
    assert!(rows[2].test_acc > 0.5, "synthetic data is easy: {rows:?}");
    // The saved config is the resolved recipe.
    let cfg = d2l_mlp::config::TrainConfig::load(&run.join("config.toml")).unwrap();
    assert_eq!((cfg.epochs, cfg.batch_size, cfg.hidden.clone()), (3, 32, vec![32]));
    // One line per epoch with the figures, no per-batch debug dumps.
    assert!(out.stdout.contains("epoch  1/3  train loss "), "{}", out.stdout);
    assert!(out.stdout.contains("epoch  3/3"), "{}", out.stdout);
    assert!(!out.stdout.contains("ProgressSnapshot"), "{}", out.stdout);
    assert!(out.stdout.lines().next().unwrap().contains(&format!("backend {CPU}")), "{}", out.stdout);
    assert!(out.stdout.contains("done: 3 epoch(s)"));
    // The final model equals the last checkpoint.
    assert_eq!(weights(&run, &run.join("model.bpk")), weights(&run, &run.join("checkpoint/model-3.bpk")));
}

#[test]
fn the_same_seed_gives_the_same_metrics() {
    let f = Fixture::new();
    f.train("a", &[]).ok();
    f.train("b", &[]).ok();
    f.train("c", &["--seed", "2"]).ok();
    let (a, b, c) = (metrics(&f.path("a")), metrics(&f.path("b")), metrics(&f.path("c")));
    assert_eq!(figures(&a), figures(&b));
    assert_ne!(figures(&a), figures(&c));
}

#[test]
fn dropout_repeats_with_the_seed_and_across_a_resume() {
    let f = Fixture::new();
    f.write_config("drop.toml", "epochs = 3\nbatch_size = 32\nhidden = [32, 16]\nlr = 0.1\ninit_std = 0.1\nseed = 1\ndropout = 0.3\n");
    let data = f.data();
    let train = |run: &str, extra: &[&str]| {
        let mut args = vec!["train", "--config", "drop.toml", "--artifacts", run, "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU];
        args.extend_from_slice(extra);
        run_env(f.dir.path(), &args, &[]).ok();
    };
    train("a", &[]);
    train("b", &[]);
    train("c", &["--seed", "2"]);
    train("split", &["--epochs", "2"]);
    run_env(f.dir.path(), &["train", "--resume", "--artifacts", "split", "--epochs", "3", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU], &[]).ok();
    let [a, b, c, split] = ["a", "b", "c", "split"].map(|r| figures(&metrics(&f.path(r))));
    assert_eq!(a, b, "the same seed, other dropout draws");
    assert_ne!(a, c);
    assert_eq!(a, split, "a resumed run drew other dropout masks than an uninterrupted one");
}

#[test]
fn an_existing_run_is_never_clobbered_without_overwrite() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    let before = std::fs::read(f.path("run/metrics.csv")).unwrap();
    let out = f.train("run", &["--epochs", "1"]);
    out.bad_input();
    assert!(out.stderr.contains("--resume") && out.stderr.contains("--overwrite"), "{}", out.stderr);
    assert_eq!(std::fs::read(f.path("run/metrics.csv")).unwrap(), before);
    f.train("run", &["--epochs", "2", "--overwrite"]).ok();
    assert_eq!(metrics(&f.path("run")).len(), 2);
    // --resume and --overwrite together are refused.
    f.resume("run", CPU, &["--overwrite"]).bad_input();
}

#[test]
fn cli_overrides_reach_the_run() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1", "--lr", "0.05", "--batch-size", "32", "--seed", "9"]).ok();
    let cfg = d2l_mlp::config::TrainConfig::load(&f.path("run/config.toml")).unwrap();
    assert_eq!((cfg.epochs, cfg.lr, cfg.batch_size, cfg.seed), (1, 0.05, 32, 9));
}

#[test]
fn resume_after_2_epochs_matches_4_epochs_straight() {
    let f = Fixture::new();
    f.train("straight", &["--epochs", "4"]).ok();
    f.train("split", &["--epochs", "2"]).ok();
    let out = f.resume("split", CPU, &["--epochs", "4"]);
    out.ok();
    assert!(out.stdout.contains("resuming at epoch 3 of 4"), "{}", out.stdout);
    let (a, b) = (metrics(&f.path("straight")), metrics(&f.path("split")));
    assert_eq!(b.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_close(&figures(&a), &figures(&b), 1e-6);
    assert_eq!(
        weights(&f.path("straight"), &f.path("straight/model.bpk")),
        weights(&f.path("split"), &f.path("split/model.bpk"))
    );
    // The run's config now records the new total.
    let cfg = d2l_mlp::config::TrainConfig::load(&f.path("split/config.toml")).unwrap();
    assert_eq!(cfg.epochs, 4);
}

#[test]
fn resume_refuses_recipe_changes_and_empty_folders() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    for flag in [["--lr", "0.5"], ["--batch-size", "16"], ["--seed", "3"]] {
        let out = f.resume("run", CPU, &flag);
        out.bad_input();
        assert!(out.stderr.contains(flag[0]), "{}", out.stderr);
    }
    let other = f.write_config("wide.toml", "hidden = [64]\n");
    let out = f.resume("run", CPU, &["--config", other.to_str().unwrap()]);
    out.bad_input();
    assert!(out.stderr.contains("--config"), "{}", out.stderr);
    std::fs::create_dir(f.path("empty")).unwrap();
    let out = f.resume("empty", CPU, &[]);
    out.bad_input();
    assert!(out.stderr.contains("no run"), "{}", out.stderr);
    // A finished run with nothing to do says so and succeeds.
    let out = f.resume("run", CPU, &[]);
    out.ok();
    assert!(out.stdout.contains("--epochs"), "{}", out.stdout);
}

#[test]
fn keep_checkpoints_keeps_the_last_n() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "3", "--keep-checkpoints", "1"]).ok();
    assert_eq!(d2l_mlp::run::checkpoint::epochs_on_disk(&d2l_mlp::run::RunDir::new(f.path("run"))), vec![3]);
    f.train("zero", &["--keep-checkpoints", "0"]).bad_input();
}

#[test]
fn a_truncated_latest_checkpoint_is_reported_and_skipped() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "3"]).ok();
    let ck = f.path("run/checkpoint/model-3.bpk");
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &bytes[..bytes.len() / 2]).unwrap();
    let out = f.resume("run", CPU, &["--epochs", "4"]);
    out.ok();
    assert!(out.stdout.contains("checkpoint of epoch 3 is incomplete or unreadable"), "{}", out.stdout);
    assert!(out.stdout.contains("resuming at epoch 3 of 4"), "{}", out.stdout);
    assert_eq!(metrics(&f.path("run")).iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    // Straight 4 epochs gives the same figures: the damaged epoch was recomputed, not trusted.
    f.train("straight", &["--epochs", "4"]).ok();
    assert_close(&figures(&metrics(&f.path("straight"))), &figures(&metrics(&f.path("run"))), 1e-6);
}

#[test]
fn a_run_killed_mid_epoch_resumes_from_its_last_checkpoint() {
    let f = Fixture::new();
    let data = f.data();
    let args = ["train", "--config", "small.toml", "--epochs", "6", "--artifacts", "run", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU];
    // The run waits at the start of epoch 3 (the test hook), so the kill lands inside it.
    let mut child = f.spawn(&args, Some("3"));
    let run = RunDir::new(f.path("run"));
    child.wait_until("epoch 2's checkpoint", || epochs_on_disk(&run).contains(&2));
    child.kill(); // SIGKILL
    assert_eq!(metrics(&f.path("run")).len(), 2, "killed in epoch 3");
    f.resume("run", CPU, &[]).ok();
    let rows = metrics(&f.path("run"));
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), (1..=6).collect::<Vec<_>>());
    assert!(f.path("run/model.bpk").is_file());
    // The resumed run is the uninterrupted one.
    f.train("straight", &["--epochs", "6"]).ok();
    assert_close(&figures(&metrics(&f.path("straight"))), &figures(&rows), 1e-6);
}

#[test]
fn ctrl_c_stops_cleanly_and_the_run_resumes() {
    stop_cleanly_and_resume("INT", 130);
}

/// Batch systems (Slurm, Kubernetes, systemd) stop jobs with SIGTERM; a closed terminal sends SIGHUP.
#[test]
fn sigterm_stops_cleanly_and_the_run_resumes() {
    stop_cleanly_and_resume("TERM", 143);
}

#[test]
fn sighup_stops_cleanly_and_the_run_resumes() {
    stop_cleanly_and_resume("HUP", 129);
}

fn stop_cleanly_and_resume(signal: &str, code: i32) {
    let f = Fixture::new();
    let data = f.data();
    let args = ["train", "--config", "small.toml", "--epochs", "4", "--artifacts", "run", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU];
    // The run waits at the start of epoch 2 (the test hook) until the signal stops it.
    let mut child = f.spawn(&args, Some("2"));
    let run = RunDir::new(f.path("run"));
    child.wait_until("epoch 1's checkpoint", || !epochs_on_disk(&run).is_empty());
    child.signal(signal);
    let out = child.output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let run = f.path("run");
    let rows = metrics(&run);
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1], "stopped in epoch 2");
    assert_eq!(epochs_on_disk(&RunDir::new(&run)), [1]);
    let leftovers: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .chain(std::fs::read_dir(run.join("checkpoint")).unwrap())
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    f.resume("run", CPU, &["--epochs", &(rows.len() + 1).to_string()]).ok();
    assert_eq!(metrics(&run).len(), rows.len() + 1);
}
