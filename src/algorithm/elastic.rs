//! Elastic averaging SGD (Zhang, Choromanska & LeCun 2015) and its momentum variant EAMSGD: a
//! learner takes `tau` local steps on its own parameters, then pulls the centre variable and
//! pushes the elastic difference `alpha (x - centre)`, which it also subtracts from its own
//! parameters; the shards add the differences to the centre.

use super::role::{Act, Happened, Me, Step};

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
