//! The study a sweep runs (`SPACE.toml`): its method, the recipe fields every trial shares
//! (`[fixed]`) and the swept ones (`[space]`), parsed, checked up front and written back as the
//! sweep folder's `sweep.toml`.
//!
//! ```toml
//! method = "random"      # grid | random | halving | asha | tpe
//! trials = 30            # all but grid: how many configurations to draw
//! seed = 0               # seed of the draw (each trial's recipe keeps its own `seed`)
//! val_size = 10000       # images held out from the end of the training set for ranking
//! [fixed]                # recipe fields shared by every trial (see config/default.toml)
//! epochs = 10
//! [halving]              # halving and asha: r_min epochs first, eta times more per rung
//! r_min = 1
//! r_max = 9
//! eta = 3
//! [tpe]                  # tpe: random draws first, then candidates scored per suggestion
//! startup = 10
//! candidates = 24
//! [space]                # a list of values, or (all but grid) a range
//! lr = { log_uniform = [0.01, 1.0] }
//! width = { int_log_uniform = [16, 1024] }
//! depth = [1, 2, 3]
//! activation = ["relu", "tanh"]
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Value;

use crate::config::{Setting, TrainConfig};
use crate::error::{Error, Result};

/// The most points a grid may have.
pub const MAX_GRID: usize = 10_000;
/// The most trials a random search may draw.
pub const MAX_TRIALS: usize = 10_000;
pub const DEFAULT_VAL_SIZE: usize = 10_000;

/// The recipe fields a sweep may vary, in the recipe's order; `depth` and `width` build
/// `hidden` (`depth` layers of `width` units).
pub const FIELDS: [&str; 14] = [
    "epochs", "lr", "batch_size", "seed", "hidden", "depth", "width", "activation", "init_std", "shuffle", "init",
    "momentum", "weight_decay", "dropout",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Every combination of the listed values.
    Grid,
    /// `trials` configurations drawn from the space.
    Random,
    /// Random draws, trained in rungs of growing epochs; the best 1/eta go on.
    Halving,
    /// Tree-structured Parzen estimator: each draw after the first `startup` follows from the
    /// results before it.
    Tpe,
    /// Asynchronous successive halving: random draws, a trial goes on to the next rung as soon
    /// as it is in the best 1/eta of those that reached its rung (no worker waits for a rung).
    Asha,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Grid => "grid",
            Method::Random => "random",
            Method::Halving => "halving",
            Method::Tpe => "tpe",
            Method::Asha => "asha",
        }
    }

    /// Trained in rungs of growing epochs (`[halving]`).
    pub fn has_rungs(self) -> bool {
        matches!(self, Method::Halving | Method::Asha)
    }
}

/// TPE's settings: `startup` random draws before the model is used, and the `candidates` it
/// scores for each suggestion (Optuna's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tpe {
    pub startup: usize,
    pub candidates: usize,
}

impl Default for Tpe {
    fn default() -> Self {
        Self { startup: 10, candidates: 24 }
    }
}

/// `pruner = "median"`: Optuna's MedianPruner. After epoch e (e > `warmup`), a trial whose best
/// validation accuracy so far is below the median of the finished trials' at epoch e is stopped
/// (PRUNED), once `startup` trials have finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Median {
    pub startup: usize,
    pub warmup: usize,
}

impl Default for Median {
    fn default() -> Self {
        Self { startup: 5, warmup: 0 }
    }
}

/// The pruners a study may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrunerKind {
    Median,
}

/// Successive halving: every trial gets `r_min` epochs; the best 1/`eta` get `eta` times as many,
/// up to `r_max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Halving {
    pub r_min: usize,
    pub r_max: usize,
    pub eta: usize,
}

impl Default for Halving {
    fn default() -> Self {
        Self { r_min: 1, r_max: 9, eta: 3 }
    }
}

/// The values a swept field takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    Values(Vec<Value>),
    Uniform(f64, f64),
    LogUniform(f64, f64),
    IntLogUniform(i64, i64),
}

impl Domain {
    fn kind(&self) -> &'static str {
        match self {
            Domain::Values(_) => "list",
            Domain::Uniform(..) => "uniform",
            Domain::LogUniform(..) => "log_uniform",
            Domain::IntLogUniform(..) => "int_log_uniform",
        }
    }

    /// Values that bound the domain: every listed value, or the two ends of a range.
    pub fn extremes(&self) -> Vec<Value> {
        match self {
            Domain::Values(v) => v.clone(),
            Domain::Uniform(a, b) | Domain::LogUniform(a, b) => vec![Value::Float(*a), Value::Float(*b)],
            Domain::IntLogUniform(a, b) => vec![Value::Integer(*a), Value::Integer(*b)],
        }
    }

    pub fn is_log(&self) -> bool {
        matches!(self, Domain::LogUniform(..) | Domain::IntLogUniform(..))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub domain: Domain,
}

/// A checked study.
#[derive(Debug, Clone, PartialEq)]
pub struct Study {
    pub method: Method,
    /// Draws of a random or halving search.
    pub trials: Option<usize>,
    /// Seed of the draws.
    pub seed: u64,
    pub val_size: usize,
    pub halving: Halving,
    pub tpe: Tpe,
    /// `pruner = "median"` (grid, random, tpe): its settings; None: no pruning.
    pub pruner: Option<Median>,
    /// What the study weighs, the first ranking the leaderboard (default: validation accuracy).
    pub objectives: Vec<super::objectives::Objective>,
    /// The recipe every trial starts from.
    pub fixed: TrainConfig,
    /// Swept fields, in [`FIELDS`] order.
    pub space: Vec<Param>,
}

/// The file as written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "grid")]
    method: Method,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trials: Option<usize>,
    #[serde(default)]
    seed: u64,
    #[serde(default = "default_val_size")]
    val_size: usize,
    #[serde(default)]
    fixed: toml::Table,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    halving: Option<Halving>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tpe: Option<Tpe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    objectives: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pruner: Option<PrunerKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    median: Option<Median>,
    space: toml::Table,
}

fn grid() -> Method {
    Method::Grid
}

fn default_val_size() -> usize {
    DEFAULT_VAL_SIZE
}

/// Command-line replacements of the file's method, draws and seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct StudyOverrides {
    pub method: Option<Method>,
    pub trials: Option<usize>,
    pub seed: Option<u64>,
}

impl Study {
    /// Read and check a space file.
    pub fn load(path: &Path, o: StudyOverrides) -> Result<Study> {
        Self::load_as(path, o, true)
    }

    /// Read a sweep folder's saved `sweep.toml`. Unlike a user's space file, one an older version
    /// saved may list swept fields under `[fixed]` (with the values they were overridden from).
    pub fn load_saved(path: &Path) -> Result<Study> {
        Self::load_as(path, StudyOverrides::default(), false)
    }

    fn load_as(path: &Path, o: StudyOverrides, strict: bool) -> Result<Study> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::config_with(format!("{shown}: space file not found"), e).fix("pass an existing file, e.g. config/sweeps/lr.toml").paraphrased()
            }
            std::io::ErrorKind::InvalidData => Error::config_with(format!("{shown}: not a text (UTF-8) file"), e).fix("pass a TOML space file").paraphrased(),
            _ if path.is_dir() => Error::config_with(format!("{shown}: is a folder"), e).fix("pass a space file (TOML), or add --resume to continue a sweep").paraphrased(),
            _ => Error::io("cannot read", path, e),
        })?;
        Self::parse_as(&text, &shown.to_string(), o, strict)
    }

    /// Parse and check TOML text; `origin` starts every error message.
    pub fn parse(text: &str, origin: &str, o: StudyOverrides) -> Result<Study> {
        Self::parse_as(text, origin, o, true)
    }

    /// [`Study::parse`] of a saved study ([`Study::load_saved`]).
    pub fn parse_saved(text: &str, origin: &str) -> Result<Study> {
        Self::parse_as(text, origin, StudyOverrides::default(), false)
    }

    fn parse_as(text: &str, origin: &str, o: StudyOverrides, strict: bool) -> Result<Study> {
        let file: File = toml::from_str(text).map_err(|e| {
            let msg = e.message().lines().next().unwrap_or("invalid TOML");
            let line = e.span().and_then(|s| text.get(..s.start)).map(|t| format!(" (line {})", t.matches('\n').count() + 1));
            Error::config_with(format!("{origin}: {msg}{}", line.unwrap_or_default()), e).fix("see config/sweeps/ for examples").paraphrased()
        })?;
        let (fixed, space) = (file.fixed.clone(), file.space.clone());
        let study = Self::from_file(file, o).map_err(|m| Error::config(format!("{origin}: {m}")))?;
        if strict {
            check_fixed(&fixed, &space).map_err(|m| Error::config(format!("{origin}: {m}")))?;
        }
        Ok(study)
    }

    fn from_file(f: File, o: StudyOverrides) -> std::result::Result<Study, String> {
        let fixed: TrainConfig = Value::Table(f.fixed).try_into().map_err(|e: toml::de::Error| format!("[fixed]: {}", first_line(e.message())))?;
        fixed.validate().map_err(|m| format!("[fixed]: {m}"))?;
        let mut space = Vec::new();
        for name in FIELDS {
            if let Some(v) = f.space.get(name) {
                space.push(Param { name: name.to_string(), domain: domain(name, v)? });
            }
        }
        if let Some(k) = f.space.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!("[space] has unknown field `{k}`; sweepable fields: {}", FIELDS.join(", ")));
        }
        let study = Study {
            method: o.method.unwrap_or(f.method),
            trials: o.trials.or(f.trials),
            seed: o.seed.unwrap_or(f.seed),
            val_size: f.val_size,
            halving: f.halving.unwrap_or_default(),
            tpe: f.tpe.unwrap_or_default(),
            objectives: match &f.objectives {
                Some(names) => super::objectives::parse_list(names)?,
                None => vec![super::objectives::Objective::ValAcc],
            },
            pruner: match (f.pruner, f.median) {
                (Some(PrunerKind::Median), m) => Some(m.unwrap_or_default()),
                (None, Some(_)) => return Err("[median] is set but no pruner: add pruner = \"median\"".into()),
                (None, None) => None,
            },
            fixed,
            space,
        };
        study.check()?;
        Ok(study)
    }

    /// The study with `--set` applied to its `[fixed]` recipe: a swept field (or `hidden` while
    /// `depth`/`width` are swept, or `epochs` under rungs) is refused, as the search sets it.
    pub fn with_settings(mut self, settings: &[Setting]) -> Result<Study> {
        for s in settings {
            let swept = |n: &str| self.space.iter().any(|p| p.name == n);
            let why = match s.field.as_str() {
                f if swept(f) => Some(format!("`{f}` is swept in the study's [space]; remove it from [space] to fix its value, or drop --set {f}")),
                "hidden" if swept("depth") || swept("width") => Some("the study builds `hidden` from its swept depth and width; drop --set hidden".to_string()),
                "epochs" if self.method.has_rungs() => Some(format!("a {} study sets each trial's epochs from [halving] (r_min, r_max); drop --set epochs", self.method.name())),
                _ => None,
            };
            if let Some(why) = why {
                return Err(Error::config(format!("--set {}: {why}", s.shown())));
            }
        }
        self.fixed = self.fixed.with_settings(settings)?;
        self.check().map_err(|m| Error::config(format!("--set: {m}")))?;
        Ok(self)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.fixed.val_size > 0 {
            return Err("[fixed]: field `val_size`: trials are scored on the study's own held-out images; set val_size at the top of the study, not in [fixed]".into());
        }
        if self.fixed.patience.is_some() {
            return Err("[fixed]: field `patience`: a study stops trials with its pruner or its rungs (method = \"halving\" or \"asha\"); remove patience from [fixed]".into());
        }
        if self.space.is_empty() {
            return Err("[space] is empty; list at least one field to sweep, e.g. lr = [0.05, 0.1, 0.2]".into());
        }
        if self.objectives.len() > 1 && self.method == Method::Tpe {
            return Err("field `objectives`: tpe here suggests from one objective (Optuna's multi-objective TPE is not implemented); use method = \"random\", \"grid\", \"halving\" or \"asha\", or one objective".into());
        }
        if self.objectives.len() > 1 && self.pruner.is_some() {
            return Err("field `pruner`: a study of several objectives cannot be pruned on one (Optuna's pruners refuse it too); remove pruner or keep one objective".into());
        }
        if self.pruner.is_some() && self.method.has_rungs() {
            return Err(format!("field `pruner`: a {} study stops trials at its rungs already; remove pruner, or use method = \"random\" or \"tpe\"", self.method.name()));
        }
        if self.val_size == 0 {
            return Err("field `val_size` must be at least 1 (trials are ranked on the held-out images)".into());
        }
        let has = |n: &str| self.space.iter().any(|p| p.name == n);
        if has("hidden") && (has("depth") || has("width")) {
            return Err("[space] sweeps `hidden` and `depth`/`width`; sweep either hidden = [[..], ..] or depth and width".into());
        }
        for p in &self.space {
            self.check_param(p)?;
        }
        match self.method {
            Method::Grid => {
                if let Some(p) = self.space.iter().find(|p| !matches!(p.domain, Domain::Values(_))) {
                    return Err(format!("[space] field `{}`: a {} range needs method = \"random\", \"halving\", \"asha\" or \"tpe\"; a grid takes a list of values", p.name, p.domain.kind()));
                }
                let points = self.grid_size();
                if points > MAX_GRID {
                    return Err(format!("[space]: the grid has {points} points, more than {MAX_GRID}; list fewer values, or use method = \"random\" with trials = N"));
                }
            }
            Method::Random | Method::Halving | Method::Tpe | Method::Asha => self.check_draws()?,
        }
        Ok(())
    }

    fn check_draws(&self) -> std::result::Result<(), String> {
        let m = self.method.name();
        match self.trials {
            None | Some(0) => return Err(format!("field `trials`: method \"{m}\" needs trials = N (N >= 1), or --trials N")),
            Some(n) if n > MAX_TRIALS => return Err(format!("field `trials` ({n}) is above {MAX_TRIALS}; draw fewer trials")),
            _ => {}
        }
        if self.method == Method::Tpe && self.tpe.candidates == 0 {
            return Err("[tpe]: candidates must be at least 1 (24 is the usual number)".into());
        }
        if !self.method.has_rungs() {
            return Ok(());
        }
        let h = self.halving;
        if self.space.iter().any(|p| p.name == "epochs") {
            return Err(format!("[space] field `epochs`: {m} sets the epochs itself (r_min, r_max in [halving]); remove it from [space]"));
        }
        if h.r_min == 0 || h.eta < 2 || h.r_max < h.r_min {
            return Err(format!(
                "[halving]: needs r_min >= 1, eta >= 2 and r_max >= r_min (got r_min = {}, r_max = {}, eta = {})",
                h.r_min, h.r_max, h.eta
            ));
        }
        Ok(())
    }

    /// Every listed value (and both ends of a range) must make a valid recipe.
    fn check_param(&self, p: &Param) -> std::result::Result<(), String> {
        let integral = matches!(p.name.as_str(), "epochs" | "batch_size" | "seed" | "depth" | "width");
        if integral && matches!(p.domain, Domain::Uniform(..) | Domain::LogUniform(..)) {
            return Err(format!("[space] field `{}` takes whole numbers; use int_log_uniform or a list", p.name));
        }
        for v in p.domain.extremes() {
            let params = [(p.name.clone(), v.clone())];
            super::recipe::recipe(&self.fixed, &params).map_err(|m| format!("[space] field `{}`: value {v}: {m}", p.name))?;
        }
        Ok(())
    }

    /// Points of the grid (saturating).
    pub fn grid_size(&self) -> usize {
        self.space.iter().fold(1usize, |n, p| match &p.domain {
            Domain::Values(v) => n.saturating_mul(v.len()),
            _ => n,
        })
    }

    /// The study as TOML: what `sweep.toml` holds (parses back to the same study). `[fixed]`
    /// leaves out what the trials never take from it: the swept fields, the default epochs of a
    /// study with rungs, and `hidden` when the layers come from `depth` and `width`.
    pub fn to_toml(&self) -> String {
        let mut fixed = match Value::try_from(&self.fixed) {
            Ok(Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        let swept = |n: &str| self.space.iter().any(|p| p.name == n);
        for p in &self.space {
            fixed.remove(&p.name);
        }
        if self.method.has_rungs() && self.fixed.epochs == TrainConfig::default().epochs {
            fixed.remove("epochs");
        }
        // With width swept, hidden's length is the depth: only the default (one layer) goes unsaid.
        if swept("width") && (swept("depth") || self.fixed.hidden == TrainConfig::default().hidden) {
            fixed.remove("hidden");
        }
        let space = self.space.iter().map(|p| (p.name.clone(), domain_value(&p.domain))).collect();
        let file = File {
            method: self.method,
            trials: self.trials,
            seed: self.seed,
            val_size: self.val_size,
            fixed,
            halving: self.method.has_rungs().then_some(self.halving),
            tpe: (self.method == Method::Tpe).then_some(self.tpe),
            objectives: (self.objectives != [super::objectives::Objective::ValAcc]).then(|| self.objectives.iter().map(|o| o.name().to_string()).collect()),
            pruner: self.pruner.map(|_| PrunerKind::Median),
            median: self.pruner,
            space,
        };
        toml::to_string(&file).unwrap_or_default()
    }

    /// Swept field names, e.g. `lr x width`.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.space.iter().map(|p| p.name.as_str()).collect();
        match self.method {
            Method::Grid => format!("grid of {} over {}", self.grid_size(), names.join(" x ")),
            m => format!("{} search of {} trials over {}", m.name(), self.trials.unwrap_or(0), names.join(", ")),
        }
    }
}

/// `hidden` in a user's `[fixed]` beside a swept `depth` or `width` would be overridden in part,
/// without a word: it may only give what they leave open, the width (one layer's size) when only
/// `depth` is swept.
fn check_fixed(fixed: &toml::Table, space: &toml::Table) -> std::result::Result<(), String> {
    let Some(hidden) = fixed.get("hidden") else {
        return Ok(());
    };
    let (depth, width) = (space.contains_key("depth"), space.contains_key("width"));
    let one_layer = hidden.as_array().is_some_and(|a| a.len() == 1);
    match (depth, width) {
        (_, true) => Err(format!(
            "[fixed] hidden = {hidden} beside the swept `width`: a trial's layers are `depth` layers of `width` units, so hidden would be overridden; remove hidden from [fixed] (for two layers, add depth = [2] to [space])"
        )),
        (true, false) if !one_layer => Err(format!(
            "[fixed] hidden = {hidden} beside the swept `depth`: every layer of a trial is as wide as hidden's one value; give one width, e.g. hidden = [{}], or sweep width too",
            hidden.as_array().and_then(|a| a.first()).map_or("256".to_string(), |v| v.to_string())
        )),
        _ => Ok(()),
    }
}

/// The fields a space file sets in `[fixed]` and sweeps in `[space]` too (the trials take them from
/// `[space]`), each said in one line; empty for a file that does not parse.
pub fn fixed_and_swept(path: &Path) -> Vec<String> {
    let file: Option<File> = std::fs::read_to_string(path).ok().and_then(|t| toml::from_str(&t).ok());
    let Some(f) = file else {
        return Vec::new();
    };
    f.fixed
        .keys()
        .filter(|k| f.space.contains_key(k.as_str()))
        .map(|k| format!("{}: field `{k}` is in [fixed] and in [space]; the trials take it from [space] (remove it from [fixed])", path.display()))
        .collect()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn domain(name: &str, v: &Value) -> std::result::Result<Domain, String> {
    match v {
        Value::Array(a) if a.is_empty() => Err(format!("[space] field `{name}` is an empty list; give at least one value")),
        Value::Array(a) => Ok(Domain::Values(a.clone())),
        Value::Table(t) => range(name, t),
        _ => Err(format!("[space] field `{name}` = {v}: give a list of values, e.g. [{v}], or a range, e.g. {{ log_uniform = [0.01, 1.0] }}")),
    }
}

fn range(name: &str, t: &toml::Table) -> std::result::Result<Domain, String> {
    let usage = format!("[space] field `{name}`: a range is one of {{ uniform = [a, b] }}, {{ log_uniform = [a, b] }}, {{ int_log_uniform = [a, b] }}");
    let mut entries = t.iter();
    let (Some((kind, Value::Array(b))), None) = (entries.next(), entries.next()) else {
        return Err(usage);
    };
    let [lo, hi] = b.as_slice() else {
        return Err(format!("{usage} (two bounds)"));
    };
    let shown = format!("[space] field `{name}`: {kind} = [{lo}, {hi}]");
    let (a, c, d) = match kind.as_str() {
        "int_log_uniform" => match (lo.as_integer(), hi.as_integer()) {
            (Some(a), Some(c)) => (a as f64, c as f64, Domain::IntLogUniform(a, c)),
            _ => return Err(format!("{shown}: int_log_uniform takes whole-number bounds")),
        },
        "uniform" | "log_uniform" => {
            let num = |v: &Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)).filter(|x| x.is_finite());
            let (Some(a), Some(c)) = (num(lo), num(hi)) else {
                return Err(format!("{shown}: the bounds must be finite numbers"));
            };
            (a, c, if kind == "uniform" { Domain::Uniform(a, c) } else { Domain::LogUniform(a, c) })
        }
        _ => return Err(usage),
    };
    if a > c {
        return Err(format!("{shown}: the lower bound is above the upper one; write [{hi}, {lo}]"));
    }
    if d.is_log() && a <= 0.0 {
        return Err(format!("{shown}: a log range needs bounds > 0"));
    }
    Ok(d)
}

fn domain_value(d: &Domain) -> Value {
    let pair = |kind: &str, a: Value, b: Value| {
        let mut t = toml::Table::new();
        t.insert(kind.to_string(), Value::Array(vec![a, b]));
        Value::Table(t)
    };
    match d {
        Domain::Values(v) => Value::Array(v.clone()),
        Domain::Uniform(a, b) | Domain::LogUniform(a, b) => pair(d.kind(), Value::Float(*a), Value::Float(*b)),
        Domain::IntLogUniform(a, b) => pair(d.kind(), Value::Integer(*a), Value::Integer(*b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Study> {
        Study::parse(text, "s.toml", StudyOverrides::default())
    }

    fn err(text: &str) -> String {
        let e = parse(text).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        let m = e.to_string();
        assert!(m.starts_with("s.toml: "), "{m}");
        assert!(!m.contains('\n'), "{m:?}");
        m
    }

    const JOINT: &str = r#"
method = "halving"
trials = 30
seed = 5
[fixed]
batch_size = 128
[halving]
r_min = 1
r_max = 9
eta = 3
[space]
width = { int_log_uniform = [16, 1024] }
lr = { log_uniform = [0.01, 1.0] }
activation = ["relu", "tanh"]
depth = [1, 2, 3]
dropout = { uniform = [0.0, 0.5] }
"#;

    #[test]
    fn a_study_parses_with_its_fields_in_recipe_order() {
        let s = parse(JOINT).unwrap();
        assert_eq!((s.method, s.trials, s.seed, s.val_size), (Method::Halving, Some(30), 5, DEFAULT_VAL_SIZE));
        assert_eq!(s.fixed, TrainConfig { batch_size: 128, ..TrainConfig::default() });
        let names: Vec<&str> = s.space.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["lr", "depth", "width", "activation", "dropout"]);
        assert_eq!(s.space[0].domain, Domain::LogUniform(0.01, 1.0));
        assert_eq!(s.space[2].domain, Domain::IntLogUniform(16, 1024));
        assert_eq!(s.describe(), "halving search of 30 trials over lr, depth, width, activation, dropout");
    }

    #[test]
    fn the_saved_fixed_recipe_lists_only_what_the_trials_take_from_it() {
        let saved = parse(JOINT).unwrap().to_toml();
        let fixed = saved.split("[fixed]").nth(1).unwrap().split("\n[").next().unwrap();
        for swept in ["lr =", "hidden =", "activation =", "dropout =", "epochs ="] {
            assert!(!fixed.contains(swept), "[fixed] lists `{swept}` that the trials never take from it:\n{saved}");
        }
        assert!(fixed.contains("batch_size = 128") && fixed.contains("momentum = 0.0"), "{saved}");
        // Depth alone: hidden gives the width, and stays.
        let depth = parse("[fixed]\nhidden = [128]\n[space]\ndepth = [1, 2]\n").unwrap();
        assert!(depth.to_toml().contains("hidden = [128]"), "{}", depth.to_toml());
        assert_eq!(depth.trials().unwrap()[1].config.hidden, vec![128, 128]);
    }

    #[test]
    fn a_fixed_hidden_the_space_overrides_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(&p, "[fixed]\nlr = 0.3\nepochs = 2\n[space]\nlr = [0.1, 0.2]\n").unwrap();
        assert_eq!(fixed_and_swept(&p), [format!("{}: field `lr` is in [fixed] and in [space]; the trials take it from [space] (remove it from [fixed])", p.display())]);
        let m = err("[fixed]\nhidden = [64]\n[space]\nwidth = [16, 32]\n");
        assert!(m.contains("[fixed] hidden = [64] beside the swept `width`") && m.contains("add depth = [2] to [space]"), "{m}");
        let m = err("[fixed]\nhidden = [128, 64]\n[space]\ndepth = [1, 2]\n");
        assert!(m.contains("give one width, e.g. hidden = [128]"), "{m}");
        // A saved study of an older version, with the overridden values under [fixed], still loads.
        let old = "[fixed]\nlr = 0.1\nhidden = [64, 64]\n[space]\nlr = [0.2, 0.3]\nwidth = [16, 32]\n";
        let s = Study::parse_saved(old, "sweep.toml").unwrap();
        assert_eq!(s.trials().unwrap()[0].config.hidden, vec![16, 16], "the depth still comes from the saved hidden");
        assert_eq!(Study::parse_saved(&s.to_toml(), "sweep.toml").unwrap().trials().unwrap(), s.trials().unwrap());
    }

    #[test]
    fn the_written_study_parses_back_to_itself() {
        for text in [JOINT, "[space]\nlr = [0.1, 0.2]\nhidden = [[64], [32, 16]]\n", "method = \"random\"\ntrials = 3\n[space]\ninit_std = { uniform = [0.001, 0.1] }\n"] {
            let s = parse(text).unwrap();
            assert_eq!(parse(&s.to_toml()).unwrap(), s, "{}", s.to_toml());
        }
    }

    #[test]
    fn the_command_line_overrides_method_trials_and_seed() {
        let o = StudyOverrides { method: Some(Method::Random), trials: Some(4), seed: Some(9) };
        let s = Study::parse("[space]\nlr = [0.1, 0.2]\n", "s.toml", o).unwrap();
        assert_eq!((s.method, s.trials, s.seed), (Method::Random, Some(4), 9));
        assert!(Study::parse("[space]\nlr = { uniform = [0.1, 0.2] }\n", "s.toml", StudyOverrides { method: Some(Method::Grid), ..o }).is_err());
    }

    #[test]
    fn bad_space_files_get_one_line_naming_the_field() {
        for (text, want) in [
            ("[space]\nlearning_rate = [0.1]\n", "unknown field `learning_rate`"),
            ("[space]\nlr = []\n", "field `lr` is an empty list"),
            ("method = \"random\"\ntrials = 2\n[space]\nlr = { uniform = [1.0, 0.1] }\n", "field `lr`: uniform = [1.0, 0.1]: the lower bound is above"),
            ("method = \"random\"\ntrials = 2\n[space]\nlr = { log_uniform = [0.0, 1.0] }\n", "field `lr`: log_uniform = [0.0, 1.0]: a log range needs bounds > 0"),
            ("method = \"random\"\ntrials = 2\n[space]\nwidth = { int_log_uniform = [-4, 8] }\n", "field `width`: int_log_uniform = [-4, 8]: a log range"),
            ("[space]\nlr = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nseed = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nbatch_size = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nwidth = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n", "the grid has 11000 points, more than 10000"),
            ("[space]\nlr = { log_uniform = [0.01, 1.0] }\n", "field `lr`: a log_uniform range needs method = \"random\""),
            ("[space]\nlr = 0.1\n", "field `lr` = 0.1: give a list of values"),
            ("[space]\nlr = { normal = [0.1, 1.0] }\n", "field `lr`: a range is one of"),
            ("method = \"random\"\n[space]\nlr = [0.1]\n", "field `trials`: method \"random\" needs trials = N"),
            ("method = \"halving\"\ntrials = 3\n[space]\nepochs = [1, 2]\n", "field `epochs`: halving sets the epochs"),
            ("method = \"halving\"\ntrials = 3\n[halving]\neta = 1\n[space]\nlr = [0.1]\n", "[halving]: needs r_min >= 1, eta >= 2"),
            ("[space]\nlr = [0.1, -1.0]\n", "field `lr`: value -1.0: field `lr` must be a finite number > 0"),
            ("[space]\nactivation = [\"relu\", \"softmax\"]\n", "field `activation`: value \"softmax\": unknown variant `softmax`"),
            ("method = \"random\"\ntrials = 2\n[space]\nbatch_size = { uniform = [16, 64] }\n", "field `batch_size` takes whole numbers"),
            ("[space]\nhidden = [64, 128]\n", "field `hidden`: value 64"),
            ("[space]\nhidden = [[64]]\nwidth = [8]\n", "sweeps `hidden` and `depth`/`width`"),
            ("[space]\ndepth = [0, 1]\n", "field `depth`: value 0: `depth` must be a whole number from 1"),
            ("[space]\n", "[space] is empty"),
            ("val_size = 0\n[space]\nlr = [0.1]\n", "field `val_size` must be at least 1"),
            ("[fixed]\nlr = -2.0\n[space]\nseed = [1]\n", "[fixed]: field `lr` must be"),
            ("[fixed]\nlearning_rate = 0.1\n[space]\nseed = [1]\n", "[fixed]: unknown field `learning_rate`"),
            ("[fixed]\nval_size = 100\n[space]\nseed = [1]\n", "[fixed]: field `val_size`: trials are scored on the study's own held-out images"),
            ("[fixed]\nval_size = 100\npatience = 2\n[space]\nseed = [1]\n", "[fixed]: field `val_size`"),
            ("metod = \"grid\"\n[space]\nseed = [1]\n", "unknown field `metod`"),
            ("method = \"bayes\"\n[space]\nseed = [1]\n", "unknown variant `bayes`"),
            ("lr = [0.1]\n", "unknown field `lr`"),
            ("[space\n", "s.toml: "),
        ] {
            let m = err(text);
            assert!(m.contains(want), "{text:?}\n  gave: {m}\n  want: {want}");
        }
    }

    #[test]
    fn set_changes_the_fixed_recipe_but_never_a_swept_field() {
        let set = |args: &[&str]| crate::config::parse_settings(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>()).unwrap();
        let s = parse(JOINT).unwrap().with_settings(&set(&["init_std=0.1", "shuffle=false"])).unwrap();
        assert_eq!((s.fixed.init_std, s.fixed.shuffle, s.fixed.batch_size), (0.1, false, 128));
        assert_eq!(parse(&s.to_toml()).unwrap(), s, "sweep.toml keeps the --set values");
        for (arg, want) in [
            ("lr=0.5", "--set lr=0.5: `lr` is swept in the study's [space]"),
            ("hidden=[8]", "--set hidden=[8]: the study builds `hidden` from its swept depth and width"),
            ("epochs=3", "--set epochs=3: a halving study sets each trial's epochs from [halving]"),
            ("patience=2", "field `patience` (2) needs a validation split"),
        ] {
            let e = parse(JOINT).unwrap().with_settings(&set(&[arg])).unwrap_err();
            assert!(matches!(e, Error::Config(_)) && e.to_string().contains(want), "{arg}: {e}");
        }
    }

    #[test]
    fn a_missing_file_and_a_folder_are_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = Study::load(&dir.path().join("none.toml"), StudyOverrides::default()).unwrap_err();
        assert!(matches!(e, Error::Config(_)) && e.to_string().contains("space file not found"), "{e}");
        let e = Study::load(dir.path(), StudyOverrides::default()).unwrap_err();
        assert!(e.to_string().contains("is a folder"), "{e}");
    }

    #[test]
    fn every_shipped_study_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sweeps");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            let s = Study::load(&p, StudyOverrides::default()).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.trials().unwrap().is_empty());
            n += 1;
        }
        assert_eq!(n, 6);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Any grid of valid rates and widths parses, round-trips and has the product of
            /// its list lengths as trials.
            #[test]
            fn grids_round_trip(lrs in prop::collection::vec(1u32..1000, 1..5), widths in prop::collection::vec(1u32..2048, 1..5)) {
                let lr: Vec<String> = lrs.iter().map(|v| format!("{}", *v as f64 / 1000.0)).collect();
                let text = format!("[space]\nlr = [{}]\nwidth = [{}]\n", lr.join(", "), widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(", "));
                let s = parse(&text).unwrap();
                prop_assert_eq!(s.trials().unwrap().len(), lrs.len() * widths.len());
                prop_assert_eq!(parse(&s.to_toml()).unwrap(), s);
            }

            /// Whatever the text, the parser answers with a study or a one-line config error.
            #[test]
            fn any_text_gets_a_study_or_one_line(text in "(method = \"(grid|random|halving)\"\n)?(trials = -?[0-9]{1,3}\n)?\\[space\\]\n([a-z_]{2,8} = (\\[[-0-9., \"a-z]{0,12}\\]|\\{ [a-z_]{4,16} = \\[[-0-9., ]{0,10}\\] \\}|[0-9]{1,3})\n){0,3}") {
                if let Err(e) = parse(&text) {
                    prop_assert!(matches!(e, Error::Config(_)));
                    let m = e.to_string();
                    prop_assert!(m.starts_with("s.toml: ") && !m.contains('\n'), "{}", m);
                }
            }
        }
    }
}
