//! The process around a run: one writer per run folder, and closed output pipes.
mod common;

use std::io::{BufRead, BufReader};

use common::*;

#[test]
fn one_writer_per_run_and_a_killed_writer_never_blocks_the_next() {
    let f = Fixture::new();
    let data = f.data();
    let args = ["train", "--config", "small.toml", "--epochs", "3", "--artifacts", "run", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU];
    // The writer waits at the start of epoch 2 (the test hook): it holds the run throughout.
    let mut first = f.spawn(&args, Some("2"));
    let run = d2l_mlp::run::RunDir::new(f.path("run"));
    first.wait_until("epoch 1's checkpoint", || d2l_mlp::run::checkpoint::epochs_on_disk(&run).contains(&1));
    let expected = format!("process {} on host", first.id());
    let writers: Vec<Vec<&str>> = vec![
        vec!["train", "--resume", "--epochs", "300", "--artifacts", "run", "--backend", CPU],
        vec!["train", "--overwrite", "--artifacts", "run", "--backend", CPU],
        vec!["eval", "--artifacts", "run", "--checkpoint", "1", "--backend", CPU],
        vec!["export", "--artifacts", "run", "--checkpoint", "1", "--backend", CPU],
        vec!["plot", "--artifacts", "run"],
        vec!["report", "--artifacts", "run"],
    ];
    for args in writers {
        let out = f.run(&args);
        out.bad_input();
        assert!(out.stderr.contains(&expected) && out.stderr.contains("is writing this run"), "{args:?}: {}", out.stderr);
    }
    // Readers that write elsewhere still work while it trains.
    f.run(&["export", "--artifacts", "run", "--checkpoint", "1", "--out", "e1.safetensors", "--backend", CPU]).ok();
    f.run(&["plot", "--artifacts", "run", "--out", "elsewhere.png"]).ok();
    f.run(&["report", "--artifacts", "run", "--out", "elsewhere.html"]).ok();
    // The OS frees the lock when its holder dies: no stale lock to clean up.
    first.kill();
    f.resume("run", CPU, &["--epochs", &(metrics(&f.path("run")).len() + 1).to_string()]).ok();
}

/// Read a command's output up to a line containing `until`, then close the pipe.
fn read_then_close(f: &Fixture, args: &[&str], until: &str) -> (String, String, std::process::ExitStatus) {
    let mut child = f.spawn(args, None);
    let mut reader = BufReader::new(child.child().stdout.take().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 && !line.contains(until) {}
    drop(reader);
    let out = child.output();
    (line, String::from_utf8_lossy(&out.stderr).into_owned(), out.status)
}

#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let f = Fixture::with_sizes(2048, 256);
    let data = f.data();
    let d = data.to_str().unwrap();
    let common = ["--data-dir", d, "--skip-checksum"];
    let train = ["train", "--config", "small.toml", "--epochs", "20", "--artifacts", "run", "--backend", CPU];
    let (seen, stderr, status) = read_then_close(&f, &[&train[..], &common[..]].concat(), "epoch  1/");
    assert!(seen.contains("epoch  1/20"), "{seen}");
    assert!(!stderr.contains("internal error") && !stderr.contains("panicked"), "{stderr}");
    assert!(status.signal() == Some(13) || status.success(), "{status:?} {stderr}");
    // The run stays consistent and resumable. Its rows are consecutive and every checkpoint has
    // its row; rows may run ahead of the checkpoints by more than one epoch (Burn writes
    // checkpoints on threads of their own, which a loaded machine may not have run before the
    // pipe closed), and the resume trains those epochs again.
    let run = f.path("run");
    let rows = metrics(&run);
    let on_disk = d2l_mlp::run::checkpoint::epochs_on_disk(&d2l_mlp::run::RunDir::new(&run));
    assert!(rows.iter().enumerate().all(|(i, r)| r.epoch == i + 1), "{rows:?}");
    assert!(on_disk.iter().all(|e| *e <= rows.len()), "{rows:?} vs {on_disk:?}");
    f.resume("run", CPU, &["--epochs", "20"]).ok();
    assert_eq!(metrics(&run).iter().map(|r| r.epoch).collect::<Vec<_>>(), (1..=20).collect::<Vec<_>>());
    let commands: Vec<Vec<&str>> = vec![
        [&["eval", "--artifacts", "run", "--backend", CPU][..], &common[..]].concat(),
        [&["predict", "--artifacts", "run", "--count", "64", "--backend", CPU][..], &common[..]].concat(),
        vec!["plot", "--artifacts", "run"],
        vec!["activations", "--out", "a.png", "--backend", CPU],
        vec!["export", "--artifacts", "run", "--backend", CPU],
        [&["bench", "--epochs", "1", "--backend", CPU][..], &common[..]].concat(),
        vec!["--help"],
    ];
    for args in commands {
        let (_, stderr, status) = read_then_close(&f, &args, "");
        assert!(!stderr.contains("internal error") && !stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(status.signal() == Some(13) || status.success(), "{args:?}: {status:?} {stderr}");
    }
}

#[test]
fn a_closed_pipe_stops_the_printing_not_the_work() {
    // `eval | head -1`: the reader is gone after the first line; eval still writes its files.
    let f = Fixture::with_sizes(512, 4096);
    f.train("run", &["--epochs", "1"]).ok();
    std::fs::remove_file(f.path("run/report.html")).unwrap();
    let data = f.data();
    let args = ["eval", "--artifacts", "run", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU];
    let (seen, stderr, status) = read_then_close(&f, &args, "backend");
    assert!(seen.contains("backend"), "{seen}");
    assert!(status.success(), "{status:?} {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let eval: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.path("run/eval.json")).unwrap()).unwrap();
    let mistakes = !eval["mistakes"].as_array().unwrap().is_empty();
    assert_eq!(f.path("run/mistakes.png").exists(), mistakes, "mistakes.png");
    assert!(f.path("run/report.html").exists(), "the report was not refreshed");
}
