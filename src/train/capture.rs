//! The seam between Burn's Learner and our run: a `MetricsRenderer` that feeds the
//! [`Recorder`], tells the caller's [`Observer`] what happens, stops a diverging run, and
//! forwards every event to an inner renderer (Burn's TUI with `--tui`), so displays stay swappable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation, MetricsRendererTraining,
};
use burn::train::{Interrupter, LearnerSummary};

use super::Observer;
use super::dashboard::Dashboard;
use super::recorder::{MetricKind, Recorder};

pub struct Capture {
    pub recorder: Arc<Mutex<Recorder>>,
    pub observer: Box<dyn Observer>,
    pub inner: Option<Dashboard>,
    pub interrupter: Interrupter,
    ids: HashMap<MetricId, MetricKind>,
    total_epochs: usize,
    epoch: usize,
    in_valid: bool,
    epoch_start: Instant,
    /// The test hook's epoch ([`super::hold`]): wait at the start of its training split.
    hold: Option<usize>,
    /// This session's first epoch and when it began: the time left is the mean epoch's.
    session: Option<(usize, Instant)>,
}

impl Capture {
    pub fn new(recorder: Arc<Mutex<Recorder>>, observer: Box<dyn Observer>, inner: Option<Dashboard>, interrupter: Interrupter) -> Self {
        Self {
            recorder,
            observer,
            inner,
            interrupter,
            ids: HashMap::new(),
            total_epochs: 0,
            epoch: 1,
            in_valid: false,
            epoch_start: Instant::now(),
            hold: None,
            session: None,
        }
    }

    /// Wait at the start of `epoch`'s training split until the run is stopped (a test hook).
    pub fn holding(mut self, epoch: Option<usize>) -> Self {
        self.hold = epoch;
        self
    }

    fn forward(&mut self, f: impl FnOnce(&mut dyn MetricsRenderer)) {
        if let Some(d) = &mut self.inner {
            d.forward(f);
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Recorder) -> R) -> Option<R> {
        self.recorder.lock().ok().map(|mut g| f(&mut g))
    }

    fn record(&mut self, state: &MetricState, valid: bool) {
        let MetricState::Numeric(entry, Some(value)) = state else {
            return;
        };
        let Some(&kind) = self.ids.get(&entry.metric_id) else {
            return;
        };
        let (v, is_final) = match value {
            NumericEntry::Value(v) => (*v, false),
            NumericEntry::Aggregated { aggregated_value, .. } => (*aggregated_value, false),
            NumericEntry::Final(v) => (*v, true),
        };
        let epoch = self.epoch;
        if self.with(|r| r.value(epoch, kind, valid, v, is_final)) == Some(true) {
            self.interrupter.stop(Some("the loss is not finite"));
        }
    }

    fn end_of_split(&mut self) {
        // A stop request means the Learner will not checkpoint this epoch (it checks after the
        // events are processed), and validation may have been cut short: record no row for it.
        if !self.in_valid {
            self.with(|r| r.train_split_ended());
            return;
        }
        if self.interrupter.should_stop() {
            return;
        }
        let (epoch, secs) = (self.epoch, self.epoch_start.elapsed().as_secs_f64());
        if let Some(Some(row)) = self.with(|r| r.epoch_finished(epoch, secs)) {
            self.observer.epoch_finished(&row, self.total_epochs);
        }
    }
}

impl MetricsRendererTraining for Capture {
    fn update_train(&mut self, state: MetricState) {
        self.record(&state, false);
        self.forward(|i| i.update_train(state));
    }

    fn update_valid(&mut self, state: MetricState) {
        self.record(&state, true);
        self.forward(|i| i.update_valid(state));
    }

    fn on_train_end(&mut self, summary: Option<LearnerSummary>) -> Result<(), Box<dyn std::error::Error>> {
        self.observer.finished();
        let mut result = Ok(());
        self.forward(|i| result = i.on_train_end(summary));
        result
    }
}

impl TrainingProgressLogger for Capture {
    fn start(&mut self, total_epochs: usize, starting_epoch: usize, total_items: Option<usize>, label: Option<&str>) {
        self.total_epochs = total_epochs;
        self.epoch = starting_epoch;
        self.epoch_start = Instant::now();
        self.session = Some((starting_epoch, Instant::now()));
        self.forward(|i| i.start(total_epochs, starting_epoch, total_items, label));
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = epoch + 1;
        self.epoch_start = Instant::now();
        self.forward(|i| i.update_epoch(epoch));
        // `epoch` has ended: the epochs left at the mean rate of this session's.
        if let (Some((first, began)), Some(d)) = (self.session, self.inner.as_mut()) {
            let done = (epoch + 1).saturating_sub(first).max(1);
            let left = began.elapsed().mul_f64(self.total_epochs.saturating_sub(epoch) as f64 / done as f64);
            d.time_left(self.total_epochs, epoch + 1, left);
        }
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.in_valid = split.to_ascii_lowercase().starts_with("valid");
        self.with(|r| r.split_started());
        self.observer.split_started(self.epoch, self.total_epochs, self.in_valid, total_items);
        self.forward(|i| i.start_split(split, total_items));
        if !self.in_valid && self.hold == Some(self.epoch) {
            super::hold::wait(&self.interrupter);
        }
    }

    fn update_split(&mut self, items_processed: usize) {
        self.observer.split_progress(items_processed);
        self.forward(|i| i.update_split(items_processed));
    }

    fn end_split(&mut self) {
        self.end_of_split();
        self.forward(|i| i.end_split());
    }

    fn end(&mut self) {
        self.forward(|i| TrainingProgressLogger::end(i));
    }

    fn log_event_training(&mut self, event: String) {
        self.forward(|i| i.log_event_training(event));
    }
}

// Training never runs an evaluation phase through the renderer: nothing to forward.
impl EvaluationProgressLogger for Capture {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, _name: &str, _total_items: usize) {}
    fn update_test_progress(&mut self, _items_processed: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRendererEvaluation for Capture {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl MetricsRenderer for Capture {
    fn manual_close(&mut self) {
        self.forward(|i| i.manual_close());
    }

    fn register_metric(&mut self, definition: MetricDefinition) {
        let kind = match definition.name.as_str() {
            "Loss" => Some(MetricKind::Loss),
            "Accuracy" => Some(MetricKind::Accuracy),
            _ => None,
        };
        if let Some(k) = kind {
            self.ids.insert(definition.metric_id.clone(), k);
        }
        self.forward(|i| i.register_metric(definition));
    }
}
