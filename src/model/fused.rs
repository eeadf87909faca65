//! `act(x @ w + b)` as one operation on the flex backend, through Burn's backend-extension
//! point, with its own backward pass for autodiff. The arithmetic lives in [`super::kernel`].
//!
//! One node instead of matmul, add, ReLU (and their three backward steps) saves passes over
//! memory, allocations and autodiff bookkeeping per layer; the products run a block of rows per
//! thread. Other backends, and other activations' nonlinearity, keep Burn's own ops
//! (`Mlp::forward` chooses with [`available`]).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, Dispatch, DispatchDevice, Flex, backend_extension};
use burn::tensor::{DType, Int, Tensor, TensorData};
use burn_flex::FlexTensor;

use super::kernel::{self, LinearGrads, View, Wanted};

#[backend_extension(Flex, Autodiff)]
pub trait FusedLinear: Backend {
    /// `act(x @ w + b)` for `x: [m, k]`, `w: [k, n]`, `b: [n]`; `act` is ReLU when `relu`, else
    /// the identity.
    fn fused_linear(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, relu: bool) -> FloatTensor<Self>;
}

#[backend_extension(Flex)]
pub trait FusedSgd: Backend {
    /// `w - lr * g`, reusing `w`'s memory when nothing else holds it.
    fn sgd_update(w: FloatTensor<Self>, g: FloatTensor<Self>, lr: f64) -> FloatTensor<Self>;
}

#[backend_extension(Flex, Autodiff)]
pub trait FusedCrossEntropy: Backend {
    /// `-log softmax(logits)[target]` per row: `[b, c]`, `[b]` -> `[b]`.
    fn fused_cross_entropy(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self>;
}

/// Whether [`linear`] runs on this input: an `f32` tensor on the flex device (plain or autodiff).
pub fn available(x: &Tensor<2>) -> bool {
    x.dtype() == DType::F32 && matches!(x.device().without_autodiff().as_dispatch(), DispatchDevice::Flex(_))
}

/// `act(x @ w + b)` as one differentiable operation (see [`available`]).
pub fn linear(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, relu: bool) -> Tensor<2> {
    let out = <Dispatch as FusedLinear>::fused_linear(x.into_dispatch(), w.into_dispatch(), b.into_dispatch(), relu);
    Tensor::from_dispatch(out)
}

/// Per-example cross-entropy as one differentiable operation (see [`available`]).
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
    let values = contiguous_values(logits.clone());
    let targets: Vec<usize> = targets.into_data().iter::<i64>().map(|t| usize::try_from(t).unwrap_or(usize::MAX)).collect();
    let (losses, probs) = kernel::cross_entropy(&values, classes, &targets);
    let rows = targets.len();
    (tensor(losses, vec![rows]), CrossEntropyState { probs, classes, targets })
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

impl FusedSgd for Flex {
    fn sgd_update(mut w: FlexTensor, g: FlexTensor, lr: f64) -> FlexTensor {
        let g = contiguous_values(g);
        let lr = lr as f32;
        let in_place = w.is_contiguous() && w.layout().start_offset() == 0;
        if let Some(values) = in_place.then(|| w.try_storage_mut::<f32>()).flatten() {
            kernel::sgd_step(values, &g, lr);
            return w;
        }
        // Shared (Burn's Learner clones the model for the optimizer step): one pass into new
        // memory rather than a copy and then the update.
        let shape = w.layout().shape().to_vec();
        let values = match w.as_slice::<f32>() {
            Some(values) => kernel::sgd_into(values, &g, lr),
            None => {
                let mut values = contiguous_values(w);
                kernel::sgd_step(&mut values, &g, lr);
                values
            }
        };
        tensor(values, shape)
    }
}

impl FusedLinear for Flex {
    fn fused_linear(x: FlexTensor, w: FlexTensor, b: FlexTensor, relu: bool) -> FlexTensor {
        forward(&x, &w, &b, relu)
    }
}

impl<C: CheckpointStrategy> FusedLinear for Autodiff<Flex, C> {
    fn fused_linear(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, relu: bool) -> FloatTensor<Self> {
        match LinearStep.prepare::<C>([x.node(), w.node(), b.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = forward(x.primitive(), w.primitive(), b.primitive(), relu);
                let state = LinearState { x: x.into_primitive(), w: w.into_primitive(), y: relu.then(|| y.clone()) };
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive(), w.primitive(), b.primitive(), relu)),
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
    /// The forward output, kept for ReLU's mask (`None` without ReLU).
    y: Option<FlexTensor>,
}

impl Backward<Flex, 3> for LinearStep {
    type State = LinearState;

    fn backward(self, ops: Ops<LinearState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [px, pw, pb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let LinearState { x, w, y } = ops.state;
        let wanted = Wanted { x: px.is_some(), w: pw.is_some(), b: pb.is_some() };
        let (xv, wv) = (view(&x), view(&w));
        let y = y.map(contiguous_values);
        let LinearGrads { x: dx, w: dw, b: db } =
            kernel::linear_backward(xv, wv, y.as_deref(), contiguous_values(dy), y.is_some(), wanted);
        let grads_of = [(px, dx, vec![xv.rows, xv.cols]), (pw, dw, vec![wv.rows, wv.cols]), (pb, db, vec![wv.cols])];
        for (parent, grad, shape) in grads_of {
            if let (Some(parent), Some(grad)) = (parent, grad) {
                grads.register::<Flex>(parent.id, tensor(grad, shape));
            }
        }
    }
}

fn forward(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor, relu: bool) -> FlexTensor {
    let (xv, wv) = (view(x), view(w));
    let b = contiguous_values(b.clone());
    tensor(kernel::linear_forward(xv, wv, &b, relu), vec![xv.rows, wv.cols])
}

/// A 2-D `f32` flex tensor as a strided view (flex's layouts are offset + strides; a negative
/// stride, from a flip, never reaches a linear layer here).
fn view(t: &FlexTensor) -> View<'_> {
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
fn contiguous_values(t: FlexTensor) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("fused linear runs on f32 tensors only (see `available`)")
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}
