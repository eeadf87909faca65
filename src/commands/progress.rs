//! How `train` shows progress: one line per epoch (in a pipe, as before); on a terminal also a
//! progress bar within an epoch once it has run for a second, cleared when the line prints.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::run::metrics::EpochRow;
use crate::train::Observer;

/// The per-epoch line `train` prints.
pub fn epoch_line(row: &EpochRow, total: usize) -> String {
    format!(
        "epoch {:>2}/{}  train loss {:.4} acc {:.4} | test loss {:.4} acc {:.4} | {:.1} s",
        row.epoch, total, row.train_loss, row.train_acc, row.test_loss, row.test_acc, row.seconds
    )
}

pub struct EpochLines {
    sink: Box<dyn FnMut(String) + Send + Sync>,
    bar: Option<ProgressBar>,
    terminal: bool,
    split_start: Instant,
    label: String,
    items: usize,
}

impl EpochLines {
    pub fn new(sink: Box<dyn FnMut(String) + Send + Sync>) -> Self {
        Self { sink, bar: None, terminal: std::io::stderr().is_terminal(), split_start: Instant::now(), label: String::new(), items: 0 }
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
        self.label = format!("epoch {epoch}/{total} {}", if valid { "test" } else { "train" });
    }

    fn split_progress(&mut self, done: usize) {
        if !self.terminal || self.split_start.elapsed() < Duration::from_secs(1) {
            return;
        }
        let (items, label) = (self.items as u64, self.label.clone());
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::new(items);
            let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} images, {eta} left")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style.progress_chars("=> "));
            b.set_message(label);
            b
        });
        bar.set_position(done as u64);
    }

    fn epoch_finished(&mut self, row: &EpochRow, total: usize) {
        self.clear_bar();
        (self.sink)(epoch_line(row, total));
    }

    fn finished(&mut self) {
        self.clear_bar();
    }
}
