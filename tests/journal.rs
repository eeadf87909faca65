//! A study as Optuna's journal: Optuna itself reads a finished study and enqueues into one;
//! processes that `--join` one study share its trials, and a killed one's trial is continued;
//! the median pruner; one-line errors for a journal or flags that do not fit.
//!
//! The Optuna checks need a Python with `optuna` (`D2L_MLP_OPTUNA_PYTHON`, else `python3`).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Fixture, Proc, metrics, skip};
use d2l_mlp::run::RunDir;
use d2l_mlp::run::checkpoint::epochs_on_disk;
use d2l_mlp::sweep::journal::{JTrial, Replay, State, replay};

const FIXED: &str = "val_size = 128\n[fixed]\nepochs = 2\nbatch_size = 32\nhidden = [16]\ninit_std = 0.1\nseed = 1\n";
/// [`FIXED`] without `hidden`, beside a swept `width` (one layer, as hidden = [16] gave).
fn fixed_for_width() -> String {
    FIXED.replace("hidden = [16]\n", "")
}
/// A tpe study of `n` trials over [`SPACE`], `epochs` each.
fn tpe(n: usize, epochs: usize) -> String {
    format!("method = \"tpe\"\nseed = 3\ntrials = {n}\n{}[tpe]\nstartup = 2\n{SPACE}", fixed_for_width().replace("epochs = 2", &format!("epochs = {epochs}")))
}
const SPACE: &str = "[space]\nlr = { log_uniform = [0.01, 1.0] }\nwidth = { int_log_uniform = [8, 64] }\nactivation = [\"relu\", \"tanh\"]\n";


/// `sweep ARGS` in the background (killed when dropped); `hold`: the test hook (tests/common).
fn spawn(f: &Fixture, args: &[&str], hold: Option<&str>) -> Proc {
    let mut all: Vec<String> = std::iter::once("sweep").chain(args.iter().copied()).map(String::from).collect();
    all.extend(f.data_args());
    f.spawn(&all.iter().map(String::as_str).collect::<Vec<_>>(), hold)
}

/// Whether it succeeded, and its stdout and stderr.
fn finish(p: Proc) -> (bool, String) {
    let out = p.output();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn read(dir: &Path) -> Replay {
    let name = dir.file_name().unwrap().to_str().unwrap();
    replay(&std::fs::read(dir.join("journal.log")).unwrap(), &dir.join("journal.log"), name).unwrap()
}

fn numbers(r: &Replay) -> Vec<usize> {
    r.trials.iter().map(|t| t.number).collect()
}

fn finished(t: &JTrial) -> bool {
    t.state.is_finished()
}

/// A Python that imports optuna, or why not.
fn python() -> Option<PathBuf> {
    let p = std::env::var_os("D2L_MLP_OPTUNA_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let ok = Command::new(&p).args(["-c", "import optuna"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    ok.then_some(p)
}

fn python_or_skip(test: &str) -> Option<PathBuf> {
    let p = python();
    if p.is_none() {
        skip(test, "no Python with optuna (pip install optuna; or set D2L_MLP_OPTUNA_PYTHON)");
    }
    p
}

fn run_python(py: &Path, args: &[&str]) -> String {
    let out = Command::new(py).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python {args:?}: {text}");
    text
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name).to_str().unwrap().to_string()
}

#[test]
fn optuna_reads_a_finished_tpe_study_and_its_best_is_the_leaderboards() {
    let Some(py) = python_or_skip("optuna_reads_a_finished_tpe_study") else { return };
    let f = Fixture::with_sizes(1024, 128);
    f.write_config("t.toml", &tpe(6, 2));
    f.sweep(&["t.toml", "--out", "tpe"]).ok();
    let r = read(&f.path("tpe"));
    assert_eq!(numbers(&r), (0..6).collect::<Vec<_>>());
    assert!(r.trials.iter().all(finished));
    let said = run_python(&py, &[&script("optuna_check.py"), f.path("tpe").to_str().unwrap(), "--expect-trials", "6", "--importance"]);
    assert!(said.contains("ok"), "{said}");
}

#[test]
fn a_trial_enqueued_from_optuna_is_trained_by_the_binary() {
    let Some(py) = python_or_skip("a_trial_enqueued_from_optuna_is_trained_by_the_binary") else { return };
    let f = Fixture::new();
    f.write_config("r.toml", &format!("method = \"random\"\ntrials = 2\n{}{SPACE}", fixed_for_width()));
    f.sweep(&["r.toml", "--out", "rs", "--workers", "1"]).ok();
    let journal = f.path("rs/journal.log");
    let code = format!(
        "import optuna\ns = optuna.load_study(study_name='rs', storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend({:?})))\ns.enqueue_trial({{'lr': 0.07, 'width': 32, 'activation': 'tanh'}})\ns.enqueue_trial({{'lr': 5.0}})\n",
        journal.to_str().unwrap()
    );
    run_python(&py, &["-c", &code]);
    assert_eq!(read(&f.path("rs")).trials[2].state, State::Waiting);
    let o = f.sweep(&["--resume", "rs", "--workers", "1"]);
    o.ok();
    let r = read(&f.path("rs"));
    let t = &r.trials[2];
    assert_eq!(t.state, State::Complete, "{:?}", t);
    assert_eq!(t.params["lr"].0, 0.07);
    assert_eq!(t.intermediate.len(), 2);
    // A value outside the space does not stop the study: that trial fails, with the reason.
    let bad = &r.trials[3];
    assert_eq!(bad.state, State::Fail);
    assert!(bad.user_attrs["reason"].as_str().unwrap().contains("is outside its range [0.01, 1]"), "{:?}", bad.user_attrs);
    assert!(o.stdout.contains("trial 002 [lr=0.07 width=32 activation=tanh]") && o.stdout.contains("trained 2 epoch(s)"), "{}", o.stdout);
    assert_eq!(std::fs::read_to_string(f.path("rs/leaderboard.csv")).unwrap().lines().count(), 4);
    // And the binary's own --enqueue: checked against the space, then trained first.
    let before = std::fs::read(&journal).unwrap();
    for (args, says) in [
        (vec!["--enqueue", "rs", "depth=2"], "`depth` is not a swept field of rs (it sweeps lr, width, activation)"),
        (vec!["--enqueue", "rs", "lr=5"], "`lr` = 5 is outside its range [0.01, 1]"),
        (vec!["--enqueue", "rs", "activation=gelu"], "not one of its values (relu, tanh)"),
        (vec!["--enqueue", "rs", "lr"], "`lr` is not FIELD=VALUE"),
    ] {
        let o = f.run(&[&["sweep"], &args[..]].concat());
        o.bad_input().one_error_line();
        assert!(o.stderr.contains(says), "{args:?}: {}", o.stderr);
    }
    assert_eq!(std::fs::read(&journal).unwrap(), before, "a refused --enqueue changes nothing");
    let o = f.run(&["sweep", "--enqueue", "rs", "lr=0.3", "activation=relu"]);
    o.ok();
    assert!(o.stdout.contains("enqueued trial 004"), "{}", o.stdout);
    let o = f.sweep(&["--resume", "rs", "--workers", "1"]);
    o.ok();
    let t = &read(&f.path("rs")).trials[4];
    assert_eq!((t.state, t.params["lr"].0), (State::Complete, 0.3));
}

#[test]
fn two_joined_processes_share_one_tpe_study_and_a_killed_ones_trial_is_continued() {
    let f = Fixture::with_sizes(2048, 128);
    f.write_config("t.toml", &tpe(12, 6));
    let join = ["t.toml", "--out", "tj", "--join", "--workers", "1"];
    // The first process takes trial 0; killed once its first epoch is saved (it waits at
    // epoch 2: the test hook).
    let mut first = spawn(&f, &join, Some("2@trials/000"));
    let trial0 = RunDir::new(f.path("tj/trials/000"));
    first.wait_until("trial 0's first checkpoint", || !epochs_on_disk(&trial0).is_empty());
    let mut second = spawn(&f, &join, None);
    second.wait_until("the second process to claim a trial", || read(&f.path("tj")).trials.len() >= 2);
    first.kill();
    let third = spawn(&f, &join, None);
    let (ok2, said2) = finish(second);
    let (ok3, said3) = finish(third);
    assert!(ok2 && ok3, "{said2}\n{said3}");
    let r = read(&f.path("tj"));
    assert_eq!(numbers(&r), (0..12).collect::<Vec<_>>(), "trials 0..11, each once");
    assert!(r.trials.iter().all(finished), "{:?}", r.trials.iter().map(|t| t.state).collect::<Vec<_>>());
    // Every process wrote: the worker ids' process part.
    let text = std::fs::read_to_string(f.path("tj/journal.log")).unwrap();
    let writers: BTreeSet<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["worker_id"].as_str().map(|w| w[..36].to_string()))
        .collect();
    assert!(writers.len() >= 2, "{writers:?}");
    // The killed process's trial went on from its checkpoint: each epoch once, not all again.
    let rows = metrics(trial0.path());
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), (1..=6).collect::<Vec<_>>());
    let line = [&said2, &said3].into_iter().flat_map(|s| s.lines()).find(|l| l.starts_with("trial 000")).unwrap_or_default().to_string();
    let trained: usize = line.split("trained ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(99);
    assert!(trained < 6, "trial 000 continued, not retrained: {line:?}\n{said2}\n{said3}");
    assert_eq!(r.trials[0].intermediate.keys().copied().collect::<Vec<_>>(), (1..=6).collect::<Vec<i64>>());
    // The last process out published the leaderboard; --collect refits.
    assert!(format!("{said2}{said3}").contains("the study is finished"), "{said2}\n{said3}");
    let o = f.sweep(&["--collect", "tj"]);
    o.ok();
    assert!(o.stdout.contains("refit test accuracy"), "{}", o.stdout);
}

#[test]
fn the_median_pruner_stops_trials_below_the_median_and_keeps_their_epochs() {
    let f = Fixture::with_sizes(1024, 128);
    let fixed = FIXED.replace("epochs = 2", "epochs = 4");
    let text = format!("method = \"random\"\ntrials = 10\nseed = 5\npruner = \"median\"\n{fixed}[median]\nstartup = 2\n[space]\nlr = {{ log_uniform = [0.0005, 2.0] }}\n");
    f.write_config("p.toml", &text);
    let o = f.sweep(&["p.toml", "--out", "ps", "--workers", "1"]);
    o.ok();
    let r = read(&f.path("ps"));
    let pruned: Vec<&JTrial> = r.trials.iter().filter(|t| t.state == State::Pruned).collect();
    assert!(!pruned.is_empty(), "some trials pruned: {}", o.stdout);
    for t in &pruned {
        let rows = metrics(&f.path(&format!("ps/trials/{:03}", t.number)));
        assert!(!rows.is_empty() && rows.len() < 4 && rows.len() == t.intermediate.len(), "trial {}: {} epochs", t.number, rows.len());
        let last = *t.intermediate.values().last().unwrap();
        assert_eq!(t.values, Some(vec![last]));
        assert!((last - rows.last().unwrap().test_acc).abs() < 1e-6);
    }
    let board = std::fs::read_to_string(f.path("ps/leaderboard.csv")).unwrap();
    assert_eq!(board.lines().filter(|l| l.ends_with(",pruned")).count(), pruned.len(), "{board}");
    assert!(o.stdout.contains("pruned"), "{}", o.stdout);
    // The pruner is refused where rungs already stop trials.
    f.write_config("h.toml", &text.replace("method = \"random\"", "method = \"asha\""));
    let o = f.sweep(&["h.toml", "--out", "hs"]);
    o.bad_input().one_error_line();
    assert!(o.stderr.contains("field `pruner`: a asha study stops trials at its rungs already"), "{}", o.stderr);
}

#[test]
fn a_journal_that_does_not_fit_gets_one_line_and_is_left_as_it_was() {
    let f = Fixture::new();
    f.write_config("g.toml", &format!("{FIXED}[space]\nlr = [0.05, 0.2]\n"));
    f.write_config("other.toml", &format!("{FIXED}[space]\nlr = [0.05, 0.3]\n"));
    f.sweep(&["g.toml", "--out", "g", "--workers", "1"]).ok();
    let journal = f.path("g/journal.log");
    let before = std::fs::read(&journal).unwrap();
    // --join with another space names the difference.
    let o = f.sweep(&["other.toml", "--out", "g", "--join"]);
    o.bad_input().one_error_line();
    assert!(o.stderr.contains("holds another study") && o.stderr.contains("lr = [0.05, 0.2]") && o.stderr.contains("lr = [0.05, 0.3]"), "{}", o.stderr);
    assert_eq!(std::fs::read(&journal).unwrap(), before);
    // An op code this version does not know.
    let mut bad = before.clone();
    bad.extend_from_slice(b"{\"op_code\":42,\"worker_id\":\"x\"}\n");
    std::fs::write(&journal, &bad).unwrap();
    let o = f.sweep(&["--resume", "g"]);
    o.bad_input().one_error_line();
    assert!(o.stderr.contains("op code 42 is not one this version knows"), "{}", o.stderr);
    assert_eq!(std::fs::read(&journal).unwrap(), bad);
    // A journal from another study (the folder renamed).
    std::fs::write(&journal, &before).unwrap();
    std::fs::rename(f.path("g"), f.path("renamed")).unwrap();
    let o = f.sweep(&["--resume", "renamed"]);
    o.bad_input().one_error_line();
    assert!(o.stderr.contains("holds no study named `renamed`"), "{}", o.stderr);
    std::fs::rename(f.path("renamed"), f.path("g")).unwrap();
    // A last line cut short: read up to it, named, and removed by the next write.
    let mut cut = before.clone();
    cut.extend_from_slice(b"{\"op_code\":4,\"worker_id\":\"x\",\"stu");
    std::fs::write(&journal, &cut).unwrap();
    let o = f.sweep(&["--resume", "g", "--workers", "1"]);
    o.ok();
    assert!(o.stdout.contains("warning:") && o.stdout.contains("journal.log: its last line (") && o.stdout.contains("was cut short"), "{}", o.stdout);
    f.run(&["sweep", "--enqueue", "g", "lr=0.2"]).ok();
    let o = f.sweep(&["--resume", "g", "--workers", "1"]);
    o.ok();
    assert!(!o.stdout.contains("warning:"), "{}", o.stdout);
    let r = read(&f.path("g"));
    assert_eq!((r.trials.len(), r.warnings.len()), (3, 0), "the cut line is gone and the enqueued trial is there");
    assert_eq!(r.trials[2].state, State::Complete);
}

#[test]
fn two_joined_processes_run_one_asha_study_within_its_rung_quotas() {
    let f = Fixture::with_sizes(1024, 128);
    let text = format!("method = \"asha\"\ntrials = 9\nseed = 4\n{FIXED}[halving]\nr_min = 1\nr_max = 9\neta = 3\n[space]\nlr = {{ log_uniform = [0.01, 1.0] }}\n");
    f.write_config("a.toml", &text);
    let join = ["a.toml", "--out", "aj", "--join", "--workers", "1"];
    let (a, b) = (spawn(&f, &join, None), spawn(&f, &join, None));
    let ((ok_a, said_a), (ok_b, said_b)) = (finish(a), finish(b));
    assert!(ok_a && ok_b, "{said_a}\n{said_b}");
    let r = read(&f.path("aj"));
    assert_eq!(numbers(&r), (0..9).collect::<Vec<_>>());
    let epochs: Vec<usize> = r.trials.iter().map(|t| t.intermediate.len()).collect();
    // Each trial stopped at a rung (1, 3 or 9 epochs); at most 3 of 9 went on to 3, 1 to 9.
    assert!(epochs.iter().all(|e| [1, 3, 9].contains(e)), "{epochs:?}");
    assert!(epochs.iter().filter(|&&e| e >= 3).count() <= 3 && epochs.iter().filter(|&&e| e == 9).count() == 1, "{epochs:?}");
    for t in &r.trials {
        let want = if t.intermediate.len() == 9 { State::Complete } else { State::Pruned };
        assert!(t.state == want || t.state == State::Fail, "trial {}: {:?} after {} epochs", t.number, t.state, t.intermediate.len());
    }
    let writers: BTreeSet<&str> = r.trials.iter().filter_map(|t| t.owner.as_deref()).map(|w| &w[..36]).collect();
    assert_eq!(writers.len(), 2, "both processes trained trials");
    assert!(format!("{said_a}{said_b}").contains("the study is finished"), "{said_a}\n{said_b}");
    // Halving waits for every trial at each rung: one process only.
    f.write_config("h.toml", &text.replace("\"asha\"", "\"halving\""));
    let o = f.sweep(&["h.toml", "--out", "hj", "--join"]);
    o.bad_input().one_error_line();
    assert!(o.stderr.contains("use method = \"asha\""), "{}", o.stderr);
}

#[test]
fn a_study_folder_from_before_the_journal_is_converted_once_and_resumes() {
    let f = Fixture::new();
    f.write_config("g.toml", &format!("{FIXED}[space]\nlr = [0.05, 0.1, 0.2]\n"));
    f.sweep(&["g.toml", "--out", "old", "--workers", "1"]).ok();
    let board = std::fs::read_to_string(f.path("old/leaderboard.csv")).unwrap();
    // As an older version left it: trial 2 never started, no journal.
    std::fs::remove_file(f.path("old/journal.log")).unwrap();
    std::fs::remove_dir_all(f.path("old/trials/002")).unwrap();
    let o = f.sweep(&["--resume", "old", "--workers", "1"]);
    o.ok();
    assert!(o.stdout.contains("the study is now kept in its journal"), "{}", o.stdout);
    assert_eq!(o.stdout.matches("done before").count(), 2, "{}", o.stdout);
    let r = read(&f.path("old"));
    assert_eq!(numbers(&r), [0, 1, 2]);
    assert!(r.trials.iter().all(|t| t.state == State::Complete && t.intermediate.len() == 2));
    let cells = |b: &str| b.lines().map(|l| l.rsplitn(3, ',').nth(2).unwrap_or("").to_string()).collect::<Vec<_>>();
    assert_eq!(cells(&std::fs::read_to_string(f.path("old/leaderboard.csv")).unwrap()), cells(&board));
    let o = f.sweep(&["--resume", "old", "--workers", "1"]);
    o.ok();
    assert!(!o.stdout.contains("now kept in its journal"), "converted once: {}", o.stdout);
}

#[test]
fn an_optuna_process_appending_at_the_same_time_corrupts_nothing() {
    let Some(py) = python_or_skip("an_optuna_process_appending_at_the_same_time_corrupts_nothing") else { return };
    let f = Fixture::new();
    f.write_config("r.toml", &format!("method = \"random\"\ntrials = 6\n{}{SPACE}", fixed_for_width().replace("epochs = 2", "epochs = 3")));
    let journal = f.path("rr/journal.log");
    let mut sweeping = spawn(&f, &["r.toml", "--out", "rr", "--workers", "2"], None);
    sweeping.wait_until("the study's journal", || journal.is_file());
    // Optuna writes under the same lock while the sweep reports its epochs.
    let code = format!(
        "import optuna\ns = optuna.load_study(study_name='rr', storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend({:?})))\nfor i in range(300):\n    s.set_user_attr(f'k{{i}}', i)\n",
        journal.to_str().unwrap()
    );
    run_python(&py, &["-c", &code]);
    let (ok, said) = finish(sweeping);
    assert!(ok, "{said}");
    let r = read(&f.path("rr"));
    assert_eq!((r.warnings.len(), r.trials.len()), (0, 6));
    assert!(r.trials.iter().all(|t| t.state == State::Complete && t.intermediate.len() == 3));
    assert_eq!((0..300).filter(|i| r.user_attrs.get(&format!("k{i}")) == Some(&serde_json::json!(i))).count(), 300);
    let said = run_python(&py, &[&script("optuna_check.py"), f.path("rr").to_str().unwrap(), "--expect-trials", "6"]);
    assert!(said.contains("ok"), "{said}");
}

#[test]
fn two_objectives_mark_the_pareto_front_optuna_names() {
    let f = Fixture::new();
    let head = "objectives = [\"val_acc\", \"params\"]\n";
    let space = "[space]\nhidden = [[4], [16], [64], [16, 16], [64, 64]]\n";
    f.write_config("d.toml", &format!("{head}{FIXED}{space}"));
    let o = f.sweep(&["d.toml", "--out", "df", "--workers", "1"]);
    o.ok();
    let text = std::fs::read_to_string(f.path("df/leaderboard.csv")).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(&rows[0][rows[0].len() - 2..], ["params", "pareto"]);
    let on: BTreeSet<usize> = rows[1..].iter().filter(|r| r[r.len() - 1] == "yes").map(|r| r[1].parse().unwrap()).collect();
    assert!(!on.is_empty() && on.len() < 5, "{text}");
    // The smallest model is on the front whatever its accuracy: nothing has fewer parameters.
    assert!(on.contains(&0), "{text}");
    let params: Vec<usize> = rows[1..].iter().map(|r| r[r.len() - 2].parse().unwrap()).collect();
    assert!(params.contains(&(784 * 4 + 4 + 4 * 10 + 10)), "{params:?}");
    let r = read(&f.path("df"));
    assert_eq!(r.directions.len(), 2);
    assert!(r.trials.iter().all(|t| t.values.as_ref().is_some_and(|v| v.len() == 2)));
    let png = image::open(f.path("df/pareto.png")).unwrap();
    assert!(png.width() >= 800 && f.path("df/pareto.svg").is_file());
    if let Some(py) = python_or_skip("two_objectives_mark_the_pareto_front_optuna_names") {
        let code = format!(
            "import optuna\ns = optuna.load_study(study_name='df', storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend({:?})))\nprint(sorted(t.number for t in s.best_trials))\n",
            f.path("df/journal.log").to_str().unwrap()
        );
        let said = run_python(&py, &["-c", &code]);
        assert_eq!(said.trim(), format!("{:?}", on.iter().collect::<Vec<_>>()), "Optuna's best_trials against the pareto column");
    }
    // Bad lists get one line with the valid names.
    for (list, says) in [("[\"accuracy\"]", "unknown objective `accuracy`"), ("[\"params\", \"params\"]", "lists `params` twice"), ("[]", "is empty")] {
        f.write_config("bad.toml", &format!("objectives = {list}\n{FIXED}{space}"));
        let o = f.sweep(&["bad.toml", "--out", "bad"]);
        o.bad_input().one_error_line();
        assert!(o.stderr.contains(says) && o.stderr.contains("val_acc, val_loss, params, seconds"), "{}", o.stderr);
    }
    f.write_config("bad.toml", &format!("method = \"tpe\"\ntrials = 3\n{head}{FIXED}{space}"));
    let o = f.sweep(&["bad.toml", "--out", "bad"]);
    o.bad_input().one_error_line();
    assert!(o.stderr.contains("multi-objective TPE is not implemented"), "{}", o.stderr);
}
