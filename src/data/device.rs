//! The data set resident on a GPU: each split goes to the device once per run, and each batch is
//! gathered there (`select` by the epoch's shuffled indices) instead of being built on the host
//! and uploaded every step.
//!
//! The batches are the host loader's ([`BatchLoader`]): the pixels are scaled on the host by the
//! same code, and the order of each epoch comes from the same `(seed, epoch)`, so a run moves
//! between backends and resumes exactly. The CPU backends keep [`BatchLoader`] (their batches
//! are in host memory already; flex builds them ahead on the kernel team).

use std::sync::{Arc, OnceLock};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::loader::{BatchLoader, make_batch};
use super::Split;
use crate::model::Batch;

/// Whether batches are gathered on `device` ([`DeviceLoader`]) and the epoch's figures summed
/// there (`train::device_sums`): on a GPU, unless `--reference-ops` asks for the plain path.
/// The one place that decides.
pub fn resident(device: &Device) -> bool {
    crate::backend::is_gpu(device) && !crate::engine::reference_ops()
}

/// `loader` as the Learner should get it: gathering its batches on the device where
/// [`resident`] says so, else as it is.
pub fn for_device(loader: BatchLoader) -> Arc<dyn DataLoader<Batch>> {
    if resident(&loader.device) { Arc::new(DeviceLoader::new(loader)) } else { Arc::new(loader) }
}

/// Images per upload: the whole split goes up in pieces of this size, so the host holds one
/// piece's floats (25 MB) at a time rather than the split's (188 MB for the training set).
const UPLOAD_ROWS: usize = 8192;

/// A split on the device: pixels scaled to [0, 1] `[n, 784]`, labels `[n]`.
struct Resident {
    images: Tensor<2>,
    labels: Tensor<1, Int>,
}

impl Resident {
    /// The whole split, converted on the host exactly as [`make_batch`] converts a batch.
    fn upload(split: &Split, device: &Device) -> Self {
        let all: Vec<usize> = (0..split.len()).collect();
        let pieces: Vec<Batch> = all.chunks(UPLOAD_ROWS).map(|rows| make_batch(split, rows, device)).collect();
        if pieces.len() == 1 {
            let Batch { images, targets } = pieces.into_iter().next().expect("one piece");
            return Resident { images, labels: targets };
        }
        let (images, labels): (Vec<_>, Vec<_>) = pieces.into_iter().map(|b| (b.images, b.targets)).unzip();
        Resident { images: Tensor::cat(images, 0), labels: Tensor::cat(labels, 0) }
    }
}

/// A [`BatchLoader`]'s batches, gathered from the split held on the device.
#[derive(Clone)]
pub struct DeviceLoader {
    /// The schedule: epochs, their order, the device's draws, the range and batch size.
    host: BatchLoader,
    /// The split on `host.device`, uploaded when the first epoch starts (shared by the clones
    /// on that device; a loader moved to another device uploads again).
    resident: Arc<OnceLock<Resident>>,
}

impl DeviceLoader {
    pub fn new(host: BatchLoader) -> Self {
        Self { host, resident: Arc::new(OnceLock::new()) }
    }
}

impl DataLoader<Batch> for DeviceLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<Batch> + 'a> {
        let order = self.host.next_order();
        let data = self.resident.get_or_init(|| Resident::upload(&self.host.split, &self.host.device));
        Box::new(DeviceBatches::new(data, order, self.host.batch_size, self.host.shuffle_seed.is_some(), &self.host.device))
    }

    fn num_items(&self) -> usize {
        self.host.num_items()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<Batch>> {
        Arc::new(DeviceLoader::new(self.host.on_device(device)))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<Batch>> {
        // The resident split is the whole split, indexed by the order's absolute indices.
        Arc::new(DeviceLoader { host: self.host.sliced(start, end), resident: self.resident.clone() })
    }
}

/// One epoch's batches, gathered on the device.
struct DeviceBatches<'a> {
    data: &'a Resident,
    /// The epoch's order on the device (shuffled), or `None` for file order over `first..`.
    order: Option<Tensor<1, Int>>,
    first: usize,
    batch_size: usize,
    pos: usize,
    total: usize,
}

impl<'a> DeviceBatches<'a> {
    fn new(data: &'a Resident, order: Vec<usize>, batch_size: usize, shuffled: bool, device: &Device) -> Self {
        let (total, first) = (order.len(), order.first().copied().unwrap_or(0));
        // One upload per epoch (240 KB for the training set); each batch is a slice of it.
        let order = shuffled.then(|| {
            let ids: Vec<i64> = order.iter().map(|&i| i as i64).collect();
            Tensor::<1, Int>::from_data(TensorData::new(ids, [total]), device)
        });
        DeviceBatches { data, order, first, batch_size, pos: 0, total }
    }
}

impl Iterator for DeviceBatches<'_> {
    type Item = Result<Batch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.total {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.total);
        let batch = match &self.order {
            Some(order) => {
                let ids = order.clone().slice(self.pos..end);
                Batch { images: self.data.images.clone().select(0, ids.clone()), targets: self.data.labels.clone().select(0, ids) }
            }
            // File order: the batch is a contiguous block, a view with nothing to gather.
            None => {
                let rows = self.first + self.pos..self.first + end;
                Batch { images: self.data.images.clone().slice(rows.clone()), targets: self.data.labels.clone().slice(rows) }
            }
        };
        self.pos = end;
        Some(Ok(batch))
    }
}

impl DataLoaderIterator<Batch> for DeviceBatches<'_> {
    fn progress(&self) -> Progress {
        Progress::new(self.pos, self.total, Some("items".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic;

    fn host(b: Batch) -> (Vec<f32>, Vec<i64>) {
        (b.images.into_data().try_to_vec::<f32>().unwrap(), b.targets.into_data().convert::<i64>().try_to_vec::<i64>().unwrap())
    }

    /// Two epochs of a shuffled loader, resumed from the second, and an unshuffled one with a
    /// short last batch: the same batches as the host loader's, bit for bit (on the CPU device,
    /// where `select` and `slice` run the same gathers as on a GPU).
    #[test]
    fn gathered_batches_are_the_host_loaders() {
        let device = crate::backend::cpu_device();
        let split = Arc::new(synthetic(300, 5));
        for (shuffle, first_epoch) in [(Some(7), 1), (Some(7), 2), (None, 1)] {
            let make = || BatchLoader::new(split.clone(), 64, shuffle, first_epoch, &device).seeding_draws(3);
            let (on_host, on_device) = (make(), DeviceLoader::new(make()));
            for _epoch in 0..2 {
                let a: Vec<_> = on_host.iter().map(|b| host(b.unwrap())).collect();
                let mut it = on_device.iter();
                let b: Vec<_> = it.by_ref().map(|b| host(b.unwrap())).collect();
                assert_eq!(a.len(), 5);
                assert!(a == b, "shuffle {shuffle:?}, first epoch {first_epoch}: the batches differ");
                assert_eq!((it.progress().items_processed, it.progress().items_total), (300, 300));
            }
        }
    }

    #[test]
    fn a_split_larger_than_one_upload_is_whole_and_in_order() {
        let device = crate::backend::cpu_device();
        let split = synthetic(UPLOAD_ROWS + 3, 2);
        let data = Resident::upload(&split, &device);
        assert_eq!(data.images.dims(), [UPLOAD_ROWS + 3, crate::data::PIXELS]);
        let last = host(Batch { images: data.images.slice(UPLOAD_ROWS + 2..UPLOAD_ROWS + 3), targets: data.labels.slice(UPLOAD_ROWS + 2..UPLOAD_ROWS + 3) });
        assert_eq!(last, host(make_batch(&split, &[UPLOAD_ROWS + 2], &device)));
    }

    #[test]
    fn the_cpu_keeps_the_host_loader() {
        assert!(!resident(&crate::backend::cpu_device()));
    }
}
