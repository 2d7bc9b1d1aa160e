//! Stale synchronous parallel (Ho, Cipar, Cui, Kim, Lee, Gibbons, Gibson, Ganger & Xing,
//! NeurIPS 2013, "More Effective Distributed ML via a Stale Synchronous Parallel Parameter
//! Server"): Downpour in which a learner starts its iteration `c` (counted from 0) only once
//! the slowest learner has finished iteration `c - s - 1`, that is, has completed `c - s`
//! iterations; `s` is `algorithm.ssp.staleness_bound`. The waiting counts as `wait`.
//!
//! What the bound allows. Take learner `l`'s iteration `c` and one shard. Another learner
//! `j`'s update of its iteration `i` can land at that shard between `l`'s read and `l`'s update
//! only if `c - s <= i <= c + s`: `l` read after every learner had completed `c - s`
//! iterations, and a completed iteration has every update applied (its acknowledgements are
//! in); and `j` could start `i` only once `l`, which had not completed `c` yet, had completed
//! `i - s`. `l`'s own earlier updates were all applied before its read. So an update's
//! staleness is at most `(p - 1)(2s + 1)`: [`max_staleness`]. At `s = 0` the learners go in
//! lock step, bulk-synchronously: nobody starts iteration `c + 1` before everyone has finished
//! `c`, so their iteration counts never differ by more than one and the staleness is at most
//! `p - 1`, each update seeing at most the other learners' updates of the same round. A bound at
//! least the run's iterations per learner never holds anyone back, and the run is Downpour's.

use super::role::{Act, Happened, Me, Step};
use super::{Algorithm, AlgorithmKind, Problem, Section, problem};
use serde::{Deserialize, Serialize};

/// `[algorithm.ssp]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SspKeys {
    /// The bound s: a learner starts iteration c only once the slowest has finished iteration
    /// c - s - 1 (0: bulk-synchronous). Required.
    pub staleness_bound: Option<u64>,
}

/// SSP requires its bound.
pub(super) fn check(kind: AlgorithmKind, keys: &Section, problems: &mut Vec<Problem>) {
    if kind == AlgorithmKind::Ssp && keys.ssp.staleness_bound.is_none() {
        problems.push(problem(
            "ssp.staleness_bound",
            "ssp needs its staleness bound (iterations a learner may run ahead of the slowest, an integer >= 0; 0 is bulk-synchronous)",
        ));
    }
}

/// SSP with its bound.
pub(super) fn parameters(keys: &Section) -> Algorithm {
    Algorithm::Ssp {
        bound: keys.ssp.staleness_bound.unwrap_or(0),
    }
}

/// SSP's learner: Downpour's, waiting before an iteration that would run more than `bound`
/// iterations ahead of the slowest learner.
pub(super) fn learner(me: &Me, bound: u64, happened: Happened) -> Step {
    let step = super::downpour::learner(me, happened);
    // The next iteration, counted from 0, is the number done after this event.
    let next = me.done + step.completed;
    match step.then {
        Act::Pull if happened == Happened::Pushed && next > bound => Step {
            completed: step.completed,
            then: Act::WaitFor {
                iterations: next - bound,
            },
        },
        _ => step,
    }
}

/// The largest staleness an update can have with `p` learners under the bound `s` (see the
/// module's derivation).
pub fn max_staleness(p: usize, s: u64) -> u64 {
    (p.max(1) as u64 - 1).saturating_mul(s.saturating_mul(2).saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Algorithm;

    fn iterate(role: &mut crate::algorithm::role::LearnerRole) -> Act {
        role.on(Happened::Pulled);
        role.on(Happened::Computed);
        role.on(Happened::Pushed).then
    }

    #[test]
    fn a_learner_waits_for_the_slowest_to_have_done_all_but_bound_of_its_iterations() {
        let mut role = Algorithm::Ssp { bound: 2 }.learner(0, 4);
        assert_eq!(role.on(Happened::Start).then, Act::Pull);
        // Iterations 1 and 2 may start with the slowest at 0.
        assert_eq!(iterate(&mut role), Act::Pull);
        assert_eq!(iterate(&mut role), Act::Pull);
        // Iteration 3 needs the slowest to have finished iteration 0.
        assert_eq!(iterate(&mut role), Act::WaitFor { iterations: 1 });
        assert_eq!(role.on(Happened::Released).then, Act::Pull);
        assert_eq!(iterate(&mut role), Act::WaitFor { iterations: 2 });
        assert_eq!(role.done(), 4);
    }

    #[test]
    fn a_bound_of_zero_waits_for_every_learner_after_every_iteration() {
        let mut role = Algorithm::Ssp { bound: 0 }.learner(3, 2);
        role.on(Happened::Start);
        for k in 1..5 {
            assert_eq!(iterate(&mut role), Act::WaitFor { iterations: k });
            role.on(Happened::Released);
        }
    }

    #[test]
    fn a_bound_beyond_the_run_acts_as_downpour() {
        let mut ssp = Algorithm::Ssp { bound: 1000 }.learner(1, 3);
        let mut downpour = Algorithm::Downpour {
            rule: crate::algorithm::Rule::Sgd,
        }
        .learner(1, 3);
        let events = [Happened::Pulled, Happened::Computed, Happened::Pushed];
        assert_eq!(ssp.on(Happened::Start), downpour.on(Happened::Start));
        for _ in 0..1000 {
            for h in events {
                assert_eq!(ssp.on(h), downpour.on(h));
            }
        }
    }

    #[test]
    fn the_staleness_allowed_grows_with_learners_and_bound() {
        assert_eq!(max_staleness(1, 5), 0);
        assert_eq!(max_staleness(4, 0), 3);
        assert_eq!(max_staleness(4, 2), 15);
        assert_eq!(max_staleness(16, u64::MAX), u64::MAX);
    }
}
