//! The optimizer: Burn's SGD, with its plain step (no momentum, no weight decay, the book's
//! recipe) as the engine's one operation, `engine::sgd_step` (one pass on the fast path where
//! Burn's `Sgd` makes two). The state is Burn's `SgdState`, so checkpoints keep their format and
//! resume across versions.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, Sgd, SgdConfig, SgdState};
use burn::tensor::{Device, Tensor};

use crate::config::TrainConfig;

/// The recipe's optimizer for Burn's Learner.
pub fn sgd(cfg: &TrainConfig) -> ModuleOptimizer {
    ModuleOptimizer::from(RecipeSgd::new(cfg))
}

#[derive(Clone)]
pub struct RecipeSgd {
    burn: Sgd,
    /// No momentum and no weight decay: the step is `w - lr * g` and keeps no state.
    plain: bool,
}

impl RecipeSgd {
    pub fn new(cfg: &TrainConfig) -> Self {
        let momentum = (cfg.momentum > 0.0).then_some(MomentumConfig { momentum: cfg.momentum, dampening: 0.0, nesterov: false });
        let decay = (cfg.weight_decay > 0.0).then_some(WeightDecayConfig { penalty: cfg.weight_decay as f32 });
        let plain = momentum.is_none() && decay.is_none();
        Self { burn: SgdConfig::new().with_momentum(momentum).with_weight_decay(decay).build(), plain }
    }
}

impl Optimizer for RecipeSgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<SgdState<D>>,
    ) -> (Tensor<D>, Option<SgdState<D>>) {
        if self.plain {
            return (crate::engine::sgd_step(tensor, grad, lr), Some(SgdState::new(None)));
        }
        self.burn.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: SgdState<D>, device: &Device) -> SgdState<D> {
        Sgd::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32).map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 2001) as f32 / 1000.0 - 1.0).collect()
    }

    /// Four steps of the recipe's optimizer and of Burn's own `Sgd`, from the same weights and
    /// gradients, with the weights writable and shared: the same bits for the weights and the
    /// velocity (the plain step is the engine's, fused on flex; momentum and weight decay stay
    /// Burn's).
    #[test]
    fn the_recipes_step_is_burns_sgd_bit_for_bit() {
        let device = crate::backend::cpu_device();
        let n = 70_001; // split between the threads
        for (momentum, weight_decay) in [(0.0, 0.0), (0.9, 0.0), (0.0, 1e-3), (0.9, 5e-4)] {
            let cfg = TrainConfig { momentum, weight_decay, ..TrainConfig::default() };
            let (ours, burns) = (RecipeSgd::new(&cfg), RecipeSgd::new(&cfg).burn);
            let w0 = Tensor::<1>::from_data(TensorData::new(values(n, 1), [n]), &device);
            let (mut a, mut b) = (w0.clone(), w0);
            let (mut sa, mut sb) = (None, None);
            for step in 0..4 {
                let g = Tensor::<1>::from_data(TensorData::new(values(n, 10 + step), [n]), &device);
                // Odd steps with the weights also held elsewhere, as the Learner holds them.
                let _held = (step % 2 == 1).then(|| a.clone());
                (a, sa) = ours.step(0.1, a, g.clone(), sa);
                (b, sb) = burns.step(0.1, b, g, sb);
                let bits = |t: &Tensor<1>| t.to_data().try_to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                let differ = bits(&a).iter().zip(bits(&b)).filter(|(x, y)| *x != y).count();
                assert_eq!(differ, 0, "momentum {momentum}, decay {weight_decay}, step {step}: weights differ in {differ} of {n}");
                let velocity = |s: &Option<SgdState<1>>| {
                    let mut sink = burn::optim::StateSink::default();
                    burn::optim::RecordState::state_flatten(s.as_ref().unwrap(), "", &mut sink);
                    sink.tensors.into_iter().map(|(name, d)| (name, d.try_to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>())).collect::<Vec<_>>()
                };
                assert!(velocity(&sa) == velocity(&sb), "momentum {momentum}, decay {weight_decay}, step {step}: the states differ");
            }
        }
    }
}
