//! Devices that take time: a GPU computing a mini-batch's gradient and a host core applying an
//! update to its slice of the parameters.
//!
//! A GPU takes FLOPs / (peak x efficiency), or a measured time, plus optional jitter drawn from
//! a named distribution. A core's update streams the parameters and the gradient through memory.
//! These are pure cost functions of their inputs and the run's RNG; they hold no state.

use crate::engine::SimRng;
use crate::time::SimDuration;
use rand_distr::{Distribution, Exp, LogNormal, Normal};
use serde::{Deserialize, Serialize};

/// Bytes streamed through memory per parameter byte when a shard applies x <- x - gamma * g:
/// read x, read g, write x.
pub const UPDATE_MEMORY_PASSES: f64 = 3.0;

/// Random extra compute time added to each mini-batch, in seconds; the total is clamped at zero.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Jitter {
    /// Normal(mean_s, std_s).
    Normal {
        #[serde(default)]
        mean_s: f64,
        std_s: f64,
    },
    /// exp(Normal(mu, sigma)) seconds: always positive, heavy right tail.
    LogNormal { mu: f64, sigma: f64 },
    /// Exponential with the given mean.
    Exponential { mean_s: f64 },
}

impl Jitter {
    /// Problems with the parameters, as (key relative to the jitter table, message).
    pub fn check(&self) -> Vec<(String, String)> {
        let mut p = vec![];
        let mut need = |ok: bool, key: &str, what: &str| {
            if !ok {
                p.push((key.to_string(), what.to_string()));
            }
        };
        match *self {
            Jitter::Normal { mean_s, std_s } => {
                need(
                    mean_s.is_finite(),
                    "mean_s",
                    "must be a finite number of seconds",
                );
                need(
                    std_s.is_finite() && std_s >= 0.0,
                    "std_s",
                    "must be a non-negative number of seconds",
                );
            }
            Jitter::LogNormal { mu, sigma } => {
                need(
                    mu.is_finite(),
                    "mu",
                    "must be a finite number (mean of ln seconds)",
                );
                need(
                    sigma.is_finite() && sigma >= 0.0,
                    "sigma",
                    "must be non-negative (std of ln seconds)",
                );
            }
            Jitter::Exponential { mean_s } => need(
                mean_s.is_finite() && mean_s > 0.0,
                "mean_s",
                "must be a positive number of seconds",
            ),
        }
        p
    }

    /// Draws one jitter value in seconds. Parameters must have passed [`Jitter::check`].
    pub fn sample(&self, rng: &mut SimRng) -> f64 {
        match *self {
            Jitter::Normal { mean_s, std_s } => Normal::new(mean_s, std_s)
                .map(|d| d.sample(rng))
                .unwrap_or(mean_s),
            Jitter::LogNormal { mu, sigma } => LogNormal::new(mu, sigma)
                .map(|d| d.sample(rng))
                .unwrap_or(0.0),
            Jitter::Exponential { mean_s } => {
                Exp::new(1.0 / mean_s).map(|d| d.sample(rng)).unwrap_or(0.0)
            }
        }
    }
}

/// How long one learner's mini-batch gradient takes on its GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct ComputeModel {
    /// Time without jitter, seconds.
    pub base_s: f64,
    pub jitter: Option<Jitter>,
    /// How many times longer this learner takes than its device (`[faults]`; 1: as fast).
    pub slowdown: f64,
}

impl ComputeModel {
    /// From the FLOP count: `flops / (peak_tflops * 1e12 * efficiency) + overhead_s`.
    pub fn from_flops(flops: f64, peak_tflops: f64, efficiency: f64, overhead_s: f64) -> Self {
        Self {
            base_s: flops / (peak_tflops * 1e12 * efficiency) + overhead_s,
            jitter: None,
            slowdown: 1.0,
        }
    }

    /// One draw of the compute time. Draws from the RNG only when there is jitter, so adding a
    /// learner without jitter never shifts another's random stream.
    pub fn sample(&self, rng: &mut SimRng) -> SimDuration {
        let extra = match &self.jitter {
            Some(j) => j.sample(rng),
            None => 0.0,
        };
        // A factor of 1 leaves every draw's bits as they were.
        SimDuration::from_secs_ceil((self.base_s + extra).max(0.0) * self.slowdown)
    }
}

/// A drawn gradient time `dt` stretched by `factor` (a slow spell's; 1 leaves it bit for bit).
pub fn stretch(dt: SimDuration, factor: f64) -> SimDuration {
    if factor == 1.0 {
        dt
    } else {
        SimDuration::from_secs_ceil(dt.as_secs_f64() * factor)
    }
}

/// Time for a host core to apply an update to `bytes` of parameters, streaming `passes` bytes
/// through memory per parameter byte ([`UPDATE_MEMORY_PASSES`] for plain SGD).
pub fn update_time(bytes: u64, memory_bandwidth_gb_per_s: f64, passes: f64) -> SimDuration {
    SimDuration::from_nanos_ceil(bytes as f64 * passes / memory_bandwidth_gb_per_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn mean_of_samples(j: &Jitter, n: usize, rng: &mut SimRng) -> f64 {
        (0..n).map(|_| j.sample(rng)).sum::<f64>() / n as f64
    }

    #[test]
    fn flop_model_and_update_cost() {
        let m = ComputeModel::from_flops(2e12, 4.0, 0.5, 0.001);
        assert!((m.base_s - 1.001).abs() < 1e-12);
        let mut rng = SimRng::seed_from_u64(1);
        assert_eq!(m.sample(&mut rng), SimDuration::from_nanos(1_001_000_000));
        // 1 GB through 3 memory passes at 10 GB/s: 0.3 s.
        assert_eq!(
            update_time(1_000_000_000, 10.0, UPDATE_MEMORY_PASSES).as_nanos(),
            300_000_000
        );
    }

    #[test]
    fn jitter_means_match_their_distributions() {
        let mut rng = SimRng::seed_from_u64(7);
        let n = 200_000;
        let normal = Jitter::Normal {
            mean_s: 0.002,
            std_s: 0.001,
        };
        assert!((mean_of_samples(&normal, n, &mut rng) - 0.002).abs() < 1e-5);
        let exp = Jitter::Exponential { mean_s: 0.003 };
        assert!((mean_of_samples(&exp, n, &mut rng) - 0.003).abs() < 3e-5);
        let ln = Jitter::LogNormal {
            mu: -6.0,
            sigma: 0.5,
        };
        let expected = (-6.0f64 + 0.125).exp();
        assert!((mean_of_samples(&ln, n, &mut rng) / expected - 1.0).abs() < 0.01);
    }

    #[test]
    fn bad_parameters_are_named() {
        let j = Jitter::Normal {
            mean_s: 0.0,
            std_s: -1.0,
        };
        assert_eq!(j.check()[0].0, "std_s");
    }
}
