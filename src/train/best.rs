//! A run with a validation split (`val_size`): its model is the epoch with the best validation
//! accuracy (ties go to the earlier epoch, as the smaller number of epochs that reached it), and
//! with `patience` it stops once that many epochs in a row brought no better one. Both are
//! decided from the rows of `metrics.csv`, earlier sessions included, so a resumed run stops
//! and picks exactly as an uninterrupted one.

use std::sync::{Arc, Mutex};

use burn::train::EarlyStoppingStrategy;
use burn::train::metric::store::EventStoreClient;

use super::recorder::Recorder;
use crate::run::metrics::EpochRow;

/// The epoch whose model the run keeps, and where patience ended the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    pub best_epoch: usize,
    /// The last epoch trained, when patience stopped the run after it.
    pub stopped_after: Option<usize>,
}

/// The row with the best validation accuracy (`test_acc` of a run scored on its validation
/// split); NaN is never best, ties go to the earlier epoch.
pub fn best_row(rows: &[EpochRow]) -> Option<&EpochRow> {
    rows.iter().filter(|r| !r.test_acc.is_nan()).fold(None, |best: Option<&EpochRow>, r| match best {
        Some(b) if b.test_acc >= r.test_acc => Some(b),
        _ => Some(r),
    })
}

/// Whether `patience` epochs have passed since the best one: then the run stops.
pub fn patience_ran_out(rows: &[EpochRow], patience: usize) -> bool {
    match (best_row(rows), rows.last()) {
        (Some(best), Some(last)) => last.epoch - best.epoch >= patience,
        _ => false,
    }
}

/// What `rows` select under `patience` (`None`: every epoch trains).
pub fn select(rows: &[EpochRow], patience: Option<usize>) -> Option<Selection> {
    let best = best_row(rows)?;
    let stopped = patience.is_some_and(|p| patience_ran_out(rows, p));
    Some(Selection { best_epoch: best.epoch, stopped_after: stopped.then(|| rows.last().map(|r| r.epoch)).flatten() })
}

/// Burn's early-stopping hook, answered from the recorder's rows. The Learner asks it after
/// an epoch's row is recorded and its checkpoint is taken.
#[derive(Clone)]
pub struct Patience {
    pub recorder: Arc<Mutex<Recorder>>,
    pub patience: usize,
}

impl EarlyStoppingStrategy for Patience {
    fn should_stop(&mut self, _epoch: usize, _store: &EventStoreClient) -> bool {
        self.recorder.lock().is_ok_and(|r| patience_ran_out(r.rows(), self.patience))
    }
}

/// The best epoch so far, for the checkpoint retention to keep (`None` until an epoch ends).
pub fn best_so_far(recorder: &Arc<Mutex<Recorder>>) -> Option<usize> {
    recorder.lock().ok().and_then(|r| best_row(r.rows()).map(|b| b.epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(accs: &[f64]) -> Vec<EpochRow> {
        accs.iter()
            .enumerate()
            .map(|(i, &a)| EpochRow { epoch: i + 1, train_loss: 1.0, train_acc: 0.5, test_loss: 1.0, test_acc: a, seconds: 0.1 })
            .collect()
    }

    #[test]
    fn the_best_is_the_highest_accuracy_and_the_earlier_of_equals() {
        assert_eq!(best_row(&rows(&[0.5, 0.7, 0.6])).unwrap().epoch, 2);
        assert_eq!(best_row(&rows(&[0.5, 0.7, 0.7])).unwrap().epoch, 2);
        assert_eq!(best_row(&rows(&[f64::NAN, 0.1])).unwrap().epoch, 2);
        assert!(best_row(&rows(&[])).is_none());
    }

    #[test]
    fn patience_counts_epochs_since_the_best() {
        let r = rows(&[0.5, 0.7, 0.6, 0.7]);
        assert!(!patience_ran_out(&r, 3));
        assert!(patience_ran_out(&r, 2));
        assert_eq!(select(&r, Some(2)), Some(Selection { best_epoch: 2, stopped_after: Some(4) }));
        assert_eq!(select(&r, Some(3)), Some(Selection { best_epoch: 2, stopped_after: None }));
        assert_eq!(select(&r, None), Some(Selection { best_epoch: 2, stopped_after: None }));
        // An improvement on the last epoch: never a stop.
        assert!(!patience_ran_out(&rows(&[0.5, 0.6]), 1));
        assert!(patience_ran_out(&rows(&[0.5, 0.5]), 1));
    }
}
