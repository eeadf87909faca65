//! Hyper-parameter sweeps. A [`Study`] (the space file) gives the trials; [`search`] trains
//! them on the training images minus `val_size` held out for ranking, each in its own run
//! folder `trials/NNN`; [`publish`] ranks them into `leaderboard.csv`, `sweep.png` and
//! `best.toml`; [`refit`] trains the best recipe on all the training images, tested once, into
//! `best/`. Ranking never reads the test set. Nothing here prints: callers hear through a
//! [`SweepObserver`].

pub mod asha;
pub mod charts;
pub mod halving;
pub mod hparams;
pub mod journal;
pub mod leaderboard;
pub mod objectives;
pub mod picture;
pub mod recipe;
pub mod runner;
pub mod space;
pub mod tpe;
pub mod trials;
pub mod work;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::tensor::Device;
use burn::train::Interrupter;

use crate::data::Split;
use crate::error::{Error, Result};
use crate::run::{RunDir, RunLock};
use runner::Scheduler as _;
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
/// The N of `--shard K/N`, written by the shards so that `--collect` can name the shard of a
/// missing trial (the split depends on N).
pub const SHARDS_FILE: &str = "shards.txt";
/// Trials trained at once unless `--workers` says otherwise: two workers of one core each train
/// more trials a minute than one worker with both cores (the Learner's per-trial work and small
/// products do not use two cores well; figures in docs/performance.md, "Sweep speed").
pub const DEFAULT_WORKERS: usize = 2;

/// What a search has to do, as far as it is known when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jobs {
    /// This many trainings (a halving trial counts once per rung).
    Exactly(usize),
    /// This many draws, each trained at least once; asha's promotions are decided on the way.
    Draws(usize),
}

/// What a caller hears while a sweep searches. Workers call it from their threads.
pub trait SweepObserver: Send {
    /// The search starts with `jobs` to do, estimated to cost `work` in all (epochs weighted by
    /// the model's size; see [`runner::cost_per_epoch`]).
    fn started(&mut self, _jobs: Jobs, _work: f64) {}
    /// A rung of successive halving starts: `trials` trials trained up to `epochs`.
    fn rung(&mut self, _epochs: usize, _trials: usize) {}
    /// A trial reached its epochs (`trained` of them in this call; 0: done before) or diverged;
    /// `work`: what its job was planned at and what it trained.
    fn trial_finished(&mut self, _entry: &Entry, _trained: usize, _work: runner::JobWork) {}
}

/// Hears nothing.
pub struct Quiet;
impl SweepObserver for Quiet {}

/// `--shard K/N`: shard K of N of a grid or random study's trials, split by their estimated
/// work (see [`Shard::assign`]) so that the shards take about as long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl Shard {
    /// The shard of each of `trials` (by position) when they are split into `n`: costliest
    /// first (epochs times [`runner::cost_per_epoch`]; ties by trial index), each trial goes to
    /// the shard with the least work so far (ties: the lowest shard). It depends on the study
    /// alone, so every shard process computes the same split, and so does `--collect`.
    pub fn assign(trials: &[Trial], n: usize) -> Vec<usize> {
        let work = |t: &Trial| t.config.epochs as f64 * runner::cost_per_epoch(&t.config);
        let mut order: Vec<usize> = (0..trials.len()).collect();
        order.sort_by(|&a, &b| work(&trials[b]).total_cmp(&work(&trials[a])).then(trials[a].index.cmp(&trials[b].index)));
        let mut load = vec![0.0_f64; n.max(1)];
        let mut shard = vec![0; trials.len()];
        for i in order {
            let k = (0..load.len()).min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b))).unwrap_or(0);
            load[k] += work(&trials[i]);
            shard[i] = k;
        }
        shard
    }

    /// The indices of the trials this shard trains, in order.
    pub fn trials(&self, trials: &[Trial]) -> Vec<usize> {
        let shard = Shard::assign(trials, self.n);
        trials.iter().zip(shard).filter(|&(_, k)| k == self.k).map(|(t, _)| t.index).collect()
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

    /// Processes that `--join` the study share the folder; a plain sweep is refused meanwhile.
    pub fn lock_shared(&self) -> Result<RunLock> {
        RunLock::try_acquire_shared(&self.dir)?.ok_or_else(|| {
            Error::input(format!(
                "{}: a sweep (not --join) is running this study right now; wait for it, or stop it and run every process with --join",
                self.path().display()
            ))
        })
    }

    /// One sweep process writes the folder's shared files at a time (shards lock their trials only).
    pub fn lock(&self) -> Result<RunLock> {
        self.dir.lock()
    }

    /// Note the N of the shards that train the study (every shard writes the same).
    pub fn note_shards(&self, n: usize) -> Result<()> {
        if self.shards() == Some(n) {
            return Ok(());
        }
        let text = format!("# The N of `sweep --shard K/N` that trains this study (`--collect` names the shard of a missing trial from it).\n{n}\n");
        let path = self.file(SHARDS_FILE);
        crate::fsutil::atomic_write(&path, text.as_bytes()).map_err(|e| Error::io("cannot write", &path, e))
    }

    /// The N the shards noted, if a shard ran.
    pub fn shards(&self) -> Option<usize> {
        let text = std::fs::read_to_string(self.file(SHARDS_FILE)).ok()?;
        text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'))?.parse().ok().filter(|&n| n > 0)
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
        Study::load_saved(&file)
    }

    /// Save `study` as the folder's `sweep.toml`. A folder that has one already is refused,
    /// unless `shared` (shards of one study) and it holds the same study, or its study never
    /// started a trial (it failed before, e.g. on a backend not built in or missing data): that
    /// one is started over, as `train` does with a run that finished no epoch. Returns whether
    /// it was.
    pub fn start(&self, study: &Study, shared: bool) -> Result<bool> {
        let shown = self.path().display();
        let over = !shared && self.file(STUDY_FILE).exists() && self.never_started();
        if over {
            self.clear_unstarted()?;
        }
        if self.file(STUDY_FILE).exists() {
            let theirs = self.load_study().map(|s| s.to_toml()).unwrap_or_default();
            let differ = work::first_difference(&theirs, &study.to_toml());
            return match (shared, differ) {
                (true, None) => Ok(false),
                (true, Some((a, b))) => Err(Error::input(format!(
                    "{shown}: holds another study: its {STUDY_FILE} has `{a}` where this one has `{b}`; run every process with the same space file and options, or give each study its own --out"
                ))),
                (false, _) => Err(Error::input(format!(
                    "{shown}: already holds a sweep; continue it with `sweep --resume {shown}`, or pick another --out"
                ))),
            };
        }
        self.dir.ensure_writable()?;
        let text = format!("# The study of this sweep (written by `sweep`); `sweep --resume {shown}` continues it.\n{}", study.to_toml());
        let path = self.file(STUDY_FILE);
        crate::fsutil::atomic_write(&path, text.as_bytes()).map_err(|e| Error::io("cannot write", &path, e))?;
        Ok(over)
    }

    /// No trial has a folder, nothing was ranked or refitted, and the journal (if any) holds
    /// only the study's planned trials, none of them taken.
    fn never_started(&self) -> bool {
        let trials = std::fs::read_dir(self.file(TRIALS_DIR)).map_or(0, |d| d.count());
        let later = [BEST_DIR, LEADERBOARD_FILE, SHARDS_FILE].iter().any(|f| self.file(f).exists());
        trials == 0 && !later && work::untouched(self)
    }

    /// Remove what a study that never started left: its space and its journal.
    fn clear_unstarted(&self) -> Result<()> {
        let journal = self.file(journal::JOURNAL_FILE);
        for f in [self.file(STUDY_FILE), journal.with_extension("log.holder"), journal] {
            match std::fs::remove_file(&f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("cannot remove", &f, e)),
                _ => {}
            }
        }
        Ok(())
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
    /// `--join`: one of many processes running the study (tpe then suggests from every
    /// finished trial, the running ones pending).
    pub join: bool,
}

/// Train every trial of the study (of the shard), or continue it; finished trials are read
/// from their folders. Returns the trials' entries, unranked.
pub fn search(s: &Search, observer: &mut dyn SweepObserver) -> Result<Vec<Entry>> {
    check_split(s.sweep, s.study, s.shard.is_some(), false)?;
    check_batches(s)?;
    let trials = s.study.trials()?;
    if let Some(sh) = s.shard {
        s.sweep.note_shards(sh.n)?;
    }
    let held = s.shard.map(|sh| sh.trials(&trials));
    let mine: Vec<&Trial> = trials.iter().filter(|t| held.as_ref().is_none_or(|h| h.contains(&t.index))).collect();
    let last_rung = s.study.method.has_rungs().then(|| halving::rungs(&s.study.halving).last().copied().unwrap_or(1));
    let runner = runner::Runner { sweep: s.sweep, data: s.data, device: s.device, workers: s.workers, stop: s.stop, study: s.study, last_rung };
    let observer = Mutex::new(observer);
    match s.study.method {
        Method::Grid | Method::Random | Method::Tpe if s.shard.is_none() => {
            let mut claims = work::JournalWork::new(s.study, s.sweep, (!s.join).then_some(s.workers))?;
            let (n, work) = if s.study.method == Method::Tpe {
                // The suggestions are not known yet: the random draws' cost stands for theirs.
                let like = Study { method: Method::Random, ..s.study.clone() }.trials()?;
                (s.study.trials.unwrap_or(0), like.iter().map(|t| t.config.epochs as f64 * runner::cost_per_epoch(&t.config)).sum())
            } else {
                (mine.len(), mine.iter().map(|t| t.config.epochs as f64 * runner::cost_per_epoch(&t.config)).sum())
            };
            tell(&observer, |o| o.started(Jobs::Exactly(n), work));
            // Trials finished before (a resumed or joined study) are said once, as "done before".
            for e in claims.found() {
                tell(&observer, |o| o.trial_finished(&e, 0, runner::JobWork { planned: 0.0, trained: 0.0, seconds: 0.0 }));
            }
            runner.run_with(&mut claims, &observer)?;
            Ok(work::entries(s.sweep, s.study)?.0)
        }
        Method::Grid | Method::Random => {
            let jobs: Vec<runner::Job> = mine.iter().map(|t| runner::Job { trial: t, epochs: t.config.epochs, from: 0 }).collect();
            tell(&observer, |o| o.started(Jobs::Exactly(jobs.len()), jobs.iter().map(runner::Job::work).sum()));
            runner.run(&jobs, &observer)
        }
        Method::Tpe => unreachable!("check_split refuses a sharded tpe study"),
        Method::Asha => {
            let h = s.study.halving;
            tell(&observer, |o| o.started(Jobs::Draws(mine.len()), halving_work(&mine, &h)));
            let mut claims = work::JournalAsha::new(s.study, s.sweep)?;
            for e in claims.found() {
                tell(&observer, |o| o.trial_finished(&e, 0, runner::JobWork { planned: 0.0, trained: 0.0, seconds: 0.0 }));
            }
            runner.run_with(&mut claims, &observer)?;
            Ok(work::entries(s.sweep, s.study)?.0)
        }
        Method::Halving => {
            synchronous_halving(&runner, &mine, &s.study.halving, &observer)?;
            work::settle(s.sweep, s.study, last_rung.unwrap_or(1))?;
            Ok(work::entries(s.sweep, s.study)?.0)
        }
    }
}

/// Successive halving: every trial to the first rung, the best 1/eta of them to the next, ...
fn synchronous_halving(runner: &runner::Runner, mine: &[&Trial], h: &Halving, observer: &Mutex<&mut dyn SweepObserver>) -> Result<Vec<Entry>> {
    let h = *h;
    let sizes = halving::sizes(mine.len(), &h);
    tell(observer, |o| o.started(Jobs::Exactly(sizes.iter().sum()), halving_work(mine, &h)));
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
/// before it: such studies cannot be split into shards (`--shard`; tpe runs on many processes
/// with `--join`), and halving and asha are not gathered by `--collect`.
pub fn check_split(sweep: &SweepDir, study: &Study, shard: bool, collect: bool) -> Result<()> {
    let why = match study.method {
        Method::Grid | Method::Random => return Ok(()),
        Method::Tpe if !shard => return Ok(()),
        Method::Asha if !shard => return Ok(()),
        Method::Halving | Method::Asha => "promotes across all its trials at every rung",
        Method::Tpe => "suggests each trial from the results of the ones before it",
    };
    let (m, shown) = (study.method.name(), sweep.path().display());
    match (shard, collect) {
        (true, _) => Err(Error::input(format!(
            "--shard: a {m} study {why}, so it cannot be split; run it whole, or from many processes with `sweep SPACE.toml --out DIR --join` (tpe, asha), or shard a grid or random study"
        ))),
        (_, true) => Err(Error::input(format!(
            "--collect gathers a grid, random, tpe or asha study run by shards or --join; continue a {m} study with `sweep --resume {shown}`"
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
    Err(Error::config(format!(
        "{}: the study's batch_size reaches {largest}, more than the {n} training images left after holding out val_size = {}; use smaller batches or a smaller val_size",
        s.sweep.file(STUDY_FILE).display(),
        s.data.test.len()
    )))
}

/// The finished trials of a grid or random study as its folders hold them (after shards ran),
/// and the indices of the trials not finished.
pub fn collect(sweep: &SweepDir, study: &Study) -> Result<(Vec<Entry>, Vec<usize>)> {
    work::convert(sweep, study)?;
    let (entries, missing) = work::entries(sweep, study)?;
    for e in &entries {
        check_trained_as_study(&sweep.trial(e.trial.index), &e.trial)?;
    }
    Ok((entries, missing))
}

/// A trial folder a shard left must hold the study's trial: a shard run by another binary or
/// from another study may have trained other values. The recipes are compared field by field,
/// all but `epochs` and what the run writes (`config::OUTPUT_FIELDS`).
fn check_trained_as_study(run: &RunDir, trial: &Trial) -> Result<()> {
    let path = run.file(crate::run::CONFIG_FILE);
    let again = "remove the folder and run its shard again";
    if !path.is_file() {
        return Err(Error::input(format!("{}: missing, so the trial's recipe is unknown; {again}", path.display())));
    }
    let saved = crate::config::TrainConfig::load(&path)?;
    let fields = |c: &crate::config::TrainConfig| match toml::Value::try_from(c) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    let (saved, want) = (fields(&saved), fields(&trial.config));
    let kept = |k: &str| k == "epochs" || crate::config::OUTPUT_FIELDS.contains(&k);
    let differ: Vec<&String> = want.keys().filter(|k| !kept(k) && saved.get(*k) != want.get(*k)).collect();
    if differ.is_empty() {
        return Ok(());
    }
    let list = |t: &toml::Table| differ.iter().map(|k| format!("{k} = {}", t.get(*k).map_or("(none)".to_string(), |v| v.to_string()))).collect::<Vec<_>>().join(", ");
    Err(Error::input(format!(
        "{}: {} but the study's trial {} has {}; this trial was trained by another binary or study; {again}",
        path.display(),
        list(&saved),
        trial.index,
        list(&want)
    )))
}

/// Where the `missing` trials are, for the N the shards noted: `shard 1/2 (001, 003)`, a part
/// per shard; None when no shard ran.
pub fn missing_shards(sweep: &SweepDir, study: &Study, missing: &[usize]) -> Result<Option<String>> {
    let Some(n) = sweep.shards() else { return Ok(None) };
    let trials = study.trials()?;
    let shard = Shard::assign(&trials, n);
    let mut held: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (t, k) in trials.iter().zip(shard) {
        if missing.contains(&t.index) {
            held.entry(k).or_default().push(format!("{:03}", t.index));
        }
    }
    let parts: Vec<String> = held.iter().map(|(k, list)| format!("shard {k}/{n} ({})", list.join(", "))).collect();
    Ok(Some(parts.join(", ")))
}

/// Rank the entries (best first) and write `leaderboard.csv`, `sweep.png`, the study's charts
/// (`history`, `parallel`, `slices`; PNG and SVG) and, when a trial finished, `best.toml`.
pub fn publish(sweep: &SweepDir, study: &Study, entries: &mut [Entry]) -> Result<()> {
    leaderboard::rank_by(entries, study.method, study.objectives[0]);
    let several = study.objectives.len() > 1;
    let front = if several { work::pareto(sweep, study)? } else { Default::default() };
    leaderboard::write_csv(&sweep.file(LEADERBOARD_FILE), study, entries, &front)?;
    if several {
        charts::pareto(&sweep.file(charts::PARETO), study, entries, &front)?;
    }
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
    if run.holds_run() && !run.load_config().is_ok_and(|c| c.same_recipe(&cfg)) {
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
        // Seven trials of equal work: one at a time to the emptiest shard, the lowest first.
        let study = Study::parse("[space]\nseed = [1, 2, 3, 4, 5, 6, 7]\n", "s.toml", StudyOverrides::default()).unwrap();
        let trials = study.trials().unwrap();
        assert_eq!(Shard::assign(&trials, 3), [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(s.trials(&trials), [1, 4]);
        let all: Vec<usize> = (0..3).flat_map(|k| Shard { k, n: 3 }.trials(&trials)).collect();
        assert_eq!(all.len(), 7);
        for bad in ["3/3", "1", "a/2", "1/0", "-1/2"] {
            assert!(bad.parse::<Shard>().unwrap_err().contains("K/N"), "{bad}");
        }
    }

    /// Largest over smallest shard's work when `trials` are split by `shard` into `n`.
    fn spread(trials: &[Trial], n: usize, shard: &dyn Fn(&Trial) -> usize) -> f64 {
        let mut load = vec![0.0; n];
        trials.iter().for_each(|t| load[shard(t)] += t.config.epochs as f64 * runner::cost_per_epoch(&t.config));
        load.iter().copied().fold(0.0, f64::max) / load.iter().copied().fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn shards_get_about_equal_work() {
        // lr.toml: 5 rates x 5/10/20 epochs of one model (epochs vary slowest: trials 10-14
        // are the 20-epoch ones), 175 epochs in 3 shards: 60, 60 and 55.
        let lr = Study::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sweeps/lr.toml"), StudyOverrides::default()).unwrap();
        let trials = lr.trials().unwrap();
        let assigned = Shard::assign(&trials, 3);
        let balanced = spread(&trials, 3, &|t: &Trial| assigned[t.index]);
        assert!((balanced - 60.0 / 55.0).abs() < 1e-9 && balanced <= 1.3, "largest / smallest shard: {balanced}");
        // The trial index modulo 3 gave 65, 60 and 50 epochs.
        assert!((spread(&trials, 3, &|t: &Trial| t.index % 3) - 65.0 / 50.0).abs() < 1e-9);
        // Each shard process finds the same split from the study alone.
        assert_eq!(Shard::assign(&lr.trials().unwrap(), 3), assigned);

        // Where the costly field varies fastest, the index modulo N gave one shard every wide
        // model: 8 times the work of the other. The split by work evens them out.
        let wide = Study::parse("[space]\nlr = [0.01, 0.03, 0.1, 0.3]\nwidth = [16, 1024]\n", "s.toml", StudyOverrides::default()).unwrap();
        let trials = wide.trials().unwrap();
        let by_index = spread(&trials, 2, &|t: &Trial| t.index % 2);
        assert!(by_index > 8.0, "{by_index}");
        let assigned = Shard::assign(&trials, 2);
        assert_eq!(spread(&trials, 2, &|t: &Trial| assigned[t.index]), 1.0);
    }

    #[test]
    fn a_folder_holds_one_study() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = SweepDir::new(dir.path().join("s"));
        let study = Study::parse("[space]\nlr = [0.1, 0.2]\n", "a.toml", StudyOverrides::default()).unwrap();
        assert!(sweep.load_study().unwrap_err().to_string().contains("no sweep here"));
        assert!(!sweep.start(&study, false).unwrap());
        assert_eq!(sweep.load_study().unwrap(), study);
        // A study that never started a trial starts over, another one too.
        let other = Study { seed: 1, ..study.clone() };
        assert!(sweep.start(&other, false).unwrap());
        assert_eq!(sweep.load_study().unwrap(), other);
        assert!(sweep.start(&study, false).unwrap());
        std::fs::create_dir_all(sweep.trial(0).path()).unwrap();
        assert!(sweep.start(&study, false).unwrap_err().to_string().contains("sweep --resume"));
        assert!(!sweep.start(&study, true).unwrap());
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
