//! The epoch's loss and right answers, summed on a GPU and read a few times per epoch.
//!
//! Burn's `LossMetric` and our `AccuracyMetric` read a value from the device every step: on a
//! GPU each read waits for the step to finish, and burn-train's metric queue holds one step, so
//! the reads pace the training. The metrics here add each step's figures to sums kept on the
//! device (in `update`) and read them only when the display could show them: after the split's
//! first step (the loss only), then at most every [`READ_EVERY`] (Burn's dashboard redraws at
//! that rate), and after its last step. Each read is one device-to-host copy, counted by
//! [`device_reads`]: with the interval out of reach, three reads per split.
//!
//! What is read keeps the rest working: a read gives Burn's per-step log a line for the steps
//! since the last read (their mean and how many images, as Burn writes an aggregated entry) and
//! the recorder its divergence check. The loss also keeps the largest batch mean since the last
//! read, so one exploded batch is seen as one; a NaN or infinite loss makes the sum so. The
//! first read comes after the first step, so a run that diverges at once is told so.
//! The CPU backends keep the per-step metrics: a read costs nothing there.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use burn::tensor::{Device, Int, Tensor, TensorReadError};
use burn::train::SupervisedTraining;
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, LossMetric, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes, NumericEntry,
    SerializedEntry,
};

use super::recorder::EXPLODED_LOSS;
use crate::model::Mlp;
use crate::model::output::{AccuracyInput, AccuracyMetric, StepOutput};

/// The longest the sums go unread while a split runs (Burn's dashboard redraws every 100 ms).
pub const READ_EVERY: Duration = Duration::from_millis(100);

static READ_EVERY_MS: AtomicU64 = AtomicU64::new(READ_EVERY.as_millis() as u64);
static READS: AtomicU64 = AtomicU64::new(0);

/// Read the sums at most every `every` instead of [`READ_EVERY`] (tests: `Duration::MAX` leaves
/// the split's first step and its end).
pub fn set_read_interval(every: Duration) {
    READ_EVERY_MS.store(every.as_millis().min(u64::MAX as u128) as u64, Ordering::Relaxed);
}

/// Device-to-host reads the summing metrics made in this process.
pub fn device_reads() -> u64 {
    READS.load(Ordering::Relaxed)
}

/// `training` with the recipe's metrics, accuracy then loss: summed on the device where
/// [`crate::data::device::resident`] says so, else read every step.
pub fn with_metrics(training: SupervisedTraining<Mlp>, device: &Device) -> SupervisedTraining<Mlp> {
    if crate::data::device::resident(device) {
        training.metrics((SummedAccuracy::new(), SummedLoss::new()))
    } else {
        training.metrics((AccuracyMetric::new(), LossMetric::new()))
    }
}

/// When to read: after the split's first step (`first`), once [`READ_EVERY`] has passed, and
/// after its last step (so the divergence check sees every step before the split ends).
#[derive(Clone, Default)]
struct Clock {
    last: Option<Instant>,
}

impl Clock {
    fn due(&mut self, first: bool, meta: &MetricMetadata) -> bool {
        let every = Duration::from_millis(READ_EVERY_MS.load(Ordering::Relaxed));
        let due = meta.progress.items_processed >= meta.progress.items_total
            || match self.last {
                None => first,
                Some(t) => t.elapsed() >= every,
            };
        if due || self.last.is_none() {
            self.last = Some(Instant::now());
        }
        due
    }
}

/// What a summing metric keeps on the device between reads: the sums of the steps since the
/// last read.
pub trait Window: Sized + Clone + Send + Sync {
    /// A step's figures (an [`Adaptor`] of [`StepOutput`]).
    type Input;
    const NAME: &'static str;
    /// The unit shown after the figure, if any.
    const UNIT: Option<&'static str>;
    const HIGHER_IS_BETTER: bool;
    /// Whether to read after the split's first step (to tell a run that diverges at once).
    const READ_FIRST: bool;

    /// Add a step to `window` (`None`: the first since the last read); returns how many images
    /// it held.
    fn add(window: &mut Option<Self>, input: &Self::Input) -> usize;

    /// Read the window over `items` images: the value for the split's figures, and the one to
    /// show and log.
    fn read(self, items: usize) -> Result<(f64, f64), TensorReadError>;
}

/// A metric summed on the device by its [`Window`] and read by [`Clock`].
#[derive(Clone)]
pub struct Summed<W> {
    window: Option<W>,
    name: MetricName,
    /// Images since the last read.
    items: usize,
    clock: Clock,
    state: NumericMetricState,
    /// What the last `update` read (`None` when it read nothing).
    fresh: Option<NumericEntry>,
    shown: String,
    /// Reads since this metric was made.
    reads: usize,
}

/// The mean cross-entropy per image, named, formatted and logged as Burn's `LossMetric`.
pub type SummedLoss = Summed<LossWindow>;
/// Accuracy in percent, named, formatted and logged as [`AccuracyMetric`] (Burn's).
pub type SummedAccuracy = Summed<CorrectWindow>;

impl<W: Window> Default for Summed<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W: Window> Summed<W> {
    pub fn new() -> Self {
        let name = Arc::new(W::NAME.to_string());
        Self { window: None, name, items: 0, clock: Clock::default(), state: NumericMetricState::new(), fresh: None, shown: String::new(), reads: 0 }
    }

    fn format(&self) -> FormatOptions {
        let format = FormatOptions::new(self.name.clone()).precision(2);
        match W::UNIT {
            Some(unit) => format.unit(unit),
            None => format,
        }
    }

    /// Read the window into the host state; returns its entry, or `None` when it is empty.
    fn read_window(&mut self) -> Result<Option<SerializedEntry>, TensorReadError> {
        let Some(window) = self.window.take() else {
            return Ok(None);
        };
        let items = std::mem::take(&mut self.items);
        READS.fetch_add(1, Ordering::Relaxed);
        self.reads += 1;
        let (value, shown) = window.read(items)?;
        self.state.update(value, items);
        self.fresh = Some(NumericEntry::Aggregated { aggregated_value: shown, count: items });
        Ok(Some(self.state.compute_update(self.format())))
    }
}

impl<W: Window> Metric for Summed<W> {
    type Input = W::Input;

    fn update(&mut self, input: &W::Input, meta: &MetricMetadata) -> Result<SerializedEntry, TensorReadError> {
        self.fresh = None;
        self.items += W::add(&mut self.window, input);
        if self.clock.due(W::READ_FIRST, meta)
            && let Some(entry) = self.read_window()?
        {
            self.shown = entry.formatted.clone();
            return Ok(entry);
        }
        // Nothing read: no log line; the dashboard keeps the last figures.
        Ok(SerializedEntry::new(self.shown.clone(), SerializedEntry::NOT_AVAILABLE.to_string()))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        self.read_window()?;
        Ok(self.state.compute_final(self.format()))
    }

    fn clear(&mut self) {
        *self = Self { name: self.name.clone(), reads: self.reads, ..Self::new() };
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes { unit: W::UNIT.map(str::to_string), higher_is_better: W::HIGHER_IS_BETTER }.into()
    }
}

impl<W: Window> Numeric for Summed<W> {
    fn value(&self) -> Option<NumericEntry> {
        self.fresh.clone()
    }

    fn running_value(&self) -> Option<NumericEntry> {
        self.fresh.as_ref().map(|_| self.state.running_value())
    }

    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}

/// A step's losses, for [`SummedLoss`].
pub struct LossesInput {
    losses: Tensor<1>,
}

impl Adaptor<LossesInput> for StepOutput {
    fn adapt(&self) -> LossesInput {
        LossesInput { losses: self.losses.clone() }
    }
}

/// The sum of the losses `[1]` and the largest batch mean `[1]`.
#[derive(Clone)]
pub struct LossWindow {
    sum: Tensor<1>,
    peak: Tensor<1>,
}

impl Window for LossWindow {
    type Input = LossesInput;
    const NAME: &'static str = "Loss";
    const UNIT: Option<&'static str> = None;
    const HIGHER_IS_BETTER: bool = false;
    const READ_FIRST: bool = true;

    fn add(window: &mut Option<Self>, input: &LossesInput) -> usize {
        let [n] = input.losses.dims();
        if n > 0 {
            let sum = input.losses.clone().sum();
            let mean = sum.clone().div_scalar(n as f64);
            *window = Some(match window.take() {
                None => Self { sum, peak: mean },
                Some(w) => Self { sum: w.sum.add(sum), peak: w.peak.max_pair(mean) },
            });
        }
        n
    }

    fn read(self, items: usize) -> Result<(f64, f64), TensorReadError> {
        let v = Tensor::cat(vec![self.sum, self.peak], 0).try_into_vec_as::<f64>()?;
        let mean = v[0] / items as f64;
        // A batch that exploded among finite ones is shown, so the divergence check sees it.
        let shown = if mean < EXPLODED_LOSS && v[1] >= EXPLODED_LOSS { v[1] } else { mean };
        Ok((mean, shown))
    }
}

/// The right answers `[1]`.
#[derive(Clone)]
pub struct CorrectWindow(Tensor<1, Int>);

impl Window for CorrectWindow {
    type Input = AccuracyInput;
    const NAME: &'static str = "Accuracy";
    const UNIT: Option<&'static str> = Some("%");
    const HIGHER_IS_BETTER: bool = true;
    const READ_FIRST: bool = false;

    fn add(window: &mut Option<Self>, input: &AccuracyInput) -> usize {
        if input.items > 0 {
            let c = input.correct.clone();
            *window = Some(match window.take() {
                None => Self(c),
                Some(Self(w)) => Self(w.add(c)),
            });
        }
        input.items
    }

    fn read(self, items: usize) -> Result<(f64, f64), TensorReadError> {
        let correct = self.0.try_into_vec_as::<f64>()?[0];
        // As Burn: the fraction first, then percent.
        let percent = 100.0 * (correct / items as f64);
        Ok((percent, percent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::data::dataloader::Progress;
    use burn::tensor::TensorData;

    fn meta(done: usize, total: usize) -> MetricMetadata {
        MetricMetadata { progress: Progress { items_processed: done, items_total: total, unit: None }, iteration: Some(0), lr: None }
    }

    fn step(losses: &[f32], correct: i64) -> StepOutput {
        let d = crate::backend::cpu_device();
        let losses = Tensor::<1>::from_data(TensorData::new(losses.to_vec(), [losses.len()]), &d);
        StepOutput { losses, correct: Tensor::<1, Int>::from_data(TensorData::new(vec![correct], [1]), &d) }
    }

    /// A split of steps of 4 images: what each metric logs and reports, and how often it read.
    fn run<L: Metric + Numeric, A: Metric + Numeric>(loss: &mut L, acc: &mut A, steps: &[(Vec<f32>, i64)]) -> (Vec<String>, Vec<Option<f64>>, f64, f64)
    where
        StepOutput: Adaptor<L::Input> + Adaptor<A::Input>,
    {
        let total = steps.len() * 4;
        let (mut logged, mut values) = (Vec::new(), Vec::new());
        for (i, (l, c)) in steps.iter().enumerate() {
            let (out, m) = (step(l, *c), meta(4 * (i + 1), total));
            logged.push(loss.update(&out.adapt(), &m).unwrap().serialized);
            acc.update(&out.adapt(), &m).unwrap();
            values.push(loss.value().map(|v| v.current()));
        }
        loss.compute().unwrap();
        acc.compute().unwrap();
        (logged, values, loss.final_value().current(), acc.final_value().current())
    }

    /// With the interval out of reach the loss is read after the first and the last step and
    /// the accuracy after the last: three reads for the split, two log lines covering every
    /// image, and the epoch's figures of Burn's `LossMetric` and our per-step accuracy.
    #[test]
    fn a_split_is_read_three_times_and_gives_the_per_step_metrics_figures() {
        set_read_interval(Duration::MAX);
        let steps: Vec<(Vec<f32>, i64)> = (0..6).map(|i| ((0..4).map(|j| 0.1 * (i * 4 + j) as f32 + 0.05).collect(), i % 5)).collect();
        let (mut loss, mut acc) = (SummedLoss::new(), SummedAccuracy::new());
        let (logged, _, final_loss, final_acc) = run(&mut loss, &mut acc, &steps);
        assert_eq!((loss.reads, acc.reads), (2, 1));
        let lines: Vec<&String> = logged.iter().filter(|l| l.as_str() != SerializedEntry::NOT_AVAILABLE).collect();
        assert_eq!(lines.len(), 2, "{logged:?}");
        let counts: usize = lines.iter().map(|l| l.split(',').nth(1).unwrap().parse::<usize>().unwrap()).sum();
        assert_eq!(counts, 24, "the log lines cover every image: {lines:?}");
        let (mut burn_loss, mut per_step_acc) = (LossMetric::new(), AccuracyMetric::new());
        let (_, _, want_loss, want_acc) = run(&mut burn_loss, &mut per_step_acc, &steps);
        assert!((final_loss - want_loss).abs() < 1e-6, "{final_loss} vs {want_loss}");
        assert!((final_acc - want_acc).abs() < 1e-9, "{final_acc} vs {want_acc}");
        // A new split starts from nothing.
        loss.clear();
        let (_, _, again, _) = run(&mut loss, &mut acc, &steps[..1]);
        assert!((again - 0.2).abs() < 1e-6, "{again}");
    }

    /// One exploded batch among finite ones is reported as itself, as a per-step read would
    /// (the window's mean is under the limit); a NaN loss makes the value NaN.
    #[test]
    fn an_exploded_or_nan_batch_shows_in_what_is_read() {
        let finite = |v: f32| (vec![v; 4], 0);
        let mut steps = vec![finite(0.5), finite(2000.0)];
        steps.extend((0..5).map(|_| finite(0.5)));
        let (mut loss, mut acc) = (SummedLoss::new(), SummedAccuracy::new());
        let (_, values, final_loss, _) = run(&mut loss, &mut acc, &steps);
        assert!(values.iter().flatten().any(|&v| v >= EXPLODED_LOSS), "{values:?}");
        assert!(final_loss < EXPLODED_LOSS, "the epoch's mean stays the mean: {final_loss}");
        let (mut loss, mut acc) = (SummedLoss::new(), SummedAccuracy::new());
        let (_, values, _, _) = run(&mut loss, &mut acc, &[finite(0.5), (vec![0.5, f32::NAN, 0.5, 0.5], 0), finite(0.5)]);
        assert!(values.iter().flatten().any(|v| v.is_nan()), "{values:?}");
    }
}
