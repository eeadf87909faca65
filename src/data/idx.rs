//! The IDX format (LeCun's MNIST files): one reader for any layout of unsigned bytes, used for
//! both images and labels, plus the matching writer and a gzip-aware, size-capped file read.

use std::io::Read;
use std::path::Path;

use super::SIDE;
use crate::error::{Error, Result};

/// Upper bound on items in one file; a header claiming more is rejected before any allocation.
pub const MAX_ITEMS: usize = 10_000_000;

/// The magic number's type byte for unsigned bytes (the only type Fashion-MNIST uses).
const UBYTE: u32 = 0x08;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The shape of one kind of IDX file: a count of items, each `item_dims` unsigned bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// What one item is called in messages ("image", "label").
    pub noun: &'static str,
    /// Dimensions of one item, after the leading count.
    pub item_dims: &'static [usize],
    /// Largest valid byte value (labels are class indices).
    pub max_value: u8,
}

pub const IMAGES: Layout = Layout { noun: "image", item_dims: &[SIDE, SIDE], max_value: u8::MAX };
pub const LABELS: Layout = Layout { noun: "label", item_dims: &[], max_value: 9 };

impl Layout {
    /// 0x00000803 for images (3 dimensions), 0x00000801 for labels.
    fn magic(&self) -> u32 {
        UBYTE << 8 | (1 + self.item_dims.len()) as u32
    }

    /// Magic, count, then one 32-bit size per item dimension.
    fn header_len(&self) -> usize {
        4 * (2 + self.item_dims.len())
    }

    fn item_len(&self) -> usize {
        self.item_dims.iter().product()
    }

    /// The largest content a valid file of this layout can have.
    pub fn max_content_len(&self) -> u64 {
        (self.header_len() + MAX_ITEMS * self.item_len()) as u64
    }
}

fn be_u32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// Check IDX `content` against `layout` (magic, dimensions, payload length, value range) and
/// return its payload. `path` only names the file in errors.
pub fn parse(layout: &Layout, content: &[u8], path: &Path) -> Result<Vec<u8>> {
    let fail = |msg: String| Error::data(path, format!("{msg}; replace the file with a valid IDX file"));
    let noun = layout.noun;
    let head = layout.header_len();
    if content.len() < head {
        let len = content.len();
        return Err(fail(format!("too short for an IDX {noun} file ({len} bytes, the header alone is {head})")));
    }
    let word = |i: usize| be_u32(&content[4 * i..4 * i + 4]);
    let magic = word(0);
    if magic != layout.magic() as usize {
        let want = layout.magic();
        return Err(fail(format!("wrong magic number 0x{magic:08x} (an IDX {noun} file starts with 0x{want:08x})")));
    }
    let dims: Vec<usize> = (2..2 + layout.item_dims.len()).map(word).collect();
    if dims != layout.item_dims {
        let show = |d: &[usize]| d.iter().map(usize::to_string).collect::<Vec<_>>().join("x");
        return Err(fail(format!("{noun}s are {}, expected {}", show(&dims), show(layout.item_dims))));
    }
    let n = word(1);
    if n > MAX_ITEMS {
        return Err(fail(format!("header claims {n} {noun}s, more than the limit of {MAX_ITEMS}")));
    }
    let body = &content[head..];
    let expected = n * layout.item_len();
    if body.len() < expected {
        let got = body.len();
        return Err(fail(format!("truncated: the header says {n} {noun}s ({expected} bytes) but the content has {got} bytes")));
    }
    if body.len() > expected {
        return Err(fail(format!("{} bytes of trailing data after {n} {noun}s", body.len() - expected)));
    }
    if let Some((i, &v)) = body.iter().enumerate().find(|&(_, &v)| v > layout.max_value) {
        let max = layout.max_value;
        return Err(fail(format!("{noun} {v} at index {i} is out of range ({noun}s are 0-{max})")));
    }
    Ok(body.to_vec())
}

/// Parse IDX image content (magic 0x00000803, n x 28 x 28 unsigned bytes).
pub fn parse_images(content: &[u8], path: &Path) -> Result<Vec<u8>> {
    parse(&IMAGES, content, path)
}

/// Parse IDX label content (magic 0x00000801, n unsigned bytes in 0..=9).
pub fn parse_labels(content: &[u8], path: &Path) -> Result<Vec<u8>> {
    parse(&LABELS, content, path)
}

/// IDX bytes for `items` (their count is `items.len()` / the item size).
pub fn encode(layout: &Layout, items: &[u8]) -> Vec<u8> {
    let n = items.len() / layout.item_len();
    let mut out = Vec::with_capacity(layout.header_len() + items.len());
    let words = [layout.magic(), n as u32].into_iter().chain(layout.item_dims.iter().map(|&d| d as u32));
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(items);
    out
}

/// IDX bytes for images (row-major 28x28 each).
pub fn encode_images(images: &[u8]) -> Vec<u8> {
    encode(&IMAGES, images)
}

/// IDX bytes for labels.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    encode(&LABELS, labels)
}

/// Read a whole file, decompressing gzip (detected by its magic bytes, not the name). At most
/// `limit` decompressed bytes are read, so a gzip bomb or lying header cannot exhaust memory.
pub fn read_content(path: &Path, limit: u64) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(Error::data(path, "is a folder where an IDX file should be; remove it or point --data-dir elsewhere"));
    }
    let mut file = std::fs::File::open(path)
        .map_err(|e| Error::data_with(path, "cannot open", e).fix("check the file and its permissions"))?;
    let mut magic = [0u8; 2];
    let n = read_fill(&mut file, &mut magic).map_err(|e| Error::data_with(path, "cannot read", e))?;
    let head = &magic[..n];
    let gzipped = head == GZIP_MAGIC;
    let chained = std::io::Cursor::new(head.to_vec()).chain(file);
    let mut out = Vec::new();
    let res = if gzipped {
        flate2::read::GzDecoder::new(chained).take(limit).read_to_end(&mut out)
    } else {
        chained.take(limit).read_to_end(&mut out)
    };
    res.map_err(|e| {
        let what = if gzipped { "corrupt gzip data" } else { "read error" };
        Error::data_with(path, what, e).fix("replace the file (re-download, or apt-get install --reinstall dataset-fashion-mnist)")
    })?;
    Ok(out)
}

/// Fill `buf` as far as the reader allows (a short file gives fewer bytes, not an error).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::PIXELS;

    fn err(r: Result<Vec<u8>>) -> String {
        let e = r.unwrap_err();
        assert!(matches!(e, Error::Data { .. }), "{e:?}");
        e.one_line()
    }

    fn images(content: &[u8]) -> Result<Vec<u8>> {
        parse_images(content, Path::new("imgs"))
    }

    fn labels(content: &[u8]) -> Result<Vec<u8>> {
        parse_labels(content, Path::new("lbls"))
    }

    #[test]
    fn round_trip() {
        let px: Vec<u8> = (0..2 * PIXELS).map(|i| i as u8).collect();
        assert_eq!(images(&encode_images(&px)).unwrap(), px);
        assert_eq!(labels(&encode_labels(&[0, 9, 3])).unwrap(), [0, 9, 3]);
        assert_eq!(&encode_images(&px)[..4], &[0, 0, 8, 3]);
        assert_eq!(&encode_labels(&[1])[..4], &[0, 0, 8, 1]);
    }

    #[test]
    fn image_rejections() {
        let good = encode_images(&vec![0u8; 2 * PIXELS]);
        let mut bad_magic = good.clone();
        bad_magic[3] = 0x01;
        let e = err(images(&bad_magic));
        assert!(e.starts_with("imgs: wrong magic number 0x00000801") && e.contains("0x00000803"), "{e}");
        assert!(err(images(&good[..16 + PIXELS + 5])).contains("truncated"));
        assert!(err(images(&good[..10])).contains("too short"));
        let mut big = good.clone();
        big.extend_from_slice(&[1, 2, 3]);
        assert!(err(images(&big)).contains("3 bytes of trailing data"));
        let mut wrong_dims = Vec::new();
        for v in [0x0803u32, 1, 32, 32] {
            wrong_dims.extend_from_slice(&v.to_be_bytes());
        }
        wrong_dims.extend_from_slice(&[0u8; 1024]);
        assert!(err(images(&wrong_dims)).contains("images are 32x32, expected 28x28"));
    }

    #[test]
    fn a_lying_header_is_an_error_not_an_allocation() {
        let mut lie = Vec::new();
        for v in [0x0803u32, 4_000_000_000, 28, 28] {
            lie.extend_from_slice(&v.to_be_bytes());
        }
        lie.extend_from_slice(&[0u8; 84]);
        assert!(err(images(&lie)).contains("more than the limit"));
        let mut lie = Vec::new();
        for v in [0x0801u32, 4_000_000_000] {
            lie.extend_from_slice(&v.to_be_bytes());
        }
        assert!(err(labels(&lie)).contains("4000000000 labels"));
    }

    #[test]
    fn label_rejections() {
        let e = err(labels(&encode_labels(&[0, 10])));
        assert!(e.contains("label 10 at index 1 is out of range (labels are 0-9)"), "{e}");
        let mut short = encode_labels(&[1, 2, 3]);
        short.pop();
        assert!(err(labels(&short)).contains("truncated"));
        let mut bad = encode_labels(&[1]);
        bad[3] = 3;
        assert!(err(labels(&bad)).contains("magic"));
    }

    #[test]
    fn gzip_is_detected_by_content_and_capped() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let bytes = encode_labels(&[1, 2, 3]);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        let p = dir.path().join("no-gz-suffix");
        std::fs::write(&p, enc.finish().unwrap()).unwrap();
        assert_eq!(read_content(&p, 1000).unwrap(), bytes);
        assert_eq!(read_content(&p, 5).unwrap(), &bytes[..5]);
        std::fs::write(&p, b"x").unwrap();
        assert_eq!(read_content(&p, 1000).unwrap(), b"x");
    }
}
