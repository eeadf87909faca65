//! The loader's batches in host memory, built where they cost the training step least: on the
//! fast path by the kernel team, the first of an epoch now and each later one posted for the
//! helpers to build between the products of the step before; elsewhere (a GPU backend, ndarray,
//! `--reference-ops`) one batch ahead on a thread of their own. Either way the rows are the
//! same bits. Host memory only: tensors are made on the caller's thread, so a GPU backend sees
//! one stream.

use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use burn::tensor::Device;

use super::batches::{Prefilled, RowWriter, fill_rows};

/// What writes the rows of items `range` (positions in the epoch's order) into a writer.
pub type Fill = dyn Fn(Range<usize>, &mut RowWriter) + Send + Sync;

/// Batches built ahead of the one being computed on a thread of their own: one keeps the thread
/// a step ahead without holding much memory.
const AHEAD_ON_THREAD: usize = 1;

/// Rows per block of a batch posted for the helpers: small, so that a helper a product starts
/// needing is free within one block.
const AHEAD_BLOCK: usize = 16;

/// One epoch's batches of `width` values per item, `batch` items each (the last may be shorter).
pub struct Feed {
    source: Source,
    items: usize,
    batch: usize,
    width: usize,
    /// The first item of the next batch.
    pos: usize,
}

enum Source {
    /// Built by the kernel team: each batch is posted when the one before it is handed out, and
    /// the helpers build it when they would otherwise wait (the step's serial parts: the loss,
    /// the Learner's bookkeeping). Where nothing can be posted (one thread, or other work is
    /// posted) a batch is built when asked, by this thread and the team.
    Team { fill: Arc<Fill>, next: Option<Prefilled> },
    /// Built ahead on a thread of their own, while the device computes.
    Thread(Receiver<Vec<f32>>),
}

/// The batch-building thread did not start or stopped early.
#[derive(Debug, thiserror::Error)]
#[error("the batch-building thread did not start or stopped early")]
pub struct Stopped;

impl Feed {
    /// The batches of `items` items for `device`, `fill` writing the rows of a range of them.
    pub fn start(device: &Device, items: usize, batch: usize, width: usize, fill: Arc<Fill>) -> Self {
        let batch = batch.max(1);
        let source = if super::enabled(device) {
            Source::Team { fill, next: None }
        } else {
            Source::Thread(on_a_thread(items, batch, width, fill))
        };
        Feed { source, items, batch, width, pos: 0 }
    }
}

/// Each batch: the items it holds and their rows. After an `Err` (the thread stopped) the feed
/// ends.
impl Iterator for Feed {
    type Item = Result<(Range<usize>, Vec<f32>), Stopped>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.items {
            return None;
        }
        let range = self.pos..(self.pos + self.batch).min(self.items);
        let rows = match &mut self.source {
            Source::Team { fill, next } => {
                let rows = match next.take() {
                    Some(posted) => posted.take(),
                    None => fill_rows(range.len(), self.width, true, |r, out| fill(offset(&r, range.start), out)),
                };
                let following = range.end..(range.end + self.batch).min(self.items);
                if !following.is_empty() {
                    *next = post(fill, following, self.width);
                }
                Ok(rows)
            }
            Source::Thread(batches) => batches.recv().map_err(|_| Stopped),
        };
        self.pos = if rows.is_ok() { range.end } else { self.items };
        Some(rows.map(|rows| (range, rows)))
    }
}

/// `r` moved `by` items on.
fn offset(r: &Range<usize>, by: usize) -> Range<usize> {
    by + r.start..by + r.end
}

/// Post the batch of `items` for the helpers; `None` where it cannot be posted.
fn post(fill: &Arc<Fill>, items: Range<usize>, width: usize) -> Option<Prefilled> {
    let (fill, start) = (fill.clone(), items.start);
    Prefilled::post(items.len(), width, AHEAD_BLOCK, move |r, out| fill(offset(&r, start), out))
}

/// Every batch built in turn on a thread of its own. The thread ends after the last batch, or at
/// its next send once the receiver is dropped; if it cannot start, the sender goes with it and
/// the receiver reports the error.
fn on_a_thread(items: usize, batch: usize, width: usize, fill: Arc<Fill>) -> Receiver<Vec<f32>> {
    let (tx, rx) = sync_channel(AHEAD_ON_THREAD);
    let _ = std::thread::Builder::new().name("batches".to_string()).spawn(move || {
        for start in (0..items).step_by(batch) {
            let range = start..(start + batch).min(items);
            let rows = fill_rows(range.len(), width, false, |r, out| fill(offset(&r, start), out));
            if tx.send(rows).is_err() {
                break;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows whose values name their item: row `i` is `[i, i, ...]` scaled by a half.
    fn fill(width: usize) -> Arc<Fill> {
        Arc::new(move |items: Range<usize>, out: &mut RowWriter| {
            for i in items {
                out.push_scaled(&vec![i as u8; width], 0.5);
            }
        })
    }

    fn epoch(device: &Device) -> Vec<(Range<usize>, Vec<f32>)> {
        Feed::start(device, 50, 16, 3, fill(3)).map(|b| b.unwrap()).collect()
    }

    #[test]
    fn every_item_once_in_order_in_batches_on_either_source() {
        let device = crate::backend::cpu_device();
        let batches = epoch(&device);
        assert_eq!(batches.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(), [0..16, 16..32, 32..48, 48..50]);
        for (range, rows) in &batches {
            let want: Vec<f32> = range.clone().flat_map(|i| [i as f32 * 0.5; 3]).collect();
            assert_eq!(rows, &want);
        }
        // Both sources, whichever of them this device takes.
        let thread = Feed { source: Source::Thread(on_a_thread(50, 16, 3, fill(3))), items: 50, batch: 16, width: 3, pos: 0 };
        let other: Vec<_> = thread.map(|b| b.unwrap()).collect();
        assert_eq!(other, batches);
        let team = Feed { source: Source::Team { fill: fill(3), next: None }, items: 50, batch: 16, width: 3, pos: 0 };
        let other: Vec<_> = team.map(|b| b.unwrap()).collect();
        assert_eq!(other, batches);
    }

    #[test]
    fn a_feed_dropped_early_stops_its_work() {
        let device = crate::backend::cpu_device();
        let mut feed = Feed::start(&device, 50, 16, 3, fill(3));
        assert_eq!(feed.next().unwrap().unwrap().0, 0..16);
        drop(feed);
        assert_eq!(epoch(&device).len(), 4);
    }
}
