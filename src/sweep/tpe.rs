//! `method = "tpe"`: the tree-structured Parzen estimator, the algorithm of Optuna's default
//! sampler, on the `tpe` crate. One estimator per swept field (independent, as Optuna's
//! default); the first `startup` trials are the draws `method = "random"` makes; every later
//! trial is the candidate, out of `candidates` drawn from the density of the best results, that
//! is likeliest under the best and least under the rest.
//!
//! Not Optuna's `TPESampler` with its defaults: the best are `ceil(0.1 n)` of `n` results with
//! no cap (Optuna: at most 25), every result weighs the same (Optuna's default weights give all
//! but the latest 25 less), the constant liar is always on (Optuna: `constant_liar=False`), and
//! the kernels' widths and prior are the `tpe` crate's.
//!
//! Reproducible by construction. Trial `i` is suggested from the results of trials `0..=i-K`
//! only (`K`: the workers), so that the suggestion does not depend on which trial ends first.
//! Trials `i-K+1..i-1` count as pending, at the worst result so far (the "constant liar"),
//! whether or not they have finished, so that two workers do not both try the same spot. A
//! free worker waits for trial `i-K` before it suggests trial `i`. Each suggestion has its
//! own generator, seeded by the study's seed and `i`, and is written to the study's journal
//! with the claim of its trial ([`super::work`]). `K` is the workers of the process that
//! started the study, kept in the journal: a resumed study asks the same trials whatever
//! `--workers` says then. Processes that `--join` one study suggest from every finished trial,
//! the running ones pending (reproducible no more: it depends on which trial ends first).
//!
//! TPE studies are not sharded (`--shard`): each trial depends on the ones before it.
//! Folders from before the journal kept each suggestion in `params.toml`; [`load_params`]
//! reads them once, when such a study is turned into a journal.

use std::path::Path;

use rand_tpe::SeedableRng;
use toml::Value;

use super::space::{Domain, Param, Study};
use super::trials::draw;
use crate::error::{Error, Result};

/// A trial folder's saved suggestion: the swept fields' values.
pub const PARAMS_FILE: &str = "params.toml";

/// What TPE minimises: the validation error (a trial that diverged counts as no accuracy).
fn objective(val_acc: f64) -> f64 {
    if val_acc.is_finite() { 1.0 - val_acc } else { 1.0 }
}

/// The swept values of trial `index`, given the `finished` trials' values and validation
/// accuracies and the values of the trials `pending` (in flight).
pub fn suggest(study: &Study, index: usize, finished: &[(&[(String, Value)], f64)], pending: &[&[(String, Value)]]) -> Result<Vec<(String, Value)>> {
    if index < study.tpe.startup || finished.is_empty() {
        return Ok(draw(&study.space, study.seed, index));
    }
    let mixed = (study.seed ^ 0x7470_6573_7475_6479).wrapping_add((index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut rng = rand_tpe::rngs::StdRng::seed_from_u64(mixed);
    let worst = finished.iter().map(|f| objective(f.1)).fold(0.0, f64::max);
    study
        .space
        .iter()
        .map(|p| {
            let coded = Coding::of(p);
            let Some(range) = coded.range() else {
                return Ok((p.name.clone(), coded.decode(0.0)));
            };
            let failed = |e: crate::error::Cause| Error::failure_with(format!("tpe: cannot suggest `{}` for trial {index}", p.name), e);
            let builder = match coded {
                Coding::Choice(_) => tpe::histogram_estimator(),
                _ => tpe::parzen_estimator(),
            };
            let mut opt = tpe::TpeOptimizerBuilder::new().candidates(study.tpe.candidates).build(builder, range).map_err(|e| failed(e.into()))?;
            for (params, acc) in finished {
                opt.tell(coded.encode(value_of(params, &p.name)), objective(*acc)).map_err(|e| failed(e.into()))?;
            }
            for params in pending {
                opt.tell(coded.encode(value_of(params, &p.name)), worst).map_err(|e| failed(e.into()))?;
            }
            let x = opt.ask(&mut rng).map_err(|e| failed(e.into()))?;
            Ok((p.name.clone(), coded.decode(x)))
        })
        .collect()
}

fn value_of<'v>(params: &'v [(String, Value)], name: &str) -> Option<&'v Value> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A swept field as the estimator sees it: a number in a range (log fields by their log), or
/// the position of a listed value.
enum Coding<'a> {
    Choice(&'a [Value]),
    Uniform(f64, f64),
    Log(f64, f64),
    IntLog(i64, i64),
}

impl<'a> Coding<'a> {
    fn of(p: &'a Param) -> Self {
        match &p.domain {
            Domain::Values(v) => Coding::Choice(v),
            Domain::Uniform(a, b) => Coding::Uniform(*a, *b),
            Domain::LogUniform(a, b) => Coding::Log(*a, *b),
            Domain::IntLogUniform(a, b) => Coding::IntLog(*a, *b),
        }
    }

    /// The estimator's range (end excluded); none when the field has one value only.
    fn range(&self) -> Option<tpe::range::Range> {
        // Widened by a hair so that the upper bound itself can be told.
        let half_open = |a: f64, b: f64| tpe::range(a, b + (b - a).abs() * 1e-9).ok();
        match *self {
            Coding::Choice(v) if v.len() > 1 => tpe::categorical_range(v.len()).ok(),
            Coding::Uniform(a, b) if a < b => half_open(a, b),
            Coding::Log(a, b) if a < b => half_open(a.ln(), b.ln()),
            Coding::IntLog(a, b) if a < b => tpe::range((a as f64).ln(), ((b + 1) as f64).ln()).ok(),
            _ => None,
        }
    }

    /// A value as the estimator's number (NaN when unknown: the estimator leaves it out).
    fn encode(&self, v: Option<&Value>) -> f64 {
        let num = v.and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)));
        let x = match *self {
            Coding::Choice(values) => v.and_then(|v| values.iter().position(|c| c == v)).map(|i| i as f64),
            Coding::Uniform(..) => num,
            Coding::Log(..) => num.filter(|&x| x > 0.0).map(f64::ln),
            Coding::IntLog(..) => num.filter(|&x| x > 0.0).map(|x| (x + 0.5).ln()),
        };
        match (x, self.range()) {
            (Some(x), Some(r)) if r.contains(x) => x,
            _ => f64::NAN,
        }
    }

    /// The estimator's number as a value, in full precision like the random draws.
    fn decode(&self, x: f64) -> Value {
        match *self {
            Coding::Choice(values) => values[(x.max(0.0) as usize).min(values.len() - 1)].clone(),
            Coding::Uniform(a, b) => Value::Float(x.clamp(a, b)),
            Coding::Log(a, b) => Value::Float(x.exp().clamp(a, b)),
            Coding::IntLog(a, b) => Value::Integer((x.exp().floor() as i64).clamp(a, b)),
        }
    }
}


#[cfg(test)]
fn save_params(path: &Path, params: &[(String, Value)]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    let table: toml::Table = params.iter().cloned().collect();
    let text = format!("# This trial's values of the swept fields, as TPE suggested them.\n{}", toml::to_string(&table).unwrap_or_default());
    crate::fsutil::atomic_write(path, text.as_bytes()).map_err(|e| Error::io("cannot write", path, e))
}

/// A saved suggestion, in the study's field order; refused when it does not fit the study.
pub fn load_params(path: &Path, study: &Study) -> Result<Vec<(String, Value)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    let bad = |why: &str| Error::data(path, format!("{why}; delete the trial's folder to suggest it again"));
    let table: toml::Table = toml::from_str(&text).map_err(|e| bad("not a TOML table of the swept fields").caused_by(e).paraphrased())?;
    study
        .space
        .iter()
        .map(|p| match table.get(&p.name) {
            Some(v) => Ok((p.name.clone(), v.clone())),
            None => Err(bad(&format!("has no value for the swept field `{}`", p.name))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::space::StudyOverrides;

    fn study(text: &str) -> Study {
        Study::parse(text, "s.toml", StudyOverrides::default()).unwrap()
    }

    const SPACE: &str = "method = \"tpe\"\ntrials = 60\nseed = 1\n[tpe]\nstartup = 10\n[space]\nlr = { log_uniform = [0.001, 1.0] }\nwidth = { int_log_uniform = [16, 1024] }\ndropout = { uniform = [0.0, 0.5] }\nactivation = [\"relu\", \"tanh\", \"sigmoid\"]\n";

    /// A made-up response: best near lr = 0.1, width 512, dropout 0.2, tanh.
    fn score(params: &[(String, Value)]) -> f64 {
        let num = |n: &str| value_of(params, n).and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64))).unwrap();
        let act = if value_of(params, "activation").and_then(Value::as_str) == Some("tanh") { 0.0 } else { 0.05 };
        0.9 - 0.05 * (num("lr").log10() + 1.0).powi(2) - 0.02 * (num("width").log2() - 9.0).abs() - 0.1 * (num("dropout") - 0.2).abs() - act
    }

    /// Run `n` trials one at a time against [`score`].
    fn run(s: &Study, n: usize) -> Vec<(Vec<(String, Value)>, f64)> {
        let mut done: Vec<(Vec<(String, Value)>, f64)> = Vec::new();
        for i in 0..n {
            let finished: Vec<(&[(String, Value)], f64)> = done.iter().map(|(p, a)| (p.as_slice(), *a)).collect();
            let p = suggest(s, i, &finished, &[]).unwrap();
            let a = score(&p);
            done.push((p, a));
        }
        done
    }

    #[test]
    fn the_startup_trials_are_the_random_draws_and_suggestions_stay_in_the_space() {
        let s = study(SPACE);
        let random = Study { method: crate::sweep::Method::Random, ..s.clone() }.trials().unwrap();
        let done = run(&s, 60);
        for (i, (p, _)) in done.iter().enumerate().take(10) {
            assert_eq!(*p, random[i].params, "trial {i}");
        }
        for (p, _) in &done {
            let t = s.trial(0, p.clone()).unwrap().config;
            assert!((0.001..=1.0).contains(&t.lr) && (16..=1024).contains(&t.hidden[0]) && (0.0..=0.5).contains(&t.dropout), "{t:?}");
        }
        // Suggestions keep their full precision (only their text is rounded).
        let round3 = crate::sweep::trials::round3;
        assert!(done[10..].iter().any(|(p, _)| value_of(p, "lr").and_then(Value::as_float).is_some_and(|x| round3(x) != x)), "suggested rates are rounded");
        // The same history gives the same suggestion.
        assert_eq!(run(&s, 20), done[..20]);
    }

    #[test]
    fn tpe_finds_better_trials_than_random_draws() {
        // Over several seeds, the best of trials 20..60 beats random search's best of the same
        // trials more often than not, and on average.
        let (mut wins, mut gain) = (0, 0.0);
        for seed in 0..6 {
            let s = study(&SPACE.replace("seed = 1", &format!("seed = {seed}")));
            let tpe = run(&s, 60);
            let random = Study { method: crate::sweep::Method::Random, ..s.clone() }.trials().unwrap();
            let best_tpe = tpe[20..].iter().map(|t| t.1).fold(f64::MIN, f64::max);
            let best_random = random[20..].iter().map(|t| score(&t.params)).fold(f64::MIN, f64::max);
            wins += usize::from(best_tpe > best_random);
            gain += best_tpe - best_random;
        }
        assert!(wins >= 4 && gain > 0.0, "tpe won {wins} of 6, average gain {}", gain / 6.0);
    }

    #[test]
    fn pending_trials_push_the_next_suggestion_elsewhere() {
        let s = study("method = \"tpe\"\ntrials = 30\n[tpe]\nstartup = 2\n[space]\nactivation = [\"relu\", \"tanh\", \"sigmoid\"]\n");
        let p = |a: &str| vec![("activation".to_string(), Value::String(a.into()))];
        let (relu, tanh) = (p("relu"), p("tanh"));
        let finished: Vec<(&[(String, Value)], f64)> = vec![(&relu, 0.9), (&tanh, 0.5), (&tanh, 0.5), (&tanh, 0.4)];
        let picks = |pending: &[&[(String, Value)]]| (10..40).filter(|&i| suggest(&s, i, &finished, pending).unwrap() == relu).count();
        let alone = picks(&[]);
        let many: Vec<&[(String, Value)]> = vec![&relu; 6];
        let with_pending = picks(&many);
        assert!(alone > 20, "the best value is picked mostly: {alone} of 30");
        assert!(with_pending < alone, "relu in flight many times makes it rarer: {with_pending} vs {alone}");
    }

    #[test]
    fn a_single_value_and_saved_suggestions_round_trip() {
        let s = study("method = \"tpe\"\ntrials = 3\n[tpe]\nstartup = 0\n[space]\nwidth = [64]\nlr = { log_uniform = [0.1, 0.1] }\n");
        let p = suggest(&s, 1, &[(&[("lr".into(), Value::Float(0.1)), ("width".into(), Value::Integer(64))], 0.5)], &[]).unwrap();
        assert_eq!(p, vec![("lr".to_string(), Value::Float(0.1)), ("width".to_string(), Value::Integer(64))]);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t/params.toml");
        save_params(&f, &p).unwrap();
        assert_eq!(load_params(&f, &s).unwrap(), p);
        // Full-precision values come back bit for bit.
        for x in [0.021_893_417_234_567_89, 0.1 + 0.2, 0.999_999_999_999_999_9, 1e-7 / 3.0, std::f64::consts::PI] {
            let q = vec![("lr".to_string(), Value::Float(x)), ("width".to_string(), Value::Integer(64))];
            save_params(&f, &q).unwrap();
            assert_eq!(load_params(&f, &s).unwrap(), q, "{x:e}");
        }
        std::fs::write(&f, "width = 64\n").unwrap();
        let e = load_params(&f, &s).unwrap_err().to_string();
        assert!(e.contains("params.toml") && e.contains("`lr`") && !e.contains('\n'), "{e}");
    }
}
