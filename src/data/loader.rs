//! Mini-batches straight from the in-memory bytes, implementing Burn's `DataLoader`.
//!
//! Burn's `DataLoaderBuilder::shuffle(seed)` draws each epoch's order from an RNG that restarts
//! at the seed when a run resumes, so a resumed run would see other orders than an uninterrupted
//! one. Here the order of epoch `k` is a pure function of `(seed, k)`, which makes
//! "4 epochs + resume to 10" identical to "10 epochs". Batches are cut from the raw bytes
//! without per-image allocations.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::{PIXELS, Split};
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

/// Build one batch from the items at `indices`: pixels scaled to [0, 1], labels as Int.
pub fn make_batch(split: &Split, indices: &[usize], device: &Device) -> Batch {
    let b = indices.len();
    let mut pixels = Vec::with_capacity(b * PIXELS);
    let mut labels = Vec::with_capacity(b);
    for &i in indices {
        pixels.extend(split.image(i).iter().map(|&p| p as f32 * (1.0 / 255.0)));
        labels.push(split.labels[i] as i64);
    }
    Batch {
        images: Tensor::from_data(TensorData::new(pixels, [b, PIXELS]), device),
        targets: Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), device),
    }
}

/// A loader over one split. `shuffle_seed: None` keeps file order (the test set, or
/// `shuffle = false`).
#[derive(Clone)]
pub struct BatchLoader {
    split: Arc<Split>,
    range: Range<usize>,
    batch_size: usize,
    shuffle_seed: Option<u64>,
    /// The epoch number the next `iter()` call serves (shared by clones made by `to_device`).
    next_epoch: Arc<AtomicUsize>,
    device: Device,
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
        }
    }
}

struct BatchIter<'a> {
    loader: &'a BatchLoader,
    order: Vec<usize>,
    pos: usize,
}

impl Iterator for BatchIter<'_> {
    type Item = Result<Batch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.loader.batch_size).min(self.order.len());
        let batch = make_batch(&self.loader.split, &self.order[self.pos..end], &self.loader.device);
        self.pos = end;
        Some(Ok(batch))
    }
}

impl DataLoaderIterator<Batch> for BatchIter<'_> {
    fn progress(&self) -> Progress {
        Progress::new(self.pos, self.order.len(), Some("items".to_string()))
    }
}

impl DataLoader<Batch> for BatchLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<Batch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        let n = self.range.len();
        let local = match self.shuffle_seed {
            Some(seed) => epoch_order(n, seed, epoch),
            None => (0..n).collect(),
        };
        let order = local.into_iter().map(|i| i + self.range.start).collect();
        Box::new(BatchIter {
            loader: self,
            order,
            pos: 0,
        })
    }

    fn num_items(&self) -> usize {
        self.range.len()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<Batch>> {
        let mut l = self.clone();
        l.device = device.clone();
        Arc::new(l)
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<Batch>> {
        let mut l = self.clone();
        let s = (self.range.start + start).min(self.range.end);
        let e = (self.range.start + end).min(self.range.end);
        l.range = s..e.max(s);
        l.next_epoch = Arc::new(AtomicUsize::new(self.next_epoch.load(Ordering::SeqCst)));
        Arc::new(l)
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
                .flat_map(|b| b.unwrap().targets.into_data().try_to_vec::<i64>().unwrap())
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
