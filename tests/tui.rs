//! `train --tui` in a real terminal (tmux): Ctrl-C and the dashboard's own quit (`q` then `s`,
//! or `q` then `k`) end like a Ctrl-C without it: the epoch in progress dropped, exit 130, the
//! last saved epoch named and the resume hint left on the screen.
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn tmux(args: &[&str]) -> String {
    let o = Command::new("tmux").args(args).output().expect("tmux runs");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A tmux session running `train --tui`; killed when dropped.
struct Session {
    name: String,
}

impl Session {
    fn start(f: &Fixture, name: &str) -> Self {
        let data = f.data();
        let cmd = format!(
            "cd {} && {BIN} train --tui --config tui.toml --artifacts run --data-dir {} --skip-checksum --backend {CPU}; echo EXIT=$?; sleep 60",
            f.dir.path().display(),
            data.display()
        );
        let name = format!("{name}-{}", std::process::id());
        tmux(&["new-session", "-d", "-s", &name, "-x", "160", "-y", "48", &cmd]);
        Session { name }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        tmux(&args);
    }

    fn screen(&self) -> String {
        tmux(&["capture-pane", "-p", "-t", &self.name])
    }

    fn wait_for(&self, what: &str, limit: Duration) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(what) || t0.elapsed() > limit {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.name]);
    }
}

fn tmux_available(test: &str) -> bool {
    let ok = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    if !ok {
        skip(test, "tmux is not installed (apt-get install tmux)");
    }
    ok
}

/// Start a long run, wait for its first epoch, stop it with `keys`, and check how it ended.
fn stop_with(keys: &[&[&str]], name: &str) {
    let f = Fixture::with_sizes(8192, 256);
    f.write_config("tui.toml", "epochs = 500\nbatch_size = 32\nhidden = [64]\nlr = 0.1\ninit_std = 0.1\nseed = 1\n");
    let s = Session::start(&f, name);
    // Wait for epoch 1's checkpoint, not its metrics row: the row is written first, and a stop
    // between the two drops it again.
    let run = d2l_mlp::run::RunDir::new(f.path("run"));
    let t0 = Instant::now();
    while d2l_mlp::run::checkpoint::epochs_on_disk(&run).is_empty() && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!d2l_mlp::run::checkpoint::epochs_on_disk(&run).is_empty(), "no epoch finished:\n{}", s.screen());
    for k in keys {
        s.keys(k);
        if k == &["q"] {
            // The quit popup lists its choices ("Cancel" among them); the next key answers it.
            let screen = s.wait_for("Cancel", Duration::from_secs(30));
            assert!(screen.contains("Cancel"), "{name}: no quit popup after q:\n{screen}");
        }
    }
    let screen = s.wait_for("EXIT=", Duration::from_secs(30));
    assert!(screen.contains("EXIT=130"), "{name}: expected exit 130:\n{screen}");
    let rows = metrics(&f.path("run"));
    assert!(rows.len() < 500, "{name}: the run was not stopped");
    let last = rows.last().expect("the checkpointed epochs keep their rows").epoch;
    assert_eq!(d2l_mlp::run::checkpoint::epochs_on_disk(&run).last().copied(), Some(last), "{name}: checkpoints and metrics.csv disagree");
    let flat = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains(&format!("interrupted after epoch {last};")), "{name}: the last saved epoch is not named:\n{screen}");
    assert!(flat.contains("`train --resume --artifacts run`"), "{name}: no whole resume hint on the screen:\n{screen}");
    assert!(!flat.contains("by user"), "{name}: another message is mixed into the last line:\n{screen}");
    assert!(!flat.contains("done:") && !flat.contains("panicked"), "{name}:\n{screen}");
    assert!(!run.file("model.bpk").exists(), "{name}: a stopped run saved a final model");
}

#[test]
fn ctrl_c_stops_the_dashboard_like_a_plain_run() {
    if tmux_available("ctrl_c_stops_the_dashboard_like_a_plain_run") {
        stop_with(&[&["C-c"]], "tui-ctrl-c");
    }
}

#[test]
fn the_dashboards_stop_ends_like_ctrl_c() {
    if tmux_available("the_dashboards_stop_ends_like_ctrl_c") {
        stop_with(&[&["q"], &["s"]], "tui-quit-stop");
    }
}

#[test]
fn the_dashboards_kill_ends_like_ctrl_c() {
    if tmux_available("the_dashboards_kill_ends_like_ctrl_c") {
        stop_with(&[&["q"], &["k"]], "tui-quit-kill");
    }
}

#[test]
fn the_dashboard_shows_the_time_left_and_leaves_the_epoch_lines() {
    if !tmux_available("the_dashboard_shows_the_time_left_and_leaves_the_epoch_lines") {
        return;
    }
    let f = Fixture::with_sizes(8192, 256);
    f.write_config("tui.toml", "epochs = 20\nbatch_size = 32\nhidden = [64]\nlr = 0.1\ninit_std = 0.1\nseed = 1\n");
    let s = Session::start(&f, "tui-lines");
    // After the first epoch, the panel's title says how long the rest takes (Burn's own
    // estimate waits for 10 s of training).
    let live = s.wait_for("Status: about ", Duration::from_secs(60));
    assert!(live.contains("Status: about ") && live.contains(" left "), "no time left in the panel:\n{live}");
    let screen = s.wait_for("EXIT=", Duration::from_secs(120));
    assert!(screen.contains("EXIT=0"), "{screen}");
    // The per-epoch lines a plain run prints, after the dashboard closed.
    let rows = metrics(&f.path("run"));
    assert_eq!(rows.len(), 20);
    for row in &rows {
        let line = d2l_mlp::commands::progress::epoch_line(row, 20);
        assert!(screen.contains(&line), "no `{line}` on the screen:\n{screen}");
    }
}
