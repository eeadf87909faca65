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

use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::model::Mlp;

pub const MODEL: &str = "model";
pub const OPTIM: &str = "optim";
pub const SCHEDULER: &str = "scheduler";

pub fn checkpoint_dir(run: &Path) -> PathBuf {
    run.join("checkpoint")
}

pub fn file_for(run: &Path, name: &str, epoch: usize) -> PathBuf {
    checkpoint_dir(run).join(format!("{name}-{epoch}.bpk"))
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
        self.dir.join(format!("{}-{epoch}.bpk", self.name))
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

/// Keep every checkpoint (`None`, the default) or the last `n`.
pub struct Retention {
    pub keep: Option<usize>,
}

impl CheckpointingStrategy for Retention {
    fn checkpointing(&mut self, epoch: usize, _store: &EventStoreClient) -> Vec<CheckpointingAction> {
        let mut actions = vec![CheckpointingAction::Save];
        if let Some(n) = self.keep
            && epoch > n
        {
            actions.push(CheckpointingAction::Delete(epoch - n));
        }
        actions
    }
}

/// Epochs that have a model checkpoint file, ascending.
pub fn epochs_on_disk(run: &Path) -> Vec<usize> {
    let mut epochs: Vec<usize> = std::fs::read_dir(checkpoint_dir(run))
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

fn read_bytes(path: &Path) -> std::result::Result<Bytes, String> {
    std::fs::read(path)
        .map(Bytes::from_bytes_vec)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Load a model record from a `.bpk` file into a model of `cfg`'s architecture.
pub fn load_model_file(path: &Path, cfg: &TrainConfig, device: &Device) -> Result<Mlp> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input(format!(
            "{}: model file not found; train a run first (`train --artifacts DIR`) or pick an existing checkpoint",
            path.display()
        )),
        _ => Error::io("cannot read", path, e),
    })?;
    model_from_bytes(Bytes::from_bytes_vec(bytes), cfg, device)
        .map_err(|m| Error::input(format!("{}: {m}", path.display())))
}

/// Apply a `.bpk` record to a fresh model of `cfg`'s architecture, with a message on mismatch.
pub fn model_from_bytes(bytes: Bytes, cfg: &TrainConfig, device: &Device) -> std::result::Result<Mlp, String> {
    let record = ModuleRecord::from_bytes(bytes).map_err(|e| {
        format!("not a readable Burn record ({e}); the file is damaged or not a model: retrain or restore it")
    })?;
    let fresh = Mlp::new(cfg, device);
    fresh.try_load_record(record).map_err(|e| {
        let msg = e.to_string();
        let detail = first_shape_mismatch(&msg).unwrap_or_else(|| msg.chars().take(160).collect());
        format!(
            "does not fit the run's architecture {} ({detail}); use the config.toml the model was trained with",
            cfg.describe_model()
        )
    })
}

/// `layers.0.weight is [784, 32], expected [784, 16]` from Burn's record validation message.
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

#[cfg(test)]
mod tests {
    #[test]
    fn shape_mismatch_is_summarised() {
        let m = r#"Record validation error: Apply errors: ["layers.0.weight: shape mismatch, expected Shape { dims: [784, 16] } but record has Shape { dims: [784, 32] }", "x"]"#;
        assert_eq!(super::first_shape_mismatch(m).unwrap(), "layers.0.weight is [784, 32], expected [784, 16]");
        assert!(super::first_shape_mismatch("other").is_none());
    }
}

/// Check that all three files of `epoch` exist and parse, and that the model fits `cfg`.
pub fn validate(run: &Path, epoch: usize, cfg: &TrainConfig, device: &Device) -> std::result::Result<(), String> {
    let model = read_bytes(&file_for(run, MODEL, epoch))?;
    model_from_bytes(model, cfg, device).map_err(|m| format!("{}: {m}", file_for(run, MODEL, epoch).display()))?;
    let optim = file_for(run, OPTIM, epoch);
    OptimizerRecord::checkpoint_from_bytes(read_bytes(&optim)?)
        .map_err(|e| format!("{}: unreadable ({e})", optim.display()))?;
    let sched = file_for(run, SCHEDULER, epoch);
    LrSchedulerRecord::checkpoint_from_bytes(read_bytes(&sched)?)
        .map_err(|e| format!("{}: unreadable ({e})", sched.display()))?;
    Ok(())
}

/// The latest epoch whose checkpoint is complete and readable, at most `max_epoch`. Every
/// newer one that fails is reported through `warn` (one line each) and left on disk.
pub fn latest_complete(
    run: &Path,
    cfg: &TrainConfig,
    device: &Device,
    max_epoch: usize,
    mut warn: impl FnMut(String),
) -> Option<usize> {
    for epoch in epochs_on_disk(run).into_iter().rev() {
        if epoch > max_epoch {
            continue;
        }
        match validate(run, epoch, cfg, device) {
            Ok(()) => return Some(epoch),
            Err(why) => warn(format!(
                "warning: checkpoint of epoch {epoch} is incomplete or unreadable ({why}); skipping it (files kept)"
            )),
        }
    }
    None
}
