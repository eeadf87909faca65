//! How `train` shows progress: one line per epoch (in a pipe, as before); on a terminal also a
//! progress bar within an epoch once it has run for a second, cleared when the line prints.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use crate::run::metrics::{EpochRow, HeldOut};
use crate::train::Observer;

/// The per-epoch line `train` prints.
pub fn epoch_line(row: &EpochRow, total: usize) -> String {
    epoch_line_as(row, total, HeldOut::Test)
}

/// The per-epoch line, its held-out figures named `test` or `val`.
pub fn epoch_line_as(row: &EpochRow, total: usize, held: HeldOut) -> String {
    format!(
        "epoch {:>2}/{}  train loss {:.4} acc {:.4} | {} loss {:.4} acc {:.4} | {:.1} s",
        row.epoch,
        total,
        row.train_loss,
        row.train_acc,
        held.short(),
        row.test_loss,
        row.test_acc,
        row.seconds
    )
}

/// A download's progress as an indicatif bar per file on stderr (drawn only on a terminal).
#[derive(Default)]
pub struct DownloadBars {
    bar: std::sync::Mutex<Option<ProgressBar>>,
}

impl crate::data::Transfers for DownloadBars {
    fn begin(&self, name: &str, len: Option<u64>) {
        let template = match len {
            Some(_) => "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, {eta} left",
            None => "{prefix} {spinner} {bytes} {bytes_per_sec}",
        };
        let style = ProgressStyle::with_template(template).map(|s| s.progress_chars("=> ")).unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::with_draw_target(len, indicatif::ProgressDrawTarget::stderr()).with_style(style).with_prefix(name.to_string());
        if let Ok(mut b) = self.bar.lock() {
            *b = Some(bar);
        }
    }

    fn advance(&self, bytes: u64) {
        if let Ok(b) = self.bar.lock() {
            b.as_ref().inspect(|b| b.inc(bytes));
        }
    }

    fn end(&self, ok: bool) {
        if let Some(b) = self.bar.lock().ok().and_then(|mut b| b.take()) {
            if ok { b.finish() } else { b.abandon() }
        }
    }
}

/// Time left at the average rate so far (the steps of an epoch take about the same time);
/// `None` before the first item.
pub fn time_left(elapsed: Duration, done: u64, total: u64) -> Option<Duration> {
    (done > 0).then(|| elapsed.mul_f64(total.saturating_sub(done) as f64 / done as f64))
}

pub use crate::train::format_left;

pub struct EpochLines {
    sink: Box<dyn FnMut(String) + Send + Sync>,
    bar: Option<ProgressBar>,
    terminal: bool,
    split_start: Instant,
    label: String,
    items: usize,
    held: HeldOut,
}

impl EpochLines {
    pub fn new(sink: Box<dyn FnMut(String) + Send + Sync>) -> Self {
        Self { sink, bar: None, terminal: std::io::stderr().is_terminal(), split_start: Instant::now(), label: String::new(), items: 0, held: HeldOut::Test }
    }

    /// Name the held-out figures after what they measure (a validation split: `val`).
    pub fn naming(mut self, held: HeldOut) -> Self {
        self.held = held;
        self
    }

    fn clear_bar(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Observer for EpochLines {
    fn split_started(&mut self, epoch: usize, total: usize, valid: bool, items: usize) {
        self.clear_bar();
        self.split_start = Instant::now();
        self.items = items;
        self.label = format!("epoch {epoch}/{total} {}", if valid { self.held.short() } else { "train" });
    }

    fn split_progress(&mut self, done: usize) {
        if !self.terminal || self.split_start.elapsed() < Duration::from_secs(1) {
            return;
        }
        let (items, label) = (self.items as u64, self.label.clone());
        let since = self.split_start.elapsed();
        let bar = self.bar.get_or_insert_with(|| {
            // Started at the split's start, so the rate counts the second before the bar showed.
            let b = ProgressBar::new(items).with_elapsed(since);
            let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} images, {left} left")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key("left", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let left = time_left(s.elapsed(), s.pos(), s.len().unwrap_or(0));
                    let _ = w.write_str(&left.map(format_left).unwrap_or_else(|| "?".into()));
                });
            b.set_style(style.progress_chars("=> "));
            b.set_message(label);
            b
        });
        bar.set_position(done as u64);
    }

    fn epoch_finished(&mut self, row: &EpochRow, total: usize) {
        self.clear_bar();
        (self.sink)(epoch_line_as(row, total, self.held));
    }

    fn finished(&mut self) {
        self.clear_bar();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_follows_the_average_rate() {
        // A tenth of a 9.2 s epoch took 0.92 s: 8.28 s are left, within 30 % of the truth.
        let left = time_left(Duration::from_secs_f64(0.92), 23, 230).unwrap();
        assert!((left.as_secs_f64() - 8.28).abs() < 0.01, "{left:?}");
        assert_eq!(time_left(Duration::from_secs(1), 0, 230), None);
        assert_eq!(time_left(Duration::from_secs(5), 230, 230), Some(Duration::ZERO));
    }

    #[test]
    fn time_left_reads_as_minutes_and_seconds() {
        assert_eq!(format_left(Duration::from_secs(9)), "9s");
        assert_eq!(format_left(Duration::from_secs_f64(65.4)), "1m 05s");
    }
}
