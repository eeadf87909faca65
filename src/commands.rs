//! The subcommands besides `train`: each takes parsed options and prints its result.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

use crate::backend::{self, BackendKind};
use crate::config::{Activation, TrainConfig};
use crate::data::{self, CLASS_NAMES};
use crate::error::{Error, Result};
use crate::inference::{self, EvalReport};
use crate::model::apply_activation;
use crate::plot::{self, ActivationCurve, PredictionTile};
use crate::training::{self, CONFIG_FILE, DataOptions, MODEL_FILE, METRICS_FILE};

fn device_for(requested: Option<BackendKind>, out: &mut dyn FnMut(String)) -> Result<Device> {
    let kind = backend::resolve(requested)?;
    let selected = backend::select(kind)?;
    out(selected.description.clone());
    Ok(selected.device)
}

/// `eval`: test loss and accuracy, per-class accuracy, confusion matrix; writes `eval.json`.
pub fn eval(run: &Path, epoch: Option<usize>, data: &DataOptions, be: Option<BackendKind>, out: &mut dyn FnMut(String)) -> Result<EvalReport> {
    let _ = training::load_run_config(run)?;
    let device = device_for(be, out)?;
    let (model, _cfg, path) = inference::load_run_model(run, epoch, &device)?;
    let test = load_test(data, out)?;
    let report = inference::evaluate(&model, &test, &device, &path.display().to_string());
    out(report.render());
    let json = run.join("eval.json");
    report.save(&json)?;
    out(format!("wrote {}", json.display()));
    Ok(report)
}

fn load_test(data: &DataOptions, out: &mut dyn FnMut(String)) -> Result<data::Split> {
    let dir = match data::locate(data.data_dir.as_deref())? {
        Some(s) => s.dir().to_path_buf(),
        None => {
            return Err(Error::data(
                data::SYSTEM_DIR,
                "Fashion-MNIST not found; pass --data-dir, run `train` once to download it, or apt-get install dataset-fashion-mnist",
            ));
        }
    };
    let test = data::load_test(&dir, !data.skip_checksum)?;
    out(format!("data: {} ({} test images)", dir.display(), test.len()));
    Ok(test)
}

/// Options of `predict`.
#[derive(Debug, Clone)]
pub struct PredictOptions {
    pub run: PathBuf,
    pub count: usize,
    pub seed: Option<u64>,
    pub out_png: Option<PathBuf>,
    pub images: Vec<PathBuf>,
    pub checkpoint: Option<usize>,
    pub data: DataOptions,
    pub backend: Option<BackendKind>,
}

/// `predict`: test images (table + PNG grid) or the user's own pictures (top-3).
pub fn predict(o: &PredictOptions, out: &mut dyn FnMut(String)) -> Result<Vec<inference::Prediction>> {
    let _ = training::load_run_config(&o.run)?;
    if o.images.is_empty() && o.count == 0 {
        return Err(Error::input("--count must be at least 1"));
    }
    // Check the pictures before any model work, so a bad file fails fast.
    let prepared = o
        .images
        .iter()
        .map(|p| inference::prepare_image(p).map(|i| (p.clone(), i)))
        .collect::<Result<Vec<_>>>()?;
    let device = device_for(o.backend, out)?;
    let (model, _cfg, path) = inference::load_run_model(&o.run, o.checkpoint, &device)?;
    out(format!("model: {}", path.display()));

    if !prepared.is_empty() {
        let pixels: Vec<u8> = prepared.iter().flat_map(|(_, i)| i.pixels.clone()).collect();
        let preds = inference::predict_images(&model, &pixels, &device);
        for ((p, img), pred) in prepared.iter().zip(&preds) {
            let top: Vec<String> = inference::top_k(&pred.probs, 3)
                .into_iter()
                .map(|c| format!("{} {:.3}", CLASS_NAMES[c], pred.probs[c]))
                .collect();
            let note = if img.inverted { " (light background: inverted)" } else { "" };
            out(format!("{}{note}: {}", p.display(), top.join(", ")));
        }
        return Ok(preds);
    }

    let test = load_test(&o.data, out)?;
    let idx = inference::pick_indices(test.len(), o.count, o.seed);
    let pixels: Vec<u8> = idx.iter().flat_map(|&i| test.image(i).to_vec()).collect();
    let mut preds = inference::predict_images(&model, &pixels, &device);
    out(format!("{:>6}  {:<12} {:<12} {:>10}", "index", "true", "predicted", "confidence"));
    let mut tiles = Vec::new();
    for (pred, &i) in preds.iter_mut().zip(&idx) {
        let t = test.labels[i] as usize;
        pred.index = Some(i);
        pred.true_label = Some(t);
        let mark = if t == pred.predicted { "" } else { "  wrong" };
        out(format!(
            "{i:>6}  {:<12} {:<12} {:>10.4}{mark}",
            CLASS_NAMES[t], CLASS_NAMES[pred.predicted], pred.confidence
        ));
        tiles.push(PredictionTile { pixels: test.image(i).to_vec(), true_label: t, predicted: pred.predicted, confidence: None });
    }
    let correct = preds.iter().filter(|p| p.true_label == Some(p.predicted)).count();
    out(format!("{correct}/{} correct", preds.len()));
    let png = o.out_png.clone().unwrap_or_else(|| o.run.join("predictions.png"));
    let (w, h) = plot::draw_predictions(&tiles, &png)?;
    out(format!("wrote {} ({w}x{h})", png.display()));
    Ok(preds)
}

/// `plot`: redraw `curves.png` of one run, or overlay the test accuracy of several.
pub fn plot_runs(runs: &[PathBuf], out_png: Option<&Path>, out: &mut dyn FnMut(String)) -> Result<PathBuf> {
    let mut histories = Vec::new();
    for r in runs {
        let _ = training::load_run_config(r)?;
        let rows = crate::metrics::read(&r.join(METRICS_FILE))?;
        if rows.is_empty() {
            return Err(Error::input(format!(
                "{}: metrics.csv has no finished epoch yet; train the run first",
                r.display()
            )));
        }
        histories.push((training::run_name(r), rows));
    }
    let target = match (out_png, runs) {
        (Some(p), _) => p.to_path_buf(),
        (None, [one]) => one.join(training::CURVES_FILE),
        (None, _) => PathBuf::from("comparison.png"),
    };
    plot::draw_curves(&histories, &target)?;
    out(format!("wrote {}", target.display()));
    Ok(target)
}

/// Sample an activation and its autodiff derivative on `xs`.
pub fn activation_curve(act: Activation, xs: &[f32], device: &Device) -> ActivationCurve {
    let ad = device.clone().autodiff();
    let x = Tensor::<1>::from_data(TensorData::new(xs.to_vec(), [xs.len()]), &ad).require_grad();
    let y = apply_activation(act, x.clone());
    // d(sum y)/dx_i = f'(x_i): one backward pass gives the derivative at every point.
    let grads = y.clone().sum().backward();
    let g: Vec<f32> = x
        .grad(&grads)
        .map(|g| g.into_data().try_to_vec::<f32>().unwrap_or_default())
        .unwrap_or_default();
    let ys: Vec<f32> = y.into_data().try_to_vec::<f32>().unwrap_or_default();
    ActivationCurve { name: act.name().to_string(), xs: xs.to_vec(), ys, grads: g }
}

/// `activations`: ReLU, sigmoid and tanh on [-8, 8] beside their derivatives.
pub fn activations(out_png: &Path, be: Option<BackendKind>, out: &mut dyn FnMut(String)) -> Result<()> {
    let device = device_for(be, out)?;
    let xs: Vec<f32> = (0..=640).map(|i| -8.0 + i as f32 * 0.025).collect();
    let curves: Vec<ActivationCurve> = Activation::ALL.iter().map(|&a| activation_curve(a, &xs, &device)).collect();
    plot::draw_activations(&curves, out_png)?;
    out(format!("wrote {}", out_png.display()));
    Ok(())
}

/// `export`: the run's model (or a checkpoint) as safetensors in the book's layout.
pub fn export(run: &Path, epoch: Option<usize>, out_file: Option<&Path>, be: Option<BackendKind>, out: &mut dyn FnMut(String)) -> Result<PathBuf> {
    let cfg = training::load_run_config(run)?;
    let device = device_for(be, out)?;
    let (model, _, src) = inference::load_run_model(run, epoch, &device)?;
    let target = out_file.map(Path::to_path_buf).unwrap_or_else(|| run.join("model.safetensors"));
    crate::export::export(&model, &cfg, &target)?;
    out(format!("wrote {} from {} ({})", target.display(), src.display(), cfg.describe_model()));
    Ok(target)
}

/// `import`: make a run folder (model.bpk + config.toml) from safetensors weights.
pub fn import(file: &Path, run: &Path, config: Option<&Path>, overwrite: bool, be: Option<BackendKind>, out: &mut dyn FnMut(String)) -> Result<()> {
    let weights = crate::export::read_safetensors(file)?;
    let hidden = weights.hidden();
    let cfg = match config {
        Some(p) => {
            let c = TrainConfig::load(p)?;
            if c.hidden != hidden {
                return Err(Error::input(format!(
                    "{}: hidden = {:?} but {} holds layers {:?}; use a config whose `hidden` matches the tensors",
                    p.display(),
                    c.hidden,
                    file.display(),
                    crate::model::layer_sizes(&hidden)
                )));
            }
            c
        }
        None => {
            let base = weights.config.clone().unwrap_or_default();
            TrainConfig { hidden: hidden.clone(), ..base }
        }
    };
    if run.exists() && !run.is_dir() {
        return Err(Error::input(format!("{}: is a file, not a folder; pass a folder with --artifacts", run.display())));
    }
    if training::is_run(run) && !overwrite {
        return Err(Error::input(format!(
            "{}: already holds a run; pick another --artifacts folder or pass --overwrite",
            run.display()
        )));
    }
    std::fs::create_dir_all(run).map_err(|e| Error::io("cannot create", run, e))?;
    let device = device_for(be, out)?;
    let model = crate::export::from_torch_layers(&weights.layers, &cfg, &device);
    cfg.save(&run.join(CONFIG_FILE))?;
    training::save_model(&model, &run.join(MODEL_FILE))?;
    out(format!(
        "imported {} into {} ({}); try `eval --artifacts {}`",
        file.display(),
        run.display(),
        cfg.describe_model(),
        run.display()
    ));
    Ok(())
}


#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        crate::backend::cpu_device()
    }

    #[test]
    fn autodiff_derivatives_match_the_closed_forms() {
        let xs: Vec<f32> = (0..=64).map(|i| -8.0 + i as f32 * 0.25 + 0.01).collect();
        for act in Activation::ALL {
            let c = activation_curve(act, &xs, &device());
            assert_eq!(c.grads.len(), xs.len());
            for (i, &x) in xs.iter().enumerate() {
                let x = x as f64;
                let (y, d) = match act {
                    Activation::Relu => (x.max(0.0), if x > 0.0 { 1.0 } else { 0.0 }),
                    Activation::Sigmoid => {
                        let s = 1.0 / (1.0 + (-x).exp());
                        (s, s * (1.0 - s))
                    }
                    Activation::Tanh => (x.tanh(), 1.0 - x.tanh().powi(2)),
                };
                assert!((c.ys[i] as f64 - y).abs() < 1e-5, "{act} y({x})");
                assert!((c.grads[i] as f64 - d).abs() < 1e-5, "{act} dy({x}) = {} vs {d}", c.grads[i]);
            }
        }
    }
}
