//! The operations the model, the optimizer and the metrics call. Each decides, here and nowhere
//! else, between its fused version ([`super::fused`], on flex) and Burn's ([`super::reference`]).

use burn::nn::Linear;
use burn::tensor::{Int, Tensor};

use super::reference;
use crate::config::Activation;

#[cfg(feature = "flex")]
use super::fused;

/// Whether `x` takes the fused operations: `f32`, on a device where they run ([`super::enabled`]).
#[cfg(feature = "flex")]
fn fused_for<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == burn::tensor::DType::F32 && super::enabled(&x.device())
}

/// `act(layer(x))` (no activation for `None`): one fused operation on the fast path, Burn's
/// linear layer and activation otherwise (the same arithmetic up to floating-point order).
pub fn linear_act(layer: &Linear, x: Tensor<2>, act: Option<Activation>) -> Tensor<2> {
    #[cfg(feature = "flex")]
    if let (true, Some(bias)) = (fused_for(&x), &layer.bias) {
        return fused::linear(x, layer.weight.val(), bias.val(), act);
    }
    reference::linear_act(layer, x, act)
}

/// Dropout with probability `prob`, in training steps only (on an autodiff device), as Burn's
/// `Dropout` applies it: one fused operation on the fast path (its mask drawn another way, so a
/// run draws other masks than with `--reference-ops`), Burn's module otherwise.
pub fn dropout(x: Tensor<2>, prob: f64) -> Tensor<2> {
    if prob == 0.0 {
        return x;
    }
    #[cfg(feature = "flex")]
    if fused_for(&x) && x.device().is_autodiff() {
        return fused::dropout(x, prob);
    }
    reference::dropout(x, prob)
}

/// `-log softmax(logits)[target]` for each row: `[batch, classes]`, `[batch]` -> `[batch]`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    #[cfg(feature = "flex")]
    if fused_for(&logits) {
        return fused::cross_entropy(logits, targets);
    }
    reference::cross_entropy(logits, targets)
}

/// `[1]`: how many rows of `logits` have their `argmax` at the target (the first maximum on
/// ties, the first NaN where a row has one), as Burn's accuracy metric counts them.
pub fn count_correct(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1, Int> {
    #[cfg(feature = "flex")]
    if fused_for(&logits) {
        return fused::count_correct(logits, targets);
    }
    reference::count_correct(logits, targets)
}

/// One plain SGD step, `w - lr * g`, for one parameter: one pass on the fast path, Burn's two
/// otherwise (the same bits either way).
pub fn sgd_step<const D: usize>(w: Tensor<D>, g: Tensor<D>, lr: f64) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if fused_for(&w) && fused::sgd_runs_on(&w, &g) {
        return fused::sgd_update(w, g, lr);
    }
    reference::sgd_step(w, g, lr)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::config::TrainConfig;
    use crate::model::Mlp;
    use burn::module::Module;
    use burn::tensor::TensorData;

    /// The fused layers and loss against Burn's, called side by side (no switch): the same
    /// logits and losses, the same gradients for every weight and bias, with each activation,
    /// one and two hidden layers.
    #[test]
    fn fused_layers_match_burns_ops_forward_and_backward() {
        for (hidden, activation) in [(vec![256], Activation::Relu), (vec![64, 32], Activation::Relu), (vec![48], Activation::Sigmoid), (vec![40, 24], Activation::Tanh)] {
            let cfg = TrainConfig { hidden, activation, init_std: 0.1, ..TrainConfig::default() };
            let m = Mlp::new(&cfg, &crate::backend::cpu_device().autodiff()).train();
            let d = m.layers[0].weight.val().device();
            let x = Tensor::<2>::random([37, 784], burn::tensor::Distribution::Default, &d);
            let targets = Tensor::<1, Int>::from_data(TensorData::new((0..37).map(|i| i % 10).collect::<Vec<i64>>(), [37]), &d);
            let last = m.layers.len() - 1;
            let act = |i: usize| (i < last).then_some(activation);
            let fused_net = |x: Tensor<2>| {
                m.layers.iter().enumerate().fold(x, |x, (i, l)| fused::linear(x, l.weight.val(), l.bias.as_ref().unwrap().val(), act(i)))
            };
            let burns_net = |x: Tensor<2>| m.layers.iter().enumerate().fold(x, |x, (i, l)| reference::linear_act(l, x, act(i)));
            let logits = [fused_net(x.clone()), burns_net(x.clone())];
            let diff = logits[0].clone().sub(logits[1].clone()).abs().max().into_scalar::<f32>();
            assert!(diff < 1e-5, "logits differ by {diff}");
            let [fused, plain] = logits;
            let losses = [fused::cross_entropy(fused, targets.clone()), reference::cross_entropy(plain, targets.clone())];
            let diff = losses[0].clone().sub(losses[1].clone()).abs().max().into_scalar::<f32>();
            assert!(diff < 1e-5, "losses differ by {diff}");
            let grads = losses.map(|l| l.mean().backward());
            for layer in &m.layers {
                let bias = layer.bias.as_ref().unwrap().val();
                for (fused, plain) in [
                    (layer.weight.val().grad(&grads[0]).map(|g| g.reshape([-1])), layer.weight.val().grad(&grads[1]).map(|g| g.reshape([-1]))),
                    (bias.grad(&grads[0]), bias.grad(&grads[1])),
                ] {
                    let (fused, plain) = (fused.expect("a fused gradient"), plain.expect("a reference gradient"));
                    let scale = plain.clone().abs().max().into_scalar::<f32>().max(1e-6);
                    let diff = fused.sub(plain).abs().max().into_scalar::<f32>();
                    assert!(diff <= 1e-4 * scale, "gradient differs by {diff} (scale {scale})");
                }
            }
        }
    }

    /// The fused SGD step is Burn's `Sgd` bit for bit, with the weights writable and shared.
    #[test]
    fn the_fused_step_is_burns_plain_sgd_bit_for_bit() {
        use burn::optim::{Optimizer, SgdConfig};
        let device = crate::backend::cpu_device();
        let n = 70_001; // split between the threads
        let values = |seed: u32| (0..n as u32).map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 2001) as f32 / 1000.0 - 1.0).collect::<Vec<_>>();
        let burns = SgdConfig::new().build();
        let w0 = Tensor::<1>::from_data(TensorData::new(values(1), [n]), &device);
        let (mut a, mut b, mut state) = (w0.clone(), w0, None);
        for step in 0..4 {
            let g = Tensor::<1>::from_data(TensorData::new(values(10 + step), [n]), &device);
            assert!(fused::sgd_runs_on(&a, &g));
            // Odd steps with the weights also held elsewhere, as the Learner holds them.
            let _held = (step % 2 == 1).then(|| a.clone());
            a = crate::engine::team::tests::with_width(2, || fused::sgd_update(a, g.clone(), 0.1));
            (b, state) = burns.step(0.1, b, g, state);
            let bits = |t: &Tensor<1>| t.to_data().try_to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert!(bits(&a) == bits(&b), "step {step}: the weights differ");
        }
    }
}
