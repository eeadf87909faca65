//! The leaderboard: a row per trial ranked by validation accuracy, written as
//! `leaderboard.csv`, shown as a table, and the winner's recipe written as `best.toml`.

use std::cmp::Ordering;
use std::path::Path;

use std::collections::BTreeSet;

use super::halving;
use super::objectives::{self, Objective};
use super::space::{Method, Study};
use super::trials::{Trial, value_cell, value_text};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::run::metrics::EpochRow;

/// The columns after `rank,trial,<swept fields>`.
pub const FIGURE_COLUMNS: &str = "epochs,val_loss,val_acc,train_loss,train_acc,seconds,status";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Done,
    /// The loss blew up; the rows are those before it did.
    Diverged,
    /// Stopped by the study's pruner; the rows are its epochs.
    Pruned,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Diverged => "diverged",
            Status::Pruned => "pruned",
        }
    }

    /// Rank order: finished, then pruned, then diverged.
    fn order(self) -> u8 {
        match self {
            Status::Done => 0,
            Status::Pruned => 1,
            Status::Diverged => 2,
        }
    }
}

/// A trial and what its folder holds.
#[derive(Debug, Clone)]
pub struct Entry {
    pub trial: Trial,
    /// The trial's `metrics.csv` (its `test_*` columns are the validation split).
    pub rows: Vec<EpochRow>,
    pub status: Status,
}

impl Entry {
    pub fn last(&self) -> Option<&EpochRow> {
        self.rows.last()
    }

    /// Epochs trained.
    pub fn epochs(&self) -> usize {
        self.last().map_or(0, |r| r.epoch)
    }

    /// Validation accuracy of the last epoch; NaN without one or after divergence.
    pub fn val_acc(&self) -> f64 {
        match (self.status, self.last()) {
            (Status::Done | Status::Pruned, Some(r)) => r.test_acc,
            _ => f64::NAN,
        }
    }

    /// Validation accuracy after `epoch` (NaN if the trial never finished that epoch).
    pub fn val_acc_at(&self, epoch: usize) -> f64 {
        self.rows.iter().find(|r| r.epoch == epoch).map_or(f64::NAN, |r| r.test_acc)
    }

    /// Training seconds over all of the trial's epochs, whatever session trained them.
    pub fn seconds(&self) -> f64 {
        // From +0.0: `sum` of no rows gives -0.0, shown as "-0.0 s" for a trial that diverged at once.
        self.rows.iter().map(|r| r.seconds).fold(0.0, |a, b| a + b)
    }

    /// The recipe that reproduces the trial as trained (its epochs included).
    pub fn recipe(&self) -> TrainConfig {
        TrainConfig { epochs: self.epochs().max(1), ..self.trial.config.clone() }
    }
}

/// Best first: finished before diverged, (halving) further rungs first, then higher validation
/// accuracy, then the lower trial index.
pub fn rank(entries: &mut [Entry], method: Method) {
    rank_by(entries, method, Objective::ValAcc)
}

/// [`rank`] on the study's first objective (a minimised one: lower first).
pub fn rank_by(entries: &mut [Entry], method: Method, first: Objective) {
    let score = |e: &Entry| match first {
        Objective::ValAcc => e.val_acc(),
        o if e.status == Status::Diverged => o.of(e, None) * f64::NAN,
        o => -o.of(e, None),
    };
    entries.sort_by(|a, b| {
        let rung = if method.has_rungs() { b.epochs().cmp(&a.epochs()) } else { Ordering::Equal };
        a.status
            .order()
            .cmp(&b.status.order())
            .then(rung)
            .then_with(|| halving::by_score((a.trial.index, score(a)), (b.trial.index, score(b))))
    });
}

/// The winner: the first entry if it finished.
pub fn best(entries: &[Entry]) -> Option<&Entry> {
    entries.first().filter(|e| e.status == Status::Done)
}

fn header(study: &Study) -> String {
    let names: Vec<&str> = study.space.iter().map(|p| p.name.as_str()).collect();
    let figures = FIGURE_COLUMNS.replacen("epochs", trained_column(study), 1);
    format!("rank,trial,{},{figures}", names.join(","))
}

/// The name of the column of epochs trained: `epochs`, or `trained` when the study sweeps
/// `epochs` itself (two columns of one name would read as one).
fn trained_column(study: &Study) -> &'static str {
    if study.space.iter().any(|p| p.name == "epochs") { "trained" } else { "epochs" }
}

/// `leaderboard.csv`, rows in rank order.
pub fn csv(study: &Study, entries: &[Entry]) -> String {
    csv_with(study, entries, &BTreeSet::new())
}

/// `leaderboard.csv`; a study of several objectives gains `params` (the model's parameters) and
/// `pareto` (`yes` for the trials on the front, `pareto`) columns.
pub fn csv_with(study: &Study, entries: &[Entry], pareto: &BTreeSet<usize>) -> String {
    let several = study.objectives.len() > 1;
    let mut text = header(study);
    if several {
        text.push_str(",params,pareto");
    }
    text.push('\n');
    for (i, e) in entries.iter().enumerate() {
        // In full: the CSV is data (the table and the descriptions round).
        let params: Vec<String> = e.trial.params.iter().map(|(_, v)| value_cell(v)).collect();
        let nan = EpochRow { epoch: 0, train_loss: f64::NAN, train_acc: f64::NAN, test_loss: f64::NAN, test_acc: f64::NAN, seconds: 0.0 };
        let r = e.last().copied().unwrap_or(nan);
        text.push_str(&format!(
            "{},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.3},{}\n",
            i + 1,
            e.trial.index,
            params.join(","),
            e.epochs(),
            r.test_loss,
            r.test_acc,
            r.train_loss,
            r.train_acc,
            e.seconds(),
            e.status.name()
        ));
        if several {
            text.pop();
            let on = if pareto.contains(&e.trial.index) { "yes" } else { "no" };
            text.push_str(&format!(",{},{on}\n", objectives::params(&e.trial.config)));
        }
    }
    text
}

pub fn write_csv(path: &Path, study: &Study, entries: &[Entry], pareto: &BTreeSet<usize>) -> Result<()> {
    atomic_write(path, csv_with(study, entries, pareto).as_bytes()).map_err(|e| Error::io("cannot write", path, e))
}

/// `best.toml`: the winner's recipe, to `train --config` it.
pub fn write_best(path: &Path, best: &Entry, val_size: usize) -> Result<()> {
    let header = format!(
        "Best recipe of the sweep: trial {} ({}), validation accuracy {:.4} on {val_size} held-out images.",
        best.trial.index,
        best.trial.describe(),
        best.val_acc()
    );
    best.recipe().save_with_header(path, &header)
}

/// The first `top` entries as an aligned text table (a line per row, the header first).
pub fn table(study: &Study, entries: &[Entry], top: usize) -> Vec<String> {
    let mut cells: Vec<Vec<String>> = vec![
        ["rank", "trial"]
            .into_iter()
            .map(String::from)
            .chain(study.space.iter().map(|p| p.name.clone()))
            .chain([trained_column(study), "val acc", "val loss", "train acc", "seconds", "status"].map(String::from))
            .collect(),
    ];
    for (i, e) in entries.iter().take(top).enumerate() {
        let (loss, train) = e.last().map_or((f64::NAN, f64::NAN), |r| (r.test_loss, r.train_acc));
        let mut row = vec![(i + 1).to_string(), format!("{:03}", e.trial.index)];
        row.extend(e.trial.params.iter().map(|(_, v)| value_text(v)));
        row.extend([
            e.epochs().to_string(),
            format!("{:.4}", e.val_acc()),
            format!("{loss:.4}"),
            format!("{train:.4}"),
            format!("{:.1}", e.seconds()),
            e.status.name().to_string(),
        ]);
        cells.push(row);
    }
    let widths: Vec<usize> = (0..cells[0].len()).map(|c| cells.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    cells
        .iter()
        .map(|r| {
            let padded: Vec<String> = r.iter().zip(&widths).map(|(s, &w)| format!("{s:>w$}")).collect();
            padded.join("  ").trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sweep::space::StudyOverrides;

    pub fn study(text: &str) -> Study {
        Study::parse(text, "s.toml", StudyOverrides::default()).unwrap()
    }

    /// Entries of `study` whose trial `i` reached `accs[i]` after `epochs[i]` epochs.
    pub fn entries(study: &Study, accs: &[f64], epochs: &[usize]) -> Vec<Entry> {
        study
            .trials()
            .unwrap()
            .into_iter()
            .zip(accs.iter().zip(epochs))
            .map(|(trial, (&acc, &n))| {
                let rows = (1..=n)
                    .map(|e| EpochRow { epoch: e, train_loss: 1.0 / e as f64, train_acc: acc, test_loss: 0.5, test_acc: acc - 0.1 / e as f64 + 0.1 / n as f64, seconds: 1.5 })
                    .collect();
                let status = if acc.is_nan() { Status::Diverged } else { Status::Done };
                Entry { trial, rows, status }
            })
            .collect()
    }

    /// A ranked 12-trial grid over three kinds of field (a number, a name, a layer list), one
    /// trial diverged: what the study's pictures draw in their tests.
    pub fn ranked_grid() -> (Study, Vec<Entry>) {
        let s = study("[space]\nlr = [0.01, 0.1, 1.0]\nactivation = [\"relu\", \"tanh\"]\nhidden = [[8], [4, 4]]\n");
        let accs = [0.6, 0.62, 0.7, 0.71, 0.8, 0.82, 0.5, 0.55, f64::NAN, 0.4, 0.45, 0.3];
        let mut e = entries(&s, &accs, &[3; 12]);
        rank(&mut e, Method::Grid);
        (s, e)
    }

    #[test]
    fn rank_puts_the_best_first_and_diverged_last() {
        let s = study("[space]\nlr = [0.1, 0.2, 0.3, 0.4]\n");
        let mut e = entries(&s, &[0.7, f64::NAN, 0.9, 0.7], &[2, 2, 2, 2]);
        rank(&mut e, Method::Grid);
        assert_eq!(e.iter().map(|e| e.trial.index).collect::<Vec<_>>(), [2, 0, 3, 1]);
        assert_eq!(best(&e).unwrap().trial.index, 2);
        assert_eq!(best(&e).unwrap().recipe().epochs, 2);
        assert!(best(&e[3..]).is_none());
    }

    #[test]
    fn halving_ranks_further_rungs_first() {
        let s = study("method = \"halving\"\ntrials = 3\n[space]\nlr = [0.1, 0.2, 0.3]\n");
        let mut e = entries(&s, &[0.95, 0.8, 0.85], &[1, 3, 3]);
        rank(&mut e, Method::Halving);
        assert_eq!(e.iter().map(|e| e.trial.index).collect::<Vec<_>>(), [2, 1, 0]);
        assert!((e[0].val_acc_at(1) - 0.85 + 0.1 - 0.1 / 3.0).abs() < 1e-12);
        assert!(e[0].val_acc_at(4).is_nan());
    }

    #[test]
    fn a_swept_epochs_field_gets_its_own_column_name() {
        let s = study("[space]\nlr = [0.1, 0.2]\nepochs = [1, 2]\n");
        let e = entries(&s, &[0.5, 0.6, 0.7, 0.8], &[1, 2, 1, 2]);
        let header = csv(&s, &e).lines().next().unwrap().to_string();
        assert_eq!(header, "rank,trial,epochs,lr,trained,val_loss,val_acc,train_loss,train_acc,seconds,status");
        let table = table(&s, &e, 1);
        assert_eq!(table[0].split_whitespace().filter(|c| *c == "epochs").count(), 1, "{table:?}");
        assert!(table[0].contains("trained"), "{table:?}");
    }

    #[test]
    fn a_trial_without_rows_took_zero_seconds_not_minus_zero() {
        let s = study("[space]\nlr = [0.1]\n");
        let mut e = entries(&s, &[0.5], &[1]);
        e[0].rows.clear();
        assert!(e[0].seconds().is_sign_positive());
        assert_eq!(format!("{:.1}", e[0].seconds()), "0.0");
    }

    #[test]
    fn the_csv_has_a_ranked_row_per_trial() {
        let s = study("[space]\nlr = [0.1, 0.2]\nhidden = [[8], [4, 4]]\n");
        let mut e = entries(&s, &[0.5, 0.6, 0.7, 0.8], &[1, 2, 3, 3]);
        rank(&mut e, Method::Grid);
        let text = csv(&s, &e);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "rank,trial,lr,hidden,epochs,val_loss,val_acc,train_loss,train_acc,seconds,status");
        assert_eq!(lines[1], "1,3,0.2,4-4,3,0.500000,0.800000,0.333333,0.800000,4.500,done");
        assert_eq!(lines.len(), 5);
        let table = table(&s, &e, 2);
        assert_eq!(table.len(), 3);
        assert!(table[0].starts_with("rank  trial   lr  hidden  epochs  val acc"), "{table:?}");
        assert!(table[1].starts_with("   1    003  0.2     4-4       3   0.8000"), "{table:?}");
    }

    #[test]
    fn the_table_rounds_a_real_value_and_the_csv_keeps_it_whole() {
        let s = study("[space]\nlr = [0.021893417]\n");
        let e = entries(&s, &[0.5], &[1]);
        assert_eq!(csv(&s, &e).lines().nth(1).unwrap().split(',').nth(2), Some("0.021893417"));
        assert!(table(&s, &e, 1)[1].starts_with("   1    000  0.0219"), "{:?}", table(&s, &e, 1));
        assert_eq!(e[0].trial.describe(), "lr=0.0219");
    }

    #[test]
    fn best_toml_is_a_recipe_with_the_trained_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let s = study("[fixed]\nepochs = 7\n[space]\nlr = [0.3]\n");
        let e = entries(&s, &[0.8], &[7]);
        let p = dir.path().join("best.toml");
        write_best(&p, &e[0], 100).unwrap();
        let cfg = TrainConfig::load(&p).unwrap();
        assert_eq!(cfg, TrainConfig { epochs: 7, lr: 0.3, ..TrainConfig::default() });
        assert!(std::fs::read_to_string(&p).unwrap().starts_with("# Best recipe of the sweep: trial 0 (lr=0.3)"));
    }
}
