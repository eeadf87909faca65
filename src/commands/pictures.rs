//! `predict --image PATH...`: the user's own pictures (files, or folders of them), a line each
//! with the top-3 classes, a warning where nothing stood out from the background; with --out a
//! PNG of each picture beside the 28x28 input the model was given, with --csv the table.

use std::path::{Path, PathBuf};

use super::Out;
use super::predict::{PredictArgs, csv_row, write_csv};
use crate::data::CLASS_NAMES;
use crate::error::{Error, Result};
use crate::inference::{self, BLANK_PIXELS, OBJECT_LEVEL, Prediction, PreparedImage};
use crate::plot::{self, MAX_PICTURES, PictureRow};

/// A picture read and converted, with its thumbnail for the grid when one is drawn.
struct Picture {
    path: PathBuf,
    prepared: PreparedImage,
    fitted: Option<image::RgbaImage>,
    size: (u32, u32),
}

pub fn predict_pictures(o: &PredictArgs, out: Out) -> Result<Vec<Prediction>> {
    if o.seed.is_some() {
        return Err(Error::input("--seed picks random test images; with --image the pictures are taken in the order given (a folder's by name): drop --seed, or use --count N for the first N"));
    }
    let mut paths = expand(&o.images)?;
    match o.count {
        Some(0) => return Err(Error::input("--count 0: pass at least 1 (with --image: how many of the pictures, from the first)")),
        Some(n) => paths.truncate(n),
        None => {}
    }
    if o.png.is_some() && paths.len() > MAX_PICTURES {
        return Err(Error::input(format!(
            "--out: the picture grid holds at most {MAX_PICTURES} pictures and {} were given; pass --count {MAX_PICTURES} (the first ones), or drop --out for the table alone",
            paths.len()
        )));
    }
    // Read every picture before any model work, so a bad file fails fast.
    let pictures = paths.into_iter().map(|p| read(p, o.png.is_some())).collect::<Result<Vec<_>>>()?;
    let device = o.model.backend.open(out)?.device;
    let (model, cfg, model_path) = o.model.run.dir().load_model(o.model.checkpoint, &device)?;
    out(format!("model: {}", model_path.display()));
    let pixels: Vec<u8> = pictures.iter().flat_map(|p| p.prepared.pixels.clone()).collect();
    let preds = inference::predict_images(&model, &pixels, &device)?;
    for (p, pred) in pictures.iter().zip(&preds) {
        out(format!("{}{}: {}", p.path.display(), p.prepared.notes(), top3(pred).join(", ")));
        if p.prepared.is_blank() {
            out(format!("warning: {}: {}", p.path.display(), blank_warning()));
        }
    }
    if let Some(csv) = &o.csv {
        write_csv(csv, &table(&pictures, &preds), out)?;
    }
    if let Some(png) = &o.png {
        let header = format!("model: {} ({})", model_path.display(), cfg.describe_model());
        let (w, h) = plot::draw_pictures(&header, &rows(pictures, &preds), png)?;
        out(format!("wrote {png} ({w}x{h}: each picture, the 28x28 input the model was given, its top-3 classes)", png = png.display()));
    }
    Ok(preds)
}

/// What a blank picture's warning says: the criterion, and what follows from it.
fn blank_warning() -> String {
    format!(
        "nothing stands out from the background (fewer than {BLANK_PIXELS} of the model input's 784 pixels are above {OBJECT_LEVEL} of 255 once the background is black); the classes are a guess on an empty input"
    )
}

/// Files as given; a folder stands for its PNG and JPEG files, sorted by name.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    for p in paths {
        if !p.is_dir() {
            all.push(p.clone());
            continue;
        }
        let entries = std::fs::read_dir(p).map_err(|e| Error::io("cannot list", p, e))?;
        let mut found: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|f| f.is_file() && is_picture(f)).collect();
        if found.is_empty() {
            return Err(Error::input(format!(
                "{}: no PNG or JPEG files in this folder (*.png, *.jpg, *.jpeg); pass a folder of pictures, or the files themselves",
                p.display()
            )));
        }
        found.sort();
        all.extend(found);
    }
    Ok(all)
}

fn is_picture(f: &Path) -> bool {
    let hidden = f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
    let ext = f.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    !hidden && matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg"))
}

fn read(path: PathBuf, thumbnail: bool) -> Result<Picture> {
    let (img, prepared) = inference::read_picture(&path)?;
    let size = (img.width(), img.height());
    let fitted = thumbnail.then(|| plot::fit_picture(&img));
    Ok(Picture { path, prepared, fitted, size })
}

fn top3(pred: &Prediction) -> Vec<String> {
    inference::top_k(&pred.probs, 3).into_iter().map(|c| format!("{} {:.3}", CLASS_NAMES[c], pred.probs[c])).collect()
}

/// The CSV: a row per picture with its top-3 classes, whether it looked blank, and what the
/// conversion did.
fn table(pictures: &[Picture], preds: &[Prediction]) -> Vec<String> {
    let mut lines = vec![csv_row(["file", "top1", "prob1", "top2", "prob2", "top3", "prob3", "blank", "notes"])];
    for (p, pred) in pictures.iter().zip(preds) {
        let mut fields = vec![p.path.display().to_string()];
        for c in inference::top_k(&pred.probs, 3) {
            fields.extend([CLASS_NAMES[c].to_string(), format!("{:.6}", pred.probs[c])]);
        }
        let notes = p.prepared.notes();
        fields.push(p.prepared.is_blank().to_string());
        fields.push(notes.trim().trim_start_matches('(').trim_end_matches(')').to_string());
        lines.push(csv_row(fields.iter().map(String::as_str)));
    }
    lines
}

fn rows(pictures: Vec<Picture>, preds: &[Prediction]) -> Vec<PictureRow> {
    pictures
        .into_iter()
        .zip(preds)
        .map(|(p, pred)| PictureRow {
            name: p.path.display().to_string(),
            warning: p.prepared.is_blank().then(|| "nothing stands out from the background: the classes are a guess".to_string()),
            picture: p.fitted.unwrap_or_default(),
            size: p.size,
            input: p.prepared.pixels,
            top: inference::top_k(&pred.probs, 3).into_iter().map(|c| (c, pred.probs[c])).collect(),
        })
        .collect()
}
