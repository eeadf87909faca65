//! The training plan: from the options and what the run folder holds, decide the recipe and
//! where to start. Only reads; [`TrainPlan::apply`] makes the folder match the plan.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::config::{Overrides, TrainConfig};
use crate::error::{Error, Result};
use crate::run::checkpoint;
use crate::run::metrics::{self, EpochRow};
use crate::run::{CONFIG_FILE, METRICS_FILE, MODEL_FILE, RunDir};

pub const DEFAULT_CONFIG: &str = "config/default.toml";

/// Everything `train` needs besides the run folder and the data.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// `None`: `config/default.toml` for a new run; the run's own `config.toml` on resume.
    pub config_path: Option<PathBuf>,
    pub overrides: Overrides,
    pub resume: bool,
    pub overwrite: bool,
    pub keep_checkpoints: Option<usize>,
    /// Start from these weights (safetensors in the book's layout) instead of random ones.
    pub init_from: Option<PathBuf>,
    /// The recipe itself (a sweep's trial): takes precedence over `config_path`, which then
    /// only names it in messages. On resume it must equal the run's recipe, as a file would.
    pub config: Option<TrainConfig>,
}

/// Where the run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// An empty folder (or one without a run).
    New,
    /// `--overwrite` of an existing run.
    Overwrite,
    /// The folder holds a run that never finished an epoch (e.g. it diverged): nothing to keep.
    Restart,
    /// `--resume` from the checkpoint of `epoch` (0: no complete checkpoint yet).
    Resume { epoch: usize },
}

#[derive(Debug, Clone)]
pub struct TrainPlan {
    pub run: RunDir,
    pub config: TrainConfig,
    /// Where the recipe came from, for messages about its fields.
    pub config_origin: String,
    pub start: Start,
    /// Rows of `metrics.csv` kept from earlier sessions.
    pub history: Vec<EpochRow>,
    pub keep_checkpoints: Option<usize>,
    pub init_from: Option<PathBuf>,
    /// Things the user should hear about (one line each).
    pub notes: Vec<String>,
    options: TrainOptions,
}

impl TrainPlan {
    pub fn prepare(run: &RunDir, opts: &TrainOptions, device: &Device) -> Result<TrainPlan> {
        check_flags(opts)?;
        run.check_not_file()?;
        let file_cfg = match &opts.config {
            Some(c) => Some(c.clone()),
            None => opts.config_path.as_deref().map(TrainConfig::load).transpose()?,
        };
        let mut plan = TrainPlan {
            run: run.clone(),
            config: TrainConfig::default(),
            config_origin: String::new(),
            start: Start::New,
            history: Vec::new(),
            keep_checkpoints: opts.keep_checkpoints,
            init_from: opts.init_from.clone(),
            notes: Vec::new(),
            options: opts.clone(),
        };
        if opts.resume {
            plan.resume(file_cfg.as_ref(), device)?;
        } else {
            plan.fresh(file_cfg)?;
        }
        if opts.overrides.batch_size.is_some() {
            plan.config_origin = "--batch-size".to_string();
        }
        if let Some(p) = &plan.init_from {
            // Weights that do not fit the recipe are refused before the data is read or the folder touched.
            crate::interchange::load_safetensors_model(p, &plan.config, device)?;
        }
        Ok(plan)
    }

    fn fresh(&mut self, file_cfg: Option<TrainConfig>) -> Result<()> {
        let o = &self.options;
        if self.run.holds_run() {
            let done = self.run.finished_epochs();
            let protected = done > 0 || self.run.file(MODEL_FILE).exists() || !checkpoint::epochs_on_disk(&self.run).is_empty();
            self.start = if o.overwrite {
                Start::Overwrite
            } else if !protected {
                self.notes.push(format!("{}: holds a run with no finished epoch; starting it over", self.run.path().display()));
                Start::Restart
            } else {
                return Err(Error::input(format!(
                    "{}: already holds a run ({done} epoch(s) in metrics.csv); continue it with `train --resume`, pick another --artifacts folder, or pass --overwrite to replace it",
                    self.run.path().display()
                )));
            };
        }
        let (base, origin) = match file_cfg {
            Some(c) => (c, o.config_path.as_deref().map_or_else(|| "the given recipe".to_string(), |p| p.display().to_string())),
            None => (default_recipe()?, DEFAULT_CONFIG.to_string()),
        };
        self.config = base.with_overrides(&o.overrides)?;
        self.config_origin = origin;
        Ok(())
    }

    fn resume(&mut self, file_cfg: Option<&TrainConfig>, device: &Device) -> Result<()> {
        let saved = self.run.load_config()?;
        check_resume_overrides(&saved, &self.options.overrides, file_cfg)?;
        // Besides `epochs`, only what the run writes may change: `tensorboard` from the flag, else
        // from a given recipe (a sweep's), else as saved.
        let o = &self.options;
        let tensorboard = o.overrides.tensorboard.or(o.config.as_ref().map(|c| c.tensorboard));
        let set = o.overrides.set.iter().filter(|s| RESUME_MAY_CHANGE.contains(&s.field.as_str())).cloned().collect();
        let kept = Overrides { set, epochs: o.overrides.epochs, tensorboard, ..Default::default() };
        self.config = saved.with_overrides(&kept)?;
        self.config_origin = self.run.file(CONFIG_FILE).display().to_string();
        let all = metrics::read(&self.run.file(METRICS_FILE))?;
        let mut warnings = Vec::new();
        let latest = checkpoint::latest_complete(&self.run, &self.config, device, |w| warnings.push(w));
        self.notes.extend(warnings);
        let epoch = latest.unwrap_or(0);
        let dropped = all.iter().filter(|r| r.epoch > epoch).count();
        if latest.is_none() {
            self.notes.push("no complete checkpoint yet: starting this run from epoch 1".to_string());
        } else if dropped > 0 {
            self.notes.push(format!(
                "metrics.csv: dropping {dropped} row(s) after epoch {epoch}, which has the latest complete checkpoint"
            ));
        }
        self.history = all.into_iter().filter(|r| r.epoch <= epoch).collect();
        self.start = Start::Resume { epoch };
        Ok(())
    }

    /// The epoch training starts after (0 for a new run).
    pub fn start_epoch(&self) -> usize {
        match self.start {
            Start::Resume { epoch } => epoch,
            _ => 0,
        }
    }

    /// A resumed run that already has its target epochs, or whose patience ran out.
    pub fn is_done(&self) -> bool {
        self.start_epoch() >= self.config.epochs || self.stopped_early().is_some()
    }

    /// A resumed run that patience already stopped: (its best epoch, the last one trained).
    pub fn stopped_early(&self) -> Option<(usize, usize)> {
        let s = self.selection(&self.history)?;
        s.stopped_after.map(|last| (s.best_epoch, last))
    }

    /// With a validation split: the epoch `rows` select as the run's model, and an early stop.
    pub fn selection(&self, rows: &[EpochRow]) -> Option<super::best::Selection> {
        (self.config.val_size > 0).then(|| super::best::select(rows, self.config.patience)).flatten()
    }

    /// The batch must fit the training split.
    pub fn check_data(&self, train_images: usize) -> Result<()> {
        if self.config.batch_size <= train_images {
            return Ok(());
        }
        Err(Error::config(format!(
            "{}: field `batch_size` ({}) is larger than the training set ({train_images} images); use a batch size of at most {train_images}",
            self.config_origin, self.config.batch_size
        )))
    }

    /// Make the folder match the plan: replace an old run, clear temp files of an interrupted
    /// write, and save the recipe and the kept metrics before any epoch is trained.
    pub fn apply(&self, held: metrics::HeldOut) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        match self.start {
            Start::Overwrite => {
                notes.push(format!("--overwrite: replacing the run in {}", self.run.path().display()));
                self.run.remove_run()?;
            }
            Start::Restart => self.run.remove_run()?,
            Start::Resume { .. } => {
                let stale = crate::fsutil::remove_stale_temps(self.run.path())
                    + crate::fsutil::remove_stale_temps(&self.run.checkpoint_dir());
                if stale > 0 {
                    notes.push(format!("removed {stale} temp file(s) left by an interrupted write"));
                }
            }
            Start::New => {}
        }
        self.config.save(&self.run.file(CONFIG_FILE))?;
        metrics::write_as(&self.run.file(METRICS_FILE), &self.history, held)?;
        if self.start_epoch() == 0 {
            // A restarted run must not keep a final model from an earlier attempt.
            let _ = std::fs::remove_file(self.run.file(MODEL_FILE));
        }
        Ok(notes)
    }

    /// The command that retries this run with learning rate `lr` from scratch.
    pub fn retry_command(&self, lr: f64) -> String {
        let o = &self.options;
        let mut cmd = format!("train --artifacts {}", self.run.path().display());
        if !self.history.is_empty() || o.resume {
            cmd.push_str(" --overwrite");
        }
        if let Some(p) = &o.config_path {
            cmd.push_str(&format!(" --config {}", p.display()));
        } else if o.resume {
            // The recipe lives in the run folder that --overwrite replaces: pass its fields.
            cmd.push_str(&format!(" --batch-size {} --seed {}", self.config.batch_size, self.config.seed));
            for (field, value) in changed_fields(&self.config) {
                cmd.push_str(&format!(" --set {}", shell_word(&format!("{field}={value}"))));
            }
        }
        cmd.push_str(&format!(" --epochs {} --lr {lr}", self.config.epochs));
        if o.resume {
            return cmd;
        }
        for s in o.overrides.set.iter().filter(|s| !matches!(s.field.as_str(), "lr" | "epochs")) {
            cmd.push_str(&format!(" --set {}", shell_word(&s.text)));
        }
        let flags = [("--batch-size", o.overrides.batch_size.map(|v| v.to_string())), ("--seed", o.overrides.seed.map(|v| v.to_string())), ("--val-size", o.overrides.val_size.map(|v| v.to_string())), ("--patience", o.overrides.patience.map(|v| v.to_string()))];
        for (flag, v) in flags {
            if let Some(v) = v {
                cmd.push_str(&format!(" {flag} {v}"));
            }
        }
        cmd
    }
}

/// Recipe fields (besides the ones a retry passes as flags) where `cfg` differs from the
/// book's recipe, as (field, TOML value).
fn changed_fields(cfg: &TrainConfig) -> Vec<(&'static str, String)> {
    let book = TrainConfig::default();
    crate::config::FIELDS
        .into_iter()
        .filter(|f| !matches!(*f, "epochs" | "lr" | "batch_size" | "seed"))
        .filter(|f| cfg.field_text(f) != book.field_text(f))
        .map(|f| (f, cfg.field_text(f)))
        .collect()
}

/// `word` as one shell word: as it is when it holds nothing a shell reads, else single-quoted.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "_-=.,/+:@%".contains(c));
    if plain { word.to_string() } else { format!("'{}'", word.replace('\'', "'\\''")) }
}

/// The recipe the options give, checked without touching the run folder, so that bad input
/// fails before the folder is created or locked.
pub fn check_recipe(run: &RunDir, opts: &TrainOptions) -> Result<()> {
    let file_cfg = opts.config_path.as_deref().map(TrainConfig::load).transpose()?;
    if opts.resume {
        return check_resume_overrides(&run.load_config()?, &opts.overrides, file_cfg.as_ref());
    }
    let base = match file_cfg {
        Some(c) => c,
        None => default_recipe()?,
    };
    base.with_overrides(&opts.overrides).map(drop)
}

/// Flags that contradict each other, refused before anything is read.
pub fn check_flags(opts: &TrainOptions) -> Result<()> {
    if opts.resume && opts.overwrite {
        return Err(Error::input(
            "--resume and --overwrite contradict each other: --resume continues the run, --overwrite replaces it; pass one",
        ));
    }
    if let Some(0) = opts.keep_checkpoints {
        return Err(Error::input("--keep-checkpoints must be at least 1 (a run needs its latest checkpoint to resume)"));
    }
    Ok(())
}

/// `config/default.toml` when run from the repository; outside it the defaults are the recipe.
fn default_recipe() -> Result<TrainConfig> {
    let path = Path::new(DEFAULT_CONFIG);
    if path.exists() { TrainConfig::load(path) } else { Ok(TrainConfig::default()) }
}

/// The recipe fields a resume may change: the target, and what the run writes.
const RESUME_MAY_CHANGE: [&str; 2] = ["epochs", "tensorboard"];

/// Refuse recipe changes on resume; only `epochs` (and what the run writes) may change.
fn check_resume_overrides(saved: &TrainConfig, o: &Overrides, from_file: Option<&TrainConfig>) -> Result<()> {
    let mut refused = Vec::new();
    // The same value as the run's is no change: a script may repeat its flags on resume.
    let wanted = saved.clone().with_overrides(o)?;
    for (field, flag) in o.shorthands() {
        if !RESUME_MAY_CHANGE.contains(&field) && wanted.field_text(field) != saved.field_text(field) {
            refused.push(format!("{flag} (run has {})", saved.field_text(field)));
        }
    }
    for s in &o.set {
        if !RESUME_MAY_CHANGE.contains(&s.field.as_str()) && wanted.field_text(&s.field) != saved.field_text(&s.field) {
            refused.push(format!("--set {} (run has {})", s.shown(), saved.field_text(&s.field)));
        }
    }
    if let Some(f) = from_file
        && !(TrainConfig { epochs: saved.epochs, ..f.clone() }).same_recipe(saved)
    {
        refused.push("--config (its recipe differs from the run's config.toml)".to_string());
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(Error::input(format!(
        "--resume continues the run with its saved recipe; refused: {}; only --epochs may change (start a new run with another --artifacts to change the recipe)",
        refused.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        crate::backend::cpu_device()
    }

    fn opts() -> TrainOptions {
        TrainOptions { overrides: Overrides { epochs: Some(3), ..Default::default() }, ..Default::default() }
    }

    /// A folder holding a run with `epochs` finished rows (and no checkpoints).
    fn run_with_rows(dir: &Path, epochs: usize) -> RunDir {
        let run = RunDir::new(dir.join("r"));
        run.ensure_writable().unwrap();
        TrainConfig { epochs: 3, lr: 0.2, ..TrainConfig::default() }.save(&run.file(CONFIG_FILE)).unwrap();
        let rows: Vec<EpochRow> = (1..=epochs)
            .map(|e| EpochRow { epoch: e, train_loss: 1.0, train_acc: 0.5, test_loss: 1.0, test_acc: 0.5, seconds: 1.0 })
            .collect();
        metrics::write(&run.file(METRICS_FILE), &rows).unwrap();
        run
    }

    #[test]
    fn a_new_run_takes_the_recipe_and_the_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let plan = TrainPlan::prepare(&RunDir::new(dir.path().join("new")), &opts(), &device()).unwrap();
        assert_eq!(plan.start, Start::New);
        assert_eq!(plan.config, TrainConfig { epochs: 3, ..TrainConfig::default() });
        assert!(!dir.path().join("new").exists(), "prepare must not create the folder");
    }

    #[test]
    fn a_finished_run_is_protected_unless_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_with_rows(dir.path(), 2);
        let e = TrainPlan::prepare(&run, &opts(), &device()).unwrap_err().to_string();
        assert!(e.contains("already holds a run (2 epoch(s)") && e.contains("--overwrite"), "{e}");
        let plan = TrainPlan::prepare(&run, &TrainOptions { overwrite: true, ..opts() }, &device()).unwrap();
        assert_eq!(plan.start, Start::Overwrite);
    }

    #[test]
    fn a_run_without_a_finished_epoch_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_with_rows(dir.path(), 0);
        let plan = TrainPlan::prepare(&run, &opts(), &device()).unwrap();
        assert_eq!(plan.start, Start::Restart);
        assert!(plan.notes[0].contains("starting it over"), "{:?}", plan.notes);
        assert_eq!(plan.retry_command(0.01), format!("train --artifacts {} --epochs 3 --lr 0.01", run.path().display()));
    }

    #[test]
    fn resume_keeps_the_saved_recipe_and_refuses_other_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_with_rows(dir.path(), 2);
        let resume = TrainOptions { resume: true, overrides: Overrides { epochs: Some(5), ..Default::default() }, ..Default::default() };
        let plan = TrainPlan::prepare(&run, &resume, &device()).unwrap();
        // No checkpoint on disk: start again from epoch 1, dropping the rows.
        assert_eq!(plan.start, Start::Resume { epoch: 0 });
        assert_eq!((plan.config.epochs, plan.config.lr), (5, 0.2));
        assert!(plan.history.is_empty());
        let changed = TrainOptions { overrides: Overrides { lr: Some(0.5), seed: Some(1), ..Default::default() }, ..resume };
        let e = TrainPlan::prepare(&run, &changed, &device()).unwrap_err().to_string();
        assert!(e.contains("refused: --lr (run has 0.2), --seed (run has 42)"), "{e}");
    }

    #[test]
    fn retries_repeat_the_set_fields_and_a_resumed_run_passes_its_recipe() {
        let dir = tempfile::tempdir().unwrap();
        let set = crate::config::parse_settings(&["hidden=[16, 8]".to_string(), "lr=5".to_string(), "dropout=0.1".to_string()]).unwrap();
        let o = TrainOptions { overrides: Overrides { set, val_size: Some(64), ..opts().overrides }, ..opts() };
        let plan = TrainPlan::prepare(&RunDir::new(dir.path().join("n")), &o, &device()).unwrap();
        assert_eq!(plan.retry_command(0.5), format!("train --artifacts {} --epochs 3 --lr 0.5 --set 'hidden=[16, 8]' --set dropout=0.1 --val-size 64", dir.path().join("n").display()));
        // On resume the recipe is in the folder --overwrite replaces: its changed fields are passed.
        let run = run_with_rows(dir.path(), 1);
        TrainConfig { epochs: 3, lr: 0.2, hidden: vec![64], val_size: 100, patience: Some(2), ..TrainConfig::default() }.save(&run.file(CONFIG_FILE)).unwrap();
        let plan = TrainPlan::prepare(&run, &TrainOptions { resume: true, ..Default::default() }, &device()).unwrap();
        assert_eq!(
            plan.retry_command(0.02),
            format!("train --artifacts {} --overwrite --batch-size 256 --seed 42 --set 'hidden=[64]' --set val_size=100 --set patience=2 --epochs 3 --lr 0.02", run.path().display())
        );
    }

    #[test]
    fn a_given_recipe_wins_over_the_file_and_must_match_on_resume() {
        let dir = tempfile::tempdir().unwrap();
        let given = TrainConfig { lr: 0.3, hidden: vec![8], ..TrainConfig::default() };
        let o = TrainOptions { config: Some(given.clone()), config_path: Some(dir.path().join("absent.toml")), ..opts() };
        let plan = TrainPlan::prepare(&RunDir::new(dir.path().join("n")), &o, &device()).unwrap();
        assert_eq!(plan.config, TrainConfig { epochs: 3, ..given.clone() });
        assert!(plan.config_origin.ends_with("absent.toml"), "{}", plan.config_origin);
        let run = run_with_rows(dir.path(), 1);
        let resume = TrainOptions { resume: true, config: Some(given), ..opts() };
        let e = TrainPlan::prepare(&run, &resume, &device()).unwrap_err().to_string();
        assert!(e.contains("refused: --config"), "{e}");
        let saved = TrainOptions { config: Some(run.load_config().unwrap()), ..resume };
        assert_eq!(TrainPlan::prepare(&run, &saved, &device()).unwrap().config.epochs, 3);
        // What the run writes is not its recipe: a given recipe's `tensorboard` is taken, not refused.
        let quiet = TrainOptions { config: Some(TrainConfig { tensorboard: false, ..run.load_config().unwrap() }), ..saved };
        assert!(!TrainPlan::prepare(&run, &quiet, &device()).unwrap().config.tensorboard);
    }

    #[test]
    fn resume_keeps_the_saved_tensorboard_unless_the_flag_says_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_with_rows(dir.path(), 1);
        TrainConfig { epochs: 3, lr: 0.2, tensorboard: false, ..TrainConfig::default() }.save(&run.file(CONFIG_FILE)).unwrap();
        let resume = TrainOptions { resume: true, ..Default::default() };
        assert!(!TrainPlan::prepare(&run, &resume, &device()).unwrap().config.tensorboard);
        let on = TrainOptions { overrides: Overrides { tensorboard: Some(true), ..Default::default() }, ..resume };
        assert!(TrainPlan::prepare(&run, &on, &device()).unwrap().config.tensorboard);
    }

    #[test]
    fn contradictory_flags_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let both = TrainOptions { resume: true, overwrite: true, ..opts() };
        assert!(TrainPlan::prepare(&run, &both, &device()).unwrap_err().to_string().contains("contradict"));
        let zero = TrainOptions { keep_checkpoints: Some(0), ..opts() };
        assert!(TrainPlan::prepare(&run, &zero, &device()).unwrap_err().to_string().contains("at least 1"));
    }

    #[test]
    fn the_batch_must_fit_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let o = TrainOptions { overrides: Overrides { batch_size: Some(500), ..Default::default() }, ..opts() };
        let plan = TrainPlan::prepare(&RunDir::new(dir.path().join("x")), &o, &device()).unwrap();
        let e = plan.check_data(100).unwrap_err().to_string();
        assert!(e.starts_with("--batch-size: field `batch_size` (500)"), "{e}");
        assert!(plan.check_data(500).is_ok());
    }
}
