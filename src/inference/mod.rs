//! Using a trained run: evaluation on the test set (`eval`) and predictions (`predict`).

mod eval;
mod picture;


use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

use crate::data::{NUM_CLASSES, PIXELS};
use crate::error::{Error, Result};
use crate::model::Mlp;

pub use eval::{ClassAccuracy, EvalReport, MISTAKES, Mistake, evaluate};
pub use picture::{BLANK_PIXELS, OBJECT as OBJECT_LEVEL, PreparedImage, prepare_gray, prepare_image, prepare_luma_alpha, read_picture};

/// A tensor's values on the host; `what` names them in the error.
fn host_values<const D: usize>(t: Tensor<D>, what: &str) -> Result<Vec<f32>> {
    t.try_into_vec_as::<f32>().map_err(|e| {
        Error::failure_with(format!("cannot read the {what} back from the device"), e).fix("retry, or pass --backend ndarray")
    })
}

/// Logits `[n, 10]` for images (row-major bytes), in chunks.
fn logits_for(model: &Mlp, images: &[u8], device: &Device) -> Result<Vec<f32>> {
    let n = images.len() / PIXELS;
    let mut out = Vec::with_capacity(n * NUM_CLASSES);
    for chunk in images.chunks(1000 * PIXELS) {
        let b = chunk.len() / PIXELS;
        let x: Vec<f32> = chunk.iter().map(|&p| p as f32 * (1.0 / 255.0)).collect();
        let x = Tensor::<2>::from_data(TensorData::new(x, [b, PIXELS]), device);
        out.extend(host_values(model.forward(x), "logits")?);
    }
    Ok(out)
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// One prediction: class probabilities and the best class.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub index: Option<usize>,
    pub true_label: Option<usize>,
    pub predicted: usize,
    pub confidence: f32,
    pub probs: Vec<f32>,
}

/// Softmax predictions for images (row-major 28x28 bytes each).
pub fn predict_images(model: &Mlp, images: &[u8], device: &Device) -> Result<Vec<Prediction>> {
    let logits = logits_for(model, images, device)?;
    let n = images.len() / PIXELS;
    let probs: Vec<f32> = if n == 0 {
        Vec::new()
    } else {
        let t = Tensor::<2>::from_data(TensorData::new(logits, [n, NUM_CLASSES]), device);
        host_values(softmax(t, 1), "probabilities")?
    };
    Ok(probs
        .chunks(NUM_CLASSES)
        .map(|p| {
            let best = argmax(p);
            Prediction {
                index: None,
                true_label: None,
                predicted: best,
                confidence: p[best],
                probs: p.to_vec(),
            }
        })
        .collect())
}

/// Pick `count` test indices: the first ones, or a random sample with `seed`.
pub fn pick_indices(n: usize, count: usize, seed: Option<u64>) -> Vec<usize> {
    let count = count.min(n);
    match seed {
        None => (0..count).collect(),
        Some(s) => {
            use rand::SeedableRng;
            let mut rng = rand::rngs::StdRng::seed_from_u64(s);
            rand::seq::index::sample(&mut rng, n, count).into_vec()
        }
    }
}

/// Indices of the top `k` probabilities, best first.
pub fn top_k(probs: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    idx.truncate(k);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_probability() {
        assert_eq!(top_k(&[0.1, 0.5, 0.2, 0.2], 3)[0], 1);
        assert_eq!(top_k(&[0.1, 0.5, 0.2, 0.2], 3).len(), 3);
    }

    #[test]
    fn pick_indices_first_or_seeded_sample() {
        assert_eq!(pick_indices(100, 3, None), vec![0, 1, 2]);
        let a = pick_indices(100, 5, Some(1));
        assert_eq!(a, pick_indices(100, 5, Some(1)));
        assert_eq!(a.len(), 5);
        assert_eq!(pick_indices(3, 10, None).len(), 3);
    }
}
