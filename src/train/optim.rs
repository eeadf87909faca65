//! The optimizer: Burn's SGD, with its plain step (no momentum, no weight decay, the book's
//! recipe) done in one pass on the flex backend.
//!
//! Burn's `Sgd` computes `grad * lr` into one tensor and `tensor - delta` into another: two
//! passes over each weight matrix per step, where one will do. The state is
//! Burn's `SgdState`, so checkpoints keep their format and resume across versions.

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
    #[cfg_attr(not(feature = "flex"), allow(dead_code))]
    plain: bool,
}

impl RecipeSgd {
    pub fn new(cfg: &TrainConfig) -> Self {
        let momentum = (cfg.momentum > 0.0).then(|| MomentumConfig { momentum: cfg.momentum, dampening: 0.0, nesterov: false });
        let decay = (cfg.weight_decay > 0.0).then(|| WeightDecayConfig { penalty: cfg.weight_decay as f32 });
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
        #[cfg(feature = "flex")]
        if self.plain && crate::engine::enabled(&tensor.device()) && crate::engine::fused::sgd_available(&tensor, &grad) {
            return (crate::engine::fused::sgd_update(tensor, grad, lr), Some(SgdState::new(None)));
        }
        self.burn.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: SgdState<D>, device: &Device) -> SgdState<D> {
        Sgd::to_device(state, device)
    }
}
