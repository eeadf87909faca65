//! `train`: plan the run, lock its folder, load the data, train, report.

use std::path::PathBuf;

use clap::Args;

use super::progress::EpochLines;
use super::{BackendArg, DataArgs, Out, RunArg, print_line, process};
use crate::config::Overrides;
use crate::error::Result;
use crate::run::info::RunInfo;
use crate::run::{METRICS_FILE, MODEL_FILE, RunDir};
use crate::train::{self, RunControl, Silent, TrainOptions, TrainOutcome, TrainPlan};

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Run configuration (TOML). Default: config/default.toml (the book's recipe).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArg,
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of epochs (with --resume: the new total).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// SGD learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Mini-batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed for initialisation and shuffling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Set any recipe field (repeatable), as in a config file: --set hidden=[512,256]
    /// --set activation=tanh. Applied over --config; a field also given by its own flag
    /// (--lr etc.) is refused. Saved in the run's config.toml.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// Hold out the last N training images as a validation split: scored every epoch, the best
    /// epoch's model becomes model.bpk, and the test set is evaluated once, at the end.
    #[arg(long, value_name = "N")]
    pub val_size: Option<usize>,
    /// With --val-size: stop after P epochs in a row without a better validation accuracy.
    #[arg(long, value_name = "P")]
    pub patience: Option<usize>,
    /// Continue the run in --artifacts from its latest complete checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Replace an existing run in --artifacts.
    #[arg(long)]
    pub overwrite: bool,
    /// Keep only the last N epoch checkpoints of the run (default: keep all).
    #[arg(long, value_name = "N")]
    pub keep_checkpoints: Option<usize>,
    /// Start from these weights (safetensors in the book's PyTorch layout) instead of random ones.
    #[arg(long, value_name = "FILE")]
    pub init_from: Option<PathBuf>,
    /// Show Burn's terminal dashboard while training (the metrics files are written as usual).
    #[arg(long)]
    pub tui: bool,
    /// Write TensorBoard event files in the run's tb/ folder (default: the recipe's `tensorboard`,
    /// true; on --resume, as the run was started). Saved with the run.
    #[arg(long, value_name = "true|false")]
    pub tensorboard: Option<bool>,
    #[command(flatten)]
    pub backend: BackendArg,
}

impl TrainArgs {
    fn options(&self) -> Result<TrainOptions> {
        Ok(TrainOptions {
            config_path: self.config.clone(),
            overrides: Overrides {
                set: crate::config::parse_settings(&self.set)?,
                epochs: self.epochs,
                lr: self.lr,
                batch_size: self.batch_size,
                seed: self.seed,
                val_size: self.val_size,
                patience: self.patience,
                tensorboard: self.tensorboard,
            },
            resume: self.resume,
            overwrite: self.overwrite,
            keep_checkpoints: self.keep_checkpoints,
            init_from: self.init_from.clone(),
            config: None,
        })
    }
}

pub fn train(args: &TrainArgs, out: Out) -> Result<TrainOutcome> {
    let run = args.run.dir();
    let opts = args.options()?;
    // Bad input fails before the folder is created or locked.
    crate::train::plan::check_flags(&opts)?;
    crate::train::plan::check_recipe(&run, &opts)?;
    if args.tui && !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(crate::Error::input("--tui draws a dashboard and needs a terminal; drop --tui when the output goes to a pipe or a file"));
    }
    let selected = args.backend.select()?;
    let _lock = run.lock()?;
    let plan = TrainPlan::prepare(&run, &opts, &selected.device)?;
    out(format!("{} | model {} | artifacts {}", selected.description, plan.config.describe_model(), run.path().display()));
    plan.notes.iter().for_each(|n| out(n.clone()));
    if let Some(p) = &plan.init_from {
        out(format!("starting from the weights in {}", p.display()));
    }
    let loaded = args.data.load(crate::data::Need::All, out)?;
    let (data, test) = super::validation::split(&plan, loaded, out)?;
    if let Some(line) = super::validation::stopped_line(&plan) {
        out(line);
    } else if plan.is_done() {
        out(format!(
            "the run already has {} epoch(s) (target {}); pass --epochs N with N > {} to train further",
            plan.start_epoch(),
            plan.config.epochs,
            plan.start_epoch()
        ));
    } else if plan.start_epoch() > 0 {
        out(format!("resuming at epoch {} of {}", plan.start_epoch() + 1, plan.config.epochs));
    }
    let control = RunControl {
        observer: if args.tui { Box::new(Silent) } else { Box::new(EpochLines::new(Box::new(print_line)).naming(data.held_out)) },
        interrupter: process::stop_switch(),
        plots: true,
        tui: args.tui,
        info: Some(RunInfo::new(selected.kind.name(), &selected.description)),
    };
    let outcome = train::run(&plan, &data, &selected.device, control);
    if args.tui {
        // Burn's dashboard installs its own panic hook and may leave it in place.
        process::one_line_panics();
        // The dashboard is gone with its screen: leave the epochs' lines a plain run prints.
        let rows = crate::run::metrics::read(&run.file(METRICS_FILE)).unwrap_or_default();
        for row in rows.iter().filter(|r| r.epoch > plan.start_epoch()) {
            out(super::progress::epoch_line(row, plan.config.epochs));
        }
    }
    let outcome = outcome?;
    summarise(&outcome, &run, plan.config.tensorboard, out);
    if let Some(test) = test.filter(|_| outcome.trained > 0 || !run.file(crate::run::EVAL_FILE).exists()) {
        super::validation::test_once(&run, &test, &selected.device, out)?;
    }
    super::refresh_report(&run, out);
    Ok(outcome)
}

fn summarise(o: &TrainOutcome, run: &RunDir, tensorboard: bool, out: Out) {
    // A run that already reached its target trained and wrote nothing new.
    if o.trained == 0 {
        return;
    }
    if let Some(last) = o.rows.last() {
        let held = if o.selection.is_some() { "val" } else { "test" };
        out(format!(
            "done: {} epoch(s) in {:.1} s ({:.2} s/epoch) | final train loss {:.4} acc {:.4} | {held} loss {:.4} acc {:.4}",
            o.trained,
            o.seconds,
            o.seconds / o.trained as f64,
            last.train_loss,
            last.train_acc,
            last.test_loss,
            last.test_acc
        ));
    }
    if let Some(line) = super::validation::selection_line(o) {
        out(line);
    }
    let events = if tensorboard { format!(", {} (TensorBoard)", run.file(crate::run::tensorboard::TB_DIR).display()) } else { String::new() };
    let model = if o.selection.is_some() { "the best epoch's model" } else { "final model" };
    out(format!(
        "saved {} ({model}), {} (per-epoch), {}, {}{events}",
        run.file(MODEL_FILE).display(),
        run.checkpoint_dir().display(),
        run.file(METRICS_FILE).display(),
        run.file(crate::run::CURVES_FILE).display()
    ));
}
