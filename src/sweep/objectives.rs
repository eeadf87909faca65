//! What a study weighs: `objectives = ["val_acc", "params"]`, each with its direction. The first
//! ranks the leaderboard; with several, the trials no other trial beats on every objective form
//! the Pareto front (the `pareto` column, `pareto.png`), the set Optuna's `study.best_trials`
//! returns from the journal.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::journal::Direction;
use super::leaderboard::Entry;
use crate::config::TrainConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// The last epoch's validation accuracy (maximised).
    ValAcc,
    /// The last epoch's validation loss (minimised).
    ValLoss,
    /// The model's parameter count (minimised).
    Params,
    /// Training seconds over all epochs (minimised).
    Seconds,
}

/// The names a study may list, in the order documented.
pub const NAMES: [&str; 4] = ["val_acc", "val_loss", "params", "seconds"];

impl Objective {
    pub fn parse(name: &str) -> Option<Objective> {
        Some(match name {
            "val_acc" => Objective::ValAcc,
            "val_loss" => Objective::ValLoss,
            "params" => Objective::Params,
            "seconds" => Objective::Seconds,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }

    pub fn direction(self) -> Direction {
        match self {
            Objective::ValAcc => Direction::Maximize,
            _ => Direction::Minimize,
        }
    }

    /// The trial's value of this objective (NaN when it has none). `val_acc` in full when the
    /// journal's last intermediate value is given (metrics.csv keeps 6 decimals).
    pub fn of(self, e: &Entry, val_acc: Option<f64>) -> f64 {
        let last = e.last();
        match self {
            Objective::ValAcc => val_acc.or(last.map(|r| r.test_acc)).unwrap_or(f64::NAN),
            Objective::ValLoss => last.map_or(f64::NAN, |r| r.test_loss),
            Objective::Params => params(&e.trial.config) as f64,
            Objective::Seconds => e.seconds(),
        }
    }
}

/// The objectives a study file lists: known names, none twice, at least one.
pub fn parse_list(names: &[String]) -> Result<Vec<Objective>, String> {
    let valid = || format!("valid names: {} (val_acc is maximised, the others minimised)", NAMES.join(", "));
    if names.is_empty() {
        return Err(format!("field `objectives` is empty; list at least one, e.g. objectives = [\"val_acc\", \"params\"]; {}", valid()));
    }
    let mut out: Vec<Objective> = Vec::new();
    for n in names {
        let Some(o) = Objective::parse(n) else {
            return Err(format!("field `objectives`: unknown objective `{n}`; {}", valid()));
        };
        if out.contains(&o) {
            return Err(format!("field `objectives` lists `{n}` twice; list each once ({})", valid()));
        }
        out.push(o);
    }
    Ok(out)
}

/// The model's parameters: weights and biases of every layer.
pub fn params(cfg: &TrainConfig) -> usize {
    let mut sizes = vec![crate::data::PIXELS];
    sizes.extend(&cfg.hidden);
    sizes.push(crate::data::NUM_CLASSES);
    sizes.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
}

/// The Pareto front of `points` (an id and its values, one per direction): those no other point
/// dominates (at least as good on every objective and better on one). A point with a NaN value
/// is never on it; equal points are both on it, as Optuna's `best_trials` has them.
pub fn front(points: &[(usize, Vec<f64>)], directions: &[Direction]) -> BTreeSet<usize> {
    // As minimisation: a maximised value counts negated.
    let cost = |v: &[f64]| -> Vec<f64> { v.iter().zip(directions).map(|(x, d)| if *d == Direction::Maximize { -x } else { *x }).collect() };
    let valid: Vec<(usize, Vec<f64>)> = points.iter().filter(|(_, v)| v.len() == directions.len() && v.iter().all(|x| !x.is_nan())).map(|(i, v)| (*i, cost(v))).collect();
    let dominates = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y);
    valid.iter().filter(|(_, v)| !valid.iter().any(|(_, w)| dominates(w, v))).map(|(i, _)| *i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_one_line_errors() {
        let list = |v: &[&str]| parse_list(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(list(&["val_acc", "params"]).unwrap(), [Objective::ValAcc, Objective::Params]);
        for (bad, says) in [(vec![], "is empty"), (vec!["accuracy"], "unknown objective `accuracy`"), (vec!["params", "params"], "lists `params` twice")] {
            let e = list(&bad).unwrap_err();
            assert!(e.contains(says) && e.contains("val_acc, val_loss, params, seconds") && !e.contains('\n'), "{e}");
        }
        assert_eq!(Objective::Params.name(), "params");
        assert_eq!(Objective::ValAcc.direction(), Direction::Maximize);
    }

    #[test]
    fn the_front_keeps_what_nothing_beats() {
        let (max, min) = (Direction::Maximize, Direction::Minimize);
        // (accuracy, parameters): 1 beats 0 on both; 2 and 3 trade off; 4 ties 2; 5 has a NaN.
        let points = vec![(0, vec![0.80, 2000.0]), (1, vec![0.85, 1000.0]), (2, vec![0.90, 5000.0]), (3, vec![0.70, 500.0]), (4, vec![0.90, 5000.0]), (5, vec![f64::NAN, 10.0])];
        assert_eq!(front(&points, &[max, min]), BTreeSet::from([1, 2, 3, 4]));
        let first: Vec<(usize, Vec<f64>)> = points.iter().map(|(i, v)| (*i, vec![v[0]])).collect();
        assert_eq!(front(&first, &[max]), BTreeSet::from([2, 4]));
        assert_eq!(params(&TrainConfig { hidden: vec![256], ..TrainConfig::default() }), 784 * 256 + 256 + 256 * 10 + 10);
    }
}
