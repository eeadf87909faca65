//! Dropout as one operation with its own backward pass: `(x * m) * (1 / keep)` with the mask `m`
//! drawn from its position and a key ([`DropMask`]), so it is neither stored nor drawn one value
//! at a time from a serial generator (Burn's draws a float per element, on one thread).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{Device, Distribution, Tensor};
use burn_flex::FlexTensor;

use super::{contiguous_values, tensor};
use crate::engine::kernel;
use crate::engine::vmath::DropMask;

#[backend_extension(Flex, Autodiff)]
pub trait FusedDropout: Backend {
    /// `(x * m) * scale`, `m` the mask's 0 or 1 at each element's row-major position.
    fn fused_dropout(x: FloatTensor<Self>, mask: DropMask, scale: f32) -> FloatTensor<Self>;
}

/// Dropout with probability `prob` on a training step (on the flex autodiff device): each
/// element kept with probability `1 - prob` and scaled by `1 / (1 - prob)`, as Burn's `Dropout`
/// does. The mask's key is drawn from the device's generator, so a seeded run repeats.
pub fn dropout<const D: usize>(x: Tensor<D>, prob: f64) -> Tensor<D> {
    let mask = mask_for(&x.device(), prob);
    // Burn multiplies by `1.0 / prob_keep` computed in f64, then as the tensor's element type.
    let scale = (1.0 / (1.0 - prob)) as f32;
    Tensor::from_dispatch(<Dispatch as FusedDropout>::fused_dropout(x.into_dispatch(), mask, scale))
}

/// The mask of the next [`dropout`] on `device`: its key is one draw of two values from the
/// device's generator.
pub fn mask_for(device: &Device, prob: f64) -> DropMask {
    let key = Tensor::<1>::random([2], Distribution::Default, device).into_data();
    let halves = key.iter::<f32>().map(|v| u64::from(v.to_bits())).collect::<Vec<_>>();
    DropMask::new(halves[0] << 32 | halves[1], 1.0 - prob)
}

impl FusedDropout for Flex {
    fn fused_dropout(x: FlexTensor, mask: DropMask, scale: f32) -> FlexTensor {
        apply(x, mask, scale, false)
    }
}

impl<C: CheckpointStrategy> FusedDropout for Autodiff<Flex, C> {
    fn fused_dropout(x: FloatTensor<Self>, mask: DropMask, scale: f32) -> FloatTensor<Self> {
        match DropoutStep.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                // The backward pass needs only the mask and the scale, not the input.
                let y = apply(x.into_primitive(), mask, scale, false);
                prep.finish((mask, scale), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(apply(x.into_primitive(), mask, scale, false)),
        }
    }
}

#[derive(Debug)]
struct DropoutStep;

impl Backward<Flex, 1> for DropoutStep {
    type State = (DropMask, f32);

    fn backward(self, ops: Ops<(DropMask, f32), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (mask, scale) = ops.state;
        if let Some(parent) = parent {
            grads.register::<Flex>(parent.id, apply(dy, mask, scale, true));
        }
    }
}

/// The pass over `t`'s values in row-major order (in place when `t` is unshared).
fn apply(t: FlexTensor, mask: DropMask, scale: f32, backward: bool) -> FlexTensor {
    let shape = t.layout().shape().to_vec();
    let mut values = contiguous_values(t);
    kernel::dropout_in_place(&mut values, mask, scale, backward);
    tensor(values, shape)
}
