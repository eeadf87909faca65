//! The number of right answers in a batch, counted where flex keeps the logits (for the
//! accuracy metric, `model::output`).

use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Int, Tensor, TensorData};
use burn_flex::FlexTensor;

use super::{labels, rows_of, view};
use crate::engine::kernel;

#[backend_extension(Flex, Autodiff)]
pub trait FusedCount: Backend {
    /// `[1]`: how many rows of `logits` `[b, c]` have their largest value at `targets` `[b]`.
    fn fused_count_correct(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> IntTensor<Self>;
}

/// See [`FusedCount`]; `logits` on the flex device (`engine::ops` decides).
pub fn count_correct(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1, Int> {
    Tensor::from_dispatch(<Dispatch as FusedCount>::fused_count_correct(logits.into_dispatch(), targets.into_dispatch()))
}

impl FusedCount for Flex {
    fn fused_count_correct(logits: FlexTensor, targets: FlexTensor) -> FlexTensor {
        count(&logits, &targets)
    }
}

impl<C: burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy> FusedCount for Autodiff<Flex, C> {
    fn fused_count_correct(logits: FloatTensor<Self>, targets: FlexTensor) -> FlexTensor {
        // A count has no gradient: read the values, record nothing.
        count(logits.primitive(), &targets)
    }
}

fn count(logits: &FlexTensor, targets: &FlexTensor) -> FlexTensor {
    let classes = logits.layout().shape()[1];
    // Read in place: the logits are shared (the autodiff graph keeps them).
    let values = rows_of(view(logits));
    let n = kernel::count_correct(&values, classes, labels(targets).iter().copied());
    let dtype = if targets.dtype() == DType::I32 { DType::I32 } else { DType::I64 };
    FlexTensor::from_data(TensorData::new(vec![n as i64], [1]).convert_dtype(dtype))
}
