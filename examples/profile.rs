//! Where an epoch's time goes, without the Learner: batch assembly, forward + loss, backward,
//! optimizer step, and the test pass, timed separately on the CPU backend.
//!
//! cargo run --release --example profile [-- DATA_DIR]

use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use d2l_mlp::config::TrainConfig;
use d2l_mlp::data::{DataOptions, Need, epoch_order, make_batch};
use d2l_mlp::model::Mlp;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| d2l_mlp::data::SYSTEM_DIR.to_string());
    let opts = DataOptions { data_dir: Some(dir.into()), skip_checksum: true, transfers: None };
    let data = d2l_mlp::data::open(&opts, Need::All, &mut |note| eprintln!("{note}")).expect("data");
    let device = d2l_mlp::backend::cpu_device();
    let cfg = TrainConfig::default();
    let mut model = Mlp::new(&cfg, &device).fork(&device.clone().autodiff()).train();
    let mut optim = d2l_mlp::train::optim::sgd(&cfg);
    let train = Arc::new(data.train);
    let (mut t_batch, mut t_fwd, mut t_bwd, mut t_opt, mut t_test) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let epochs = 3;
    let ad = device.clone().autodiff();
    for epoch in 1..=epochs {
        let order = epoch_order(train.len(), cfg.seed, epoch);
        for chunk in order.chunks(cfg.batch_size) {
            let t = Instant::now();
            let batch = make_batch(&train, chunk, &ad);
            t_batch += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let (_, losses) = model.forward_loss(&batch);
            let loss = losses.mean();
            let _ = loss.clone().into_data();
            t_fwd += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let grads = loss.backward();
            let grads = GradientsParams::from_grads(grads, &model);
            t_bwd += t.elapsed().as_secs_f64();
            let t = Instant::now();
            model = optim.step(cfg.lr, model, grads);
            t_opt += t.elapsed().as_secs_f64();
        }
        let t = Instant::now();
        let valid = model.valid();
        let idx: Vec<usize> = (0..data.test.len()).collect();
        for chunk in idx.chunks(cfg.batch_size) {
            let b = make_batch(&data.test, chunk, &device);
            let (_, l) = valid.forward_loss(&b);
            let _ = l.into_data();
        }
        t_test += t.elapsed().as_secs_f64();
    }
    let e = epochs as f64;
    let backend = d2l_mlp::backend::best_cpu().expect("a CPU backend is built in");
    println!("{}", d2l_mlp::bench::Machine::this(backend).describe());
    println!(
        "per epoch: batch {:.3} s | forward+loss {:.3} s | backward {:.3} s | optimizer {:.3} s | test pass {:.3} s | total {:.3} s",
        t_batch / e, t_fwd / e, t_bwd / e, t_opt / e, t_test / e, (t_batch + t_fwd + t_bwd + t_opt + t_test) / e
    );
}
