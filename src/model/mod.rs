//! The book's MLP as a Burn module: flatten -> Linear(784, h1) -> act -> ... -> Linear(hk, 10).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::config::{Activation, Init, TrainConfig};
use crate::engine;
use output::StepOutput;

pub mod output;

/// An activation function in Burn's ops (as the `plot activations` command draws it).
pub use crate::engine::reference::activation as apply_activation;

/// The model's inputs: one per pixel of a 28x28 image, flattened.
pub const PIXELS: usize = 28 * 28;
/// The model's outputs: one logit per class.
pub const NUM_CLASSES: usize = 10;

/// A mini-batch: images already flattened and scaled to [0, 1].
#[derive(Clone, Debug)]
pub struct Batch {
    /// `[batch, 784]`
    pub images: Tensor<2>,
    /// `[batch]`, class indices 0-9
    pub targets: Tensor<1, Int>,
}

#[derive(Module, Debug)]
pub struct Mlp {
    /// Hidden layers then the output layer. Burn stores weights as `[in, out]`.
    pub layers: Vec<Linear>,
    #[module(skip)]
    pub activation: Activation,
    /// Dropout probability after each hidden activation (kept out of the record: it has no
    /// weights, and records of runs without it must still load).
    #[module(skip)]
    pub dropout: f64,
}

/// Layer sizes from input to output, e.g. `[784, 256, 10]`.
pub fn layer_sizes(hidden: &[usize]) -> Vec<usize> {
    let mut sizes = vec![PIXELS];
    sizes.extend_from_slice(hidden);
    sizes.push(NUM_CLASSES);
    sizes
}

/// A linear layer from host data: `weight` row-major `[d_in, d_out]`, `bias` `[d_out]`.
pub fn linear_from(weight: Vec<f32>, bias: Vec<f32>, d_in: usize, d_out: usize, device: &Device) -> Linear {
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(weight, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(bias, [d_out]), device))),
    }
}

impl Mlp {
    /// Weights from Normal(0, init_std) drawn on the host from `seed` (so every backend starts
    /// from the same numbers), biases zero.
    ///
    /// Xavier and Kaiming use Burn's formulas (`Initializer::XavierUniform`/`KaimingNormal`,
    /// gain 1 and sqrt 2), but draw on the host for the same reason.
    pub fn new(cfg: &TrainConfig, device: &Device) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
        let sizes = layer_sizes(&cfg.hidden);
        let layers = sizes
            .windows(2)
            .map(|w| {
                let (d_in, d_out) = (w[0], w[1]);
                let weight = init_weights(cfg, d_in, d_out, &mut rng);
                linear_from(weight, vec![0.0; d_out], d_in, d_out, device)
            })
            .collect();
        Self { layers, activation: cfg.activation, dropout: cfg.dropout }
    }

    /// `[batch, 784]` -> logits `[batch, 10]`: each hidden layer with its activation and
    /// dropout, then the output layer.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let (output, hidden) = self.layers.split_last().expect("an output layer");
        let x = hidden.iter().fold(x, |x, layer| {
            let x = engine::linear_act(layer, x, Some(self.activation));
            engine::dropout(x, self.dropout)
        });
        engine::linear_act(output, x, None)
    }

    /// Logits and the per-example cross-entropy `[batch]`.
    pub fn forward_loss(&self, batch: &Batch) -> (Tensor<2>, Tensor<1>) {
        let logits = self.forward(batch.images.clone());
        let losses = cross_entropy_per_example(logits.clone(), batch.targets.clone());
        (logits, losses)
    }

    /// The `[out, in]`-free shapes of the layers as `(d_in, d_out)`.
    pub fn shapes(&self) -> Vec<(usize, usize)> {
        self.layers
            .iter()
            .map(|l| {
                let [i, o] = l.weight.shape().dims();
                (i, o)
            })
            .collect()
    }
}

/// `d_in * d_out` weights for one layer, drawn from `rng` as `cfg.init` says.
fn init_weights(cfg: &TrainConfig, d_in: usize, d_out: usize, rng: &mut rand::rngs::StdRng) -> Vec<f32> {
    let n = d_in * d_out;
    match cfg.init {
        Init::Normal => sample(Normal::new(0.0f32, cfg.init_std as f32), n, rng),
        Init::KaimingNormal => sample(Normal::new(0.0f32, (2.0 / d_in as f32).sqrt()), n, rng),
        Init::XavierUniform => {
            let a = (6.0 / (d_in + d_out) as f32).sqrt();
            let u = Uniform::new_inclusive(-a, a).expect("a finite positive bound");
            (0..n).map(|_| u.sample(rng)).collect()
        }
    }
}

fn sample<E: std::fmt::Debug>(dist: Result<Normal<f32>, E>, n: usize, rng: &mut rand::rngs::StdRng) -> Vec<f32> {
    let dist = dist.expect("the standard deviation is validated finite and >= 0");
    (0..n).map(|_| dist.sample(rng)).collect()
}

/// `-log softmax(logits)[target]` for each row: `[batch, 10]`, `[batch]` -> `[batch]`.
/// Kept per example (not averaged) so the loss metric weighs every image equally, as the book's
/// "sum of losses / number of images" does, even for the short last batch.
pub fn cross_entropy_per_example(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    engine::cross_entropy(logits, targets)
}

/// `[1]`: how many rows of `logits` have their `argmax` at the target (the first largest value,
/// or the first NaN where a row has one), as Burn's accuracy metric counts them.
pub fn count_correct_tensor(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1, Int> {
    engine::count_correct(logits, targets)
}

impl TrainStep for Mlp {
    type Input = Batch;
    type Output = StepOutput;

    fn step(&self, batch: Batch) -> TrainOutput<StepOutput> {
        let (logits, losses) = self.forward_loss(&batch);
        // Mean over the batch, as the recipe's `CrossEntropyLoss(reduction='mean')`.
        let grads = losses.clone().mean().backward();
        TrainOutput::new(self, grads, StepOutput::new(losses, logits, batch.targets))
    }
}

impl InferenceStep for Mlp {
    type Input = Batch;
    type Output = StepOutput;

    fn step(&self, batch: Batch) -> StepOutput {
        let (logits, losses) = self.forward_loss(&batch);
        StepOutput::new(losses, logits, batch.targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        crate::backend::cpu_device()
    }

    fn stats(t: Tensor<2>) -> (f64, f64) {
        let v: Vec<f32> = t.into_data().try_to_vec::<f32>().unwrap();
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn output_shape_and_layers() {
        let cfg = TrainConfig::default();
        let m = Mlp::new(&cfg, &device());
        assert_eq!(m.shapes(), vec![(784, 256), (256, 10)]);
        let x = Tensor::<2>::zeros([3, 784], &device());
        assert_eq!(m.forward(x).dims(), [3, 10]);
        let deep = TrainConfig { hidden: vec![128, 64, 32], ..cfg };
        let m = Mlp::new(&deep, &device());
        assert_eq!(m.shapes(), vec![(784, 128), (128, 64), (64, 32), (32, 10)]);
    }

    #[test]
    fn initial_weights_are_normal_0_001_and_biases_zero() {
        let m = Mlp::new(&TrainConfig::default(), &device());
        let (mean, std) = stats(m.layers[0].weight.val());
        assert!(mean.abs() < 1e-3, "mean {mean}");
        assert!((std - 0.01).abs() < 5e-4, "std {std}");
        let b: Vec<f32> = m.layers[0].bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap();
        assert!(b.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn xavier_and_kaiming_use_their_scales() {
        let xavier = Mlp::new(&TrainConfig { init: Init::XavierUniform, ..TrainConfig::default() }, &device());
        let w: Vec<f32> = xavier.layers[0].weight.val().into_data().try_to_vec::<f32>().unwrap();
        let a = (6.0f32 / (784.0 + 256.0)).sqrt();
        assert!(w.iter().all(|x| x.abs() <= a) && w.iter().any(|x| x.abs() > 0.9 * a), "bound {a}");
        let kaiming = Mlp::new(&TrainConfig { init: Init::KaimingNormal, ..TrainConfig::default() }, &device());
        let (_, std) = stats(kaiming.layers[0].weight.val());
        assert!((std - (2.0f64 / 784.0).sqrt()).abs() < 2e-3, "std {std}");
    }

    #[test]
    fn dropout_acts_in_training_steps_only() {
        let cfg = TrainConfig { dropout: 0.5, init_std: 0.1, ..TrainConfig::default() };
        let m = Mlp::new(&cfg, &device());
        let x = Tensor::<2>::ones([4, 784], &device());
        // Inference (a plain device): deterministic, as without dropout.
        let plain = Mlp { dropout: 0.0, ..m.clone() };
        let same = m.forward(x.clone()).sub(plain.forward(x.clone())).abs().max().into_scalar::<f32>();
        assert_eq!(same, 0.0);
        // Training (the model as the Learner gets it): some hidden units are dropped.
        let (mt, pt) = (m.train(), plain.train());
        let xt = x.to_device(&mt.layers[0].weight.val().device());
        let diff = mt.forward(xt.clone()).sub(pt.forward(xt)).abs().max().into_scalar::<f32>();
        assert!(diff > 0.0);
    }

    #[test]
    fn same_seed_same_weights_other_seed_other_weights() {
        let cfg = TrainConfig::default();
        let a: Vec<f32> = Mlp::new(&cfg, &device()).layers[1].weight.val().into_data().try_to_vec::<f32>().unwrap();
        let b: Vec<f32> = Mlp::new(&cfg, &device()).layers[1].weight.val().into_data().try_to_vec::<f32>().unwrap();
        let c: Vec<f32> = Mlp::new(&TrainConfig { seed: 7, ..cfg }, &device()).layers[1]
            .weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn cross_entropy_matches_the_closed_form() {
        let d = device();
        let logits = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0], [2, 3]), &d);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![2i64, 0], [2]), &d);
        let lse = (1f32.exp() + 2f32.exp() + 3f32.exp()).ln();
        let fast = cross_entropy_per_example(logits.clone(), targets.clone());
        for losses in [fast, engine::reference::cross_entropy(logits, targets)] {
            let l: Vec<f32> = losses.into_data().try_to_vec::<f32>().unwrap();
            assert!((l[0] - (lse - 3.0)).abs() < 1e-5);
            assert!((l[1] - 3f32.ln()).abs() < 1e-5);
        }
    }
}
