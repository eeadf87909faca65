//! `eval`: test loss and accuracy, per-class accuracy, confusion matrix; writes `eval.json`
//! and `mistakes.png` (the most confident mistakes) in the run folder, for a checkpoint
//! `eval-epoch-NNN.json` and `mistakes-epoch-NNN.png`.

use super::{DataArgs, ModelArgs, Out};
use crate::data::Split;
use crate::error::Result;
use crate::inference::{self, EvalReport};
use crate::plot::{self, PredictionTile};
use crate::run::{EVAL_FILE, MISTAKES_FILE, RunDir};

#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn eval(args: &EvalArgs, out: Out) -> Result<EvalReport> {
    let (data, backend, epoch) = (&args.data, &args.model.backend, args.model.checkpoint);
    let run = args.model.run.dir();
    run.load_config()?;
    let _lock = run.lock()?;
    let device = backend.open(out)?.device;
    let (model, _cfg, path) = run.load_model(epoch, &device)?;
    let test = data.load(crate::data::Need::TestOnly, out)?.test;
    let mut report = inference::evaluate(&model, &test, &device, &path.display().to_string())?;
    report.checkpoint = epoch;
    out(report.render());
    // A checkpoint's evaluation goes beside the final model's, never over it.
    let file = run.output(EVAL_FILE, epoch);
    report.save(&file)?;
    out(format!("wrote {}", file.display()));
    draw_mistakes(&run, &report, &test, epoch, out)?;
    super::refresh_report(&run, out);
    Ok(report)
}

pub(super) fn draw_mistakes(run: &RunDir, report: &EvalReport, test: &Split, epoch: Option<usize>, out: Out) -> Result<()> {
    if report.mistakes.is_empty() {
        return Ok(());
    }
    let tiles: Vec<PredictionTile> = report
        .mistakes
        .iter()
        .map(|m| PredictionTile {
            pixels: test.image(m.index).to_vec(),
            true_label: m.true_label,
            predicted: m.predicted,
            confidence: Some(m.confidence),
        })
        .collect();
    let file = run.output(MISTAKES_FILE, epoch);
    let (w, h) = plot::draw_predictions(&tiles, &file)?;
    out(format!("wrote {} ({w}x{h}, the {} most confident mistakes)", file.display(), tiles.len()));
    Ok(())
}
