//! Kept crates in place of [`super::vmath`], to measure it against them
//! (`examples/vmath_compare.rs`, docs/performance.md). Built only with the `team-alternatives`
//! feature; `D2L_MLP_VMATH` picks the fused layer's tanh for the whole process, read once.
//!
//! - `pulp`: vmath's own formulas, dispatched by pulp (already in the tree through gemm)
//!   instead of vmath's `target_feature` functions: the same bits, less hand-written dispatch.
//! - `rten`: rten-vecmath's `Tanh`, its own formula (within 3 ulp of `tanhf`, it says), with
//!   the last partial vector done masked by the same formula, so each value's bits do not
//!   depend on where a block starts or ends.

use std::sync::OnceLock;

use super::vmath::{DropMask, dropout_each, tanh_lane};

/// The environment variable that picks the tanh.
pub const ENV: &str = "D2L_MLP_VMATH";

/// Whose tanh the fused layer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tanh {
    Vmath,
    Pulp,
    Rten,
}

impl Tanh {
    pub const ALL: [Tanh; 3] = [Self::Vmath, Self::Pulp, Self::Rten];

    pub fn name(self) -> &'static str {
        match self {
            Self::Vmath => "vmath",
            Self::Pulp => "pulp",
            Self::Rten => "rten",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// `tanh` of every value of `v`, in place, this way.
    pub fn apply(self, v: &mut [f32]) {
        match self {
            Self::Vmath => super::vmath::tanh_in_place(v),
            Self::Pulp => tanh_pulp(v),
            Self::Rten => tanh_rten(v),
        }
    }
}

/// The tanh `D2L_MLP_VMATH` names (unset or empty: vmath's), or why its value is refused.
pub fn chosen() -> Result<Tanh, String> {
    static CHOSEN: OnceLock<Result<Tanh, String>> = OnceLock::new();
    CHOSEN
        .get_or_init(|| match std::env::var(ENV) {
            Ok(v) if !v.is_empty() => Tanh::parse(&v).ok_or_else(|| {
                let names: Vec<_> = Tanh::ALL.iter().map(|k| k.name()).collect();
                format!("{ENV}={v} is not a tanh: use one of {}", names.join(", "))
            }),
            _ => Ok(Tanh::Vmath),
        })
        .clone()
}

/// [`super::vmath::tanh_in_place`]'s hook: whether another tanh ran.
pub(super) fn divert_tanh(v: &mut [f32]) -> bool {
    match chosen().unwrap_or(Tanh::Vmath) {
        Tanh::Vmath => false,
        other => {
            other.apply(v);
            true
        }
    }
}

/// One line naming the scheduler and the tanh the environment picked, or why a value is refused.
pub fn describe() -> Result<String, String> {
    Ok(format!("engine alternatives: scheduler {}, tanh {}", super::sched_alt::chosen()?.name(), chosen()?.name()))
}

/// vmath's tanh, dispatched by pulp.
pub fn tanh_pulp(v: &mut [f32]) {
    pulp::Arch::new().dispatch(|| v.iter_mut().for_each(|x| *x = tanh_lane(*x)));
}

/// rten-vecmath's tanh.
pub fn tanh_rten(v: &mut [f32]) {
    use rten_simd::SimdUnaryOp;
    rten_vecmath::Tanh {}.map_mut(v);
}

/// vmath's dropout pass, dispatched by pulp.
pub fn dropout_pulp(v: &mut [f32], offset: usize, mask: DropMask, scale: f32, backward: bool) {
    pulp::Arch::new().dispatch(|| dropout_each(v, offset, mask, scale, backward));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Vec<f32> {
        (0..10f32.to_bits()).step_by(9973).map(f32::from_bits).flat_map(|x| [x, -x]).collect()
    }

    #[test]
    fn pulp_gives_vmaths_bits() {
        let xs = inputs();
        let (mut a, mut b) = (xs.clone(), xs);
        super::super::vmath::tanh_in_place(&mut a);
        tanh_pulp(&mut b);
        assert!(a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()));
        let mask = DropMask::new(7, 0.5);
        let (mut a, mut b) = (a.clone(), a);
        super::super::vmath::dropout_pass(&mut a, 3, mask, 2.0, false);
        dropout_pulp(&mut b, 3, mask, 2.0, false);
        assert!(a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn rtens_bits_do_not_depend_on_where_a_block_ends() {
        let xs = inputs();
        let mut whole = xs.clone();
        tanh_rten(&mut whole);
        let mut parts = xs;
        for chunk in parts.chunks_mut(37) {
            tanh_rten(chunk);
        }
        assert!(whole.iter().zip(&parts).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
