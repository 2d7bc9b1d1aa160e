//! The simulator's models: the algorithms as discrete-event models over the machine. Each
//! drives the cluster roles (learners, shards) over the network or a host's threads and
//! reports to an observer; none of them reads files or prints.

pub mod allreduce;
pub mod downpour;
pub mod fabric;
mod progress;

use crate::engine::Model;
use crate::outcome::Outcome;
use crate::time::SimTime;

/// What a run needs from an algorithm's model besides handling its events: the measurements
/// and, at the end, the observer and the numerics back.
pub trait Simulated<O, G>: Model {
    /// The run's measurements; `now` ends a run that was cut short.
    fn outcome(&self, now: SimTime) -> Outcome;
    fn into_parts(self) -> (O, G);
}
