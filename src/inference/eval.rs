//! `eval`: loss, accuracy, per-class accuracy, confusion matrix and the most confident mistakes.

use std::path::Path;

use burn::tensor::Device;
use burn::tensor::activation::softmax;
use serde::Serialize;

use super::{argmax, host_values};
use crate::data::{CLASS_NAMES, NUM_CLASSES, Split};
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::model::{Mlp, cross_entropy_per_example};

/// How many of the most confident wrong predictions a report keeps.
pub const MISTAKES: usize = 16;

#[derive(Debug, Clone, Serialize)]
pub struct ClassAccuracy {
    pub class: usize,
    pub name: &'static str,
    pub correct: u64,
    pub total: u64,
    pub accuracy: f64,
}

/// A wrong prediction: the test image `index`, its label, the class predicted and its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mistake {
    pub index: usize,
    pub true_label: usize,
    pub predicted: usize,
    pub confidence: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub model: String,
    /// The checkpoint's epoch when one was evaluated (`eval --checkpoint`); absent for the final model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<usize>,
    pub samples: u64,
    pub loss: f64,
    pub accuracy: f64,
    pub per_class: Vec<ClassAccuracy>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    /// The [`MISTAKES`] most confident wrong predictions, most confident first.
    pub mistakes: Vec<Mistake>,
}

/// The `k` most confident of `mistakes`, most confident first (ties: lower index first).
fn most_confident(mut mistakes: Vec<Mistake>, k: usize) -> Vec<Mistake> {
    mistakes.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then(a.index.cmp(&b.index)));
    mistakes.truncate(k);
    mistakes
}

/// Evaluate `model` on a split.
pub fn evaluate(model: &Mlp, split: &Split, device: &Device, label: &str) -> Result<EvalReport> {
    let mut confusion = vec![vec![0u64; NUM_CLASSES]; NUM_CLASSES];
    let mut loss_sum = 0.0f64;
    let mut mistakes = Vec::new();
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(1000) {
        let batch = crate::data::make_batch(split, chunk, device);
        let logits = model.forward(batch.images);
        let losses = host_values(cross_entropy_per_example(logits.clone(), batch.targets), "test losses")?;
        loss_sum += losses.iter().map(|&l| l as f64).sum::<f64>();
        let probs = host_values(softmax(logits, 1), "test probabilities")?;
        for (&index, row) in chunk.iter().zip(probs.chunks(NUM_CLASSES)) {
            let (true_label, predicted) = (split.labels[index] as usize, argmax(row));
            confusion[true_label][predicted] += 1;
            if predicted != true_label {
                mistakes.push(Mistake { index, true_label, predicted, confidence: row[predicted] });
            }
        }
    }
    let n = split.len() as u64;
    let correct: u64 = (0..NUM_CLASSES).map(|c| confusion[c][c]).sum();
    let per_class = (0..NUM_CLASSES)
        .map(|c| {
            let total: u64 = confusion[c].iter().sum();
            ClassAccuracy {
                class: c,
                name: CLASS_NAMES[c],
                correct: confusion[c][c],
                total,
                accuracy: if total == 0 { 0.0 } else { confusion[c][c] as f64 / total as f64 },
            }
        })
        .collect();
    Ok(EvalReport {
        model: label.to_string(),
        checkpoint: None,
        samples: n,
        loss: loss_sum / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        per_class,
        confusion,
        mistakes: most_confident(mistakes, MISTAKES),
    })
}

impl EvalReport {
    /// Human-readable report: totals, per-class accuracy, confusion matrix, confident mistakes.
    pub fn render(&self) -> String {
        let mut s = format!(
            "test loss {:.4} accuracy {:.4} ({} images, model {})\n\nper-class accuracy:\n",
            self.loss, self.accuracy, self.samples, self.model
        );
        for c in &self.per_class {
            s.push_str(&format!("  {:>d$} {:<12} {:.4}  ({}/{})\n", c.class, c.name, c.accuracy, c.correct, c.total, d = 1));
        }
        s.push_str("\nconfusion matrix (rows = true class, columns = predicted):\n");
        s.push_str(&format!("{:>14}", ""));
        for c in 0..NUM_CLASSES {
            s.push_str(&format!("{c:>6}"));
        }
        s.push('\n');
        for (t, row) in self.confusion.iter().enumerate() {
            s.push_str(&format!("{:>2} {:<11}", t, CLASS_NAMES[t]));
            for v in row {
                s.push_str(&format!("{v:>6}"));
            }
            s.push('\n');
        }
        if !self.mistakes.is_empty() {
            s.push_str("\nmost confident mistakes:\n");
            for m in &self.mistakes {
                let (t, p) = (CLASS_NAMES[m.true_label], CLASS_NAMES[m.predicted]);
                s.push_str(&format!("  image {:>5}: {t} taken for {p} ({:.4})\n", m.index, m.confidence));
            }
        }
        s
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::failure_with("cannot encode eval.json", e))?;
        atomic_write(path, json.as_bytes()).map_err(|e| Error::io("cannot write", path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(index: usize, confidence: f32) -> Mistake {
        Mistake { index, true_label: 0, predicted: 1, confidence }
    }

    #[test]
    fn keeps_the_most_confident_mistakes_first() {
        let all = vec![m(3, 0.5), m(7, 0.9), m(1, 0.7), m(9, 0.9), m(4, 0.2)];
        let top = most_confident(all.clone(), 3);
        assert_eq!(top, vec![m(7, 0.9), m(9, 0.9), m(1, 0.7)]);
        assert_eq!(most_confident(all, 16).len(), 5);
        assert!(most_confident(Vec::new(), 16).is_empty());
    }

    #[test]
    fn evaluate_lists_wrong_predictions_by_confidence() {
        let device = crate::backend::cpu_device();
        let cfg = crate::config::TrainConfig { hidden: vec![8], ..Default::default() };
        let model = Mlp::new(&cfg, &device);
        let split = crate::data::synthetic(300, 5);
        let r = evaluate(&model, &split, &device, "test").unwrap();
        let wrong = r.samples - r.per_class.iter().map(|c| c.correct).sum::<u64>();
        assert_eq!(r.mistakes.len() as u64, wrong.min(MISTAKES as u64));
        assert!(r.mistakes.windows(2).all(|w| w[0].confidence >= w[1].confidence));
        for x in &r.mistakes {
            assert_eq!(x.true_label, split.labels[x.index] as usize);
            assert_ne!(x.predicted, x.true_label);
            // The same probability `predict` reports for that image.
            let p = &crate::inference::predict_images(&model, split.image(x.index), &device).unwrap()[0];
            assert_eq!(p.predicted, x.predicted);
            assert!((p.confidence - x.confidence).abs() < 1e-5, "{} vs {}", p.confidence, x.confidence);
        }
        assert!(r.render().contains("most confident mistakes"));
    }
}
