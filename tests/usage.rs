//! What a new user hits: the retry after a diverged run, retention on resume, argument errors
//! with their detail, limits checked before any work, and outputs into missing folders.
mod common;

use common::*;
use d2l_mlp::run::RunDir;
use d2l_mlp::run::checkpoint::epochs_on_disk;

#[test]
fn a_diverged_first_epoch_gives_the_exact_retry_command_and_the_retry_starts_over() {
    let f = Fixture::new();
    let out = f.train("r1", &["--lr", "50000", "--epochs", "1"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.one_error_line();
    assert!(out.stderr.contains("nothing was checkpointed"), "{}", out.stderr);
    // The suggested rate is smaller than the one that diverged, and the command is complete.
    let retry = out.stderr.split('`').nth(1).expect("a command in backticks").to_string();
    assert!(retry.contains("--lr 5000") && retry.contains("--artifacts r1") && retry.contains("--config small.toml"), "{retry}");
    let data = f.data();
    let mut args: Vec<&str> = retry.split_whitespace().collect();
    args.extend(["--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU]);
    // Retrying in the same folder is not refused: there was nothing to protect.
    let again = f.run(&args);
    assert_ne!(again.code, 2, "{}", again.stderr);
    assert!(again.stdout.contains("starting it over"), "{}", again.stdout);
    let sane = f.train("r1", &[]);
    sane.ok();
    assert!(sane.stdout.contains("starting it over"), "{}", sane.stdout);
    assert_eq!(metrics(&f.path("r1")).len(), 3);
}

#[test]
fn keep_checkpoints_applies_to_the_whole_run_on_resume() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "5", "--keep-checkpoints", "2"]).ok();
    let run = RunDir::new(f.path("run"));
    assert_eq!(epochs_on_disk(&run), vec![4, 5]);
    f.resume("run", CPU, &["--epochs", "6", "--keep-checkpoints", "1"]).ok();
    assert_eq!(epochs_on_disk(&run), vec![6]);
}

#[test]
fn argument_errors_keep_clap_detail_on_one_line() {
    let f = Fixture::new();
    let out = f.run(&["import", "mlp.safetensors"]);
    out.bad_input();
    assert!(out.stderr.contains("--artifacts"), "{}", out.stderr);
    let out = f.run(&["train", "--backend", "cuda"]);
    out.bad_input();
    assert!(out.stderr.contains("flex") && out.stderr.contains("ndarray") && out.stderr.contains("wgpu"), "{}", out.stderr);
}

#[test]
fn predict_checks_count_before_any_work() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    let data = f.data();
    for count in ["600", "20000", "0"] {
        let out = f.run(&["predict", "--artifacts", "run", "--count", count, "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU]);
        out.bad_input();
        assert!(out.stdout.is_empty(), "{count}: printed before failing:\n{}", out.stdout);
        assert!(out.stderr.contains("--count") && out.stderr.contains("512"), "{}", out.stderr);
    }
}

#[test]
fn outputs_into_missing_folders_or_other_formats_are_bad_input() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    let out = f.run(&["export", "--artifacts", "run", "--out", "missing/w.safetensors", "--backend", CPU]);
    out.bad_input();
    assert!(out.stderr.contains("missing") && !out.stderr.contains(".tmp-"), "{}", out.stderr);
    for args in [vec!["plot", "--artifacts", "run", "--out", "x.jpg"], vec!["activations", "--out", "a.jpg", "--backend", CPU]] {
        let out = f.run(&args);
        out.bad_input();
        assert!(out.stderr.contains(".png"), "{}", out.stderr);
        assert!(!f.path("x.jpg").exists() && !f.path("a.jpg").exists());
    }
}

#[test]
fn the_backend_default_comes_from_the_environment() {
    let f = Fixture::new();
    let out = run_env(f.dir.path(), &["activations", "--out", "a.png"], &[("D2L_MLP_BACKEND", CPU)]);
    out.ok();
    assert!(out.stdout.lines().next().unwrap().contains(&format!("backend {CPU}")), "{}", out.stdout);
}

#[test]
fn eval_from_a_subfolder_names_where_it_looked() {
    let f = Fixture::new();
    std::fs::create_dir(f.path("sub")).unwrap();
    let out = run_in(&f.path("sub"), &["eval", "--backend", CPU]);
    out.bad_input();
    assert!(out.stderr.contains(&f.path("sub/artifacts").display().to_string()), "{}", out.stderr);
}

#[test]
fn bench_measures_each_backend_in_a_process_of_its_own() {
    let f = Fixture::new();
    let data = f.data();
    let out = f.run(&["bench", "--epochs", "1", "--json", "all.json", "--data-dir", data.to_str().unwrap(), "--skip-checksum"]);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.path("all.json")).unwrap()).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), d2l_mlp::backend::compiled().len(), "{}", out.stdout);
    for r in results {
        assert!(r["peak_rss_mib"].as_f64().unwrap() > 1.0, "{r}");
        assert!(!r["machine"]["cpu"].as_str().unwrap().is_empty(), "{r}");
    }
    assert_eq!(out.stdout.matches("(this backend alone)").count(), results.len(), "{}", out.stdout);
}

#[test]
fn a_sweep_folder_given_for_a_run_is_named_with_its_runs() {
    let f = Fixture::new();
    std::fs::create_dir(f.path("study")).unwrap();
    std::fs::write(f.path("study/sweep.toml"), "[space]\nlr = [0.1]\n").unwrap();
    let data = f.data();
    let d = data.to_str().unwrap();
    for args in [vec!["plot", "--artifacts", "study"], vec!["eval", "--artifacts", "study", "--data-dir", d, "--skip-checksum", "--backend", CPU]] {
        let out = f.run(&args);
        out.bad_input();
        let want = "): is a sweep folder (its study is sweep.toml), not a run; pass one of its runs, study/best (the refit of the best trial) or study/trials/NNN (a trial), or see the whole study with `report --artifacts study`";
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
    }
}
