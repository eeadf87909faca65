//! The fast path, a wing of its own behind one switch. On the flex backend the recipe's linear
//! layers (with their activation), dropout, its loss, the plain SGD step and the batches run as
//! fused operations over our own kernels; everywhere else, and whenever the switch is off,
//! Burn's own operations run. `--reference-ops` (or `D2L_MLP_REFERENCE_OPS=1`) turns the fused operations
//! off for the whole process, to compare against Burn or to rule them out.
//!
//! - [`fused`]: the operations, added through Burn's backend-extension point (each with its
//!   backward pass), as `model/` calls them.
//! - [`kernel`]: their arithmetic on plain `f32` slices.
//! - [`team`]: the helper threads the kernels split their work with.
//! - [`batches`]: buffers of rows the team fills, now or ahead (the loader's batches).
//! - [`vmath`]: tanh and dropout's mask in vector registers, the widest the CPU has.
//!
//! A reader of the book's model can stop at [`enabled`]: what runs behind it gives Burn's
//! results up to the order of floating-point sums (and, for tanh, within 2 ulp of each value).

pub mod batches;
#[cfg(feature = "flex")]
pub mod fused;
#[cfg(feature = "flex")]
pub mod kernel;
#[cfg(feature = "team-alternatives")]
pub mod sched_alt;
pub mod team;
#[cfg(feature = "flex")]
pub mod vmath;
#[cfg(feature = "team-alternatives")]
pub mod vmath_alt;

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
