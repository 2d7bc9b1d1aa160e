//! Downpour ASGD (Dean et al. 2012) and its update-rule variants (staleness-aware, DC-ASGD): a
//! learner pulls every shard's slice, computes one gradient and pushes every slice of it; each
//! shard applies the gradients one at a time, in arrival order, with the algorithm's
//! [`super::Rule`]. Synchronous SGD through the server and Hogwild run the same learner; they
//! differ at the shards.

use super::role::{Act, Happened, Me, Step};

/// Downpour's learner: pull, compute, push, again.
pub(super) fn learner(me: &Me, happened: Happened) -> Step {
    match happened {
        Happened::Start | Happened::Released => Step::next(Act::Pull),
        Happened::Pulled => Step::next(Act::Compute { batches: 1 }),
        Happened::Computed => Step::next(Act::Push {
            targets: 0..me.shards,
        }),
        Happened::Pushed => Step {
            completed: 1,
            then: Act::Pull,
        },
    }
}
