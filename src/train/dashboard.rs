//! Burn's terminal dashboard (`--tui`) behind a guard, so that every way out of it ends the
//! run as Ctrl-C does without it: the epoch in progress dropped, the run's stop switch set.
//!
//! - The dashboard gets a stop switch of its own and Burn resets it when training ends, so a
//!   quit (`q`, then `s`) would otherwise look like a finished run: it is copied to the run's.
//! - Its kill option (`q`, then `k`) panics on purpose; the panic is caught here and taken as
//!   a quit, instead of ending the process with a half-restored screen.
//! - It holds the terminal in raw mode, where Ctrl-C is a key it ignores: the terminal's
//!   signal keys are turned back on, so Ctrl-C stays a SIGINT.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use burn::train::Interrupter;
use burn::train::renderer::MetricsRenderer;
use burn::train::renderer::tui::TuiMetricsRendererWrapper;

/// The stop reason of a quit from the dashboard.
pub const QUIT: &str = "quit from the dashboard";

pub struct Dashboard {
    tui: Option<TuiMetricsRendererWrapper>,
    own: Interrupter,
    run: Interrupter,
    /// When the terminal's signal keys were last checked.
    checked: Instant,
}

impl Dashboard {
    /// Open the dashboard (it takes the terminal over); `resumed_at`: the epoch a resumed run
    /// starts after.
    pub fn open(run: Interrupter, resumed_at: Option<usize>) -> Self {
        let own = Interrupter::new();
        let tui = TuiMetricsRendererWrapper::new(own.clone(), resumed_at);
        keep_signal_keys(Duration::from_secs(1));
        Self { tui: Some(tui), own, run, checked: Instant::now() }
    }

    /// Hand one event to the dashboard; afterwards, copy its quit to the run.
    pub fn forward(&mut self, f: impl FnOnce(&mut dyn MetricsRenderer)) {
        self.copy_quit();
        // The dashboard's thread may take the terminal over later than `open` waited for (a
        // loaded machine): look again now and then.
        if self.checked.elapsed() > Duration::from_millis(200) {
            keep_signal_keys(Duration::ZERO);
            self.checked = Instant::now();
        }
        let Some(tui) = self.tui.as_mut() else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(|| f(tui))).is_err() {
            // The kill option: its render thread is gone and its `Drop` would panic again.
            std::mem::forget(self.tui.take());
            self.run.stop(Some(QUIT));
            clear_below_cursor();
        }
        self.copy_quit();
    }

    /// Show the time left in the panel's title (`Status: about 3s left`). Burn's own estimate,
    /// beside the progress bars, waits for 10 s of training and so stays `(---)` in a short run.
    /// Burn's `start` is the only way to set the title; it sets the epoch counter too, to the
    /// epoch under way as `update_epoch` did.
    pub fn time_left(&mut self, total_epochs: usize, next_epoch: usize, left: Duration) {
        let label = format!("about {} left", super::format_left(left));
        self.forward(|tui| tui.start(total_epochs, next_epoch, None, Some(&label)));
    }

    fn copy_quit(&self) {
        if self.own.should_stop() && !self.run.should_stop() {
            self.run.stop(Some(QUIT));
        }
    }
}

/// Burn's kill path panics on two threads (this one and the dashboard's), and each leaves the
/// main screen (which puts the cursor back where the dashboard opened) and one of them prints a
/// note, in an order that varies. Once the dashboard's thread is gone, nothing else is printed:
/// then go back to where the dashboard opened and clear from there down, so the run's own last
/// line is read in full.
fn clear_below_cursor() {
    use std::io::{IsTerminal, Write};
    let mut err = std::io::stderr();
    if err.is_terminal() {
        wait_for_thread_gone(RENDER_THREAD, Duration::from_secs(2));
        let _ = err.write_all(b"\x1b[?1049l\r\x1b[J");
        let _ = err.flush();
    }
}

/// The name Burn gives the dashboard's thread.
const RENDER_THREAD: &str = "train-renderer";

/// Wait (at most `limit`) until no thread of this process is called `name`. Where threads
/// cannot be listed (no /proc), wait a fixed 300 ms instead.
fn wait_for_thread_gone(name: &str, limit: Duration) {
    let began = Instant::now();
    while began.elapsed() < limit {
        match thread_named(name) {
            Some(false) => return,
            Some(true) => std::thread::sleep(Duration::from_millis(10)),
            None => return std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// Whether a thread of this process is called `name`; `None` without /proc.
fn thread_named(name: &str) -> Option<bool> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    Some(tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
    }))
}

/// Wait (at most `wait`) for the dashboard's thread to put the terminal in raw mode, then
/// turn its signal keys (Ctrl-C, Ctrl-\) back on; at once when they are on already.
fn keep_signal_keys(wait: Duration) {
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return;
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&tty);
    let began = Instant::now();
    loop {
        // SAFETY: `termios` is plain data that tcgetattr fills in; `fd` is open for the
        // duration of the calls (`tty` lives until the end of this function).
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return;
            }
            if t.c_lflag & libc::ICANON == 0 {
                if t.c_lflag & libc::ISIG == 0 {
                    t.c_lflag |= libc::ISIG;
                    libc::tcsetattr(fd, libc::TCSANOW, &t);
                }
                return;
            }
        }
        if began.elapsed() >= wait {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_thread_is_seen_until_it_ends() {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        // The thread names itself once it runs: wait for that.
        let t = std::thread::Builder::new()
            .name("d2l-named-test".into())
            .spawn(move || {
                started.send(()).unwrap();
                wait.recv()
            })
            .unwrap();
        running.recv().unwrap();
        if thread_named("d2l-named-test").is_none() {
            return; // no /proc: nothing to list
        }
        assert_eq!(thread_named("d2l-named-test"), Some(true));
        go.send(()).unwrap();
        t.join().unwrap().unwrap();
        let began = Instant::now();
        wait_for_thread_gone("d2l-named-test", Duration::from_secs(5));
        assert!(began.elapsed() < Duration::from_secs(5), "the ended thread was still listed");
        assert_eq!(thread_named("d2l-named-test"), Some(false));
    }
}
