//! vmath's tanh and dropout against kept crates (`team-alternatives` feature): throughput at the
//! chapter's sizes, the largest error in ulp, the special values, and whether a value's bits
//! depend on where a thread's block ends. Figures and method: docs/performance.md.
//!
//! cargo run --release --features team-alternatives --ignore-rust-version --example vmath_compare [-- ROUNDS]

use std::time::Instant;

use d2l_mlp::engine::vmath::DropMask;
use d2l_mlp::engine::vmath;
use d2l_mlp::engine::vmath_alt::{self, Tanh};

/// The sizes: a batch of 256 hidden activations of the book's 256 units, one thread's half of
/// it, and the wide recipe's 1024 units.
const SIZES: [(&str, usize); 3] = [("128x256 (a block)", 128 * 256), ("256x256 (the book)", 256 * 256), ("256x1024 (wide)", 256 * 1024)];

fn main() {
    if std::env::var_os(vmath_alt::ENV).is_some() {
        eprintln!("vmath_compare: unset {} (this example picks each tanh itself)", vmath_alt::ENV);
        std::process::exit(2);
    }
    let rounds = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5usize);
    println!("{}", machine());
    tanh_throughput(rounds);
    tanh_accuracy();
    dropout_throughput(rounds);
}

/// Who computes the tanh: the C library's `tanhf`, one value at a time (Burn flex's), or one
/// of the [`Tanh`] ways.
#[derive(Clone, Copy)]
enum Way {
    Libm,
    Alt(Tanh),
}

impl Way {
    const ALL: [Way; 4] = [Way::Libm, Way::Alt(Tanh::Vmath), Way::Alt(Tanh::Pulp), Way::Alt(Tanh::Rten)];

    fn name(self) -> String {
        match self {
            Way::Libm => "tanhf (Burn flex)".into(),
            Way::Alt(Tanh::Vmath) => "vmath".into(),
            Way::Alt(Tanh::Pulp) => "vmath's formula via pulp".into(),
            Way::Alt(Tanh::Rten) => "rten-vecmath Tanh".into(),
        }
    }

    fn apply(self, v: &mut [f32]) {
        match self {
            Way::Libm => v.iter_mut().for_each(|x| *x = x.tanh()),
            Way::Alt(t) => t.apply(v),
        }
    }
}

/// Pre-activations as a hidden layer sees them: mostly within a few units of zero, some far.
fn activations(n: usize) -> Vec<f32> {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            let spread = if i % 16 == 0 { 12.0 } else { 3.0 };
            (u * 2.0 - 1.0) * spread
        })
        .collect()
}

/// Nanoseconds per value, the fastest and the median of `rounds` rounds, the ways alternated in
/// each (on a busy machine the fastest round is the better estimate of the cost).
fn time_each<W: Copy>(ways: &[W], n: usize, rounds: usize, mut run: impl FnMut(W, &mut [f32])) -> Vec<String> {
    let input = activations(n);
    let reps = (4_000_000 / n).max(4);
    let mut per_way = vec![Vec::new(); ways.len()];
    let mut buf = input.clone();
    for _ in 0..rounds {
        for (w, times) in ways.iter().zip(&mut per_way) {
            let t = Instant::now();
            for _ in 0..reps {
                buf.copy_from_slice(&input);
                run(*w, &mut buf);
            }
            times.push(t.elapsed().as_secs_f64() * 1e9 / (reps * n) as f64);
        }
    }
    per_way.into_iter().map(|t| format!("{:.3} / {:.3}", t.iter().copied().fold(f64::INFINITY, f64::min), median(t))).collect()
}

fn tanh_throughput(rounds: usize) {
    println!("\ntanh, ns per value, fastest / median of {rounds} alternated rounds (one thread, copy of the input included):");
    println!("| size | {} |", Way::ALL.map(Way::name).join(" | "));
    println!("|---{}|", "|---".repeat(Way::ALL.len()));
    for (label, n) in SIZES {
        let ns = time_each(&Way::ALL, n, rounds, |w, v| w.apply(v));
        println!("| {label} | {} |", ns.join(" | "));
    }
}

/// The distance in representable floats between two finite values (-0.0 and +0.0 are 0 apart).
fn ulps(a: f32, b: f32) -> u64 {
    // Sign-magnitude bits to a line of integers that counts the floats in order.
    let key = |x: f32| {
        let b = x.to_bits() as i32 as i64;
        if b < 0 { i32::MIN as i64 - b } else { b }
    };
    (key(a) - key(b)).unsigned_abs()
}

fn tanh_accuracy() {
    // Every 61st float from 0 to 10, both signs (tanh rounds to 1 beyond), as vmath's test.
    let xs: Vec<f32> = (0..10f32.to_bits()).step_by(61).map(f32::from_bits).flat_map(|x| [x, -x]).collect();
    let specials = [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e-40, -1e-40, f32::MIN_POSITIVE, 9.0, 1e30, -1e30];
    println!("\ntanh accuracy over {} floats in [-10, 10] (every 61st), and the special values NaN, -NaN, +-inf, +-0, +-1e-40, MIN_POSITIVE, 9, +-1e30:", xs.len());
    println!("| tanh | max ulp from tanhf | max ulp from the correctly rounded value | special values as Burn's | same bits in blocks of 37 as whole |");
    println!("|---|---|---|---|---|");
    for way in Way::ALL {
        let mut got = xs.clone();
        way.apply(&mut got);
        let from_tanhf = xs.iter().zip(&got).map(|(x, y)| ulps(*y, x.tanh())).max().unwrap_or(0);
        let from_exact = xs.iter().zip(&got).map(|(x, y)| ulps(*y, (*x as f64).tanh() as f32)).max().unwrap_or(0);
        let mut sp = specials;
        way.apply(&mut sp);
        let wrong: Vec<String> = specials
            .iter()
            .zip(sp)
            .filter(|(x, y)| {
                let want = x.tanh();
                if want.is_nan() { !y.is_nan() } else { y.to_bits() != want.to_bits() }
            })
            .map(|(x, y)| format!("tanh({x:?}) = {y:?}"))
            .collect();
        let mut parts = xs.clone();
        parts.chunks_mut(37).for_each(|c| way.apply(c));
        let split_same = parts.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits());
        let specials_ok = if wrong.is_empty() { "yes".to_string() } else { format!("no: {}", wrong.join(", ")) };
        println!("| {} | {from_tanhf} | {from_exact} | {specials_ok} | {} |", way.name(), if split_same { "yes" } else { "no" });
    }
}

#[derive(Clone, Copy)]
enum Drop {
    Plain,
    Vmath,
    Pulp,
}

fn dropout_throughput(rounds: usize) {
    let mask = DropMask::new(0x5eed, 0.5);
    let ways = [Drop::Plain, Drop::Vmath, Drop::Pulp];
    println!("\ndropout's forward pass (keep 0.5), ns per value, fastest / median of {rounds} alternated rounds (one thread):");
    println!("| size | plain loop (baseline x86-64) | vmath | vmath's loop via pulp |");
    println!("|---|---|---|---|");
    for (label, n) in SIZES {
        let ns = time_each(&ways, n, rounds, |w, v| match w {
            Drop::Plain => v.iter_mut().enumerate().for_each(|(i, x)| *x = (*x * mask.at(i)) * 2.0),
            Drop::Vmath => vmath::dropout_pass(v, 0, mask, 2.0, false),
            Drop::Pulp => vmath_alt::dropout_pulp(v, 0, mask, 2.0, false),
        });
        println!("| {label} | {} |", ns.join(" | "));
    }
    let input = activations(1 << 16);
    let (mut a, mut b) = (input.clone(), input);
    vmath::dropout_pass(&mut a, 0, mask, 2.0, false);
    vmath_alt::dropout_pulp(&mut b, 0, mask, 2.0, false);
    println!("pulp's dropout gives vmath's bits: {}", if a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()) { "yes" } else { "no" });
}

/// `bench`'s median, so the examples' figures are taken as `bench`'s are.
fn median(v: Vec<f64>) -> f64 {
    d2l_mlp::bench::Spread::of(&v).median
}

/// The CPU model and its vector extensions, as the rules ask beside any speed figure: `bench`'s
/// line for flex, whose gemm and vector code the measured kernels share.
fn machine() -> String {
    format!("CPU: {}", d2l_mlp::bench::Machine::this(d2l_mlp::backend::BackendKind::Flex).describe())
}
