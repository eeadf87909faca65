//! Training trials: each in its own run folder (new, or continued from its checkpoint), `K`
//! at a time on worker threads that split the cores and share the data.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use burn::train::Interrupter;

use super::leaderboard::{Entry, Status};
use super::trials::Trial;
use super::{SweepDir, SweepObserver};
use crate::config::{Overrides, TrainConfig};
use crate::error::{Error, Result};
use crate::run::{METRICS_FILE, RunDir, RunLock, metrics};
use super::journal::{Journal, Op, State};
use super::space::{Median, Study};
use super::work;
use crate::train::{self, Observer, RunControl, TrainData, TrainOptions, TrainOutcome, TrainPlan};

/// Written into a trial's folder when its loss blew up: the trial is over (a resumed sweep does
/// not train it again), and the file says why.
pub const DIVERGED_FILE: &str = "diverged.txt";

/// One trial trained to `epochs`, from `from` epochs (the rung before, for halving).
pub struct Job<'a> {
    pub trial: &'a Trial,
    pub epochs: usize,
    pub from: usize,
}

impl Job<'_> {
    /// The job's estimated cost, in [`cost_per_epoch`] units.
    pub fn work(&self) -> f64 {
        self.epochs.saturating_sub(self.from) as f64 * cost_per_epoch(&self.trial.config)
    }
}

/// A finished job's work: what it was planned at, and what it trained (less when the trial
/// had been trained before, from its checkpoint or in full), and the seconds its worker spent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobWork {
    pub planned: f64,
    pub trained: f64,
    pub seconds: f64,
}

/// A job a [`Scheduler`] makes: trial `trial` trained to `epochs`, from `from` epochs.
pub struct Task {
    pub trial: Trial,
    pub epochs: usize,
    pub from: usize,
    /// The trial folder's lock, when the job was claimed from the journal with it held.
    pub hold: Option<RunLock>,
}

/// What a free worker does next.
pub enum Next {
    Job(Task),
    /// Nothing now: a job in flight may make one.
    Wait,
    /// Nothing more for this worker.
    Done,
}

/// A search that makes its jobs as results come in (tpe, asha). Workers call it one at a time.
pub trait Scheduler: Send {
    fn next(&mut self) -> Result<Next>;
    /// A job of the scheduler's ended with `entry` (done or diverged).
    fn finished(&mut self, entry: &Entry);
    /// The trials it found trained before it started (a resumed search) and will not hand out.
    fn found(&mut self) -> Vec<Entry> {
        Vec::new()
    }
}

/// What the workers of [`Runner::run_with`] share.
struct Board<'s> {
    scheduler: &'s mut dyn Scheduler,
    /// The latest entry of every trial trained.
    entries: BTreeMap<usize, Entry>,
    errors: Vec<Error>,
}

/// A trial's estimated cost per epoch: the model's multiply-adds per image plus a fixed part
/// for what does not grow with the model (the batch, the loss, the Learner's bookkeeping).
pub fn cost_per_epoch(cfg: &TrainConfig) -> f64 {
    const FIXED: f64 = 100_000.0;
    let mut sizes = vec![crate::data::PIXELS];
    sizes.extend(&cfg.hidden);
    sizes.push(crate::data::NUM_CLASSES);
    FIXED + sizes.windows(2).map(|w| (w[0] * w[1]) as f64).sum::<f64>()
}

/// The order in which workers take the jobs: the costliest first, so that the longest trial
/// does not start last while the other workers sit idle (ties keep the trials' order).
/// Results still come back in job order, and a trial's result does not depend on when it ran.
pub fn costliest_first(jobs: &[Job]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| jobs[b].work().total_cmp(&jobs[a].work()).then(a.cmp(&b)));
    order
}

/// The jobs, taken one at a time by the workers in `order`.
struct Queue<'a> {
    jobs: &'a [Job<'a>],
    order: Vec<usize>,
    next: AtomicUsize,
}

impl<'a> Queue<'a> {
    /// The next job and its index in `jobs`.
    fn take(&self) -> Option<(usize, &'a Job<'a>)> {
        let k = self.next.fetch_add(1, Ordering::SeqCst);
        self.order.get(k).map(|&i| (i, &self.jobs[i]))
    }
}

/// What a job left: the trial's entry and the epochs this job trained (0: it was already done).
pub struct Finished {
    pub entry: Entry,
    pub trained: usize,
}

pub struct Runner<'a> {
    pub sweep: &'a SweepDir,
    /// Trials train on `train` and are scored on `test` (the validation split).
    pub data: &'a TrainData,
    pub device: &'a Device,
    pub workers: usize,
    /// The caller's stop switch (Ctrl-C): every trial in flight stops at its next step.
    pub stop: &'a Interrupter,
    /// The study, whose journal hears every trial's start, epochs and end.
    pub study: &'a Study,
    /// halving and asha: the last rung's epochs (a trial is finished there); others: None.
    pub last_rung: Option<usize>,
}

type Slot = Option<Result<Finished>>;

impl Runner<'_> {
    /// Run the jobs, `workers` at a time; results in job order. The first error stops the
    /// other workers; a diverging trial is not an error (its entry says so).
    pub fn run(&self, jobs: &[Job], observer: &Mutex<&mut dyn SweepObserver>) -> Result<Vec<Entry>> {
        let queue = Queue { jobs, order: costliest_first(jobs), next: AtomicUsize::new(0) };
        let slots: Mutex<Vec<Slot>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
        let abort = Interrupter::new();
        let workers = self.workers.clamp(1, jobs.len().max(1));
        let threads = (std::thread::available_parallelism().map_or(1, |n| n.get()) / workers).max(1);
        let started: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| s.spawn(|| self.worker(&queue, &slots, &abort, observer, (workers > 1).then_some(threads))))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(panicked()))).collect()
        });
        let slots = slots.into_inner().map_err(|_| panicked())?;
        let mut errors: Vec<Error> = started.into_iter().filter_map(|r| r.err()).collect();
        let mut entries = Vec::new();
        for slot in slots.into_iter().flatten() {
            match slot {
                Ok(f) => entries.push(f.entry),
                Err(e) => errors.push(e),
            }
        }
        // The other workers stop because of the first failure: report it, not their stops.
        if let Some(pos) = errors.iter().position(|e| !matches!(e, Error::Interrupted(_))).or((!errors.is_empty()).then_some(0)) {
            return Err(self.explain(errors.swap_remove(pos)));
        }
        Ok(entries)
    }

    fn explain(&self, e: Error) -> Error {
        match e {
            Error::Interrupted(_) => Error::Interrupted(format!(
                "sweep stopped; finished trials and the checkpoints of unfinished ones are kept, continue with `sweep --resume {}`",
                self.sweep.path().display()
            )),
            other => other,
        }
    }

    /// Run the jobs `scheduler` makes, `workers` at a time, until it has none left; the
    /// latest entry of each trial, in trial order. Errors as for [`Runner::run`].
    pub fn run_with(&self, scheduler: &mut dyn Scheduler, observer: &Mutex<&mut dyn SweepObserver>) -> Result<Vec<Entry>> {
        let entries = scheduler.found().into_iter().map(|e| (e.trial.index, e)).collect();
        let board = Mutex::new(Board { scheduler, entries, errors: Vec::new() });
        let wake = Condvar::new();
        let abort = Interrupter::new();
        let workers = self.workers.max(1);
        let threads = (std::thread::available_parallelism().map_or(1, |n| n.get()) / workers).max(1);
        let started: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..workers).map(|_| s.spawn(|| self.taker(&board, &wake, &abort, observer, (workers > 1).then_some(threads)))).collect();
            let joined = handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(panicked()))).collect();
            wake.notify_all();
            joined
        });
        let board = board.into_inner().map_err(|_| panicked())?;
        let mut errors: Vec<Error> = started.into_iter().filter_map(|r| r.err()).chain(board.errors).collect();
        if let Some(pos) = errors.iter().position(|e| !matches!(e, Error::Interrupted(_))).or((!errors.is_empty()).then_some(0)) {
            return Err(self.explain(errors.swap_remove(pos)));
        }
        Ok(board.entries.into_values().collect())
    }

    /// A worker of [`Runner::run_with`]: take the scheduler's next job, train it, tell it.
    fn taker(&self, board: &Mutex<Board>, wake: &Condvar, abort: &Interrupter, observer: &Mutex<&mut dyn SweepObserver>, threads: Option<usize>) -> Result<()> {
        let pool = self.pool(threads, abort)?;
        let fail = |e: Error| {
            abort.stop(None);
            wake.notify_all();
            e
        };
        loop {
            let task = {
                let mut b = board.lock().map_err(|_| fail(panicked()))?;
                loop {
                    if abort.should_stop() || self.stop.should_stop() {
                        return Ok(());
                    }
                    match b.scheduler.next().map_err(fail)? {
                        Next::Job(t) => break t,
                        Next::Done => return Ok(()),
                        // Woken when a job ends; the timeout also notices a stop.
                        Next::Wait => b = wake.wait_timeout(b, Duration::from_millis(200)).map_err(|_| fail(panicked()))?.0,
                    }
                }
            };
            let job = Job { trial: &task.trial, epochs: task.epochs, from: task.from };
            let began = Instant::now();
            let hold = task.hold;
            let result = match &pool {
                Some(p) => p.install(|| self.run_one(&job, hold, abort)),
                None => self.run_one(&job, hold, abort),
            };
            let mut b = board.lock().map_err(|_| fail(panicked()))?;
            match result {
                Ok(f) => {
                    b.scheduler.finished(&f.entry);
                    if let Ok(mut o) = observer.lock() {
                        o.trial_finished(&f.entry, f.trained, job_work(&job, &f, began));
                    }
                    b.entries.insert(f.entry.trial.index, f.entry);
                }
                Err(e) => {
                    b.errors.push(e);
                    abort.stop(None);
                }
            }
            wake.notify_all();
        }
    }

    /// Each worker gets its share of the cores: the backend's matrix products and element-wise
    /// kernels run on the rayon pool of the calling thread.
    fn pool(&self, threads: Option<usize>, abort: &Interrupter) -> Result<Option<rayon::ThreadPool>> {
        threads.map(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build()).transpose().map_err(|e| {
            abort.stop(None);
            Error::failure_with("cannot start the threads of a sweep worker", e)
        })
    }

    fn worker(&self, queue: &Queue, slots: &Mutex<Vec<Slot>>, abort: &Interrupter, observer: &Mutex<&mut dyn SweepObserver>, threads: Option<usize>) -> Result<()> {
        let pool = self.pool(threads, abort)?;
        loop {
            let Some((i, job)) = queue.take().filter(|_| !abort.should_stop()) else {
                return Ok(());
            };
            let began = Instant::now();
            let result = match &pool {
                Some(p) => p.install(|| self.run_one(job, None, abort)),
                None => self.run_one(job, None, abort),
            };
            match &result {
                Ok(f) => {
                    if let Ok(mut o) = observer.lock() {
                        o.trial_finished(&f.entry, f.trained, job_work(job, f, began));
                    }
                }
                Err(_) => abort.stop(None),
            }
            if let Ok(mut s) = slots.lock() {
                s[i] = Some(result);
            }
        }
    }

    fn run_one(&self, job: &Job, hold: Option<RunLock>, abort: &Interrupter) -> Result<Finished> {
        let (run, n) = (self.sweep.trial(job.trial.index), job.trial.index);
        let done = |status, trained| -> Result<Finished> {
            let rows = metrics::read(&run.file(METRICS_FILE))?;
            Ok(Finished { entry: Entry { trial: job.trial.clone(), rows, status }, trained })
        };
        let journal = work::journal_of(self.sweep);
        // The journal says what became of the trial; the folder's mark stays for older studies.
        let known = journal.read()?.trial(n).map(|t| t.state);
        match known {
            Some(State::Fail) => return done(Status::Diverged, 0),
            Some(State::Pruned) => return done(Status::Pruned, 0),
            _ if run.file(DIVERGED_FILE).exists() => return done(Status::Diverged, 0),
            _ => {}
        }
        if self.stop.should_stop() {
            return Err(Error::Interrupted("stopped before the trial started".into()));
        }
        let claimed = hold.is_some();
        let _lock = match hold {
            Some(l) => l,
            None => run.lock()?,
        };
        if !claimed {
            journal.transact(|r| {
                let state = r.trial(n).map(|t| t.state);
                if state.is_none() && r.trials.len() != n {
                    return Err(Error::failure(format!("{}: trial {n} is not in the study's journal; continue the study with `sweep --resume`", journal.path().display())));
                }
                let ops = if state.is_some_and(State::is_finished) { Vec::new() } else { work::start_ops(self.study, state, job.trial) };
                Ok((ops, ()))
            })?;
        }
        let own = Interrupter::new();
        let last = self.last_rung.unwrap_or(job.trial.config.epochs);
        let pruned = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let report = Report { journal: journal.clone(), trial: n, last, pruner: self.study.pruner, pruned: pruned.clone(), best: f64::NAN };
        let watch = Watch { own: own.clone(), sources: vec![self.stop.clone(), abort.clone()], report };
        let control = RunControl { observer: Box::new(watch), interrupter: own, plots: false, tui: false, info: None };
        // The value is the last intermediate value, in full (metrics.csv keeps 6 decimals).
        let end = |state: State, extra: Vec<Op>| -> Result<()> {
            super::hparams::trial_ended(&run, job.trial, state)?;
            let rows = metrics::read(&run.file(METRICS_FILE))?;
            let entry = Entry { trial: job.trial.clone(), rows, status: Status::Done };
            journal.transact(|r| {
                let last = r.trial(n).and_then(|t| t.intermediate.values().last().copied());
                let values = match state {
                    State::Fail => None,
                    // Several objectives: Optuna keeps no values for a pruned trial's front.
                    State::Pruned if self.study.objectives.len() > 1 => None,
                    _ if self.study.objectives.len() > 1 => Some(self.study.objectives.iter().map(|o| o.of(&entry, last)).collect()),
                    _ => last.map(|v| vec![v]),
                };
                let mut ops = extra;
                ops.push(Op::State { trial: n, state, values });
                Ok((ops, ()))
            })
        };
        super::hparams::trial_started(&run, self.study, job.trial)?;
        match train_to(&run, &job.trial.config, job.epochs, Some(1), self.data, self.device, control) {
            // Read back from metrics.csv like every other entry: a trial's figures are the file's,
            // whether it trained now or before a resume (tpe and asha decide on them).
            Ok(o) => {
                if job.epochs >= last && known != Some(State::Complete) {
                    end(State::Complete, Vec::new())?;
                }
                done(Status::Done, o.trained)
            }
            Err(e) if is_divergence(&e) => {
                let path = run.file(DIVERGED_FILE);
                crate::fsutil::atomic_write(&path, format!("{e}\n").as_bytes()).map_err(|err| Error::io("cannot write", &path, err))?;
                end(State::Fail, vec![Op::TrialUserAttr { trial: n, key: work::REASON.into(), value: e.to_string().into() }])?;
                done(Status::Diverged, 0)
            }
            Err(Error::Interrupted(_)) if pruned.load(Ordering::SeqCst) => {
                end(State::Pruned, Vec::new())?;
                let trained = metrics::read(&run.file(METRICS_FILE))?.len();
                done(Status::Pruned, trained)
            }
            Err(e) => Err(e),
        }
    }
}

fn job_work(job: &Job, f: &Finished, began: Instant) -> JobWork {
    let trained = f.trained as f64 * cost_per_epoch(&job.trial.config);
    JobWork { planned: job.work(), trained, seconds: began.elapsed().as_secs_f64() }
}

fn panicked() -> Error {
    Error::failure("internal: a sweep worker panicked (a bug: please report it)")
}

fn is_divergence(e: &Error) -> bool {
    matches!(e, Error::Diverged(_))
}

/// Train `cfg` in `run` up to `epochs`: a new run in an empty folder, else the continuation of
/// the run there from its latest checkpoint (which must have the same recipe).
pub fn train_to(run: &RunDir, cfg: &TrainConfig, epochs: usize, keep: Option<usize>, data: &TrainData, device: &Device, control: RunControl) -> Result<TrainOutcome> {
    let opts = TrainOptions {
        config: Some(cfg.clone()),
        overrides: Overrides { epochs: Some(epochs), ..Default::default() },
        resume: run.holds_run(),
        keep_checkpoints: keep,
        ..Default::default()
    };
    let plan = TrainPlan::prepare(run, &opts, device)?;
    train::run(&plan, data, device, control)
}

/// Stops its trial when the caller's stop switch or the sweep's abort flag is set (a trial
/// has its own interrupter: a diverging trial stops itself, not the sweep).
struct Watch {
    own: Interrupter,
    sources: Vec<Interrupter>,
    report: Report,
}

/// Writes each epoch's validation accuracy to the journal (Optuna's intermediate values), and
/// stops the trial when the study's pruner says so.
struct Report {
    journal: Journal,
    trial: usize,
    /// The epochs at which the trial is finished (never pruned there).
    last: usize,
    pruner: Option<Median>,
    pruned: Arc<std::sync::atomic::AtomicBool>,
    /// The best validation accuracy so far.
    best: f64,
}

impl Report {
    /// Returns whether to prune the trial after `row`.
    fn epoch(&mut self, row: &crate::run::metrics::EpochRow) -> Result<bool> {
        let (step, value) = (row.epoch as i64, row.test_acc);
        // Optuna's readers take NaN, but optuna-dashboard fails on it: a NaN epoch is left out.
        if !value.is_finite() {
            return Ok(false);
        }
        self.best = if self.best.is_nan() { value } else { self.best.max(value) };
        let best = self.best;
        let (trial, last, pruner) = (self.trial, self.last, self.pruner);
        self.journal.transact(|r| {
            let prune = pruner.is_some_and(|m| row.epoch < last && should_prune(r, &m, step, best));
            Ok((vec![Op::Intermediate { trial, step, value }], prune))
        })
    }
}

/// Optuna's MedianPruner at `step` (maximising): after `warmup` epochs and `startup` finished
/// trials, prune when the trial's best so far is below the median of the finished trials'
/// values at `step` (a NaN best is pruned).
pub fn should_prune(r: &super::journal::Replay, m: &Median, step: i64, best: f64) -> bool {
    if step as usize <= m.warmup {
        return false;
    }
    let complete: Vec<&super::journal::JTrial> = r.trials.iter().filter(|t| t.state == State::Complete).collect();
    if complete.is_empty() || complete.len() < m.startup {
        return false;
    }
    let mut at: Vec<f64> = complete.iter().filter_map(|t| t.intermediate.get(&step).copied()).filter(|v| !v.is_nan()).collect();
    if at.is_empty() {
        return false;
    }
    if best.is_nan() {
        return true;
    }
    at.sort_by(f64::total_cmp);
    // numpy's percentile(50) with linear interpolation.
    let pos = (at.len() - 1) as f64 * 0.5;
    let (lo, hi) = (at[pos.floor() as usize], at[pos.ceil() as usize]);
    let median = lo + (hi - lo) * (pos - pos.floor());
    best < median
}

impl Watch {
    fn check(&self) {
        if self.sources.iter().any(|s| s.should_stop()) {
            self.own.stop(Some("the sweep is stopping"));
        }
        if self.report.pruned.load(Ordering::SeqCst) {
            self.own.stop(Some("pruned"));
        }
    }
}

impl Observer for Watch {
    fn epoch_finished(&mut self, row: &crate::run::metrics::EpochRow, _total_epochs: usize) {
        // A journal that cannot be written stops the trial: its epochs would be missing there.
        match self.report.epoch(row) {
            Ok(false) => {}
            // Stopped when the next epoch starts: by then this epoch's checkpoint is saved, and
            // a stop between an epoch's row and its checkpoint would drop the row.
            Ok(true) => self.report.pruned.store(true, Ordering::SeqCst),
            Err(_) => self.own.stop(Some("the study's journal cannot be written")),
        }
    }

    fn split_started(&mut self, _epoch: usize, _total: usize, _valid: bool, _items: usize) {
        self.check();
    }

    fn split_progress(&mut self, _items_done: usize) {
        self.check();
    }
}

/// Split off the validation images and share both parts among the workers.
pub fn hold_out(train: crate::data::Split, val_size: usize) -> Result<TrainData> {
    TrainData::hold_out(train, val_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(index: usize, hidden: Vec<usize>, epochs: usize) -> Trial {
        Trial { index, params: Vec::new(), config: TrainConfig { hidden, epochs, ..TrainConfig::default() } }
    }

    #[test]
    fn the_costliest_trials_start_first_and_ties_keep_their_order() {
        let t = [trial(0, vec![16], 10), trial(1, vec![1024], 10), trial(2, vec![16], 10), trial(3, vec![256], 10), trial(4, vec![1024], 2)];
        let jobs: Vec<Job> = t.iter().map(|t| Job { trial: t, epochs: t.config.epochs, from: 0 }).collect();
        assert_eq!(costliest_first(&jobs), vec![1, 3, 4, 0, 2]);
        // A rung that continues from 9 epochs costs only the epochs still to train.
        let rung = [Job { trial: &t[1], epochs: 10, from: 9 }, Job { trial: &t[3], epochs: 10, from: 0 }];
        assert_eq!(costliest_first(&rung), vec![1, 0]);
    }
}
