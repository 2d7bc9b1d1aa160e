//! A learner's side of an algorithm as a state machine: the driver (the simulator's model or
//! the real threads) tells it what happened (it started, its slices are in, its mini-batches
//! are computed, its push is applied, its wait is over) and it answers with the one thing to
//! do next and how many iterations the event completed. A role never sees a clock, a thread or
//! the engine: how a pull, a computation, a push or a wait is carried out, and what it costs,
//! is the driver's. Each kind's reactions are written once, in its own file
//! (`algorithm/<kind>.rs`); [`Algorithm::react`] picks them, one line per kind.

use super::Algorithm;
use std::ops::Range;

/// What happened to a learner, as its driver tells the role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Happened {
    /// The run started.
    Start,
    /// Every slice asked for by [`Act::Pull`] is in the learner's parameters.
    Pulled,
    /// The mini-batch asked for by [`Act::Compute`] is computed.
    Computed,
    /// Every shard of an [`Act::Push`] has applied it and said so.
    Pushed,
    /// Every shard of an [`Act::Push`] has answered and at least one dropped it unapplied
    /// (synchronous SGD's backup workers: its round was stepped without it).
    Dropped,
    /// The wait of an [`Act::WaitFor`] is over.
    Released,
}

/// What a learner does next. The driver enters the matching activity (pull, compute, push,
/// wait) and carries it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    /// Ask every shard for its slice (the centre variable, for elastic averaging) and take it.
    Pull,
    /// Compute one mini-batch: a gradient, or one of elastic averaging's local steps.
    Compute,
    /// Send the shards `targets` what was computed (a gradient slice, or an elastic
    /// difference) and wait until each has applied it.
    Push { targets: Range<usize> },
    /// Wait until every learner has completed at least `iterations` iterations.
    WaitFor { iterations: u64 },
}

/// A role's answer to one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Iterations (mini-batches) the event completed; the driver counts them.
    pub completed: u64,
    pub then: Act,
}

impl Step {
    /// Goes on with `then`, completing nothing.
    pub fn next(then: Act) -> Step {
        Step { completed: 0, then }
    }
}

/// What a learner's role knows of itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Me {
    pub learner: usize,
    /// Shards (blocks, for the partitioned model) of the server.
    pub shards: usize,
    /// Iterations completed so far.
    pub done: u64,
}

/// One learner's role in a run.
#[derive(Clone, Debug, PartialEq)]
pub struct LearnerRole {
    me: Me,
    algorithm: Algorithm,
}

impl LearnerRole {
    pub(crate) fn new(algorithm: Algorithm, learner: usize, shards: usize) -> Self {
        LearnerRole {
            me: Me {
                learner,
                shards,
                done: 0,
            },
            algorithm,
        }
    }

    /// Reacts to `happened`: what to do next, and what the event completed.
    #[inline]
    pub fn on(&mut self, happened: Happened) -> Step {
        let step = self.algorithm.react(&self.me, happened);
        self.me.done += step.completed;
        step
    }

    /// Iterations this learner completed.
    pub fn done(&self) -> u64 {
        self.me.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::{Algorithm, Rule};

    /// The acts of `role` over `events`, with what each event completed.
    fn trace(role: &mut LearnerRole, events: &[Happened]) -> Vec<(u64, Act)> {
        events
            .iter()
            .map(|&h| {
                let s = role.on(h);
                (s.completed, s.then)
            })
            .collect()
    }

    #[test]
    fn a_downpour_learner_pulls_computes_one_batch_and_pushes_every_shard() {
        let mut role = Algorithm::Downpour { rule: Rule::Sgd }.learner(2, 3);
        let events = [
            Happened::Start,
            Happened::Pulled,
            Happened::Computed,
            Happened::Pushed,
        ];
        assert_eq!(
            trace(&mut role, &events),
            vec![
                (0, Act::Pull),
                (0, Act::Compute),
                (0, Act::Push { targets: 0..3 }),
                (1, Act::Pull),
            ]
        );
        assert_eq!(role.done(), 1);
    }

    #[test]
    fn an_elastic_learner_counts_each_local_step_as_it_ends_and_exchanges_every_tau() {
        let alg = Algorithm::Elastic {
            tau: 3,
            alpha: 0.1,
            delta: None,
        };
        let mut role = alg.learner(0, 2);
        let round = [
            Happened::Computed,
            Happened::Computed,
            Happened::Computed,
            Happened::Pulled,
            Happened::Pushed,
        ];
        let mut events = vec![Happened::Start];
        events.extend(round);
        events.extend(round);
        let one_round = [
            (1, Act::Compute),
            (1, Act::Compute),
            (1, Act::Pull),
            (0, Act::Push { targets: 0..2 }),
            (0, Act::Compute),
        ];
        let mut expected = vec![(0, Act::Compute)];
        expected.extend(one_round.iter().cloned());
        expected.extend(one_round.iter().cloned());
        assert_eq!(trace(&mut role, &events), expected);
        assert_eq!(role.done(), 6);
    }

    #[test]
    fn a_partitioned_learner_pushes_the_block_of_its_step() {
        let mut role = Algorithm::Partitioned.learner(1, 3);
        role.on(Happened::Start);
        let mut blocks = vec![];
        for _ in 0..4 {
            role.on(Happened::Pulled);
            match role.on(Happened::Computed).then {
                Act::Push { targets } => blocks.push(targets),
                other => panic!("expected a push, got {other:?}"),
            }
            role.on(Happened::Pushed);
        }
        assert_eq!(blocks, vec![1..2, 2..3, 0..1, 1..2]);
    }
}
