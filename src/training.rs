//! Where timing meets numerics: the hooks an algorithm calls at the moments values move (a
//! shard serves a pull, a learner starts a gradient, a shard applies one, an epoch ends), and
//! the real-gradient backend that answers them. The algorithms' timing never reads a value from
//! here; only whether the run diverged can stop it.

pub mod pool;
pub mod real;
pub mod replay;
pub mod sampler;
pub mod update;

use crate::time::SimTime;

/// Numeric side of a run, driven by the algorithm's events. Timing-only runs use `()`.
pub trait Gradients {
    /// Shard `shard` sends learner `learner` its current slice.
    fn pull(&mut self, _learner: usize, _shard: usize) {}
    /// Learner `learner` has all its slices and starts its gradient.
    fn compute(&mut self, _learner: usize) {}
    /// Shard `shard` has applied learner `learner`'s gradient slice, `staleness` updates after
    /// the learner read it.
    fn apply(&mut self, _learner: usize, _shard: usize, _staleness: u64) {}
    /// `epoch` epochs (1-based) have completed at `time`.
    fn epoch_end(&mut self, _epoch: u64, _time: SimTime) {}
    /// True once a loss or a parameter became NaN or infinite; the run stops.
    fn diverged(&self) -> bool {
        false
    }
}

/// No numerics: timing only.
impl Gradients for () {}
