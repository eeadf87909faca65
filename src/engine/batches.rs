//! Buffers of rows (a batch's images) filled in blocks by the team: now, on this thread and the
//! helpers ([`fill_rows`]), or posted for the helpers to fill while they would otherwise wait
//! ([`Prefilled`]). The rows start uninitialised (zeroing them first would be a pass of its
//! own); a [`RowWriter`] hands each block only its own rows, one whole row at a time, and
//! counts them, so no row can be read before it is written.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Arc;

use super::team::{self, Ahead, Chunks};

/// Writes the rows of one block, in order, each in full.
pub struct RowWriter<'a> {
    out: &'a mut [MaybeUninit<f32>],
    width: usize,
    written: usize,
}

impl<'a> RowWriter<'a> {
    fn new(out: &'a mut [MaybeUninit<f32>], width: usize) -> Self {
        Self { out, width, written: 0 }
    }

    /// The next row: `bytes[i] as f32 * scale` (one byte per value of the row).
    pub fn push_scaled(&mut self, bytes: &[u8], scale: f32) {
        assert_eq!(bytes.len(), self.width, "one byte per value of the row");
        let at = self.written * self.width;
        let row = &mut self.out[at..at + self.width];
        // Slice to slice, so the conversion compiles to vector instructions.
        for (dst, &b) in row.iter_mut().zip(bytes) {
            dst.write(b as f32 * scale);
        }
        self.written += 1;
    }

    /// The next `n` rows, `row(0)` to `row(n - 1)`, each [`RowWriter::push_scaled`], with the
    /// rows a few ahead asked of main memory early: rows gathered from all over a large buffer
    /// (a shuffled batch's images) each began with a wait on memory.
    pub fn push_gathered<'b>(&mut self, n: usize, row: impl Fn(usize) -> &'b [u8], scale: f32) {
        for k in 0..n {
            if k + AHEAD < n {
                prefetch(row(k + AHEAD));
            }
            self.push_scaled(row(k), scale);
        }
    }

    /// Every row of the block written: checked before the buffer is taken as initialised.
    fn assert_full(&self) {
        let rows = self.out.len() / self.width.max(1);
        assert_eq!(self.written, rows, "a block of {rows} rows was handed back with {} written", self.written);
    }
}

/// How many rows ahead [`RowWriter::push_gathered`] asks for.
const AHEAD: usize = 4;

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

/// Run `fill` for the rows of block `b` of a buffer cut into blocks of `block` rows of `width`
/// values: the block's own chunk, which no other block can reach.
fn fill_block<F: Fn(Range<usize>, &mut RowWriter)>(chunks: &Chunks<MaybeUninit<f32>>, b: usize, block: usize, width: usize, fill: &F) {
    let out = chunks.take(b);
    let lo = b * block;
    let rows = lo..lo + out.len() / width.max(1);
    let mut writer = RowWriter::new(out, width);
    fill(rows, &mut writer);
    writer.assert_full();
}

/// `rows` rows of `width` values, `fill(range, writer)` writing the rows `range`, now: on this thread alone, or (`on_team`) on
/// this thread and the helpers, one block per thread as the first layer's product splits its
/// rows (each thread then usually multiplies the images it just wrote, still in its own cache).
pub fn fill_rows(rows: usize, width: usize, on_team: bool, fill: impl Fn(Range<usize>, &mut RowWriter) + Sync) -> Vec<f32> {
    let mut values: Vec<f32> = Vec::with_capacity(rows * width);
    let per_thread = if on_team { team::width() } else { 1 };
    let block = rows.div_ceil(per_thread).max(1);
    let chunks = Chunks::new(&mut values.spare_capacity_mut()[..rows * width], block * width);
    let one = |b: usize| fill_block(&chunks, b, block, width, &fill);
    let blocks = chunks.count();
    if on_team { team::run(blocks, &one) } else { (0..blocks).for_each(one) }
    // SAFETY: the chunks cover every row and each block checked that it wrote all of its rows
    // (a block that did not panicked, and the panic reached here before this line).
    unsafe { values.set_len(rows * width) };
    values
}

/// Rows posted for the helpers to fill ahead, in blocks of `block` rows. Owns the buffer: it is
/// handed out ([`Prefilled::take`]) or freed only once every block is done.
pub struct Prefilled {
    work: Arc<Ahead>,
    values: Vec<f32>,
    len: usize,
}

impl Prefilled {
    /// Post `fill` for `rows` rows of `width` values; `None` where this thread has no idle
    /// helpers to post to (one thread, or other work is posted): then fill them in place.
    pub fn post(rows: usize, width: usize, block: usize, fill: impl Fn(Range<usize>, &mut RowWriter) + Send + Sync + 'static) -> Option<Self> {
        let block = block.max(1);
        let mut values: Vec<f32> = Vec::with_capacity(rows * width);
        let spare = &mut values.spare_capacity_mut()[..rows * width];
        // SAFETY: lifetime extension only: the buffer lives on the heap, owned by the
        // `Prefilled` built right below (no step in between can fail), whose `take` and `Drop`
        // wait for every block, and nothing else touches it meanwhile.
        let spare: &'static mut [MaybeUninit<f32>] = unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr(), spare.len()) };
        let chunks = Chunks::new(spare, block * width);
        let blocks = chunks.count();
        let one = move |b: usize| fill_block(&chunks, b, block, width, &fill);
        // SAFETY: the blocks write only through `chunks`, valid until the `Prefilled` has waited
        // for them (above).
        let work = unsafe { Ahead::post(blocks, Box::new(one)) }?;
        Some(Prefilled { work, values, len: rows * width })
    }

    /// The rows, once every block is done (what is left is done now, here and on the team).
    /// A panic in a block is raised here.
    pub fn take(mut self) -> Vec<f32> {
        self.work.finish();
        let mut values = std::mem::take(&mut self.values);
        // SAFETY: every block finished without a panic, and each checked that it wrote all its rows.
        unsafe { values.set_len(self.len) };
        values
    }
}

impl Drop for Prefilled {
    fn drop(&mut self) {
        // Dropped before it was taken (an epoch ended early): the helpers may still be writing.
        self.work.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(rows: usize, width: usize) -> Vec<u8> {
        (0..rows * width).map(|i| (i * 7 % 256) as u8).collect()
    }

    fn by_rows(src: Arc<Vec<u8>>, width: usize) -> impl Fn(Range<usize>, &mut RowWriter) + Send + Sync + 'static {
        move |range: Range<usize>, w: &mut RowWriter| {
            for r in range {
                w.push_scaled(&src[r * width..(r + 1) * width], 0.5);
            }
        }
    }

    #[test]
    fn rows_filled_now_or_ahead_hold_every_value() {
        let (rows, width) = (37, 5);
        let src = Arc::new(source(rows, width));
        let want: Vec<f32> = src.iter().map(|&b| b as f32 * 0.5).collect();
        assert_eq!(fill_rows(rows, width, false, by_rows(src.clone(), width)), want);
        assert_eq!(fill_rows(rows, width, true, by_rows(src.clone(), width)), want);
        let got = match Prefilled::post(rows, width, 4, by_rows(src.clone(), width)) {
            Some(posted) => posted.take(),
            None => fill_rows(rows, width, true, by_rows(src, width)),
        };
        assert_eq!(got, want);
    }

    #[test]
    fn a_block_that_skips_a_row_is_refused_not_read() {
        let short = |range: Range<usize>, w: &mut RowWriter| {
            for _ in range.skip(1) {
                w.push_scaled(&[1, 2], 1.0);
            }
        };
        let caught = std::panic::catch_unwind(|| fill_rows(3, 2, false, short));
        assert!(caught.is_err(), "a block with a row left unwritten must not be handed out");
    }
}
