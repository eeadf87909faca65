//! A study's store: Optuna's journal file (`JournalStorage` over `JournalFileBackend`), an
//! append-only log of operations, one JSON object a line, that every process replays to know the
//! study. Written exactly as Optuna 4 and 5 write it, under Optuna's lock ([`lock`]), so that
//! `optuna.load_study`, optuna-dashboard and Optuna processes read and append to the same file.
//!
//! The format (optuna/storages/journal/_storage.py): every line has `op_code` and `worker_id`;
//! trials get ids in the order they are created, and with one study a file their number is their
//! id. An operation on a finished trial is ignored, as Optuna's replay ignores it; a second
//! RUNNING on a trial is the loser of a race to pop a WAITING trial, and ignored too.

pub mod lock;
pub mod params;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
pub use lock::JournalLock;

/// The journal of a study folder.
pub const JOURNAL_FILE: &str = "journal.log";

/// Optuna's operation codes (`JournalOperation`).
pub mod op {
    pub const CREATE_STUDY: u8 = 0;
    pub const DELETE_STUDY: u8 = 1;
    pub const SET_STUDY_USER_ATTR: u8 = 2;
    pub const SET_STUDY_SYSTEM_ATTR: u8 = 3;
    pub const CREATE_TRIAL: u8 = 4;
    pub const SET_TRIAL_PARAM: u8 = 5;
    pub const SET_TRIAL_STATE_VALUES: u8 = 6;
    pub const SET_TRIAL_INTERMEDIATE_VALUE: u8 = 7;
    pub const SET_TRIAL_USER_ATTR: u8 = 8;
    pub const SET_TRIAL_SYSTEM_ATTR: u8 = 9;
    /// Optuna 5.x.
    pub const DISCARD_TRIALS: u8 = 10;
}

/// Optuna's `StudyDirection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Minimize = 1,
    Maximize = 2,
}

/// Optuna's `TrialState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Running = 0,
    Complete = 1,
    Pruned = 2,
    Fail = 3,
    Waiting = 4,
}

impl State {
    fn from_code(c: i64) -> Option<State> {
        Some(match c {
            0 => State::Running,
            1 => State::Complete,
            2 => State::Pruned,
            3 => State::Fail,
            4 => State::Waiting,
            _ => return None,
        })
    }

    pub fn is_finished(self) -> bool {
        matches!(self, State::Complete | State::Pruned | State::Fail)
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Running => "RUNNING",
            State::Complete => "COMPLETE",
            State::Pruned => "PRUNED",
            State::Fail => "FAIL",
            State::Waiting => "WAITING",
        }
    }
}

/// One operation, as this binary writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    CreateStudy { name: String, directions: Vec<Direction> },
    StudyUserAttr { key: String, value: Value },
    StudySystemAttr { key: String, value: Value },
    /// A new trial: RUNNING from now, or WAITING (enqueued) with `fixed_params` as Optuna's
    /// `enqueue_trial` writes it.
    CreateTrial { state: State, system_attrs: Map<String, Value> },
    /// `internal`: the value in Optuna's internal form (a choice's index for a categorical).
    Param { trial: usize, name: String, internal: f64, distribution: String },
    /// A WAITING trial popped (RUNNING), or a trial finished with its values.
    State { trial: usize, state: State, values: Option<Vec<f64>> },
    Intermediate { trial: usize, step: i64, value: f64 },
    TrialUserAttr { trial: usize, key: String, value: Value },
    TrialSystemAttr { trial: usize, key: String, value: Value },
}

/// An object with its keys in the order given (Optuna's: `op_code`, `worker_id`, then the rest).
fn object(pairs: Vec<(&str, Value)>) -> String {
    let fields: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{}:{}", Value::from(k), v)).collect();
    format!("{{{}}}", fields.join(","))
}

fn one(key: &str, value: &Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_string(), value.clone());
    Value::Object(m)
}

impl Op {
    /// The op's line (without its newline), as Optuna writes it, from worker `worker`, in a
    /// journal whose ids `ids` tells.
    pub fn line(&self, worker: &str, ids: &Ids) -> String {
        let sid = Value::from(ids.study);
        let head = |code: u8| vec![("op_code", Value::from(code)), ("worker_id", Value::from(worker))];
        let fields = match self {
            Op::CreateStudy { name, directions } => {
                let mut f = head(op::CREATE_STUDY);
                f.push(("study_name", Value::from(name.as_str())));
                f.push(("directions", Value::from(directions.iter().map(|d| *d as u8).collect::<Vec<_>>())));
                f
            }
            Op::StudyUserAttr { key, value } => {
                let mut f = head(op::SET_STUDY_USER_ATTR);
                f.extend([("study_id", sid), ("user_attr", one(key, value))]);
                f
            }
            Op::StudySystemAttr { key, value } => {
                let mut f = head(op::SET_STUDY_SYSTEM_ATTR);
                f.extend([("study_id", sid), ("system_attr", one(key, value))]);
                f
            }
            Op::CreateTrial { state, system_attrs } => {
                let mut f = head(op::CREATE_TRIAL);
                // A WAITING trial has not started (Optuna's enqueue_trial writes null).
                let start = if *state == State::Waiting { Value::Null } else { Value::from(now_iso()) };
                f.extend([("study_id", sid), ("datetime_start", start)]);
                if *state != State::Running || !system_attrs.is_empty() {
                    // Optuna's template-trial form (what enqueue_trial writes).
                    f.extend([
                        ("state", Value::from(*state as u8)),
                        ("value", Value::Null),
                        ("values", Value::Null),
                        ("distributions", Value::Object(Map::new())),
                        ("params", Value::Object(Map::new())),
                        ("user_attrs", Value::Object(Map::new())),
                        ("system_attrs", Value::Object(system_attrs.clone())),
                        ("intermediate_values", Value::Object(Map::new())),
                    ]);
                }
                f
            }
            Op::Param { trial, name, internal, distribution } => {
                let mut f = head(op::SET_TRIAL_PARAM);
                f.extend([
                    ("trial_id", Value::from(ids.trial(*trial))),
                    ("param_name", Value::from(name.as_str())),
                    ("param_value_internal", Value::from(*internal)),
                    ("distribution", Value::from(distribution.as_str())),
                ]);
                f
            }
            Op::State { trial, state, values } => {
                let mut f = head(op::SET_TRIAL_STATE_VALUES);
                f.extend([("trial_id", Value::from(ids.trial(*trial))), ("state", Value::from(*state as u8)), ("values", values.clone().map_or(Value::Null, Value::from))]);
                if *state == State::Running {
                    f.push(("datetime_start", Value::from(now_iso())));
                } else if state.is_finished() {
                    f.push(("datetime_complete", Value::from(now_iso())));
                }
                f
            }
            Op::Intermediate { trial, step, value } => {
                let mut f = head(op::SET_TRIAL_INTERMEDIATE_VALUE);
                f.extend([("trial_id", Value::from(ids.trial(*trial))), ("step", Value::from(*step)), ("intermediate_value", Value::from(*value))]);
                f
            }
            Op::TrialUserAttr { trial, key, value } => {
                let mut f = head(op::SET_TRIAL_USER_ATTR);
                f.extend([("trial_id", Value::from(ids.trial(*trial))), ("user_attr", one(key, value))]);
                f
            }
            Op::TrialSystemAttr { trial, key, value } => {
                let mut f = head(op::SET_TRIAL_SYSTEM_ATTR);
                f.extend([("trial_id", Value::from(ids.trial(*trial))), ("system_attr", one(key, value))]);
                f
            }
        };
        object(fields)
    }
}

/// How numbers become ids in a journal: the study's id, and each trial number's id (trial ids
/// count every study's trials; numbers count one study's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ids {
    pub study: usize,
    /// The ids of the study's trials, by number.
    pub trials: Vec<usize>,
    /// Trials of all studies.
    pub all: usize,
}

impl Ids {
    /// A trial's id; a number past the study's trials is one created in the same batch, in order.
    pub fn trial(&self, number: usize) -> usize {
        self.trials.get(number).copied().unwrap_or(self.all + number - self.trials.len().min(number))
    }

    /// One study alone in its journal (tests).
    pub fn alone() -> Self {
        Self::default()
    }
}

/// A trial as the journal holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct JTrial {
    pub number: usize,
    pub state: State,
    /// Param name -> (internal value, distribution JSON), in the order they were set.
    pub params: BTreeMap<String, (f64, String)>,
    pub intermediate: BTreeMap<i64, f64>,
    pub values: Option<Vec<f64>>,
    pub user_attrs: Map<String, Value>,
    pub system_attrs: Map<String, Value>,
    /// The worker whose op made it RUNNING.
    pub owner: Option<String>,
    pub datetime_start: Option<String>,
    pub datetime_complete: Option<String>,
}

/// The study as a replay of the journal leaves it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    pub name: Option<String>,
    pub directions: Vec<Direction>,
    pub user_attrs: Map<String, Value>,
    pub system_attrs: Map<String, Value>,
    pub trials: Vec<JTrial>,
    /// Damage read past (a last line cut short), each said in one line.
    pub warnings: Vec<String>,
    /// Lines read.
    pub lines: usize,
    /// The ids ops of this study must use.
    pub ids: Ids,
}

impl Replay {
    pub fn trial(&self, number: usize) -> Option<&JTrial> {
        self.trials.get(number)
    }
}

/// The journal file of a study: `name` is the study's (the folder's name), `worker` this
/// process's (and thread's) worker id.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
    name: String,
    worker: String,
}

impl Journal {
    pub fn new(path: impl Into<PathBuf>, name: impl Into<String>, worker: impl Into<String>) -> Self {
        Self { path: path.into(), name: name.into(), worker: worker.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// The same journal written by another worker id (one per thread, as Optuna's).
    pub fn with_worker(&self, worker: impl Into<String>) -> Self {
        Self { worker: worker.into(), ..self.clone() }
    }

    pub fn exists(&self) -> bool {
        self.path.is_file()
    }

    /// Read and replay the journal (no lock, as Optuna's readers).
    pub fn read(&self) -> Result<Replay> {
        let bytes = std::fs::read(&self.path).map_err(|e| Error::io("cannot read", &self.path, e))?;
        replay(&bytes, &self.path, &self.name)
    }

    /// Append `ops` under the lock.
    pub fn append(&self, ops: &[Op]) -> Result<()> {
        self.transact(|_| Ok((ops.to_vec(), ())))
    }

    /// Under the lock: replay the journal, let `decide` choose the ops to append from it, append
    /// them. What two processes decide this way never overlaps (a trial claimed once).
    pub fn transact<T>(&self, decide: impl FnOnce(&Replay) -> Result<(Vec<Op>, T)>) -> Result<T> {
        let _lock = JournalLock::acquire(&self.path)?;
        let mut file = std::fs::OpenOptions::new().read(true).append(true).create(true).open(&self.path).map_err(|e| Error::io("cannot open", &self.path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| Error::io("cannot read", &self.path, e))?;
        // We hold the lock, so a last line without its newline is a writer that died mid-write:
        // cut it off, or our first line would join it.
        if let Some(&last) = bytes.last()
            && last != b'\n'
        {
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            file.set_len(keep as u64).map_err(|e| Error::io("cannot repair", &self.path, e))?;
            file.seek(SeekFrom::End(0)).map_err(|e| Error::io("cannot repair", &self.path, e))?;
            bytes.truncate(keep);
        }
        let state = replay(&bytes, &self.path, &self.name)?;
        let (ops, out) = decide(&state)?;
        if !ops.is_empty() {
            let mut text = String::new();
            for o in &ops {
                text.push_str(&o.line(&self.worker, &state.ids));
                text.push('\n');
            }
            file.write_all(text.as_bytes()).map_err(|e| Error::io("cannot append to", &self.path, e))?;
            file.sync_all().map_err(|e| Error::io("cannot sync", &self.path, e))?;
        }
        Ok(out)
    }
}

/// Replay `bytes` (a journal's content) for the study `name`.
pub fn replay(bytes: &[u8], path: &Path, name: &str) -> Result<Replay> {
    let mut r = Replay::default();
    // Study id -> name, and each trial id's (study id, number).
    let mut studies: Vec<Option<String>> = Vec::new();
    let mut ours: Option<usize> = None;
    let mut ids: Vec<(usize, usize)> = Vec::new();
    let shown = path.display();
    let mut rest = bytes;
    let mut n = 0;
    while !rest.is_empty() {
        n += 1;
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            r.warnings.push(format!(
                "{shown}: its last line ({n}) was cut short (a writer stopped mid-write); it is ignored, and the next write removes it"
            ));
            break;
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        r.lines = n;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v = parse_line(line).map_err(|e| Error::data_with(path, format!("line {n} is not a journal operation"), e).fix("the journal is damaged: restore it from a copy"))?;
        let bad = |what: &str| Error::data(path, format!("line {n}: {what}; the journal is damaged: restore it from a copy"));
        let code = v.get("op_code").and_then(Value::as_i64).ok_or_else(|| bad("no op_code"))?;
        let c = u8::try_from(code).unwrap_or(u8::MAX);
        let worker = v.get("worker_id").and_then(Value::as_str).unwrap_or("").to_string();
        let int = |k: &str| v.get(k).and_then(Value::as_u64).map(|x| x as usize).ok_or_else(|| bad(&format!("no `{k}`")));
        // The trial an op names, if it is one of our study's and may still change.
        let target = |r: &Replay, id: usize| -> Option<usize> {
            let (study, number) = *ids.get(id)?;
            (Some(study) == ours && !r.trials[number].state.is_finished()).then_some(number)
        };
        match c {
            op::CREATE_STUDY => {
                let study_name = v.get("study_name").and_then(Value::as_str).ok_or_else(|| bad("a study without a name"))?.to_string();
                // Optuna refuses a second study of a name; its id is not taken then.
                if studies.iter().flatten().any(|s| *s == study_name) {
                    continue;
                }
                if study_name == name && ours.is_none() {
                    ours = Some(studies.len());
                    r.ids.study = studies.len();
                    r.name = Some(study_name.clone());
                    r.directions = v.get("directions").and_then(Value::as_array).map(|d| d.iter().map(|x| if x.as_i64() == Some(1) { Direction::Minimize } else { Direction::Maximize }).collect()).unwrap_or_default();
                }
                studies.push(Some(study_name));
            }
            op::DELETE_STUDY => {
                let id = int("study_id")?;
                if Some(id) == ours {
                    return Err(Error::data(path, format!("line {n}: study `{name}` was deleted (by Optuna's delete_study); start a new study in another folder")));
                }
                if let Some(s) = studies.get_mut(id) {
                    *s = None;
                }
            }
            op::SET_STUDY_USER_ATTR | op::SET_STUDY_SYSTEM_ATTR => {
                if Some(int("study_id")?) == ours {
                    let (key, map) = if c == op::SET_STUDY_USER_ATTR { ("user_attr", &mut r.user_attrs) } else { ("system_attr", &mut r.system_attrs) };
                    if let Some(Value::Object(m)) = v.get(key) {
                        map.extend(m.clone());
                    }
                }
            }
            op::CREATE_TRIAL => {
                let study = int("study_id")?;
                if studies.get(study).is_none_or(Option::is_none) {
                    continue;
                }
                r.ids.all += 1;
                if Some(study) != ours {
                    ids.push((study, 0));
                    continue;
                }
                let number = r.trials.len();
                r.ids.trials.push(ids.len());
                ids.push((study, number));
                let state = v.get("state").and_then(Value::as_i64).map_or(Some(State::Running), State::from_code).ok_or_else(|| bad("an unknown trial state"))?;
                let obj = |k: &str| v.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
                let mut params = BTreeMap::new();
                let dists = obj("distributions");
                for (k, p) in obj("params") {
                    if let (Some(x), Some(d)) = (p.as_f64(), dists.get(&k).and_then(Value::as_str)) {
                        params.insert(k, (x, d.to_string()));
                    }
                }
                let intermediate = obj("intermediate_values").into_iter().filter_map(|(k, x)| Some((k.parse().ok()?, x.as_f64()?))).collect();
                r.trials.push(JTrial {
                    number,
                    state,
                    params,
                    intermediate,
                    values: values_of(&v),
                    user_attrs: obj("user_attrs"),
                    system_attrs: obj("system_attrs"),
                    owner: (state == State::Running).then(|| worker.clone()),
                    datetime_start: v.get("datetime_start").and_then(Value::as_str).map(String::from),
                    datetime_complete: v.get("datetime_complete").and_then(Value::as_str).map(String::from),
                });
            }
            op::SET_TRIAL_PARAM => {
                if let Some(t) = target(&r, int("trial_id")?) {
                    let pname = v.get("param_name").and_then(Value::as_str).ok_or_else(|| bad("a param without a name"))?;
                    let x = v.get("param_value_internal").and_then(Value::as_f64).ok_or_else(|| bad("a param without a value"))?;
                    let d = v.get("distribution").and_then(Value::as_str).ok_or_else(|| bad("a param without a distribution"))?;
                    r.trials[t].params.insert(pname.to_string(), (x, d.to_string()));
                }
            }
            op::SET_TRIAL_STATE_VALUES => {
                if let Some(t) = target(&r, int("trial_id")?) {
                    let state = v.get("state").and_then(Value::as_i64).and_then(State::from_code).ok_or_else(|| bad("an unknown trial state"))?;
                    let trial = &mut r.trials[t];
                    if state == State::Running && trial.state == State::Running {
                        continue;
                    }
                    if state == State::Running {
                        trial.owner = Some(worker.clone());
                        trial.datetime_start = v.get("datetime_start").and_then(Value::as_str).map(String::from);
                    }
                    if state.is_finished() {
                        trial.datetime_complete = v.get("datetime_complete").and_then(Value::as_str).map(String::from);
                    }
                    trial.state = state;
                    if let Some(vals) = values_of(&v) {
                        trial.values = Some(vals);
                    }
                }
            }
            op::SET_TRIAL_INTERMEDIATE_VALUE => {
                if let Some(t) = target(&r, int("trial_id")?) {
                    let step = v.get("step").and_then(Value::as_i64).ok_or_else(|| bad("an intermediate value without a step"))?;
                    let x = v.get("intermediate_value").and_then(Value::as_f64).unwrap_or(f64::NAN);
                    r.trials[t].intermediate.insert(step, x);
                }
            }
            op::SET_TRIAL_USER_ATTR | op::SET_TRIAL_SYSTEM_ATTR => {
                if let Some(t) = target(&r, int("trial_id")?) {
                    let user = c == op::SET_TRIAL_USER_ATTR;
                    let (key, map) = if user { ("user_attr", &mut r.trials[t].user_attrs) } else { ("system_attr", &mut r.trials[t].system_attrs) };
                    if let Some(Value::Object(m)) = v.get(key) {
                        map.extend(m.clone());
                    }
                }
            }
            op::DISCARD_TRIALS => {
                return Err(bad("Optuna discarded trials here (op code 10); this study cannot be continued by d2l-mlp: copy the study with Optuna into a new journal"));
            }
            _ => {
                return Err(Error::data(
                    path,
                    format!("line {n}: op code {code} is not one this version knows (Optuna 4 and 5 write 0-10); update d2l-mlp, or open the study with the Optuna that wrote it"),
                ));
            }
        }
    }
    if ours.is_none() {
        // The study this journal's next CREATE_STUDY makes.
        r.ids.study = studies.len();
    }
    Ok(r)
}

/// A line as Python's json reads it: NaN and infinities allowed (Optuna writes them bare).
fn parse_line(line: &[u8]) -> std::result::Result<Value, serde_json::Error> {
    serde_json::from_slice(line).or_else(|e| {
        let text = String::from_utf8_lossy(line);
        if !(text.contains("NaN") || text.contains("Infinity")) {
            return Err(e);
        }
        let fixed = text.replace("-Infinity", "null").replace("Infinity", "null").replace("NaN", "null");
        serde_json::from_str(&fixed)
    })
}

fn values_of(v: &Value) -> Option<Vec<f64>> {
    let list = v.get("values")?.as_array()?;
    Some(list.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
}

/// A random identifier in uuid4's text form.
pub fn uuid() -> String {
    let x: u128 = rand::random();
    let h = format!("{x:032x}");
    format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// Now, as Optuna writes times: `2026-12-06T00:30:00.123456+00:00`.
pub fn now_iso() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    iso(d.as_secs() as i64, d.subsec_micros())
}

fn iso(secs: i64, micros: u32) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::run::info::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}+00:00", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &Path) -> Journal {
        Journal::new(dir.join(JOURNAL_FILE), "s", "w-1")
    }

    #[test]
    fn times_read_as_optuna_writes_them() {
        assert_eq!(iso(0, 0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(iso(1_796_517_000, 123_456), "2026-12-06T00:30:00.123456+00:00");
        assert_eq!(iso(951_782_400, 7), "2000-02-29T00:00:00.000007+00:00");
        let u = uuid();
        assert_eq!((u.len(), u.matches('-').count(), &u[14..15]), (36, 4, "4"));
    }

    #[test]
    fn lines_are_optunas() {
        let p = Op::Param { trial: 0, name: "lr".into(), internal: 0.29, distribution: r#"{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.01, "high": 1.0, "log": true}}"#.into() };
        assert_eq!(
            p.line("w", &Ids::alone()),
            r#"{"op_code":5,"worker_id":"w","trial_id":0,"param_name":"lr","param_value_internal":0.29,"distribution":"{\"name\": \"FloatDistribution\", \"attributes\": {\"step\": null, \"low\": 0.01, \"high\": 1.0, \"log\": true}}"}"#
        );
        let s = Op::CreateStudy { name: "tpe".into(), directions: vec![Direction::Maximize] };
        assert_eq!(s.line("w", &Ids::alone()), r#"{"op_code":0,"worker_id":"w","study_name":"tpe","directions":[2]}"#);
        let done = Op::State { trial: 3, state: State::Complete, values: Some(vec![0.85]) }.line("w", &Ids::alone());
        assert!(done.starts_with(r#"{"op_code":6,"worker_id":"w","trial_id":3,"state":1,"values":[0.85],"datetime_complete":""#), "{done}");
    }

    #[test]
    fn a_replay_follows_optunas_rules() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        j.append(&[Op::CreateStudy { name: "other".into(), directions: vec![Direction::Minimize] }, Op::CreateTrial { state: State::Running, system_attrs: Map::new() }]).unwrap();
        j.append(&[Op::CreateStudy { name: "s".into(), directions: vec![Direction::Maximize] }, Op::StudyUserAttr { key: "method".into(), value: "tpe".into() }]).unwrap();
        let mut fixed = Map::new();
        fixed.insert("fixed_params".into(), serde_json::json!({"lr": 0.1}));
        j.append(&[Op::CreateTrial { state: State::Running, system_attrs: Map::new() }, Op::CreateTrial { state: State::Waiting, system_attrs: fixed }]).unwrap();
        // Trial ids count every study's trials: ours are ids 1 and 2, numbers 0 and 1.
        j.append(&[
            Op::Intermediate { trial: 0, step: 1, value: 0.5 },
            Op::State { trial: 0, state: State::Complete, values: Some(vec![0.5]) },
            // Ignored: the trial is finished.
            Op::Intermediate { trial: 0, step: 2, value: 0.9 },
            Op::TrialUserAttr { trial: 0, key: "late".into(), value: true.into() },
        ])
        .unwrap();
        let text = std::fs::read_to_string(j.path()).unwrap();
        assert!(text.contains(r#""op_code":7,"worker_id":"w-1","trial_id":1,"step":1"#) && text.contains(r#""op_code":2,"worker_id":"w-1","study_id":1,"#), "{text}");
        // Two workers pop the WAITING trial: the first wins.
        j.with_worker("w-2").append(&[Op::State { trial: 1, state: State::Running, values: None }]).unwrap();
        j.with_worker("w-3").append(&[Op::State { trial: 1, state: State::Running, values: None }]).unwrap();
        let r = j.read().unwrap();
        assert_eq!((r.name.as_deref(), r.directions.as_slice(), r.trials.len()), (Some("s"), &[Direction::Maximize][..], 2));
        assert_eq!(r.user_attrs["method"], "tpe");
        let t0 = &r.trials[0];
        assert_eq!((t0.state, t0.values.clone(), t0.intermediate.len(), t0.user_attrs.len()), (State::Complete, Some(vec![0.5]), 1, 0));
        let t1 = &r.trials[1];
        assert_eq!((t1.state, t1.owner.as_deref()), (State::Running, Some("w-2")));
        assert_eq!(t1.system_attrs["fixed_params"]["lr"], 0.1);
    }

    #[test]
    fn a_cut_last_line_is_named_then_removed_by_the_next_append_and_unknown_ops_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        j.append(&[Op::CreateStudy { name: "s".into(), directions: vec![Direction::Maximize] }]).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(br#"{"op_code":4,"worker_id":"x","stu"#).unwrap();
        let r = j.read().unwrap();
        assert_eq!((r.trials.len(), r.warnings.len()), (0, 1));
        assert!(r.warnings[0].contains("line (2) was cut short"), "{}", r.warnings[0]);
        j.append(&[Op::CreateTrial { state: State::Running, system_attrs: Map::new() }]).unwrap();
        let r = j.read().unwrap();
        assert_eq!((r.trials.len(), r.warnings.len(), r.lines), (1, 0, 2));
        f.write_all(b"{\"op_code\":11,\"worker_id\":\"x\"}\n").unwrap();
        let e = j.read().unwrap_err().to_string();
        assert!(e.contains("journal.log: line 3: op code 11 is not one this version knows") && !e.contains('\n'), "{e}");
        std::fs::write(j.path(), b"{\"op_code\":0,\"worker_id\":\"x\",\"study_name\":\"s\",\"directions\":[2]}\nnot json\n").unwrap();
        let e = j.read().unwrap_err().to_string();
        assert!(e.contains("line 2 is not a journal operation"), "{e}");
    }

    #[test]
    fn python_nan_reads_as_a_number_that_is_not_one() {
        let v = parse_line(br#"{"op_code":7,"worker_id":"w","trial_id":0,"step":1,"intermediate_value":NaN}"#).unwrap();
        assert!(v["intermediate_value"].is_null());
    }
}
