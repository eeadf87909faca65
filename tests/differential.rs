//! The fast path against Burn's own operations on random recipes: every activation, 1-3 hidden
//! layers 1-1100 wide, batches of 1 to 256 (odd ones too), momentum, weight decay, and NaN or
//! infinities in the inputs or the weights. Each recipe runs its forward pass, its gradients and
//! three SGD steps once with the fused operations and once with `--reference-ops`' switch set,
//! from the same weights, and the two must agree up to the order of floating-point sums (and
//! tanh's 2 ulp): the same NaN and infinities in the same places, the finite values within a
//! relative 2e-3 of the tensor's scale. Dropout, whose fused mask is drawn another way than
//! Burn's, is compared given its mask.
//!
//! Its own test binary with one test: the switch is process-wide.
#![cfg(feature = "flex")]

use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use d2l_mlp::config::{Activation, TrainConfig};
use d2l_mlp::engine;
use d2l_mlp::model::{Batch, Mlp, PIXELS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Something that goes into the recipe's numbers.
#[derive(Clone, Copy, Debug)]
enum Poison {
    None,
    NanPixel,
    InfPixel,
    NegInfPixel,
    NanWeight,
    InfWeight,
}

#[derive(Debug)]
struct Case {
    cfg: TrainConfig,
    batch: usize,
    poison: Poison,
}

fn random_case(rng: &mut StdRng, i: usize) -> Case {
    let depth = rng.random_range(1..=3);
    let widths = [1, 3, 10, 16, 33, 64, 100, 256, 257, 512, 1100];
    let hidden: Vec<usize> = (0..depth).map(|_| widths[rng.random_range(0..widths.len())]).collect();
    let activation = [Activation::Relu, Activation::Sigmoid, Activation::Tanh][i % 3];
    let batch = [1, 2, 7, 33, 64, 100, 255, 256][rng.random_range(0..8)];
    let poison = match i % 8 {
        5 => [Poison::NanPixel, Poison::InfPixel, Poison::NegInfPixel][rng.random_range(0..3)],
        7 => [Poison::NanWeight, Poison::InfWeight][rng.random_range(0..2)],
        _ => Poison::None,
    };
    let cfg = TrainConfig {
        hidden,
        activation,
        batch_size: batch,
        lr: [0.1, 0.5][rng.random_range(0..2)],
        init_std: [0.01, 0.1][rng.random_range(0..2)],
        // The fast path draws dropout's mask its own way: compared given the mask, below.
        dropout: 0.0,
        momentum: if rng.random_bool(0.3) { 0.9 } else { 0.0 },
        weight_decay: if rng.random_bool(0.3) { 1e-3 } else { 0.0 },
        seed: rng.random(),
        ..TrainConfig::default()
    };
    Case { cfg, batch, poison }
}

/// A batch of random pixels in [0, 1] (the last batch of an epoch is as short as `batch` says).
fn batch(case: &Case, step: usize, device: &Device) -> Batch {
    let mut rng = StdRng::seed_from_u64(case.cfg.seed ^ (step as u64 + 1));
    let mut pixels: Vec<f32> = (0..case.batch * PIXELS).map(|_| rng.random::<f32>()).collect();
    let at = rng.random_range(0..pixels.len());
    match case.poison {
        Poison::NanPixel => pixels[at] = f32::NAN,
        Poison::InfPixel => pixels[at] = f32::INFINITY,
        Poison::NegInfPixel => pixels[at] = f32::NEG_INFINITY,
        _ => {}
    }
    let labels: Vec<i64> = (0..case.batch).map(|_| rng.random_range(0..10)).collect();
    Batch {
        images: Tensor::from_data(TensorData::new(pixels, [case.batch, PIXELS]), device),
        targets: Tensor::<1, Int>::from_data(TensorData::new(labels, [case.batch]), device),
    }
}

fn model(case: &Case, device: &Device) -> Mlp {
    let mut m = Mlp::new(&case.cfg, device);
    let value = match case.poison {
        Poison::NanWeight => f32::NAN,
        Poison::InfWeight => f32::INFINITY,
        _ => return m,
    };
    let layer = &mut m.layers[0];
    let mut w = read(layer.weight.val().reshape([-1]));
    w[PIXELS / 2] = value;
    let dims = layer.weight.shape().dims::<2>();
    layer.weight = burn::module::Param::from_tensor(Tensor::from_data(TensorData::new(w, dims), device));
    m
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values")
}

/// What one path gives: named tensors in a fixed order.
type Figures = Vec<(String, Vec<f32>)>;

/// The forward pass, the gradients of the mean loss and three SGD steps of `case`.
fn run(case: &Case, reference: bool) -> Figures {
    engine::use_reference_ops(reference);
    let device = d2l_mlp::backend::cpu_device().autodiff();
    assert_eq!(engine::enabled(&device), !reference);
    device.seed(case.cfg.seed);
    let mut m = model(case, &device);
    let mut optim = d2l_mlp::train::optim::sgd(&case.cfg);
    let mut out = Figures::new();
    for step in 0..3 {
        let b = batch(case, step, &device);
        let (logits, losses) = m.forward_loss(&b);
        if step == 0 {
            out.push(("logits".into(), read(logits)));
            out.push(("losses".into(), read(losses.clone())));
        }
        let grads = losses.mean().backward();
        let params = GradientsParams::from_grads(grads, &m);
        if step == 0 {
            for (i, layer) in m.layers.iter().enumerate() {
                let w = params.get::<2>(layer.weight.id).map(read).unwrap_or_default();
                let b = layer.bias.as_ref().and_then(|b| params.get::<1>(b.id)).map(read).unwrap_or_default();
                out.push((format!("layer {i} weight gradient"), w));
                out.push((format!("layer {i} bias gradient"), b));
            }
        }
        m = optim.step(case.cfg.lr, m, params);
    }
    for (i, layer) in m.layers.iter().enumerate() {
        out.push((format!("layer {i} weight after 3 steps"), read(layer.weight.val())));
        out.push((format!("layer {i} bias after 3 steps"), read(layer.bias.as_ref().unwrap().val())));
    }
    out
}

/// NaN, +inf and -inf in the same places; finite values within `rel` of the tensor's scale.
fn agree(what: &str, fused: &[f32], reference: &[f32], rel: f32) -> Result<(), String> {
    if fused.len() != reference.len() {
        return Err(format!("{what}: {} values against {}", fused.len(), reference.len()));
    }
    let scale = reference.iter().filter(|v| v.is_finite()).fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    for (i, (&f, &r)) in fused.iter().zip(reference).enumerate() {
        let kind = |v: f32| if v.is_nan() { 0 } else if v == f32::INFINITY { 1 } else if v == f32::NEG_INFINITY { 2 } else { 3 };
        if kind(f) != kind(r) {
            return Err(format!("{what}[{i}]: fused {f}, Burn's {r}"));
        }
        if r.is_finite() && (f - r).abs() > rel * scale {
            return Err(format!("{what}[{i}]: fused {f}, Burn's {r} (scale {scale})"));
        }
    }
    Ok(())
}

#[test]
fn the_fused_path_gives_burns_results_on_random_recipes() {
    let mut rng = StdRng::seed_from_u64(2026);
    let mut failures = Vec::new();
    let mut poisoned = 0;
    for i in 0..32 {
        let case = random_case(&mut rng, i);
        let (fused, reference) = (run(&case, false), run(&case, true));
        for ((what, f), (_, r)) in fused.iter().zip(&reference) {
            if let Err(e) = agree(what, f, r, 2e-3) {
                failures.push(format!("case {i} {case:?}: {e}"));
                break;
            }
        }
        let nan_somewhere = fused.iter().any(|(_, v)| v.iter().any(|x| !x.is_finite()));
        poisoned += usize::from(nan_somewhere);
    }
    engine::use_reference_ops(false);
    assert!(failures.is_empty(), "{} of 32 recipes differ:\n{}", failures.len(), failures.join("\n"));
    assert!(poisoned >= 4, "the poisoned recipes must carry NaN or infinities through ({poisoned})");
}

/// Dropout on the fast path draws its mask from each element's position (so it is not Burn's
/// draw), and given that mask it is Burn's arithmetic: `(x * m) * (1 / keep)` forward and the
/// gradient of Burn's two multiplications backward, bit for bit, with NaN and infinities.
#[test]
fn dropout_given_its_mask_is_burns_arithmetic() {
    use d2l_mlp::engine::vmath::DropMask;
    let device = d2l_mlp::backend::cpu_device().autodiff();
    let (rows, cols, prob) = (37, 301, 0.3);
    let n = rows * cols;
    let mut rng = StdRng::seed_from_u64(7);
    let mut x: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 4.0 - 2.0).collect();
    x[..4].copy_from_slice(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0]);
    let dy: Vec<f32> = (0..n).map(|_| rng.random::<f32>() - 0.5).collect();
    let input = || Tensor::<2>::from_data(TensorData::new(x.clone(), [rows, cols]), &device).require_grad();
    let dy_t = Tensor::<2>::from_data(TensorData::new(dy.clone(), [rows, cols]), &device);

    // The fused operation, its key drawn from the seeded device; the same key read back.
    device.seed(11);
    let xs = input();
    let ours = d2l_mlp::engine::fused::dropout(xs.clone(), prob);
    let grads = ours.clone().mul(dy_t.clone()).sum().backward();
    let (ours, ours_dx) = (read(ours), read(xs.grad(&grads).unwrap()));
    device.seed(11);
    let key = Tensor::<1>::random([2], burn::tensor::Distribution::Default, &device).into_data();
    let halves: Vec<u64> = key.iter::<f32>().map(|v| u64::from(v.to_bits())).collect();
    let mask = DropMask::new(halves[0] << 32 | halves[1], 1.0 - prob);

    // Burn's ops with that mask, as Burn's `Dropout` computes once it has drawn one.
    let m: Vec<f32> = (0..n).map(|i| mask.at(i)).collect();
    let m = Tensor::<2>::from_data(TensorData::new(m, [rows, cols]), &device);
    let xs = input();
    let burns = xs.clone().mul(m).mul_scalar(1.0 / (1.0 - prob));
    let grads = burns.clone().mul(dy_t).sum().backward();
    let (burns, burns_dx) = (read(burns), read(xs.grad(&grads).unwrap()));

    let bits = |v: &[f32]| v.iter().map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() }).collect::<Vec<_>>();
    assert!(bits(&ours) == bits(&burns), "the forward differs from Burn's ops with the same mask");
    assert!(bits(&ours_dx) == bits(&burns_dx), "the gradient differs from Burn's ops with the same mask");
    let dropped = ours.iter().filter(|v| **v == 0.0).count() as f64 / n as f64;
    assert!((dropped - prob).abs() < 0.03, "dropped {dropped}, asked {prob}");
}
