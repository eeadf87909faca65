//! `predict`: test images (a table and a PNG grid), or the user's own pictures (top-3, and with
//! --out a PNG of each picture beside the 28x28 input the model was given).

use std::path::{Path, PathBuf};

use super::{DataArgs, ModelArgs, Out};
use crate::data::CLASS_NAMES;
use crate::error::{Error, Result};
use crate::inference::{self, Prediction};
use crate::model::Mlp;
use crate::plot::{self, MAX_PREDICTION_TILES, PredictionTile};
use crate::run::PREDICTIONS_FILE;

/// Test images shown when --count is not given.
const DEFAULT_COUNT: usize = 16;

#[derive(clap::Args, Debug, Clone)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Number of test images (at most 512; default 16). With --image: only the first N pictures.
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Pick random test images with this seed (default: the first ones).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to write the PNG grid (default: predictions.png in the run folder; with
    /// --checkpoint N, predictions-epoch-00N.png). With --image: each picture beside the 28x28
    /// input the model was given and its top-3 classes (no default: written only when given).
    #[arg(long = "out", value_name = "FILE.png")]
    pub png: Option<PathBuf>,
    /// Also write the table as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Classify these PNG/JPEG pictures instead (any size, colour or grayscale; a folder: every
    /// PNG/JPEG in it, by name): top-3 classes.
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
    if let Some(p) = &o.csv {
        super::check_out("--csv", p)?;
    }
    run_dir.load_config()?;
    if !o.images.is_empty() {
        return super::pictures::predict_pictures(o, out);
    }
    let count = o.count.unwrap_or(DEFAULT_COUNT);
    if !(1..=MAX_PREDICTION_TILES).contains(&count) {
        return Err(Error::input(format!(
            "--count {count}: pass a number from 1 to {MAX_PREDICTION_TILES} (the picture holds at most {MAX_PREDICTION_TILES} images)"
        )));
    }
    // Only the grid of test images writes into the run folder (by default).
    let _lock = if o.png.is_none() { Some(run_dir.lock()?) } else { None };
    let device = backend.open(out)?.device;
    let (model, _cfg, path) = run_dir.load_model(o.model.checkpoint, &device)?;
    out(format!("model: {}", path.display()));
    // A checkpoint's grid goes beside the final model's, never over it.
    let png = o.png.clone().unwrap_or_else(|| run_dir.output(PREDICTIONS_FILE, o.model.checkpoint));
    let preds = test_images(&model, o, count, &png, data, &device, out)?;
    if o.png.is_none() {
        super::refresh_report(&run_dir, out);
    }
    Ok(preds)
}

fn test_images(model: &Mlp, o: &PredictArgs, count: usize, png: &Path, data: &DataArgs, device: &burn::tensor::Device, out: Out) -> Result<Vec<Prediction>> {
    plot::check_png_path(png)?;
    let test = data.load(crate::data::Need::TestOnly, out)?.test;
    if count > test.len() {
        return Err(Error::input(format!("--count {count}: the test set has only {} images; pass at most that", test.len())));
    }
    let idx = inference::pick_indices(test.len(), count, o.seed);
    let pixels: Vec<u8> = idx.iter().flat_map(|&i| test.image(i).to_vec()).collect();
    let mut preds = inference::predict_images(model, &pixels, device)?;
    out(format!("{:>6}  {:<12} {:<12} {:>10}", "index", "true", "predicted", "confidence"));
    let mut tiles = Vec::new();
    let mut csv = vec![csv_row(["index", "true", "predicted", "confidence", "correct"])];
    for (pred, &i) in preds.iter_mut().zip(&idx) {
        let t = test.labels[i] as usize;
        pred.index = Some(i);
        pred.true_label = Some(t);
        let mark = if t == pred.predicted { "" } else { "  wrong" };
        out(format!("{i:>6}  {:<12} {:<12} {:>10.4}{mark}", CLASS_NAMES[t], CLASS_NAMES[pred.predicted], pred.confidence));
        let conf = format!("{:.6}", pred.confidence);
        let (index, correct) = (i.to_string(), if mark.is_empty() { "true" } else { "false" });
        csv.push(csv_row([index.as_str(), CLASS_NAMES[t], CLASS_NAMES[pred.predicted], conf.as_str(), correct]));
        tiles.push(PredictionTile { pixels: test.image(i).to_vec(), true_label: t, predicted: pred.predicted, confidence: None });
    }
    let correct = preds.iter().filter(|p| p.true_label == Some(p.predicted)).count();
    out(format!("{correct}/{} correct", preds.len()));
    if let Some(path) = &o.csv {
        write_csv(path, &csv, out)?;
    }
    let (w, h) = plot::draw_predictions(&tiles, png)?;
    out(format!("wrote {} ({w}x{h})", png.display()));
    Ok(preds)
}

/// One CSV line: fields with a comma, a quote or a line break quoted (RFC 4180).
pub(super) fn csv_row<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = fields
        .into_iter()
        .map(|f| match f.contains([',', '"', '\n', '\r']) {
            true => format!("\"{}\"", f.replace('"', "\"\"")),
            false => f.to_string(),
        })
        .collect();
    quoted.join(",")
}

/// Write the lines atomically and say so.
pub(super) fn write_csv(path: &Path, lines: &[String], out: Out) -> Result<()> {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    crate::fsutil::atomic_write(path, text.as_bytes()).map_err(|e| Error::io("cannot write", path, e))?;
    out(format!("wrote {} ({} row(s))", path.display(), lines.len().saturating_sub(1)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_row(["a.png", "Bag", "0.5"]), "a.png,Bag,0.5");
        assert_eq!(csv_row(["a,b.png", "say \"hi\"", "x\ny"]), "\"a,b.png\",\"say \"\"hi\"\"\",\"x\ny\"");
    }
}
