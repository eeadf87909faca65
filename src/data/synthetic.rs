//! Learnable synthetic data of Fashion-MNIST's shape, for tests and for `bench` when asked.
//! Never a silent stand-in for the real data: the lookup in `source` does not fall back to it.

use std::io::Write;
use std::path::Path;

use rand::{Rng, SeedableRng};

use super::idx;
use super::{IdxFile, NUM_CLASSES, SIDE, Split, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use crate::error::{Error, Result};

/// `n` images in which each class is a distinct pattern of bands plus noise; deterministic in `seed`.
pub fn synthetic(n: usize, seed: u64) -> Split {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut images = vec![0u8; n * SIDE * SIDE];
    let mut labels = Vec::with_capacity(n);
    for img in images.chunks_exact_mut(SIDE * SIDE) {
        let label = rng.random_range(0..NUM_CLASSES as u8);
        labels.push(label);
        // Class c lights one of 5 horizontal bands and one of 2 vertical bands: a unique pair.
        let c = label as usize;
        let (h, v) = (c % 5, c / 5);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let band = (y / 5 == h && y % 5 < 4) || (x >= 3 + 12 * v && x < 10 + 12 * v);
                let base: i32 = if band { 200 } else { 20 };
                let noise: i32 = rng.random_range(-20..=20);
                img[y * SIDE + x] = (base + noise).clamp(0, 255) as u8;
            }
        }
    }
    Split { images, labels }
}

/// Write `items` as the IDX file `file` in `dir`, gzipped (`name.gz`) if `gz`.
fn write_idx(dir: &Path, file: &IdxFile, items: &[u8], gz: bool) -> Result<()> {
    let bytes = idx::encode(&file.layout, items);
    let (name, bytes) = if gz {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let packed = enc.write_all(&bytes).and_then(|_| enc.finish());
        let packed = packed.map_err(|e| Error::io("cannot compress", dir.join(file.name), e))?;
        (format!("{}.gz", file.name), packed)
    } else {
        (file.name.to_string(), bytes)
    };
    let path = dir.join(name);
    crate::fsutil::atomic_write(&path, &bytes).map_err(|e| Error::io("cannot write", &path, e))
}

/// Write a split as the IDX files `images` and `labels` in `dir` (gzipped if `gz`).
pub fn write_idx_pair(dir: &Path, images: &IdxFile, labels: &IdxFile, split: &Split, gz: bool) -> Result<()> {
    write_idx(dir, images, &split.images, gz)?;
    write_idx(dir, labels, &split.labels, gz)
}

/// Write a whole synthetic data set (train and test) into `dir`, created if missing.
pub fn write_synthetic(dir: &Path, n_train: usize, n_test: usize, seed: u64, gz: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    write_idx_pair(dir, &TRAIN_IMAGES, &TRAIN_LABELS, &synthetic(n_train, seed), gz)?;
    write_idx_pair(dir, &TEST_IMAGES, &TEST_LABELS, &synthetic(n_test, seed ^ 0x5eed), gz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_is_deterministic_and_valid() {
        let a = synthetic(10, 3);
        let b = synthetic(10, 3);
        assert_eq!(a.images, b.images);
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.len(), 10);
        assert_eq!(a.images.len(), 10 * SIDE * SIDE);
        assert!(a.labels.iter().all(|&l| (l as usize) < NUM_CLASSES));
        assert_ne!(synthetic(10, 4).images, a.images);
    }

    #[test]
    fn written_files_parse_back() {
        for gz in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let split = synthetic(7, 1);
            write_idx_pair(dir.path(), &TRAIN_IMAGES, &TRAIN_LABELS, &split, gz).unwrap();
            let suffix = if gz { ".gz" } else { "" };
            let read = |f: &IdxFile| {
                let p = dir.path().join(format!("{}{suffix}", f.name));
                idx::parse(&f.layout, &idx::read_content(&p, 1 << 20).unwrap(), &p).unwrap()
            };
            assert_eq!(read(&TRAIN_IMAGES), split.images);
            assert_eq!(read(&TRAIN_LABELS), split.labels);
        }
    }
}
