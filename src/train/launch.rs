//! Wiring Burn's Learner (`SupervisedTraining`) for a plan, and reading how it ended.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::module::Module;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::tensor::Device;
use burn::train::{Learner, SupervisedTraining};

use super::best::{Patience, best_so_far};
use super::capture::Capture;
use super::dashboard::Dashboard;
use super::logfiles::{LogError, MetricLogFiles};
use super::recorder::{Divergence, EXPLODED_LOSS, Recorder};
use super::{RunControl, TrainData, TrainPlan};
use crate::data::device;
use crate::data::loader::BatchLoader;
use crate::error::{Error, Result};
use crate::model::Mlp;
use crate::run::checkpoint::{self, AtomicFileCheckpointer, Retention};
use crate::run::metrics::EpochRow;
use crate::run::tensorboard::RunEvents;

/// What the Learner left behind.
pub struct Ended {
    pub model: Mlp,
    pub rows: Vec<EpochRow>,
    pub seconds: f64,
    pub split_seconds: Vec<(f64, f64)>,
    diverged: Option<Divergence>,
    write_error: Option<Error>,
    failed: Option<String>,
    interrupted: bool,
}

pub fn launch(plan: &TrainPlan, data: &TrainData, device: &Device, model: Mlp, control: RunControl) -> Result<Ended> {
    let cfg = &plan.config;
    let hold = super::hold::epoch_for(plan.run.path())?;
    let start = plan.start_epoch();
    let shuffle = cfg.shuffle.then_some(cfg.seed);
    let train = device::for_device(BatchLoader::new(data.train.clone(), cfg.batch_size, shuffle, start + 1, device).seeding_draws(cfg.seed));
    let test = device::for_device(BatchLoader::new(data.test.clone(), cfg.batch_size, None, start + 1, device));

    let events = cfg.tensorboard.then(|| RunEvents::open(plan.run.path(), data.held_out, cfg.lr, start + 1)).transpose()?;
    let recorder = Recorder::new(plan.run.clone(), plan.history.clone(), control.plots, control.info).with_events(events);
    let recorder = Arc::new(Mutex::new(recorder));
    let interrupter = control.interrupter;
    let inner = control.tui.then(|| Dashboard::open(interrupter.clone(), (start > 0).then_some(start)));
    let capture = Capture::new(recorder.clone(), control.observer, inner, interrupter.clone()).holding(hold);

    let log_error = LogError::default();
    let ckpt = plan.run.checkpoint_dir();
    let training = super::device_sums::with_metrics(SupervisedTraining::new(plan.run.path(), train, test), device);
    let mut training = training
        .with_metric_logger(MetricLogFiles::new(plan.run.path(), log_error.clone()))
        .with_custom_checkpointers(
            AtomicFileCheckpointer::new(&ckpt, checkpoint::MODEL),
            AtomicFileCheckpointer::new(&ckpt, checkpoint::OPTIM),
            AtomicFileCheckpointer::new(&ckpt, checkpoint::SCHEDULER),
        )
        .with_checkpointing_strategy(retention(plan, &recorder))
        .with_interrupter(interrupter)
        // Burn's application logger prints a panic banner over our one-line message and installs
        // a process-wide logger (once only, which a sweep's many runs would trip over).
        .with_application_logger(None)
        .renderer(Box::new(capture))
        .num_epochs(cfg.epochs);
    if start > 0 {
        training = training.checkpoint(start);
    }
    if let Some(patience) = cfg.patience {
        training = training.early_stopping(Patience { recorder: recorder.clone(), patience });
    }
    let optim = super::optim::sgd(cfg);
    // Params built from host data start on a plain device; `train()` turns on autodiff tracking.
    let learner = Learner::new(model.train(), optim, ConstantLr::new(cfg.lr));
    let began = Instant::now();
    let result = training.launch(learner);
    let seconds = began.elapsed().as_secs_f64();

    let mut rec = recorder.lock().map_err(|_| Error::failure("internal: the recorder's state was poisoned"))?;
    let mut rows = rec.rows().to_vec();
    if result.interrupted.is_some() {
        keep_checkpointed_rows(plan, &mut rows)?;
    }
    Ok(Ended {
        model: result.model,
        rows,
        seconds,
        split_seconds: std::mem::take(&mut rec.split_seconds),
        diverged: rec.diverged,
        write_error: rec.write_error.take().or_else(|| log_error.lock().ok()?.take()),
        failed: result.error.map(|e| e.to_string().lines().next().unwrap_or("").to_string()),
        interrupted: result.interrupted.is_some(),
    })
}

/// Keep the last `--keep-checkpoints` epochs, and with a validation split the best one too.
fn retention(plan: &TrainPlan, recorder: &Arc<Mutex<super::recorder::Recorder>>) -> Retention {
    let rec = recorder.clone();
    let protect = (plan.config.val_size > 0).then(|| Box::new(move || best_so_far(&rec)) as Box<dyn Fn() -> Option<usize> + Send>);
    Retention { run: plan.run.clone(), keep: plan.keep_checkpoints, saved: Vec::new(), protect }
}

/// A stop that lands between an epoch's row and its checkpoint leaves a row the Learner did
/// not checkpoint: drop it, so `metrics.csv` matches the checkpoints.
fn keep_checkpointed_rows(plan: &TrainPlan, rows: &mut Vec<EpochRow>) -> Result<()> {
    let last = checkpoint::epochs_on_disk(&plan.run).into_iter().max().unwrap_or(0);
    if rows.iter().any(|r| r.epoch > last) {
        rows.retain(|r| r.epoch <= last);
        crate::run::metrics::write(&plan.run.file(crate::run::METRICS_FILE), rows)?;
    }
    Ok(())
}

/// The recipe's SGD: plain by default; PyTorch's momentum (no dampening) and L2 weight decay.
/// Turn an abnormal ending into the error that says what happened and what to do.
pub fn check_ending(plan: &TrainPlan, ended: &Ended) -> Result<()> {
    let run = plan.run.path().display();
    if let Some(e) = &ended.write_error {
        return Err(Error::failure(e.one_line()));
    }
    if let Some(d) = ended.diverged {
        return Err(divergence(plan, d, ended.rows.last()));
    }
    if let Some(why) = &ended.failed {
        return Err(Error::failure(format!(
            "training failed: {why}; the checkpoints and metrics.csv in {run} are intact, `train --resume` continues from them"
        )));
    }
    if ended.interrupted {
        return Err(Error::Interrupted(match ended.rows.last() {
            Some(r) => format!(
                "interrupted after epoch {}; its checkpoint and metrics.csv are saved, continue with `train --resume --artifacts {run}`",
                r.epoch
            ),
            None => format!(
                "interrupted in epoch 1, before any epoch finished: nothing was saved; start again with `train --artifacts {run}`"
            ),
        }));
    }
    Ok(())
}

fn divergence(plan: &TrainPlan, d: Divergence, last: Option<&EpochRow>) -> Error {
    let lr = plan.config.lr;
    let kept = match last {
        Some(r) => format!("the checkpoints and metrics.csv up to epoch {} are intact", r.epoch),
        None => "no epoch had finished, so nothing was checkpointed".to_string(),
    };
    let smaller = lr / 10.0;
    let cause = if d.first_batch && lr <= 1.0 {
        format!(
            "the very first batch gave a non-finite loss with finite weights, so the data or the recipe is at fault (check the images with --skip-checksum data, `init_std` {} and `lr` {lr})",
            plan.config.init_std
        )
    } else {
        format!("the learning rate {lr} is too large")
    };
    Error::Diverged(format!(
        "training diverged in epoch {}: the loss became NaN, infinite or exploded past {EXPLODED_LOSS}; {cause}; {kept}; retry with a smaller rate: `{}`",
        d.epoch,
        plan.retry_command(smaller)
    ))
}
