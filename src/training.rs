//! Where timing meets numerics: the hooks an algorithm calls at the moments values move (a
//! shard serves a pull, a learner starts a gradient, a shard applies one, an epoch ends), and
//! the real-gradient backend that answers them. The algorithms' timing never reads a value from
//! here; only whether the run diverged can stop it.

pub mod elastic;
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
    /// As [`Gradients::pull`], while updates are being written into the slice without a lock
    /// (Hogwild): each `(writer, fraction)` is a learner whose update has reached that fraction
    /// of the slice's coordinates, in order, so the read sees those written and the rest not.
    fn pull_partial(&mut self, learner: usize, shard: usize, _in_flight: &[(usize, f64)]) {
        self.pull(learner, shard);
    }
    /// Learner `learner` has what it needs and starts its gradient (or, for elastic
    /// averaging, its local steps).
    fn compute(&mut self, _learner: usize) {}
    /// Learner `learner`'s mini-batch (gradient or local step) is computed.
    fn computed(&mut self, _learner: usize) {}
    /// Shard `shard` has applied learner `learner`'s message (a gradient slice, or an elastic
    /// difference), `staleness` updates after the learner read the slice.
    fn apply(&mut self, _learner: usize, _shard: usize, _staleness: u64) {}
    /// Synchronous SGD: slice `shard` takes one step by the mean of the gradients of the
    /// learners in `order`, summed in that order.
    fn apply_round(&mut self, _shard: usize, _order: &[usize]) {}
    /// Learner `learner` finished an iteration: everything it sent has been applied.
    fn iteration_done(&mut self, _learner: usize) {}
    /// Learner `learner`'s push is answered but was dropped unapplied (synchronous SGD's
    /// backup workers): its gradient is discarded and counts for nothing.
    fn dropped(&mut self, _learner: usize) {}
    /// Shard `shard` checkpoints its slice of the parameters (and of the server's momentum).
    fn checkpoint(&mut self, _shard: usize) {}
    /// Shard `shard` comes back from its last checkpoint: its slice is as it was then.
    fn restore(&mut self, _shard: usize) {}
    /// `epoch` epochs (1-based) have completed at `time`.
    fn epoch_end(&mut self, _epoch: u64, _time: SimTime) {}
    /// True once a loss or a parameter became NaN or infinite; the run stops.
    fn diverged(&self) -> bool {
        false
    }
}

/// No numerics: timing only.
impl Gradients for () {}
