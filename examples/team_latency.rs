//! What one split costs on each scheduler the engine can use (`team-alternatives` feature):
//! the team, rayon, rayon kept awake, chili and forte, in alternated rounds, on the rayon pool
//! thread that trains. Figures and method: docs/performance.md.
//!
//! cargo run --release --features team-alternatives --ignore-rust-version --example team_latency [-- ROUNDS]

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use d2l_mlp::engine::sched_alt::{self, Scheduler};

/// Splits timed back to back, and after each pause, per scheduler and round.
const BACK_TO_BACK: usize = 4000;
const AFTER_PAUSE: usize = 200;
/// The caller's own work before a split: a step's serial parts (the team's helpers still spin),
/// and longer than they spin (every scheduler's threads asleep). Each block's work.
const PAUSES: [Duration; 2] = [Duration::from_micros(200), Duration::from_millis(5)];
const BLOCK: Duration = Duration::from_micros(25);

fn main() {
    if std::env::var_os(sched_alt::ENV).is_some() {
        eprintln!("team_latency: unset {} (this example picks each scheduler itself)", sched_alt::ENV);
        std::process::exit(2);
    }
    let rounds = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3usize);
    println!("{}", machine());
    println!("threads: {} (rayon pool); each round: {BACK_TO_BACK} empty splits back to back, then for each pause {AFTER_PAUSE} splits of 2 blocks of {} us after it", rayon::current_num_threads(), BLOCK.as_micros());
    let schedulers: Vec<Scheduler> = Scheduler::ALL.into_iter().filter(|&s| s != Scheduler::TeamNoAhead).collect();
    let mut rows: Vec<Vec<Figures>> = vec![Vec::new(); schedulers.len()];
    // On a rayon pool thread, as training runs (`train::on_pool`).
    rayon::scope(|_| {
        for _ in 0..rounds {
            for (s, row) in schedulers.iter().zip(&mut rows) {
                row.push(measure(*s));
            }
        }
    });
    let pauses: Vec<String> = PAUSES.iter().map(|p| format!("after {} us: time (us) / blocks run by another thread", p.as_micros())).collect();
    println!("| scheduler | empty split, back to back (us) | {} |", pauses.join(" | "));
    println!("|---|---|{}", "---|".repeat(PAUSES.len()));
    for (s, row) in schedulers.iter().zip(&rows) {
        let med = |f: &dyn Fn(&Figures) -> f64| median(row.iter().map(f).collect());
        let each = |f: &dyn Fn(&Figures) -> f64| row.iter().map(|r| format!("{:.1}", f(r))).collect::<Vec<_>>().join(", ");
        let paused: Vec<String> = (0..PAUSES.len())
            .map(|p| format!("{:.1} ({}) / {:.0} %", med(&|r| r.paused_us[p]), each(&|r| r.paused_us[p]), med(&|r| r.helped[p]) * 100.0))
            .collect();
        println!("| {} | {:.2} ({}) | {} |", s.name(), med(&|r| r.empty_us), each(&|r| r.empty_us), paused.join(" | "));
    }
    println!("(median over {rounds} rounds, each round's figure in brackets; a split of two {} us blocks takes {} us where another thread runs one of them at once, {} us where the caller runs both)", BLOCK.as_micros(), BLOCK.as_micros(), 2 * BLOCK.as_micros());
}

#[derive(Clone)]
struct Figures {
    /// Mean microseconds per empty split of 2 blocks, back to back.
    empty_us: f64,
    /// Per pause: the median microseconds per split of 2 busy blocks after it, and the share
    /// of those blocks run by a thread other than the caller.
    paused_us: Vec<f64>,
    helped: Vec<f64>,
}

fn measure(s: Scheduler) -> Figures {
    let t = Instant::now();
    for _ in 0..BACK_TO_BACK {
        sched_alt::run_on(s, 2, &|_| {});
    }
    let empty_us = t.elapsed().as_secs_f64() * 1e6 / BACK_TO_BACK as f64;
    let (paused_us, helped) = PAUSES.iter().map(|&p| after_pause(s, p)).unzip();
    Figures { empty_us, paused_us, helped }
}

/// Splits of two busy blocks, each after `pause` of the caller's own work: the median time of
/// one, and the share of the blocks another thread ran.
fn after_pause(s: Scheduler, pause: Duration) -> (f64, f64) {
    let me = std::thread::current().id();
    let elsewhere = AtomicUsize::new(0);
    let mut times = Vec::with_capacity(AFTER_PAUSE);
    for _ in 0..AFTER_PAUSE {
        spin(pause);
        let t = Instant::now();
        sched_alt::run_on(s, 2, &|_| {
            if std::thread::current().id() != me {
                elsewhere.fetch_add(1, Relaxed);
            }
            spin(BLOCK);
        });
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    (median(times), elsewhere.load(Relaxed) as f64 / (2 * AFTER_PAUSE) as f64)
}

/// Busy work for `d`, as a product's block or the step's serial parts keep a core busy.
fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
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
