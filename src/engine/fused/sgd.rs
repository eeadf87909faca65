//! The SGD step in one pass (for `train::optim`): the plain `w - lr * g`, and Burn's `Sgd` with
//! momentum and weight decay, whose state stays Burn's `SgdState` (checkpoints keep its format).

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, Flex, backend_extension};
use burn::optim::momentum::MomentumState;
use burn::optim::{RecordState, SgdState, StateSink};
use burn::tensor::{DType, Tensor, TensorData};
use burn_flex::FlexTensor;

use super::{contiguous_values, tensor};
use crate::engine::kernel::{self, SgdRule};

#[backend_extension(Flex)]
pub trait FusedSgd: Backend {
    /// `w - lr * g`, reusing `w`'s memory when nothing else holds it.
    fn sgd_update(w: FloatTensor<Self>, g: FloatTensor<Self>, lr: f64) -> FloatTensor<Self>;

    /// One step of `rule` from the velocity `v_old` (`None` on the first step): the new weights
    /// and the new velocity (the gradient itself, unused, without momentum).
    fn sgd_rule_update(w: FloatTensor<Self>, g: FloatTensor<Self>, v_old: Option<Vec<f32>>, rule: SgdRule) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// Whether [`sgd_update`] runs on this parameter: `f32`, on the plain flex device (an optimizer
/// works on parameters without their autodiff graph).
pub fn sgd_available<const D: usize>(w: &Tensor<D>, g: &Tensor<D>) -> bool {
    let flex = |t: &Tensor<D>| t.dtype() == DType::F32 && matches!(t.device().as_dispatch(), DispatchDevice::Flex(_));
    flex(w) && flex(g) && w.shape() == g.shape()
}

/// One plain SGD step for one parameter (see [`sgd_available`]).
pub fn sgd_update<const D: usize>(w: Tensor<D>, g: Tensor<D>, lr: f64) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedSgd>::sgd_update(w.into_dispatch(), g.into_dispatch(), lr))
}

/// One step of `rule` for one parameter, from and to Burn's `SgdState` (see [`sgd_available`]).
pub fn sgd_rule_update<const D: usize>(w: Tensor<D>, g: Tensor<D>, state: Option<SgdState<D>>, rule: SgdRule) -> (Tensor<D>, SgdState<D>) {
    let v_old = state.and_then(|s| s.momentum).map(velocity);
    let (w, v) = <Dispatch as FusedSgd>::sgd_rule_update(w.into_dispatch(), g.into_dispatch(), v_old, rule);
    let momentum = rule.momentum.map(|_| MomentumState::new(Tensor::from_dispatch(v)));
    (Tensor::from_dispatch(w), SgdState::new(momentum))
}

/// The velocity a momentum state holds, read through its public record (Burn keeps the field
/// private).
fn velocity<const D: usize>(state: MomentumState<D>) -> Vec<f32> {
    let mut sink = StateSink::default();
    state.state_flatten("", &mut sink);
    let (_, data): (String, TensorData) = sink.tensors.pop().expect("a momentum state records its velocity");
    data.convert::<f32>().try_into_vec::<f32>().expect("an f32 velocity")
}

impl FusedSgd for Flex {
    fn sgd_rule_update(w: FlexTensor, g: FlexTensor, v_old: Option<Vec<f32>>, rule: SgdRule) -> (FlexTensor, FlexTensor) {
        let shape = w.layout().shape().to_vec();
        let mut g = contiguous_values(g);
        let mut w = contiguous_values(w);
        kernel::sgd_rule_step(&mut w, &mut g, v_old.as_deref(), rule);
        (tensor(w, shape.clone()), tensor(g, shape))
    }

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
