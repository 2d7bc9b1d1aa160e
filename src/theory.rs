//! Convergence theory of asynchronous SGD, as closed-form arithmetic: the LHL15 Theorem 1 bound
//! and its optimum ([`bound`]), the seed paper's ratio of guarantees between p learners and one
//! ([`bound::guarantee_ratio`]), the samples p learners need to match one ([`samples`]), the
//! worker counts that keep linear speedup ([`workers`]), and the `theory` command's input specs
//! and output ([`spec`], [`command`]). The formulas are in REFERENCE.md, section "Theory".
//!
//! This module is pure arithmetic on numbers it is given: it must never touch the simulator's
//! engine, scenarios or files, never print, and never panic on user input (bad values come back
//! as [`TheoryError`]).

pub mod bound;
pub mod command;
pub mod samples;
pub mod spec;
pub mod workers;

pub use bound::{Optimum, Problem, Terms, alpha, guarantee_ratio, predicted_gamma};

/// Errors of the theory commands. All come from user input and are fatal for the command: the
/// binary reports them and exits with status 2.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TheoryError {
    /// A value in a list or grid spec is not a number of the expected kind.
    #[error("`{text}` in {what} is not {expected}")]
    BadNumber {
        what: &'static str,
        text: String,
        expected: &'static str,
    },
    /// A `start:stop:count` grid is malformed.
    #[error("bad grid `{text}` for {what}: {reason} (expected `start:stop:count`, log-spaced)")]
    BadGrid {
        what: &'static str,
        text: String,
        reason: String,
    },
    /// A value is a number but outside what the formulas accept.
    #[error("{what} = {value} is out of range: {allowed}")]
    OutOfRange {
        what: &'static str,
        value: f64,
        allowed: &'static str,
    },
    /// `theory samples` needs either alpha alone or all five problem constants.
    #[error(
        "give either --alpha, or all of --d-f, --l, --sigma2, --m and --k1 (missing or mixed: {0})"
    )]
    Budget(&'static str),
    /// Bisection found no K for which p learners reach the target (only for values so extreme
    /// that the answer overflows an f64; the optimal bound tends to 0 as K grows).
    #[error("no K reaches the target bound {target} with p = {p} (K_p/K_1 would exceed 1e300)")]
    Unreachable { target: f64, p: u32 },
}

/// Checks that `value` is finite and strictly positive.
pub(crate) fn positive(what: &'static str, value: f64) -> Result<f64, TheoryError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(TheoryError::OutOfRange {
            what,
            value,
            allowed: "must be finite and > 0",
        })
    }
}
