//! Elastic averaging SGD (Zhang, Choromanska & LeCun 2015) and its momentum variant EAMSGD: a
//! learner takes `tau` local steps on its own parameters, then pulls the centre variable and
//! pushes the elastic difference `alpha (x - centre)`, which it also subtracts from its own
//! parameters; the shards add the differences to the centre.

use super::role::{Act, Happened, Me, Step};
use super::{Algorithm, AlgorithmKind, Problem, Section, problem};

/// EASGD and EAMSGD require `tau`; `tau`, `alpha` and `delta`, when given, must be in range.
pub(super) fn check(kind: AlgorithmKind, keys: &Section, problems: &mut Vec<Problem>) {
    let elastic = matches!(kind, AlgorithmKind::Easgd | AlgorithmKind::Eamsgd);
    match keys.tau {
        None if elastic => problems.push(problem(
            "tau",
            format!(
                "{} needs its communication period tau (local mini-batches between exchanges with the centre, at least 1)",
                kind.name()
            ),
        )),
        Some(0) => problems.push(problem("tau", "must be at least 1")),
        _ => {}
    }
    if let Some(alpha) = keys.alpha
        && !(alpha.is_finite() && (0.0..1.0).contains(&alpha))
    {
        problems.push(problem(
            "alpha",
            format!("must be in [0, 1) (0: no exchange moves anything), got {alpha}"),
        ));
    }
    if let Some(delta) = keys.delta
        && !(delta.is_finite() && (0.0..1.0).contains(&delta))
    {
        problems.push(problem("delta", format!("must be in [0, 1), got {delta}")));
    }
}

/// EASGD for `p` learners: `alpha` defaults to the paper's 0.9 / p.
pub(super) fn easgd(keys: &Section, p: usize) -> Algorithm {
    elastic(keys, p, None)
}

/// EAMSGD for `p` learners: EASGD whose local steps use Nesterov momentum `delta`, by default
/// the paper's 0.99.
pub(super) fn eamsgd(keys: &Section, p: usize) -> Algorithm {
    elastic(keys, p, Some(keys.delta.unwrap_or(0.99) as f32))
}

fn elastic(keys: &Section, p: usize, delta: Option<f32>) -> Algorithm {
    Algorithm::Elastic {
        tau: keys.tau.unwrap_or(1),
        alpha: keys.alpha.unwrap_or(0.9 / p.max(1) as f64) as f32,
        delta,
    }
}

/// The elastic learner: `tau` local steps, pull the centre, push the difference.
pub(super) fn learner(me: &Me, tau: u64, happened: Happened) -> Step {
    let local = Act::Compute {
        batches: tau.max(1),
    };
    match happened {
        Happened::Start | Happened::Released => Step::next(local),
        Happened::Computed => Step::next(Act::Pull),
        Happened::Pulled => Step::next(Act::Push {
            targets: 0..me.shards,
        }),
        Happened::Pushed => Step {
            completed: tau.max(1),
            then: local,
        },
    }
}
