//! Fashion-MNIST: finding the four IDX files, reading and validating them, and checking their
//! content against pinned SHA-256 sums.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Class names in label order.
pub const CLASS_NAMES: [&str; 10] = [
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
pub const NUM_CLASSES: usize = 10;
pub const SIDE: usize = 28;
pub const PIXELS: usize = SIDE * SIDE;

/// Env variable naming a folder with the four IDX files.
pub const ENV_DIR: &str = "FASHION_MNIST_DIR";
/// Where a download goes (relative to the working directory).
pub const CACHE_DIR: &str = "data/fashion-mnist";
/// Where Debian's `dataset-fashion-mnist` installs the files.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Upper bound on images in one file; a header claiming more is rejected before any allocation.
const MAX_ITEMS: usize = 10_000_000;

/// One of the four files of the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxFile {
    /// File name without `.gz`.
    pub name: &'static str,
    /// SHA-256 of the decompressed content of the official file.
    pub sha256: &'static str,
}

pub const TRAIN_IMAGES: IdxFile = IdxFile {
    name: "train-images-idx3-ubyte",
    sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
};
pub const TRAIN_LABELS: IdxFile = IdxFile {
    name: "train-labels-idx1-ubyte",
    sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
};
pub const TEST_IMAGES: IdxFile = IdxFile {
    name: "t10k-images-idx3-ubyte",
    sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
};
pub const TEST_LABELS: IdxFile = IdxFile {
    name: "t10k-labels-idx1-ubyte",
    sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
};
pub const ALL_FILES: [IdxFile; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// Images (row-major 28x28 bytes, 0 = background) and their labels.
#[derive(Debug, Clone, Default)]
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
}

/// The training and test splits, and where they were read from.
#[derive(Debug, Clone)]
pub struct FashionMnist {
    pub train: Split,
    pub test: Split,
    pub dir: PathBuf,
}

/// How the data was found, for the first lines of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(PathBuf),
    Env(PathBuf),
    Cache(PathBuf),
    System(PathBuf),
}

impl Source {
    pub fn dir(&self) -> &Path {
        match self {
            Source::Flag(p) | Source::Env(p) | Source::Cache(p) | Source::System(p) => p,
        }
    }
}

/// The path of `file` in `dir`: the plain name or `name.gz`, whichever exists.
pub fn find_file(dir: &Path, file: &IdxFile) -> Option<PathBuf> {
    let plain = dir.join(file.name);
    if plain.exists() {
        return Some(plain);
    }
    let gz = dir.join(format!("{}.gz", file.name));
    gz.exists().then_some(gz)
}

fn has_all(dir: &Path) -> bool {
    ALL_FILES.iter().all(|f| find_file(dir, f).is_some())
}

fn missing_in(dir: &Path, origin: &str) -> Error {
    let missing: Vec<_> = ALL_FILES
        .iter()
        .filter(|f| find_file(dir, f).is_none())
        .map(|f| format!("{}[.gz]", f.name))
        .collect();
    Error::data(
        dir,
        format!(
            "{origin} lacks {}; put the four Fashion-MNIST IDX files there (gzipped or not)",
            missing.join(", ")
        ),
    )
}

/// Find the data: `--data-dir`, then `$FASHION_MNIST_DIR`, then the download cache, then the
/// Debian package's folder. `None` when no default location has it (the caller may download).
/// An explicitly named folder (flag or env) that lacks a file is an error, not a fallback.
pub fn locate(flag: Option<&Path>) -> Result<Option<Source>> {
    if let Some(dir) = flag {
        if !dir.is_dir() {
            return Err(Error::data(
                dir,
                "--data-dir is not a folder; pass the folder that holds the four IDX files",
            ));
        }
        if !has_all(dir) {
            return Err(missing_in(dir, "--data-dir"));
        }
        return Ok(Some(Source::Flag(dir.to_path_buf())));
    }
    if let Some(env) = std::env::var_os(ENV_DIR).filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(env);
        if !has_all(&dir) {
            return Err(missing_in(&dir, &format!("${ENV_DIR}")));
        }
        return Ok(Some(Source::Env(dir)));
    }
    let cache = PathBuf::from(CACHE_DIR);
    if has_all(&cache) {
        return Ok(Some(Source::Cache(cache)));
    }
    let system = PathBuf::from(SYSTEM_DIR);
    if has_all(&system) {
        return Ok(Some(Source::System(system)));
    }
    Ok(None)
}

/// Read a whole file, decompressing gzip (detected by its magic bytes, not the name). At most
/// `limit` decompressed bytes are read, so a gzip bomb or lying header cannot exhaust memory.
fn read_content(path: &Path, limit: u64) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(Error::data(
            path,
            "is a folder where an IDX file should be; remove it or point --data-dir elsewhere",
        ));
    }
    let mut file = std::fs::File::open(path).map_err(|e| {
        Error::data(path, format!("cannot open ({e}); check the file and its permissions"))
    })?;
    let mut magic = [0u8; 2];
    let n = read_fill(&mut file, &mut magic)
        .map_err(|e| Error::data(path, format!("cannot read ({e})")))?;
    let head = &magic[..n];
    let mut out = Vec::new();
    let chained = std::io::Cursor::new(head.to_vec()).chain(file);
    let res = if head == [0x1f, 0x8b] {
        flate2::read::GzDecoder::new(chained)
            .take(limit)
            .read_to_end(&mut out)
    } else {
        chained.take(limit).read_to_end(&mut out)
    };
    res.map_err(|e| {
        let what = if head == [0x1f, 0x8b] {
            "corrupt gzip data"
        } else {
            "read error"
        };
        Error::data(
            path,
            format!("{what} ({e}); replace the file (re-download, or apt-get install --reinstall dataset-fashion-mnist)"),
        )
    })?;
    Ok(out)
}

fn read_fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn be_u32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// Parse IDX image content (magic 0x00000803, n x 28 x 28 unsigned bytes).
pub fn parse_images(content: &[u8]) -> std::result::Result<Vec<u8>, String> {
    if content.len() < 16 {
        return Err(format!(
            "too short for an IDX image file ({} bytes, the header alone is 16)",
            content.len()
        ));
    }
    let magic = be_u32(&content[0..4]);
    if magic != 0x0803 {
        return Err(format!(
            "wrong magic number 0x{magic:08x} (an IDX image file starts with 0x00000803)"
        ));
    }
    let (n, rows, cols) = (be_u32(&content[4..8]), be_u32(&content[8..12]), be_u32(&content[12..16]));
    if rows != SIDE || cols != SIDE {
        return Err(format!(
            "images are {rows}x{cols}, expected {SIDE}x{SIDE}"
        ));
    }
    if n > MAX_ITEMS {
        return Err(format!("header claims {n} images, more than the limit of {MAX_ITEMS}"));
    }
    let expected = 16 + n * PIXELS;
    if content.len() < expected {
        return Err(format!(
            "truncated: the header says {n} images ({expected} bytes) but the content has {} bytes",
            content.len()
        ));
    }
    if content.len() > expected {
        return Err(format!(
            "{} bytes of trailing data after {n} images",
            content.len() - expected
        ));
    }
    Ok(content[16..].to_vec())
}

/// Parse IDX label content (magic 0x00000801, n unsigned bytes in 0..=9).
pub fn parse_labels(content: &[u8]) -> std::result::Result<Vec<u8>, String> {
    if content.len() < 8 {
        return Err(format!(
            "too short for an IDX label file ({} bytes, the header alone is 8)",
            content.len()
        ));
    }
    let magic = be_u32(&content[0..4]);
    if magic != 0x0801 {
        return Err(format!(
            "wrong magic number 0x{magic:08x} (an IDX label file starts with 0x00000801)"
        ));
    }
    let n = be_u32(&content[4..8]);
    if n > MAX_ITEMS {
        return Err(format!("header claims {n} labels, more than the limit of {MAX_ITEMS}"));
    }
    let body = &content[8..];
    if body.len() < n {
        return Err(format!(
            "truncated: the header says {n} labels but the content has {}",
            body.len()
        ));
    }
    if body.len() > n {
        return Err(format!("{} bytes of trailing data after {n} labels", body.len() - n));
    }
    if let Some((i, &l)) = body.iter().enumerate().find(|&(_, &l)| l as usize >= NUM_CLASSES) {
        return Err(format!("label {l} at index {i} is out of range (labels are 0-9)"));
    }
    Ok(body.to_vec())
}

fn check_sum(path: &Path, content: &[u8], file: &IdxFile) -> Result<()> {
    let got = Sha256::digest(content);
    let got: String = got.iter().map(|b| format!("{b:02x}")).collect();
    if got != file.sha256 {
        return Err(Error::data(
            path,
            format!(
                "content is not the official Fashion-MNIST {} (SHA-256 {}, expected {}); replace the file, or pass --skip-checksum if this is your own IDX data",
                file.name,
                &got[..16],
                &file.sha256[..16]
            ),
        ));
    }
    Ok(())
}

fn load_file(dir: &Path, file: &IdxFile, verify: bool, images: bool) -> Result<(PathBuf, Vec<u8>)> {
    let path = find_file(dir, file).ok_or_else(|| missing_in(dir, "the data folder"))?;
    let limit = if images {
        (16 + MAX_ITEMS * PIXELS) as u64
    } else {
        (8 + MAX_ITEMS) as u64
    };
    let content = read_content(&path, limit)?;
    if content.is_empty() {
        return Err(Error::data(
            &path,
            "is empty; replace it with the IDX file (re-download, or apt-get install dataset-fashion-mnist)",
        ));
    }
    let parsed = if images {
        parse_images(&content)
    } else {
        parse_labels(&content)
    }
    .map_err(|m| Error::data(&path, format!("{m}; replace the file with a valid IDX file")))?;
    // The format is checked first so a malformed file gets the precise message; the checksum
    // then catches well-formed but foreign content.
    if verify {
        check_sum(&path, &content, file)?;
    }
    Ok((path, parsed))
}

fn load_split(dir: &Path, images: &IdxFile, labels: &IdxFile, verify: bool) -> Result<Split> {
    let (ipath, images) = load_file(dir, images, verify, true)?;
    let (lpath, labels) = load_file(dir, labels, verify, false)?;
    let n_images = images.len() / PIXELS;
    if n_images != labels.len() {
        return Err(Error::data(
            &lpath,
            format!(
                "has {} labels but {} has {n_images} images; use matching files",
                labels.len(),
                ipath.display()
            ),
        ));
    }
    if n_images == 0 {
        return Err(Error::data(&ipath, "holds no images; use a non-empty IDX file"));
    }
    Ok(Split { images, labels })
}

/// Read and validate the four files in `dir`. `verify`: check the pinned SHA-256 sums.
pub fn load(dir: &Path, verify: bool) -> Result<FashionMnist> {
    let train = load_split(dir, &TRAIN_IMAGES, &TRAIN_LABELS, verify)?;
    let test = load_split(dir, &TEST_IMAGES, &TEST_LABELS, verify)?;
    Ok(FashionMnist {
        train,
        test,
        dir: dir.to_path_buf(),
    })
}

/// Read only the test split (eval, predict).
pub fn load_test(dir: &Path, verify: bool) -> Result<Split> {
    load_split(dir, &TEST_IMAGES, &TEST_LABELS, verify)
}

/// IDX bytes for images (used by tests and by the generator of synthetic data).
pub fn encode_images(images: &[u8]) -> Vec<u8> {
    let n = images.len() / PIXELS;
    let mut out = Vec::with_capacity(16 + images.len());
    for v in [0x0803u32, n as u32, SIDE as u32, SIDE as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(images);
    out
}

/// IDX bytes for labels.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&0x0801u32.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

/// A learnable synthetic data set of Fashion-MNIST's shape: each class is a distinct blob
/// pattern plus noise. Used by tests and by `bench` when the real data is absent.
pub fn synthetic(n: usize, seed: u64) -> Split {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut images = vec![0u8; n * PIXELS];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let label = rng.random_range(0..NUM_CLASSES as u8);
        labels.push(label);
        let img = &mut images[i * PIXELS..(i + 1) * PIXELS];
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

/// Write a split as the IDX files `prefix`-images-idx3-ubyte / -labels-idx1-ubyte (gzip if `gz`).
pub fn write_idx_pair(dir: &Path, images: &IdxFile, labels: &IdxFile, split: &Split, gz: bool) -> Result<()> {
    let write = |file: &IdxFile, bytes: Vec<u8>| -> Result<()> {
        let (name, bytes) = if gz {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&bytes).and_then(|_| enc.finish()).map(|b| (format!("{}.gz", file.name), b))
                .map_err(|e| Error::io("cannot compress", dir.join(file.name), e))?
        } else {
            (file.name.to_string(), bytes)
        };
        let path = dir.join(name);
        crate::fsutil::atomic_write(&path, &bytes).map_err(|e| Error::io("cannot write", &path, e))
    };
    write(images, encode_images(&split.images))?;
    write(labels, encode_labels(&split.labels))
}

/// Write a whole synthetic data set (train and test) into `dir`.
pub fn write_synthetic(dir: &Path, n_train: usize, n_test: usize, seed: u64, gz: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    write_idx_pair(dir, &TRAIN_IMAGES, &TRAIN_LABELS, &synthetic(n_train, seed), gz)?;
    write_idx_pair(dir, &TEST_IMAGES, &TEST_LABELS, &synthetic(n_test, seed ^ 0x5eed), gz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_plain_and_gzip() {
        for gz in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            write_synthetic(dir.path(), 50, 20, 1, gz).unwrap();
            let d = load(dir.path(), false).unwrap();
            assert_eq!(d.train.len(), 50);
            assert_eq!(d.test.len(), 20);
            assert_eq!(d.train.images.len(), 50 * PIXELS);
            assert!(d.train.labels.iter().all(|&l| l < 10));
        }
    }

    #[test]
    fn synthetic_is_deterministic() {
        let a = synthetic(10, 3);
        let b = synthetic(10, 3);
        assert_eq!(a.images, b.images);
        assert_eq!(a.labels, b.labels);
    }

    #[test]
    fn checksum_rejects_foreign_content_unless_skipped() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 10, 10, 1, false).unwrap();
        let e = load(dir.path(), true).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte"), "{e}");
        assert!(e.contains("--skip-checksum"), "{e}");
        assert!(load(dir.path(), false).is_ok());
    }

    #[test]
    fn image_rejections() {
        let good = encode_images(&vec![0u8; 2 * PIXELS]);
        assert!(parse_images(&good).is_ok());
        let mut bad_magic = good.clone();
        bad_magic[3] = 0x01;
        assert!(parse_images(&bad_magic).unwrap_err().contains("magic"));
        assert!(parse_images(&good[..16 + PIXELS + 5]).unwrap_err().contains("truncated"));
        assert!(parse_images(&good[..10]).unwrap_err().contains("too short"));
        let mut big = good.clone();
        big.extend_from_slice(&[1, 2, 3]);
        assert!(parse_images(&big).unwrap_err().contains("trailing"));
        // 32x32 images
        let mut wrong_dims = Vec::new();
        for v in [0x0803u32, 1, 32, 32] {
            wrong_dims.extend_from_slice(&v.to_be_bytes());
        }
        wrong_dims.extend_from_slice(&[0u8; 1024]);
        assert!(parse_images(&wrong_dims).unwrap_err().contains("32x32"));
    }

    #[test]
    fn a_lying_header_is_an_error_not_an_allocation() {
        let mut lie = Vec::new();
        for v in [0x0803u32, 4_000_000_000, 28, 28] {
            lie.extend_from_slice(&v.to_be_bytes());
        }
        lie.extend_from_slice(&[0u8; 84]);
        assert!(parse_images(&lie).is_err());
        let mut lie = Vec::new();
        for v in [0x0801u32, 4_000_000_000] {
            lie.extend_from_slice(&v.to_be_bytes());
        }
        assert!(parse_labels(&lie).is_err());
    }

    #[test]
    fn label_rejections() {
        assert!(parse_labels(&encode_labels(&[0, 9, 3])).is_ok());
        assert!(parse_labels(&encode_labels(&[0, 10])).unwrap_err().contains("label 10"));
        let mut short = encode_labels(&[1, 2, 3]);
        short.pop();
        assert!(parse_labels(&short).unwrap_err().contains("truncated"));
        let mut bad = encode_labels(&[1]);
        bad[3] = 3;
        assert!(parse_labels(&bad).unwrap_err().contains("magic"));
    }

    #[test]
    fn count_mismatch_names_the_label_file() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 10, 10, 1, false).unwrap();
        std::fs::write(dir.path().join(TRAIN_LABELS.name), encode_labels(&[1; 9])).unwrap();
        let e = load(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains("train-labels-idx1-ubyte") && e.contains("9 labels"), "{e}");
    }

    #[test]
    fn corrupt_gzip_and_directories_are_named() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 10, 10, 1, true).unwrap();
        let p = dir.path().join("train-images-idx3-ubyte.gz");
        let mut bytes = std::fs::read(&p).unwrap();
        let mid = bytes.len() / 2;
        for b in &mut bytes[12..mid] {
            *b ^= 0x5a;
        }
        std::fs::write(&p, bytes).unwrap();
        let e = load(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte.gz"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 10, 10, 1, false).unwrap();
        std::fs::remove_file(dir.path().join(TEST_LABELS.name)).unwrap();
        std::fs::create_dir(dir.path().join(TEST_LABELS.name)).unwrap();
        let e = load(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
    }

    #[test]
    fn locate_prefers_the_flag_and_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 10, 10, 1, false).unwrap();
        assert_eq!(
            locate(Some(dir.path())).unwrap(),
            Some(Source::Flag(dir.path().to_path_buf()))
        );
        std::fs::remove_file(dir.path().join(TEST_IMAGES.name)).unwrap();
        let e = locate(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("t10k-images-idx3-ubyte"), "{e}");
    }

    /// The pinned sums are those of the real data (CI installs it; so must a developer).
    #[test]
    fn the_system_copy_matches_the_pinned_checksums() {
        let d = load(Path::new(SYSTEM_DIR), true)
            .expect("needs Debian's package: apt-get install dataset-fashion-mnist");
        assert_eq!(d.train.len(), 60_000);
        assert_eq!(d.test.len(), 10_000);
    }
}
