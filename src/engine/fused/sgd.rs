//! The plain SGD step, `w - lr * g`, in one pass (for `train::optim`).

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, Flex, backend_extension};
use burn::tensor::{DType, Tensor};
use burn_flex::FlexTensor;

use super::{contiguous_values, tensor};
use crate::engine::kernel;

#[backend_extension(Flex)]
pub trait FusedSgd: Backend {
    /// `w - lr * g`, reusing `w`'s memory when nothing else holds it.
    fn sgd_update(w: FloatTensor<Self>, g: FloatTensor<Self>, lr: f64) -> FloatTensor<Self>;
}

/// Whether [`sgd_update`] runs on this parameter: `f32`, on the plain flex device (an optimizer
/// works on parameters without their autodiff graph).
pub fn sgd_runs_on<const D: usize>(w: &Tensor<D>, g: &Tensor<D>) -> bool {
    let flex = |t: &Tensor<D>| t.dtype() == DType::F32 && matches!(t.device().as_dispatch(), DispatchDevice::Flex(_));
    flex(w) && flex(g) && w.shape() == g.shape()
}

/// One plain SGD step for one parameter (see [`sgd_runs_on`]).
pub fn sgd_update<const D: usize>(w: Tensor<D>, g: Tensor<D>, lr: f64) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedSgd>::sgd_update(w.into_dispatch(), g.into_dispatch(), lr))
}

impl FusedSgd for Flex {
    fn sgd_update(mut w: FlexTensor, g: FlexTensor, lr: f64) -> FlexTensor {
        let mut g = contiguous_values(g);
        let lr = lr as f32;
        let in_place = w.is_contiguous() && w.layout().start_offset() == 0;
        if let Some(values) = in_place.then(|| w.try_storage_mut::<f32>()).flatten() {
            kernel::sgd_step(values, &g, lr);
            return w;
        }
        // Shared (Burn's Learner clones the model for the optimizer step): one pass over the
        // gradient's memory, which the step owns, rather than a copy and then the update.
        let shape = w.layout().shape().to_vec();
        let values = match w.as_slice::<f32>() {
            Some(values) => {
                kernel::sgd_over_gradient(values, &mut g, lr);
                g
            }
            None => {
                let mut values = contiguous_values(w);
                kernel::sgd_step(&mut values, &g, lr);
                values
            }
        };
        tensor(values, shape)
    }
}
