//! Shards' failures in the Downpour model (`faults.shard_failures`): a failed shard stops
//! serving, and what reaches it meanwhile is held until it is back (the learners' requests
//! retry until it answers); it comes back from its last checkpoint, taken every
//! `faults.checkpoint_every_s` of the run, so the updates it applied since then are lost.

use super::{Downpour, Event, Message};
use crate::engine::Context;
use crate::faults::ShardFaults;
use crate::observe::{FaultSite, Observer};
use crate::outcome::ShardFaultRecord;
use crate::time::{SimDuration, SimTime};
use crate::training::Gradients;

/// The shards' failures, checkpoints and what waits for them.
pub(super) struct ShardOutages {
    faults: ShardFaults,
    down: Vec<bool>,
    /// Messages that reached a shard while it was down, in arrival order.
    held: Vec<Vec<Message>>,
    /// The checkpoint period each shard's last checkpoint was taken in.
    period: Vec<u64>,
    /// Gradients each shard applied since its last checkpoint.
    since: Vec<u64>,
    pub records: Vec<ShardFaultRecord>,
}

impl ShardOutages {
    pub fn new(faults: ShardFaults, shards: usize) -> Self {
        Self {
            faults,
            down: vec![false; shards],
            held: vec![vec![]; shards],
            period: vec![0; shards],
            since: vec![0; shards],
            records: vec![],
        }
    }

    /// Whether shard `s` is down now.
    pub fn is_down(&self, s: usize) -> bool {
        self.down[s]
    }

    /// Holds `msg` if its shard is down; false if the shard can take it now.
    pub fn hold(&mut self, msg: Message) -> bool {
        if self.down[msg.shard] {
            self.held[msg.shard].push(msg);
        }
        self.down[msg.shard]
    }

    /// The checkpoint period `now` falls in, if shards checkpoint.
    fn period_at(&self, now: SimTime) -> Option<u64> {
        let every = self.faults.checkpoint_every_s?;
        Some((now.as_secs_f64() / every).floor() as u64)
    }
}

impl<O: Observer, G: Gradients> Downpour<O, G> {
    /// At the start: every shard's starting slice is its first checkpoint, and each failure
    /// is scheduled.
    pub(super) fn schedule_shard_failures(&mut self, ctx: &mut Context<'_, Event>) {
        if self.outages.faults.failures.is_empty() {
            return;
        }
        for s in 0..self.shards.len() {
            self.gradients.checkpoint(s);
        }
        for (k, f) in self.outages.faults.failures.iter().enumerate() {
            let at = SimTime::ZERO + SimDuration::from_secs_ceil(f.at_s);
            ctx.schedule_at(at, Event::ShardDown { failure: k });
        }
    }

    /// Shard `s` is about to apply `n` gradients at `now`: a checkpoint due since its last one
    /// is taken first (the slice as it was at the period's start, no update having come
    /// between), and the gradients count as applied since it.
    pub(super) fn applying(&mut self, now: SimTime, s: usize, n: u64) {
        if self.outages.faults.failures.is_empty() {
            return;
        }
        self.checkpoint_due(now, s);
        self.outages.since[s] += n;
    }

    fn checkpoint_due(&mut self, now: SimTime, s: usize) {
        let o = &mut self.outages;
        if let Some(period) = o.period_at(now).filter(|&p| p > o.period[s] && !o.down[s]) {
            o.period[s] = period;
            o.since[s] = 0;
            self.gradients.checkpoint(s);
        }
    }

    /// The `k`-th shard failure happens: the shard stops taking work.
    pub(super) fn shard_down(&mut self, ctx: &mut Context<'_, Event>, k: usize) {
        let f = self.outages.faults.failures[k];
        let now = ctx.now();
        self.checkpoint_due(now, f.shard);
        self.outages.down[f.shard] = true;
        self.outages.records.push(ShardFaultRecord {
            shard: f.shard,
            failed_at_s: now.as_secs_f64(),
            back_at_s: None,
            lost_updates: 0,
            held_messages: 0,
        });
        self.observer.fault(FaultSite::Shard(f.shard), true, now);
        let back = SimDuration::from_secs_ceil(f.down_for_s);
        ctx.schedule_in(back, Event::ShardUp { failure: k });
    }

    /// The `k`-th failure's shard is back: its slice is its last checkpoint's, and it serves
    /// what waited for it, in the order it arrived, then its queue.
    pub(super) fn shard_up(&mut self, ctx: &mut Context<'_, Event>, k: usize) {
        let s = self.outages.faults.failures[k].shard;
        self.gradients.restore(s);
        let o = &mut self.outages;
        o.down[s] = false;
        let held = std::mem::take(&mut o.held[s]);
        self.observer.fault(FaultSite::Shard(s), false, ctx.now());
        if let Some(r) = o.records.iter_mut().rev().find(|r| r.shard == s) {
            r.back_at_s = Some(ctx.now().as_secs_f64());
            r.lost_updates = std::mem::take(&mut o.since[s]);
            r.held_messages = held.len() as u64;
        }
        for msg in held {
            self.deliver(ctx, msg);
            if self.progress.finished() {
                return;
            }
        }
        self.run_shard(ctx, s);
    }
}
