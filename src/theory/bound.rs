//! The LHL15 Theorem 1 bound (1) under its step-size constraint (2), as restated in seed 000,
//! and its optimum over the learning rate gamma:
//!
//! R(gamma) = 2 D_f/(M K gamma) + sigma^2 L gamma + 2 sigma^2 L^2 M p gamma^2      (1)
//! subject to L M gamma + 2 L^2 M^2 p^2 gamma^2 <= 1                               (2)
//!
//! How it is minimised: with gamma = c sqrt(D_f/(M K L sigma^2)) the bound is
//! sqrt(D_f L sigma^2/(M K)) g(c), g(c) = 2/c + c + 2 p c^2/alpha, and (2) is
//! c/alpha + 2 p^2 c^2/alpha^2 <= 1, i.e. c <= c_max = alpha u_p with
//! u_p = 2/(1 + sqrt(1 + 8 p^2)). g is strictly convex on c > 0, so its constrained minimum is
//! the stationary point clipped to c_max. Substituting c = 1/t in g'(c) = 0 gives the depressed
//! cubic t^3 - t/2 - 2p/alpha = 0, which has exactly one positive root: Cardano's formula when
//! its discriminant is positive, the trigonometric form otherwise, then two Newton steps to
//! polish to machine precision. No iterative search is needed.
//!
//! This module computes; it must never print, read files, or panic on the values it is given.

use super::{TheoryError, positive};

/// `sqrt(D_f / (M K L sigma^2))`: the learning rate assumed in the linear-speedup analysis.
pub fn predicted_gamma(d_f: f64, m: f64, k: f64, l: f64, sigma2: f64) -> f64 {
    (d_f / (m * k * l * sigma2)).sqrt()
}

/// `sqrt(K sigma^2 / (M L D_f))`: seed 000's measure of (the root of) the mini-batches processed.
pub fn alpha(k: f64, sigma2: f64, m: f64, l: f64, d_f: f64) -> f64 {
    (k * sigma2 / (m * l * d_f)).sqrt()
}

/// `u_p = c_max / alpha`, the positive root of `u + 2 p^2 u^2 = 1`, in the form without
/// cancellation.
pub fn constraint_root(p: u32) -> f64 {
    let p = f64::from(p);
    2.0 / (1.0 + (1.0 + 8.0 * p * p).sqrt())
}

/// Left side of the normalised constraint: `c/alpha + 2 p^2 c^2/alpha^2` (feasible when <= 1).
pub fn normalised_constraint(c: f64, alpha: f64, p: u32) -> f64 {
    let p = f64::from(p);
    c / alpha + 2.0 * p * p * c * c / (alpha * alpha)
}

/// The normalised bound `g(c) = 2/c + c + 2 p c^2/alpha`.
pub fn normalised_bound(c: f64, alpha: f64, p: u32) -> f64 {
    2.0 / c + c + 2.0 * f64::from(p) * c * c / alpha
}

/// The unique positive root of `t^3 - t/2 - q = 0` for `q >= 0`.
fn cubic_positive_root(q: f64) -> f64 {
    // Depressed cubic t^3 + P t + Q with P = -1/2, Q = -q; disc = (Q/2)^2 + (P/3)^3.
    let disc = q * q / 4.0 - 1.0 / 216.0;
    let mut t = if disc >= 0.0 {
        // Cardano: t = u + v with u v = -P/3 = 1/6; v from u avoids cancellation.
        let u = (q / 2.0 + disc.sqrt()).cbrt();
        u + 1.0 / (6.0 * u)
    } else {
        // Three real roots; the largest (k = 0) is the only positive one.
        let r = (1.0f64 / 6.0).sqrt();
        let phi = (3.0 * 6.0f64.sqrt() * q).clamp(-1.0, 1.0).acos();
        2.0 * r * (phi / 3.0).cos()
    };
    for _ in 0..2 {
        let f = t * t * t - 0.5 * t - q;
        let df = 3.0 * t * t - 0.5;
        if df > 0.0 {
            t -= f / df;
        }
    }
    t
}

/// Shrinks `x` by ulps until `feasible(x)`, so rounding never puts an optimum outside (2).
fn nudge_feasible(mut x: f64, feasible: impl Fn(f64) -> bool) -> f64 {
    for _ in 0..64 {
        if feasible(x) {
            break;
        }
        x *= 1.0 - f64::EPSILON;
    }
    x
}

/// The optimum of the normalised problem: `c` minimising `g` under the constraint, `g(c)`, and
/// whether the constraint is active there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormalisedOptimum {
    pub c: f64,
    pub value: f64,
    pub constrained: bool,
}

/// Minimises `g(c)` over `0 < c <= alpha u_p` (see the module doc for the method). `alpha` must be
/// finite and > 0; otherwise the fields are NaN.
pub fn normalised_optimum(alpha: f64, p: u32) -> NormalisedOptimum {
    if !(alpha.is_finite() && alpha > 0.0) {
        return NormalisedOptimum {
            c: f64::NAN,
            value: f64::NAN,
            constrained: false,
        };
    }
    let c_max = nudge_feasible(alpha * constraint_root(p), |c| {
        normalised_constraint(c, alpha, p) <= 1.0
    });
    let c_free = 1.0 / cubic_positive_root(2.0 * f64::from(p) / alpha);
    let (c, constrained) = if c_free >= c_max {
        (c_max, true)
    } else {
        (c_free, false)
    };
    NormalisedOptimum {
        c,
        value: normalised_bound(c, alpha, p),
        constrained,
    }
}

/// (optimal normalised bound for p learners) / (optimal for 1 learner); seed 000's theorem says
/// about `p / alpha` when `alpha <= p`. NaN when `alpha` is not finite and > 0.
pub fn guarantee_ratio(alpha: f64, p: u32) -> f64 {
    normalised_optimum(alpha, p).value / normalised_optimum(alpha, 1).value
}

/// The three terms of (1) at one gamma.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Terms {
    /// `2 D_f / (M K gamma)`: the distance to the optimum, spread over the updates.
    pub initial_gap: f64,
    /// `sigma^2 L gamma`: gradient noise.
    pub variance: f64,
    /// `2 sigma^2 L^2 M p gamma^2`: the price of staleness bounded by p.
    pub staleness: f64,
}

impl Terms {
    pub fn total(&self) -> f64 {
        self.initial_gap + self.variance + self.staleness
    }
}

/// The optimum of (1) under (2) for one p.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimum {
    pub gamma: f64,
    pub terms: Terms,
    /// Whether (2) holds with equality at `gamma` (the step-size cap binds).
    pub constrained: bool,
}

/// The problem constants of (1): `D_f = f(x_1) - f(x*)`, `L` the gradient's Lipschitz constant,
/// `sigma2` the gradient variance bound, `M` the mini-batch size, `K` the number of updates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Problem {
    pub d_f: f64,
    pub l: f64,
    pub sigma2: f64,
    pub m: f64,
    pub k: f64,
}

impl Problem {
    /// Checks every constant is finite and > 0.
    pub fn new(d_f: f64, l: f64, sigma2: f64, m: f64, k: f64) -> Result<Self, TheoryError> {
        Ok(Self {
            d_f: positive("D_f", d_f)?,
            l: positive("L", l)?,
            sigma2: positive("sigma^2", sigma2)?,
            m: positive("M", m)?,
            k: positive("K", k)?,
        })
    }

    pub fn alpha(&self) -> f64 {
        alpha(self.k, self.sigma2, self.m, self.l, self.d_f)
    }

    pub fn predicted_gamma(&self) -> f64 {
        predicted_gamma(self.d_f, self.m, self.k, self.l, self.sigma2)
    }

    /// `sqrt(D_f L sigma^2 / (M K))`: the bound equals this times the normalised `g(c)`.
    pub fn scale(&self) -> f64 {
        (self.d_f * self.l * self.sigma2 / (self.m * self.k)).sqrt()
    }

    /// The three terms of (1) at `gamma` with staleness bound `p`.
    pub fn terms(&self, gamma: f64, p: u32) -> Terms {
        let Self {
            d_f,
            l,
            sigma2,
            m,
            k,
        } = *self;
        Terms {
            initial_gap: 2.0 * d_f / (m * k * gamma),
            variance: sigma2 * l * gamma,
            staleness: 2.0 * sigma2 * l * l * m * f64::from(p) * gamma * gamma,
        }
    }

    /// Left side of (2): `L M gamma + 2 L^2 M^2 p^2 gamma^2` (feasible when <= 1).
    pub fn constraint(&self, gamma: f64, p: u32) -> f64 {
        let lm = self.l * self.m * gamma;
        let p = f64::from(p);
        lm + 2.0 * p * p * lm * lm
    }

    /// The largest gamma satisfying (2).
    pub fn gamma_max(&self, p: u32) -> f64 {
        nudge_feasible(constraint_root(p) / (self.l * self.m), |g| {
            self.constraint(g, p) <= 1.0
        })
    }

    /// The gamma minimising (1) under (2), from the normalised optimum.
    pub fn optimum(&self, p: u32) -> Optimum {
        let opt = normalised_optimum(self.alpha(), p);
        let gamma = nudge_feasible(opt.c * self.predicted_gamma(), |g| {
            self.constraint(g, p) <= 1.0
        });
        Optimum {
            gamma,
            terms: self.terms(gamma, p),
            constrained: opt.constrained,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_root_solves_both_branches() {
        for q in [0.0, 1e-3, 0.1, 1.0 / (3.0 * 6.0f64.sqrt()), 0.2, 3.0, 1e6] {
            let t = cubic_positive_root(q);
            assert!(t > 0.0);
            assert!(
                (t * t * t - 0.5 * t - q).abs() <= 1e-12 * (1.0 + q),
                "q = {q}"
            );
        }
    }

    #[test]
    fn no_staleness_unconstrained_optimum_is_root_two() {
        // p = 0: g = 2/c + c, minimised at c = sqrt(2) once alpha >= sqrt(2).
        let o = normalised_optimum(10.0, 0);
        assert!((o.c - 2f64.sqrt()).abs() < 1e-14);
        assert!((o.value - 2.0 * 2f64.sqrt()).abs() < 1e-14);
        assert!(!o.constrained);
    }

    #[test]
    fn gamma_max_sits_on_the_constraint() {
        let pr = Problem::new(2.3, 0.7, 4.0, 128.0, 3900.0).expect("valid");
        for p in [0, 1, 2, 16, 1000] {
            let c = pr.constraint(pr.gamma_max(p), p);
            assert!(c <= 1.0 && c > 1.0 - 1e-14, "p = {p}: {c}");
        }
    }

    #[test]
    fn bad_alpha_gives_nan() {
        assert!(guarantee_ratio(0.0, 4).is_nan());
        assert!(guarantee_ratio(f64::NAN, 4).is_nan());
    }
}
