//! A run folder: its layout, creating and opening it, its saved recipe and models, and the
//! lock that makes one process its only writer.

pub mod checkpoint;
pub mod info;
pub mod lock;
pub mod metrics;
pub mod tensorboard;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;

use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::model::Mlp;

pub use lock::RunLock;

pub const CONFIG_FILE: &str = "config.toml";
pub const METRICS_FILE: &str = "metrics.csv";
pub const MODEL_FILE: &str = "model.bpk";
pub const CURVES_FILE: &str = "curves.png";
pub const EVAL_FILE: &str = "eval.json";
pub const PREDICTIONS_FILE: &str = "predictions.png";
pub const MISTAKES_FILE: &str = "mistakes.png";
pub const SAFETENSORS_FILE: &str = "model.safetensors";
pub const INFO_FILE: &str = "run.json";
pub const REPORT_FILE: &str = "report.html";
pub const CHECKPOINT_DIR: &str = "checkpoint";

/// Files and folders a run consists of (what `--overwrite` replaces; nothing else is touched).
const RUN_ENTRIES: [&str; 15] = [
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    CURVES_FILE,
    CHECKPOINT_DIR,
    "train",
    "valid",
    "experiment.log",
    EVAL_FILE,
    PREDICTIONS_FILE,
    MISTAKES_FILE,
    SAFETENSORS_FILE,
    INFO_FILE,
    REPORT_FILE,
    tensorboard::TB_DIR,
];

/// What `eval`, `predict` write for a checkpoint instead of the final model: the file's name with
/// the epoch, `eval.json` -> `eval-epoch-003.json`, so the run's own figures stay its final model's.
pub fn checkpoint_name(name: &str, epoch: usize) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}-epoch-{epoch:03}.{ext}"),
        None => format!("{name}-epoch-{epoch:03}"),
    }
}

/// The epoch of a file named by [`checkpoint_name`] after `name` (`eval-epoch-003.json` -> 3).
pub fn checkpoint_of(file: &str, name: &str) -> Option<usize> {
    let (stem, ext) = name.rsplit_once('.')?;
    let digits = file.strip_prefix(stem)?.strip_prefix("-epoch-")?.strip_suffix(ext)?.strip_suffix('.')?;
    digits.bytes().all(|b| b.is_ascii_digit()).then(|| digits.parse().ok()).flatten()
}

/// A run folder (`artifacts/` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn checkpoint_dir(&self) -> PathBuf {
        self.path.join(CHECKPOINT_DIR)
    }

    /// A short name for the run (its last path component).
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// The folder as the user should see it in messages: as given, plus where it resolved to
    /// when it was given relative (running from a subfolder is a common surprise).
    pub fn shown(&self) -> String {
        match std::path::absolute(&self.path) {
            Ok(abs) if self.path.is_relative() => format!("{} ({})", self.path.display(), abs.display()),
            _ => self.path.display().to_string(),
        }
    }

    /// Refuse a path that exists but is a file.
    pub fn check_not_file(&self) -> Result<()> {
        if self.path.exists() && !self.path.is_dir() {
            return Err(Error::input(format!(
                "{}: is a file, not a folder; pass a folder with --artifacts",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Does the folder hold a run (or the remains of one)?
    pub fn holds_run(&self) -> bool {
        [CONFIG_FILE, METRICS_FILE, MODEL_FILE].iter().any(|f| self.file(f).exists())
            || !checkpoint::epochs_on_disk(self).is_empty()
    }

    /// Epochs with a row in `metrics.csv` (0 when the file is missing or unreadable).
    pub fn finished_epochs(&self) -> usize {
        metrics::read(&self.file(METRICS_FILE)).map(|r| r.len()).unwrap_or(0)
    }

    /// Load the configuration saved in the run folder.
    pub fn load_config(&self) -> Result<TrainConfig> {
        let shown = self.shown();
        if !self.path.exists() {
            return Err(Error::input(format!(
                "{shown}: no such run folder; train one with `train --artifacts {}` or pass the right --artifacts",
                self.path.display()
            )));
        }
        self.check_not_file()?;
        if !self.file(CONFIG_FILE).exists() && self.file(crate::sweep::STUDY_FILE).exists() {
            let dir = self.path.display();
            return Err(Error::input(format!(
                "{shown}: is a sweep folder (its study is sweep.toml), not a run; pass one of its runs, {dir}/best (the refit of the best trial) or {dir}/trials/NNN (a trial), or see the whole study with `report --artifacts {dir}`"
            )));
        }
        if !self.file(CONFIG_FILE).exists() {
            return Err(Error::input(format!(
                "{shown}: no run here (config.toml is missing); train one with `train --artifacts {}`, or restore the run's config.toml",
                self.path.display()
            )));
        }
        TrainConfig::load(&self.file(CONFIG_FILE))
    }

    /// Create the folder if needed and prove it is writable.
    pub fn ensure_writable(&self) -> Result<()> {
        self.check_not_file()?;
        std::fs::create_dir_all(&self.path).map_err(|e| {
            Error::input_with(format!("{}: cannot create the artifacts folder", self.path.display()), e)
                .fix("choose a writable folder with --artifacts")
        })?;
        tempfile::Builder::new().prefix(".write-test-").tempfile_in(&self.path).map(drop).map_err(|e| {
            Error::input_with(format!("{}: the artifacts folder is not writable", self.path.display()), e)
                .fix("choose another with --artifacts or fix its permissions")
        })
    }

    /// Remove every file of the run (for `--overwrite`); anything else in the folder stays.
    pub fn remove_run(&self) -> Result<()> {
        let of_checkpoints = self.checkpoint_outputs();
        for p in RUN_ENTRIES.iter().map(|n| self.file(n)).chain(of_checkpoints) {
            let res = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else if p.exists() {
                std::fs::remove_file(&p)
            } else {
                Ok(())
            };
            res.map_err(|e| Error::io("cannot remove", &p, e))?;
        }
        Ok(())
    }

    /// The file a command writes for `name` (e.g. `eval.json`): as named for the final model,
    /// else named after the checkpoint's epoch ([`checkpoint_name`]).
    pub fn output(&self, name: &str, epoch: Option<usize>) -> PathBuf {
        match epoch {
            None => self.file(name),
            Some(e) => self.file(&checkpoint_name(name, e)),
        }
    }

    /// The files `eval --checkpoint` and `predict --checkpoint` wrote here.
    fn checkpoint_outputs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        let ours = |n: &str| [EVAL_FILE, MISTAKES_FILE, PREDICTIONS_FILE].iter().any(|f| checkpoint_of(n, f).is_some());
        entries.flatten().filter(|e| ours(&e.file_name().to_string_lossy())).map(|e| e.path()).collect()
    }

    /// The model of the run: `model.bpk`, or the checkpoint of `epoch`. Returns it with the
    /// run's recipe and the file it came from.
    pub fn load_model(&self, epoch: Option<usize>, device: &Device) -> Result<(Mlp, TrainConfig, PathBuf)> {
        let cfg = self.load_config()?;
        let path = match epoch {
            None => self.file(MODEL_FILE),
            Some(e) => checkpoint::file_for(self, checkpoint::MODEL, e),
        };
        if !path.exists() {
            let available = checkpoint::epochs_on_disk(self);
            let hint = match epoch {
                None => format!(
                    "the run has no final model yet; finish it with `train --resume --artifacts {}` or pass --checkpoint EPOCH",
                    self.path.display()
                ),
                Some(_) if available.is_empty() => "the run has no checkpoints".to_string(),
                Some(_) => format!("available checkpoints: {available:?}"),
            };
            return Err(Error::input(format!("{}: not found; {hint}", path.display())));
        }
        let model = checkpoint::load_model_file(&path, &cfg, device)?;
        Ok((model, cfg, path))
    }

    /// Save the final model record atomically.
    pub fn save_model(&self, model: &Mlp) -> Result<()> {
        save_model(model, &self.file(MODEL_FILE))
    }

    /// Take the run's writer lock (see [`RunLock`]).
    pub fn lock(&self) -> Result<RunLock> {
        RunLock::acquire(self)
    }
}

/// Save a model record (`.bpk`) atomically.
pub fn save_model(model: &Mlp, path: &Path) -> Result<()> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| Error::failure_with(format!("cannot encode the model for {}", path.display()), e))?;
    atomic_write(path, &bytes).map_err(|e| Error::io("cannot write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_outputs_carry_their_epoch() {
        assert_eq!(checkpoint_name(EVAL_FILE, 3), "eval-epoch-003.json");
        assert_eq!(checkpoint_name(MISTAKES_FILE, 12), "mistakes-epoch-012.png");
        assert_eq!(checkpoint_of("eval-epoch-003.json", EVAL_FILE), Some(3));
        assert_eq!(checkpoint_of("eval-epoch-1000.json", EVAL_FILE), Some(1000));
        for other in ["eval.json", "eval-epoch-.json", "eval-epoch-3.png", "mistakes-epoch-003.png", "eval-epoch-0x3.json"] {
            assert_eq!(checkpoint_of(other, EVAL_FILE), None, "{other}");
        }
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        assert_eq!(run.output(EVAL_FILE, None), dir.path().join("eval.json"));
        assert_eq!(run.output(EVAL_FILE, Some(3)), dir.path().join("eval-epoch-003.json"));
    }
}
