//! Training as a library: [`TrainPlan::prepare`] decides, [`run`] trains through Burn's Learner
//! and returns a [`TrainOutcome`]; the [`Recorder`](recorder::Recorder) persists each epoch and
//! the caller's [`Observer`] hears about progress. Nothing here prints.

pub mod best;
mod capture;
mod dashboard;
pub mod device_sums;
pub mod hold;
mod launch;
mod logfiles;
pub mod optim;
pub mod plan;
pub mod recorder;

use std::sync::Arc;

use burn::tensor::Device;
use burn::train::Interrupter;

use crate::data::Split;
use crate::error::Result;
use crate::run::metrics::EpochRow;
use crate::run::info::RunInfo;
use crate::run::{MODEL_FILE, RunDir, checkpoint};

pub use plan::{Start, TrainOptions, TrainPlan};
pub use recorder::EXPLODED_LOSS;

/// What a caller hears while a run trains. Every method has a do-nothing default.
pub trait Observer: Send + Sync {
    /// A split of `epoch` starts (`valid`: the test split) with `items` images.
    fn split_started(&mut self, _epoch: usize, _total_epochs: usize, _valid: bool, _items: usize) {}
    /// Images of the current split processed so far.
    fn split_progress(&mut self, _items_done: usize) {}
    /// An epoch finished and its row is saved.
    fn epoch_finished(&mut self, _row: &EpochRow, _total_epochs: usize) {}
    /// The Learner stopped (finished, interrupted or diverged).
    fn finished(&mut self) {}
}

/// A time left as people read it: `1m 05s`, `9s`.
pub fn format_left(d: std::time::Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    if s >= 60 { format!("{}m {:02}s", s / 60, s % 60) } else { format!("{s}s") }
}

/// An observer that hears nothing (tests, quiet callers).
pub struct Silent;
impl Observer for Silent {}

/// The images a run trains and tests on, shared (a sweep loads them once for all its trials).
#[derive(Clone)]
pub struct TrainData {
    pub train: Arc<Split>,
    /// The split reported as `test_*` in `metrics.csv` (the test set, or a validation split).
    pub test: Arc<Split>,
    /// Which of the two `test` is: `metrics.csv` and the report name its figures after it.
    pub held_out: crate::run::metrics::HeldOut,
}

impl TrainData {
    /// The last `val_size` training images as the validation split (scored every epoch, named
    /// `val_*` in `metrics.csv`), the rest to train on; file order, so the split depends only
    /// on `val_size`.
    pub fn hold_out(train: Split, val_size: usize) -> Result<TrainData> {
        let (train, val) = train.take_tail(val_size)?;
        Ok(TrainData { train: Arc::new(train), test: Arc::new(val), held_out: crate::run::metrics::HeldOut::Validation })
    }
}

/// How to run, besides the plan: the display and the stop switch.
pub struct RunControl {
    pub observer: Box<dyn Observer>,
    /// Stops the run between steps (signals, a closed pipe, a sweep's scheduler).
    pub interrupter: Interrupter,
    /// Draw `curves.png` after every epoch.
    pub plots: bool,
    /// Show Burn's terminal dashboard (metrics files are still written).
    pub tui: bool,
    /// Backend and device, recorded in `run.json`.
    pub info: Option<RunInfo>,
}

impl RunControl {
    pub fn quiet() -> Self {
        Self { observer: Box::new(Silent), interrupter: Interrupter::new(), plots: false, tui: false, info: None }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub run: RunDir,
    /// Every row of the run, earlier sessions included.
    pub rows: Vec<EpochRow>,
    /// Epochs trained in this call.
    pub trained: usize,
    /// Wall seconds of this call's training.
    pub seconds: f64,
    /// Seconds of the training and of the test split of each epoch trained in this call.
    pub split_seconds: Vec<(f64, f64)>,
    /// With a validation split: the epoch whose model is `model.bpk`, and an early stop.
    pub selection: Option<best::Selection>,
}

/// Train the plan on `data`: apply the plan to the folder, run the Learner, check how it
/// ended, save the final model.
pub fn run(plan: &TrainPlan, data: &TrainData, device: &Device, control: RunControl) -> Result<TrainOutcome> {
    plan.check_data(data.train.len())?;
    if plan.is_done() {
        return finish_done(plan, device);
    }
    plan.apply(data.held_out)?;
    let model = match &plan.init_from {
        Some(p) => crate::interchange::load_safetensors_model(p, &plan.config, device)?,
        None => crate::model::Mlp::new(&plan.config, device),
    };
    let ended = on_pool(|| launch::launch(plan, data, device, model, control))?;
    launch::check_ending(plan, &ended)?;
    let selection = plan.selection(&ended.rows);
    match selection {
        Some(s) => keep_best(plan, s, device)?,
        None => plan.run.save_model(&ended.model)?,
    }
    Ok(TrainOutcome {
        run: plan.run.clone(),
        trained: ended.rows.iter().filter(|r| r.epoch > plan.start_epoch()).count(),
        rows: ended.rows,
        seconds: ended.seconds,
        split_seconds: ended.split_seconds,
        selection,
    })
}

/// The best epoch's checkpoint becomes `model.bpk`; `run.json` names it (and an early stop).
fn keep_best(plan: &TrainPlan, s: best::Selection, device: &Device) -> Result<()> {
    let path = checkpoint::file_for(&plan.run, checkpoint::MODEL, s.best_epoch);
    plan.run.save_model(&checkpoint::load_model_file(&path, &plan.config, device)?)?;
    let info_file = plan.run.file(crate::run::INFO_FILE);
    if let Some(mut info) = RunInfo::read(&info_file) {
        (info.best_epoch, info.stopped_early_after) = (Some(s.best_epoch), s.stopped_after);
        info.save(&info_file)?;
    }
    Ok(())
}

/// A resumed run that already reached its target: make sure `model.bpk` exists, train nothing.
/// Runs `f` on a thread of rayon's pool (in place when already on one, as a sweep worker is).
///
/// Flex's own parallel operations then start from a pool thread, which runs part of the work
/// itself instead of waiting for two sleeping workers to wake (a third of the wake-up time, per
/// docs/performance.md).
fn on_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if rayon::current_thread_index().is_some() { f() } else { rayon::scope(|_| f()) }
}

fn finish_done(plan: &TrainPlan, device: &Device) -> Result<TrainOutcome> {
    let selection = plan.selection(&plan.history);
    let epoch = selection.map_or(plan.start_epoch(), |s| s.best_epoch);
    if !plan.run.file(MODEL_FILE).exists() {
        let path = checkpoint::file_for(&plan.run, checkpoint::MODEL, epoch);
        plan.run.save_model(&checkpoint::load_model_file(&path, &plan.config, device)?)?;
    }
    Ok(TrainOutcome { run: plan.run.clone(), rows: plan.history.clone(), trained: 0, seconds: 0.0, split_seconds: Vec::new(), selection })
}
