//! Flex's fused operations, added through Burn's backend-extension point: a linear layer with
//! its activation, dropout, the cross-entropy, and the plain SGD step, each one operation (with
//! its own backward pass for autodiff) instead of several. The arithmetic lives in [`super::kernel`].
//!
//! One node instead of matmul, add and ReLU (or log-softmax and gather) saves passes over
//! memory, allocations and autodiff bookkeeping (what a pass costs: docs/performance.md, "The
//! measurements behind the fast path"). Each runs only where `engine::ops` sends it (the flex
//! device, `f32`, the switch on); Burn's counterpart is in `engine::reference`.

mod count;
mod dropout;
mod linear;
mod loss;
mod sgd;

use burn::backend::DispatchDevice;
use burn::tensor::{Device, TensorData};
use burn_flex::FlexTensor;

use super::kernel::View;

pub use count::count_correct;
pub use dropout::{dropout, mask_for};
pub use linear::linear;
pub use loss::cross_entropy;
pub use sgd::{sgd_runs_on, sgd_update};

/// Whether `device` is the flex device (plain or autodiff).
pub fn on_flex(device: &Device) -> bool {
    matches!(device.clone().without_autodiff().as_dispatch(), DispatchDevice::Flex(_))
}

/// A 2-D `f32` flex tensor as a strided view (flex's layouts are offset + strides; a negative
/// stride, from a flip, never reaches a linear layer here).
pub(super) fn view(t: &FlexTensor) -> View<'_> {
    let layout = t.layout();
    let (shape, strides) = (layout.shape(), layout.strides());
    assert!(shape.num_dims() == 2 && strides.iter().all(|&s| s >= 0), "fused linear: a 2-D matrix with non-negative strides");
    View {
        data: &t.storage::<f32>()[layout.start_offset()..],
        rows: shape[0],
        cols: shape[1],
        rs: strides[0] as usize,
        cs: strides[1] as usize,
    }
}

/// The values in row-major order, without a copy when the tensor already is that and unshared.
pub(super) fn contiguous_values(t: FlexTensor) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("the fused operations run on f32 tensors only (see `engine::ops`)")
}

/// A view's values in row-major order: borrowed when it already is that layout, else copied.
pub(super) fn rows_of(v: View<'_>) -> std::borrow::Cow<'_, [f32]> {
    let n = v.rows * v.cols;
    if v.cs == 1 && (v.rs == v.cols || v.rows <= 1) {
        std::borrow::Cow::Borrowed(&v.data[..n])
    } else {
        std::borrow::Cow::Owned((0..v.rows).flat_map(|r| (0..v.cols).map(move |c| v.data[r * v.rs + c * v.cs])).collect())
    }
}

/// An integer tensor's values as `i64`, borrowed when stored so. Flex keeps labels as `i32`, which
/// are widened; any other layout is read through its data.
pub(super) fn labels(t: &FlexTensor) -> std::borrow::Cow<'_, [i64]> {
    use std::borrow::Cow;
    if let Some(values) = t.as_slice::<i64>() {
        return Cow::Borrowed(values);
    }
    match t.as_slice::<i32>() {
        Some(values) => Cow::Owned(values.iter().map(|&v| i64::from(v)).collect()),
        None => Cow::Owned(t.clone().into_data().iter::<i64>().collect()),
    }
}

pub(super) fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}
