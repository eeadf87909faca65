//! Fashion-MNIST: the IDX format ([`idx`]), finding/downloading/checking the four files
//! ([`source`], [`download`]), synthetic stand-ins for tests and `bench` ([`synthetic`]), and
//! mini-batches for Burn ([`loader`]; gathered on a GPU: [`device`]).

pub mod device;
pub mod download;
pub mod idx;
pub mod loader;
pub mod source;
pub mod synthetic;

pub use download::{NoTransfers, TransferSink, Transfers};
pub use idx::{encode_images, encode_labels, parse_images, parse_labels};
pub use loader::{BatchLoader, epoch_order, make_batch};
pub use source::{CACHE_DIR, DataOptions, ENV_DIR, ENV_URL, Loaded, Need, SYSTEM_DIR, Source, locate, open};
pub use synthetic::{synthetic, write_idx_pair, write_synthetic};

use crate::error::{Error, Result};

/// Class names in label order.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
/// The model's input and output widths, which the data must fill (data/ feeds the model, so
/// the model owns them).
pub use crate::model::{NUM_CLASSES, PIXELS};
/// An image's side in pixels.
pub const SIDE: usize = 28;
const _: () = assert!(SIDE * SIDE == PIXELS, "an image fills the model's inputs");

/// One of the four files of the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxFile {
    /// File name without `.gz`.
    pub name: &'static str,
    /// SHA-256 of the decompressed content of the official file.
    pub sha256: &'static str,
    pub layout: idx::Layout,
}

pub const TRAIN_IMAGES: IdxFile =
    IdxFile { name: "train-images-idx3-ubyte", sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", layout: idx::IMAGES };
pub const TRAIN_LABELS: IdxFile =
    IdxFile { name: "train-labels-idx1-ubyte", sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", layout: idx::LABELS };
pub const TEST_IMAGES: IdxFile =
    IdxFile { name: "t10k-images-idx3-ubyte", sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", layout: idx::IMAGES };
pub const TEST_LABELS: IdxFile =
    IdxFile { name: "t10k-labels-idx1-ubyte", sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", layout: idx::LABELS };
pub const ALL_FILES: [IdxFile; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// Images (row-major 28x28 bytes, 0 = background) and their labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// Hold out the last `n` items: `(the first len - n, the last n)`, in file order, so the
    /// validation set depends only on `n`. At least one item must stay in the first part.
    pub fn take_tail(mut self, n: usize) -> Result<(Split, Split)> {
        let len = self.len();
        if n >= len {
            return Err(Error::config(format!(
                "val_size = {n} leaves no training images (the training split has {len}); choose a val_size below {len}"
            )));
        }
        let keep = len - n;
        let tail = Split {
            images: self.images.split_off(keep * PIXELS),
            labels: self.labels.split_off(keep),
        };
        Ok((self, tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_tail_holds_out_the_last_items_in_order() {
        let all = synthetic(10, 2);
        let (train, val) = all.clone().take_tail(3).unwrap();
        assert_eq!((train.len(), val.len()), (7, 3));
        assert_eq!(train.images.len(), 7 * PIXELS);
        assert_eq!(val.images.len(), 3 * PIXELS);
        assert_eq!(val.labels, all.labels[7..]);
        assert_eq!(val.image(0), all.image(7));
        assert_eq!(train.image(6), all.image(6));
        assert_eq!(train.labels, all.labels[..7]);
    }

    #[test]
    fn take_tail_of_zero_keeps_everything() {
        let all = synthetic(4, 2);
        let (train, val) = all.clone().take_tail(0).unwrap();
        assert_eq!(train, all);
        assert!(val.is_empty() && val.images.is_empty());
    }

    #[test]
    fn take_tail_must_leave_training_images() {
        for n in [5, 6, 1000] {
            let e = synthetic(5, 2).take_tail(n).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{e:?}");
            let m = e.to_string();
            assert!(m.contains("val_size") && m.contains("below 5"), "{m}");
        }
    }
}
