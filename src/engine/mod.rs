//! The fast path, a wing of its own behind one switch. On the flex backend the recipe's linear
//! layers (with their activation), dropout, its loss, the right-answer count, the plain SGD step
//! and the batches run as fused operations over our own kernels; everywhere else, and whenever
//! the switch is off, Burn's own operations run. `--reference-ops` (or
//! `D2L_MLP_REFERENCE_OPS=1`) turns the fused operations off for the whole process, to compare
//! against Burn or to rule them out.
//!
//! As in Burn's `examples/custom-cubecl-kernel`, each fused operation sits beside its reference
//! and the model calls one operation, which decides:
//! - [`linear_act`], [`dropout`], [`cross_entropy`], [`count_correct`], [`sgd_step`] (in
//!   `ops.rs`): the operations the model, the metrics and the optimizer call, and [`feed`]: how
//!   the loader's batches are built. Every choice between fused and Burn's is made there.
//! - [`reference`]: Burn's operations, as each fused one must behave.
//! - `fused` (flex builds): the fused operations, added through Burn's backend-extension point
//!   (each with its backward pass).
//! - `kernel` (flex builds): their arithmetic on plain `f32` slices.
//! - `vmath` (flex builds): tanh and dropout's mask in vector registers, the widest the CPU has.
//! - [`team`]: the helper threads the kernels split their work with.
//! - [`batches`]: buffers of rows the team fills, now or ahead (the loader's batches).
//!
//! What runs behind [`enabled`] gives Burn's results up to the order of floating-point sums
//! (and, for tanh, within 2 ulp of each value); tests/differential.rs holds it to that.

pub mod batches;
pub mod feed;
#[cfg(feature = "flex")]
pub mod fused;
#[cfg(feature = "flex")]
pub mod kernel;
mod ops;
pub mod reference;
#[cfg(feature = "team-alternatives")]
pub mod sched_alt;
pub mod team;
#[cfg(feature = "flex")]
pub mod vmath;
#[cfg(feature = "team-alternatives")]
pub mod vmath_alt;

pub use ops::{count_correct, cross_entropy, dropout, linear_act, sgd_step};

use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::Device;

/// The environment variable behind `--reference-ops`.
pub const ENV_REFERENCE_OPS: &str = "D2L_MLP_REFERENCE_OPS";

static REFERENCE_OPS: AtomicBool = AtomicBool::new(false);

/// Run Burn's reference operations everywhere (`true`) or the fused ones where they exist.
pub fn use_reference_ops(on: bool) {
    REFERENCE_OPS.store(on, Ordering::Relaxed);
}

/// Whether the fused operations are switched off.
pub fn reference_ops() -> bool {
    REFERENCE_OPS.load(Ordering::Relaxed)
}

/// Whether the fused operations run on `device`: built with flex, on the flex device (plain or
/// autodiff), and not switched off. The one place that decides.
pub fn enabled(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        !reference_ops() && fused::on_flex(device)
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}
