//! The trials of a study: the grid's points in order, or seeded random draws, each turned into
//! a full recipe. Trial `i` depends only on the study (and, for draws, on the seed and `i`), so
//! an interrupted, resumed or sharded sweep sees the same trials.

use rand::{Rng, SeedableRng};
use toml::Value;

use super::recipe::recipe;
use super::space::{Domain, Method, Param, Study};
use crate::config::TrainConfig;
use crate::error::{Error, Result};

/// One configuration of the study.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Position in the study (0-based): the folder `trials/NNN`.
    pub index: usize,
    /// The swept fields' values, in the study's order.
    pub params: Vec<(String, Value)>,
    /// The full recipe.
    pub config: TrainConfig,
}

impl Trial {
    /// `lr=0.1 width=64`.
    pub fn describe(&self) -> String {
        describe(&self.params)
    }
}

impl Study {
    /// Every trial of the study known before any result, in index order: all of them, but for
    /// tpe only its random `startup` draws (the rest follow from results; see [`super::tpe`]).
    pub fn trials(&self) -> Result<Vec<Trial>> {
        let draws = |n: usize| (0..n).map(|i| draw(&self.space, self.seed, i)).collect();
        let n = self.trials.unwrap_or(0);
        let points: Vec<Vec<(String, Value)>> = match self.method {
            Method::Grid => grid(&self.space),
            Method::Random | Method::Halving | Method::Asha => draws(n),
            Method::Tpe => draws(n.min(self.tpe.startup)),
        };
        points.into_iter().enumerate().map(|(index, params)| self.trial(index, params)).collect()
    }

    /// Trial `index` with the swept values `params`.
    pub fn trial(&self, index: usize, params: Vec<(String, Value)>) -> Result<Trial> {
        let config = recipe(&self.fixed, &params).map_err(|m| Error::config(format!("sweep.toml: trial {index} ({}): {m}", describe(&params))))?;
        Ok(Trial { index, params, config })
    }
}

fn describe(params: &[(String, Value)]) -> String {
    let parts: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", value_text(v))).collect();
    parts.join(" ")
}

/// A value as the leaderboard's table and the trial descriptions show it: `0.1`, `relu`,
/// `128-64` for a list of layers; a real number in three significant digits (`0.0219`; the
/// trial trains with the full value, which its `config.toml` holds).
pub fn value_text(v: &Value) -> String {
    text(v, true)
}

/// A value as `leaderboard.csv` holds it: like [`value_text`], but a real number in full (the
/// shortest text that reads back as the value the trial trained with).
pub fn value_cell(v: &Value) -> String {
    text(v, false)
}

fn text(v: &Value, round: bool) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Float(x) if round => Value::Float(round3(*x)).to_string(),
        Value::Array(a) => a.iter().map(|v| text(v, round)).collect::<Vec<_>>().join("-"),
        other => other.to_string(),
    }
}

/// The grid's points, the first field varying slowest.
fn grid(space: &[Param]) -> Vec<Vec<(String, Value)>> {
    space.iter().fold(vec![Vec::new()], |points, p| {
        let Domain::Values(values) = &p.domain else {
            return points;
        };
        points
            .iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut point = prefix.clone();
                    point.push((p.name.clone(), v.clone()));
                    point
                })
            })
            .collect()
    })
}

/// Draw trial `index`: its own generator, from the seed and the index only.
pub(crate) fn draw(space: &[Param], seed: u64, index: usize) -> Vec<(String, Value)> {
    let mixed = seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rng = rand::rngs::StdRng::seed_from_u64(mixed);
    space.iter().map(|p| (p.name.clone(), draw_one(&p.domain, &mut rng))).collect()
}

fn draw_one(d: &Domain, rng: &mut impl Rng) -> Value {
    match *d {
        Domain::Values(ref v) => v[rng.random_range(0..v.len())].clone(),
        // Full precision: rounding here would leave a narrow range a handful of values.
        Domain::Uniform(a, b) => Value::Float(rng.random_range(a..=b).clamp(a, b)),
        Domain::LogUniform(a, b) => Value::Float(rng.random_range(a.ln()..=b.ln()).exp().clamp(a, b)),
        Domain::IntLogUniform(a, b) => {
            // Uniform in log space over [a, b + 1), floored: every integer gets its share.
            let x = rng.random_range((a as f64).ln()..((b + 1) as f64).ln()).exp().floor() as i64;
            Value::Integer(x.clamp(a, b))
        }
    }
}

/// Round to three significant digits, so drawn rates read as 0.0735, not 0.07348127 (for
/// display only: see [`value_text`]).
pub(crate) fn round3(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let e = 2 - x.abs().log10().floor() as i32;
    if e >= 0 {
        let m = 10f64.powi(e);
        (x * m).round() / m
    } else {
        let m = 10f64.powi(-e);
        (x / m).round() * m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::space::StudyOverrides;

    fn study(text: &str) -> Study {
        Study::parse(text, "s.toml", StudyOverrides::default()).unwrap()
    }

    #[test]
    fn a_grid_varies_the_first_field_slowest() {
        let s = study("[space]\nlr = [0.1, 0.2]\nactivation = [\"relu\", \"tanh\", \"sigmoid\"]\n");
        let t = s.trials().unwrap();
        let shown: Vec<String> = t.iter().map(Trial::describe).collect();
        assert_eq!(shown[..4], ["lr=0.1 activation=relu", "lr=0.1 activation=tanh", "lr=0.1 activation=sigmoid", "lr=0.2 activation=relu"]);
        assert_eq!(t.len(), 6);
        assert_eq!(t[4].config.lr, 0.2);
        assert_eq!(t[4].config.activation, crate::config::Activation::Tanh);
        assert_eq!(t.iter().map(|t| t.index).collect::<Vec<_>>(), (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn depth_and_width_build_the_hidden_layers() {
        let s = study("[fixed]\nhidden = [100]\n[space]\ndepth = [1, 3]\n");
        let hidden: Vec<Vec<usize>> = s.trials().unwrap().into_iter().map(|t| t.config.hidden).collect();
        assert_eq!(hidden, vec![vec![100], vec![100; 3]]);
        let s = study("[space]\nwidth = [16]\ndepth = [2]\n");
        assert_eq!(s.trials().unwrap()[0].config.hidden, vec![16, 16]);
        let s = study("[space]\nhidden = [[64], [32, 16]]\n");
        let t = s.trials().unwrap();
        assert_eq!(t[1].config.hidden, vec![32, 16]);
        assert_eq!(t[1].describe(), "hidden=32-16");
    }

    #[test]
    fn draws_depend_on_the_seed_and_index_only_and_stay_in_range() {
        let text = "method = \"random\"\ntrials = 40\nseed = 3\n[space]\nlr = { log_uniform = [0.01, 1.0] }\nwidth = { int_log_uniform = [16, 1024] }\ndropout = { uniform = [0.0, 0.5] }\nactivation = [\"relu\", \"tanh\"]\n";
        let all = study(text).trials().unwrap();
        let few = study(&text.replace("trials = 40", "trials = 5")).trials().unwrap();
        assert_eq!(all[..5], few[..]);
        assert_eq!(study(text).trials().unwrap(), all);
        assert_ne!(study(&text.replace("seed = 3", "seed = 4")).trials().unwrap(), all);
        for t in &all {
            let c = &t.config;
            assert!((0.01..=1.0).contains(&c.lr) && (16..=1024).contains(&c.hidden[0]) && (0.0..=0.5).contains(&c.dropout), "{c:?}");
        }
        // Drawn values keep their full precision; only their text is rounded.
        assert!(all.iter().any(|t| round3(t.config.lr) != t.config.lr), "no rate has more than three digits");
        for t in &all {
            assert_eq!(t.params[0].1, Value::Float(t.config.lr));
            assert_eq!(t.describe().split(' ').next().unwrap(), format!("lr={}", Value::Float(round3(t.config.lr))));
        }
        // Log-uniform: about as many rates below 0.1 as above.
        let low = all.iter().filter(|t| t.config.lr < 0.1).count();
        assert!((10..=30).contains(&low), "{low} of 40 below 0.1");
        assert!(all.iter().any(|t| t.config.activation == crate::config::Activation::Tanh));
    }

    #[test]
    fn rounding_keeps_three_significant_digits() {
        assert_eq!(round3(0.073_481_27), 0.0735);
        assert_eq!(round3(123_456.0), 123_000.0);
        assert_eq!(round3(0.0), 0.0);
        assert_eq!(round3(-1.23456), -1.23);
        assert_eq!(value_text(&Value::Float(0.0735)), "0.0735");
        assert_eq!(value_text(&Value::Float(0.021_893_417)), "0.0219");
        assert_eq!(value_text(&Value::Float(1.0)), "1.0");
        assert_eq!(value_cell(&Value::Float(0.021_893_417)), "0.021893417");
        assert_eq!(value_cell(&Value::Array(vec![Value::Integer(128), Value::Integer(64)])), "128-64");
    }

    #[test]
    fn a_narrow_range_gives_many_distinct_values() {
        let s = study("method = \"random\"\ntrials = 40\n[space]\nmomentum = { uniform = [0.99, 0.999] }\n");
        let values: Vec<f64> = s.trials().unwrap().iter().map(|t| t.config.momentum).collect();
        assert!(values.iter().all(|m| (0.99..=0.999).contains(m)), "{values:?}");
        let mut distinct = values.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        assert!(distinct.len() >= 30, "{} distinct values of 40: {distinct:?}", distinct.len());
    }

    #[test]
    fn a_drawn_value_survives_the_trial_config_file_exactly() {
        let s = study("method = \"random\"\ntrials = 40\nseed = 5\n[space]\nlr = { log_uniform = [0.001, 1.0] }\nmomentum = { uniform = [0.0, 0.99] }\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        for t in s.trials().unwrap() {
            t.config.save(&path).unwrap();
            assert_eq!(TrainConfig::load(&path).unwrap(), t.config);
        }
    }
}
