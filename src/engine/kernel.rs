//! The fused operations' CPU arithmetic on plain `f32` slices: `act(x @ w + b)` forward and its
//! three gradients backward, the cross-entropy and its gradient, and the SGD step.
//!
//! Why not Burn's own ops: flex's matmul asks `gemm` to parallelise each product internally,
//! which on few cores reaches well under what single-threaded products on each thread's own
//! rows reach (docs/performance.md), and allocates zeroed outputs. Here each thread runs `gemm` on its own rows,
//! the bias is the product's starting value, and ReLU (and its mask, backward) run on rows that
//! are still in that thread's cache. No allocation is zeroed first.

use gemm::Parallelism;

use super::team::{self, Chunks};
use super::vmath::{self, DropMask};

/// A matrix in a slice: element `(r, c)` is `data[r * rs + c * cs]`, strides non-negative.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A contiguous row-major `[rows, cols]` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "a [{rows}, {cols}] matrix needs {} values", rows * cols);
        Self { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// Rows `r0..r0 + n`, without copying.
    fn row_block(self, r0: usize, n: usize) -> Self {
        let start = r0 * self.rs;
        let data = if n == 0 { &self.data[..0] } else { &self.data[start..] };
        Self { data, rows: n, ..self }
    }

    /// The last element's index + 1: the slice must reach it (checked before any raw access).
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 { 0 } else { (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1 }
    }
}

/// Below this many multiply-adds a product runs on one thread: splitting costs more than it saves
/// (with spinning helpers, even the 256x256x10 products of the output layer gain from a split).
const SPLIT_MIN_MACS: usize = 1 << 18;

/// Products at most this wide run whole (see [`product_block_len`]).
const SPLIT_MIN_COLS: usize = 64;

/// Rows per block when `m` rows are split between `threads`: multiples of 8 rows (gemm's
/// register tiles stay whole in every block but the last), the last block at least 8 rows.
fn rows_per_block(m: usize, threads: usize) -> usize {
    if threads < 2 || m < 16 {
        return m.max(1);
    }
    let mut block = m.div_ceil(threads).div_ceil(8) * 8;
    while block < m && m - (m.div_ceil(block) - 1) * block < 8 {
        block += 8;
    }
    block.min(m)
}

/// Rows per block of an `m x n` product of `macs` multiply-adds on `threads` threads.
///
/// The bits must not depend on the thread count (a sweep worker has one, `train` all of them).
/// Each element's sum runs over `k` in chunks that gemm picks per call: from `k` alone for a
/// call wider than 64 columns and taller than 3 rows, but otherwise from the call's own shape
/// (a call at most 64 x 64 takes another chunk once `k` > 512, one of at most 256 outputs another
/// kernel). So only products wider than 64 are split, into blocks of at least 8 rows; smaller
/// ones, and products too small to gain, run whole. That rests on gemm's internals: Cargo.toml
/// pins its version, and a test (`gemm_sums_in_chunks_of_k_that_only_k_decides`) fails if
/// another version blocks the chapter's products otherwise.
fn product_block_len(m: usize, n: usize, macs: usize, threads: usize) -> usize {
    if macs < SPLIT_MIN_MACS || n <= SPLIT_MIN_COLS {
        return m.max(1);
    }
    rows_per_block(m, threads)
}

/// How a product's output is laid out in memory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    RowMajor,
    ColumnMajor,
}

/// `dst[m, n] = (if accumulate { dst } else { 0 }) + a @ b`, one thread, `dst` in `layout`.
///
/// # Safety
/// `dst` must be valid for `a.rows * b.cols` writes (and reads when `accumulate`).
unsafe fn gemm_into(dst: *mut f32, layout: Layout, a: View, b: View, accumulate: bool) {
    assert_eq!(a.cols, b.rows, "inner dimensions");
    assert!(a.extent() <= a.data.len() && b.extent() <= b.data.len(), "view outside its slice");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    let (dst_cs, dst_rs) = match layout {
        Layout::RowMajor => (1, n as isize),
        Layout::ColumnMajor => (m as isize, 1),
    };
    // SAFETY: the views were checked to lie in their slices; `dst` is the caller's promise.
    unsafe {
        gemm::gemm(
            m, n, k,
            dst, dst_cs, dst_rs, accumulate,
            a.data.as_ptr(), a.cs as isize, a.rs as isize,
            b.data.as_ptr(), b.cs as isize, b.rs as isize,
            1.0f32, 1.0f32, false, false, false,
            Parallelism::None,
        );
    }
}

/// `a @ b` as a new row-major matrix, `init` writing each output row block first (`None`: the
/// product overwrites) and `finish` running on each block after its product.
fn product(a: View, b: View, init: Option<&[f32]>, finish: impl Fn(&mut [f32]) + Sync) -> Vec<f32> {
    let (m, n) = (a.rows, b.cols);
    if m == 0 || n == 0 {
        return Vec::new();
    }
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    let block = product_block_len(m, n, m * n * a.cols, team::width());
    let blocks = Chunks::new(&mut out.spare_capacity_mut()[..m * n], block * n);
    team::run(blocks.count(), &|i| {
        let dst = blocks.take(i);
        if let Some(row) = init {
            dst.chunks_exact_mut(n).for_each(|r| {
                r.write_copy_of_slice(row);
            });
        }
        let rows = a.row_block(i * block, dst.len() / n);
        // SAFETY: `dst` holds the block's `rows * n` slots, and gemm writes every one of them
        // (reading back what `init` wrote first).
        unsafe { gemm_into(dst.as_mut_ptr().cast(), Layout::RowMajor, rows, b, init.is_some()) };
        // SAFETY: every slot of the block was written just above.
        finish(unsafe { dst.assume_init_mut() });
    });
    // SAFETY: the blocks cover all `m * n` slots and each was fully written.
    unsafe { out.set_len(m * n) };
    out
}

/// The activation a linear layer applies to its output, fused into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    Identity,
    Relu,
    Sigmoid,
    Tanh,
}

impl Act {
    /// The gradient through the activation, from the gradient `g` of its output `y`, rounded as
    /// Burn's backward ops round it.
    #[inline]
    pub fn backward(self, g: f32, y: f32) -> f32 {
        match self {
            Act::Identity => g,
            // A select, not a conditional store, so that it compiles to vector blends.
            Act::Relu => if relu_passes(y) { g } else { 0.0 },
            // Flex's `sigmoid_backward`: `g * s * (1 - s)`, left to right.
            Act::Sigmoid => g * y * (1.0 - y),
            // Burn's autodiff `tanh`: `g * (-(y * y) + 1)`, which rounds as `1 - y * y`.
            Act::Tanh => g * (1.0 - y * y),
        }
    }

    /// Whether the backward pass needs the forward's output.
    pub fn needs_output(self) -> bool {
        self != Act::Identity
    }
}

/// ReLU as Burn's flex backend defines it: NaN passes (a diverging unit stays visible in the
/// loss instead of turning into a dead one), every other value at or below zero becomes +0.0.
#[inline]
pub fn relu(v: f32) -> f32 {
    if v.is_nan() || v > 0.0 { v } else { 0.0 }
}

/// ReLU's backward mask, as Burn's: the gradient passes where the output is positive or NaN.
#[inline]
pub fn relu_passes(y: f32) -> bool {
    y.is_nan() || y > 0.0
}

/// The logistic function as flex computes it: `1 / (1 + e^-x)` for `x >= 0`, `e^x / (1 + e^x)`
/// below (neither overflows), NaN for NaN.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `act(x @ w + b)` as a row-major `[x.rows, w.cols]` matrix.
pub fn linear_forward(x: View, w: View, b: &[f32], act: Act) -> Vec<f32> {
    assert_eq!(b.len(), w.cols, "one bias per output");
    // The activation runs on each thread's block right after its product, while it is in cache.
    product(x, w, Some(b), |block| match act {
        Act::Identity => {}
        Act::Relu => block.iter_mut().for_each(|v| *v = relu(*v)),
        Act::Sigmoid => block.iter_mut().for_each(|v| *v = sigmoid(*v)),
        Act::Tanh => vmath::tanh_in_place(block),
    })
}

/// Which gradients the graph wants (a parent that needs none gets none computed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub x: bool,
    pub w: bool,
    pub b: bool,
}

/// The gradients of `y = act(x @ w + b)` given `dy`, each `None` when not wanted.
#[derive(Debug, Default)]
pub struct LinearGrads {
    pub x: Option<Vec<f32>>,
    pub w: Option<Vec<f32>>,
    pub b: Option<Vec<f32>>,
}

/// Backward of [`linear_forward`]. `y` is the forward's output (the activation's gradient is
/// computed from it, as Burn's backward ops do); `dy` is row-major `[x.rows, w.cols]`.
pub fn linear_backward(x: View, w: View, y: Option<&[f32]>, mut dy: Vec<f32>, act: Act, wanted: Wanted) -> LinearGrads {
    let (m, n) = (x.rows, w.cols);
    assert_eq!(dy.len(), m * n, "one gradient per output");
    if act.needs_output() {
        let y = y.expect("the activation's backward needs the forward output");
        assert_eq!(y.len(), dy.len(), "one output per gradient");
        through_activation(&mut dy, y, act);
    }
    let b = wanted.b.then(|| column_sums(&dy, n));
    let g = View::rows(&dy, m, n);
    let (w_grad, x_grad) = (|| weight_gradient(x, g), || product(g, w.t(), None, |_| {}));
    let (dw, dx) = if wanted.w && wanted.x && g.cols <= NARROW && team::width() > 1 {
        // The narrow weight gradient runs on one thread; the input gradient beside it on the
        // other, rather than after it. The input gradient is block 0, which the calling thread
        // usually takes: the layer below masks it next, on this thread, where its data is in
        // cache (measured: docs/performance.md).
        let (dw, dx) = (std::sync::OnceLock::new(), std::sync::OnceLock::new());
        team::run(2, &|i| {
            if i == 0 { dx.get_or_init(x_grad); } else { dw.get_or_init(w_grad); }
        });
        (dw.into_inner(), dx.into_inner())
    } else {
        (wanted.w.then(w_grad), wanted.x.then(x_grad))
    };
    LinearGrads { b, w: dw, x: dx }
}

/// `dy = act'(y) * dy` in place, on this thread: the input gradient of the layer above was
/// mostly computed here (see [`linear_backward`]), and for every activation this is one
/// vectorised pass.
fn through_activation(dy: &mut [f32], y: &[f32], act: Act) {
    // One loop per activation, each with its formula inlined, so each compiles to vector code.
    fn pass(dy: &mut [f32], y: &[f32], f: impl Fn(f32, f32) -> f32) {
        dy.iter_mut().zip(y).for_each(|(g, &y)| *g = f(*g, y));
    }
    match act {
        Act::Identity => {}
        Act::Relu => pass(dy, y, |g, y| Act::Relu.backward(g, y)),
        Act::Sigmoid => pass(dy, y, |g, y| Act::Sigmoid.backward(g, y)),
        Act::Tanh => pass(dy, y, |g, y| Act::Tanh.backward(g, y)),
    }
}

/// `x^T @ g`, the weight gradient, as a row-major `[x.cols, g.cols]` matrix.
///
/// For a narrow layer (the 10 outputs), `gemm` writing a row-major result only 10 wide fills a
/// fraction of its vector registers; written column-major (256 tall) it runs whole register
/// tiles, and one thread then beat two the other way, the small transpose included (figures in
/// docs/performance.md).
fn weight_gradient(x: View, g: View) -> Vec<f32> {
    let (rows, cols) = (x.cols, g.cols);
    if cols > NARROW || rows == 0 || cols == 0 {
        return product(x.t(), g, None, |_| {});
    }
    let mut columns: Vec<f32> = Vec::with_capacity(rows * cols);
    // SAFETY: `columns` has room for the `rows * cols` values the product writes, all of them.
    unsafe {
        gemm_into(columns.as_mut_ptr(), Layout::ColumnMajor, x.t(), g, false);
        columns.set_len(rows * cols);
    }
    (0..rows).flat_map(|r| columns[r..].iter().step_by(rows).copied()).collect()
}

/// Outputs at most this wide take [`weight_gradient`]'s column-major route.
const NARROW: usize = 16;

/// Per-row cross-entropy of `logits` (row-major, `classes` wide) against `targets`, and the
/// softmax probabilities the backward pass needs: `(losses, probabilities)`.
///
/// `loss = -((x[target] - max) - log(sum(exp(x - max))))`, Burn's `log_softmax`, `gather` and
/// `neg`, row by row: the maximum, the shifted exponentials, their sum, the normalisation and
/// the loss.
pub fn cross_entropy(logits: &[f32], classes: usize, targets: &[usize]) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(logits.len(), classes * targets.len(), "one row of logits per target");
    assert!(classes > 0, "at least one class");
    if let Some(t) = targets.iter().find(|&&t| t >= classes) {
        panic!("target {t} is not one of the {classes} classes");
    }
    let rows = targets.len();
    let (mut losses, mut probs) = (Vec::<f32>::with_capacity(rows), Vec::<f32>::with_capacity(rows * classes));
    // Rows split between the threads when there are enough: the exponentials, a library call
    // each, are most of the time. Rows are independent here, so any split gives the same bits.
    let block = if rows * classes < 1 << 10 { rows.max(1) } else { rows_per_block(rows, team::width()) };
    let loss_blocks = Chunks::new(&mut losses.spare_capacity_mut()[..rows], block);
    let prob_blocks = Chunks::new(&mut probs.spare_capacity_mut()[..rows * classes], block * classes);
    team::run(loss_blocks.count(), &|b| {
        let (loss_out, prob_out) = (loss_blocks.take(b), prob_blocks.take(b));
        for ((k, loss), slots) in loss_out.iter_mut().enumerate().zip(prob_out.chunks_exact_mut(classes)) {
            let r = b * block + k;
            let row = &logits[r * classes..(r + 1) * classes];
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            slots.iter_mut().zip(row).for_each(|(p, &x)| {
                p.write((x - max).exp());
            });
            // SAFETY: every slot of the row was written just above.
            let p = unsafe { slots.assume_init_mut() };
            let sum: f32 = p.iter().sum();
            p.iter_mut().for_each(|p| *p /= sum);
            // Burn's `-(log_softmax)[target]`, rounded in its order: a sure answer's loss of
            // zero is Burn's -0.0.
            loss.write(-((row[targets[r]] - max) - sum.ln()));
        }
    });
    // SAFETY: the blocks covered every row and wrote its loss and all its probabilities.
    unsafe {
        losses.set_len(rows);
        probs.set_len(rows * classes);
    }
    (losses, probs)
}

/// The gradient of [`cross_entropy`]'s losses with respect to the logits:
/// `(softmax - one_hot(target)) * dloss` per row.
pub fn cross_entropy_backward(mut probs: Vec<f32>, classes: usize, targets: &[usize], dloss: &[f32]) -> Vec<f32> {
    assert_eq!(probs.len(), classes * targets.len(), "one row per target");
    assert_eq!(dloss.len(), targets.len(), "one gradient per loss");
    for ((row, &t), &d) in probs.chunks_exact_mut(classes).zip(targets).zip(dloss) {
        row[t] -= 1.0;
        row.iter_mut().for_each(|v| *v *= d);
    }
    probs
}

/// Plain SGD, `w - lr * g` element by element, in one pass (Burn's `Sgd` makes two, each with
/// its own output): in place when `w` is writable, else into `out`.
pub fn sgd_step(w: &mut [f32], g: &[f32], lr: f32) {
    assert_eq!(w.len(), g.len(), "one gradient per weight");
    in_chunks(w, |lo, w| {
        // `w - g * lr`, rounded as Burn's `tensor - grad.mul_scalar(lr)` rounds it.
        w.iter_mut().zip(&g[lo..]).for_each(|(w, &g)| *w -= g * lr);
    });
}

/// [`sgd_step`] for a `w` that cannot be written: the result goes over the gradient `g`, which
/// the step consumes. Writing there rather than into new memory spares an 800 KB allocation and
/// the reads a fresh buffer's first writes cost (the gradient was just written, by this core).
pub fn sgd_over_gradient(w: &[f32], g: &mut [f32], lr: f32) {
    assert_eq!(w.len(), g.len(), "one gradient per weight");
    in_chunks(g, |lo, g| g.iter_mut().zip(&w[lo..]).for_each(|(g, &w)| *g = w - *g * lr));
}

/// Burn's dropout given the mask: `(x * m) * scale`, in place (a dropped infinity becomes NaN,
/// as `inf * 0` does in Burn's). Its backward is the same pass over the gradient with the
/// factors the other way round, `(g * scale) * m`: what Burn's two multiplications give.
pub fn dropout_in_place(v: &mut [f32], mask: DropMask, scale: f32, backward: bool) {
    in_chunks(v, |lo, part| vmath::dropout_pass(part, lo, mask, scale, backward));
}

/// `pass(offset, part)` over `v` in chunks, for the SGD step. The step is bound by memory
/// traffic, not arithmetic: a large buffer is split between the threads, so that each core
/// fetches its own part, and each core usually gets the part of the gradient that its half of
/// the product just wrote. A small one stays on this thread.
fn in_chunks(v: &mut [f32], pass: impl Fn(usize, &mut [f32]) + Sync) {
    let (n, threads) = (v.len(), team::width());
    let chunk = if n < 1 << 16 || threads == 1 { n.max(1) } else { n.div_ceil(threads).div_ceil(16) * 16 };
    let parts = Chunks::new(v, chunk);
    team::run(parts.count(), &|i| pass(i * chunk, parts.take(i)));
}

/// Sum over rows of a row-major matrix with `n` columns.
fn column_sums(a: &[f32], n: usize) -> Vec<f32> {
    let mut sums = vec![0.0f32; n];
    for row in a.chunks_exact(n) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
    sums
}

/// How many rows of `values` (`classes` per row) have their `argmax` at the row's label, as
/// Burn's `argmax` picks it (flex's and ndarray's alike): the first NaN of a row if it has one,
/// else the first of its largest values.
pub fn count_correct(values: &[f32], classes: usize, labels: impl IntoIterator<Item = i64>) -> usize {
    values
        .chunks_exact(classes.max(1))
        .zip(labels)
        .map(|(row, label)| {
            // Branch-free (a select per value): the comparisons are unpredictable. Once the best
            // is NaN nothing replaces it.
            let (mut best, mut max) = (0, f32::NEG_INFINITY);
            for (c, &v) in row.iter().enumerate() {
                let more = !max.is_nan() && (v > max || v.is_nan());
                best = if more { c } else { best };
                max = if more { v } else { max };
            }
            usize::from(best as i64 == label)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::team::tests::with_width;

    #[test]
    fn counts_rows_whose_largest_value_is_the_label_first_maximum_on_ties() {
        let values = [0.1, 0.9, 0.0, /* */ 2.0, 1.0, 3.0, /* */ 0.5, 0.5, 0.1, /* */ -1.0, -2.0, -0.5];
        assert_eq!(count_correct(&values, 3, [1, 2, 0, 2]), 4);
        assert_eq!(count_correct(&values, 3, [0, 2, 1, 0]), 1);
        assert_eq!(count_correct(&[], 3, []), 0);
    }

    /// Row by row, the count takes the index Burn's `argmax` takes on flex: NaN anywhere in a row
    /// (the first NaN wins), infinities, ties, signed zeros, every value -inf.
    #[test]
    fn the_count_follows_burns_argmax_with_nan() {
        use burn::tensor::{Tensor, TensorData};
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        let rows: [[f32; 4]; 12] = [
            [nan, 1.0, 2.0, 3.0],
            [1.0, nan, 5.0, nan],
            [1.0, 2.0, 3.0, nan],
            [-inf, -inf, -inf, -inf],
            [-inf, nan, inf, 0.0],
            [inf, inf, 1.0, nan],
            [-0.0, 0.0, -0.0, 0.0],
            [0.0, -0.0, 0.0, -1.0],
            [2.0, 2.0, 1.0, 2.0],
            [-3.0, -1.0, -1.0, -2.0],
            [nan, nan, nan, nan],
            [1e-40, -1e-40, 0.0, 1e-45],
        ];
        let values: Vec<f32> = rows.iter().flatten().copied().collect();
        let logits = Tensor::<2>::from_data(TensorData::new(values.clone(), [rows.len(), 4]), &burn::tensor::Device::flex());
        let burns: Vec<i64> = logits.argmax(1).reshape([rows.len()]).into_data().convert::<i64>().try_to_vec().unwrap();
        assert_eq!(burns[..4], [0, 1, 3, 0], "Burn's argmax: the first NaN, else the first maximum");
        for (r, &b) in burns.iter().enumerate() {
            let row = &values[r * 4..(r + 1) * 4];
            for label in 0..4 {
                assert_eq!(count_correct(row, 4, [label]), usize::from(label == b), "row {r} {row:?}, label {label}: Burn's argmax is {b}");
            }
        }
    }

    fn naive(a: View, b: View) -> Vec<f32> {
        let mut out = vec![0.0f64; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                for k in 0..a.cols {
                    out[i * b.cols + j] += a.data[i * a.rs + k * a.cs] as f64 * b.data[k * b.rs + j * b.cs] as f64;
                }
            }
        }
        out.into_iter().map(|v| v as f32).collect()
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32).map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 201) as f32 / 100.0 - 1.0).collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "element {i}: {x} vs {y}");
        }
    }

    /// Shapes that split across threads (and a short last block) and shapes that do not.
    const SHAPES: [(usize, usize, usize); 4] = [(256, 784, 256), (100, 64, 10), (1, 784, 256), (203, 33, 96)];

    const ACTS: [Act; 4] = [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh];

    /// Each activation's definition, in f64.
    fn defined(act: Act, v: f32) -> f32 {
        let v = v as f64;
        (match act {
            Act::Identity => v,
            Act::Relu => v.max(0.0),
            Act::Sigmoid => 1.0 / (1.0 + (-v).exp()),
            Act::Tanh => v.tanh(),
        }) as f32
    }

    #[test]
    fn forward_matches_the_definition() {
        for (m, k, n) in SHAPES {
            let (xd, wd, b) = (values(m * k, 1), values(k * n, 2), values(n, 3));
            let (x, w) = (View::rows(&xd, m, k), View::rows(&wd, k, n));
            let pre: Vec<f32> = naive(x, w).chunks(n).flat_map(|r| r.iter().zip(&b).map(|(v, b)| v + b)).collect();
            for act in ACTS {
                let want: Vec<f32> = pre.iter().map(|&v| defined(act, v)).collect();
                close(&linear_forward(x, w, &b, act), &want);
            }
        }
    }

    /// Burn's own activation on flex and its autodiff gradient, from the gradient `dy` of its output.
    fn burns(act: Act, pre: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
        use burn::tensor::activation::{relu, sigmoid, tanh};
        use burn::tensor::{Device, Tensor, TensorData};
        let d = Device::flex().autodiff();
        let x = Tensor::<1>::from_data(TensorData::new(pre.to_vec(), [pre.len()]), &d).require_grad();
        let y = match act {
            Act::Identity => x.clone(),
            Act::Relu => relu(x.clone()),
            Act::Sigmoid => sigmoid(x.clone()),
            Act::Tanh => tanh(x.clone()),
        };
        let dy_t = Tensor::<1>::from_data(TensorData::new(dy.to_vec(), [dy.len()]), &d);
        let grads = y.clone().mul(dy_t).sum().backward();
        let read = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
        (read(y), read(x.grad(&grads).expect("a gradient")))
    }

    fn same_bits(what: &str, ours: &[f32], burns: &[f32], inputs: &[f32]) {
        for ((o, r), p) in ours.iter().zip(burns).zip(inputs) {
            assert_eq!(o.is_nan(), r.is_nan(), "{what}({p}): ours {o}, Burn's {r}");
            if !r.is_nan() {
                assert_eq!(o.to_bits(), r.to_bits(), "{what}({p}): ours {o:?}, Burn's {r:?}");
            }
        }
    }

    /// ReLU and sigmoid give Burn's bits, forward and backward; tanh's forward is within 2 ulp of
    /// Burn's (its special values exact) and its backward gives Burn's bits from Burn's output.
    #[test]
    fn activations_are_burns_with_nan_infinities_and_signed_zeros() {
        let mut pre = vec![f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e-40, -1e-40, 3.5, -3.5, 88.8, -104.0, 1e-7];
        pre.extend(values(2000, 21).iter().map(|v| v * 12.0));
        let n = pre.len();
        let mut dy = values(n, 22);
        dy[..4].copy_from_slice(&[f32::NAN, f32::INFINITY, -0.0, 1.0]);
        // x = [[1]], w = the values, bias -0.0: the pre-activations are the values themselves.
        let (xd, b) = (vec![1.0f32], vec![-0.0f32; n]);
        let (x, w) = (View::rows(&xd, 1, 1), View::rows(&pre, 1, n));
        assert!(same(&linear_forward(x, w, &b, Act::Identity), &pre));
        for act in [Act::Relu, Act::Sigmoid, Act::Tanh] {
            let (burn_y, burn_dx) = burns(act, &pre, &dy);
            let ours = linear_forward(x, w, &b, act);
            if act == Act::Tanh {
                for ((o, r), p) in ours.iter().zip(&burn_y).zip(&pre) {
                    let exact = !p.is_finite() || *p == 0.0;
                    let ulps = (o.to_bits() as i64 - r.to_bits() as i64).unsigned_abs();
                    assert!(if exact { o.to_bits() == r.to_bits() || (o.is_nan() && r.is_nan()) } else { ulps <= 2 }, "tanh({p}): ours {o:?}, Burn's {r:?}");
                }
            } else {
                same_bits(&format!("{act:?}"), &ours, &burn_y, &pre);
            }
            let mut grad = dy.clone();
            through_activation(&mut grad, &burn_y, act);
            same_bits(&format!("{act:?}'"), &grad, &burn_dx, &pre);
        }
    }

    fn same(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    #[test]
    fn forward_reads_strided_views() {
        let (m, k, n) = (64, 48, 32);
        let (xd, wd, b) = (values(m * k, 4), values(k * n, 5), vec![0.0; n]);
        // w stored as [n, k] and read transposed, as a layer stored the other way round would be.
        let wt: Vec<f32> = (0..n * k).map(|i| wd[(i % k) * n + i / k]).collect();
        let direct = linear_forward(View::rows(&xd, m, k), View::rows(&wd, k, n), &b, Act::Identity);
        close(&linear_forward(View::rows(&xd, m, k), View::rows(&wt, n, k).t(), &b, Act::Identity), &direct);
    }

    #[test]
    fn backward_matches_the_definition() {
        for (m, k, n) in SHAPES {
            let (xd, wd, b) = (values(m * k, 6), values(k * n, 7), values(n, 8));
            let (x, w) = (View::rows(&xd, m, k), View::rows(&wd, k, n));
            let dy = values(m * n, 9);
            for act in ACTS {
                let y = linear_forward(x, w, &b, act);
                let g: Vec<f32> = dy.iter().zip(&y).map(|(&g, &y)| match act {
                    Act::Identity => g,
                    Act::Relu => if y > 0.0 { g } else { 0.0 },
                    Act::Sigmoid => g * y * (1.0 - y),
                    Act::Tanh => g * (1.0 - y * y),
                }).collect();
                let gv = View::rows(&g, m, n);
                let all = Wanted { x: true, w: true, b: true };
                let got = linear_backward(x, w, Some(&y), dy.clone(), act, all);
                close(got.w.as_ref().unwrap(), &naive(x.t(), gv));
                close(got.x.as_ref().unwrap(), &naive(gv, w.t()));
                let db: Vec<f32> = (0..n).map(|j| (0..m).map(|i| g[i * n + j]).sum()).collect();
                close(got.b.as_ref().unwrap(), &db);
            }
        }
    }

    #[test]
    fn backward_computes_only_what_is_wanted() {
        let (xd, wd) = (values(8 * 4, 1), values(4 * 3, 2));
        let got = linear_backward(View::rows(&xd, 8, 4), View::rows(&wd, 4, 3), None, vec![1.0; 24], Act::Identity,
            Wanted { x: false, w: true, b: false });
        assert!(got.x.is_none() && got.b.is_none());
        assert_eq!(got.w.unwrap().len(), 12);
    }

    #[test]
    fn cross_entropy_matches_log_softmax_and_its_gradient() {
        let logits = [1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0, -50.0, 40.0, 0.5];
        let targets = [2usize, 0, 1];
        let (losses, probs) = cross_entropy(&logits, 3, &targets);
        for (i, row) in logits.chunks(3).enumerate() {
            let lse = row.iter().map(|&x| (x as f64).exp()).sum::<f64>().ln();
            assert!((losses[i] as f64 - (lse - row[targets[i]] as f64)).abs() < 1e-5, "row {i}");
        }
        let grad = cross_entropy_backward(probs, 3, &targets, &[1.0, 0.5, 2.0]);
        // Central differences of the loss of row 1 (weight 0.5) against its logits.
        for j in 0..3 {
            let mut up = logits;
            let mut down = logits;
            up[3 + j] += 1e-2;
            down[3 + j] -= 1e-2;
            let numeric = 0.5 * (cross_entropy(&up, 3, &targets).0[1] - cross_entropy(&down, 3, &targets).0[1]) / 2e-2;
            assert!((grad[3 + j] - numeric).abs() < 1e-3, "logit {j}: {} vs {numeric}", grad[3 + j]);
        }
        // A confident right answer has a loss and gradient near zero.
        assert!(losses[2] < 1e-6 && grad[6..].iter().all(|g| g.abs() < 1e-6));
    }

    /// Thread counts the split tests try, each forced on this thread ([`with_width`]) whatever
    /// the machine has: the work is cut as for that many threads.
    const WIDTHS: [usize; 7] = [2, 3, 4, 8, 13, 16, 64];

    #[test]
    fn split_work_gives_the_bits_one_thread_gives() {
        // The cross-entropy, split by rows on the team.
        let (logits, targets) = (values(256 * 10, 11).iter().map(|v| v * 8.0).collect::<Vec<_>>(), (0..256).map(|i| i % 10).collect::<Vec<_>>());
        let alone = with_width(1, || cross_entropy(&logits, 10, &targets));
        // The output layer's backward: both gradients of its products at once.
        let (xd, wd) = (values(256 * 256, 12), values(256 * 10, 13));
        let (x, w) = (View::rows(&xd, 256, 256), View::rows(&wd, 256, 10));
        let all = Wanted { x: true, w: true, b: true };
        let grads = || {
            let g = linear_backward(x, w, None, values(256 * 10, 15), Act::Identity, all);
            (g.x, g.w, g.b)
        };
        let one = with_width(1, grads);
        // The SGD step over a weight large enough to split, in place and over the gradient.
        let (w0, g0) = (values(200_003, 16), values(200_003, 17));
        let sgd = || {
            let (mut w, mut over) = (w0.clone(), g0.clone());
            sgd_step(&mut w, &g0, 0.1);
            sgd_over_gradient(&w0, &mut over, 0.1);
            (w, over)
        };
        let sgd_alone = with_width(1, sgd);
        for threads in WIDTHS {
            assert_eq!(with_width(threads, || cross_entropy(&logits, 10, &targets)), alone, "cross-entropy on {threads} threads");
            assert_eq!(with_width(threads, grads), one, "the output layer's gradients on {threads} threads");
            assert_eq!(with_width(threads, sgd), sgd_alone, "the SGD step on {threads} threads");
        }
    }

    #[test]
    fn dropout_keeps_its_share_the_same_on_any_thread_count_and_key_by_key() {
        let n = 1 << 20;
        for keep in [0.5, 0.8, 0.95] {
            let mask = DropMask::new(0x0123_4567_89ab_cdef, keep);
            let kept = (0..n).filter(|&i| mask.at(i) == 1.0).count() as f64 / n as f64;
            assert!((kept - keep).abs() < 0.002, "kept {kept} of the elements, asked {keep}");
        }
        let (a, b) = (DropMask::new(1, 0.5), DropMask::new(2, 0.5));
        let agree = (0..4096).filter(|&i| a.at(i) == b.at(i)).count();
        assert!((1800..2300).contains(&agree), "two keys agree on {agree} of 4096 elements");
        // In place split as for 2 to 64 threads and on one: the same bits, forward and backward.
        for backward in [false, true] {
            let v = values(300_001, 5);
            let mut alone = v.clone();
            with_width(1, || dropout_in_place(&mut alone, a, 1.25, backward));
            assert!(alone.iter().enumerate().all(|(i, &y)| (y == 0.0) == (a.at(i) == 0.0) || v[i] == 0.0));
            for threads in WIDTHS {
                let mut split = v.clone();
                with_width(threads, || dropout_in_place(&mut split, a, 1.25, backward));
                assert!(same(&split, &alone), "{threads} threads");
            }
        }
    }

    #[test]
    fn blocks_are_whole_rows_of_eight_and_the_last_is_never_tiny() {
        assert_eq!(rows_per_block(256, 1), 256);
        assert_eq!(rows_per_block(256, 2), 128);
        assert_eq!(rows_per_block(203, 2), 104);
        assert_eq!(rows_per_block(17, 2), 17, "a split would leave one row");
        for m in 16..600 {
            for t in 2..=16 {
                let b = rows_per_block(m, t);
                let last = m - (m.div_ceil(b) - 1) * b;
                assert!(b.is_multiple_of(8) || b == m, "{m} rows, {t} threads: {b}");
                assert!(last >= 8, "{m} rows, {t} threads: last block {last}");
            }
        }
        assert_eq!(product_block_len(256, 10, 1 << 30, 2), 256, "a narrow product runs whole");
        assert_eq!(product_block_len(256, 1000, 1000, 2), 256, "a small one too");
        assert_eq!(product_block_len(256, 256, 1 << 30, 2), 128);
    }

    /// Layer sizes of the chapter's recipes (config/*.toml, docs/performance.md's table).
    const LAYERS: [&[usize]; 5] = [&[784, 256, 10], &[784, 256, 256, 10], &[784, 256, 128, 64, 10], &[784, 16, 10], &[784, 1024, 10]];

    /// Batch sizes of those recipes, and the short last batches of 60,000 and 10,000 images.
    const BATCHES: [usize; 8] = [256, 96, 16, 32, 64, 1024, 608, 784];

    /// A product as a layer runs it: its operands' layouts and whether it starts from a bias.
    #[derive(Clone, Copy, Debug)]
    enum Kind {
        /// `x @ w + b`, both row-major.
        Forward,
        /// `g @ w^T`, the input gradient: `w` read transposed.
        InputGradient,
        /// `x^T @ g`, the weight gradient: `x` read transposed (outputs wider than [`NARROW`]).
        WeightGradient,
    }

    /// Every product of the chapter's recipes, `(kind, m, k, n)`, once each.
    fn chapter_products() -> Vec<(Kind, usize, usize, usize)> {
        let mut all = Vec::new();
        for layers in LAYERS {
            for b in BATCHES {
                for (l, w) in layers.windows(2).enumerate() {
                    let (d_in, d_out) = (w[0], w[1]);
                    all.push((Kind::Forward, b, d_in, d_out));
                    if l > 0 {
                        all.push((Kind::InputGradient, b, d_out, d_in));
                    }
                    if d_out > NARROW {
                        all.push((Kind::WeightGradient, d_in, b, d_out));
                    }
                }
            }
        }
        all.sort_by_key(|&(kind, m, k, n)| (kind as u8, m, k, n));
        all.dedup_by_key(|p| (p.0 as u8, p.1, p.2, p.3));
        all
    }

    /// Operands of one product, stored as the layer stores them, and the bias for a forward one.
    struct Operands {
        a: Vec<f32>,
        b: Vec<f32>,
        bias: Vec<f32>,
        kind: Kind,
        m: usize,
        k: usize,
        n: usize,
    }

    impl Operands {
        fn new(kind: Kind, m: usize, k: usize, n: usize) -> Self {
            Self { a: values(m * k, 3), b: values(k * n, 4), bias: values(n, 5), kind, m, k, n }
        }

        /// `(a, b)` as views of the product's `[m, k]` and `[k, n]` operands.
        fn views(&self) -> (View<'_>, View<'_>) {
            let (m, k, n) = (self.m, self.k, self.n);
            match self.kind {
                Kind::Forward => (View::rows(&self.a, m, k), View::rows(&self.b, k, n)),
                Kind::InputGradient => (View::rows(&self.a, m, k), View::rows(&self.b, n, k).t()),
                Kind::WeightGradient => (View::rows(&self.a, k, m).t(), View::rows(&self.b, k, n)),
            }
        }

        fn init(&self) -> Option<&[f32]> {
            matches!(self.kind, Kind::Forward).then_some(&self.bias[..])
        }

        /// The product as `product` computes it, split as for this thread's width.
        fn product(&self) -> Vec<f32> {
            let (a, b) = self.views();
            product(a, b, self.init(), |_| {})
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The guard of the thread-count promise: every product of the chapter's recipes, split as
    /// for 2 to 64 threads, gives the bits it gives whole on one thread.
    #[test]
    fn the_bits_of_a_product_do_not_depend_on_the_thread_count() {
        let mut split_somewhere = 0;
        for (kind, m, k, n) in chapter_products() {
            let ops = Operands::new(kind, m, k, n);
            let whole = bits(&with_width(1, || ops.product()));
            for threads in WIDTHS {
                let block = product_block_len(m, n, m * n * k, threads);
                split_somewhere += usize::from(block < m);
                let split = bits(&with_width(threads, || ops.product()));
                assert!(whole == split, "{kind:?} {m}x{k}x{n} on {threads} threads ({block}-row blocks) differs from one thread");
            }
        }
        assert!(split_somewhere > 300, "the products are split ({split_somewhere} times)");
    }

    /// Element `(i, j)` as gemm 0.19 sums it: over `k` in consecutive chunks of `chunk`, each
    /// summed from zero one fused multiply-add at a time, then added to the element in order
    /// (the first chunk replacing it unless the product starts from `init`).
    fn summed_in_chunks(a: View, b: View, init: Option<&[f32]>, i: usize, j: usize, chunk: usize) -> f32 {
        let mut dst = init.map(|bias| bias[j]);
        for start in (0..a.cols).step_by(chunk) {
            let mut acc = 0.0f32;
            for p in start..(start + chunk).min(a.cols) {
                acc = a.data[i * a.rs + p * a.cs].mul_add(b.data[p * b.rs + j * b.cs], acc);
            }
            dst = Some(dst.map_or(acc, |d| d + acc));
        }
        dst.unwrap_or(0.0)
    }

    /// What the thread-count promise takes from gemm, checked where it shows: for every product
    /// of the chapter's recipes that is ever split, whole and split as for 2 to 64 threads, each
    /// element (sampled: the rows at the edges of every block, a spread of columns) is the sum
    /// [`summed_in_chunks`] gives, with one chunk length for all products of the same `k`. A
    /// gemm whose blocking depends on the rows of a call, or sums otherwise, fails here
    /// (Cargo.toml pins gemm with `=`; bump it only with this test passing).
    #[test]
    fn gemm_sums_in_chunks_of_k_that_only_k_decides() {
        let mut chunk_of_k = std::collections::BTreeMap::new();
        for (kind, m, k, n) in chapter_products() {
            let blocks: Vec<(usize, usize)> = WIDTHS.iter().map(|&t| (t, product_block_len(m, n, m * n * k, t))).filter(|&(_, b)| b < m).collect();
            if blocks.is_empty() {
                continue; // always whole: the same call on every thread count
            }
            let ops = Operands::new(kind, m, k, n);
            let (a, b) = ops.views();
            let cols: Vec<usize> = [0, 1, 7, 8, 15, 16, n / 2, n - 2, n - 1].into_iter().filter(|&j| j < n).collect();
            let check = |got: &[f32], rows: &[usize], chunk: usize| {
                rows.iter().all(|&i| cols.iter().all(|&j| got[i * n + j].to_bits() == summed_in_chunks(a, b, ops.init(), i, j, chunk).to_bits()))
            };
            let whole = with_width(1, || ops.product());
            let edges = [0, 1, m / 2, m - 1];
            let chunk = *chunk_of_k.entry(k).or_insert_with(|| {
                (1..=8).map(|parts| k.div_ceil(parts)).find(|&c| check(&whole, &edges, c))
                    .unwrap_or_else(|| panic!("{kind:?} {m}x{k}x{n}: gemm no longer sums in equal chunks of k"))
            });
            assert!(check(&whole, &edges, chunk), "{kind:?} {m}x{k}x{n}: another chunk of k={k} than the other products'");
            for (threads, block) in blocks {
                let rows: Vec<usize> = (0..m).step_by(block).flat_map(|r| [r, r + 1, (r + block).min(m) - 1]).collect();
                let split = with_width(threads, || ops.product());
                assert!(check(&split, &rows, chunk), "{kind:?} {m}x{k}x{n} in {block}-row blocks: not summed in chunks of {chunk}");
            }
        }
        assert!(!chunk_of_k.is_empty());
    }
}
