//! `bench`: how fast the recipe trains here, per backend, without writing a run.

use std::path::PathBuf;

use serde::Serialize;

use crate::backend::{self, BackendKind};
use crate::config::{Overrides, TrainConfig};
use crate::data::{self, DataOptions};
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::training::{self, TrainOptions};

/// The Burn release this binary is built against (pinned in Cargo.toml).
pub const BURN_VERSION: &str = "0.22.1";

#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(v: &[f64]) -> Spread {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Spread {
            median,
            min: s.first().copied().unwrap_or(f64::NAN),
            max: s.last().copied().unwrap_or(f64::NAN),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendFigures {
    pub backend: BackendKind,
    pub device: String,
    pub threads: usize,
    pub epochs: usize,
    pub train_images: usize,
    pub test_images: usize,
    pub train_seconds: Spread,
    pub test_seconds: Spread,
    pub epoch_seconds: Spread,
    pub train_images_per_second: f64,
    pub test_images_per_second: f64,
    pub final_train_loss: f64,
    pub final_test_accuracy: f64,
    /// Peak resident memory of the process so far (VmHWM), in MiB.
    pub peak_rss_mib: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub burn_version: &'static str,
    pub data: String,
    pub synthetic_data: bool,
    pub batch_size: usize,
    pub results: Vec<BackendFigures>,
}

/// Peak resident set size of this process in MiB (Linux; NaN elsewhere).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

pub struct BenchOptions {
    pub epochs: usize,
    pub backend: Option<BackendKind>,
    pub data: DataOptions,
    pub json: Option<PathBuf>,
    /// Size of the synthetic data used when the real data is absent (train, test).
    pub synthetic_size: (usize, usize),
}

/// Run the recipe for `epochs` epochs on each selected backend, in a temporary run folder.
pub fn bench(o: &BenchOptions, out: &mut dyn FnMut(String)) -> Result<BenchReport> {
    if o.epochs == 0 {
        return Err(Error::input("--epochs must be at least 1"));
    }
    let kinds = match o.backend {
        Some(k) => vec![backend::resolve(Some(k))?],
        None => backend::compiled(),
    };
    let scratch = tempfile::tempdir().map_err(|e| Error::io("cannot create a temporary folder in", std::env::temp_dir(), e))?;
    let (data_opts, label, synthetic) = match data::locate(o.data.data_dir.as_deref())? {
        Some(src) => (
            DataOptions { data_dir: Some(src.dir().to_path_buf()), skip_checksum: o.data.skip_checksum },
            src.dir().display().to_string(),
            false,
        ),
        None => {
            let dir = scratch.path().join("data");
            let (n_train, n_test) = o.synthetic_size;
            data::write_synthetic(&dir, n_train, n_test, 1, false)?;
            (
                DataOptions { data_dir: Some(dir), skip_checksum: true },
                format!("synthetic data of Fashion-MNIST's shape ({n_train} train, {n_test} test; real data not found)"),
                true,
            )
        }
    };
    out(format!("bench: {} epoch(s) per backend on {label}", o.epochs));
    let mut results = Vec::new();
    for kind in kinds {
        let run = scratch.path().join(format!("run-{kind}"));
        let cfg_path = scratch.path().join("recipe.toml");
        let cfg = TrainConfig { epochs: o.epochs, ..TrainConfig::default() };
        std::fs::write(&cfg_path, cfg.to_toml()).map_err(|e| Error::io("cannot write", &cfg_path, e))?;
        let opts = TrainOptions {
            artifacts: run,
            config_path: Some(cfg_path),
            overrides: Overrides::default(),
            data: data_opts.clone(),
            backend: Some(kind),
            resume: false,
            overwrite: false,
            keep_checkpoints: Some(1),
            init_from: None,
            plots: false,
            echo_epochs: true,
        };
        let selected = backend::select(kind)?;
        let mut quiet = |line: String| {
            if line.starts_with("epoch") || line.starts_with("done") {
                println!("{line}");
            }
        };
        let outcome = training::train(&opts, &mut quiet)?;
        let (n_train, n_test) = outcome.split_sizes;
        let train_s: Vec<f64> = outcome.split_seconds.iter().map(|s| s.0).collect();
        let test_s: Vec<f64> = outcome.split_seconds.iter().map(|s| s.1).collect();
        let epoch_s: Vec<f64> = outcome.split_seconds.iter().map(|s| s.0 + s.1).collect();
        let tr = Spread::of(&train_s);
        let te = Spread::of(&test_s);
        let last = outcome.rows.last();
        let f = BackendFigures {
            backend: kind,
            device: selected.description.clone(),
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            epochs: o.epochs,
            train_images: n_train,
            test_images: n_test,
            train_images_per_second: n_train as f64 / tr.median,
            test_images_per_second: n_test as f64 / te.median,
            train_seconds: tr,
            test_seconds: te,
            epoch_seconds: Spread::of(&epoch_s),
            final_train_loss: last.map(|r| r.train_loss).unwrap_or(f64::NAN),
            final_test_accuracy: last.map(|r| r.test_acc).unwrap_or(f64::NAN),
            peak_rss_mib: peak_rss_mib(),
        };
        out(render(&f));
        results.push(f);
    }
    let report = BenchReport {
        burn_version: BURN_VERSION,
        data: label,
        synthetic_data: synthetic,
        batch_size: TrainConfig::default().batch_size,
        results,
    };
    if let Some(p) = &o.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| Error::failure(format!("cannot encode JSON: {e}")))?;
        atomic_write(p, text.as_bytes()).map_err(|e| Error::io("cannot write", p, e))?;
        out(format!("wrote {}", p.display()));
    }
    Ok(report)
}

fn render(f: &BackendFigures) -> String {
    format!(
        "{} | burn {BURN_VERSION} | {} threads\n  train: {:.3} s/epoch median (min {:.3}, max {:.3}), {:.0} images/s\n  test:  {:.3} s/epoch median (min {:.3}, max {:.3}), {:.0} images/s\n  epoch: {:.3} s median | peak RSS {:.0} MiB | final train loss {:.4}, test acc {:.4}",
        f.device,
        f.threads,
        f.train_seconds.median,
        f.train_seconds.min,
        f.train_seconds.max,
        f.train_images_per_second,
        f.test_seconds.median,
        f.test_seconds.min,
        f.test_seconds.max,
        f.test_images_per_second,
        f.epoch_seconds.median,
        f.peak_rss_mib,
        f.final_train_loss,
        f.final_test_accuracy
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_median_min_max() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[1.0, 2.0]).median, 1.5);
    }

    #[test]
    fn peak_rss_is_positive_on_linux() {
        assert!(peak_rss_mib() > 1.0);
    }
}
