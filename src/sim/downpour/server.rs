//! The shards' side of the Downpour model: updates queued and applied one at a time (lock-free
//! ones as they arrive), committed to the shard's ledger and acknowledged; and for synchronous
//! SGD through the server, a shard whose round ([`crate::algorithm::ssgd::SyncRound`]) has the gradients it needs takes
//! one step by their mean and acknowledges them all; a gradient the round drops is
//! acknowledged at once.

use super::host::Task;
use super::{Downpour, Event, Fabric, STEP};
use crate::algorithm::Server;
use crate::algorithm::ssgd::{Offer, decides};
use crate::engine::Context;
use crate::observe::{MessageKind, Observer};
use crate::time::SimTime;
use crate::training::Gradients;

impl<O: Observer, G: Gradients> Downpour<O, G> {
    /// Starts the shard's next queued update if its core is free.
    pub(super) fn run_shard(&mut self, ctx: &mut Context<'_, Event>, s: usize) {
        if self.outages.is_down(s) {
            return;
        }
        if let Some(learner) = self.shards[s].next_update() {
            self.begin_update(ctx.now(), s, learner);
            let dt = self.shards[s].update_time;
            ctx.schedule_in(dt, Event::ApplyDone { shard: s, learner });
        }
    }

    pub(super) fn begin_update(&mut self, now: SimTime, s: usize, learner: usize) {
        let read = self.learners[learner].versions_read[s];
        self.learners[learner].queued -= 1;
        self.learners[learner].applying += 1;
        self.shards[s].begin_apply(now, learner, read);
        self.refresh(learner);
    }

    /// Learner `l`'s update on shard `s` is done: the numerics apply it and the learner is
    /// told (synchronous SGD: its gradient is in the round's sum, and with the round's last
    /// one the shard takes its step). Returns false if the numerics diverged and the run
    /// stopped.
    pub(super) fn end_update(&mut self, ctx: &mut Context<'_, Event>, s: usize, l: usize) -> bool {
        let now = ctx.now();
        let Some(read) = self.shards[s].end_apply(now, l) else {
            return true;
        };
        let began = SimTime::from_nanos(
            now.as_nanos()
                .saturating_sub(self.shards[s].update_time.as_nanos()),
        );
        self.observer.shard_update(s, l, began, now);
        self.learners[l].applying -= 1;
        if self.server == Server::Synchronous {
            let version = self.shards[s].ledger.version;
            match self.rounds[s].offer(l, read, version) {
                // Waits at the barrier for the other learners' gradients.
                Offer::Taken { full } => {
                    self.learners[l].queued += 1;
                    self.refresh(l);
                    if full {
                        self.start_step(ctx, s);
                    }
                }
                Offer::Dropped => {
                    if decides(s) {
                        self.learners[l].push_dropped = true;
                    }
                    self.send(ctx, MessageKind::Ack, l, s);
                    self.refresh(l);
                }
            }
            return true;
        }
        self.applying(now, s, 1);
        let staleness = self.shards[s].commit(read);
        self.gradients.apply(l, s, staleness);
        if self.gradients.diverged() {
            self.finish(now);
            return false;
        }
        if self.self_served() {
            self.refresh(l);
            self.acked(ctx, l);
        } else {
            self.send(ctx, MessageKind::Ack, l, s);
            self.refresh(l);
        }
        true
    }

    /// Every gradient the round needs is in shard `s`'s sum: it takes the round's step.
    pub(super) fn start_step(&mut self, ctx: &mut Context<'_, Event>, s: usize) {
        for i in 0..self.rounds[s].taken().len() {
            let l = self.rounds[s].taken()[i];
            self.learners[l].queued -= 1;
            self.learners[l].applying += 1;
            self.refresh(l);
        }
        let work = self.shards[s].update_time;
        match &self.fabric {
            Fabric::Links { .. } => {
                let version = self.shards[s].ledger.version;
                self.shards[s].begin_apply(ctx.now(), STEP, version);
                ctx.schedule_in(work, Event::StepDone { shard: s });
            }
            Fabric::Host(h) => {
                let thread = h.shard_thread(s);
                self.run_task(ctx, thread, Task::Step, work);
            }
        }
    }

    /// Shard `s` has taken its round's step by the mean of the round's gradients, summed in
    /// learner order; every learner of the round is acknowledged.
    pub(super) fn step_done(&mut self, ctx: &mut Context<'_, Event>, s: usize) {
        let now = ctx.now();
        self.shards[s].end_apply(now, STEP);
        let order = self.rounds[s].close();
        self.applying(now, s, order.len() as u64);
        self.shards[s].commit_round(order.len());
        self.gradients.apply_round(s, &order);
        if self.gradients.diverged() {
            self.finish(now);
            return;
        }
        for &l in &order {
            self.learners[l].applying -= 1;
            self.send(ctx, MessageKind::Ack, l, s);
            self.refresh(l);
        }
    }
}
