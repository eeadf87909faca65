//! The fast path's one switch. On the flex backend the recipe's linear layers (with ReLU), its
//! loss, the plain SGD step and the batches run as fused operations over our own kernels
//! (`model/fused/`, `model/kernel.rs`, `team.rs`); everywhere else, and whenever the switch is
//! off, Burn's own operations run. `--reference-ops` (or `D2L_MLP_REFERENCE_OPS=1`) turns the
//! fused operations off for the whole process, to compare against Burn or to rule them out.

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
        !reference_ops() && crate::model::fused::on_flex(device)
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}
