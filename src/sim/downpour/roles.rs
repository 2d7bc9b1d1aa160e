//! The learners' roles carried out in the Downpour model: what a role says to do next, and
//! SSP's waits for the slowest learner that is up.

use super::{Downpour, Event};
use crate::algorithm::role::{Act, Happened};
use crate::cluster::learner::Phase;
use crate::engine::Context;
use crate::observe::Observer;
use crate::training::Gradients;

impl<O: Observer, G: Gradients> Downpour<O, G> {
    /// Carries out what learner `l`'s role does next (the iterations the event completed are
    /// counted first, by [`Downpour::went_on`]).
    pub(super) fn act(&mut self, ctx: &mut Context<'_, Event>, l: usize, mut then: Act) {
        loop {
            match then {
                Act::Pull => return self.start_pull(ctx, l),
                Act::Compute => return self.start_compute(ctx, l),
                Act::Push { targets } => return self.start_push(ctx, l, targets),
                // Nobody to wait for: released at once.
                Act::WaitFor { iterations } if self.slowest() >= iterations => {
                    then = self.roles[l].on(Happened::Released).then;
                }
                Act::WaitFor { iterations } => {
                    self.learners[l].phase = Phase::Waiting;
                    self.waiting.push((l, iterations));
                    return self.refresh(l);
                }
            }
        }
    }

    /// Iterations the slowest learner that is up has completed (a returning learner counts
    /// from the slowest count when it rejoined). A learner that is down holds nobody back, as
    /// a server that drops a worker whose lease expired.
    pub(super) fn slowest(&self) -> u64 {
        (self.learners.iter().zip(&self.rejoined_at).zip(&self.down))
            .filter(|(_, down)| !**down)
            .map(|((l, &offset), _)| l.iterations + offset)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Lets every waiting learner whose wait is over go on, in the order they began to wait.
    pub(super) fn release(&mut self, ctx: &mut Context<'_, Event>) {
        if self.waiting.is_empty() {
            return;
        }
        let slowest = self.slowest();
        let mut waiting = std::mem::take(&mut self.waiting);
        waiting.retain(|&(l, iterations)| {
            if iterations > slowest {
                return true;
            }
            self.released.push(l);
            false
        });
        self.waiting = waiting;
        let mut released = std::mem::take(&mut self.released);
        for &l in &released {
            let step = self.roles[l].on(Happened::Released);
            self.act(ctx, l, step.then);
        }
        released.clear();
        self.released = released;
    }
}
