//! The process around a run: one writer per run folder, and closed output pipes.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

fn spawn_train(f: &Fixture, run: &str, epochs: &str) -> std::process::Child {
    let data = f.data();
    Command::new(BIN)
        .args(["train", "--config", "small.toml", "--epochs", epochs, "--artifacts", run, "--data-dir"])
        .arg(&data)
        .args(["--skip-checksum", "--backend", CPU])
        .current_dir(f.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn one_writer_per_run_and_a_killed_writer_never_blocks_the_next() {
    let f = Fixture::with_sizes(8192, 256);
    let mut first = spawn_train(&f, "run", "200");
    let t0 = std::time::Instant::now();
    // Epoch 1's row, and its model checkpoint, which Burn writes in the background after the row.
    while (metrics(&f.path("run")).is_empty() || !f.path("run/checkpoint/model-1.bpk").exists()) && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
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
    first.kill().unwrap();
    first.wait().unwrap();
    f.resume("run", CPU, &["--epochs", &(metrics(&f.path("run")).len() + 1).to_string()]).ok();
}

/// Read a command's output up to a line containing `until`, then close the pipe.
fn read_then_close(f: &Fixture, args: &[&str], until: &str) -> (String, String, std::process::ExitStatus) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(f.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 && !line.contains(until) {}
    drop(reader);
    let out = child.wait_with_output().unwrap();
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
    // The run stays consistent and resumable.
    let run = f.path("run");
    let rows = metrics(&run);
    let on_disk = d2l_mlp::run::checkpoint::epochs_on_disk(&d2l_mlp::run::RunDir::new(&run));
    assert!(rows.iter().all(|r| on_disk.contains(&r.epoch) || r.epoch == on_disk.len() + 1), "{rows:?} vs {on_disk:?}");
    f.resume("run", CPU, &["--epochs", "20"]).ok();
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
