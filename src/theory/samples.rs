//! How many samples p learners need to match the optimal guarantee one learner reaches with a
//! budget of `M K_1` samples: solve `R*_p(K_p) = R*_1(K_1)` for `K_p`.
//!
//! With D_f, L, sigma^2 and M fixed, `K = alpha^2 M L D_f / sigma^2` and the optimal bound is
//! `(sigma^2 / M) g*(alpha, p) / alpha`, strictly decreasing in alpha (larger K lowers every
//! term's minimum) and tending to 0. So `K_p / K_1 = (alpha_p / alpha_1)^2` depends on alpha_1
//! and p alone, and alpha_p is found by bracketing then bisection in log alpha to ~1e-14
//! relative. When no bracket is found within f64 range the answer is
//! [`TheoryError::Unreachable`]; mathematically some K always reaches the target.
//!
//! This module computes; it must never print or panic on the values it is given.

use super::bound::{Problem, normalised_optimum};
use super::{TheoryError, positive};

/// `g*(alpha, p) / alpha`: the optimal bound in units of `sigma^2 / M`.
fn scaled_optimum(alpha: f64, p: u32) -> f64 {
    normalised_optimum(alpha, p).value / alpha
}

/// `K_p / K_1` for the one-learner budget with `alpha_1 = sqrt(K_1 sigma^2 / (M L D_f))`.
/// For p = 1 this is 1. `p` must be >= 1 and `alpha_1` finite and > 0.
pub fn samples_ratio(alpha_1: f64, p: u32) -> Result<f64, TheoryError> {
    let alpha_1 = positive("alpha", alpha_1)?;
    if p == 0 {
        return Err(TheoryError::OutOfRange {
            what: "p",
            value: 0.0,
            allowed: "learners must be >= 1",
        });
    }
    let target = scaled_optimum(alpha_1, 1);
    let too_high = |a: f64| scaled_optimum(a, p) > target;
    // alpha_p >= alpha_1: for p >= 1 the bound is pointwise larger and the constraint tighter.
    let (mut lo, mut hi) = (alpha_1, alpha_1);
    while too_high(hi) {
        lo = hi;
        hi *= 2.0;
        if !(hi.is_finite() && (hi / alpha_1) < 1e150) {
            return Err(TheoryError::Unreachable { target, p });
        }
    }
    if lo == hi {
        return Ok(1.0);
    }
    for _ in 0..200 {
        if hi / lo - 1.0 <= 1e-14 {
            break;
        }
        let mid = (lo * hi).sqrt();
        if too_high(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let a_p = (lo * hi).sqrt();
    Ok((a_p / alpha_1).powi(2))
}

/// `K_p` for the problem's constants, where the problem's `k` is the one-learner `K_1`.
pub fn samples_needed(problem: &Problem, p: u32) -> Result<f64, TheoryError> {
    Ok(problem.k * samples_ratio(problem.alpha(), p)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_learner_needs_its_own_budget() {
        for a in [0.01, 1.0, 100.0] {
            assert_eq!(samples_ratio(a, 1), Ok(1.0));
        }
    }

    #[test]
    fn p_zero_is_rejected() {
        assert!(samples_ratio(1.0, 0).is_err());
        assert!(samples_ratio(-1.0, 2).is_err());
    }
}
