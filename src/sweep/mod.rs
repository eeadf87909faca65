//! Hyper-parameter sweeps. A [`Study`] (the space file) gives the trials; [`search`] trains
//! them on the training images minus `val_size` held out for ranking, each in its own run
//! folder `trials/NNN`; [`publish`] ranks them into `leaderboard.csv`, `sweep.png` and
//! `best.toml`; [`refit`] trains the best recipe on all the training images, tested once, into
//! `best/`. Ranking never reads the test set. Nothing here prints: callers hear through a
//! [`SweepObserver`].

pub mod asha;
pub mod charts;
pub mod halving;
pub mod leaderboard;
pub mod picture;
pub mod recipe;
pub mod runner;
pub mod space;
pub mod tpe;
pub mod trials;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::tensor::Device;
use burn::train::Interrupter;

use crate::data::Split;
use crate::error::{Error, Result};
use crate::run::{METRICS_FILE, MODEL_FILE, RunDir, RunLock, metrics};
use crate::train::{RunControl, TrainData, TrainOutcome};

pub use leaderboard::{Entry, Status};
pub use runner::{DIVERGED_FILE, hold_out};
pub use space::{Halving, Method, Study, StudyOverrides, Tpe};
pub use trials::Trial;

pub const STUDY_FILE: &str = "sweep.toml";
pub const LEADERBOARD_FILE: &str = "leaderboard.csv";
pub const PICTURE_FILE: &str = "sweep.png";
pub const BEST_FILE: &str = "best.toml";
pub const BEST_DIR: &str = "best";
pub const TRIALS_DIR: &str = "trials";
/// Trials trained at once unless `--workers` says otherwise. On the 2-core reference machine two
/// workers of one core each trained 15-40 % more trials a minute than one worker with both
/// cores (the Learner's per-trial work and small products do not use two cores well); see the
/// README, Experiments.
pub const DEFAULT_WORKERS: usize = 2;

/// What a caller hears while a sweep searches. Workers call it from their threads.
pub trait SweepObserver: Send {
    /// The search starts with `jobs` trainings to do (a halving trial counts once per rung),
    /// estimated to cost `work` in all (epochs weighted by the model's size; see
    /// [`runner::cost_per_epoch`]).
    fn started(&mut self, _jobs: usize, _work: f64) {}
    /// A rung of successive halving starts: `trials` trials trained up to `epochs`.
    fn rung(&mut self, _epochs: usize, _trials: usize) {}
    /// A trial reached its epochs (`trained` of them in this call; 0: done before) or diverged;
    /// `work`: what its job was planned at and what it trained.
    fn trial_finished(&mut self, _entry: &Entry, _trained: usize, _work: runner::JobWork) {}
}

/// Hears nothing.
pub struct Quiet;
impl SweepObserver for Quiet {}

/// `--shard K/N`: the trials whose index is K modulo N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl Shard {
    pub fn has(&self, index: usize) -> bool {
        index % self.n == self.k
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let parsed = s.split_once('/').and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((k, n)) if k < n => Ok(Shard { k, n }),
            _ => Err(format!("`{s}` is not K/N with 0 <= K < N, e.g. 0/16 (a Slurm array: --shard $SLURM_ARRAY_TASK_ID/16)")),
        }
    }
}

/// A sweep folder: `sweep.toml`, `trials/NNN/`, `leaderboard.csv`, `sweep.png`, `best.toml`, `best/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepDir {
    /// The folder, with a run folder's helpers (files, the lock).
    dir: RunDir,
}

impl SweepDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { dir: RunDir::new(path) }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.file(name)
    }

    /// The run folder of trial `index`.
    pub fn trial(&self, index: usize) -> RunDir {
        RunDir::new(self.file(TRIALS_DIR).join(format!("{index:03}")))
    }

    /// The run folder of the refit.
    pub fn best(&self) -> RunDir {
        RunDir::new(self.file(BEST_DIR))
    }

    /// One sweep process writes the folder's shared files at a time (shards lock their trials only).
    pub fn lock(&self) -> Result<RunLock> {
        self.dir.lock()
    }

    /// The study saved in the folder.
    pub fn load_study(&self) -> Result<Study> {
        let file = self.file(STUDY_FILE);
        if !file.is_file() {
            return Err(Error::input(format!(
                "{}: no sweep here ({STUDY_FILE} is missing); start one with `sweep SPACE.toml --out {}`",
                self.path().display(),
                self.path().display()
            )));
        }
        Study::load(&file, StudyOverrides::default())
    }

    /// Save `study` as the folder's `sweep.toml`. A folder that has one already is refused,
    /// unless `shared` (shards of one study) and it holds the same study.
    pub fn start(&self, study: &Study, shared: bool) -> Result<()> {
        let shown = self.path().display();
        if self.file(STUDY_FILE).exists() {
            let same = self.load_study().is_ok_and(|s| s.to_toml() == study.to_toml());
            return match (shared, same) {
                (true, true) => Ok(()),
                (true, false) => Err(Error::input(format!("{shown}: holds another study (its {STUDY_FILE} differs); give each study its own --out"))),
                (false, _) => Err(Error::input(format!(
                    "{shown}: already holds a sweep; continue it with `sweep --resume {shown}`, or pick another --out"
                ))),
            };
        }
        self.dir.ensure_writable()?;
        let text = format!("# The study of this sweep (written by `sweep`); `sweep --resume {shown}` continues it.\n{}", study.to_toml());
        let path = self.file(STUDY_FILE);
        crate::fsutil::atomic_write(&path, text.as_bytes()).map_err(|e| Error::io("cannot write", &path, e))
    }
}

/// Everything [`search`] needs.
pub struct Search<'a> {
    pub sweep: &'a SweepDir,
    pub study: &'a Study,
    /// The training images minus the validation split (`test`); see [`hold_out`].
    pub data: &'a TrainData,
    pub device: &'a Device,
    pub workers: usize,
    pub stop: &'a Interrupter,
    pub shard: Option<Shard>,
}

/// Train every trial of the study (of the shard), or continue it; finished trials are read
/// from their folders. Returns the trials' entries, unranked.
pub fn search(s: &Search, observer: &mut dyn SweepObserver) -> Result<Vec<Entry>> {
    check_split(s.sweep, s.study, s.shard.is_some(), false)?;
    check_batches(s)?;
    let trials = s.study.trials()?;
    let mine: Vec<&Trial> = trials.iter().filter(|t| s.shard.is_none_or(|sh| sh.has(t.index))).collect();
    let runner = runner::Runner { sweep: s.sweep, data: s.data, device: s.device, workers: s.workers, stop: s.stop };
    let observer = Mutex::new(observer);
    match s.study.method {
        Method::Grid | Method::Random => {
            let jobs: Vec<runner::Job> = mine.iter().map(|t| runner::Job { trial: t, epochs: t.config.epochs, from: 0 }).collect();
            tell(&observer, |o| o.started(jobs.len(), jobs.iter().map(runner::Job::work).sum()));
            runner.run(&jobs, &observer)
        }
        Method::Tpe => {
            let n = s.study.trials.unwrap_or(0);
            // The suggestions are not known yet: the random draws' cost stands for theirs.
            let like = Study { method: Method::Random, ..s.study.clone() }.trials()?;
            let work = like.iter().map(|t| t.config.epochs as f64 * runner::cost_per_epoch(&t.config)).sum();
            tell(&observer, |o| o.started(n, work));
            runner.run_with(&mut tpe::TpeSearch::new(s.study, s.sweep, s.workers), &observer)
        }
        Method::Asha => {
            let h = s.study.halving;
            tell(&observer, |o| o.started(halving::sizes(mine.len(), &h).iter().sum(), halving_work(&mine, &h)));
            runner.run_with(&mut asha::AshaSearch::new(trials.clone(), &h, s.sweep)?, &observer)
        }
        Method::Halving => synchronous_halving(&runner, &mine, &s.study.halving, &observer),
    }
}

/// Successive halving: every trial to the first rung, the best 1/eta of them to the next, ...
fn synchronous_halving(runner: &runner::Runner, mine: &[&Trial], h: &Halving, observer: &Mutex<&mut dyn SweepObserver>) -> Result<Vec<Entry>> {
    let h = *h;
    let sizes = halving::sizes(mine.len(), &h);
    tell(observer, |o| o.started(sizes.iter().sum(), halving_work(mine, &h)));
    let mut alive = mine.to_vec();
    let mut latest = BTreeMap::new();
    let rungs = halving::rungs(&h);
    for (k, &epochs) in rungs.iter().enumerate() {
        tell(observer, |o| o.rung(epochs, alive.len()));
        let from = if k == 0 { 0 } else { rungs[k - 1] };
        let jobs: Vec<runner::Job> = alive.iter().map(|t| runner::Job { trial: t, epochs, from }).collect();
        let entries = runner.run(&jobs, observer)?;
        // A trial's score at a rung is its accuracy after that rung's epochs, whatever it did later.
        let scored: Vec<(usize, f64)> = entries.iter().map(|e| (e.trial.index, e.val_acc_at(epochs))).collect();
        latest.extend(entries.into_iter().map(|e| (e.trial.index, e)));
        if k + 1 < rungs.len() {
            let next = halving::survivors(scored, h.eta);
            alive.retain(|t| next.contains(&t.index));
        }
    }
    Ok(latest.into_values().collect())
}

/// The estimated work of a halving search: each rung's trials at the average trial's cost
/// (which ones go on is not known yet).
fn halving_work(trials: &[&Trial], h: &Halving) -> f64 {
    let n = trials.len().max(1) as f64;
    let avg = trials.iter().map(|t| runner::cost_per_epoch(&t.config)).sum::<f64>() / n;
    let rungs = halving::rungs(h);
    let sizes = halving::sizes(trials.len(), h);
    let mut from = 0;
    let mut work = 0.0;
    for (&epochs, &size) in rungs.iter().zip(&sizes) {
        work += (epochs - from) as f64 * size as f64 * avg;
        from = epochs;
    }
    work
}

/// Halving and asha promote across all their trials, and each tpe trial follows from the ones
/// before it: such studies cannot be split into shards (`--shard`) nor gathered from them
/// (`--collect`).
pub fn check_split(sweep: &SweepDir, study: &Study, shard: bool, collect: bool) -> Result<()> {
    let why = match study.method {
        Method::Grid | Method::Random => return Ok(()),
        Method::Halving | Method::Asha => "promotes across all its trials at every rung",
        Method::Tpe => "suggests each trial from the results of the ones before it",
    };
    let (m, shown) = (study.method.name(), sweep.path().display());
    match (shard, collect) {
        (true, _) => Err(Error::input(format!(
            "--shard: a {m} study {why}, so it cannot be split; run it whole (or shard a grid or random study)"
        ))),
        (_, true) => Err(Error::input(format!(
            "--collect gathers the shards of a grid or random study; continue a {m} study with `sweep --resume {shown}`"
        ))),
        _ => Ok(()),
    }
}

fn tell(observer: &Mutex<&mut dyn SweepObserver>, f: impl FnOnce(&mut dyn SweepObserver)) {
    if let Ok(mut o) = observer.lock() {
        f(&mut **o);
    }
}

/// Every batch a trial may draw must fit in the training images left.
fn check_batches(s: &Search) -> Result<()> {
    let n = s.data.train.len();
    let largest = match s.study.space.iter().find(|p| p.name == "batch_size") {
        Some(p) => p.domain.extremes().iter().filter_map(toml::Value::as_integer).max().unwrap_or(0).max(0) as usize,
        None => s.study.fixed.batch_size,
    };
    if largest <= n {
        return Ok(());
    }
    Err(Error::Config(format!(
        "{}: the study's batch_size reaches {largest}, more than the {n} training images left after holding out val_size = {}; use smaller batches or a smaller val_size",
        s.sweep.file(STUDY_FILE).display(),
        s.data.test.len()
    )))
}

/// The finished trials of a grid or random study as its folders hold them (after shards ran),
/// and the indices of the trials not finished.
pub fn collect(sweep: &SweepDir, study: &Study) -> Result<(Vec<Entry>, Vec<usize>)> {
    check_split(sweep, study, false, true)?;
    let (mut entries, mut missing) = (Vec::new(), Vec::new());
    for trial in study.trials()? {
        let run = sweep.trial(trial.index);
        let rows = metrics::read(&run.file(METRICS_FILE))?;
        let finished = run.file(MODEL_FILE).exists() && rows.last().is_some_and(|r| r.epoch >= trial.config.epochs);
        let status = if run.file(DIVERGED_FILE).exists() {
            Status::Diverged
        } else if finished {
            Status::Done
        } else {
            missing.push(trial.index);
            continue;
        };
        entries.push(Entry { trial, rows, status });
    }
    Ok((entries, missing))
}

/// Rank the entries (best first) and write `leaderboard.csv`, `sweep.png`, the study's charts
/// (`history`, `parallel`, `slices`; PNG and SVG) and, when a trial finished, `best.toml`.
pub fn publish(sweep: &SweepDir, study: &Study, entries: &mut [Entry]) -> Result<()> {
    leaderboard::rank(entries, study.method);
    leaderboard::write_csv(&sweep.file(LEADERBOARD_FILE), study, entries)?;
    picture::draw(&sweep.file(PICTURE_FILE), study, entries)?;
    charts::draw_all(sweep.path(), study, entries)?;
    match leaderboard::best(entries) {
        Some(b) => leaderboard::write_best(&sweep.file(BEST_FILE), b, study.val_size),
        None => Ok(()),
    }
}

/// Train the best recipe on `data` (all the training images, and the test set) into `best/`,
/// or continue that run; a run of another recipe there (an earlier `--collect`) is replaced.
pub fn refit(sweep: &SweepDir, best: &Entry, data: &TrainData, device: &Device, control: RunControl) -> Result<TrainOutcome> {
    let run = sweep.best();
    let _lock = run.lock()?;
    let cfg = best.recipe();
    if run.holds_run() && run.load_config().ok().as_ref() != Some(&cfg) {
        run.remove_run()?;
    }
    runner::train_to(&run, &cfg, cfg.epochs, None, data, device, control)
}

/// The training split whole again, from the search's two parts (no copy when they are no
/// longer shared).
pub fn rejoin(data: TrainData) -> Split {
    let take = |a: Arc<Split>| Arc::try_unwrap(a).unwrap_or_else(|shared| (*shared).clone());
    let (mut train, val) = (take(data.train), take(data.test));
    train.images.extend_from_slice(&val.images);
    train.labels.extend_from_slice(&val.labels);
    train
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_the_indices() {
        let s: Shard = "1/3".parse().unwrap();
        assert_eq!(s, Shard { k: 1, n: 3 });
        assert_eq!((0..7).filter(|&i| s.has(i)).collect::<Vec<_>>(), [1, 4]);
        for bad in ["3/3", "1", "a/2", "1/0", "-1/2"] {
            assert!(bad.parse::<Shard>().unwrap_err().contains("K/N"), "{bad}");
        }
    }

    #[test]
    fn a_folder_holds_one_study() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = SweepDir::new(dir.path().join("s"));
        let study = Study::parse("[space]\nlr = [0.1, 0.2]\n", "a.toml", StudyOverrides::default()).unwrap();
        assert!(sweep.load_study().unwrap_err().to_string().contains("no sweep here"));
        sweep.start(&study, false).unwrap();
        assert_eq!(sweep.load_study().unwrap(), study);
        assert!(sweep.start(&study, false).unwrap_err().to_string().contains("sweep --resume"));
        sweep.start(&study, true).unwrap();
        let other = Study { seed: 1, ..study };
        assert!(sweep.start(&other, true).unwrap_err().to_string().contains("holds another study"));
        assert_eq!(sweep.trial(7).path(), dir.path().join("s/trials/007"));
    }

    #[test]
    fn held_out_images_come_back_in_order() {
        let all = crate::data::synthetic(10, 1);
        let data = hold_out(all.clone(), 3).unwrap();
        assert_eq!((data.train.len(), data.test.len()), (7, 3));
        assert_eq!(rejoin(data), all);
        assert!(hold_out(all, 10).is_err());
    }
}
