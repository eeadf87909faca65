//! `train --val-size N`: the data split, the lines that name the best epoch and an early stop,
//! and the one evaluation of the test set at the end (eval.json and mistakes.png, as `eval`
//! writes them).

use burn::tensor::Device;

use super::Out;
use crate::data::{Loaded, Split};
use crate::error::Result;
use crate::inference;
use crate::run::{EVAL_FILE, RunDir};
use crate::train::{TrainData, TrainOutcome, TrainPlan};

/// What the run trains and scores on every epoch, and the test set when it is kept for the end.
pub fn split(plan: &TrainPlan, loaded: Loaded, out: Out) -> Result<(TrainData, Option<Split>)> {
    let n = plan.config.val_size;
    if n == 0 {
        return Ok((TrainData { train: loaded.train.into(), test: loaded.test.into(), held_out: Default::default() }, None));
    }
    let data = TrainData::hold_out(loaded.train, n)?;
    let patience = plan.config.patience.map(|p| format!(", stopping after {p} epoch(s) without a better one")).unwrap_or_default();
    out(format!(
        "validation: the last {n} training images are held out and scored every epoch; training on {}; the best epoch's model is kept{patience}; the {} test images are evaluated once, at the end",
        data.train.len(),
        loaded.test.len()
    ));
    Ok((data, Some(loaded.test)))
}

/// A resumed run that patience had already stopped.
pub fn stopped_line(plan: &TrainPlan) -> Option<String> {
    let (best, last) = plan.stopped_early()?;
    let p = plan.config.patience.unwrap_or(0);
    Some(format!(
        "the run stopped early after epoch {last} ({p} epoch(s) without a better validation accuracy than epoch {best}'s); nothing to train (start a new run to train with more patience)"
    ))
}

/// The epoch whose model the run kept, and why it ended there.
pub fn selection_line(o: &TrainOutcome) -> Option<String> {
    let s = o.selection?;
    let row = o.rows.iter().find(|r| r.epoch == s.best_epoch)?;
    let why = match s.stopped_after {
        Some(last) => format!("; stopped early after epoch {last}: no better validation accuracy for {} epoch(s)", last - s.best_epoch),
        None => String::new(),
    };
    Some(format!(
        "best epoch {} (validation loss {:.4} acc {:.4}): its model is model.bpk{why}",
        s.best_epoch, row.test_loss, row.test_acc
    ))
}

/// Evaluate the run's model (the best epoch's) on the test set once and save what `eval` saves.
pub fn test_once(run: &RunDir, test: &Split, device: &Device, out: Out) -> Result<()> {
    let (model, _cfg, path) = run.load_model(None, device)?;
    let report = inference::evaluate(&model, test, device, &path.display().to_string())?;
    out(format!(
        "test (once, with the best epoch's model): loss {:.4} acc {:.4} on {} images",
        report.loss, report.accuracy, report.samples
    ));
    report.save(&run.file(EVAL_FILE))?;
    out(format!("wrote {}", run.file(EVAL_FILE).display()));
    super::eval::draw_mistakes(run, &report, test, None, out)
}
