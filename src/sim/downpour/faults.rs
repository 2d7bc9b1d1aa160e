//! Learners' failures in the Downpour model: a learner stops (its gradient in progress lost,
//! replies to it lost), comes back once what it sent has settled, and a run that cannot go on
//! without it says why.

use super::{Downpour, Event};
use crate::algorithm::Server;
use crate::algorithm::role::Happened;
use crate::cluster::learner::Phase;
use crate::engine::Context;
use crate::faults::Failure;
use crate::observe::{FaultSite, Observer};
use crate::outcome::FaultRecord;
use crate::time::SimDuration;
use crate::training::Gradients;

impl<O: Observer, G: Gradients> Downpour<O, G> {
    /// A failure happens: its learner stops. The gradient it was computing is lost; what it
    /// already sent is delivered and applied, and every reply to it is lost; a learner waiting
    /// for others stops waiting. The others' waits no longer count it.
    pub(super) fn learner_down(&mut self, ctx: &mut Context<'_, Event>, k: usize) {
        let Failure {
            learner: l,
            down_for_s,
            ..
        } = self.setup.failures[k];
        let lost = u64::from(self.learners[l].phase == Phase::Computing);
        if lost > 0 {
            self.gradients.dropped(l);
        }
        self.life[l] += 1;
        self.down[l] = true;
        self.waiting.retain(|&(w, _)| w != l);
        let learner = &mut self.learners[l];
        learner.phase = Phase::Waiting;
        learner.pending = 0;
        learner.push_dropped = false;
        self.faults.push(FaultRecord {
            learner: l,
            failed_at_s: ctx.now().as_secs_f64(),
            back_at_s: None,
            lost_gradients: lost,
        });
        self.observer.fault(FaultSite::Learner(l), true, ctx.now());
        if let Some(d) = down_for_s {
            ctx.schedule_in(
                SimDuration::from_secs_ceil(d),
                Event::LearnerUp { failure: k },
            );
        }
        self.refresh(l);
        self.release(ctx);
    }

    /// Learners whose time down is over start again, pulling fresh parameters, once nothing
    /// they sent before they failed is still on its way or at a shard.
    fn rejoin(&mut self, ctx: &mut Context<'_, Event>) {
        let mut i = 0;
        while i < self.returning.len() {
            let l = self.returning[i];
            let x = &self.learners[l];
            if x.in_transfer + x.queued + x.applying > 0 {
                i += 1;
                continue;
            }
            self.returning.swap_remove(i);
            // It rejoins at the count of the slowest learner running.
            let slowest = self.slowest();
            if slowest != u64::MAX {
                self.rejoined_at[l] = slowest.saturating_sub(self.learners[l].iterations);
            }
            self.down[l] = false;
            // Whatever it had computed is gone with the failure.
            self.gradients.dropped(l);
            let now = ctx.now();
            if let Some(f) = self.faults.iter_mut().rev().find(|f| f.learner == l) {
                f.back_at_s = Some(now.as_secs_f64());
            }
            self.observer.fault(FaultSite::Learner(l), false, now);
            let step = self.roles[l].on(Happened::Start);
            self.act(ctx, l, step.then);
        }
    }

    /// Why the run cannot go on, if it stopped short with a learner down for good.
    pub(super) fn stall(&self) -> Option<String> {
        if self.progress.finished() || self.gradients.diverged() {
            return None;
        }
        let gone: Vec<String> = (self.faults.iter())
            .filter(|f| f.back_at_s.is_none())
            .map(|f| format!("learner {} (failed at {:.3} s)", f.learner, f.failed_at_s))
            .collect();
        if gone.is_empty() {
            return None;
        }
        let why = match self.server {
            _ if self.down.iter().all(|&d| d) => "no learner is left",
            Server::Synchronous => {
                "each synchronous round waits for a gradient it never gets; \
                 algorithm.ssgd.backup_workers lets a round go without it"
            }
            _ => "the learners left wait for it",
        };
        Some(format!(
            "stalled: {} never came back, and {why}",
            gone.join(", ")
        ))
    }

    /// After each event: returning learners that can start again do.
    pub(super) fn after_event(&mut self, ctx: &mut Context<'_, Event>) {
        if !self.returning.is_empty() && !self.progress.finished() {
            self.rejoin(ctx);
        }
    }
}
