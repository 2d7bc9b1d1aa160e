//! Downpour ASGD (Dean et al. 2012) and its update-rule variants (staleness-aware, DC-ASGD): a
//! learner pulls every shard's slice, computes one gradient and pushes every slice of it; each
//! shard applies the gradients one at a time, in arrival order, with the algorithm's
//! [`super::Rule`]. Synchronous SGD through the server and Hogwild run the same learner; they
//! differ at the shards.

use super::role::{Act, Happened, Me, Step};
use super::{Algorithm, AlgorithmKind, Problem, Rule, Section, problem};
use serde::{Deserialize, Serialize};

/// `[algorithm.dc-asgd]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcAsgdKeys {
    /// The delay-compensation coefficient: `g + lambda g (.) g (.) (x_now - x_read)`.
    /// Required.
    pub lambda: Option<f64>,
}

/// DC-ASGD requires `lambda`; given, it must be in range, whatever the kind.
pub(super) fn check(kind: AlgorithmKind, keys: &Section, problems: &mut Vec<Problem>) {
    match (kind, keys.dc_asgd.lambda) {
        (AlgorithmKind::DcAsgd, None) => problems.push(problem(
            "dc-asgd.lambda",
            "dc-asgd needs its delay-compensation coefficient lambda (a number >= 0; 0 is plain Downpour)",
        )),
        (_, Some(l)) if !(l.is_finite() && l >= 0.0) => {
            problems.push(problem("dc-asgd.lambda", format!("must be a number >= 0, got {l}")))
        }
        _ => {}
    }
}

/// Downpour whose shards divide the rate by each update's staleness.
pub(super) fn staleness_aware() -> Algorithm {
    Algorithm::Downpour {
        rule: Rule::StalenessAware,
    }
}

/// Downpour whose shards compensate each gradient for its delay, with `lambda`.
pub(super) fn dc_asgd(keys: &Section) -> Algorithm {
    Algorithm::Downpour {
        rule: Rule::DelayCompensated {
            lambda: keys.dc_asgd.lambda.unwrap_or(0.0) as f32,
        },
    }
}

/// Downpour's learner: pull, compute, push, again.
pub(super) fn learner(me: &Me, happened: Happened) -> Step {
    match happened {
        Happened::Start | Happened::Released => Step::next(Act::Pull),
        Happened::Pulled => Step::next(Act::Compute),
        Happened::Computed => Step::next(Act::Push {
            targets: 0..me.shards,
        }),
        Happened::Pushed => Step {
            completed: 1,
            then: Act::Pull,
        },
        // A push the server did not apply completes nothing.
        Happened::Dropped => Step::next(Act::Pull),
    }
}
