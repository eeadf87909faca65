//! `method = "asha"`: asynchronous successive halving (Li et al., 2020); Ray Tune's default
//! scheduler is FIFO, and ASHA (`ASHAScheduler`) is the one its scheduler docs show first and
//! recommend over HyperBand. The rungs are successive halving's (`[halving]`: r_min epochs,
//! then eta times more, up to r_max). A free worker never waits for a rung to fill: it promotes
//! a trial that is in the best 1/eta of those that reached its rung so far (the highest rung
//! first), else starts the next draw at the first rung. A promoted trial continues from its own
//! checkpoint. Once nothing else is left, the best of a rung goes on even when the rung has
//! fewer than eta trials, so the best draw reaches r_max as in synchronous halving.
//!
//! The state is the trial folders: a resumed search reads which rungs each trial reached and
//! continues the trials caught between two rungs first. With one worker the decisions depend on
//! the results only, so a resumed search makes the same ones as an uninterrupted one; with
//! several they also depend on which trial ends first.

use std::collections::VecDeque;

use super::halving::{self, by_score};
use super::leaderboard::{Entry, Status};
use super::runner::{DIVERGED_FILE, Next, Scheduler, Task};
use super::space::Halving;
use super::trials::Trial;
use super::SweepDir;
use super::journal::{Replay, State};
use crate::error::Result;
use crate::run::metrics::EpochRow;
use crate::run::{METRICS_FILE, metrics};

/// A trial's system attribute in the journal: the epochs its job trains to.
pub const TARGET: &str = "d2l:target";

pub struct AshaSearch {
    trials: Vec<Trial>,
    rungs: Vec<usize>,
    eta: usize,
    /// Per trial: the rung it trains (or last trained) towards; None before it starts.
    target: Vec<Option<usize>>,
    /// Per rung: the trials that reached it and their validation accuracy there (NaN: diverged).
    reached: Vec<Vec<(usize, f64)>>,
    /// Per trial: the rungs recorded in `reached`; finished for good (top rung or diverged).
    recorded: Vec<usize>,
    over: Vec<bool>,
    in_flight: Vec<bool>,
    /// Draws not started yet, in index order.
    fresh: VecDeque<usize>,
    /// Trials caught between two rungs by an interruption: continued first.
    resume: VecDeque<Task>,
    /// What the folders held when the search started.
    found: Vec<Entry>,
}

impl AshaSearch {
    /// The search over `trials`, continued from what `sweep`'s trial folders hold.
    pub fn new(trials: Vec<Trial>, h: &Halving, sweep: &SweepDir) -> Result<Self> {
        let mut s = Self::blank(trials, h);
        for i in 0..s.trials.len() {
            let run = sweep.trial(i);
            if !run.holds_run() {
                s.fresh.push_back(i);
                continue;
            }
            let rows = metrics::read(&run.file(METRICS_FILE))?;
            let status = if run.file(DIVERGED_FILE).exists() { Status::Diverged } else { Status::Done };
            s.restore(Entry { trial: s.trials[i].clone(), rows, status });
        }
        Ok(s)
    }

    /// The search as a study's journal holds it (`trials`: the journal's, by number): WAITING
    /// trials are fresh draws; a trial another worker trains (`busy`) is in flight towards the
    /// rung its `d2l:target` names; the others are restored as from their folders, their
    /// epochs' validation accuracy being the journal's intermediate values. A trial the journal
    /// finished (COMPLETE, PRUNED, FAIL) never goes on.
    pub fn from_journal(trials: Vec<Trial>, h: &Halving, r: &Replay, busy: &dyn Fn(usize) -> bool) -> Self {
        let mut s = Self::blank(trials, h);
        let (last, n) = (s.rungs.len() - 1, s.trials.len());
        for jt in r.trials.iter().filter(|t| t.number < n) {
            let i = jt.number;
            if jt.system_attrs.contains_key(super::work::REFUSED) {
                s.over[i] = true;
                continue;
            }
            if jt.state == State::Waiting {
                s.fresh.push_back(i);
                continue;
            }
            let rows = jt
                .intermediate
                .iter()
                .map(|(&e, &v)| EpochRow { epoch: e.max(0) as usize, train_loss: f64::NAN, train_acc: f64::NAN, test_loss: f64::NAN, test_acc: v, seconds: 0.0 })
                .collect();
            let status = if jt.state == State::Fail { Status::Diverged } else { Status::Done };
            let e = Entry { trial: s.trials[i].clone(), rows, status };
            if jt.state == State::Running && busy(i) {
                let aim = jt.system_attrs.get(TARGET).and_then(serde_json::Value::as_u64).map_or(s.rungs[0], |x| x as usize);
                let k = s.rungs.iter().position(|&r| r >= aim).unwrap_or(last);
                if k > 0 {
                    s.target[i] = Some(k - 1);
                    s.record(&e);
                }
                s.target[i] = Some(k);
                s.in_flight[i] = true;
                continue;
            }
            s.restore(e);
            if jt.state.is_finished() {
                s.over[i] = true;
            }
        }
        s
    }

    fn blank(trials: Vec<Trial>, h: &Halving) -> Self {
        let rungs = halving::rungs(h);
        let n = trials.len();
        let mut s = AshaSearch {
            rungs,
            eta: h.eta.max(2),
            target: vec![None; n],
            reached: Vec::new(),
            recorded: vec![0; n],
            over: vec![false; n],
            in_flight: vec![false; n],
            fresh: VecDeque::new(),
            resume: VecDeque::new(),
            found: Vec::new(),
            trials,
        };
        s.reached = vec![Vec::new(); s.rungs.len()];
        s
    }

    /// Take in a trial found in its folder: the rungs it reached, and whether it was caught
    /// between two (then it is continued first).
    fn restore(&mut self, e: Entry) {
        self.found.push(e.clone());
        let (i, done, last) = (e.trial.index, e.epochs(), self.rungs.len() - 1);
        let at_rung = self.rungs.iter().position(|&r| r == done);
        if e.status == Status::Diverged {
            // The diverging epoch writes no row, so metrics.csv ends at `done` and the trial
            // diverged in epoch done + 1. Only the job towards the first rung above `done`
            // trains that epoch: that job's target is where the live search recorded the
            // divergence (rungs below it with their accuracy), so nothing needs saving.
            self.target[i] = Some(self.rungs.iter().position(|&r| r > done).unwrap_or(last));
            self.record(&e);
            return;
        }
        if at_rung.is_some() || done >= self.rungs[last] {
            self.target[i] = Some(at_rung.unwrap_or(last));
            self.record(&e);
            return;
        }
        let k = self.rungs.iter().position(|&r| r > done).unwrap_or(last);
        if k > 0 {
            self.target[i] = Some(k - 1);
            self.record(&e);
        }
        self.target[i] = Some(k);
        self.in_flight[i] = true;
        let from = if k == 0 { 0 } else { self.rungs[k - 1] };
        self.resume.push_back(Task { trial: e.trial.clone(), epochs: self.rungs[k], from, hold: None });
    }

    /// A job of trial `e` ended: the rungs up to its target are reached (its last one with NaN
    /// if it diverged, which ends it).
    fn record(&mut self, e: &Entry) {
        let i = e.trial.index;
        let Some(k) = self.target[i] else { return };
        let diverged = e.status == Status::Diverged;
        for j in self.recorded[i]..=k {
            let acc = if diverged && j == k { f64::NAN } else { e.val_acc_at(self.rungs[j]) };
            self.reached[j].push((i, acc));
        }
        self.recorded[i] = self.recorded[i].max(k + 1);
        self.over[i] = diverged || k + 1 == self.rungs.len();
    }

    /// A trial of rung `k` that may go on to rung `k + 1`, if any: in the best `quota` of
    /// those that reached rung `k`, not promoted yet, not diverged.
    fn promotable(&self, k: usize, drained: bool) -> Option<usize> {
        let mut at = self.reached[k].clone();
        let quota = if drained { halving::promoted(at.len(), self.eta) } else { at.len() / self.eta };
        at.sort_by(|a, b| by_score(*a, *b));
        at.into_iter()
            .take(quota)
            .find(|&(i, acc)| acc.is_finite() && !self.over[i] && !self.in_flight[i] && self.target[i] == Some(k))
            .map(|(i, _)| i)
    }

    fn start(&mut self, i: usize, k: usize) -> Next {
        self.target[i] = Some(k);
        self.in_flight[i] = true;
        let from = if k == 0 { 0 } else { self.rungs[k - 1] };
        Next::Job(Task { trial: self.trials[i].clone(), epochs: self.rungs[k], from, hold: None })
    }
}

impl Scheduler for AshaSearch {
    fn next(&mut self) -> Result<Next> {
        if let Some(t) = self.resume.pop_front() {
            return Ok(Next::Job(t));
        }
        let drained = self.fresh.is_empty() && !self.in_flight.iter().any(|&f| f);
        for k in (0..self.rungs.len() - 1).rev() {
            if let Some(i) = self.promotable(k, drained) {
                return Ok(self.start(i, k + 1));
            }
        }
        if let Some(i) = self.fresh.pop_front() {
            return Ok(self.start(i, 0));
        }
        Ok(if drained { Next::Done } else { Next::Wait })
    }

    fn finished(&mut self, entry: &Entry) {
        let i = entry.trial.index;
        if i < self.in_flight.len() {
            self.in_flight[i] = false;
            self.record(entry);
        }
    }

    fn found(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::metrics::EpochRow;
    use crate::sweep::space::{Study, StudyOverrides};

    fn search(n: usize, dir: &std::path::Path) -> AshaSearch {
        let s = Study::parse(&format!("method = \"asha\"\ntrials = {n}\n[halving]\nr_min = 1\nr_max = 9\neta = 3\n[space]\nlr = {{ log_uniform = [0.01, 1.0] }}\n"), "s.toml", StudyOverrides::default()).unwrap();
        AshaSearch::new(s.trials().unwrap(), &s.halving, &SweepDir::new(dir)).unwrap()
    }

    /// Trial i's accuracy: `ACC[i]` plus a little per epoch.
    const ACC: [f64; 9] = [0.5, 0.9, 0.6, 0.8, 0.55, 0.7, 0.65, 0.85, 0.58];

    fn entry(t: &Task, diverge: bool) -> Entry {
        let rows = (1..=t.epochs)
            .map(|e| {
                let acc = ACC[t.trial.index] + e as f64 * 0.001;
                EpochRow { epoch: e, train_loss: 0.5, train_acc: acc, test_loss: 0.5, test_acc: acc, seconds: 0.1 }
            })
            .collect();
        Entry { trial: t.trial.clone(), rows, status: if diverge { Status::Diverged } else { Status::Done } }
    }

    /// One worker to the end: the jobs as (trial, epochs).
    fn drive(s: &mut AshaSearch, diverging: &[usize]) -> Vec<(usize, usize)> {
        let mut jobs = Vec::new();
        while let Next::Job(t) = s.next().unwrap() {
            jobs.push((t.trial.index, t.epochs));
            s.finished(&entry(&t, diverging.contains(&t.trial.index)));
        }
        jobs
    }

    #[test]
    fn a_trial_goes_on_as_soon_as_it_is_in_the_best_third_of_its_rung() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = search(9, dir.path());
        let jobs = drive(&mut s, &[]);
        // Trial 1 is the best third of the first three and goes on at once; trial 3 once six
        // reached the first rung (the best two of six: 1 and 3); 7 when eight had; then trial
        // 1 is the best third of the three at 3 epochs, and goes on to 9.
        let expected = [(0, 1), (1, 1), (2, 1), (1, 3), (3, 1), (4, 1), (5, 1), (3, 3), (6, 1), (7, 1), (7, 3), (1, 9), (8, 1)];
        assert_eq!(jobs, expected);
    }

    #[test]
    fn a_free_worker_waits_only_while_a_job_is_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = search(1, dir.path());
        let Next::Job(t) = s.next().unwrap() else { panic!("the one draw starts") };
        assert!(matches!(s.next().unwrap(), Next::Wait));
        s.finished(&entry(&t, false));
        // The only trial of its rung goes on once nothing else is left, up to r_max.
        let Next::Job(t) = s.next().unwrap() else { panic!("promoted") };
        assert_eq!(t.epochs, 3);
        s.finished(&entry(&t, false));
        assert!(matches!(s.next().unwrap(), Next::Job(t) if t.epochs == 9));
    }

    /// What a real job of `t` leaves: rows up to its epochs, or, when it diverges in its first
    /// epoch, the rows before that epoch only (a diverging epoch writes none).
    fn ended(t: &Task, diverge: bool) -> Entry {
        let mut e = entry(t, diverge);
        if diverge {
            e.rows.retain(|r| r.epoch <= t.from);
        }
        e
    }

    /// Write `e` into its trial folder as a job would leave it.
    fn save(dir: &std::path::Path, e: &Entry) {
        let run = SweepDir::new(dir).trial(e.trial.index);
        std::fs::create_dir_all(run.path()).unwrap();
        e.trial.config.save(&run.file(crate::run::CONFIG_FILE)).unwrap();
        metrics::write(&run.file(METRICS_FILE), &e.rows).unwrap();
        if e.status == Status::Diverged {
            std::fs::write(run.file(DIVERGED_FILE), "training diverged\n").unwrap();
        }
    }

    /// Per rung, the trials that reached it and their accuracy's bits (NaN included), by trial.
    fn reached(s: &AshaSearch) -> Vec<Vec<(usize, u64)>> {
        s.reached
            .iter()
            .map(|at| {
                let mut at: Vec<(usize, u64)> = at.iter().map(|&(i, acc)| (i, acc.to_bits())).collect();
                at.sort();
                at
            })
            .collect()
    }

    #[test]
    fn a_trial_that_diverges_after_a_promotion_is_restored_at_the_rung_it_was_promoted_to() {
        // Trial 1 is the first promoted (1 -> 3 epochs) and diverges in epoch 2, the first of
        // its new rung: it reached rung 0 with its accuracy and rung 1 with NaN.
        let dir = tempfile::tempdir().unwrap();
        let mut live = search(9, dir.path());
        let mut jobs = Vec::new();
        while let Next::Job(t) = live.next().unwrap() {
            let e = ended(&t, t.trial.index == 1 && t.from > 0);
            save(dir.path(), &e);
            live.finished(&e);
            jobs.push((t.trial.index, t.epochs));
            if jobs.len() == 5 {
                // Interrupted here, after the divergence: a search resumed from the folders
                // holds the same rungs and goes on with the same jobs.
                let mut resumed = search(9, dir.path());
                assert_eq!(reached(&resumed), reached(&live));
                let mut rest = live_rest(&mut live, dir.path());
                assert_eq!(live_rest(&mut resumed, dir.path()), rest);
                jobs.append(&mut rest);
                break;
            }
        }
        assert!(jobs.contains(&(1, 3)) && !jobs.contains(&(1, 9)), "{jobs:?}");
        let live_rungs = reached(&live);
        assert!(live_rungs[1].contains(&(1, f64::NAN.to_bits())), "{live_rungs:?}");
        assert!(live_rungs[0].iter().any(|&(i, acc)| i == 1 && f64::from_bits(acc).is_finite()), "{live_rungs:?}");
        assert_eq!(reached(&search(9, dir.path())), live_rungs);
    }

    /// Drive `s` to the end with one worker, trial 1 diverging whenever it is promoted, saving
    /// each job's folder; the jobs as (trial, epochs).
    fn live_rest(s: &mut AshaSearch, dir: &std::path::Path) -> Vec<(usize, usize)> {
        let mut jobs = Vec::new();
        while let Next::Job(t) = s.next().unwrap() {
            let e = ended(&t, t.trial.index == 1 && t.from > 0);
            save(dir, &e);
            s.finished(&e);
            jobs.push((t.trial.index, t.epochs));
        }
        jobs
    }

    #[test]
    fn a_diverged_trial_never_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = search(3, dir.path());
        let jobs = drive(&mut s, &[2]);
        assert!(!jobs.iter().any(|&(i, e)| i == 2 && e > 1), "{jobs:?}");
        assert!(jobs.contains(&(1, 9)), "{jobs:?}");
    }
}
