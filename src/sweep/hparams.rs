//! A trial as TensorBoard's HParams tab shows it: the study's swept fields as the experiment,
//! the trial's values when it starts, its status when it ends (written into the trial's `tb/`
//! by [`crate::run::tensorboard::hparams`]); nothing when the recipe turns `tensorboard` off.

use super::journal::State;
use super::space::{Domain, Study};
use super::trials::Trial;
use crate::error::Result;
use crate::run::RunDir;
use crate::run::metrics::HeldOut;
use crate::run::tensorboard::{TB_DIR, epoch_tags, hparams};

/// The study's swept fields as TensorBoard's hparams, with their domains.
fn swept(study: &Study) -> Vec<hparams::HParam> {
    study
        .space
        .iter()
        .map(|p| {
            let domain = match &p.domain {
                Domain::Values(v) => hparams::Domain::Values(v.clone()),
                Domain::Uniform(a, b) | Domain::LogUniform(a, b) => hparams::Domain::Interval(*a, *b),
                Domain::IntLogUniform(a, b) => hparams::Domain::Interval(*a as f64, *b as f64),
            };
            hparams::HParam { name: p.name.clone(), domain }
        })
        .collect()
}

/// Before the trial trains (once, whatever the sessions that train it): the experiment and the
/// trial's swept values, under its number (`003`).
pub fn trial_started(run: &RunDir, study: &Study, trial: &Trial) -> Result<()> {
    if !trial.config.tensorboard {
        return Ok(());
    }
    let [_, _, loss, acc, _] = epoch_tags(HeldOut::Validation);
    let group = format!("{:03}", trial.index);
    hparams::start_session(&run.file(TB_DIR), &swept(study), &[acc, loss], &trial.params, &group).map(drop)
}

/// The trial ended as the journal now says (`Complete`, `Fail` or `Pruned`; other states write nothing).
pub fn trial_ended(run: &RunDir, trial: &Trial, state: State) -> Result<()> {
    let ending = match state {
        State::Complete => hparams::Ending::Success,
        State::Fail => hparams::Ending::Failure,
        State::Pruned => hparams::Ending::Stopped,
        _ => return Ok(()),
    };
    if !trial.config.tensorboard {
        return Ok(());
    }
    hparams::end_session(&run.file(TB_DIR), ending).map(drop)
}
