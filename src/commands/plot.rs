//! `plot` (training curves of one run, or several overlaid) and `activations`.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};

use super::{BackendArg, Out};
use crate::config::Activation;
use crate::error::{Error, Result};
use crate::model::apply_activation;
use crate::plot::{self, ActivationCurve};
use crate::run::{CURVES_FILE, METRICS_FILE, RunDir, metrics};

/// Redraw `curves.png` of one run, or overlay the test accuracy of several.
#[derive(clap::Args, Debug, Clone)]
pub struct PlotArgs {
    /// Run folder(s).
    #[arg(long, value_name = "DIR", num_args = 1.., default_value = "artifacts")]
    pub artifacts: Vec<PathBuf>,
    /// Output PNG (default: curves.png in the run folder; comparison.png in the first run folder for several runs).
    #[arg(long, value_name = "FILE.png")]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ActivationsArgs {
    /// Output PNG.
    #[arg(long, value_name = "FILE.png", default_value = "activations.png")]
    pub out: PathBuf,
    #[command(flatten)]
    pub backend: BackendArg,
}

pub fn plot_runs(args: &PlotArgs, out: Out) -> Result<PathBuf> {
    let out_png = args.out.as_deref();
    if let Some(p) = out_png {
        super::check_out("--out", p)?;
    }
    let runs: Vec<RunDir> = args.artifacts.iter().map(RunDir::new).collect();
    let mut histories = Vec::new();
    // What each run's held-out figures measure: the test set, or a sweep trial's validation split.
    let held: Vec<metrics::HeldOut> = runs.iter().map(|r| metrics::held_out(&r.file(METRICS_FILE))).collect();
    let labels = plot::unique_labels(&args.artifacts);
    for (r, label) in runs.iter().zip(labels) {
        r.load_config()?;
        let rows = metrics::read(&r.file(METRICS_FILE))?;
        if rows.is_empty() {
            return Err(Error::input(format!("{}: metrics.csv has no finished epoch yet; train the run first", r.path().display())));
        }
        histories.push((label, rows));
    }
    let target = match (out_png, runs.as_slice()) {
        (Some(p), _) => p.to_path_buf(),
        (None, [one]) => one.file(CURVES_FILE),
        (None, [first, ..]) => first.file("comparison.png"),
        (None, []) => return Err(Error::input("pass at least one run folder with --artifacts")),
    };
    plot::check_png_path(&target)?;
    // Writing into a run folder needs its writer lock; a picture elsewhere doesn't.
    let owner = runs.iter().find(|r| target.parent() == Some(r.path()));
    let _lock = owner.map(RunDir::lock).transpose()?;
    plot::draw_overlay(&histories, &held, &target)?;
    out(format!("wrote {}", target.display()));
    Ok(target)
}

/// Sample an activation and its autodiff derivative on `xs`.
pub fn activation_curve(act: Activation, xs: &[f32], device: &Device) -> Result<ActivationCurve> {
    let ad = device.clone().autodiff();
    let x = Tensor::<1>::from_data(TensorData::new(xs.to_vec(), [xs.len()]), &ad).require_grad();
    let y = apply_activation(act, x.clone());
    // d(sum y)/dx_i = f'(x_i): one backward pass gives the derivative at every point.
    let grads = y.clone().sum().backward();
    let read = |t: Tensor<1>| {
        t.into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::failure_with(format!("cannot read the {act} curve back from the device"), format!("{e:?}")))
    };
    let g = x.grad(&grads).ok_or_else(|| Error::failure(format!("autodiff gave no gradient for {act}")))?;
    Ok(ActivationCurve { name: act.name().to_string(), xs: xs.to_vec(), ys: read(y)?, grads: read(g)? })
}

/// `activations`: ReLU, sigmoid and tanh on [-8, 8] beside their derivatives.
pub fn activations(args: &ActivationsArgs, out: Out) -> Result<()> {
    let (out_png, backend) = (args.out.as_path(), &args.backend);
    super::check_out("--out", out_png)?;
    plot::check_png_path(out_png)?;
    let device = backend.open(out)?.device;
    let xs: Vec<f32> = (0..=640).map(|i| -8.0 + i as f32 * 0.025).collect();
    let curves = Activation::ALL.iter().map(|&a| activation_curve(a, &xs, &device)).collect::<Result<Vec<_>>>()?;
    plot::draw_activations(&curves, out_png)?;
    out(format!("wrote {}", out_png.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autodiff_derivatives_match_the_closed_forms() {
        let xs: Vec<f32> = (0..=64).map(|i| -8.0 + i as f32 * 0.25 + 0.01).collect();
        for act in Activation::ALL {
            let c = activation_curve(act, &xs, &crate::backend::cpu_device()).unwrap();
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
