//! `bench`: seconds per epoch per backend, each backend measured in a process of its own so
//! its peak memory is its own. Trains through the library on data held in memory.

use std::path::PathBuf;

use super::progress::EpochLines;
use super::{DataArgs, Out, print_line};
use crate::backend::{self, BackendKind};
use crate::bench::{BackendFigures, BenchReport};
use crate::config::{Overrides, TrainConfig};
use crate::data;
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::run::RunDir;
use crate::train::{self, RunControl, TrainData, TrainOptions, TrainPlan};

/// Images of the synthetic stand-in when the real data is not found.
const SYNTHETIC: (usize, usize) = (60_000, 10_000);

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Epochs per backend.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// The recipe to measure (TOML, as `train --config` reads it; its `epochs` is replaced by
    /// --epochs). Default: the book's recipe.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Set a field of the recipe measured (repeatable), as `train --set` does, e.g.
    /// --set hidden=[512,256]; its epochs are --epochs.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// Also write the figures as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Folder with the Fashion-MNIST IDX files (gzipped or not). Default: $FASHION_MNIST_DIR,
    /// then data/fashion-mnist/, then /usr/share/datasets/fashion-mnist/, else generated data of
    /// the same shape (a benchmark never downloads).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Do not check the files against the official Fashion-MNIST SHA-256 sums (for your own IDX data).
    #[arg(long)]
    pub skip_checksum: bool,
    /// Only this backend (default: every backend built in, each in a process of its own).
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Write TensorBoard event files as a run does (default: the recipe's `tensorboard`, true);
    /// `false` measures training without them.
    #[arg(long, value_name = "true|false")]
    pub tensorboard: Option<bool>,
    /// Measure Burn's own operations, without this project's fused flex operations.
    #[arg(long, env = crate::engine::ENV_REFERENCE_OPS, value_parser = clap::builder::BoolishValueParser::new())]
    pub reference_ops: bool,
    /// Internal: measure as a child of `bench` (no header, JSON for the parent).
    #[arg(long, hide = true)]
    pub as_child: bool,
}

pub fn bench(args: &BenchArgs, out: Out) -> Result<()> {
    let (epochs, json, only) = (args.epochs, args.json.as_deref(), args.backend);
    let data = &DataArgs { data_dir: args.data_dir.clone(), skip_checksum: args.skip_checksum };
    if epochs == 0 {
        return Err(Error::input("--epochs must be at least 1"));
    }
    if let Some(p) = json {
        super::check_out("--json", p)?;
    }
    crate::engine::use_reference_ops(args.reference_ops);
    // A measuring build names what it runs (and refuses a misspelt choice) before any work.
    #[cfg(feature = "team-alternatives")]
    out(crate::engine::vmath_alt::describe().map_err(Error::input)?);
    // The recipe is read (and refused) before any data is.
    let recipe = bench_recipe(args)?;
    let (splits, label, synthetic) = bench_data(data, out)?;
    if !args.as_child {
        let which = match (&args.config, args.set.is_empty()) {
            (Some(p), _) => format!("{} ({}), ", p.display(), crate::bench::describe_recipe(&recipe)),
            (None, false) => format!("{}, ", crate::bench::describe_recipe(&recipe)),
            (None, true) => String::new(),
        };
        out(format!("bench: {which}{epochs} epoch(s) per backend on {label}"));
    }
    let results = match only {
        Some(kind) => vec![measure(kind, &recipe, epochs, &splits, out)?],
        None => backend::compiled().into_iter().map(|k| in_child(k, args, out)).collect::<Result<_>>()?,
    };
    let report = BenchReport {
        burn_version: crate::run::info::BURN_VERSION.to_string(),
        data: label,
        synthetic_data: synthetic,
        batch_size: recipe.batch_size,
        results,
    };
    if let Some(p) = json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| Error::failure_with("cannot encode JSON", e))?;
        atomic_write(p, text.as_bytes()).map_err(|e| Error::io("cannot write", p, e))?;
        if !args.as_child {
            out(format!("wrote {}", p.display()));
        }
    }
    Ok(())
}

/// The recipe measured: the file (or the book's), `--set`, `--tensorboard`. The epochs are
/// --epochs, and a bench trains on the whole training set: those fields are refused in --set.
fn bench_recipe(args: &BenchArgs) -> Result<TrainConfig> {
    let recipe = match &args.config {
        Some(p) => TrainConfig::load(p)?,
        None => TrainConfig::default(),
    };
    let set = crate::config::parse_settings(&args.set)?;
    if let Some(s) = set.iter().find(|s| s.field == "epochs") {
        return Err(Error::config(format!("--set {}: bench trains --epochs N epochs per backend (default 3); pass --epochs instead", s.shown())));
    }
    let recipe = recipe.with_overrides(&Overrides { set, tensorboard: args.tensorboard, ..Default::default() })?;
    if recipe.val_size > 0 || recipe.patience.is_some() {
        return Err(Error::Config(
            "fields `val_size` and `patience`: bench measures epochs on the whole training set, without a validation split; drop them from --set or the config file".into(),
        ));
    }
    Ok(recipe)
}

/// The real data when it is found (never downloaded for a benchmark), else synthetic data of its shape.
fn bench_data(data: &DataArgs, out: Out) -> Result<(TrainData, String, bool)> {
    let found = data::locate(data.data_dir.as_deref())?;
    let (train, test, label, synthetic) = match found {
        Some(src) => {
            let opts = data::DataOptions { data_dir: Some(src.dir().to_path_buf()), ..data.options() };
            let d = data::open(&opts, data::Need::All, out)?;
            (d.train, d.test, src.dir().display().to_string(), false)
        }
        None => {
            let (n, m) = SYNTHETIC;
            let label = format!("synthetic data of Fashion-MNIST's shape ({n} train, {m} test; real data not found)");
            (data::synthetic(n, 1), data::synthetic(m, 2), label, true)
        }
    };
    Ok((TrainData { train: train.into(), test: test.into(), held_out: Default::default() }, label, synthetic))
}

/// Train `recipe` for `epochs` on one backend in this process.
fn measure(kind: BackendKind, recipe: &TrainConfig, epochs: usize, data: &TrainData, out: Out) -> Result<BackendFigures> {
    let selected = super::with_ops_note(backend::select(kind)?);
    let scratch = tempfile::tempdir().map_err(|e| Error::io("cannot create a temporary folder in", std::env::temp_dir(), e))?;
    let run = RunDir::new(scratch.path().join("run"));
    let opts = TrainOptions {
        config: Some(recipe.clone()),
        overrides: Overrides { epochs: Some(epochs), ..Default::default() },
        keep_checkpoints: Some(1),
        ..Default::default()
    };
    run.ensure_writable()?;
    let plan = TrainPlan::prepare(&run, &opts, &selected.device)?;
    let control = RunControl { observer: Box::new(EpochLines::new(Box::new(print_line))), ..RunControl::quiet() };
    let outcome = train::run(&plan, data, &selected.device, control)?;
    let sizes = (data.train.len(), data.test.len());
    let figures = BackendFigures::from_outcome(kind, &selected.description, recipe, sizes, &outcome);
    out(figures.render());
    Ok(figures)
}

/// Measure one backend in a child process (its own peak memory), reading its JSON back.
fn in_child(kind: BackendKind, args: &BenchArgs, out: Out) -> Result<BackendFigures> {
    let (epochs, data) = (args.epochs, &DataArgs { data_dir: args.data_dir.clone(), skip_checksum: args.skip_checksum });
    let exe = std::env::current_exe().map_err(|e| Error::failure_with("cannot find this program's path", e))?;
    let scratch = tempfile::tempdir().map_err(|e| Error::io("cannot create a temporary folder in", std::env::temp_dir(), e))?;
    let json = scratch.path().join("bench.json");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["bench", "--as-child", "--backend", kind.name(), "--epochs", &epochs.to_string(), "--json"]).arg(&json);
    if let Some(d) = &data.data_dir {
        cmd.arg("--data-dir").arg(d);
    }
    if data.skip_checksum {
        cmd.arg("--skip-checksum");
    }
    if let Some(c) = &args.config {
        cmd.arg("--config").arg(c);
    }
    if let Some(t) = args.tensorboard {
        cmd.arg("--tensorboard").arg(t.to_string());
    }
    for s in &args.set {
        cmd.arg("--set").arg(s);
    }
    if crate::engine::reference_ops() {
        cmd.arg("--reference-ops");
    }
    let status = cmd.status().map_err(|e| Error::failure_with(format!("cannot start the {kind} benchmark"), e))?;
    if !status.success() {
        return Err(Error::failure(format!("the {kind} benchmark failed ({status}); run `bench --backend {kind}` to see why")));
    }
    let text = std::fs::read_to_string(&json).map_err(|e| Error::io("cannot read", &json, e))?;
    let mut report: BenchReport = serde_json::from_str(&text).map_err(|e| Error::failure_with(json.display().to_string(), e))?;
    out(String::new());
    report.results.pop().ok_or_else(|| Error::failure(format!("the {kind} benchmark reported nothing")))
}
