//! What a study's journal costs: its size per trial, and the time a worker takes to replay it
//! (every claim and every epoch's report replays the journal under its lock).
//!
//! cargo run --release --example journal_replay [-- TRIALS [EPOCHS]]
//!
//! Writes a study of TRIALS (1,000) tpe trials over config/sweeps/joint.toml's space, each with
//! EPOCHS (10) intermediate values, the way `sweep` writes them, then times its replay.

use std::time::Instant;

use d2l_mlp::sweep::journal::{Journal, Op, State};
use d2l_mlp::sweep::space::{Study, StudyOverrides};
use d2l_mlp::sweep::{Method, work};
use serde_json::Map;

fn main() {
    let mut args = std::env::args().skip(1);
    let trials: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let epochs: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let space = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sweeps/joint.toml");
    let o = StudyOverrides { method: Some(Method::Random), trials: Some(trials), seed: Some(1) };
    let study = Study::load(std::path::Path::new(space), o).expect("joint.toml");
    let dir = tempfile::tempdir().expect("temp folder");
    let journal = Journal::new(dir.path().join("journal.log"), "joint", format!("{}-1", d2l_mlp::sweep::journal::uuid()));
    journal.append(&[Op::CreateStudy { name: "joint".into(), directions: vec![d2l_mlp::sweep::journal::Direction::Maximize] }]).expect("write");
    let began = Instant::now();
    for t in study.trials().expect("trials") {
        let mut ops = work::start_ops(&study, None, &t);
        ops.retain(|o| !matches!(o, Op::CreateTrial { .. }));
        ops.insert(0, Op::CreateTrial { state: State::Running, system_attrs: Map::new() });
        for e in 1..=epochs {
            ops.push(Op::Intermediate { trial: t.index, step: e, value: 0.8 + e as f64 * 0.001 });
        }
        ops.push(Op::State { trial: t.index, state: State::Complete, values: Some(vec![0.81]) });
        journal.append(&ops).expect("write");
    }
    let wrote = began.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(journal.path()).map(|m| m.len()).unwrap_or(0);
    let mut times: Vec<f64> = (0..10)
        .map(|_| {
            let t = Instant::now();
            let r = journal.read().expect("replay");
            assert_eq!(r.trials.len(), trials);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())).unwrap_or_default();
    let avx512 = std::arch::is_x86_feature_detected!("avx512f");
    println!("cpu: {cpu} (avx512f: {avx512}, avx2: {})", std::arch::is_x86_feature_detected!("avx2"));
    println!("journal: {trials} trials x {epochs} epochs: {bytes} bytes, {:.0} bytes per trial; written in {wrote:.2} s ({} appends)", bytes as f64 / trials as f64, trials + 1);
    println!("replay: median {:.1} ms, min {:.1} ms, max {:.1} ms (10 runs)", times[5] * 1e3, times[0] * 1e3, times[9] * 1e3);
}
