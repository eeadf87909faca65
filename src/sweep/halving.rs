//! Successive halving: the rungs' epoch budgets and who goes on to the next rung.

use std::cmp::Ordering;

use super::space::Halving;

/// The epochs of each rung: r_min, r_min * eta, ... capped at r_max (which is always the last).
pub fn rungs(h: &Halving) -> Vec<usize> {
    let mut out = Vec::new();
    let mut r = h.r_min.max(1);
    while r < h.r_max {
        out.push(r);
        r = r.saturating_mul(h.eta.max(2));
    }
    out.push(h.r_max.max(h.r_min));
    out
}

/// How many trials each rung trains, starting from `n`.
pub fn sizes(n: usize, h: &Halving) -> Vec<usize> {
    let mut size = n;
    rungs(h)
        .iter()
        .map(|_| {
            let now = size;
            size = promoted(size, h.eta);
            now
        })
        .collect()
}

/// The best 1/eta of `n` go on (at least one).
pub fn promoted(n: usize, eta: usize) -> usize {
    (n / eta.max(2)).max(1).min(n)
}

/// Order by score, best first: higher accuracy, then (ties) the lower index. A missing score
/// (NaN: the trial diverged) comes last.
pub fn by_score(a: (usize, f64), b: (usize, f64)) -> Ordering {
    match (a.1.is_nan(), b.1.is_nan()) {
        (false, true) => Ordering::Less,
        (true, false) => Ordering::Greater,
        (true, true) => a.0.cmp(&b.0),
        (false, false) => b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)),
    }
}

/// The indices that go on to the next rung: the best `promoted(len, eta)` by score.
pub fn survivors(mut scored: Vec<(usize, f64)>, eta: usize) -> Vec<usize> {
    let keep = promoted(scored.len(), eta);
    scored.sort_by(|a, b| by_score(*a, *b));
    let mut kept: Vec<usize> = scored.into_iter().take(keep).map(|(i, _)| i).collect();
    kept.sort_unstable();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(r_min: usize, r_max: usize, eta: usize) -> Halving {
        Halving { r_min, r_max, eta }
    }

    #[test]
    fn rungs_grow_by_eta_up_to_r_max() {
        assert_eq!(rungs(&h(1, 9, 3)), vec![1, 3, 9]);
        assert_eq!(rungs(&h(1, 10, 3)), vec![1, 3, 9, 10]);
        assert_eq!(rungs(&h(2, 2, 3)), vec![2]);
        assert_eq!(rungs(&h(1, 8, 2)), vec![1, 2, 4, 8]);
    }

    #[test]
    fn thirty_trials_halve_to_ten_then_three() {
        assert_eq!(sizes(30, &h(1, 9, 3)), vec![30, 10, 3]);
        assert_eq!(sizes(2, &h(1, 9, 3)), vec![2, 1, 1]);
        assert_eq!(promoted(0, 3), 0);
    }

    #[test]
    fn the_best_go_on_and_diverged_ones_never_do() {
        let scored = vec![(0, 0.5), (1, f64::NAN), (2, 0.9), (3, 0.7), (4, 0.9), (5, 0.1)];
        assert_eq!(survivors(scored.clone(), 3), vec![2, 4]);
        assert_eq!(survivors(scored, 2), vec![2, 3, 4]);
        assert_eq!(survivors(vec![(7, f64::NAN)], 3), vec![7]);
    }
}
