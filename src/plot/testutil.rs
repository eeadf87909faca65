//! Sample inputs and pixel counting shared by the plot tests.

use std::path::Path;

use plotters::style::RGBColor;

use super::{ActivationCurve, PredictionTile};
use crate::run::metrics::EpochRow;

/// Side of a Fashion-MNIST image.
const IMG: usize = 28;

pub fn rows(train_loss: &[f64], train_acc: &[f64], test_acc: &[f64]) -> Vec<EpochRow> {
    (0..train_loss.len())
        .map(|i| EpochRow {
            epoch: i + 1,
            train_loss: train_loss[i],
            train_acc: train_acc[i],
            test_loss: train_loss[i] * 1.05,
            test_acc: test_acc[i],
            seconds: 3.0,
        })
        .collect()
}

/// A realistic 10-epoch run of the book's MLP.
pub fn book_run() -> Vec<EpochRow> {
    rows(
        &[1.05, 0.60, 0.52, 0.48, 0.45, 0.43, 0.42, 0.41, 0.39, 0.385],
        &[0.64, 0.785, 0.81, 0.825, 0.835, 0.842, 0.848, 0.853, 0.86, 0.865],
        &[0.74, 0.77, 0.80, 0.81, 0.785, 0.825, 0.83, 0.838, 0.84, 0.845],
    )
}

/// A long run (237 epochs) with a NaN loss and a NaN accuracy in it.
pub fn long_run() -> Vec<EpochRow> {
    (1..=237)
        .map(|e| {
            let t = e as f64;
            EpochRow {
                epoch: e,
                train_loss: if e == 120 { f64::NAN } else { 0.3 + 1.0 / t.sqrt() },
                train_acc: 0.92 - 0.3 / t.sqrt(),
                test_loss: 0.5,
                test_acc: if e == 150 { f64::NAN } else { 0.89 - 0.25 / t.sqrt() },
                seconds: 1.0,
            }
        })
        .collect()
}

pub fn count(img: &image::RgbImage, pred: impl Fn(&image::Rgb<u8>) -> bool) -> usize {
    img.pixels().filter(|p| pred(p)).count()
}

pub fn count_colour(img: &image::RgbImage, c: RGBColor) -> usize {
    count(img, |p| p.0 == [c.0, c.1, c.2])
}

pub fn is_red(p: &image::Rgb<u8>) -> bool {
    p.0[0] > 150 && p.0[1] < 90 && p.0[2] < 90
}

pub fn open(p: &Path) -> image::RgbImage {
    image::open(p).expect("a decodable PNG").to_rgb8()
}

fn activation(name: &str, f: fn(f32) -> f32, g: fn(f32) -> f32) -> ActivationCurve {
    let xs: Vec<f32> = (0..=160).map(|i| -8.0 + i as f32 * 0.1).collect();
    ActivationCurve {
        name: name.into(),
        ys: xs.iter().map(|&x| f(x)).collect(),
        grads: xs.iter().map(|&x| g(x)).collect(),
        xs,
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

pub fn book_activations() -> Vec<ActivationCurve> {
    vec![
        activation("relu", |x| x.max(0.0), |x| if x > 0.0 { 1.0 } else { 0.0 }),
        activation("sigmoid", sigmoid, |x| sigmoid(x) * (1.0 - sigmoid(x))),
        activation("tanh", f32::tanh, |x| 1.0 - x.tanh() * x.tanh()),
    ]
}

/// A synthetic garment: a bright blob whose shape depends on the class.
pub fn tile(true_label: usize, predicted: usize) -> PredictionTile {
    let mut pixels = vec![0u8; IMG * IMG];
    for y in 0..IMG {
        for x in 0..IMG {
            let (dx, dy) = (x as i32 - 14, y as i32 - 14);
            let r = 4 + true_label as i32;
            if dx * dx + (dy * dy) / 2 < r * r && !(x + y + true_label).is_multiple_of(7) {
                pixels[y * IMG + x] = 120 + (x * 4) as u8;
            }
        }
    }
    PredictionTile { pixels, true_label, predicted, confidence: None }
}

pub fn prediction_grid() -> Vec<PredictionTile> {
    (0..16)
        .map(|i| {
            let t = i % 10;
            let p = match i {
                3 => 6,
                9 => 7,
                12 => 9,
                _ => t,
            };
            tile(t, p)
        })
        .collect()
}

/// Where sample pictures go: PLOT_SAMPLES_DIR when set (to look at them), else a temp folder.
pub fn samples_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("PLOT_SAMPLES_DIR").map_or_else(|| tmp.path().to_path_buf(), Into::into);
    std::fs::create_dir_all(&dir).unwrap();
    (tmp, dir)
}
