//! The largest number of workers (equivalently staleness) that keeps linear speedup, by two
//! results: LHL15 (T = O(sqrt(K/M))) and Wang, Shen, Zhao 2019, seed 001
//! (O~(K^{1/3} M^{-1/3})). The O hides an unknown constant: we take it to be 1 and say so; the
//! log factors of O~ are dropped. So these are orders of magnitude, not limits.
//!
//! This module computes; it must never print or panic on the values it is given.

use super::{TheoryError, positive};

/// Both limits for K updates of mini-batch M.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct WorkerLimits {
    pub k: f64,
    pub m: f64,
    /// `sqrt(K / M)`, LHL15 with constant 1.
    pub lhl15: f64,
    /// `(K / M)^(1/3)`, seed 001 with constant 1 and log factors dropped.
    pub wsz19: f64,
}

impl WorkerLimits {
    /// The largest whole worker counts, `floor` of each limit.
    pub fn counts(&self) -> (u64, u64) {
        // Saturating float-to-int casts: a limit beyond u64 reads as u64::MAX.
        (self.lhl15.floor() as u64, self.wsz19.floor() as u64)
    }
}

/// Both worker limits; `k` and `m` must be finite and > 0.
pub fn worker_limits(k: f64, m: f64) -> Result<WorkerLimits, TheoryError> {
    let k = positive("K", k)?;
    let m = positive("M", m)?;
    Ok(WorkerLimits {
        k,
        m,
        lhl15: (k / m).sqrt(),
        wsz19: (k / m).cbrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_and_cube_roots() {
        let w = worker_limits(64_001.0, 1.0).expect("valid");
        assert_eq!(w.counts(), (252, 40));
        assert!(worker_limits(0.0, 1.0).is_err());
    }
}
