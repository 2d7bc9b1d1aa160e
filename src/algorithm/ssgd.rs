//! Synchronous SGD, two ways. Through the sharded server (`ssgd-ps`): a learner pulls, computes
//! and pushes as in Downpour, but each shard sums the p gradients of a round as they arrive and
//! takes one step by their mean before it acknowledges any (the server's barrier, a
//! [`super::Server::Synchronous`]). By ring all-reduce (`ssgd-allreduce`): no server; the
//! learners are ring peers whose reduce-scatter and all-gather steps are the ring's own model
//! in each backend ([`super::Server::Ring`]). Neither reads a key of its own.

use super::role::{Happened, Me, Step};

/// A learner of synchronous SGD through the server: Downpour's; the barrier is the shards'.
pub(super) fn learner(me: &Me, happened: Happened) -> Step {
    super::downpour::learner(me, happened)
}
