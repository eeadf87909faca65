//! Training with Burn's `SupervisedTraining` (the Learner): run folders, resume, per-epoch
//! output and `metrics.csv`, Ctrl-C, and divergence.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use burn::module::Module;
use burn::optim::SgdConfig;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{AccuracyMetric, LossMetric, MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation, MetricsRendererTraining,
};
use burn::train::{Interrupter, Learner, LearnerSummary, SupervisedTraining};

use crate::backend::{self, BackendKind};
use crate::checkpoint::{self, AtomicFileCheckpointer, Retention};
use crate::config::{Overrides, TrainConfig};
use crate::data::{self, FashionMnist};
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::loader::BatchLoader;
use crate::metrics::{self, EpochRow};
use crate::model::Mlp;

pub const CONFIG_FILE: &str = "config.toml";
pub const METRICS_FILE: &str = "metrics.csv";
pub const MODEL_FILE: &str = "model.bpk";
pub const CURVES_FILE: &str = "curves.png";

/// Files and folders a run consists of (what `--overwrite` replaces; nothing else is touched).
const RUN_ENTRIES: [&str; 10] = [
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    CURVES_FILE,
    "checkpoint",
    "train",
    "valid",
    "experiment.log",
    "eval.json",
    "predictions.png",
];

/// Where to find the data and how to check it.
#[derive(Debug, Clone, Default)]
pub struct DataOptions {
    pub data_dir: Option<PathBuf>,
    /// Skip the pinned SHA-256 check (for custom IDX data).
    pub skip_checksum: bool,
}

/// Everything `train` needs besides the recipe.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub artifacts: PathBuf,
    /// `None`: `config/default.toml` for a new run; the run's own `config.toml` on resume.
    pub config_path: Option<PathBuf>,
    pub overrides: Overrides,
    pub data: DataOptions,
    pub backend: Option<BackendKind>,
    pub resume: bool,
    pub overwrite: bool,
    pub keep_checkpoints: Option<usize>,
    /// Start from these weights (safetensors in the book's layout) instead of random ones.
    pub init_from: Option<PathBuf>,
    /// Draw `curves.png` after every epoch.
    pub plots: bool,
    /// Print the per-epoch lines.
    pub echo_epochs: bool,
}

/// What a finished `train` reports.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub run_dir: PathBuf,
    pub rows: Vec<EpochRow>,
    pub config: TrainConfig,
    /// Seconds of the training and of the test split of each epoch trained in this call.
    pub split_seconds: Vec<(f64, f64)>,
    /// Images in the training and the test split.
    pub split_sizes: (usize, usize),
}

pub const DEFAULT_CONFIG: &str = "config/default.toml";

/// A training batch's mean loss at or above this (or NaN/inf) means the run diverged. The
/// cross-entropy is computed stably, so a too-large learning rate shows up as an explosion
/// (1e3 is ~430x the loss of a uniform guess over 10 classes, ln 10) before, or instead of, NaN.
pub const EXPLODED_LOSS: f64 = 1e3;

/// Does `dir` hold a run (or the remains of one)?
pub fn is_run(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).exists()
        || dir.join(METRICS_FILE).exists()
        || dir.join(MODEL_FILE).exists()
        || !checkpoint::epochs_on_disk(dir).is_empty()
}

/// Load the configuration saved in a run folder.
pub fn load_run_config(dir: &Path) -> Result<TrainConfig> {
    let path = dir.join(CONFIG_FILE);
    if !dir.exists() {
        return Err(Error::input(format!(
            "{}: no such run folder; train one with `train --artifacts {}` or pass the right --artifacts",
            dir.display(),
            dir.display()
        )));
    }
    if !path.exists() {
        return Err(Error::input(format!(
            "{}: no run here (config.toml is missing); train one with `train --artifacts {}`, or restore the run's config.toml",
            dir.display(),
            dir.display()
        )));
    }
    TrainConfig::load(&path)
}

/// Find, (download if needed), read and check the data; prints where it came from.
pub fn load_data(opts: &DataOptions, out: &mut dyn FnMut(String)) -> Result<FashionMnist> {
    let dir = match data::locate(opts.data_dir.as_deref())? {
        Some(src) => src.dir().to_path_buf(),
        None => {
            let dest = PathBuf::from(data::CACHE_DIR);
            let base = std::env::var("FASHION_MNIST_URL")
                .unwrap_or_else(|_| crate::download::OFFICIAL_BASE_URL.to_string());
            out(format!(
                "Fashion-MNIST not found (--data-dir, ${}, {}, {}); downloading from {base} into {}",
                data::ENV_DIR,
                data::CACHE_DIR,
                data::SYSTEM_DIR,
                dest.display()
            ));
            crate::download::download_files(&base, &crate::download::OFFICIAL_FILES, &dest, true)?;
            dest
        }
    };
    let d = data::load(&dir, !opts.skip_checksum)?;
    out(format!(
        "data: {} ({} train, {} test images{})",
        dir.display(),
        d.train.len(),
        d.test.len(),
        if opts.skip_checksum { ", checksum not checked" } else { ", checksums OK" }
    ));
    Ok(d)
}

/// Refuse recipe changes on resume; only `epochs` may change.
fn check_resume_overrides(saved: &TrainConfig, o: &Overrides, from_file: Option<&TrainConfig>) -> Result<()> {
    let mut refused = Vec::new();
    if o.lr.is_some_and(|v| v != saved.lr) {
        refused.push(format!("--lr (run has {})", saved.lr));
    }
    if o.batch_size.is_some_and(|v| v != saved.batch_size) {
        refused.push(format!("--batch-size (run has {})", saved.batch_size));
    }
    if o.seed.is_some_and(|v| v != saved.seed) {
        refused.push(format!("--seed (run has {})", saved.seed));
    }
    if let Some(f) = from_file {
        let same = TrainConfig { epochs: saved.epochs, ..f.clone() };
        if &same != saved {
            refused.push("--config (its recipe differs from the run's config.toml)".to_string());
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(Error::input(format!(
            "--resume continues the run with its saved recipe; refused: {}; only --epochs may change (start a new run with another --artifacts to change the recipe)",
            refused.join(", ")
        )))
    }
}

fn ensure_writable(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::input(format!(
            "{}: is a file, not a folder; pass a folder with --artifacts",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::input(format!(
            "{}: cannot create the artifacts folder ({e}); choose a writable folder with --artifacts",
            dir.display()
        ))
    })?;
    tempfile::Builder::new()
        .prefix(".write-test-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            Error::input(format!(
                "{}: the artifacts folder is not writable ({e}); choose another with --artifacts or fix its permissions",
                dir.display()
            ))
        })
}

fn remove_run(dir: &Path) -> Result<()> {
    for name in RUN_ENTRIES {
        let p = dir.join(name);
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

/// The process-wide Ctrl-C handler forwards to the interrupter of the run in progress.
fn install_ctrlc(interrupter: Interrupter) {
    static SLOT: OnceLock<Mutex<Option<Interrupter>>> = OnceLock::new();
    let slot = SLOT.get_or_init(|| {
        let _ = ctrlc::set_handler(|| {
            static PRESSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            if PRESSED.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // Second Ctrl-C: every file is written atomically, so leaving now is safe.
                eprintln!("interrupted again: exiting now");
                std::process::exit(130);
            }
            eprintln!("Ctrl-C: stopping after the current step (press again to quit at once)");
            if let Some(Some(i)) = SLOT.get().map(|m| m.lock().map(|g| g.clone()).ok().flatten()) {
                i.stop(Some("Ctrl-C"));
            }
        });
        Mutex::new(None)
    });
    if let Ok(mut g) = slot.lock() {
        *g = Some(interrupter);
    }
}

/// Train (or resume) a run. Prints progress through `out` (one line each).
pub fn train(opts: &TrainOptions, out: &mut dyn FnMut(String)) -> Result<TrainOutcome> {
    if opts.resume && opts.overwrite {
        return Err(Error::input(
            "--resume and --overwrite contradict each other: --resume continues the run, --overwrite replaces it; pass one",
        ));
    }
    if let Some(0) = opts.keep_checkpoints {
        return Err(Error::input("--keep-checkpoints must be at least 1 (a run needs its latest checkpoint to resume)"));
    }
    let kind = backend::resolve(opts.backend)?;
    let run_dir = opts.artifacts.clone();
    if run_dir.exists() && !run_dir.is_dir() {
        return Err(Error::input(format!(
            "{}: is a file, not a folder; pass a folder with --artifacts",
            run_dir.display()
        )));
    }

    // Resolve the recipe.
    let file_cfg = match &opts.config_path {
        Some(p) => Some(TrainConfig::load(p)?),
        None => None,
    };
    let cfg = if opts.resume {
        let saved = load_run_config(&run_dir)?;
        check_resume_overrides(&saved, &opts.overrides, file_cfg.as_ref())?;
        let mut cfg = saved;
        if let Some(e) = opts.overrides.epochs {
            cfg = cfg.with_overrides(&Overrides { epochs: Some(e), ..Default::default() })?;
        }
        cfg
    } else {
        if is_run(&run_dir) && !opts.overwrite {
            let done = metrics::read(&run_dir.join(METRICS_FILE)).map(|r| r.len()).unwrap_or(0);
            return Err(Error::input(format!(
                "{}: already holds a run ({done} epoch(s) in metrics.csv); continue it with `train --resume`, pick another --artifacts folder, or pass --overwrite to replace it",
                run_dir.display()
            )));
        }
        let base = match file_cfg {
            Some(c) => c,
            None => TrainConfig::load(Path::new(DEFAULT_CONFIG)).or_else(|e| {
                // Outside the repository there is no config/ folder: the defaults are the recipe.
                if Path::new(DEFAULT_CONFIG).exists() { Err(e) } else { Ok(TrainConfig::default()) }
            })?,
        };
        base.with_overrides(&opts.overrides)?
    };

    ensure_writable(&run_dir)?;
    let selected = backend::select(kind)?;
    out(format!("{} | model {} | artifacts {}", selected.description, cfg.describe_model(), run_dir.display()));
    let device = selected.device.clone();

    let data = load_data(&opts.data, out)?;
    let split_sizes = (data.train.len(), data.test.len());
    if cfg.batch_size > data.train.len() {
        let origin = if opts.overrides.batch_size.is_some() {
            "--batch-size".to_string()
        } else if opts.resume {
            run_dir.join(CONFIG_FILE).display().to_string()
        } else {
            opts.config_path.as_deref().unwrap_or(Path::new(DEFAULT_CONFIG)).display().to_string()
        };
        return Err(Error::Config(format!(
            "{origin}: field `batch_size` ({}) is larger than the training set ({} images); use a batch size of at most {}",
            cfg.batch_size,
            data.train.len(),
            data.train.len()
        )));
    }

    // Where to start.
    let mut start_epoch = 0;
    let mut history = Vec::new();
    let model = match &opts.init_from {
        Some(p) => crate::interchange::load_safetensors_model(p, &cfg, &device)?,
        None => Mlp::new(&cfg, &device),
    };
    if opts.resume {
        let stale = crate::fsutil::remove_stale_temps(&run_dir)
            + crate::fsutil::remove_stale_temps(&checkpoint::checkpoint_dir(&run_dir));
        if stale > 0 {
            out(format!("removed {stale} temp file(s) left by an interrupted write"));
        }
        let all = metrics::read(&run_dir.join(METRICS_FILE))?;
        let latest = checkpoint::latest_complete(&run_dir, &cfg, &device, usize::MAX, |w| out(w));
        match latest {
            Some(k) => {
                start_epoch = k;
                let dropped = all.iter().filter(|r| r.epoch > k).count();
                if dropped > 0 {
                    out(format!(
                        "metrics.csv: dropping {dropped} row(s) after epoch {k}, which has the latest complete checkpoint"
                    ));
                }
                history = all.into_iter().filter(|r| r.epoch <= k).collect();
            }
            None => {
                out("no complete checkpoint yet: starting this run from epoch 1".to_string());
            }
        }
        if start_epoch >= cfg.epochs {
            out(format!(
                "the run already has {start_epoch} epoch(s) (target {}); pass --epochs N with N > {start_epoch} to train further",
                cfg.epochs
            ));
            if !run_dir.join(MODEL_FILE).exists() && start_epoch > 0 {
                let m = checkpoint::load_model_file(&checkpoint::file_for(&run_dir, checkpoint::MODEL, start_epoch), &cfg, &device)?;
                save_model(&m, &run_dir.join(MODEL_FILE))?;
            }
            return Ok(TrainOutcome { run_dir, rows: history, config: cfg, split_seconds: Vec::new(), split_sizes });
        }
        // The Learner restores model, optimizer and scheduler from the checkpoint (`.checkpoint`).
        out(format!("resuming at epoch {} of {}", start_epoch + 1, cfg.epochs));
    } else if opts.overwrite && is_run(&run_dir) {
        out(format!("--overwrite: replacing the run in {}", run_dir.display()));
        remove_run(&run_dir)?;
    }
    // The resolved recipe sits beside the run before any epoch is trained.
    cfg.save(&run_dir.join(CONFIG_FILE))?;
    metrics::write(&run_dir.join(METRICS_FILE), &history)?;
    if start_epoch == 0 {
        // A restarted run must not keep a final model from an earlier attempt.
        let _ = std::fs::remove_file(run_dir.join(MODEL_FILE));
    }

    let train_split = Arc::new(data.train);
    let test_split = Arc::new(data.test);
    let shuffle = cfg.shuffle.then_some(cfg.seed);
    let train_loader = Arc::new(BatchLoader::new(train_split, cfg.batch_size, shuffle, start_epoch + 1, &device));
    let test_loader = Arc::new(BatchLoader::new(test_split, cfg.batch_size, None, start_epoch + 1, &device));

    let interrupter = Interrupter::new();
    install_ctrlc(interrupter.clone());
    let mut st = EpochState::new(&run_dir, history, opts.plots);
    st.echo = opts.echo_epochs;
    let state = Arc::new(Mutex::new(st));
    let renderer = EpochRenderer {
        state: state.clone(),
        interrupter: interrupter.clone(),
    };

    let ckpt_dir = checkpoint::checkpoint_dir(&run_dir);
    let mut training = SupervisedTraining::new(&run_dir, train_loader, test_loader)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .with_custom_checkpointers(
            AtomicFileCheckpointer::new(&ckpt_dir, checkpoint::MODEL),
            AtomicFileCheckpointer::new(&ckpt_dir, checkpoint::OPTIM),
            AtomicFileCheckpointer::new(&ckpt_dir, checkpoint::SCHEDULER),
        )
        .with_checkpointing_strategy(Retention { keep: opts.keep_checkpoints })
        .with_interrupter(interrupter.clone())
        .renderer(Box::new(renderer))
        .num_epochs(cfg.epochs);
    if start_epoch > 0 {
        training = training.checkpoint(start_epoch);
    }
    // Params built from host data start on a plain device; `train()` turns on autodiff tracking.
    let learner = Learner::new(model.train(), SgdConfig::new().init(), ConstantLr::new(cfg.lr));
    let started = Instant::now();
    let result = training.launch(learner);
    let elapsed = started.elapsed().as_secs_f64();

    let st = state.lock().map_err(|_| Error::failure("internal: renderer state poisoned"))?;
    if let Some(e) = &st.write_error {
        return Err(Error::failure(e.clone()));
    }
    if let Some(epoch) = st.diverged {
        let kept = match st.rows.last() {
            Some(r) => format!("the checkpoints and metrics.csv up to epoch {} are intact (`train --resume` continues from them)", r.epoch),
            None => "no epoch had finished, so nothing was checkpointed".to_string(),
        };
        return Err(Error::failure(format!(
            "training diverged in epoch {epoch}: the loss became NaN, infinite or exploded past {EXPLODED_LOSS} (learning rate {} is too large); train with a smaller --lr such as 0.1; {kept}",
            cfg.lr
        )));
    }
    if let Some(err) = &result.error {
        return Err(Error::failure(format!(
            "training failed: {}; the checkpoints and metrics.csv in {} are intact, `train --resume` continues from them",
            err.to_string().lines().next().unwrap_or(""),
            run_dir.display()
        )));
    }
    let rows = st.rows.clone();
    let split_seconds = st.split_seconds.clone();
    drop(st);
    if result.interrupted.is_some() {
        let last = rows.last().map(|r| r.epoch).unwrap_or(0);
        return Err(Error::Interrupted(format!(
            "interrupted after epoch {last}; its checkpoint and metrics.csv are saved, continue with `train --resume --artifacts {}`",
            run_dir.display()
        )));
    }

    save_model(&result.model, &run_dir.join(MODEL_FILE))?;
    let trained = cfg.epochs - start_epoch;
    if let Some(last) = rows.last() {
        out(format!(
            "done: {} epoch(s) in {elapsed:.1} s ({:.2} s/epoch) | final train loss {:.4} acc {:.4} | test loss {:.4} acc {:.4}",
            trained,
            elapsed / trained.max(1) as f64,
            last.train_loss,
            last.train_acc,
            last.test_loss,
            last.test_acc
        ));
    }
    out(format!(
        "saved {} (final model), {} (per-epoch), {}",
        run_dir.join(MODEL_FILE).display(),
        ckpt_dir.display(),
        run_dir.join(METRICS_FILE).display()
    ));
    Ok(TrainOutcome { run_dir, rows, config: cfg, split_seconds, split_sizes })
}

/// Save a model record (`.bpk`) atomically.
pub fn save_model(model: &Mlp, path: &Path) -> Result<()> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| Error::failure(format!("cannot encode the model for {}: {e}", path.display())))?;
    atomic_write(path, &bytes).map_err(|e| Error::io("cannot write", path, e))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum MetricKind {
    Loss,
    Accuracy,
}

#[derive(Default, Clone, Copy)]
struct SplitFigures {
    loss: Option<f64>,
    acc: Option<f64>,
}

/// What the renderer has seen; read back by `train` after the Learner returns.
struct EpochState {
    run_dir: PathBuf,
    plots: bool,
    total_epochs: usize,
    epoch: usize,
    in_valid: bool,
    ids: HashMap<MetricId, MetricKind>,
    train: SplitFigures,
    valid: SplitFigures,
    epoch_start: Instant,
    rows: Vec<EpochRow>,
    diverged: Option<usize>,
    write_error: Option<String>,
    split_start: Instant,
    train_seconds: f64,
    split_seconds: Vec<(f64, f64)>,
    echo: bool,
}

impl EpochState {
    fn new(run_dir: &Path, rows: Vec<EpochRow>, plots: bool) -> Self {
        Self {
            run_dir: run_dir.to_path_buf(),
            plots,
            total_epochs: 0,
            epoch: 1,
            in_valid: false,
            ids: HashMap::new(),
            train: SplitFigures::default(),
            valid: SplitFigures::default(),
            epoch_start: Instant::now(),
            rows,
            diverged: None,
            write_error: None,
            split_start: Instant::now(),
            train_seconds: 0.0,
            split_seconds: Vec::new(),
            echo: true,
        }
    }

    fn record(&mut self, state: MetricState, valid: bool, interrupter: &Interrupter) {
        let MetricState::Numeric(entry, Some(value)) = state else {
            return;
        };
        let Some(&kind) = self.ids.get(&entry.metric_id) else {
            return;
        };
        let (v, is_final) = match value {
            NumericEntry::Value(v) => (v, false),
            NumericEntry::Aggregated { aggregated_value, .. } => (aggregated_value, false),
            NumericEntry::Final(v) => (v, true),
        };
        if kind == MetricKind::Loss && !valid && !(v < EXPLODED_LOSS) && self.diverged.is_none() {
            self.diverged = Some(self.epoch);
            interrupter.stop(Some("the loss is not finite"));
        }
        if is_final {
            let figs = if valid { &mut self.valid } else { &mut self.train };
            match kind {
                MetricKind::Loss => figs.loss = Some(v),
                // Burn reports accuracy in percent.
                MetricKind::Accuracy => figs.acc = Some(v / 100.0),
            }
        }
    }

    /// The validation split of `self.epoch` ended: the epoch is complete.
    fn finish_epoch(&mut self) {
        if self.diverged.is_some() {
            return;
        }
        let row = EpochRow {
            epoch: self.epoch,
            train_loss: self.train.loss.unwrap_or(f64::NAN),
            train_acc: self.train.acc.unwrap_or(f64::NAN),
            test_loss: self.valid.loss.unwrap_or(f64::NAN),
            test_acc: self.valid.acc.unwrap_or(f64::NAN),
            seconds: self.epoch_start.elapsed().as_secs_f64(),
        };
        self.rows.retain(|r| r.epoch < row.epoch);
        self.rows.push(row);
        let line = format!(
            "epoch {:>2}/{}  train loss {:.4} acc {:.4} | test loss {:.4} acc {:.4} | {:.1} s",
            row.epoch, self.total_epochs, row.train_loss, row.train_acc, row.test_loss, row.test_acc, row.seconds
        );
        if self.echo {
            println!("{line}");
        }
        self.split_seconds.push((self.train_seconds, self.split_start.elapsed().as_secs_f64()));
        if let Err(e) = metrics::write(&self.run_dir.join(METRICS_FILE), &self.rows) {
            self.write_error.get_or_insert(e.to_string());
        }
        if self.plots {
            let runs = vec![(run_name(&self.run_dir), self.rows.clone())];
            if let Err(e) = crate::plot::draw_curves(&runs, &self.run_dir.join(CURVES_FILE)) {
                self.write_error.get_or_insert(e.to_string());
            }
        }
        self.train = SplitFigures::default();
        self.valid = SplitFigures::default();
    }
}

/// A short name for a run folder (its last path component).
pub fn run_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// Prints one line per epoch and keeps `metrics.csv` up to date. Replaces Burn's fallback CLI
/// renderer, which prints a debug dump per batch and no metric values.
struct EpochRenderer {
    state: Arc<Mutex<EpochState>>,
    interrupter: Interrupter,
}

impl EpochRenderer {
    fn with<R>(&self, f: impl FnOnce(&mut EpochState) -> R) -> Option<R> {
        self.state.lock().ok().map(|mut g| f(&mut g))
    }
}

impl MetricsRendererTraining for EpochRenderer {
    fn update_train(&mut self, state: MetricState) {
        let i = self.interrupter.clone();
        self.with(|s| s.record(state, false, &i));
    }

    fn update_valid(&mut self, state: MetricState) {
        let i = self.interrupter.clone();
        self.with(|s| s.record(state, true, &i));
    }

    fn on_train_end(&mut self, _summary: Option<LearnerSummary>) -> std::result::Result<(), Box<dyn std::error::Error>> {
        Ok(())
    }
}

impl TrainingProgressLogger for EpochRenderer {
    fn start(&mut self, total_epochs: usize, starting_epoch: usize, _total_items: Option<usize>, _label: Option<&str>) {
        self.with(|s| {
            s.total_epochs = total_epochs;
            s.epoch = starting_epoch;
            s.epoch_start = Instant::now();
        });
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.with(|s| {
            s.epoch = epoch + 1;
            s.epoch_start = Instant::now();
        });
    }

    fn start_split(&mut self, split: &str, _total_items: usize) {
        let valid = split.to_ascii_lowercase().starts_with("valid");
        self.with(|s| {
            s.in_valid = valid;
            s.split_start = Instant::now();
        });
    }

    fn update_split(&mut self, _items_processed: usize) {}

    fn end_split(&mut self) {
        // A stop request means the Learner will not checkpoint this epoch (it checks after the
        // events are processed), and validation may have been cut short: record no row for it.
        let stopping = self.interrupter.should_stop();
        self.with(|s| {
            if s.in_valid && !stopping {
                s.finish_epoch();
            } else {
                s.train_seconds = s.split_start.elapsed().as_secs_f64();
            }
        });
    }

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for EpochRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, _name: &str, _total_items: usize) {}
    fn update_test_progress(&mut self, _items_processed: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRendererEvaluation for EpochRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl MetricsRenderer for EpochRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        let kind = match definition.name.as_str() {
            "Loss" => MetricKind::Loss,
            "Accuracy" => MetricKind::Accuracy,
            _ => return,
        };
        self.with(|s| s.ids.insert(definition.metric_id.clone(), kind));
    }
}
