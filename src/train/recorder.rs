//! The recorder: what a run keeps of each epoch. It turns metric values into `EpochRow`s,
//! appends them to the run's TensorBoard events, rewrites `metrics.csv`, redraws `curves.png`,
//! keeps `run.json`, and decides that a run diverged. It knows nothing of Burn's events or of
//! the terminal.

use std::time::Instant;

use crate::run::info::{RunInfo, now_rfc3339};
use crate::run::metrics::{self, EpochRow};
use crate::run::tensorboard::RunEvents;
use crate::run::{CURVES_FILE, INFO_FILE, METRICS_FILE, RunDir};

/// A training batch's mean loss at or above this (or NaN/inf) means the run diverged. The
/// cross-entropy is computed stably, so a too-large learning rate shows up as an explosion
/// (1e3 is ~430x the loss of a uniform guess over 10 classes, ln 10) before, or instead of, NaN.
pub const EXPLODED_LOSS: f64 = 1e3;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MetricKind {
    Loss,
    Accuracy,
}

#[derive(Default, Clone, Copy, Debug)]
struct SplitFigures {
    loss: Option<f64>,
    acc: Option<f64>,
}

/// Where a run diverged: the epoch, and whether it was the very first batch of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub epoch: usize,
    pub first_batch: bool,
}

pub struct Recorder {
    run: RunDir,
    plots: bool,
    info: Option<RunInfo>,
    events: Option<RunEvents>,
    rows: Vec<EpochRow>,
    train: SplitFigures,
    valid: SplitFigures,
    batches_seen: usize,
    pub diverged: Option<Divergence>,
    pub write_error: Option<crate::Error>,
    /// Seconds of the training and of the test split of each epoch trained in this session.
    pub split_seconds: Vec<(f64, f64)>,
    split_start: Instant,
    train_seconds: f64,
}

impl Recorder {
    /// `history`: the rows of earlier sessions (kept in `metrics.csv`); `info`: written to
    /// `run.json` after each epoch when given.
    pub fn new(run: RunDir, history: Vec<EpochRow>, plots: bool, info: Option<RunInfo>) -> Self {
        Self {
            run,
            plots,
            info,
            events: None,
            rows: history,
            train: SplitFigures::default(),
            valid: SplitFigures::default(),
            batches_seen: 0,
            diverged: None,
            write_error: None,
            split_seconds: Vec::new(),
            split_start: Instant::now(),
            train_seconds: 0.0,
        }
    }

    /// Also write each epoch's figures to this session's TensorBoard events file.
    pub fn with_events(mut self, events: Option<RunEvents>) -> Self {
        self.events = events;
        self
    }

    pub fn rows(&self) -> &[EpochRow] {
        &self.rows
    }

    /// A metric value of `epoch`; returns true when it shows the run diverging (first time only).
    pub fn value(&mut self, epoch: usize, kind: MetricKind, valid: bool, value: f64, is_final: bool) -> bool {
        if kind == MetricKind::Loss && !valid && !is_final {
            self.batches_seen += 1;
        }
        let exploded = kind == MetricKind::Loss && !valid && value.partial_cmp(&EXPLODED_LOSS) != Some(std::cmp::Ordering::Less);
        let newly = exploded && self.diverged.is_none();
        if newly {
            let first_batch = self.batches_seen <= 1 && self.rows.is_empty();
            self.diverged = Some(Divergence { epoch, first_batch });
        }
        if is_final {
            let figs = if valid { &mut self.valid } else { &mut self.train };
            match kind {
                MetricKind::Loss => figs.loss = Some(value),
                // Burn reports accuracy in percent.
                MetricKind::Accuracy => figs.acc = Some(value / 100.0),
            }
        }
        newly
    }

    pub fn split_started(&mut self) {
        self.split_start = Instant::now();
    }

    pub fn train_split_ended(&mut self) {
        self.train_seconds = self.split_start.elapsed().as_secs_f64();
    }

    /// The test split of `epoch` ended: record its row and persist it. `None` after divergence.
    pub fn epoch_finished(&mut self, epoch: usize, seconds: f64) -> Option<EpochRow> {
        if self.diverged.is_some() {
            return None;
        }
        let nan = f64::NAN;
        let row = EpochRow {
            epoch,
            train_loss: self.train.loss.unwrap_or(nan),
            train_acc: self.train.acc.unwrap_or(nan),
            test_loss: self.valid.loss.unwrap_or(nan),
            test_acc: self.valid.acc.unwrap_or(nan),
            seconds,
        };
        self.rows.retain(|r| r.epoch < row.epoch);
        self.rows.push(row);
        self.split_seconds.push((self.train_seconds, self.split_start.elapsed().as_secs_f64()));
        self.train = SplitFigures::default();
        self.valid = SplitFigures::default();
        if let Err(e) = self.persist(&row) {
            self.write_error.get_or_insert(e);
        }
        Some(row)
    }

    fn persist(&mut self, row: &EpochRow) -> crate::Result<()> {
        // The events first: an epoch there but not in metrics.csv (a kill in between) is
        // trained again on resume, and the resumed session's restart marker drops it.
        if let Some(ev) = &mut self.events {
            ev.epoch(row, crate::run::tensorboard::now())?;
        }
        metrics::write(&self.run.file(METRICS_FILE), &self.rows)?;
        if self.plots {
            let held = metrics::held_out(&self.run.file(METRICS_FILE));
            crate::plot::draw_curves(&[(self.run.name(), self.rows.clone())], held, &self.run.file(CURVES_FILE))?;
        }
        if let Some(info) = &mut self.info {
            info.finished = Some(now_rfc3339());
            let n = self.split_seconds.len().max(1) as f64;
            info.seconds_per_epoch = Some(self.split_seconds.iter().map(|s| s.0 + s.1).sum::<f64>() / n);
            info.save(&self.run.file(INFO_FILE))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_written_and_divergence_is_caught_once() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let mut r = Recorder::new(run.clone(), Vec::new(), false, None);
        assert!(!r.value(1, MetricKind::Loss, false, 2.3, false));
        r.value(1, MetricKind::Loss, false, 0.9, true);
        r.value(1, MetricKind::Accuracy, false, 70.0, true);
        r.value(1, MetricKind::Loss, true, 0.8, true);
        r.value(1, MetricKind::Accuracy, true, 75.0, true);
        let row = r.epoch_finished(1, 1.5).unwrap();
        assert_eq!((row.train_loss, row.train_acc, row.test_acc), (0.9, 0.7, 0.75));
        assert_eq!(metrics::read(&run.file(METRICS_FILE)).unwrap(), vec![row]);
        assert!(r.value(2, MetricKind::Loss, false, f64::NAN, false));
        assert!(!r.value(2, MetricKind::Loss, false, f64::INFINITY, false));
        assert_eq!(r.diverged, Some(Divergence { epoch: 2, first_batch: false }));
        assert!(r.epoch_finished(2, 1.0).is_none());
    }

    #[test]
    fn nan_in_the_first_batch_is_flagged_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::new(RunDir::new(dir.path()), Vec::new(), false, None);
        assert!(r.value(1, MetricKind::Loss, false, f64::NAN, false));
        assert_eq!(r.diverged, Some(Divergence { epoch: 1, first_batch: true }));
    }
}
