//! What a training or test step hands Burn's metrics, and the accuracy metric that reads it.
//!
//! Burn's `ClassificationOutput` carries the logits, and its `AccuracyMetric` takes their argmax,
//! compares and sums with four tensor operations on the metrics thread every step. On a 2-core
//! machine that thread runs beside the step's products and slowed the whole step (about 30-40 us
//! of a 1.3 ms step, measured). Where the logits already sit in host memory (flex), the step
//! counts the right answers itself in one pass over 2560 values; elsewhere (a GPU) the count
//! stays a lazy tensor computation, read on the metrics thread as before.

use burn::tensor::{ExecutionError, Int, Tensor, TensorReadError};
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, ItemLazy, LossInput, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};
use std::sync::Arc;

/// A step's output: the per-example losses and how many images it classified right.
pub struct StepOutput {
    /// `[batch]`, the cross-entropy of each image.
    pub losses: Tensor<1>,
    pub correct: Correct,
}

/// The number of images whose largest logit is their label.
pub enum Correct {
    /// Counted on the host (the logits were already there).
    Counted { correct: usize, items: usize },
    /// To be computed from the logits `[batch, classes]` and targets `[batch]` on the metrics
    /// thread, so the device is not waited for.
    Lazy { logits: Tensor<2>, targets: Tensor<1, Int> },
}

impl StepOutput {
    /// The output of a step with these logits: counted at once when `host` (reading them costs
    /// nothing), else left to the metrics thread.
    pub fn new(losses: Tensor<1>, logits: Tensor<2>, targets: Tensor<1, Int>, host: bool) -> Self {
        let correct = match host.then(|| count_on_host(&logits, &targets)).flatten() {
            Some(correct) => Correct::Counted { correct, items: targets.dims()[0] },
            None => Correct::Lazy { logits, targets },
        };
        StepOutput { losses, correct }
    }
}

/// `count_correct` over the tensors' values; `None` when they cannot be read as `f32`/`i64`.
fn count_on_host(logits: &Tensor<2>, targets: &Tensor<1, Int>) -> Option<usize> {
    let [rows, classes] = logits.dims();
    let values = logits.to_data();
    let labels = targets.to_data();
    let (values, labels) = (values.as_slice::<f32>().ok()?, labels.as_slice::<i64>().ok()?);
    (values.len() == rows * classes && labels.len() == rows).then(|| count_correct(values, classes, labels))
}

/// How many rows of `values` (`classes` per row) have their largest value at the row's label.
/// The first maximum wins a tie, as Burn's `argmax` does.
pub fn count_correct(values: &[f32], classes: usize, labels: &[i64]) -> usize {
    values
        .chunks_exact(classes.max(1))
        .zip(labels)
        .filter(|(row, label)| {
            let mut best = 0;
            for (c, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = c;
                }
            }
            best as i64 == **label
        })
        .count()
}

impl ItemLazy for StepOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        // As Burn's `ClassificationOutput`: dispatch the buffered work, drop the autodiff graph.
        self.losses.device().flush()?;
        let correct = match self.correct {
            Correct::Lazy { logits, targets } => {
                Correct::Lazy { logits: logits.without_autodiff(), targets: targets.without_autodiff() }
            }
            counted => counted,
        };
        Ok(StepOutput { losses: self.losses.without_autodiff(), correct })
    }
}

impl Adaptor<LossInput> for StepOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.losses.clone())
    }
}

/// The [`AccuracyMetric`]'s input.
pub struct AccuracyInput {
    correct: Correct,
}

impl Adaptor<AccuracyInput> for StepOutput {
    fn adapt(&self) -> AccuracyInput {
        let correct = match &self.correct {
            Correct::Counted { correct, items } => Correct::Counted { correct: *correct, items: *items },
            Correct::Lazy { logits, targets } => Correct::Lazy { logits: logits.clone(), targets: targets.clone() },
        };
        AccuracyInput { correct }
    }
}

/// Accuracy in percent, named, formatted and logged as Burn's `AccuracyMetric` (so the metric
/// files and the dashboard read the same), from a [`StepOutput`].
#[derive(Clone)]
pub struct AccuracyMetric {
    name: MetricName,
    state: NumericMetricState,
}

impl Default for AccuracyMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl AccuracyMetric {
    pub fn new() -> Self {
        Self { name: Arc::new("Accuracy".to_string()), state: NumericMetricState::default() }
    }

    fn format(&self) -> FormatOptions {
        FormatOptions::new(self.name()).unit("%").precision(2)
    }
}

impl Metric for AccuracyMetric {
    type Input = AccuracyInput;

    fn update(&mut self, input: &AccuracyInput, _: &MetricMetadata) -> Result<SerializedEntry, TensorReadError> {
        let (correct, items) = match &input.correct {
            Correct::Counted { correct, items } => (*correct as f64, *items),
            Correct::Lazy { logits, targets } => {
                let [rows, _] = logits.dims();
                let predicted = logits.clone().argmax(1).reshape([rows]);
                (predicted.equal(targets.clone()).int().sum().try_into_scalar::<f64>()?, rows)
            }
        };
        if items > 0 {
            self.state.update(100.0 * correct / items as f64, items);
        }
        Ok(self.state.compute_update(self.format()))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self.state.compute_final(self.format()))
    }

    fn clear(&mut self) {
        self.state.reset()
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes { unit: Some("%".to_string()), higher_is_better: true }.into()
    }
}

impl Numeric for AccuracyMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(self.state.current_value())
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Some(self.state.running_value())
    }

    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn counts_rows_whose_largest_value_is_the_label_first_maximum_on_ties() {
        let values = [0.1, 0.9, 0.0, /* */ 2.0, 1.0, 3.0, /* */ 0.5, 0.5, 0.1, /* */ -1.0, -2.0, -0.5];
        assert_eq!(count_correct(&values, 3, &[1, 2, 0, 2]), 4);
        assert_eq!(count_correct(&values, 3, &[0, 2, 1, 0]), 1);
        assert_eq!(count_correct(&[], 3, &[]), 0);
    }

    fn both_ways(logits: Vec<f32>, rows: usize, labels: Vec<i64>) -> (f64, f64) {
        let device = crate::backend::cpu_device();
        let logits = Tensor::<2>::from_data(TensorData::new(logits, [rows, 10]), &device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [rows]), &device);
        let losses = Tensor::<1>::zeros([rows], &device);
        let progress = burn::data::dataloader::Progress { items_processed: rows, items_total: rows, unit: None };
        let meta = MetricMetadata { progress, iteration: Some(0), lr: None };
        let value = |host: bool| {
            let out = StepOutput::new(losses.clone(), logits.clone(), targets.clone(), host).sync().unwrap();
            let mut metric = AccuracyMetric::new();
            metric.update(&out.adapt(), &meta).unwrap();
            metric.value().unwrap().current()
        };
        (value(true), value(false))
    }

    #[test]
    fn the_host_count_and_the_lazy_tensor_count_give_the_same_accuracy() {
        let rows = 37;
        let logits: Vec<f32> = (0..rows * 10).map(|i| ((i * 7919) % 113) as f32 / 17.0).collect();
        let labels: Vec<i64> = (0..rows).map(|r| ((r * 3) % 10) as i64).collect();
        let expected = count_correct(&logits, 10, &labels) as f64 * 100.0 / rows as f64;
        let (host, lazy) = both_ways(logits, rows, labels);
        assert!(expected > 0.0 && expected < 100.0, "the case mixes right and wrong rows: {expected}");
        assert!((host - expected).abs() < 1e-9 && (lazy - expected).abs() < 1e-9, "{host} {lazy} {expected}");
    }
}
