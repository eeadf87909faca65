//! Mini-batches straight from the in-memory bytes, implementing Burn's `DataLoader`.
//!
//! Burn's `DataLoaderBuilder::shuffle(seed)` draws each epoch's order from an RNG that restarts
//! at the seed when a run resumes, so a resumed run would see other orders than an uninterrupted
//! one. Here the order of epoch `k` is a pure function of `(seed, k)`, which makes
//! "4 epochs + resume to 10" identical to "10 epochs". Batches are cut from the raw bytes
//! without per-image allocations, where and when `engine::feed` decides.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::{PIXELS, Split};
use crate::engine::batches::{RowWriter, fill_rows};
use crate::engine::feed::Feed;
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

/// A batch in host memory: pixels scaled to [0, 1], labels as i64.
struct HostBatch {
    pixels: Vec<f32>,
    labels: Vec<i64>,
}

impl HostBatch {
    fn into_batch(self, device: &Device) -> Batch {
        let b = self.labels.len();
        Batch {
            images: Tensor::from_data(TensorData::new(self.pixels, [b, PIXELS]), device),
            targets: Tensor::<1, Int>::from_data(TensorData::new(self.labels, [b]), device),
        }
    }
}

/// The pixels of the images at `indices`, scaled to [0, 1], one row each.
fn convert(split: &Split, indices: &[usize], out: &mut RowWriter) {
    out.push_gathered(indices.len(), |k| split.image(indices[k]), 1.0 / 255.0);
}

fn labels(split: &Split, indices: &[usize]) -> Vec<i64> {
    indices.iter().map(|&i| split.labels[i] as i64).collect()
}

/// Build one batch from the items at `indices`: pixels scaled to [0, 1], labels as Int.
pub fn make_batch(split: &Split, indices: &[usize], device: &Device) -> Batch {
    let pixels = fill_rows(indices.len(), PIXELS, false, |rows, out| convert(split, &indices[rows], out));
    HostBatch { pixels, labels: labels(split, indices) }.into_batch(device)
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
    feed: Feed,
    split: Arc<Split>,
    order: Arc<[usize]>,
    device: Device,
    pos: usize,
}

impl BatchIter {
    fn start(split: Arc<Split>, order: Vec<usize>, batch_size: usize, device: Device) -> Self {
        let order: Arc<[usize]> = order.into();
        let (images, items) = (split.clone(), order.clone());
        let fill = Arc::new(move |rows: Range<usize>, out: &mut RowWriter| convert(&images, &items[rows], out));
        let feed = Feed::start(&device, order.len(), batch_size, PIXELS, fill);
        BatchIter { feed, split, order, device, pos: 0 }
    }
}

impl Iterator for BatchIter {
    type Item = Result<Batch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (items, pixels) = match self.feed.next()? {
            Ok(batch) => batch,
            // Reported once; the feed then ends.
            Err(stopped) => return Some(Err(DatasetError::new(std::io::Error::other(stopped)))),
        };
        self.pos = items.end;
        let host = HostBatch { pixels, labels: labels(&self.split, &self.order[items]) };
        Some(Ok(host.into_batch(&self.device)))
    }
}

impl DataLoaderIterator<Batch> for BatchIter {
    fn progress(&self) -> Progress {
        Progress::new(self.pos, self.order.len(), Some("items".to_string()))
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
        let alone = make_batch(&split, &indices, &device()).images.into_data().try_to_vec::<f32>().unwrap();
        let team = fill_rows(77, PIXELS, true, |rows, out| convert(&split, &indices[rows], out));
        assert!(alone == team, "the team's batch differs");
        // The last block is the short one: its last image, scaled as the loader scales.
        let last = *indices.last().unwrap();
        let want: Vec<f32> = split.image(last).iter().map(|&p| p as f32 * (1.0 / 255.0)).collect();
        assert!(team[76 * PIXELS..] == want[..], "the last image differs");
        assert!(fill_rows(0, PIXELS, true, |rows, out| convert(&split, &indices[rows], out)).is_empty());
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
