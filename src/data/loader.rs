//! Mini-batches straight from the in-memory bytes, implementing Burn's `DataLoader`.
//!
//! Burn's `DataLoaderBuilder::shuffle(seed)` draws each epoch's order from an RNG that restarts
//! at the seed when a run resumes, so a resumed run would see other orders than an uninterrupted
//! one. Here the order of epoch `k` is a pure function of `(seed, k)`, which makes
//! "4 epochs + resume to 10" identical to "10 epochs". Batches are cut from the raw bytes
//! without per-image allocations: on flex one batch ahead by the kernel team's helpers between
//! the products of the step before, elsewhere one batch ahead on a thread of their own (host
//! memory only: tensors are made on the caller's thread, so a GPU backend sees one stream).

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::{PIXELS, Split};
use crate::engine::batches::{Prefilled, RowWriter, fill_rows};
use crate::model::Batch;

/// The order of the items of epoch `epoch` (1-based): shuffled from `(seed, epoch)` only.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    // Mix the epoch into the seed (splitmix64 constant) so neighbouring epochs are unrelated.
    let mixed = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rng = rand::rngs::StdRng::seed_from_u64(mixed);
    order.shuffle(&mut rng);
    order
}

/// Batches built ahead of the one being computed; one keeps the helper thread a step ahead
/// without holding much memory.
const PREFETCH: usize = 1;

/// A batch in host memory: pixels scaled to [0, 1], labels as i64.
struct HostBatch {
    pixels: Vec<f32>,
    labels: Vec<i64>,
}

impl HostBatch {
    /// Built on this thread alone.
    fn new(split: &Split, indices: &[usize]) -> Self {
        Self::build(split, indices, false)
    }

    /// Built on this thread and the kernel team's helpers, one block of images per thread.
    fn new_on_team(split: &Split, indices: &[usize]) -> Self {
        Self::build(split, indices, true)
    }

    fn build(split: &Split, indices: &[usize], team: bool) -> Self {
        let pixels = fill_rows(indices.len(), PIXELS, team, |rows, out| convert(split, &indices[rows], out));
        let labels = indices.iter().map(|&i| split.labels[i] as i64).collect();
        HostBatch { pixels, labels }
    }

    fn to_device(self, device: &Device) -> Batch {
        let b = self.labels.len();
        Batch {
            images: Tensor::from_data(TensorData::new(self.pixels, [b, PIXELS]), device),
            targets: Tensor::<1, Int>::from_data(TensorData::new(self.labels, [b]), device),
        }
    }
}

/// The pixels of the images at `indices`, scaled to [0, 1], one row each.
fn convert(split: &Split, indices: &[usize], out: &mut RowWriter) {
    for (k, &i) in indices.iter().enumerate() {
        // Shuffled images are scattered over 47 MB and each began with a wait on main memory
        // (three quarters of this loop's time): ask for the one four ahead early.
        if let Some(&ahead) = indices.get(k + 4) {
            prefetch(split.image(ahead));
        }
        out.push_scaled(split.image(i), 1.0 / 255.0);
    }
}

/// Hint the CPU to load `bytes` into its caches (a no-op off x86-64).
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch hint reads nothing architecturally; the pointer is in bounds.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Build one batch from the items at `indices`: pixels scaled to [0, 1], labels as Int.
pub fn make_batch(split: &Split, indices: &[usize], device: &Device) -> Batch {
    HostBatch::new(split, indices).to_device(device)
}

/// A loader over one split. `shuffle_seed: None` keeps file order (the test set, or
/// `shuffle = false`).
#[derive(Clone)]
pub struct BatchLoader {
    pub(super) split: Arc<Split>,
    range: Range<usize>,
    pub(super) batch_size: usize,
    pub(super) shuffle_seed: Option<u64>,
    /// The epoch number the next `iter()` call serves (shared by clones made by `to_device`).
    next_epoch: Arc<AtomicUsize>,
    pub(super) device: Device,
    /// Seed the device's generator (dropout's draws) from this and the epoch at each epoch's
    /// start, so that a seeded run repeats and a resumed one draws what it would have.
    draws_seed: Option<u64>,
}

impl BatchLoader {
    pub fn new(split: Arc<Split>, batch_size: usize, shuffle_seed: Option<u64>, first_epoch: usize, device: &Device) -> Self {
        let n = split.len();
        Self {
            split,
            range: 0..n,
            batch_size,
            shuffle_seed,
            next_epoch: Arc::new(AtomicUsize::new(first_epoch)),
            device: device.clone(),
            draws_seed: None,
        }
    }

    /// Seed the device's random draws from `seed` and the epoch at the start of each epoch.
    pub fn seeding_draws(mut self, seed: u64) -> Self {
        self.draws_seed = Some(seed);
        self
    }

    /// Start the next epoch: seed the device's draws (when asked to) and return the order of
    /// its items, as indices into the split.
    pub(super) fn next_order(&self) -> Vec<usize> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(seed) = self.draws_seed {
            // Another mix than the order's, so the draws and the order are unrelated.
            self.device.seed(seed.rotate_left(17) ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        }
        let n = self.range.len();
        let local = match self.shuffle_seed {
            Some(seed) => epoch_order(n, seed, epoch),
            None => (0..n).collect(),
        };
        local.into_iter().map(|i| i + self.range.start).collect()
    }

    /// This loader, making its batches on `device`.
    pub(super) fn on_device(&self, device: &Device) -> Self {
        let mut l = self.clone();
        l.device = device.clone();
        l
    }

    /// This loader over items `start..end` of its range, from the epoch it is at.
    pub(super) fn sliced(&self, start: usize, end: usize) -> Self {
        let mut l = self.clone();
        let s = (self.range.start + start).min(self.range.end);
        let e = (self.range.start + end).min(self.range.end);
        l.range = s..e.max(s);
        l.next_epoch = Arc::new(AtomicUsize::new(self.next_epoch.load(Ordering::SeqCst)));
        l
    }
}

/// One epoch's batches in `order`.
struct BatchIter {
    source: Source,
    device: Device,
    pos: usize,
    total: usize,
}

/// Where an epoch's batches come from.
enum Source {
    /// Built ahead on a thread of their own, while the device computes: a GPU backend, and
    /// ndarray, whose products run on rayon rather than on the team (unchanged there, and not
    /// measured against building in place).
    Ahead(Receiver<HostBatch>),
    /// Built by the kernel team (flex): each batch is posted when the one before it is handed
    /// out, and the team's helpers build it between that step's products, when they would
    /// otherwise wait (the step's serial parts: the loss, the Learner's bookkeeping). A batch
    /// thread beside the products took its time from them and was still often late (2 cores,
    /// 12 alternated runs: 0.350 against 0.324 s per epoch built in place); building ahead on
    /// the helpers beat building in place (10 alternated runs, with the backward changes of the
    /// same session: 0.304 -> 0.288 s). Where nothing can be posted (one thread, or another
    /// loader's batch is posted) a batch is built in place by this thread and the team.
    InPlace { split: Arc<Split>, order: Arc<[usize]>, batch_size: usize, next: Option<Pending> },
}

/// A batch posted for the kernel team's helpers to build ([`Prefilled`]).
struct Pending {
    pixels: Prefilled,
    labels: Vec<i64>,
}

/// Images per block of a batch built ahead: small, so that a helper a product starts needing is
/// free within one block.
const AHEAD_BLOCK: usize = 16;

impl Pending {
    /// Post the batch of the items at `order[range]`; `None` where it cannot be posted.
    fn post(split: &Arc<Split>, order: &Arc<[usize]>, range: Range<usize>) -> Option<Pending> {
        let (images, items, start) = (split.clone(), order.clone(), range.start);
        let block = move |rows: Range<usize>, out: &mut RowWriter| {
            convert(&images, &items[start + rows.start..start + rows.end], out);
        };
        let pixels = Prefilled::post(range.len(), PIXELS, AHEAD_BLOCK, block)?;
        let labels = order[range].iter().map(|&i| split.labels[i] as i64).collect();
        Some(Pending { pixels, labels })
    }

    /// The batch, once every block is done (the rest done now, here and on the team).
    fn take(self) -> HostBatch {
        HostBatch { pixels: self.pixels.take(), labels: self.labels }
    }
}

impl BatchIter {
    fn start(split: Arc<Split>, order: Vec<usize>, batch_size: usize, device: Device) -> Self {
        let total = order.len();
        if crate::engine::enabled(&device) {
            let order: Arc<[usize]> = order.into();
            return BatchIter { source: Source::InPlace { split, order, batch_size, next: None }, device, pos: 0, total };
        }
        let (tx, rx) = sync_channel(PREFETCH);
        // The thread ends after the last batch, or at its next send once the iterator is dropped.
        // If it cannot start, `tx` is dropped with it and `next` reports the error.
        let _ = std::thread::Builder::new().name("batches".to_string()).spawn(move || {
            for chunk in order.chunks(batch_size) {
                if tx.send(HostBatch::new(&split, chunk)).is_err() {
                    break;
                }
            }
        });
        BatchIter { source: Source::Ahead(rx), device, pos: 0, total }
    }
}

impl Iterator for BatchIter {
    type Item = Result<Batch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.total {
            return None;
        }
        let received = match &mut self.source {
            Source::InPlace { split, order, batch_size, next } => {
                let end = (self.pos + *batch_size).min(order.len());
                let host = match next.take() {
                    Some(posted) => posted.take(),
                    None => HostBatch::new_on_team(split, &order[self.pos..end]),
                };
                let following = end..(end + *batch_size).min(order.len());
                if !following.is_empty() {
                    *next = Pending::post(split, order, following);
                }
                Ok(host)
            }
            Source::Ahead(batches) => batches.recv(),
        };
        let Ok(host) = received else {
            // Reported once; the iterator then ends.
            self.pos = self.total;
            let why = std::io::Error::other("the batch-building thread did not start or stopped early");
            return Some(Err(DatasetError::new(why)));
        };
        self.pos += host.labels.len();
        Some(Ok(host.to_device(&self.device)))
    }
}

impl DataLoaderIterator<Batch> for BatchIter {
    fn progress(&self) -> Progress {
        Progress::new(self.pos, self.total, Some("items".to_string()))
    }
}

impl DataLoader<Batch> for BatchLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<Batch> + 'a> {
        let order = self.next_order();
        Box::new(BatchIter::start(self.split.clone(), order, self.batch_size, self.device.clone()))
    }

    fn num_items(&self) -> usize {
        self.range.len()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<Batch>> {
        Arc::new(self.on_device(device))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<Batch>> {
        Arc::new(self.sliced(start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic;

    fn device() -> Device {
        crate::backend::cpu_device()
    }

    #[test]
    fn a_batch_built_by_the_team_equals_one_built_alone() {
        let split = synthetic(300, 7);
        // 77 images in shuffled order: a short last block wherever the team has two threads.
        let indices: Vec<usize> = epoch_order(300, 3, 1).into_iter().take(77).collect();
        let (alone, team) = (HostBatch::new(&split, &indices), HostBatch::new_on_team(&split, &indices));
        assert_eq!(alone.labels, team.labels);
        assert!(alone.pixels == team.pixels, "the team's batch differs");
        // The last block is the short one: its last image, scaled as the loader scales.
        let last = *indices.last().unwrap();
        let want: Vec<f32> = split.image(last).iter().map(|&p| p as f32 * (1.0 / 255.0)).collect();
        assert!(team.pixels[76 * PIXELS..] == want[..], "the last image differs");
        assert!(HostBatch::new_on_team(&split, &[]).pixels.is_empty());
    }

    #[test]
    fn order_depends_only_on_seed_and_epoch() {
        assert_eq!(epoch_order(100, 1, 3), epoch_order(100, 1, 3));
        assert_ne!(epoch_order(100, 1, 3), epoch_order(100, 1, 4));
        assert_ne!(epoch_order(100, 1, 3), epoch_order(100, 2, 3));
        let mut o = epoch_order(100, 1, 3);
        o.sort();
        assert_eq!(o, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn a_loader_started_at_epoch_3_serves_what_a_fresh_one_serves_third() {
        let split = Arc::new(synthetic(20, 1));
        let labels = |l: &BatchLoader| -> Vec<i64> {
            l.iter()
                .flat_map(|b| b.unwrap().targets.into_data().convert::<i64>().try_to_vec::<i64>().unwrap())
                .collect()
        };
        let fresh = BatchLoader::new(split.clone(), 8, Some(5), 1, &device());
        let _e1 = labels(&fresh);
        let _e2 = labels(&fresh);
        let e3 = labels(&fresh);
        let resumed = BatchLoader::new(split, 8, Some(5), 3, &device());
        assert_eq!(labels(&resumed), e3);
    }

    #[test]
    fn prefetched_batches_are_those_of_make_batch_in_epoch_order() {
        let split = Arc::new(synthetic(50, 1));
        let l = BatchLoader::new(split.clone(), 16, Some(9), 2, &device());
        let order = epoch_order(50, 9, 2);
        let host = |b: Batch| (b.images.into_data().try_to_vec::<f32>().unwrap(), b.targets.into_data().convert::<i64>().try_to_vec::<i64>().unwrap());
        let mut it = l.iter();
        for chunk in order.chunks(16) {
            assert_eq!(host(it.next().unwrap().unwrap()), host(make_batch(&split, chunk, &device())));
        }
        assert!(it.next().is_none());
        assert_eq!((it.progress().items_processed, it.progress().items_total), (50, 50));
        // An epoch dropped after one batch stops its helper; the next epoch is unaffected.
        let mut it = l.iter();
        assert_eq!(it.next().unwrap().unwrap().targets.dims(), [16]);
        drop(it);
        assert_eq!(l.iter().count(), 4);
    }

    #[test]
    fn batches_cover_the_split_scaled_to_unit_range() {
        let split = Arc::new(synthetic(20, 1));
        let l = BatchLoader::new(split.clone(), 8, None, 1, &device());
        let batches: Vec<Batch> = l.iter().map(|b| b.unwrap()).collect();
        assert_eq!(batches.iter().map(|b| b.images.dims()[0]).collect::<Vec<_>>(), vec![8, 8, 4]);
        let px: Vec<f32> = batches[0].images.clone().into_data().try_to_vec::<f32>().unwrap();
        assert!(px.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert!((px[0] - split.images[0] as f32 / 255.0).abs() < 1e-6);
        assert_eq!(l.num_items(), 20);
    }
}
