//! The fast path against Burn's own operations (`--reference-ops`' switch, or Burn's ops called
//! beside the fused ones), element by element.
//!
//! Each finite value must lie within a bound of its own: a few ulps of itself, plus a share of
//! the magnitudes that went into it (the same recipe run on |x|, |W| and |b|: the sum of |terms|
//! behind each logit and each gradient), since two orders of one sum differ by ulps of its
//! terms, not of the result. NaN, +inf and -inf must sit in the same places, and where both
//! give a zero, it must have the same sign. Counts must be equal.
//!
//! The tests, and what each caught when the kernel was broken on purpose (each mutation tried,
//! seen to fail the tests named, then put back):
//! - `random_recipes_agree`: 32 random recipes (every activation, 1-3 hidden layers 1-1100 wide,
//!   batches of 1 to 256, momentum, weight decay, NaN or infinities in the pixels or the weights):
//!   logits, losses, right answers, every gradient, the weights after three SGD steps (the
//!   weights shared on odd steps, as the Learner shares them). Caught: tanh's gradient 0.1 % off;
//!   ReLU as `v.max(0.0)` (NaN becomes 0); the bias gradient without the batch's last example;
//!   the SGD step with its rate 0.1 % off, in place and over the gradient (shared weights).
//! - `dropout_in_the_model_agrees_given_the_mask`: the model with dropout, end to end on a
//!   training step (`Mlp::forward` fused against Burn's ops with the same masks, drawn from the
//!   same seeded device): logits, losses, every gradient. Caught: dropout's backward mask one
//!   element off; tanh's gradient 0.1 % off; the bias gradient without the last example.
//! - `dropout_given_its_mask_is_burns_arithmetic`: the dropout operation alone, bit for bit with
//!   NaN and infinities. Caught: the backward mask one element off.
//! - `the_eval_path_agrees`: the forward pass and the count on the plain device (no autodiff:
//!   evaluation and prediction). Caught: the plain device's linear layer without its activation.
//! - `the_count_follows_burns_argmax`: logits with NaN (the first wins), infinities, ties and
//!   signed zeros, on the plain and the autodiff device. Caught: rows with NaN skipped (the count
//!   as it was before issue 30).
//! - `signed_zeros_are_burns`: a loss of exactly zero (Burn's is -0.0), dropped negative values
//!   (-0.0), zero pixels. Caught: the loss computed as `lse + max - x` (+0.0; as it was before
//!   issue 30).
//!
//! The switch and Burn's generator are process-wide: every test holds `flex::serial()` while it runs,
//! so none depends on how the harness schedules them.

mod common;

#[cfg(not(feature = "flex"))]
#[test]
fn the_fast_path_is_built_with_flex() {
    common::skip("tests/differential.rs", "built without the `flex` feature, which the fast path needs: nothing to compare");
}

#[cfg(feature = "flex")]
mod flex {
    use std::sync::{Mutex, MutexGuard};

    use burn::module::Module;
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Int, Tensor, TensorData};
    use d2l_mlp::config::{Activation, TrainConfig};
    use d2l_mlp::engine::{self, reference};
    use d2l_mlp::model::{Batch, Mlp, PIXELS};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Held by every test for its whole run (see the module's note).
    fn serial() -> MutexGuard<'static, ()> {
        static SERIAL: Mutex<()> = Mutex::new(());
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

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
            // Dropout draws its mask another way on each path: compared given the mask, below.
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

    fn count(t: Tensor<1, Int>) -> i64 {
        t.into_scalar::<i64>()
    }

    /// One compared tensor: its name, its values, and (for the reference) each value's bound.
    struct Figure {
        what: String,
        values: Vec<f32>,
        bound: Vec<f32>,
    }

    fn figure(what: impl Into<String>, values: Vec<f32>) -> Figure {
        Figure { what: what.into(), bound: Vec::new(), values }
    }

    /// A tolerance of a few ulps of each value itself...
    const REL: f32 = 16.0 * f32::EPSILON;
    /// ... plus this share of the magnitude of the terms behind it (the two paths differ by at
    /// most 1.1 epsilon of value plus magnitude on the 32 recipes: a margin of 14).
    const ABS: f32 = 16.0 * f32::EPSILON;

    /// Each value's bound from the magnitudes behind it.
    fn bounds(reference: &[f32], magnitude: &[f32]) -> Vec<f32> {
        reference.iter().zip(magnitude).map(|(r, m)| REL * r.abs() + ABS * m).collect()
    }

    /// NaN, +inf and -inf in the same places, zeros with the same sign, every finite value
    /// within its bound.
    fn agree(fused: &Figure, reference: &Figure) -> Result<(), String> {
        let (what, f, r) = (&reference.what, &fused.values, &reference.values);
        if f.len() != r.len() {
            return Err(format!("{what}: {} values against {}", f.len(), r.len()));
        }
        let kind = |v: f32| if v.is_nan() { 0 } else if v == f32::INFINITY { 1 } else if v == f32::NEG_INFINITY { 2 } else { 3 };
        for (i, (&f, &r)) in f.iter().zip(r).enumerate() {
            let bound = reference.bound.get(i).copied().unwrap_or(0.0);
            let off = if kind(f) != kind(r) {
                true
            } else if f == 0.0 && r == 0.0 {
                f.to_bits() != r.to_bits()
            } else {
                // A non-finite bound (the magnitudes of a poisoned recipe) takes any finite value.
                r.is_finite() && bound.is_finite() && (f - r).abs() > bound
            };
            if off {
                return Err(format!("{what}[{i}]: fused {f:e}, Burn's {r:e} (bound {bound:e})"));
            }
        }
        Ok(())
    }

    /// The sums of |terms| behind the logits and behind each gradient of one step: the model
    /// on |x|, |W| and |b|, each activation as the identity (its slope is at most 1; sigmoid's
    /// values, at most 1, are added), `masks` (dropout's, scaled) applied after each hidden layer,
    /// its logits' sum over the batch size differentiated (each logit's gradient is at most
    /// 1 / batch in size).
    struct Magnitudes {
        logits: Vec<f32>,
        /// (weight, bias) per layer.
        grads: Vec<(Vec<f32>, Vec<f32>)>,
    }

    fn magnitudes(m: &Mlp, x: &Tensor<2>, masks: &[Tensor<2>]) -> Magnitudes {
        let abs = |t: Tensor<2>| t.abs().detach().require_grad();
        let params: Vec<(Tensor<2>, Tensor<2>)> = m
            .layers
            .iter()
            .map(|l| (abs(l.weight.val()), abs(l.bias.as_ref().unwrap().val().unsqueeze())))
            .collect();
        let last = params.len() - 1;
        let mut h = x.clone().abs().detach();
        for (i, (w, b)) in params.iter().enumerate() {
            h = h.matmul(w.clone()) + b.clone();
            if i < last {
                if m.activation == Activation::Sigmoid {
                    h = h.add_scalar(1.0);
                }
                if let Some(mask) = masks.get(i) {
                    h = h * mask.clone();
                }
            }
        }
        let rows = h.dims()[0];
        let logits = read(h.clone());
        let grads = h.sum().div_scalar(rows as f64).backward();
        let grads = params.iter().map(|(w, b)| (read(w.grad(&grads).unwrap()), read(b.grad(&grads).unwrap()))).collect();
        Magnitudes { logits, grads }
    }

    /// Each loss's magnitude: twice its row's largest logit magnitude (the log-sum-exp and the
    /// target's logit), and the row's largest logit itself (the shift).
    fn loss_magnitudes(logits: &[f32], magnitudes: &[f32], classes: usize) -> Vec<f32> {
        let largest = |row: &[f32]| row.iter().fold(0f32, |m, v| m.max(v.abs()));
        logits.chunks(classes).zip(magnitudes.chunks(classes)).map(|(l, m)| 2.0 * largest(m) + largest(l)).collect()
    }

    /// What one path gives: named tensors in a fixed order.
    type Figures = Vec<Figure>;

    /// The forward pass, the count, the gradients of the mean loss and three SGD steps of
    /// `case`, with the switch set for `reference`; the reference also bounds each value.
    fn run(case: &Case, reference: bool) -> Figures {
        engine::use_reference_ops(reference);
        let device = d2l_mlp::backend::cpu_device().autodiff();
        assert_eq!(engine::enabled(&device), !reference);
        let mut m = model(case, &device);
        let mut optim = d2l_mlp::train::optim::sgd(&case.cfg);
        let mut out = Figures::new();
        // Per layer: the magnitude behind each weight and bias, summed over the steps so far
        // (each step moves a weight by lr times its gradient, and momentum carries it on).
        let mut moved: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
        let mut velocity: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
        for step in 0..3 {
            let b = batch(case, step, &device);
            let mags = reference.then(|| magnitudes(&m, &b.images, &[]));
            let (logits, losses) = m.forward_loss(&b);
            if step == 0 {
                let right = count(d2l_mlp::model::count_correct_tensor(logits.clone(), b.targets.clone()));
                out.push(figure("right answers", vec![right as f32]));
                let (l, losses) = (read(logits), read(losses.clone()));
                let mut lf = figure("logits", l.clone());
                let mut lossf = figure("losses", losses.clone());
                if let Some(mags) = &mags {
                    lf.bound = bounds(&l, &mags.logits);
                    lossf.bound = bounds(&losses, &loss_magnitudes(&l, &mags.logits, 10));
                }
                out.push(lf);
                out.push(lossf);
            }
            let grads = losses.mean().backward();
            let params = GradientsParams::from_grads(grads, &m);
            for (i, layer) in m.layers.iter().enumerate() {
                let w = params.get::<2>(layer.weight.id).map(read).unwrap_or_default();
                let bias = layer.bias.as_ref().and_then(|b| params.get::<1>(b.id)).map(read).unwrap_or_default();
                if let Some(mags) = &mags {
                    let (mw, mb) = &mags.grads[i];
                    if step == 0 {
                        let mut wf = figure(format!("layer {i} weight gradient"), w.clone());
                        let mut bf = figure(format!("layer {i} bias gradient"), bias.clone());
                        wf.bound = bounds(&w, mw);
                        bf.bound = bounds(&bias, mb);
                        out.push(wf);
                        out.push(bf);
                    }
                    let (weights, biases) = (read(layer.weight.val()), read(layer.bias.as_ref().unwrap().val()));
                    let decay = |mags: &[f32], values: &[f32]| -> Vec<f32> {
                        mags.iter().zip(values).map(|(m, v)| m + case.cfg.weight_decay as f32 * v.abs()).collect()
                    };
                    let (gw, gb) = (decay(mw, &weights), decay(mb, &biases));
                    if velocity.len() <= i {
                        velocity.push((vec![0.0; gw.len()], vec![0.0; gb.len()]));
                        moved.push((vec![0.0; gw.len()], vec![0.0; gb.len()]));
                    }
                    let mu = case.cfg.momentum as f32;
                    let carry = |v: &mut Vec<f32>, g: &[f32], total: &mut Vec<f32>| {
                        v.iter_mut().zip(g).zip(total.iter_mut()).for_each(|((v, g), t)| {
                            *v = mu * *v + g;
                            *t += case.cfg.lr as f32 * *v;
                        })
                    };
                    carry(&mut velocity[i].0, &gw, &mut moved[i].0);
                    carry(&mut velocity[i].1, &gb, &mut moved[i].1);
                } else if step == 0 {
                    out.push(figure(format!("layer {i} weight gradient"), w));
                    out.push(figure(format!("layer {i} bias gradient"), bias));
                }
            }
            // Odd steps with the weights also held elsewhere, as the Learner holds them (the
            // fused step then writes over the gradient).
            let _held = (step % 2 == 1).then(|| m.clone());
            m = optim.step(case.cfg.lr, m, params);
        }
        for (i, layer) in m.layers.iter().enumerate() {
            let (w, b) = (read(layer.weight.val()), read(layer.bias.as_ref().unwrap().val()));
            let mut wf = figure(format!("layer {i} weight after 3 steps"), w.clone());
            let mut bf = figure(format!("layer {i} bias after 3 steps"), b.clone());
            if let Some((mw, mb)) = moved.get(i) {
                wf.bound = bounds(&w, mw);
                bf.bound = bounds(&b, mb);
            }
            out.push(wf);
            out.push(bf);
        }
        engine::use_reference_ops(false);
        out
    }

    fn first_difference(fused: &Figures, reference: &Figures) -> Result<(), String> {
        assert_eq!(fused.len(), reference.len());
        fused.iter().zip(reference).try_for_each(|(f, r)| agree(f, r))
    }

    #[test]
    fn random_recipes_agree() {
        let _serial = serial();
        let mut rng = StdRng::seed_from_u64(2026);
        let mut failures = Vec::new();
        let mut poisoned = 0;
        for i in 0..32 {
            let case = random_case(&mut rng, i);
            let (fused, reference) = (run(&case, false), run(&case, true));
            if let Err(e) = first_difference(&fused, &reference) {
                failures.push(format!("case {i} {case:?}: {e}"));
            }
            poisoned += usize::from(fused.iter().any(|f| f.values.iter().any(|x| !x.is_finite())));
        }
        assert!(failures.is_empty(), "{} of 32 recipes differ:\n{}", failures.len(), failures.join("\n"));
        assert!(poisoned >= 4, "the poisoned recipes must carry NaN or infinities through ({poisoned})");
    }

    /// A small recipe with dropout after each of its two hidden layers.
    fn dropout_case(activation: Activation) -> Case {
        let cfg = TrainConfig { hidden: vec![300, 64], activation, dropout: 0.3, init_std: 0.1, seed: 5, ..TrainConfig::default() };
        Case { cfg, batch: 67, poison: Poison::None }
    }

    /// Burn's dropout arithmetic given the fused operation's mask: `(x * m) * (1 / keep)`.
    fn burns_dropout(x: Tensor<2>, mask: &Tensor<2>, prob: f64) -> Tensor<2> {
        x.mul(mask.clone()).mul_scalar(1.0 / (1.0 - prob))
    }

    /// The masks the fused model draws on its training step, in order: one per hidden layer,
    /// each a key drawn from the device's generator (as many values as the layer's outputs).
    fn masks(m: &Mlp, rows: usize, prob: f64, device: &Device, seed: u64) -> Vec<Tensor<2>> {
        device.seed(seed);
        m.layers[..m.layers.len() - 1]
            .iter()
            .map(|l| {
                let cols = l.weight.shape().dims::<2>()[1];
                let mask = engine::fused::mask_for(device, prob);
                let values: Vec<f32> = (0..rows * cols).map(|i| mask.at(i)).collect();
                Tensor::from_data(TensorData::new(values, [rows, cols]), device)
            })
            .collect()
    }

    #[test]
    fn dropout_in_the_model_agrees_given_the_mask() {
        let _serial = serial();
        engine::use_reference_ops(false);
        for activation in [Activation::Relu, Activation::Tanh] {
            let case = dropout_case(activation);
            let device = d2l_mlp::backend::cpu_device().autodiff();
            let m = Mlp::new(&case.cfg, &device).train();
            let b = batch(&case, 0, &device);
            let prob = case.cfg.dropout;
            let masks = masks(&m, case.batch, prob, &device, 17);
            // Fused: the model as training runs it, drawing its masks from the same seed.
            device.seed(17);
            let (logits, losses) = m.forward_loss(&b);
            let fused_grads = losses.clone().mean().backward();
            // Burn's: its layers and activation, the same masks with Burn's dropout arithmetic.
            let last = m.layers.len() - 1;
            let mut x = b.images.clone();
            for (i, layer) in m.layers.iter().enumerate() {
                x = reference::linear_act(layer, x, (i < last).then_some(activation));
                if i < last {
                    x = burns_dropout(x, &masks[i], prob);
                }
            }
            let burns_losses = reference::cross_entropy(x.clone(), b.targets.clone());
            let burns_grads = burns_losses.clone().mean().backward();
            let scaled: Vec<Tensor<2>> = masks.iter().map(|m| m.clone().mul_scalar(1.0 / (1.0 - prob))).collect();
            let mags = magnitudes(&m, &b.images, &scaled);
            let (l, bl) = (read(x), read(burns_losses));
            let mut pairs = vec![
                (figure("logits", read(logits)), Figure { what: "logits".into(), bound: bounds(&l, &mags.logits), values: l.clone() }),
                (figure("losses", read(losses)), Figure { what: "losses".into(), bound: bounds(&bl, &loss_magnitudes(&l, &mags.logits, 10)), values: bl }),
            ];
            for (i, layer) in m.layers.iter().enumerate() {
                let bias = layer.bias.as_ref().unwrap().val();
                let (w, bs) = (layer.weight.val(), bias);
                for (what, f, r, mag) in [
                    ("weight", read(w.grad(&fused_grads).unwrap()), read(w.grad(&burns_grads).unwrap()), &mags.grads[i].0),
                    ("bias", read(bs.grad(&fused_grads).unwrap()), read(bs.grad(&burns_grads).unwrap()), &mags.grads[i].1),
                ] {
                    let what = format!("layer {i} {what} gradient");
                    pairs.push((figure(what.clone(), f), Figure { what, bound: bounds(&r, mag), values: r }));
                }
            }
            for (f, r) in &pairs {
                agree(f, r).unwrap_or_else(|e| panic!("{activation:?}: {e}"));
            }
            assert!(masks.iter().all(|m| read(m.clone()).contains(&0.0)), "the masks drop units");
        }
    }

    /// Dropout on the fast path draws its mask from each element's position (so it is not Burn's
    /// draw), and given that mask it is Burn's arithmetic: `(x * m) * (1 / keep)` forward and
    /// the gradient of Burn's two multiplications backward, bit for bit, with NaN and
    /// infinities.
    #[test]
    fn dropout_given_its_mask_is_burns_arithmetic() {
        let _serial = serial();
        let device = d2l_mlp::backend::cpu_device().autodiff();
        let (rows, cols, prob) = (37, 301, 0.3);
        let n = rows * cols;
        let mut rng = StdRng::seed_from_u64(7);
        let mut x: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 4.0 - 2.0).collect();
        x[..4].copy_from_slice(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0]);
        let dy: Vec<f32> = (0..n).map(|_| rng.random::<f32>() - 0.5).collect();
        let input = || Tensor::<2>::from_data(TensorData::new(x.clone(), [rows, cols]), &device).require_grad();
        let dy_t = Tensor::<2>::from_data(TensorData::new(dy.clone(), [rows, cols]), &device);

        // The fused operation, its key drawn from the seeded device; the same key drawn again.
        device.seed(11);
        let xs = input();
        let ours = engine::fused::dropout(xs.clone(), prob);
        let grads = ours.clone().mul(dy_t.clone()).sum().backward();
        let (ours, ours_dx) = (read(ours), read(xs.grad(&grads).unwrap()));
        device.seed(11);
        let mask = engine::fused::mask_for(&device, prob);

        let m: Vec<f32> = (0..n).map(|i| mask.at(i)).collect();
        let m = Tensor::<2>::from_data(TensorData::new(m, [rows, cols]), &device);
        let xs = input();
        let burns = burns_dropout(xs.clone(), &m, prob);
        let grads = burns.clone().mul(dy_t).sum().backward();
        let (burns, burns_dx) = (read(burns), read(xs.grad(&grads).unwrap()));

        let bits = |v: &[f32]| v.iter().map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() }).collect::<Vec<_>>();
        assert!(bits(&ours) == bits(&burns), "the forward differs from Burn's ops with the same mask");
        assert!(bits(&ours_dx) == bits(&burns_dx), "the gradient differs from Burn's ops with the same mask");
        let dropped = ours.iter().filter(|v| **v == 0.0).count() as f64 / n as f64;
        assert!((dropped - prob).abs() < 0.03, "dropped {dropped}, asked {prob}");
    }

    /// Logits, losses and the count on the plain device, as evaluation and prediction run them.
    fn eval(case: &Case, reference: bool) -> Figures {
        engine::use_reference_ops(reference);
        let device = d2l_mlp::backend::cpu_device();
        assert!(!device.is_autodiff());
        let m = model(case, &device);
        let b = batch(case, 0, &device);
        let (logits, losses) = m.forward_loss(&b);
        let right = count(d2l_mlp::model::count_correct_tensor(logits.clone(), b.targets.clone()));
        let (l, losses) = (read(logits), read(losses));
        let mut out = vec![figure("right answers", vec![right as f32])];
        if reference {
            let ad = device.clone().autodiff();
            let mags = magnitudes(&model(case, &ad), &b.images.clone().to_device(&ad), &[]);
            out.push(Figure { what: "logits".into(), bound: bounds(&l, &mags.logits), values: l.clone() });
            out.push(Figure { what: "losses".into(), bound: bounds(&losses, &loss_magnitudes(&l, &mags.logits, 10)), values: losses });
        } else {
            out.push(figure("logits", l));
            out.push(figure("losses", losses));
        }
        engine::use_reference_ops(false);
        out
    }

    #[test]
    fn the_eval_path_agrees() {
        let _serial = serial();
        let mut rng = StdRng::seed_from_u64(31);
        for i in 0..12 {
            let case = random_case(&mut rng, i);
            let (fused, reference) = (eval(&case, false), eval(&case, true));
            first_difference(&fused, &reference).unwrap_or_else(|e| panic!("case {i} {case:?}: {e}"));
        }
    }

    #[test]
    fn the_count_follows_burns_argmax() {
        let _serial = serial();
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        let rows: Vec<[f32; 10]> = vec![
            [nan, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1.0, 9.0, 2.0, 3.0, nan, 0.0, nan, 0.0, 0.0, 0.0],
            [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, nan],
            [-inf; 10],
            [-inf, 1.0, inf, 0.0, inf, 0.0, 0.0, 0.0, 0.0, 0.0],
            [-0.0, 0.0, -0.0, 0.0, -0.0, 0.0, -0.0, 0.0, -0.0, 0.0],
            [2.0, 2.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [nan; 10],
        ];
        let values: Vec<f32> = rows.iter().flatten().copied().collect();
        let n = rows.len();
        // Every label for every row: a row counts once, for the label at its argmax.
        for label in 0..10 {
            let labels = vec![label as i64; n];
            for device in [d2l_mlp::backend::cpu_device(), d2l_mlp::backend::cpu_device().autodiff()] {
                let logits = Tensor::<2>::from_data(TensorData::new(values.clone(), [n, 10]), &device);
                let targets = Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [n]), &device);
                assert!(engine::enabled(&device));
                let fused = count(engine::count_correct(logits.clone(), targets.clone()));
                let burns = count(reference::count_correct(logits, targets));
                assert_eq!(fused, burns, "label {label}, autodiff {}", device.is_autodiff());
            }
        }
        // The first NaN wins: rows 0, 1, 2 and 7 count for labels 0, 4, 9 and 0.
        let device = d2l_mlp::backend::cpu_device();
        let logits = Tensor::<2>::from_data(TensorData::new(values, [n, 10]), &device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 4, 9, 0, 2, 0, 0, 0], [n]), &device);
        assert_eq!(count(engine::count_correct(logits, targets)), n as i64);
    }

    #[test]
    fn signed_zeros_are_burns() {
        let _serial = serial();
        let device = d2l_mlp::backend::cpu_device().autodiff();
        // Confident rows (every other class 40 below: the loss rounds to exactly zero, which
        // Burn's `-(x - max - log-sum-exp)` gives as -0.0) and a row with a loss above zero.
        let mut logits = vec![0.0f32; 30];
        for (r, t) in [(0, 3), (1, 0)] {
            logits[r * 10..(r + 1) * 10].fill(-40.0);
            logits[r * 10 + t] = 0.0;
        }
        logits[20..30].copy_from_slice(&[-0.0, 0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.0, -0.0]);
        let logits = Tensor::<2>::from_data(TensorData::new(logits, [3, 10]), &device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![3i64, 0, 5], [3]), &device);
        let (fused, burns) = (read(engine::cross_entropy(logits.clone(), targets.clone())), read(reference::cross_entropy(logits, targets)));
        assert!(burns[0] == 0.0 && burns[0].is_sign_negative(), "Burn's loss of a sure answer: {:e}", burns[0]);
        for (f, b) in [(&fused[0], &burns[0]), (&fused[1], &burns[1])] {
            assert_eq!(f.to_bits(), b.to_bits(), "a loss of zero: fused {f:e}, Burn's {b:e}");
        }
        // Zero pixels, zero weights of both signs, and dropout over negative values: a layer's
        // outputs and its gradients, zeros compared by sign.
        let cfg = TrainConfig { hidden: vec![96], dropout: 0.5, init_std: 0.1, seed: 9, ..TrainConfig::default() };
        let case = Case { cfg, batch: 9, poison: Poison::None };
        let m = Mlp::new(&case.cfg, &device).train();
        let mut pixels: Vec<f32> = read(batch(&case, 0, &device).images).iter().map(|p| p - 0.5).collect();
        pixels.iter_mut().step_by(3).for_each(|p| *p = -0.0);
        let x = Tensor::<2>::from_data(TensorData::new(pixels, [9, PIXELS]), &device);
        let layer = &m.layers[0];
        let masks = masks(&m, 9, 0.5, &device, 3);
        device.seed(3);
        let fused = engine::dropout(engine::linear_act(layer, x.clone(), None), 0.5);
        let burns = burns_dropout(reference::linear_act(layer, x, None), &masks[0], 0.5);
        let (f, b) = (read(fused), read(burns));
        let negative_zeros = b.iter().filter(|v| **v == 0.0 && v.is_sign_negative()).count();
        assert!(negative_zeros > 0, "dropped negative values give -0.0");
        let zeros = |v: &[f32]| v.iter().map(|x| if *x == 0.0 { Some(x.is_sign_negative()) } else { None }).collect::<Vec<_>>();
        assert_eq!(zeros(&f), zeros(&b), "zeros and their signs");
    }
}
