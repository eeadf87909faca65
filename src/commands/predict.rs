//! `predict`: test images (a table and a PNG grid), or the user's own pictures (top-3).

use std::path::PathBuf;

use super::{DataArgs, ModelArgs, Out};
use crate::data::CLASS_NAMES;
use crate::error::{Error, Result};
use crate::inference::{self, Prediction, PreparedImage};
use crate::model::Mlp;
use crate::plot::{self, MAX_PREDICTION_TILES, PredictionTile};
use crate::run::PREDICTIONS_FILE;

#[derive(clap::Args, Debug, Clone)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Number of test images (at most 512).
    #[arg(long, default_value_t = 16)]
    pub count: usize,
    /// Pick random test images with this seed (default: the first ones).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to write the PNG grid (default: predictions.png in the run folder; with
    /// --checkpoint N, predictions-epoch-00N.png).
    #[arg(long = "out", value_name = "FILE.png")]
    pub png: Option<PathBuf>,
    /// Classify these PNG/JPEG pictures instead (any size, colour or grayscale): top-3 classes.
    #[arg(long = "image", value_name = "PATH", num_args = 1..)]
    pub images: Vec<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn predict(o: &PredictArgs, out: Out) -> Result<Vec<Prediction>> {
    let (data, backend) = (&o.data, &o.model.backend);
    let run_dir = o.model.run.dir();
    if let Some(p) = &o.png {
        super::check_out("--out", p)?;
        plot::check_png_path(p)?;
    }
    run_dir.load_config()?;
    if o.images.is_empty() && !(1..=MAX_PREDICTION_TILES).contains(&o.count) {
        return Err(Error::input(format!(
            "--count {}: pass a number from 1 to {MAX_PREDICTION_TILES} (the picture holds at most {MAX_PREDICTION_TILES} images)",
            o.count
        )));
    }
    // Check the pictures before any model work, so a bad file fails fast.
    let prepared = o
        .images
        .iter()
        .map(|p| inference::prepare_image(p).map(|i| (p.clone(), i)))
        .collect::<Result<Vec<_>>>()?;
    // Only the grid of test images writes into the run folder (by default).
    let _lock = if prepared.is_empty() && o.png.is_none() { Some(run_dir.lock()?) } else { None };
    let device = backend.open(out)?.device;
    let (model, _cfg, path) = run_dir.load_model(o.model.checkpoint, &device)?;
    out(format!("model: {}", path.display()));
    if !prepared.is_empty() {
        return pictures(&model, &prepared, &device, out);
    }
    // A checkpoint's grid goes beside the final model's, never over it.
    let png = o.png.clone().unwrap_or_else(|| run_dir.output(PREDICTIONS_FILE, o.model.checkpoint));
    let preds = test_images(&model, o, &png, data, &device, out)?;
    if o.png.is_none() {
        super::refresh_report(&run_dir, out);
    }
    Ok(preds)
}

fn pictures(model: &Mlp, prepared: &[(PathBuf, PreparedImage)], device: &burn::tensor::Device, out: Out) -> Result<Vec<Prediction>> {
    let pixels: Vec<u8> = prepared.iter().flat_map(|(_, i)| i.pixels.clone()).collect();
    let preds = inference::predict_images(model, &pixels, device)?;
    for ((p, img), pred) in prepared.iter().zip(&preds) {
        let top: Vec<String> = inference::top_k(&pred.probs, 3)
            .into_iter()
            .map(|c| format!("{} {:.3}", CLASS_NAMES[c], pred.probs[c]))
            .collect();
        out(format!("{}{}: {}", p.display(), img.notes(), top.join(", ")));
    }
    Ok(preds)
}

fn test_images(model: &Mlp, o: &PredictArgs, png: &std::path::Path, data: &DataArgs, device: &burn::tensor::Device, out: Out) -> Result<Vec<Prediction>> {
    plot::check_png_path(png)?;
    let test = data.load(crate::data::Need::TestOnly, out)?.test;
    if o.count > test.len() {
        return Err(Error::input(format!("--count {}: the test set has only {} images; pass at most that", o.count, test.len())));
    }
    let idx = inference::pick_indices(test.len(), o.count, o.seed);
    let pixels: Vec<u8> = idx.iter().flat_map(|&i| test.image(i).to_vec()).collect();
    let mut preds = inference::predict_images(model, &pixels, device)?;
    out(format!("{:>6}  {:<12} {:<12} {:>10}", "index", "true", "predicted", "confidence"));
    let mut tiles = Vec::new();
    for (pred, &i) in preds.iter_mut().zip(&idx) {
        let t = test.labels[i] as usize;
        pred.index = Some(i);
        pred.true_label = Some(t);
        let mark = if t == pred.predicted { "" } else { "  wrong" };
        out(format!("{i:>6}  {:<12} {:<12} {:>10.4}{mark}", CLASS_NAMES[t], CLASS_NAMES[pred.predicted], pred.confidence));
        tiles.push(PredictionTile { pixels: test.image(i).to_vec(), true_label: t, predicted: pred.predicted, confidence: None });
    }
    let correct = preds.iter().filter(|p| p.true_label == Some(p.predicted)).count();
    out(format!("{correct}/{} correct", preds.len()));
    let (w, h) = plot::draw_predictions(&tiles, png)?;
    out(format!("wrote {} ({w}x{h})", png.display()));
    Ok(preds)
}
