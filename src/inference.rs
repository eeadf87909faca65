//! Using a trained run: evaluation on the test set (`eval`) and predictions (`predict`).

use std::path::{Path, PathBuf};

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

use crate::checkpoint;
use crate::config::TrainConfig;
use crate::data::{CLASS_NAMES, NUM_CLASSES, PIXELS, SIDE, Split};
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::model::{Mlp, cross_entropy_per_example};
use crate::training::{MODEL_FILE, load_run_config};

/// Load a run's model: `model.bpk`, or the checkpoint of `epoch`.
pub fn load_run_model(run: &Path, epoch: Option<usize>, device: &Device) -> Result<(Mlp, TrainConfig, PathBuf)> {
    let cfg = load_run_config(run)?;
    let path = match epoch {
        None => run.join(MODEL_FILE),
        Some(e) => checkpoint::file_for(run, checkpoint::MODEL, e),
    };
    if !path.exists() {
        let available = checkpoint::epochs_on_disk(run);
        let hint = match epoch {
            None => format!(
                "the run has no final model yet; finish it with `train --resume --artifacts {}` or pass --checkpoint EPOCH",
                run.display()
            ),
            Some(_) if available.is_empty() => "the run has no checkpoints".to_string(),
            Some(_) => format!("available checkpoints: {:?}", available),
        };
        return Err(Error::input(format!("{}: not found; {hint}", path.display())));
    }
    let model = checkpoint::load_model_file(&path, &cfg, device)?;
    Ok((model, cfg, path))
}

/// Logits `[n, 10]` for images (row-major bytes), in chunks.
fn logits_for(model: &Mlp, images: &[u8], device: &Device) -> Vec<f32> {
    let n = images.len() / PIXELS;
    let mut out = Vec::with_capacity(n * NUM_CLASSES);
    for chunk in images.chunks(1000 * PIXELS) {
        let b = chunk.len() / PIXELS;
        let x: Vec<f32> = chunk.iter().map(|&p| p as f32 * (1.0 / 255.0)).collect();
        let x = Tensor::<2>::from_data(TensorData::new(x, [b, PIXELS]), device);
        let logits = model.forward(x);
        out.extend(logits.into_data().try_to_vec::<f32>().unwrap_or_default());
    }
    out
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

#[derive(Debug, Clone, Serialize)]
pub struct ClassAccuracy {
    pub class: usize,
    pub name: &'static str,
    pub correct: u64,
    pub total: u64,
    pub accuracy: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub samples: u64,
    pub loss: f64,
    pub accuracy: f64,
    pub per_class: Vec<ClassAccuracy>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
}

/// Evaluate `model` on a split.
pub fn evaluate(model: &Mlp, split: &Split, device: &Device, label: &str) -> EvalReport {
    let mut confusion = vec![vec![0u64; NUM_CLASSES]; NUM_CLASSES];
    let mut loss_sum = 0.0f64;
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(1000) {
        let batch = crate::data::make_batch(split, chunk, device);
        let labels: Vec<u8> = chunk.iter().map(|&i| split.labels[i]).collect();
        let (x, t) = (batch.images, batch.targets);
        let logits = model.forward(x);
        let losses: Vec<f32> = cross_entropy_per_example(logits.clone(), t).into_data().try_to_vec::<f32>().unwrap_or_default();
        loss_sum += losses.iter().map(|&l| l as f64).sum::<f64>();
        let logits: Vec<f32> = logits.into_data().try_to_vec::<f32>().unwrap_or_default();
        for (row, &l) in logits.chunks(NUM_CLASSES).zip(&labels) {
            confusion[l as usize][argmax(row)] += 1;
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
    EvalReport {
        model: label.to_string(),
        samples: n,
        loss: loss_sum / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        per_class,
        confusion,
    }
}

impl EvalReport {
    /// Human-readable report: totals, per-class accuracy, confusion matrix.
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
        s
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::failure(format!("cannot encode eval.json: {e}")))?;
        atomic_write(path, json.as_bytes()).map_err(|e| Error::io("cannot write", path, e))
    }
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
pub fn predict_images(model: &Mlp, images: &[u8], device: &Device) -> Vec<Prediction> {
    let logits = logits_for(model, images, device);
    let n = images.len() / PIXELS;
    let probs: Vec<f32> = if n == 0 {
        Vec::new()
    } else {
        let t = Tensor::<2>::from_data(TensorData::new(logits, [n, NUM_CLASSES]), device);
        softmax(t, 1).into_data().try_to_vec::<f32>().unwrap_or_default()
    };
    probs
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
        .collect()
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

/// An outside picture converted the way Fashion-MNIST was made: grayscale, light garment on a
/// dark background (inverted when the background is light), cropped to the object, the longest
/// side scaled to 28 and centred on a 28x28 canvas.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    pub pixels: Vec<u8>,
    pub inverted: bool,
}

pub fn prepare_image(path: &Path) -> Result<PreparedImage> {
    if path.is_dir() {
        return Err(Error::input(format!("{}: is a folder; pass PNG or JPEG files to --image", path.display())));
    }
    let img = image::ImageReader::open(path)
        .map_err(|e| Error::input(format!("{}: cannot open ({e})", path.display())))?
        .with_guessed_format()
        .map_err(|e| Error::input(format!("{}: cannot read ({e})", path.display())))?
        .decode()
        .map_err(|e| {
            Error::input(format!(
                "{}: not a readable PNG or JPEG image ({}); pass a PNG or JPEG file",
                path.display(),
                e.to_string().lines().next().unwrap_or("")
            ))
        })?;
    Ok(prepare_gray(&img.to_luma8()))
}

/// The conversion of [`prepare_image`] on a decoded grayscale image.
pub fn prepare_gray(gray: &image::GrayImage) -> PreparedImage {
    let (w, h) = gray.dimensions();
    let mut border = Vec::new();
    for x in 0..w {
        border.push(gray.get_pixel(x, 0)[0] as f64);
        border.push(gray.get_pixel(x, h - 1)[0] as f64);
    }
    for y in 0..h {
        border.push(gray.get_pixel(0, y)[0] as f64);
        border.push(gray.get_pixel(w - 1, y)[0] as f64);
    }
    let bg = border.iter().sum::<f64>() / border.len().max(1) as f64;
    let inverted = bg > 127.0;
    let mut g = gray.clone();
    if inverted {
        image::imageops::invert(&mut g);
    }
    let bg = if inverted { 255.0 - bg } else { bg };
    // The object: pixels clearly brighter than the background.
    let thr = (bg + 30.0).min(250.0) as u8;
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (x, y, p) in g.enumerate_pixels() {
        if p[0] > thr {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    let cropped = if x1 >= x0 && y1 >= y0 && x0 < w {
        image::imageops::crop_imm(&g, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image()
    } else {
        g
    };
    let (cw, ch) = cropped.dimensions();
    let scale = SIDE as f64 / cw.max(ch) as f64;
    let nw = ((cw as f64 * scale).round() as u32).clamp(1, SIDE as u32);
    let nh = ((ch as f64 * scale).round() as u32).clamp(1, SIDE as u32);
    let resized = image::imageops::resize(&cropped, nw, nh, image::imageops::FilterType::Lanczos3);
    let mut canvas = image::GrayImage::new(SIDE as u32, SIDE as u32);
    let ox = (SIDE as u32 - nw) / 2;
    let oy = (SIDE as u32 - nh) / 2;
    image::imageops::overlay(&mut canvas, &resized, ox as i64, oy as i64);
    PreparedImage {
        pixels: canvas.into_raw(),
        inverted,
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
    fn light_background_is_inverted_and_the_object_centred() {
        // A dark 20x10 bar on a white 100x60 picture.
        let mut img = image::GrayImage::from_pixel(100, 60, image::Luma([250]));
        for y in 20..30 {
            for x in 10..30 {
                img.put_pixel(x, y, image::Luma([10]));
            }
        }
        let p = prepare_gray(&img);
        assert!(p.inverted);
        assert_eq!(p.pixels.len(), PIXELS);
        // The bar now spans the full width and is bright; the corners are dark.
        assert!(p.pixels[14 * SIDE + 14] > 200);
        assert!(p.pixels[0] < 30);
        let dark = prepare_gray(&image::GrayImage::from_pixel(10, 10, image::Luma([0])));
        assert!(!dark.inverted);
    }

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
