//! `act(x @ w + b)`, with ReLU, sigmoid, tanh or no activation, as one operation with its own
//! backward pass.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use burn_flex::FlexTensor;

use super::{contiguous_values, rows_of, tensor, view};
use crate::config::Activation;
use crate::engine::kernel::{self, Act, LinearGrads, Wanted};

#[backend_extension(Flex, Autodiff)]
pub trait FusedLinear: Backend {
    /// `act(x @ w + b)` for `x: [m, k]`, `w: [k, n]`, `b: [n]`.
    fn fused_linear(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, act: Act) -> FloatTensor<Self>;
}

/// `act(x @ w + b)` as one differentiable operation, `act` the identity for `None`, on the flex
/// device (`engine::ops` decides).
pub fn linear(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, act: Option<Activation>) -> Tensor<2> {
    let act = match act {
        None => Act::Identity,
        Some(Activation::Relu) => Act::Relu,
        Some(Activation::Sigmoid) => Act::Sigmoid,
        Some(Activation::Tanh) => Act::Tanh,
    };
    let out = <Dispatch as FusedLinear>::fused_linear(x.into_dispatch(), w.into_dispatch(), b.into_dispatch(), act);
    Tensor::from_dispatch(out)
}

impl FusedLinear for Flex {
    fn fused_linear(x: FlexTensor, w: FlexTensor, b: FlexTensor, act: Act) -> FlexTensor {
        forward(&x, &w, &b, act)
    }
}

impl<C: CheckpointStrategy> FusedLinear for Autodiff<Flex, C> {
    fn fused_linear(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, act: Act) -> FloatTensor<Self> {
        match LinearStep.prepare::<C>([x.node(), w.node(), b.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = forward(x.primitive(), w.primitive(), b.primitive(), act);
                let y_kept = act.needs_output().then(|| y.clone());
                let state = LinearState { x: x.into_primitive(), w: w.into_primitive(), y: y_kept, act };
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive(), w.primitive(), b.primitive(), act)),
        }
    }
}

/// The backward step; the inputs it needs travel in [`LinearState`].
#[derive(Debug)]
struct LinearStep;

#[derive(Debug, Clone)]
struct LinearState {
    x: FlexTensor,
    w: FlexTensor,
    /// The forward output, which the activation's gradient is computed from (`None` without one).
    y: Option<FlexTensor>,
    act: Act,
}

impl Backward<Flex, 3> for LinearStep {
    type State = LinearState;

    fn backward(self, ops: Ops<LinearState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [px, pw, pb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let LinearState { x, w, y, act } = ops.state;
        let wanted = Wanted { x: px.is_some(), w: pw.is_some(), b: pb.is_some() };
        let (xv, wv) = (view(&x), view(&w));
        // The output is still shared (the next layer holds it as its input): read it in place.
        let y = y.as_ref().map(|y| rows_of(view(y)));
        let LinearGrads { x: dx, w: dw, b: db } =
            kernel::linear_backward(xv, wv, y.as_deref(), contiguous_values(dy), act, wanted);
        let grads_of = [(px, dx, vec![xv.rows, xv.cols]), (pw, dw, vec![wv.rows, wv.cols]), (pb, db, vec![wv.cols])];
        for (parent, grad, shape) in grads_of {
            if let (Some(parent), Some(grad)) = (parent, grad) {
                grads.register::<Flex>(parent.id, tensor(grad, shape));
            }
        }
    }
}

fn forward(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor, act: Act) -> FlexTensor {
    let (xv, wv) = (view(x), view(w));
    let b = contiguous_values(b.clone());
    tensor(kernel::linear_forward(xv, wv, &b, act), vec![xv.rows, wv.cols])
}
