//! Hogwild (Recht, Re, Wright & Niu, NeurIPS 2011): one shared parameter vector that updates
//! start on as they arrive, several at once, with no lock; a read during an update sees it
//! partly written ([`super::Server::LockFree`]). `cluster.shards` is not read: the vector is
//! the one shard. No key of its own.

use super::role::{Happened, Me, Step};

/// A Hogwild learner: read the vector, compute, write the update; Downpour's cycle.
pub(super) fn learner(me: &Me, happened: Happened) -> Step {
    super::downpour::learner(me, happened)
}
