//! Checkpoints: Burn's per-epoch model/optimizer/scheduler records (`checkpoint/*-N.bpk`),
//! written atomically, validated before a resume, and pruned by our retention rule.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::OptimizerRecord;
use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use burn::train::checkpoint::{
    Checkpoint, Checkpointer, CheckpointerError, CheckpointingAction, CheckpointingStrategy,
};
use burn::train::metric::store::EventStoreClient;

use super::RunDir;
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::model::Mlp;

pub const MODEL: &str = "model";
pub const OPTIM: &str = "optim";
pub const SCHEDULER: &str = "scheduler";

/// The one place that knows how checkpoint files are named.
fn file_name(name: &str, epoch: usize) -> String {
    format!("{name}-{epoch}.bpk")
}

pub fn file_for(run: &RunDir, name: &str, epoch: usize) -> PathBuf {
    run.checkpoint_dir().join(file_name(name, epoch))
}

/// Burn's file checkpointer writes in place; this one writes a temp file and renames it, so a
/// checkpoint file either is complete or does not exist, even under SIGKILL.
pub struct AtomicFileCheckpointer {
    dir: PathBuf,
    name: &'static str,
}

impl AtomicFileCheckpointer {
    pub fn new(dir: &Path, name: &'static str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            name,
        }
    }

    fn path(&self, epoch: usize) -> PathBuf {
        self.dir.join(file_name(self.name, epoch))
    }
}

impl<R: Checkpoint> Checkpointer<R> for AtomicFileCheckpointer {
    fn save(&self, epoch: usize, record: R) -> std::result::Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        std::fs::create_dir_all(&self.dir).map_err(CheckpointerError::IOError)?;
        atomic_write(&self.path(epoch), &bytes).map_err(CheckpointerError::IOError)
    }

    fn restore(&self, epoch: usize) -> std::result::Result<R, CheckpointerError> {
        let bytes = std::fs::read(self.path(epoch)).map_err(CheckpointerError::IOError)?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes)).map_err(CheckpointerError::Record)
    }

    fn delete(&self, epoch: usize) -> std::result::Result<(), CheckpointerError> {
        match std::fs::remove_file(self.path(epoch)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CheckpointerError::IOError(e)),
            _ => Ok(()),
        }
    }
}

/// Keep every checkpoint (`None`, the default) or the last `n` of the whole run folder,
/// whatever session wrote them (so `--keep-checkpoints` also applies to a resumed run).
pub struct Retention {
    pub run: RunDir,
    pub keep: Option<usize>,
    /// Epochs saved in this session: Burn writes checkpoints in the background, so the last
    /// one may not be on disk yet when the next epoch decides what to delete.
    pub saved: Vec<usize>,
    /// An epoch kept whatever its age (a run with a validation split: its best epoch so far,
    /// whose model becomes the run's).
    pub protect: Option<Box<dyn Fn() -> Option<usize> + Send>>,
}

impl Retention {
    /// Record that `epoch` is being saved and return the epochs to delete.
    fn stale(&mut self, epoch: usize) -> Vec<usize> {
        let mut stale = Vec::new();
        if let Some(n) = self.keep {
            let oldest_kept = (epoch + 1).saturating_sub(n);
            let mut known = epochs_on_disk(&self.run);
            known.extend(self.saved.iter().filter(|e| !known.contains(e)).copied().collect::<Vec<_>>());
            let kept = self.protect.as_ref().and_then(|f| f());
            stale = known.into_iter().filter(|&e| e < oldest_kept && e != epoch && Some(e) != kept).collect();
            self.saved.retain(|&e| e >= oldest_kept);
        }
        self.saved.push(epoch);
        stale
    }
}

impl CheckpointingStrategy for Retention {
    fn checkpointing(&mut self, epoch: usize, _store: &EventStoreClient) -> Vec<CheckpointingAction> {
        let mut actions = vec![CheckpointingAction::Save];
        actions.extend(self.stale(epoch).into_iter().map(CheckpointingAction::Delete));
        actions
    }
}

/// Epochs that have a model checkpoint file, ascending.
pub fn epochs_on_disk(run: &RunDir) -> Vec<usize> {
    let mut epochs: Vec<usize> = std::fs::read_dir(run.checkpoint_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix("model-")?.strip_suffix(".bpk")?.parse().ok()
        })
        .collect();
    epochs.sort_unstable();
    epochs
}

fn read_bytes(path: &Path) -> Result<Bytes> {
    std::fs::read(path).map(Bytes::from_bytes_vec).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input_with(format!("{}: model file not found", path.display()), e)
            .fix("train a run first (`train --artifacts DIR`) or pick an existing checkpoint")
            .paraphrased(),
        _ => Error::io("cannot read", path, e),
    })
}

/// Load a model record for the architecture of `cfg`; non-finite weights are refused.
pub fn load_model_file(path: &Path, cfg: &TrainConfig, device: &Device) -> Result<Mlp> {
    let model = model_from_bytes(read_bytes(path)?, cfg, device, path)?;
    crate::interchange::ensure_finite(&model, path)?;
    Ok(model)
}

/// The model in a record read from `path`, or why it does not load (one line).
fn model_from_bytes(bytes: Bytes, cfg: &TrainConfig, device: &Device, path: &Path) -> Result<Mlp> {
    let record = ModuleRecord::from_bytes(bytes).map_err(|e| {
        Error::input_with(format!("{}: not a readable Burn record", path.display()), e)
            .fix("the file is damaged or not a model: retrain or restore it")
    })?;
    Mlp::new(cfg, device).try_load_record(record).map_err(|e| {
        let msg = e.to_string();
        let detail = first_shape_mismatch(&msg).unwrap_or_else(|| msg.chars().take(160).collect());
        Error::input_with(format!("{}: does not fit the run's architecture {} ({detail})", path.display(), cfg.describe_model()), e)
            .fix("use the config.toml the model was trained with")
            .paraphrased()
    })
}

/// Burn's load error lists every mismatch over many lines; the first one says enough.
fn first_shape_mismatch(msg: &str) -> Option<String> {
    let dims_after = |text: &str, marker: &str| -> Option<String> {
        let rest = &text[text.find(marker)? + marker.len()..];
        Some(rest[..=rest.find(']')?].to_string())
    };
    let start = msg.find("layers.")?;
    let item = &msg[start..];
    let name = &item[..item.find(':')?];
    let expected = dims_after(item, "expected Shape { dims: ")?;
    let found = dims_after(item, "record has Shape { dims: ")?;
    Some(format!("{name} is {found}, expected {expected}"))
}

/// All three records of `epoch` exist and load.
pub fn validate(run: &RunDir, epoch: usize, cfg: &TrainConfig, device: &Device) -> Result<()> {
    load_model_file(&file_for(run, MODEL, epoch), cfg, device)?;
    let unreadable = |path: &Path, e: crate::error::Cause| Error::input_with(format!("{}: unreadable", path.display()), e);
    let optim = file_for(run, OPTIM, epoch);
    OptimizerRecord::checkpoint_from_bytes(read_bytes(&optim)?).map_err(|e| unreadable(&optim, e.into()))?;
    let sched = file_for(run, SCHEDULER, epoch);
    LrSchedulerRecord::checkpoint_from_bytes(read_bytes(&sched)?).map_err(|e| unreadable(&sched, e.into()))?;
    Ok(())
}

/// The latest epoch whose checkpoint is complete and readable; broken ones are reported through
/// `warn` and skipped (their files are kept).
pub fn latest_complete(run: &RunDir, cfg: &TrainConfig, device: &Device, mut warn: impl FnMut(String)) -> Option<usize> {
    for epoch in epochs_on_disk(run).into_iter().rev() {
        match validate(run, epoch, cfg, device) {
            Ok(()) => return Some(epoch),
            Err(why) => warn(format!(
                "warning: checkpoint of epoch {epoch} is incomplete or unreadable ({why}); skipping it (files kept)"
            )),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_deletes_checkpoints_not_yet_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Retention { run: RunDir::new(dir.path()), keep: Some(1), saved: Vec::new(), protect: None };
        assert!(r.stale(1).is_empty());
        // Epoch 1's file was never written (as when the background writer lags): still deleted.
        assert_eq!(r.stale(2), [1]);
        assert_eq!(r.stale(3), [2]);
        let mut all = Retention { run: RunDir::new(dir.path()), keep: None, saved: Vec::new(), protect: None };
        assert!(all.stale(1).is_empty() && all.stale(2).is_empty());
    }

    #[test]
    fn retention_keeps_the_protected_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Retention { run: RunDir::new(dir.path()), keep: Some(1), saved: Vec::new(), protect: Some(Box::new(|| Some(1))) };
        assert!(r.stale(1).is_empty());
        assert!(r.stale(2).is_empty(), "epoch 1 is protected");
        // Epoch 1 is no longer among those saved this session, nor on disk here: nothing left to delete but 2.
        assert_eq!(r.stale(3), [2]);
    }

    #[test]
    fn shape_mismatch_is_summarised() {
        let m = r#"Record validation error: Apply errors: ["layers.0.weight: shape mismatch, expected Shape { dims: [784, 16] } but record has Shape { dims: [784, 32] }", "x"]"#;
        assert_eq!(first_shape_mismatch(m).unwrap(), "layers.0.weight is [784, 32], expected [784, 16]");
        assert!(first_shape_mismatch("other").is_none());
    }
}
