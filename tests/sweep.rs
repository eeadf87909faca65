//! `sweep`: a ranked grid, kill -9 then --resume, successive halving, shards then --collect,
//! the test set read by the refit only, and one-line errors for bad space files.

mod common;

use std::path::Path;

use common::{CPU, Fixture, Proc, figures, metrics};
use d2l_mlp::run::RunDir;
use d2l_mlp::run::checkpoint::epochs_on_disk;

/// Top-level keys of the test studies: a small recipe ranked on the last 128 images.
const FIXED: &str = "val_size = 128\n[fixed]\nepochs = 2\nbatch_size = 32\nhidden = [16]\ninit_std = 0.1\nseed = 1\n";

fn write_study(f: &Fixture, name: &str, head: &str, space: &str) {
    f.write_config(name, &format!("{head}{FIXED}[space]\n{space}"));
}


/// `sweep ARGS` in the background; `hold`: the test hook (`EPOCH@RUN`, tests/common).
fn spawn(f: &Fixture, args: &[&str], hold: Option<&str>) -> Proc {
    let mut all: Vec<String> = std::iter::once("sweep").chain(args.iter().copied()).map(String::from).collect();
    all.extend(f.data_args());
    f.spawn(&all.iter().map(String::as_str).collect::<Vec<_>>(), hold)
}

/// The leaderboard's rows as cells, without the wall-clock column.
fn board(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("leaderboard.csv")).unwrap();
    let rows: Vec<Vec<String>> = text.lines().map(|l| l.split(',').map(String::from).collect()).collect();
    let seconds = rows[0].iter().position(|c| c == "seconds").unwrap();
    rows.into_iter().map(|mut r| {
        r.remove(seconds);
        r
    })
    .collect()
}

fn column(board: &[Vec<String>], name: &str) -> Vec<String> {
    let i = board[0].iter().position(|c| c == name).unwrap();
    board[1..].iter().map(|r| r[i].clone()).collect()
}

#[test]
fn a_three_point_grid_gives_three_ranked_rows_and_a_refit() {
    let f = Fixture::new();
    write_study(&f, "three.toml", "", "lr = [0.02, 0.1, 0.5]\n");
    let o = f.sweep(&["three.toml", "--out", "s"]);
    o.ok();
    let s = f.path("s");
    let b = board(&s);
    assert_eq!(b.len(), 4, "{b:?}");
    assert_eq!(b[0][..3], ["rank", "trial", "lr"]);
    assert_eq!(column(&b, "rank"), ["1", "2", "3"]);
    let mut trials = column(&b, "trial");
    trials.sort();
    assert_eq!(trials, ["0", "1", "2"]);
    let acc: Vec<f64> = column(&b, "val_acc").iter().map(|v| v.parse().unwrap()).collect();
    assert!(acc.windows(2).all(|w| w[0] >= w[1]), "{acc:?}");
    assert_eq!(column(&b, "epochs"), ["2", "2", "2"]);
    for i in 0..3 {
        let run = s.join(format!("trials/00{i}"));
        assert_eq!(metrics(&run).len(), 2);
        assert_eq!(epochs_on_disk(&RunDir::new(&run)), [2], "only the last checkpoint is kept");
    }
    // The best recipe, refitted on all 512 images and tested on the 128 test images.
    let best = d2l_mlp::config::TrainConfig::load(&s.join("best.toml")).unwrap();
    assert_eq!(best.lr.to_string(), column(&b, "lr")[0]);
    assert_eq!(RunDir::new(s.join("best")).load_config().unwrap(), best);
    assert_eq!(metrics(&s.join("best")).len(), 2);
    assert!(s.join("best/model.bpk").exists());
    // A trial is scored on held-out training images: its figures say validation, the refit's test.
    let header = |run: &str| std::fs::read_to_string(s.join(run).join("metrics.csv")).unwrap().lines().next().unwrap().to_string();
    assert_eq!(header("trials/000"), "epoch,train_loss,train_acc,val_loss,val_acc,seconds");
    assert_eq!(header("best"), "epoch,train_loss,train_acc,test_loss,test_acc,seconds");
    let trial = s.join("trials/000");
    f.run(&["report", "--artifacts", trial.to_str().unwrap()]).ok();
    let page = std::fs::read_to_string(trial.join("report.html")).unwrap();
    assert!(page.contains("Validation accuracy") && page.contains("<th>val acc</th>") && !page.contains("Test accuracy"), "{page}");
    let png = image::open(s.join("sweep.png")).unwrap();
    assert!(png.width() >= 900 && png.height() >= 300);
    assert_eq!(o.stdout.lines().filter(|l| l.starts_with("trial 00")).count(), 3, "{}", o.stdout);
    assert!(o.stdout.contains("on all 512 training images"), "{}", o.stdout);
    assert!(o.stdout.contains("refit test accuracy"), "{}", o.stdout);
}

#[test]
fn kill_9_then_resume_gives_the_leaderboard_of_an_uninterrupted_sweep() {
    let f = Fixture::with_sizes(1536, 128);
    let study = "val_size = 128\n[fixed]\nepochs = 4\nbatch_size = 32\nhidden = [64]\ninit_std = 0.1\n[space]\nlr = [0.05, 0.2]\nseed = [1, 2]\n";
    f.write_config("grid.toml", study);
    f.sweep(&["grid.toml", "--out", "whole"]).ok();

    // One worker, so that the first trial is finished when the second one is cut; killed
    // while the second trial is part-way through (it waits at epoch 2: the test hook).
    kill_when(&f, &["grid.toml", "--out", "cut", "--workers", "1"], "2@trials/001", || !metrics(&f.path("cut/trials/001")).is_empty());
    assert!(!f.path("cut/leaderboard.csv").exists(), "killed before the end");
    let o = f.sweep(&["--resume", "cut"]);
    o.ok();
    assert!(o.stdout.contains("done before"), "the first trial is recognised: {}", o.stdout);
    assert_eq!(board(&f.path("cut")), board(&f.path("whole")));
    assert_eq!(figures(&metrics(&f.path("cut/best"))), figures(&metrics(&f.path("whole/best"))));
}

#[test]
fn halving_promotes_the_best_third_which_continue_from_their_checkpoints() {
    let f = Fixture::new();
    let head = "method = \"halving\"\ntrials = 6\nseed = 2\n";
    f.write_config("h.toml", &format!("{head}{FIXED}[halving]\nr_min = 1\nr_max = 3\neta = 3\n[space]\nlr = [0.01, 0.03, 0.1, 0.3]\nseed = [1, 2, 3]\n"));
    let o = f.sweep(&["h.toml", "--out", "h"]);
    o.ok();
    let h = f.path("h");
    // Each trial's score after rung 1 (epoch 1); the best two of six go on to 3 epochs.
    let mut scores: Vec<(usize, f64)> = (0..6).map(|i| (i, metrics(&h.join(format!("trials/00{i}")))[0].test_acc)).collect();
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let promoted: Vec<usize> = scores[..2].iter().map(|s| s.0).collect();
    for i in 0..6 {
        let run = h.join(format!("trials/00{i}"));
        let epochs = if promoted.contains(&i) { 3 } else { 1 };
        assert_eq!(metrics(&run).len(), epochs, "trial {i}");
        assert_eq!(epochs_on_disk(&RunDir::new(&run)), [epochs], "trial {i}");
    }
    let b = board(&h);
    assert_eq!(column(&b, "epochs"), ["3", "3", "1", "1", "1", "1"]);
    let mut top: Vec<usize> = column(&b, "trial")[..2].iter().map(|t| t.parse().unwrap()).collect();
    top.sort();
    let mut want = promoted.clone();
    want.sort();
    assert_eq!(top, want);
    // Promoted trials trained epochs 2 and 3 only: they resumed, they were not retrained.
    assert!(o.stdout.contains("rung: 6 trial(s) to 1 epoch(s)") && o.stdout.contains("rung: 2 trial(s) to 3 epoch(s)"), "{}", o.stdout);
    for i in &promoted {
        assert!(o.stdout.lines().any(|l| l.starts_with(&format!("trial 00{i}")) && l.contains("3 epoch(s)") && l.contains("trained 2 epoch(s)")), "{}", o.stdout);
    }
    assert_eq!(metrics(&h.join("best")).len(), 3);
}

/// Run the sweep `args` with the test hook `hold` (`EPOCH@RUN`: that trial waits at that
/// epoch, so the sweep cannot finish), and kill it once `ready` holds.
fn kill_when(f: &Fixture, args: &[&str], hold: &str, ready: impl Fn() -> bool) {
    let mut child = spawn(f, args, Some(hold));
    child.wait_until(&format!("the sweep to reach {hold}"), ready);
    child.kill();
}

/// Every trial folder's recipe (the TPE suggestion in full).
fn suggestions(dir: &Path) -> Vec<String> {
    (0..6).map(|i| std::fs::read_to_string(dir.join(format!("trials/00{i}/config.toml"))).unwrap()).collect()
}

#[test]
fn tpe_with_two_workers_asks_the_same_after_kill_9_and_resume() {
    let f = Fixture::with_sizes(1024, 128);
    let head = "method = \"tpe\"\ntrials = 6\nseed = 3\n";
    // FIXED without hidden: the layers come from width (one layer, as hidden = [16] gave).
    let fixed = FIXED.replace("hidden = [16]\n", "");
    let study = format!("{head}{fixed}[tpe]\nstartup = 2\n[space]\nlr = {{ log_uniform = [0.01, 1.0] }}\nwidth = {{ int_log_uniform = [8, 64] }}\nactivation = [\"relu\", \"tanh\"]\n");
    f.write_config("t.toml", &study);
    let o = f.sweep(&["t.toml", "--out", "whole", "--workers", "2"]);
    o.ok();
    assert!(o.stdout.contains("tpe search of 6 trials") && o.stdout.contains("worker(s) idle"), "{}", o.stdout);
    let asked = suggestions(&f.path("whole"));
    assert_eq!(asked.iter().collect::<std::collections::BTreeSet<_>>().len(), 6, "six different suggestions: {asked:?}");

    kill_when(&f, &["t.toml", "--out", "cut", "--workers", "2"], "2@trials/003", || !metrics(&f.path("cut/trials/003")).is_empty());
    assert!(!f.path("cut/leaderboard.csv").exists(), "killed before the end");
    // Resumed with another --workers: the study keeps the lag it started with (its journal's
    // `d2l:lag`), so it asks the same trials.
    let o = f.sweep(&["--resume", "cut", "--workers", "1"]);
    o.ok();
    assert_eq!(suggestions(&f.path("cut")), asked);
    assert_eq!(board(&f.path("cut")), board(&f.path("whole")));
    assert_eq!(figures(&metrics(&f.path("cut/best"))), figures(&metrics(&f.path("whole/best"))));
}

#[test]
fn asha_promotes_without_waiting_and_one_worker_resumes_to_the_same_leaderboard() {
    let f = Fixture::with_sizes(1024, 128);
    let head = "method = \"asha\"\ntrials = 6\nseed = 2\n";
    let study = format!("{head}{FIXED}[halving]\nr_min = 1\nr_max = 3\neta = 3\n[space]\nlr = [0.01, 0.03, 0.1, 0.3]\nseed = [1, 2, 3]\n");
    f.write_config("a.toml", &study);
    let o = f.sweep(&["a.toml", "--out", "whole", "--workers", "1"]);
    o.ok();
    let whole = board(&f.path("whole"));
    let epochs = column(&whole, "epochs");
    assert_eq!(epochs.len(), 6);
    assert!(epochs.iter().all(|e| e == "1" || e == "3") && epochs[0] == "3", "{epochs:?}");
    // A promoted trial continues from its checkpoint: it trains epochs 2 and 3 only.
    assert!(o.stdout.lines().any(|l| l.contains("] promoted: 3 epoch(s)") && l.contains("trained 2 epoch(s)")), "{}", o.stdout);
    // The counter counts the 6 draws (promotions are decided on the way), never past its total.
    let counters: Vec<(usize, usize)> = o
        .stdout
        .lines()
        .filter(|l| l.starts_with("trial "))
        .filter_map(|l| {
            let (done, total) = l.split("] ").nth(1)?.split(':').next()?.split_once('/')?;
            Some((done.parse().ok()?, total.parse().ok()?))
        })
        .collect();
    assert_eq!(counters, (1..=6).map(|i| (i, 6)).collect::<Vec<_>>(), "{}", o.stdout);
    assert_eq!(metrics(&f.path("whole/best")).len(), 3);

    // Trial 3's first rung is done when trial 4 (every draw trains) waits at its first epoch.
    kill_when(&f, &["a.toml", "--out", "cut", "--workers", "1"], "1@trials/004", || !metrics(&f.path("cut/trials/003")).is_empty());
    assert!(!f.path("cut/leaderboard.csv").exists(), "killed before the end");
    f.sweep(&["--resume", "cut", "--workers", "1"]).ok();
    assert_eq!(board(&f.path("cut")), whole);

    // Two workers: every draw trains, none past r_max, and the best reaches it.
    let o = f.sweep(&["a.toml", "--out", "two", "--workers", "2"]);
    o.ok();
    let epochs = column(&board(&f.path("two")), "epochs");
    assert!(epochs.len() == 6 && epochs.iter().all(|e| e == "1" || e == "3") && epochs[0] == "3", "{epochs:?}");
    assert!(o.stdout.contains("2 worker(s) idle"), "{}", o.stdout);
}

#[test]
fn two_shards_then_collect_equal_the_whole_sweep() {
    let f = Fixture::new();
    write_study(&f, "g.toml", "", "lr = [0.05, 0.2]\nseed = [1, 2]\n");
    f.sweep(&["g.toml", "--out", "whole"]).ok();
    let shards: Vec<Proc> = ["0/2", "1/2"].iter().map(|s| spawn(&f, &["g.toml", "--out", "parts", "--shard", s], None)).collect();
    for c in shards {
        let out = c.output();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(!f.path("parts/leaderboard.csv").exists(), "shards leave the leaderboard to --collect");
    let o = f.sweep(&["--collect", "parts"]);
    o.ok();
    assert_eq!(board(&f.path("parts")), board(&f.path("whole")));
    assert_eq!(figures(&metrics(&f.path("parts/best"))), figures(&metrics(&f.path("whole/best"))));
}

#[test]
fn collect_refuses_an_incomplete_study_unless_partial() {
    let f = Fixture::new();
    write_study(&f, "g.toml", "", "lr = [0.05, 0.2]\nseed = [1, 2]\n");
    f.sweep(&["g.toml", "--out", "parts", "--shard", "0/2"]).ok();
    let o = f.sweep(&["--collect", "parts"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    o.one_error_line();
    assert!(o.stderr.contains("not finished (001, 003)") && o.stderr.contains("--shard K/N") && o.stderr.contains("--partial"), "{}", o.stderr);
    // The shard that holds them, split the way the shards split the study.
    assert!(o.stderr.contains("again (shard 1/2 (001, 003) of `sweep SPACE.toml --out parts --shard K/N`)"), "{}", o.stderr);
    assert!(!f.path("parts/leaderboard.csv").exists() && !f.path("parts/best").exists(), "a refused collect wrote nothing");
    let o = f.sweep(&["--collect", "parts", "--partial"]);
    o.ok();
    assert_eq!(column(&board(&f.path("parts")), "trial").len(), 2);
}

#[test]
fn collect_refuses_a_trial_folder_trained_with_other_values() {
    let f = Fixture::new();
    write_study(&f, "g.toml", "", "lr = [0.05, 0.2]\nseed = [1, 2]\n");
    for s in ["0/2", "1/2"] {
        f.sweep(&["g.toml", "--out", "parts", "--shard", s]).ok();
    }
    // Trial 1 (lr 0.05, seed 2) as another binary or study might have trained it.
    let config = f.path("parts/trials/001/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("\nlr = 0.05\n"), "{text}");
    std::fs::write(&config, text.replace("\nlr = 0.05\n", "\nlr = 0.0512\n")).unwrap();
    let o = f.sweep(&["--collect", "parts"]);
    o.bad_input();
    let want = "parts/trials/001/config.toml: lr = 0.0512 but the study's trial 1 has lr = 0.05; this trial was trained by another binary or study; remove the folder and run its shard again";
    assert!(o.stderr.contains(want), "{}", o.stderr);
    assert!(!f.path("parts/leaderboard.csv").exists() && !f.path("parts/best").exists(), "a refused collect wrote nothing");
    // Its epochs may differ (a shorter or longer run of the same recipe): not a mismatch.
    std::fs::write(&config, text.replace("\nepochs = 2\n", "\nepochs = 1\n")).unwrap();
    f.sweep(&["--collect", "parts"]).ok();
}

#[test]
fn only_the_refit_reads_the_test_set() {
    let f = Fixture::new();
    write_study(&f, "g.toml", "", "lr = [0.05, 0.2]\n");
    let held = f.path("held");
    std::fs::create_dir(&held).unwrap();
    let names = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
    for n in names {
        std::fs::rename(f.data().join(n), held.join(n)).unwrap();
    }
    // The whole search runs without the test files; the refit is the first to want them.
    let o = f.sweep(&["g.toml", "--out", "s"]);
    o.bad_input();
    assert!(o.stderr.contains("t10k-images-idx3-ubyte"), "{}", o.stderr);
    assert_eq!(board(&f.path("s")).len(), 3, "the search ranked its trials before the refit");
    assert!(!f.path("s/best/model.bpk").exists());
    for n in names {
        std::fs::rename(held.join(n), f.data().join(n)).unwrap();
    }
    let o = f.sweep(&["--resume", "s"]);
    o.ok();
    assert_eq!(o.stdout.matches("done before").count(), 2, "{}", o.stdout);
    assert!(o.stdout.contains("refit test accuracy"), "{}", o.stdout);
}

#[test]
fn bad_space_files_get_one_line_naming_the_field() {
    let f = Fixture::new();
    let random = "method = \"random\"\ntrials = 3\n";
    for (head, space, want) in [
        ("", "learning_rate = [0.1]\n", "unknown field `learning_rate`"),
        ("", "width = [8, 32]\n", "[fixed] hidden = [16] beside the swept `width`: a trial's layers are `depth` layers of `width` units, so hidden would be overridden; remove hidden from [fixed] (for two layers, add depth = [2] to [space])"),
        ("", "lr = []\n", "field `lr` is an empty list"),
        (random, "lr = { uniform = [0.5, 0.1] }\n", "field `lr`: uniform = [0.5, 0.1]: the lower bound is above the upper one"),
        (random, "lr = { log_uniform = [-0.1, 1.0] }\n", "field `lr`: log_uniform = [-0.1, 1.0]: a log range needs bounds > 0"),
        (random, "width = { int_log_uniform = [0, 64] }\n", "field `width`: int_log_uniform = [0, 64]: a log range needs bounds > 0"),
        ("", "seed = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\nlr = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1]\nwidth = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nbatch_size = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n", "[space]: the grid has 11000 points, more than 10000"),
    ] {
        write_study(&f, "bad.toml", head, space);
        let o = f.sweep(&["bad.toml", "--out", "never"]);
        o.bad_input();
        assert!(o.stderr.starts_with("error: bad.toml: "), "{}", o.stderr);
        assert!(o.stderr.contains(want), "{space}: {}", o.stderr);
        assert!(!f.path("never").exists(), "a bad study creates nothing");
    }
    // A halving study cannot be sharded: refused before anything is written.
    write_study(&f, "h.toml", "method = \"halving\"\ntrials = 3\n", "lr = [0.1]\n");
    let o = f.sweep(&["h.toml", "--out", "never", "--shard", "0/2"]);
    o.bad_input();
    assert!(o.stderr.contains("cannot be split") && !f.path("never").exists(), "{}", o.stderr);
    write_study(&f, "t.toml", "method = \"tpe\"\ntrials = 3\n", "lr = [0.1]\n");
    let o = f.sweep(&["t.toml", "--out", "never", "--shard", "0/2"]);
    o.bad_input();
    assert!(o.stderr.contains("a tpe study suggests each trial from the results") && !f.path("never").exists(), "{}", o.stderr);
    f.write_config("t.toml", &format!("method = \"tpe\"\ntrials = 3\n{FIXED}[tpe]\ncandidates = 0\n[space]\nlr = [0.1]\n"));
    let o = f.sweep(&["t.toml", "--out", "never"]);
    o.bad_input();
    assert!(o.stderr.contains("[tpe]: candidates must be at least 1"), "{}", o.stderr);
    // A folder that is not a sweep, and a sweep started twice.
    f.sweep(&["--resume", "nowhere"]).bad_input();
    write_study(&f, "ok.toml", "", "lr = [0.1]\n");
    f.sweep(&["ok.toml", "--out", "once"]).ok();
    let o = f.sweep(&["ok.toml", "--out", "once"]);
    o.bad_input();
    assert!(o.stderr.contains("sweep --resume once"), "{}", o.stderr);
}

#[test]
fn a_sweep_that_failed_before_its_first_trial_starts_again_cleanly() {
    let f = Fixture::new();
    write_study(&f, "g.toml", "", "lr = [0.05, 0.2]\n");
    // A data folder with the test files only.
    std::fs::create_dir(f.path("half")).unwrap();
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(f.data().join(name), f.path("half").join(name)).unwrap();
    }
    let args = ["sweep", "g.toml", "--out", "s", "--skip-checksum", "--backend", CPU];
    let o = f.run(&[&args[..], &["--data-dir", "half"]].concat());
    o.bad_input();
    assert!(o.stderr.contains("train-images-idx3-ubyte"), "{}", o.stderr);
    // The same command with the data: no "already holds a sweep".
    let data = f.data();
    let o = f.run(&[&args[..], &["--data-dir", data.to_str().unwrap()]].concat());
    o.ok();
    assert!(o.stdout.contains("s: holds a sweep that never started a trial; starting it over"), "{}", o.stdout);
    assert_eq!(board(&f.path("s")).len(), 3);
    // A study that has trials is never started over.
    let o = f.run(&[&args[..], &["--data-dir", data.to_str().unwrap()]].concat());
    o.bad_input();
    assert!(o.stderr.contains("already holds a sweep; continue it with `sweep --resume s`"), "{}", o.stderr);
    // A backend that is not built in: refused before anything is written.
    if let Some(missing) = ["wgpu", "ndarray", "flex"].into_iter().find(|b| !d2l_mlp::commands::version().contains(b)) {
        f.run(&["sweep", "g.toml", "--out", "gpu", "--backend", missing]).bad_input();
        assert!(!f.path("gpu").exists(), "a refused backend left the sweep folder");
    }
}

#[test]
fn the_saved_study_lists_under_fixed_only_what_the_trials_take_from_it() {
    let f = Fixture::new();
    // FIXED sets seed = 1, which this space sweeps: said, not an error.
    write_study(&f, "g.toml", "", "lr = [0.05, 0.2]\nseed = [1, 2]\n");
    let o = f.sweep(&["g.toml", "--out", "s"]);
    o.ok();
    assert!(o.stdout.contains("warning: g.toml: field `seed` is in [fixed] and in [space]; the trials take it from [space] (remove it from [fixed])"), "{}", o.stdout);
    assert!(o.stdout.starts_with("backend "), "the backend's line comes first: {}", o.stdout);
    let saved = std::fs::read_to_string(f.path("s/sweep.toml")).unwrap();
    let fixed = saved.split("[fixed]").nth(1).unwrap().split("\n[").next().unwrap();
    assert!(!fixed.contains("lr =") && !fixed.contains("seed ="), "swept fields under [fixed]:\n{saved}");
    assert!(fixed.contains("hidden = [16]") && fixed.contains("epochs = 2"), "{saved}");
    // The report's "Search space" is that file.
    let page = std::fs::read_to_string(f.path("s/report.html")).unwrap();
    assert!(!page.contains("lr = 0.1\n"), "the page lists lr under [fixed]");
    // A study saved by an older version, with the overridden values under [fixed], still resumes.
    std::fs::write(f.path("s/sweep.toml"), saved.replace("[fixed]\n", "[fixed]\nlr = 0.1\nseed = 42\n")).unwrap();
    f.sweep(&["--resume", "s"]).ok();
}

#[test]
fn a_method_without_rungs_on_a_study_with_rungs_says_what_each_trial_trains() {
    let f = Fixture::new();
    write_study(&f, "h.toml", "method = \"halving\"\ntrials = 2\n", "lr = { log_uniform = [0.05, 0.2] }\n");
    let o = f.sweep(&["h.toml", "--method", "random", "--out", "r"]);
    o.ok();
    let note = "note: --method random: the study's [halving] rungs do not apply; each of its 2 trials trains 2 epoch(s), 4 in all (set epochs under [fixed] to change that)";
    assert!(o.stdout.contains(note), "{}", o.stdout);
    assert_eq!(column(&board(&f.path("r")), "epochs"), ["2", "2"]);
}
