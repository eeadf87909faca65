//! Benchmark figures: seconds per epoch and images per second from a run's outcome, peak
//! memory, and the machine they were measured on (never compare figures from two machines).

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::train::TrainOutcome;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(v: &[f64]) -> Spread {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => s[n / 2],
            _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        };
        Spread { median, min: s.first().copied().unwrap_or(f64::NAN), max: s.last().copied().unwrap_or(f64::NAN) }
    }
}

/// The CPU a figure was measured on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub cpu: String,
    /// The widest vector extension the matrix products use here (AVX-512, AVX2+FMA, ...).
    pub vector: String,
    pub threads: usize,
}

impl Machine {
    /// This CPU, and the vector extension `backend`'s matrix products use on it.
    pub fn this(backend: BackendKind) -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| t.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string()))
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Machine { cpu, vector: vector_extension(backend), threads: threads() }
    }

    pub fn describe(&self) -> String {
        format!("{} | {} | {} threads", self.cpu, self.vector, self.threads)
    }
}

pub fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// What the backend's matrix products pick at run time on this CPU: flex's gemm has AVX-512
/// kernels (burn feature x86-v4), ndarray's matrixmultiply stops at AVX2+FMA.
fn vector_extension(backend: BackendKind) -> String {
    let widest = widest_vectors();
    match backend {
        BackendKind::Flex => format!("{widest} (gemm)"),
        BackendKind::Ndarray => format!("{} (matrixmultiply; CPU has {widest})", if widest == "AVX-512" { "AVX2+FMA" } else { widest }),
        BackendKind::Wgpu => format!("GPU (CPU has {widest})"),
    }
}

fn widest_vectors() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return "AVX2+FMA";
        }
        "SSE"
    }
    #[cfg(not(target_arch = "x86_64"))]
    "NEON/other"
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendFigures {
    pub backend: BackendKind,
    pub device: String,
    pub machine: Machine,
    /// The recipe measured: `784-256-10 relu, batch 256, lr 0.1` (and what else it sets).
    #[serde(default)]
    pub recipe: String,
    pub epochs: usize,
    pub train_images: usize,
    pub test_images: usize,
    pub train_seconds: Spread,
    pub test_seconds: Spread,
    pub epoch_seconds: Spread,
    pub train_images_per_second: f64,
    pub test_images_per_second: f64,
    pub final_train_loss: f64,
    pub final_test_accuracy: f64,
    /// Peak resident memory of the process that measured this backend alone.
    pub peak_rss_mib: f64,
}

impl BackendFigures {
    pub fn from_outcome(backend: BackendKind, device: &str, recipe: &crate::config::TrainConfig, sizes: (usize, usize), o: &TrainOutcome) -> Self {
        let pick = |f: fn(&(f64, f64)) -> f64| o.split_seconds.iter().map(f).collect::<Vec<f64>>();
        let (train_seconds, test_seconds) = (Spread::of(&pick(|s| s.0)), Spread::of(&pick(|s| s.1)));
        let last = o.rows.last();
        BackendFigures {
            backend,
            device: device.to_string(),
            machine: Machine::this(backend),
            recipe: describe_recipe(recipe),
            epochs: o.split_seconds.len(),
            train_images: sizes.0,
            test_images: sizes.1,
            train_images_per_second: sizes.0 as f64 / train_seconds.median,
            test_images_per_second: sizes.1 as f64 / test_seconds.median,
            train_seconds,
            test_seconds,
            epoch_seconds: Spread::of(&pick(|s| s.0 + s.1)),
            final_train_loss: last.map(|r| r.train_loss).unwrap_or(f64::NAN),
            final_test_accuracy: last.map(|r| r.test_acc).unwrap_or(f64::NAN),
            peak_rss_mib: peak_rss_mib(),
        }
    }

    pub fn render(&self) -> String {
        let (tr, te, ep) = (&self.train_seconds, &self.test_seconds, &self.epoch_seconds);
        format!(
            "{} | burn {} | {}\n  recipe: {}\n  train: {:.3} s/epoch median (min {:.3}, max {:.3}), {:.0} images/s\n  test:  {:.3} s/epoch median (min {:.3}, max {:.3}), {:.0} images/s\n  epoch: {:.3} s median | peak RSS {:.0} MiB (this backend alone) | final train loss {:.4}, test acc {:.4}",
            self.device,
            crate::run::info::BURN_VERSION,
            self.machine.describe(),
            self.recipe,
            tr.median, tr.min, tr.max, self.train_images_per_second,
            te.median, te.min, te.max, self.test_images_per_second,
            ep.median, self.peak_rss_mib, self.final_train_loss, self.final_test_accuracy
        )
    }
}

/// What decides an epoch's cost: `784-256-10 relu, batch 256, lr 0.1`, then the other settings
/// a recipe turns on (momentum, weight decay, dropout), and TensorBoard's events when off.
pub fn describe_recipe(c: &crate::config::TrainConfig) -> String {
    let mut s = format!("{}, batch {}, lr {}", c.describe_model(), c.batch_size, c.lr);
    for (name, v) in [("momentum", c.momentum), ("weight_decay", c.weight_decay), ("dropout", c.dropout)] {
        if v > 0.0 {
            s.push_str(&format!(", {name} {v}"));
        }
    }
    if !c.tensorboard {
        s.push_str(", no TensorBoard events");
    }
    s
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub burn_version: String,
    pub data: String,
    pub synthetic_data: bool,
    pub batch_size: usize,
    pub results: Vec<BackendFigures>,
}

pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_median_min_max() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[1.0, 2.0]).median, 1.5);
    }

    #[test]
    fn peak_rss_is_positive_on_linux() {
        assert!(peak_rss_mib() > 1.0);
    }

    #[test]
    fn the_machine_names_its_cpu_and_vectors() {
        let m = Machine::this(BackendKind::Flex);
        assert!(!m.cpu.is_empty() && !m.vector.is_empty() && m.threads >= 1, "{m:?}");
    }
}
