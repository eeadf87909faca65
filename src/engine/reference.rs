//! Burn's own operations, each the reference of one fused operation ([`super::ops`]): what runs
//! on every backend but flex, with `--reference-ops`, and what the fused ones are tested against.

use burn::nn::{DropoutConfig, Linear};
use burn::tensor::activation::{log_softmax, relu, sigmoid, tanh};
use burn::tensor::{Int, Tensor};

use crate::config::Activation;

/// `act(x)` in Burn's activation functions.
pub fn activation<const D: usize>(act: Activation, x: Tensor<D>) -> Tensor<D> {
    match act {
        Activation::Relu => relu(x),
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => tanh(x),
    }
}

/// `act(layer(x))`: Burn's linear layer, then its activation (none for `None`).
pub fn linear_act(layer: &Linear, x: Tensor<2>, act: Option<Activation>) -> Tensor<2> {
    let y = layer.forward(x);
    match act {
        Some(act) => activation(act, y),
        None => y,
    }
}

/// Burn's `Dropout` module with probability `prob` (it acts on an autodiff device only).
pub fn dropout(x: Tensor<2>, prob: f64) -> Tensor<2> {
    DropoutConfig::new(prob).init().forward(x)
}

/// `-log softmax(logits)[target]` for each row: Burn's `log_softmax`, then `gather`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [b, _] = logits.dims();
    log_softmax(logits, 1).gather(1, targets.reshape([b, 1])).reshape([b]).neg()
}

/// `[1]`: how many rows have their `argmax` at the target, as Burn's accuracy metric counts them
/// (the first maximum on ties, the first NaN where a row has one).
pub fn count_correct(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1, Int> {
    let [b, _] = logits.dims();
    logits.argmax(1).reshape([b]).equal(targets).int().sum()
}

/// `w - lr * g`, as Burn's `Sgd` steps without momentum or weight decay.
pub fn sgd_step<const D: usize>(w: Tensor<D>, g: Tensor<D>, lr: f64) -> Tensor<D> {
    w - g.mul_scalar(lr)
}
