//! Loops over slices in vector registers, compiled for the widest units the CPU has (AVX-512,
//! AVX2, or the baseline) and picked at run time: tanh, and dropout's mask.
//!
//! Burn's flex `tanh` calls the C library's `tanhf` one value at a time; at the recipe's 18
//! million values an epoch that was most of the tanh recipe's extra time over ReLU. This one is
//! branch-free (each formula computed and selected), so it compiles to vector code. It keeps
//! Burn's semantics for the special values exactly (NaN stays NaN, ±inf gives ±1, -0.0 stays
//! -0.0) and is within 2 ulp of `tanhf` elsewhere (a test sweeps the finite floats).

/// `tanh(x)` for one value, written so that a loop over it vectorises.
///
/// - `|x| < 0.625`: `x + x * x^2 * P(x^2)`, the Taylor series to `x^19` (the rest is below a
///   tenth of an ulp there), with the sign of `x` (so -0.0 stays -0.0).
/// - otherwise: `1 - 2 / (e^(2|x|) + 1)` with the sign of `x` (little cancellation there), `e^y`
///   from `2^n * e^r`, `|r| <= ln2 / 2`, to `r^7`; `|x|` is clamped to 9.5, beyond which `tanh` rounds to 1.
#[inline(always)]
pub(super) fn tanh_lane(x: f32) -> f32 {
    let a = x.abs();
    // The small-argument series.
    let x2 = x * x;
    let p = -443_861_162.0 / 1_856_156_927_625.0;
    let p = p * x2 + 6_404_582.0 / 10_854_718_875.0;
    let p = p * x2 - 929_569.0 / 638_512_875.0;
    let p = p * x2 + 21_844.0 / 6_081_075.0;
    let p = p * x2 - 1_382.0 / 155_925.0;
    let p = p * x2 + 62.0 / 2_835.0;
    let p = p * x2 - 17.0 / 315.0;
    let p = p * x2 + 2.0 / 15.0;
    let p = p * x2 - 1.0 / 3.0;
    // The correction is added to `x` (not `x * (1 + ...)`, which rounds twice near 1); the
    // sign of `x` keeps -0.0.
    let small = (x + x * (x2 * p)).copysign(x);
    // The large-argument form through e^(2|x|).
    let y = 2.0 * a.min(9.5);
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let t = y * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    // ln 2 in two parts, so that `n * LN2_HI` is exact.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    let e = 1.0 / 5040.0;
    let e = e * r + 1.0 / 720.0;
    let e = e * r + 1.0 / 120.0;
    let e = e * r + 1.0 / 24.0;
    let e = e * r + 1.0 / 6.0;
    let e = e * r + 0.5;
    let e = e * r + 1.0;
    let e = e * r + 1.0;
    // 2^n from the integer in `t`'s low bits: `n as i32`, a saturating conversion, does not
    // vectorise. `n` is in 0..=27 here (`y` is at most 19), so this is the same value.
    let scale = f32::from_bits((t.to_bits() - ROUND.to_bits() + 127) << 23);
    let large = (1.0 - 2.0 / (e * scale + 1.0)).copysign(x);
    let v = if a < 0.625 { small } else { large };
    if x.is_nan() { x } else { v }
}

// Inlined into each `target_feature` function below, which otherwise only call the baseline
// build of this loop.
#[inline(always)]
fn tanh_each(v: &mut [f32]) {
    v.iter_mut().for_each(|v| *v = tanh_lane(*v));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn tanh_avx512(v: &mut [f32]) {
    tanh_each(v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_avx2(v: &mut [f32]) {
    tanh_each(v);
}

/// `tanh` of every value of `v`, in place, with the widest vector units this CPU has.
pub fn tanh_in_place(v: &mut [f32]) {
    #[cfg(feature = "team-alternatives")]
    if super::vmath_alt::divert_tanh(v) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, the one feature the function is compiled for.
            return unsafe { tanh_avx512(v) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, the one feature the function is compiled for.
            return unsafe { tanh_avx2(v) };
        }
    }
    tanh_each(v);
}

/// Dropout's mask for one call: element `i` is kept when a hash of `(key, i)` falls below
/// `keep`. Drawn from its position alone, so any split between threads gives the same mask, and
/// the backward pass recomputes it instead of storing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropMask {
    pub key: u64,
    /// Keep an element when its 24-bit draw is below this (`keep * 2^24`).
    threshold: u32,
}

impl DropMask {
    /// The mask keeping each element with probability `keep` (in `[0, 1]`).
    pub fn new(key: u64, keep: f64) -> Self {
        Self { key, threshold: (keep.clamp(0.0, 1.0) * (1u64 << 24) as f64) as u32 }
    }

    /// 1.0 where element `i` is kept, else 0.0.
    #[inline(always)]
    pub fn at(self, i: usize) -> f32 {
        // Two rounds of murmur3's finaliser over the index and each half of the key.
        let fmix = |mut h: u32| {
            h ^= h >> 16;
            h = h.wrapping_mul(0x85eb_ca6b);
            h ^= h >> 13;
            h = h.wrapping_mul(0xc2b2_ae35);
            h ^ (h >> 16)
        };
        let h = fmix((i as u32).wrapping_mul(0x9e37_79b1) ^ self.key as u32);
        let h = fmix(h ^ (self.key >> 32) as u32);
        if (h >> 8) < self.threshold { 1.0 } else { 0.0 }
    }
}

/// `v[i] = (v[i] * m) * scale` (`backward`: `(v[i] * scale) * m`) for the mask's elements
/// `offset + i`.
#[inline(always)]
pub(super) fn dropout_each(v: &mut [f32], offset: usize, mask: DropMask, scale: f32, backward: bool) {
    if backward {
        v.iter_mut().enumerate().for_each(|(i, v)| *v = (*v * scale) * mask.at(offset + i));
    } else {
        v.iter_mut().enumerate().for_each(|(i, v)| *v = (*v * mask.at(offset + i)) * scale);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn dropout_avx512(v: &mut [f32], offset: usize, mask: DropMask, scale: f32, backward: bool) {
    dropout_each(v, offset, mask, scale, backward);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dropout_avx2(v: &mut [f32], offset: usize, mask: DropMask, scale: f32, backward: bool) {
    dropout_each(v, offset, mask, scale, backward);
}

/// Dropout over `v`, the elements `offset..` of the mask (see [`super::kernel::dropout_in_place`]).
pub fn dropout_pass(v: &mut [f32], offset: usize, mask: DropMask, scale: f32, backward: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, the one feature the function is compiled for.
            return unsafe { dropout_avx512(v, offset, mask, scale, backward) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, the one feature the function is compiled for.
            return unsafe { dropout_avx2(v, offset, mask, scale, backward) };
        }
    }
    dropout_each(v, offset, mask, scale, backward);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The distance in representable floats between two finite values of one sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn special_values_are_burns() {
        let specials = [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e-40, -1e-40, f32::MIN_POSITIVE, 9.0, 1e30, -1e30];
        let mut v = specials;
        tanh_in_place(&mut v);
        for (x, got) in specials.iter().zip(v) {
            let want = x.tanh();
            assert_eq!(got.is_nan(), want.is_nan(), "tanh({x})");
            if !want.is_nan() {
                assert_eq!(got.to_bits(), want.to_bits(), "tanh({x:?}): {got:?}, tanhf {want:?}");
            }
        }
    }

    #[test]
    fn every_path_is_within_two_ulp_of_tanhf() {
        // Every 61st float from 0 to 10 (both signs; tanhf is 1 beyond), in slices whose length
        // leaves a remainder after the vector loop.
        let xs: Vec<f32> = (0..10f32.to_bits()).step_by(61).map(f32::from_bits).flat_map(|x| [x, -x]).collect();
        let mut worst = (0, 0.0f32);
        for chunk in xs.chunks(1021) {
            let mut v = chunk.to_vec();
            tanh_in_place(&mut v);
            let mut scalar = chunk.to_vec();
            tanh_each(&mut scalar);
            assert!(v.iter().zip(&scalar).all(|(a, b)| a.to_bits() == b.to_bits()), "the vector units give the scalar code's bits");
            for (x, got) in chunk.iter().zip(v) {
                let d = ulps(got, x.tanh());
                if d > worst.0 {
                    worst = (d, *x);
                }
            }
        }
        assert!(worst.0 <= 2, "tanh({}) is {} ulp from tanhf", worst.1, worst.0);
    }
}
