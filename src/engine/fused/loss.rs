//! Per-example cross-entropy, `-log softmax(logits)[target]`, as one operation with its own
//! backward pass.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{Int, Tensor};
use burn_flex::FlexTensor;

use super::{contiguous_values, labels, rows_of, tensor, view};
use crate::engine::kernel;

#[backend_extension(Flex, Autodiff)]
pub trait FusedCrossEntropy: Backend {
    /// `-log softmax(logits)[target]` per row: `[b, c]`, `[b]` -> `[b]`.
    fn fused_cross_entropy(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self>;
}

/// Per-example cross-entropy as one differentiable operation, on the flex device
/// (`engine::ops` decides).
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as FusedCrossEntropy>::fused_cross_entropy(logits.into_dispatch(), targets.into_dispatch()))
}

impl FusedCrossEntropy for Flex {
    fn fused_cross_entropy(logits: FlexTensor, targets: FlexTensor) -> FlexTensor {
        cross_entropy_forward(&logits, targets).0
    }
}

impl<C: CheckpointStrategy> FusedCrossEntropy for Autodiff<Flex, C> {
    fn fused_cross_entropy(logits: FloatTensor<Self>, targets: FlexTensor) -> FloatTensor<Self> {
        match CrossEntropyStep.prepare::<C>([logits.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (losses, state) = cross_entropy_forward(logits.primitive(), targets);
                prep.finish(state, losses)
            }
            OpsKind::UnTracked(prep) => prep.finish(cross_entropy_forward(logits.primitive(), targets).0),
        }
    }
}

#[derive(Debug)]
struct CrossEntropyStep;

/// What the backward pass needs: the softmax of each row and the targets.
#[derive(Debug, Clone)]
struct CrossEntropyState {
    probs: Vec<f32>,
    classes: usize,
    targets: Vec<usize>,
}

impl Backward<Flex, 1> for CrossEntropyStep {
    type State = CrossEntropyState;

    fn backward(self, ops: Ops<CrossEntropyState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dloss = contiguous_values(grads.consume::<Flex>(&ops.node));
        if let Some(parent) = parent {
            let CrossEntropyState { probs, classes, targets } = ops.state;
            let rows = targets.len();
            let grad = kernel::cross_entropy_backward(probs, classes, &targets, &dloss);
            grads.register::<Flex>(parent.id, tensor(grad, vec![rows, classes]));
        }
    }
}

fn cross_entropy_forward(logits: &FlexTensor, targets: FlexTensor) -> (FlexTensor, CrossEntropyState) {
    let classes = logits.layout().shape()[1];
    // Read in place: the logits are shared (the step counts its right answers from them too).
    let values = rows_of(view(logits));
    // A negative target becomes an index out of range, which the kernel rejects.
    let index = |t: i64| usize::try_from(t).unwrap_or(usize::MAX);
    let targets: Vec<usize> = labels(&targets).iter().map(|&t| index(t)).collect();
    let (losses, probs) = kernel::cross_entropy(&values, classes, &targets);
    let rows = targets.len();
    (tensor(losses, vec![rows]), CrossEntropyState { probs, classes, targets })
}
