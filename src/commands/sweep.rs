//! `sweep`: run a study (or continue, shard or collect one), show progress over the trials,
//! then print the leaderboard's top and the refit's test accuracy.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use super::progress::{EpochLines, format_left};
use super::{BackendArg, DataArgs, Out, print_line, process};
use crate::backend::Selected;
use crate::data::Need;
use crate::error::{Error, Result};
use crate::run::RunDir;
use crate::run::info::RunInfo;
use crate::sweep::runner::JobWork;
use crate::sweep::{self, Entry, Jobs, Method, Search, Shard, Status, Study, StudyOverrides, SweepDir, SweepObserver, leaderboard};
use crate::train::{RunControl, TrainData};

#[derive(Args, Debug, Clone)]
pub struct SweepArgs {
    /// The study (TOML; see config/sweeps/). With --resume or --collect: the sweep folder.
    #[arg(value_name = "SPACE.toml|DIR")]
    pub space: Option<PathBuf>,
    /// The sweep folder (default: sweeps/ and the space file's name).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Search method (default: the file's `method`).
    #[arg(long, value_enum)]
    pub method: Option<Method>,
    /// Configurations a random, halving, asha or tpe search tries (default: the file's `trials`).
    #[arg(long, value_name = "N")]
    pub trials: Option<usize>,
    /// Trials trained at once, the CPU cores split between them (the data is loaded once).
    #[arg(long, value_name = "K", default_value_t = sweep::DEFAULT_WORKERS)]
    pub workers: usize,
    /// Seed of the random draws (default: the file's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Set a field of the study's [fixed] recipe (repeatable), e.g. --set batch_size=128;
    /// a field the study sweeps is refused. Saved in the sweep folder's sweep.toml.
    #[arg(long = "set", value_name = "FIELD=VALUE", conflicts_with = "enqueue")]
    pub set: Vec<String>,
    /// Continue the sweep in DIR after Ctrl-C or a crash: the same trials, finished ones kept.
    #[arg(long)]
    pub resume: bool,
    /// Run only shard K of N, into a folder the N shards share: the trials are split by their
    /// estimated work (epochs times the model's size), the same way in every shard.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Build the leaderboard and the refit from the trials in DIR (after the shards); refused
    /// while some are not finished, unless --partial.
    #[arg(long, conflicts_with_all = ["shard", "resume"])]
    pub collect: bool,
    /// With --collect: rank and refit the finished trials even though others are missing.
    #[arg(long, requires = "collect")]
    pub partial: bool,
    /// Run the study with any number of other processes, on any nodes that share DIR: create
    /// it, or join it if it exists with the same space; each takes its work from the study's
    /// journal (journal.log). Then `sweep --collect DIR` ranks the trials and refits the best.
    #[arg(long, conflicts_with_all = ["resume", "collect", "shard"])]
    pub join: bool,
    /// Add a trial to the study in DIR, with the given values (FIELD=VALUE ...; the fields not
    /// given are drawn): the next free worker trains it first.
    #[arg(long, conflicts_with_all = ["resume", "collect", "shard", "join"])]
    pub enqueue: bool,
    /// With --enqueue: the trial's values, e.g. lr=0.1 width=256.
    #[arg(value_name = "FIELD=VALUE", requires = "enqueue")]
    pub values: Vec<String>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub backend: BackendArg,
}

pub fn sweep(args: &SweepArgs, out: Out) -> Result<()> {
    if args.workers == 0 {
        return Err(Error::input("--workers must be at least 1"));
    }
    if args.enqueue {
        return enqueue(args, out);
    }
    let mut notes = Vec::new();
    let (dir, study) = resolve(args, &mut notes)?;
    sweep::check_split(&dir, &study, args.shard.is_some(), args.collect)?;
    if args.join && study.method == Method::Halving {
        return Err(Error::input("--join: a halving study waits for every trial at each rung, so it runs in one process; use method = \"asha\" (asynchronous) to run it from many"));
    }
    // Shards share the folder (each trial has its own lock), and so do joined processes; anyone
    // else holds it alone.
    let _lock = match (args.shard, args.join) {
        (Some(_), _) => None,
        (None, true) => Some(dir.lock_shared()?),
        (None, false) => Some(dir.lock()?),
    };
    // A backend that cannot run fails before the study is written.
    let selected = args.backend.open(out)?;
    notes.into_iter().for_each(&mut *out);
    if args.resume || args.collect {
        if sweep::work::convert(&dir, &study)? {
            out(format!("{}: the study is now kept in its journal, {} (Optuna's format)", dir.path().display(), dir.file(sweep::journal::JOURNAL_FILE).display()));
        }
    } else {
        if dir.start(&study, args.shard.is_some() || args.join)? {
            out(format!("{}: holds a sweep that never started a trial; starting it over", dir.path().display()));
        }
        let lag = (study.method == Method::Tpe && !args.join).then_some(args.workers);
        sweep::work::begin(&dir, &study, args.shard.is_some() || args.join, lag)?;
    }
    for w in sweep::work::journal_of(&dir).read()?.warnings {
        out(format!("warning: {w}"));
    }
    if args.collect {
        let (mut entries, missing) = sweep::collect(&dir, &study)?;
        if !missing.is_empty() {
            let list = missing.iter().map(|i| format!("{i:03}")).collect::<Vec<_>>().join(", ");
            if !args.partial {
                let shown = dir.path().display();
                let again = match (dir.shards(), sweep::missing_shards(&dir, &study, &missing)?) {
                    (Some(_), Some(shards)) => format!("run the shards that hold them again ({shards} of `sweep SPACE.toml --out {shown} --shard K/N`)"),
                    (Some(_), None) => format!("run the shards that hold them again (`sweep SPACE.toml --out {shown} --shard K/N`)"),
                    (None, _) => format!("run `sweep SPACE.toml --out {shown} --join` again (a trial whose worker died is continued from its checkpoint)"),
                };
                return Err(Error::failure(format!(
                    "--collect: {} trial(s) of the study are not finished ({list}); {again}, then `sweep --collect {shown}` again, or pass --partial to rank and refit the finished ones",
                    missing.len()
                )));
            }
            out(format!("collect --partial: {} trial(s) not finished ({list}); ranking the finished ones", missing.len()));
        }
        show(&dir, &study, &mut entries, out)?;
        let loaded = args.data.load(Need::All, out)?;
        let data = TrainData { train: Arc::new(loaded.train), test: Arc::new(loaded.test), held_out: Default::default() };
        return refit(&dir, &entries, &data, &selected, out);
    }
    let loaded = args.data.load(Need::TrainOnly, out)?;
    let data = sweep::hold_out(loaded.train, study.val_size)?;
    let shard = args.shard.map(|s| format!(", shard {}/{}", s.k, s.n)).unwrap_or_default();
    out(format!(
        "sweep: {} | {} worker(s){shard} | ranked on {} held-out training images | {}",
        study.describe(),
        args.workers,
        data.test.len(),
        dir.path().display()
    ));
    let stop = process::stop_switch();
    let search = Search { sweep: &dir, study: &study, data: &data, device: &selected.device, workers: args.workers, stop: &stop, shard: args.shard, join: args.join };
    let mut progress = Progress::new();
    let began = Instant::now();
    let found = sweep::search(&search, &mut progress);
    progress.close();
    let mut entries = found?;
    let wall = began.elapsed().as_secs_f64();
    out(format!("search: {} trial(s) in {wall:.1} s{}", entries.len(), idle_note(progress.busy, wall, args.workers)));
    if let Some(s) = args.shard {
        out(format!("shard {}/{} done; when every shard is, run `sweep --collect {}`", s.k, s.n, dir.path().display()));
        return Ok(());
    }
    if args.join {
        let (mut all, open) = sweep::work::entries(&dir, &study)?;
        if !open.is_empty() {
            out(format!("this process is done; {} trial(s) are still running elsewhere; when every process is, run `sweep --collect {}`", open.len(), dir.path().display()));
            return Ok(());
        }
        show(&dir, &study, &mut all, out)?;
        out(format!("the study is finished; `sweep --collect {}` refits the best recipe on all the training images", dir.path().display()));
        return Ok(());
    }
    show(&dir, &study, &mut entries, out)?;
    // Only now, for the refit, is the test set read.
    let test = args.data.load(Need::TestOnly, out)?.test;
    let full = TrainData { train: Arc::new(sweep::rejoin(data)), test: Arc::new(test), held_out: Default::default() };
    refit(&dir, &entries, &full, &selected, out)
}

/// `sweep --enqueue DIR FIELD=VALUE ...`.
fn enqueue(args: &SweepArgs, out: Out) -> Result<()> {
    let Some(path) = args.space.clone().or_else(|| args.out.clone()) else {
        return Err(Error::input("--enqueue needs the study's folder: `sweep --enqueue DIR lr=0.1 width=256`"));
    };
    let dir = SweepDir::new(path);
    let study = dir.load_study()?;
    if study.method == Method::Halving {
        return Err(Error::input("--enqueue: a halving study trains the trials it drew, rung by rung; enqueue into a grid, random, tpe or asha study"));
    }
    let mut given = Vec::new();
    for v in &args.values {
        let Some((k, x)) = v.split_once('=') else {
            return Err(Error::input(format!("--enqueue: `{v}` is not FIELD=VALUE, e.g. lr=0.1")));
        };
        given.push((k.trim().to_string(), x.trim().to_string()));
    }
    sweep::work::convert(&dir, &study)?;
    let n = sweep::work::enqueue(&dir, &study, &given)?;
    out(format!("enqueued trial {n:03} in {}: the next free worker trains it first", dir.path().display()));
    Ok(())
}

/// The folder and its study: a new one from the space file, or the one saved in the folder;
/// `notes`: what to say about the space file (after the backend's line).
fn resolve(args: &SweepArgs, notes: &mut Vec<String>) -> Result<(SweepDir, Study)> {
    let o = StudyOverrides { method: args.method, trials: args.trials, seed: args.seed };
    if !(args.resume || args.collect) {
        let Some(space) = &args.space else {
            return Err(Error::input("sweep needs a space file: `sweep SPACE.toml` (see config/sweeps/), or `sweep --resume DIR`"));
        };
        let study = Study::load(space, o)?.with_settings(&crate::config::parse_settings(&args.set)?)?;
        let warnings = sweep::space::fixed_and_swept(space).into_iter().map(|w| format!("warning: {w}"));
        notes.extend(warnings.chain(method_note(space, &study).map(|n| format!("note: {n}"))));
        let name = space.file_stem().map_or_else(|| "sweep".into(), |s| s.to_string_lossy().into_owned());
        return Ok((SweepDir::new(args.out.clone().unwrap_or_else(|| PathBuf::from("sweeps").join(name))), study));
    }
    let flag = if args.resume { "--resume" } else { "--collect" };
    let dir = match (&args.space, &args.out) {
        (Some(p), None) | (None, Some(p)) => p.clone(),
        (Some(_), Some(_)) => return Err(Error::input(format!("{flag}: pass the sweep folder once, as DIR or as --out DIR"))),
        (None, None) => return Err(Error::input(format!("{flag} needs the sweep folder: `sweep {flag} DIR`"))),
    };
    if dir.is_file() {
        return Err(Error::input(format!(
            "{flag}: {} is a file; pass the sweep folder (its study is the folder's sweep.toml)",
            dir.display()
        )));
    }
    if args.method.is_some() || args.trials.is_some() || args.seed.is_some() || !args.set.is_empty() {
        return Err(Error::input(format!(
            "{flag} uses the study saved in {}/sweep.toml; --method, --trials, --seed and --set apply to a new sweep only",
            dir.display()
        )));
    }
    let sweep = SweepDir::new(dir);
    let study = sweep.load_study()?;
    Ok((sweep, study))
}

/// What `--method` changes in a study's epochs: a study with rungs run without them (each trial
/// then trains the recipe's epochs), or the other way round.
fn method_note(space: &std::path::Path, study: &Study) -> Option<String> {
    let own = Study::load(space, StudyOverrides::default()).ok()?;
    let m = study.method.name();
    let swept = study.space.iter().any(|p| p.name == "epochs");
    match (own.method.has_rungs(), study.method.has_rungs()) {
        (true, false) => {
            let n = if study.method == Method::Grid { study.grid_size() } else { study.trials.unwrap_or(0) };
            let e = study.fixed.epochs;
            let total = if swept { String::new() } else { format!(", {} in all", n * e) };
            Some(format!(
                "--method {m}: the study's [halving] rungs do not apply; each of its {n} trials trains {} epoch(s){total} (set epochs under [fixed] to change that)",
                if swept { "its swept".to_string() } else { e.to_string() }
            ))
        }
        (false, true) => Some(format!(
            "--method {m}: trials train in rungs of {} epoch(s) ([halving]), not the recipe's epochs",
            sweep::halving::rungs(&study.halving).iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
        )),
        _ => None,
    }
}

/// Rank the trials, write the leaderboard, the picture and best.toml, print the top 10.
fn show(dir: &SweepDir, study: &Study, entries: &mut [Entry], out: Out) -> Result<()> {
    sweep::publish(dir, study, entries)?;
    leaderboard::table(study, entries, 10).into_iter().for_each(&mut *out);
    let pareto = if study.objectives.len() > 1 { ", pareto" } else { "" };
    out(format!(
        "wrote {}, {} and the study's charts ({}{pareto}.png/.svg)",
        dir.file(sweep::LEADERBOARD_FILE).display(),
        dir.file(sweep::PICTURE_FILE).display(),
        sweep::charts::CHARTS.join(", ")
    ));
    Ok(())
}

/// Train the best recipe on all the training images into `best/` and test it once.
fn refit(dir: &SweepDir, entries: &[Entry], data: &TrainData, selected: &Selected, out: Out) -> Result<()> {
    let Some(best) = leaderboard::best(entries) else {
        return Err(Error::failure("no trial finished (every one diverged): nothing to refit; lower the learning rates in the study"));
    };
    out(format!(
        "refit: trial {:03} ({}) on all {} training images for {} epoch(s), tested once on {} images, into {}",
        best.trial.index,
        best.trial.describe(),
        data.train.len(),
        best.recipe().epochs,
        data.test.len(),
        dir.best().path().display()
    ));
    let control = RunControl {
        observer: Box::new(EpochLines::new(Box::new(print_line))),
        interrupter: process::stop_switch(),
        plots: true,
        tui: false,
        info: Some(RunInfo::new(selected.kind.name(), &selected.description)),
    };
    let refit = sweep::refit(dir, best, data, &selected.device, control).map_err(|e| match e {
        Error::Interrupted(_) => Error::Interrupted(format!("refit stopped; continue with `sweep --resume {}`", dir.path().display())),
        other => other,
    })?;
    if let Some(r) = refit.rows.last() {
        out(format!(
            "best: trial {:03}, validation accuracy {:.4}; refit test accuracy {:.4} (loss {:.4}); run folder {}",
            best.trial.index,
            best.val_acc(),
            r.test_acc,
            r.test_loss,
            dir.best().path().display()
        ));
    }
    super::refresh_report(&RunDir::new(dir.path()), out);
    Ok(())
}

/// How much of the workers' time went to training: "; 2 workers idle 12 % of the time".
fn idle_note(busy: f64, wall: f64, workers: usize) -> String {
    let offered = wall * workers as f64;
    if offered <= 0.0 || busy <= 0.0 {
        return String::new();
    }
    let idle = (1.0 - busy / offered).clamp(0.0, 1.0);
    format!("; {workers} worker(s) idle {:.0} % of the time", idle * 100.0)
}

/// A line per finished trial; on a terminal also a progress bar over the trials with the time
/// left, estimated from the work still to do (trials done before cost nothing, a trial counts
/// by its epochs and its model's size) at the rate of the work trained so far.
struct Progress {
    bar: Option<ProgressBar>,
    terminal: bool,
    done: usize,
    total: usize,
    /// asha: the counter counts the draws (`Jobs::Draws`); the trials seen so far.
    draws: Option<std::collections::BTreeSet<usize>>,
    began: Instant,
    work: WorkLeft,
    left: Arc<Mutex<Option<(Duration, Instant)>>>,
    /// Seconds the workers spent on jobs.
    busy: f64,
}

/// The search's work: planned in all, accounted for (trials finished, trained or not), trained.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct WorkLeft {
    pub total: f64,
    pub accounted: f64,
    pub trained: f64,
}

impl WorkLeft {
    /// Time left after `elapsed`: the unaccounted work at the rate of the trained work.
    pub fn time_left(&self, elapsed: Duration) -> Option<Duration> {
        (self.trained > 0.0).then(|| elapsed.mul_f64((self.total - self.accounted).max(0.0) / self.trained))
    }

    /// A job finished (trained, continued, or found done before).
    pub fn finished(&mut self, w: JobWork) {
        self.accounted += w.planned;
        self.trained += w.trained;
    }
}

impl Progress {
    fn new() -> Self {
        Self {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            done: 0,
            total: 0,
            draws: None,
            began: Instant::now(),
            work: WorkLeft::default(),
            left: Arc::new(Mutex::new(None)),
            busy: 0.0,
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(b) => b.suspend(|| print_line(text)),
            None => print_line(text),
        }
    }

    fn close(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl SweepObserver for Progress {
    fn started(&mut self, jobs: Jobs, work: f64) {
        let (jobs, unit) = match jobs {
            Jobs::Exactly(n) => (n, "trials"),
            Jobs::Draws(n) => {
                self.draws = Some(Default::default());
                (n, "draws")
            }
        };
        self.total = jobs;
        self.began = Instant::now();
        self.work = WorkLeft { total: work, ..WorkLeft::default() };
        if self.terminal {
            let b = ProgressBar::new(jobs as u64);
            let left = self.left.clone();
            let style = ProgressStyle::with_template(&format!("sweep [{{bar:30}}] {{pos}}/{{len}} {unit}, {{elapsed}} elapsed, {{left}}"))
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key("left", move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let text = match left.lock().ok().and_then(|g| *g) {
                        Some((d, at)) => format!("about {} left", format_left(d.saturating_sub(at.elapsed()))),
                        None => "time left: after the first trial".to_string(),
                    };
                    let _ = w.write_str(&text);
                });
            b.set_style(style.progress_chars("=> "));
            b.enable_steady_tick(Duration::from_secs(1));
            self.bar = Some(b);
        }
    }

    fn rung(&mut self, epochs: usize, trials: usize) {
        self.line(format!("rung: {trials} trial(s) to {epochs} epoch(s)"));
    }

    fn trial_finished(&mut self, e: &Entry, trained: usize, work: JobWork) {
        self.busy += work.seconds;
        // asha counts its draws: a trial seen before was promoted (or continued after a stop).
        let new = self.draws.as_mut().is_none_or(|seen| seen.insert(e.trial.index));
        if new {
            self.done += 1;
        }
        let count = if new { format!("{}/{}", self.done, self.total) } else { "promoted".to_string() };
        let what = match (e.status, trained) {
            (Status::Diverged, _) => "diverged".to_string(),
            (Status::Pruned, _) => "pruned".to_string(),
            (_, 0) => "done before".to_string(),
            (_, n) => format!("trained {n} epoch(s)"),
        };
        let loss = e.last().map_or(f64::NAN, |r| r.test_loss);
        self.line(format!(
            "trial {:03} [{}] {count}: {} epoch(s), val acc {:.4} loss {loss:.4}, {what}, {:.1} s",
            e.trial.index,
            e.trial.describe(),
            e.epochs(),
            e.val_acc(),
            e.seconds()
        ));
        self.work.finished(work);
        if let (Some(d), Ok(mut g)) = (self.work.time_left(self.began.elapsed()), self.left.lock()) {
            *g = Some((d, Instant::now()));
        }
        if let (Some(b), true) = (&self.bar, new) {
            b.inc(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_counts_only_work_still_to_do() {
        let mut w = WorkLeft { total: 100.0, ..WorkLeft::default() };
        assert_eq!(w.time_left(Duration::from_secs(1)), None);
        // Trials done before a resume cost nothing and say nothing about the rate.
        w.finished(JobWork { planned: 40.0, trained: 0.0, seconds: 0.1 });
        assert_eq!(w.time_left(Duration::from_secs(1)), None);
        // 10 units trained in 5 s: the 50 units left take 25 s.
        w.finished(JobWork { planned: 10.0, trained: 10.0, seconds: 5.0 });
        assert_eq!(w.time_left(Duration::from_secs(5)), Some(Duration::from_secs(25)));
    }

}
