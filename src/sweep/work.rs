//! The study's journal at work: the study created in it (its planned trials WAITING, as Optuna's
//! `enqueue_trial` writes them), the next job claimed from it under its lock, each epoch and each
//! end written to it, and the leaderboard's entries read back from it. Any number of processes
//! on any nodes that share the folder run one study this way (`sweep --join`).
//!
//! A trial is claimed inside the journal's lock, and its folder's lock (an OS lock, dropped when
//! its process dies) is taken before the claim is written: a RUNNING trial whose folder lock is
//! free belongs to a dead worker, and the next worker continues it from its checkpoint.

use std::collections::BTreeSet;

use serde_json::{Map, Value as Json};
use toml::Value;

use super::journal::{self, JTrial, Journal, Op, Replay, State, params};
use super::leaderboard::{Entry, Status};
use super::runner::{Next, Scheduler, Task, cost_per_epoch};
use super::space::{Method, Study};
use super::trials::{Trial, draw};
use super::{SweepDir, tpe};
use crate::error::{Error, Result};
use crate::run::{METRICS_FILE, RunLock, metrics};

/// System attributes this binary keeps on trials and the study.
pub const PLANNED: &str = "d2l:planned";
pub const OWNER: &str = "d2l:owner";
pub const LAG: &str = "d2l:lag";
/// User attributes Optuna users read.
pub const REASON: &str = "reason";
pub const FOLDER: &str = "folder";

/// This process's worker-id prefix (Optuna's: a uuid, then the thread).
fn prefix() -> &'static str {
    static P: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    P.get_or_init(journal::uuid)
}

/// The journal of the study in `sweep`: named after the folder.
pub fn journal_of(sweep: &SweepDir) -> Journal {
    let name = std::fs::canonicalize(sweep.path()).ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let name = name.or_else(|| sweep.path().file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_else(|| "sweep".into());
    let thread = format!("{:?}", std::thread::current().id()).chars().filter(char::is_ascii_digit).collect::<String>();
    Journal::new(sweep.file(journal::JOURNAL_FILE), name, format!("{}-{thread}", prefix()))
}

/// Who runs a trial: shown to users, and kept for the record.
fn owner() -> Json {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    serde_json::json!({ "host": host, "pid": std::process::id(), "since": journal::now_iso() })
}

/// The study's own name as the journal must hold it, or why this journal is not the study's.
pub fn check(j: &Journal, r: &Replay) -> Result<()> {
    if r.name.is_some() || r.trials.is_empty() && r.lines == 0 {
        return Ok(());
    }
    Err(Error::data(
        j.path(),
        format!("holds no study named `{}` (the folder's name); a journal belongs to the folder it was made in: rename the folder back, or start a new study", j.name()),
    ))
}

/// The ops that create the study: its attributes, then its planned trials WAITING in index
/// order (so that trial number i is trial i of the study).
fn create_ops(j: &Journal, study: &Study, lag: Option<usize>) -> Result<Vec<Op>> {
    let mut ops = vec![
        Op::CreateStudy { name: j.name().to_string(), directions: study.objectives.iter().map(|o| o.direction()).collect() },
        Op::StudyUserAttr { key: "method".into(), value: study.method.name().into() },
        Op::StudyUserAttr { key: "objectives".into(), value: study.objectives.iter().map(|o| o.name()).collect::<Vec<_>>().into() },
        Op::StudyUserAttr { key: "space".into(), value: study.to_toml().into() },
        Op::StudyUserAttr { key: "fixed".into(), value: serde_json::to_value(&study.fixed).unwrap_or(Json::Null) },
    ];
    if let Some(k) = lag {
        ops.push(Op::StudySystemAttr { key: LAG.into(), value: k.into() });
    }
    if study.method != Method::Tpe {
        for t in study.trials()? {
            ops.push(waiting(&t, true));
        }
    }
    Ok(ops)
}

/// A WAITING trial with its values, as `enqueue_trial` writes one.
pub fn waiting(t: &Trial, planned: bool) -> Op {
    let fixed: Map<String, Json> = t.params.iter().map(|(k, v)| (k.clone(), outside_json(v))).collect();
    let mut attrs = Map::new();
    attrs.insert("fixed_params".into(), Json::Object(fixed));
    if planned {
        attrs.insert(PLANNED.into(), t.index.into());
    }
    Op::CreateTrial { state: State::Waiting, system_attrs: attrs }
}

fn outside_json(v: &Value) -> Json {
    match v {
        Value::String(s) => s.as_str().into(),
        Value::Integer(i) => (*i).into(),
        Value::Float(f) => (*f).into(),
        Value::Boolean(b) => (*b).into(),
        other => super::trials::value_text(other).into(),
    }
}

/// Create the study in the journal, or (`join`) check that the journal's study is this one.
/// Refuses a journal of another study. `lag`: tpe's (the workers of the one process).
pub fn begin(sweep: &SweepDir, study: &Study, join: bool, lag: Option<usize>) -> Result<()> {
    let j = journal_of(sweep);
    j.transact(|r| {
        check(&j, r)?;
        if r.name.is_none() {
            return Ok((create_ops(&j, study, lag)?, ()));
        }
        if !join {
            return Ok((Vec::new(), ()));
        }
        let theirs = r.user_attrs.get("space").and_then(Json::as_str).unwrap_or("");
        // As this version writes it (an older one listed swept fields under [fixed] too).
        let theirs = Study::parse_saved(theirs, "journal.log").map_or_else(|_| theirs.to_string(), |s| s.to_toml());
        match first_difference(&theirs, &study.to_toml()) {
            None => Ok((Vec::new(), ())),
            Some((a, b)) => Err(Error::input(format!(
                "--join: {} runs another study: its space has `{a}` where this one has `{b}`; join with the same space file and options, or pick another --out",
                sweep.path().display()
            ))),
        }
    })
}

/// Whether the study's journal holds only its planned trials, none taken yet (no journal: yes;
/// an unreadable one: no).
pub fn untouched(sweep: &SweepDir) -> bool {
    let j = journal_of(sweep);
    if !j.path().exists() {
        return true;
    }
    j.read().is_ok_and(|r| r.trials.iter().all(|t| t.state == State::Waiting && t.system_attrs.contains_key(PLANNED)))
}

pub(crate) fn first_difference(a: &str, b: &str) -> Option<(String, String)> {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    (0..la.len().max(lb.len())).find_map(|i| {
        let (x, y) = (la.get(i).copied().unwrap_or("(nothing)"), lb.get(i).copied().unwrap_or("(nothing)"));
        (x != y).then(|| (x.trim().to_string(), y.trim().to_string()))
    })
}

/// Trial `jt` of the journal as a trial of `study`: its params, else its `fixed_params`
/// (enqueued), the rest drawn as a random trial of its number would be.
pub fn trial_of(study: &Study, jt: &JTrial) -> Result<Trial> {
    let fixed = jt.system_attrs.get("fixed_params").and_then(Json::as_object);
    let drawn = draw(&study.space, study.seed, jt.number);
    let mut values = Vec::new();
    for (p, (_, d)) in study.space.iter().zip(drawn) {
        let v = if let Some((x, _)) = jt.params.get(&p.name) {
            params::external(&p.domain, *x).ok_or_else(|| Error::input(format!("journal.log: trial {}'s `{}` ({x}) is not one of the space's values", jt.number, p.name)))?
        } else if let Some(given) = fixed.and_then(|f| f.get(&p.name)) {
            params::from_outside(p, given).map_err(|m| Error::input(format!("journal.log: trial {} was enqueued with a value outside the space ({m}); enqueue values from the space", jt.number)))?
        } else {
            d
        };
        values.push((p.name.clone(), v));
    }
    if let Some(f) = fixed
        && let Some(k) = f.keys().find(|k| !study.space.iter().any(|p| &p.name == *k))
    {
        return Err(Error::input(format!("journal.log: trial {} was enqueued with `{k}`, which the study does not sweep", jt.number)));
    }
    study.trial(jt.number, values)
}

/// Set on a WAITING trial whose values are not the space's (enqueued from outside): it is
/// FAIL with its reason, and no search counts it.
pub const REFUSED: &str = "d2l:refused";

/// [`trial_of`], or for a trial refused as enqueued, the draw of its number (its values are
/// never trained; only its place counts).
pub fn trial_or_draw(study: &Study, jt: &JTrial) -> Result<Trial> {
    if jt.system_attrs.contains_key(REFUSED) {
        return study.trial(jt.number, draw(&study.space, study.seed, jt.number));
    }
    trial_of(study, jt)
}

/// FAIL, with the reason, every WAITING trial whose values are not the space's: an enqueue
/// from outside the space must not stop the study.
fn refuse_bad_waiting(study: &Study, r: &Replay) -> Vec<Op> {
    let mut ops = Vec::new();
    for jt in r.trials.iter().filter(|t| t.state == State::Waiting) {
        if let Err(e) = trial_of(study, jt) {
            let n = jt.number;
            ops.push(Op::TrialSystemAttr { trial: n, key: REFUSED.into(), value: true.into() });
            ops.push(Op::TrialUserAttr { trial: n, key: REASON.into(), value: e.one_line().into() });
            ops.push(Op::State { trial: n, state: State::Fail, values: None });
        }
    }
    ops
}

/// The ops that make `trial` RUNNING for this worker (a WAITING one popped) with its values.
pub fn start_ops(study: &Study, jt_state: Option<State>, trial: &Trial) -> Vec<Op> {
    let n = trial.index;
    let mut ops = Vec::new();
    match jt_state {
        Some(State::Waiting) => ops.push(Op::State { trial: n, state: State::Running, values: None }),
        None => ops.push(Op::CreateTrial { state: State::Running, system_attrs: Map::new() }),
        _ => {}
    }
    if jt_state != Some(State::Running) {
        for (p, (_, v)) in study.space.iter().zip(&trial.params) {
            if let Some(x) = params::internal(&p.domain, v) {
                ops.push(Op::Param { trial: n, name: p.name.clone(), internal: x, distribution: params::distribution(&p.domain) });
            }
        }
        ops.push(Op::TrialUserAttr { trial: n, key: FOLDER.into(), value: format!("{}/{n:03}", super::TRIALS_DIR).into() });
    }
    ops.push(Op::TrialSystemAttr { trial: n, key: OWNER.into(), value: owner() });
    ops
}

/// Whether a RUNNING trial's worker is gone: its folder's lock is free (taken now, if so).
fn dead(sweep: &SweepDir, n: usize) -> Result<Option<RunLock>> {
    RunLock::try_acquire(&sweep.trial(n))
}

/// grid, random and tpe studies as jobs claimed from the journal.
pub struct JournalWork<'a> {
    study: &'a Study,
    sweep: &'a SweepDir,
    journal: Journal,
    /// tpe: trial i is suggested from trials 0..=i-lag (reproducible); None: from every finished
    /// trial, the running ones pending (a joined study).
    lag: Option<usize>,
    /// Trials this process has in hand.
    taken: BTreeSet<usize>,
    /// Said once to the caller: damage read past in the journal.
    pub warnings: Vec<String>,
    /// The trials finished when the search started.
    found: Vec<Entry>,
}

impl<'a> JournalWork<'a> {
    pub fn new(study: &'a Study, sweep: &'a SweepDir, lag: Option<usize>) -> Result<Self> {
        let journal = journal_of(sweep);
        let r = journal.read()?;
        check(&journal, &r)?;
        // A tpe study started by one process keeps its lag whatever --workers says now.
        let lag = match r.system_attrs.get(LAG).and_then(Json::as_u64) {
            Some(k) => Some(k as usize),
            None if r.name.is_some() && study.method == Method::Tpe => None,
            None => lag,
        };
        let found = entries(sweep, study)?.0;
        Ok(Self { study, sweep, journal, lag, taken: BTreeSet::new(), warnings: r.warnings, found })
    }

    fn claim(&self, r: &Replay) -> Result<(Vec<Op>, Option<Task>)> {
        check(&self.journal, r)?;
        let refused = refuse_bad_waiting(self.study, r);
        if !refused.is_empty() {
            // Written now; the next claim reads them.
            return Ok((refused, None));
        }
        let job = |t: Trial, state: Option<State>, lock: RunLock| {
            let ops = start_ops(self.study, state, &t);
            let epochs = t.config.epochs;
            Ok((ops, Some(Task { trial: t, epochs, from: 0, hold: Some(lock) })))
        };
        // Enqueued trials first, then the planned ones costliest first.
        let mut waiting: Vec<(bool, f64, usize, Trial)> = Vec::new();
        for jt in r.trials.iter().filter(|t| t.state == State::Waiting) {
            let t = trial_of(self.study, jt)?;
            let cost = t.config.epochs as f64 * cost_per_epoch(&t.config);
            waiting.push((jt.system_attrs.contains_key(PLANNED), -cost, jt.number, t));
        }
        waiting.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
        for (_, _, n, t) in waiting {
            if let Some(lock) = RunLock::try_acquire(&self.sweep.trial(n))? {
                return job(t, Some(State::Waiting), lock);
            }
        }
        // A trial whose worker died: continued from its checkpoint.
        for jt in r.trials.iter().filter(|t| t.state == State::Running && !self.taken.contains(&t.number)) {
            if let Some(lock) = dead(self.sweep, jt.number)? {
                return job(trial_of(self.study, jt)?, Some(State::Running), lock);
            }
        }
        if self.study.method != Method::Tpe {
            return Ok((Vec::new(), None));
        }
        self.suggest(r).map(|made| match made {
            Some((t, lock)) => {
                let ops = start_ops(self.study, None, &t);
                let epochs = t.config.epochs;
                (ops, Some(Task { trial: t, epochs, from: 0, hold: Some(lock) }))
            }
            None => (Vec::new(), None),
        })
    }

    /// tpe's next trial, when its turn has come: suggested from the finished trials, with the
    /// ones in flight as pending.
    fn suggest(&self, r: &Replay) -> Result<Option<(Trial, RunLock)>> {
        let i = r.trials.len();
        if i >= self.study.trials.unwrap_or(0) {
            return Ok(None);
        }
        let known = match self.lag {
            Some(k) => {
                let known = (i + 1).saturating_sub(k);
                if r.trials[..known].iter().any(|t| !t.state.is_finished()) {
                    return Ok(None);
                }
                known
            }
            None => i,
        };
        let mut done: Vec<(Vec<(String, Value)>, f64)> = Vec::new();
        let mut pending: Vec<Vec<(String, Value)>> = Vec::new();
        for (j, jt) in r.trials.iter().enumerate() {
            let t = trial_or_draw(self.study, jt)?;
            match (j < known, jt.state) {
                (true, State::Complete | State::Pruned) => done.push((t.params, final_value(jt))),
                (true, State::Fail) => done.push((t.params, f64::NAN)),
                (_, s) if !s.is_finished() || j >= known => pending.push(t.params),
                _ => {}
            }
        }
        let finished: Vec<(&[(String, Value)], f64)> = done.iter().map(|(p, a)| (p.as_slice(), *a)).collect();
        let pending: Vec<&[(String, Value)]> = pending.iter().map(Vec::as_slice).collect();
        let values = tpe::suggest(self.study, i, &finished, &pending)?;
        let Some(lock) = RunLock::try_acquire(&self.sweep.trial(i))? else {
            return Ok(None);
        };
        Ok(Some((self.study.trial(i, values)?, lock)))
    }
}

/// A finished trial's value: its values, else its last intermediate value.
fn final_value(jt: &JTrial) -> f64 {
    jt.values.as_ref().and_then(|v| v.first().copied()).or_else(|| jt.intermediate.values().last().copied()).unwrap_or(f64::NAN)
}

impl Scheduler for JournalWork<'_> {
    fn next(&mut self) -> Result<Next> {
        let mut task = self.journal.transact(|r| self.claim(r))?;
        if task.is_none() {
            task = self.journal.transact(|r| self.claim(r))?;
        }
        if let Some(t) = task {
            self.taken.insert(t.trial.index);
            return Ok(Next::Job(t));
        }
        // Nothing to claim now: wait while a trial of this process may make work (tpe's next
        // suggestion follows from it), or while another process's trial may.
        let r = self.journal.read()?;
        let running = r.trials.iter().any(|t| t.state == State::Running);
        let more = self.study.method == Method::Tpe && r.trials.len() < self.study.trials.unwrap_or(0);
        Ok(if more && running { Next::Wait } else { Next::Done })
    }

    fn finished(&mut self, entry: &Entry) {
        self.taken.remove(&entry.trial.index);
    }

    fn found(&mut self) -> Vec<Entry> {
        self.found.clone()
    }
}

/// An asha study as jobs claimed from the journal: each claim rebuilds the search from the
/// journal (the rungs each trial reached, the trials other workers train) and takes its next
/// promotion or draw; the last worker out settles the trials left at a rung (PRUNED).
pub struct JournalAsha<'a> {
    study: &'a Study,
    sweep: &'a SweepDir,
    journal: Journal,
    taken: BTreeSet<usize>,
    found: Vec<Entry>,
}

impl<'a> JournalAsha<'a> {
    pub fn new(study: &'a Study, sweep: &'a SweepDir) -> Result<Self> {
        let journal = journal_of(sweep);
        check(&journal, &journal.read()?)?;
        let found = entries(sweep, study)?.0;
        Ok(Self { study, sweep, journal, taken: BTreeSet::new(), found })
    }

    fn claim(&self, r: &Replay) -> Result<(Vec<Op>, Next)> {
        check(&self.journal, r)?;
        let refused = refuse_bad_waiting(self.study, r);
        if !refused.is_empty() {
            return Ok((refused, Next::Wait));
        }
        let trials = r.trials.iter().map(|jt| trial_or_draw(self.study, jt)).collect::<Result<Vec<_>>>()?;
        // In flight: ours, or a RUNNING trial whose folder lock someone holds.
        let busy = |n: usize| self.taken.contains(&n) || RunLock::try_acquire(&self.sweep.trial(n)).is_ok_and(|l| l.is_none());
        let mut search = super::asha::AshaSearch::from_journal(trials, &self.study.halving, r, &busy);
        match search.next()? {
            Next::Job(mut task) => {
                let n = task.trial.index;
                let Some(lock) = RunLock::try_acquire(&self.sweep.trial(n))? else {
                    return Ok((Vec::new(), Next::Wait));
                };
                let state = r.trial(n).map(|t| t.state);
                let mut ops = start_ops(self.study, state, &task.trial);
                ops.push(Op::TrialSystemAttr { trial: n, key: super::asha::TARGET.into(), value: task.epochs.into() });
                task.hold = Some(lock);
                Ok((ops, Next::Job(task)))
            }
            Next::Wait => Ok((Vec::new(), Next::Wait)),
            Next::Done => Ok((settle_ops(self.sweep, self.study, r, super::halving::rungs(&self.study.halving).last().copied().unwrap_or(1))?, Next::Done)),
        }
    }
}

impl Scheduler for JournalAsha<'_> {
    fn next(&mut self) -> Result<Next> {
        let next = self.journal.transact(|r| self.claim(r))?;
        if let Next::Job(t) = &next {
            self.taken.insert(t.trial.index);
        }
        Ok(next)
    }

    fn finished(&mut self, entry: &Entry) {
        self.taken.remove(&entry.trial.index);
    }

    fn found(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.found)
    }
}

/// The study's trials as the journal and their folders hold them: the finished ones' entries,
/// and the numbers of the trials not finished.
pub fn entries(sweep: &SweepDir, study: &Study) -> Result<(Vec<Entry>, Vec<usize>)> {
    let j = journal_of(sweep);
    let r = j.read()?;
    check(&j, &r)?;
    let (mut out, mut open) = (Vec::new(), Vec::new());
    for jt in &r.trials {
        let status = match jt.state {
            State::Complete => Status::Done,
            State::Fail => Status::Diverged,
            State::Pruned => Status::Pruned,
            State::Running | State::Waiting => {
                open.push(jt.number);
                continue;
            }
        };
        if jt.system_attrs.contains_key(REFUSED) {
            continue;
        }
        let trial = trial_of(study, jt)?;
        let rows = metrics::read(&sweep.trial(jt.number).file(METRICS_FILE))?;
        out.push(Entry { trial, rows, status });
    }
    Ok((out, open))
}

/// `sweep --enqueue DIR field=value ...`: a WAITING trial with these values (the others drawn),
/// the next free worker's first job. Returns its number.
pub fn enqueue(sweep: &SweepDir, study: &Study, given: &[(String, String)]) -> Result<usize> {
    let mut fixed = Map::new();
    for (k, text) in given {
        let Some(p) = study.space.iter().find(|p| &p.name == k) else {
            let names: Vec<&str> = study.space.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::input(format!("--enqueue: `{k}` is not a swept field of {} (it sweeps {})", sweep.path().display(), names.join(", "))));
        };
        let json: Json = serde_json::from_str(text).unwrap_or_else(|_| Json::from(text.as_str()));
        let v = params::from_outside(p, &json).map_err(|m| Error::input(format!("--enqueue: {m}")))?;
        fixed.insert(k.clone(), outside_json(&v));
    }
    let j = journal_of(sweep);
    j.transact(|r| {
        check(&j, r)?;
        if r.name.is_none() {
            return Err(Error::input(format!("--enqueue: {} holds no study yet; start it with `sweep SPACE.toml --out {}`", sweep.path().display(), sweep.path().display())));
        }
        let mut attrs = Map::new();
        attrs.insert("fixed_params".into(), Json::Object(fixed.clone()));
        Ok((vec![Op::CreateTrial { state: State::Waiting, system_attrs: attrs }], r.trials.len()))
    })
}

/// Trials left RUNNING by this process's halving or asha search (stopped at a rung): PRUNED,
/// or COMPLETE at the last rung, once the search is over.
pub fn settle(sweep: &SweepDir, study: &Study, last_rung: usize) -> Result<()> {
    let j = journal_of(sweep);
    j.transact(|r| Ok((settle_ops(sweep, study, r, last_rung)?, ())))
}

fn settle_ops(sweep: &SweepDir, study: &Study, r: &Replay, last_rung: usize) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    for jt in r.trials.iter().filter(|t| t.state == State::Running) {
        let last = jt.intermediate.keys().max().copied().unwrap_or(0);
        let state = if last as usize >= last_rung { State::Complete } else { State::Pruned };
        let acc = jt.intermediate.get(&last).copied();
        let values = match state {
            _ if study.objectives.len() == 1 => acc.map(|v| vec![v]),
            State::Complete => {
                let trial = trial_or_draw(study, jt)?;
                let rows = metrics::read(&sweep.trial(jt.number).file(METRICS_FILE))?;
                let e = Entry { trial, rows, status: Status::Done };
                Some(study.objectives.iter().map(|o| o.of(&e, acc)).collect())
            }
            _ => None,
        };
        ops.push(Op::State { trial: jt.number, state, values });
    }
    Ok(ops)
}

/// The trials on the Pareto front of the study's objectives, by the journal's values (the
/// COMPLETE trials that no other COMPLETE trial beats on every objective).
pub fn pareto(sweep: &SweepDir, study: &Study) -> Result<BTreeSet<usize>> {
    let r = journal_of(sweep).read()?;
    let points: Vec<(usize, Vec<f64>)> = r.trials.iter().filter(|t| t.state == State::Complete).filter_map(|t| Some((t.number, t.values.clone()?))).collect();
    let directions: Vec<journal::Direction> = study.objectives.iter().map(|o| o.direction()).collect();
    Ok(super::objectives::front(&points, &directions))
}

/// Turn a study folder made before journals into one: its study, then each trial as its folder
/// holds it (finished, diverged, or RUNNING to be continued), then the rest WAITING.
pub fn convert(sweep: &SweepDir, study: &Study) -> Result<bool> {
    let j = journal_of(sweep);
    if j.exists() {
        return Ok(false);
    }
    let mut ops = create_ops(&j, study, None)?;
    ops.retain(|o| !matches!(o, Op::CreateTrial { .. }));
    let planned: Vec<Trial> = if study.method == Method::Tpe {
        let mut v = Vec::new();
        while let Ok(p) = tpe::load_params(&sweep.trial(v.len()).file(tpe::PARAMS_FILE), study) {
            v.push(study.trial(v.len(), p)?);
        }
        v
    } else {
        study.trials()?
    };
    for t in &planned {
        let run = sweep.trial(t.index);
        if !run.holds_run() {
            ops.push(waiting(t, true));
            continue;
        }
        ops.extend(start_ops(study, None, t));
        let rows = metrics::read(&run.file(METRICS_FILE))?;
        for row in &rows {
            ops.push(Op::Intermediate { trial: t.index, step: row.epoch as i64, value: row.test_acc });
        }
        let last = rows.last().map_or(0, |r| r.epoch);
        if run.file(super::DIVERGED_FILE).exists() {
            let why = std::fs::read_to_string(run.file(super::DIVERGED_FILE)).unwrap_or_default();
            ops.push(Op::TrialUserAttr { trial: t.index, key: REASON.into(), value: why.trim().into() });
            ops.push(Op::State { trial: t.index, state: State::Fail, values: None });
        } else if !study.method.has_rungs() && last >= t.config.epochs && run.file(crate::run::MODEL_FILE).exists() {
            ops.push(Op::State { trial: t.index, state: State::Complete, values: rows.last().map(|r| vec![r.test_acc]) });
        }
    }
    j.append(&ops)?;
    Ok(true)
}
