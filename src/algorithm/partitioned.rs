//! The partitioned shared model (Kungurtsev et al. 2021): the model cut into blocks, one
//! concurrent parameter server per block, and each learner step updating one block. Which
//! block a step updates is decided here, once, for every backend.

use super::role::{Act, Happened, Me, Step};
use super::{Problem, problem};
use serde::{Deserialize, Serialize};

/// `[algorithm.partitioned]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionedKeys {
    /// This many even blocks of parameters, each with its own server (default: one block per
    /// layer with parameters).
    pub blocks: Option<usize>,
}

/// `blocks`, when given, must be at least 1 (the blocks themselves are cut where the model is
/// known, in the scenario).
pub(super) fn check(keys: &PartitionedKeys, problems: &mut Vec<Problem>) {
    if keys.blocks == Some(0) {
        problems.push(problem("partitioned.blocks", "must be at least 1"));
    }
}
use std::ops::Range;

/// The partitioned model's learner: Downpour's, pushing only its step's block.
pub(super) fn learner(me: &Me, happened: Happened) -> Step {
    match happened {
        Happened::Computed => Step::next(Act::Push {
            targets: targets(me.learner, me.done, me.shards),
        }),
        _ => super::downpour::learner(me, happened),
    }
}

/// The blocks learner `learner`'s step `step` (counted from 0: the steps it completed before)
/// pushes to, out of `blocks`: block `(learner + step) mod blocks`, so the learners start on
/// different blocks and each cycles through all of them.
pub fn targets(learner: usize, step: u64, blocks: usize) -> Range<usize> {
    let b = (learner as u64 + step) % blocks.max(1) as u64;
    let b = b as usize;
    b..b + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_learner_cycles_through_every_block_from_its_own() {
        let blocks = 3;
        for l in 0..5 {
            let seen: Vec<usize> = (0..blocks as u64)
                .map(|k| targets(l, k, blocks).start)
                .collect();
            assert_eq!(seen[0], l % blocks);
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2], "learner {l}: {seen:?}");
            assert_eq!(targets(l, 7, blocks).len(), 1);
        }
    }
}
