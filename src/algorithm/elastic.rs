//! Elastic averaging SGD (Zhang, Choromanska & LeCun 2015) and its momentum variant EAMSGD: a
//! learner takes `tau` local steps on its own parameters, then pulls the centre variable and
//! pushes the elastic difference `alpha (x - centre)`, which it also subtracts from its own
//! parameters; the shards add the differences to the centre.

use super::role::{Act, Happened, Me, Step};
use super::{Algorithm, AlgorithmKind, Problem, Section, problem};
use serde::{Deserialize, Serialize};

/// `[algorithm.elastic]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticKeys {
    /// The communication period: local mini-batches between two elastic exchanges with the
    /// centre. Required.
    pub tau: Option<u64>,
    /// The elastic coefficient (default 0.9 / p: the paper's beta = p alpha = 0.9).
    pub alpha: Option<f64>,
    /// EAMSGD's Nesterov momentum (default 0.99, the paper's); EASGD takes no momentum.
    pub delta: Option<f64>,
}

/// The longest communication period taken: a million local mini-batches between exchanges is
/// already no averaging at all.
pub const MAX_TAU: u64 = 1_000_000;

/// EASGD and EAMSGD require `tau`; `tau`, `alpha` and `delta`, when given, must be in range,
/// whatever the kind.
pub(super) fn check(kind: AlgorithmKind, keys: &Section, problems: &mut Vec<Problem>) {
    let elastic = matches!(kind, AlgorithmKind::Easgd | AlgorithmKind::Eamsgd);
    let keys = &keys.elastic;
    match keys.tau {
        None if elastic => problems.push(problem(
            "elastic.tau",
            format!(
                "{} needs its communication period tau (local mini-batches between exchanges with the centre, at least 1)",
                kind.name()
            ),
        )),
        Some(t) if !(1..=MAX_TAU).contains(&t) => problems.push(problem(
            "elastic.tau",
            format!("must be from 1 to {MAX_TAU} local mini-batches, got {t}"),
        )),
        _ => {}
    }
    if let Some(alpha) = keys.alpha
        && !(alpha.is_finite() && (0.0..1.0).contains(&alpha))
    {
        problems.push(problem(
            "elastic.alpha",
            format!("must be in [0, 1) (0: no exchange moves anything), got {alpha}"),
        ));
    }
    if let Some(delta) = keys.delta
        && !(delta.is_finite() && (0.0..1.0).contains(&delta))
    {
        problems.push(problem(
            "elastic.delta",
            format!("must be in [0, 1), got {delta}"),
        ));
    }
}

/// EASGD for `p` learners: `alpha` defaults to the paper's 0.9 / p.
pub(super) fn easgd(keys: &Section, p: usize) -> Algorithm {
    elastic(keys, p, None)
}

/// EAMSGD for `p` learners: EASGD whose local steps use Nesterov momentum `delta`, by default
/// the paper's 0.99.
pub(super) fn eamsgd(keys: &Section, p: usize) -> Algorithm {
    let delta = keys.elastic.delta.unwrap_or(0.99);
    elastic(keys, p, Some(delta as f32))
}

fn elastic(keys: &Section, p: usize, delta: Option<f32>) -> Algorithm {
    let keys = &keys.elastic;
    Algorithm::Elastic {
        tau: keys.tau.unwrap_or(1),
        alpha: keys.alpha.unwrap_or(0.9 / p.max(1) as f64) as f32,
        delta,
    }
}

/// The elastic learner: `tau` local steps, each counted as it ends (an epoch is a pass over
/// the data, whatever the period), then pull the centre and push the difference.
pub(super) fn learner(me: &Me, tau: u64, happened: Happened) -> Step {
    match happened {
        Happened::Start | Happened::Released | Happened::Pushed | Happened::Dropped => {
            Step::next(Act::Compute)
        }
        Happened::Computed => Step {
            completed: 1,
            then: if (me.done + 1).is_multiple_of(tau.max(1)) {
                Act::Pull
            } else {
                Act::Compute
            },
        },
        Happened::Pulled => Step::next(Act::Push {
            targets: 0..me.shards,
        }),
    }
}
