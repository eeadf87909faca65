//! What a training or test step hands Burn's metrics, and the accuracy metric that reads it.
//!
//! Burn's `ClassificationOutput` carries the logits, and its `AccuracyMetric` takes their argmax,
//! compares and sums with four tensor operations on the metrics thread every step. Where cores
//! are few, that thread runs beside the step's products and takes its time from them (figures:
//! docs/performance.md). Here the step hands over the count of right answers instead, a
//! one-value tensor, from the engine's `count_correct`: one pass over the logits where they lie
//! on the fast path, Burn's same tensor operations elsewhere, queued on the device without
//! waiting for it.

use std::sync::Arc;

use burn::tensor::{ExecutionError, Int, Tensor, TensorReadError};
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, ItemLazy, LossInput, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};

/// A step's output: the per-example losses and how many images it classified right.
pub struct StepOutput {
    /// `[batch]`, the cross-entropy of each image.
    pub losses: Tensor<1>,
    /// `[1]`, the number of images whose largest logit is their label.
    pub correct: Tensor<1, Int>,
}

impl StepOutput {
    /// `logits` `[batch, classes]` and `targets` `[batch]` give the count of right answers.
    pub fn new(losses: Tensor<1>, logits: Tensor<2>, targets: Tensor<1, Int>) -> Self {
        StepOutput { losses, correct: super::count_correct_tensor(logits, targets) }
    }
}

impl ItemLazy for StepOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        // As Burn's `ClassificationOutput`: dispatch the buffered work, drop the autodiff graph.
        self.losses.device().flush()?;
        Ok(StepOutput { losses: self.losses.without_autodiff(), correct: self.correct.without_autodiff() })
    }
}

impl Adaptor<LossInput> for StepOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.losses.clone())
    }
}

/// A step's right answers and how many images: the input of the [`AccuracyMetric`] and of the
/// accuracy summed on a GPU (`train::device_sums`).
pub struct AccuracyInput {
    pub(crate) correct: Tensor<1, Int>,
    pub(crate) items: usize,
}

impl Adaptor<AccuracyInput> for StepOutput {
    fn adapt(&self) -> AccuracyInput {
        AccuracyInput { correct: self.correct.clone(), items: self.losses.dims()[0] }
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
        let (correct, items) = (input.correct.clone().try_into_scalar::<f64>()?, input.items);
        if items > 0 {
            // As Burn: the fraction first, then percent (the last digit of the logs depends on it).
            self.state.update(100.0 * (correct / items as f64), items);
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
    fn the_metric_reads_the_step_count_as_burns_accuracy_would() {
        let device = crate::backend::cpu_device();
        // A test step's plain tensors, and a training step's autodiff ones.
        metric_matches_burn(&device);
        metric_matches_burn(&device.autodiff());
    }

    fn metric_matches_burn(device: &burn::tensor::Device) {
        let rows = 37;
        let values: Vec<f32> = (0..rows * 10).map(|i| ((i * 7919) % 113) as f32 / 17.0).collect();
        let labels: Vec<i64> = (0..rows).map(|r| ((r * 3) % 10) as i64).collect();
        let logits = Tensor::<2>::from_data(TensorData::new(values, [rows, 10]), device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [rows]), device);
        // Burn's own ops, as its `AccuracyMetric` computes it.
        let burn: f64 = logits.clone().argmax(1).reshape([rows]).equal(targets.clone()).int().sum().into_scalar::<f64>();
        assert!(burn > 0.0 && burn < rows as f64, "the case mixes right and wrong rows: {burn}");

        let out = StepOutput::new(Tensor::<1>::zeros([rows], device), logits, targets).sync().unwrap();
        let progress = burn::data::dataloader::Progress { items_processed: rows, items_total: rows, unit: None };
        let meta = MetricMetadata { progress, iteration: Some(0), lr: None };
        let mut metric = AccuracyMetric::new();
        metric.update(&out.adapt(), &meta).unwrap();
        let expected = 100.0 * burn / rows as f64;
        assert!((metric.value().unwrap().current() - expected).abs() < 1e-9);
    }
}
