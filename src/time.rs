//! Simulated time: integer nanoseconds since the start of a run.
//!
//! Time is never a bare float inside the engine, so that event order and every output are exact
//! and repeatable. Conversions to and from seconds exist only at the edges (scenario input,
//! reports). Nothing here may read a wall clock.

use serde::Serialize;
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A point in simulated time, in nanoseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SimTime(u64);

/// A span of simulated time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SimDuration(u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);

    pub const fn from_nanos(ns: u64) -> Self {
        SimTime(ns)
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-9
    }

    /// Time elapsed since `earlier`; zero if `earlier` is later (never panics).
    pub fn saturating_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);

    pub const fn from_nanos(ns: u64) -> Self {
        SimDuration(ns)
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-9
    }

    /// Rounds a non-negative number of seconds up to whole nanoseconds, so that a transfer or a
    /// computation never finishes before its exact end. Negative and NaN inputs give zero.
    pub fn from_secs_ceil(secs: f64) -> Self {
        Self::from_nanos_ceil(secs * 1e9)
    }

    /// Rounds a non-negative number of nanoseconds up; negative and NaN give zero, and values
    /// beyond the range saturate.
    pub fn from_nanos_ceil(ns: f64) -> Self {
        if ns.is_nan() || ns <= 0.0 {
            SimDuration(0)
        } else if ns >= u64::MAX as f64 {
            SimDuration(u64::MAX)
        } else {
            SimDuration(ns.ceil() as u64)
        }
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
}

impl Sub for SimTime {
    type Output = SimDuration;
    /// Saturating: a later time minus an earlier one; zero the other way round.
    fn sub(self, earlier: SimTime) -> SimDuration {
        self.saturating_since(earlier)
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(d.0))
    }
}

impl AddAssign for SimDuration {
    fn add_assign(&mut self, d: SimDuration) {
        self.0 = self.0.saturating_add(d.0);
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.9} s", self.as_secs_f64())
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.9} s", self.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_never_finishes_early() {
        assert_eq!(SimDuration::from_nanos_ceil(10.0).as_nanos(), 10);
        assert_eq!(SimDuration::from_nanos_ceil(10.000001).as_nanos(), 11);
        assert_eq!(SimDuration::from_secs_ceil(1.5e-9).as_nanos(), 2);
        assert_eq!(SimDuration::from_secs_ceil(-1.0).as_nanos(), 0);
        assert_eq!(SimDuration::from_secs_ceil(f64::NAN).as_nanos(), 0);
    }

    #[test]
    fn subtraction_saturates() {
        let a = SimTime::from_nanos(5);
        let b = SimTime::from_nanos(9);
        assert_eq!((b - a).as_nanos(), 4);
        assert_eq!((a - b).as_nanos(), 0);
    }
}
