//! A group of flows that share one rate and one clock of service.
//!
//! Every member of a group transfers at the group's rate, so instead of each member's bytes
//! left the group keeps the bytes each member has been served since the group began (its
//! *service*, a virtual time in bytes), and each member the service at which it is through (its
//! *tag*). A change of the group's rate then touches the group, not its members: the next member
//! to finish is the one with the smallest tag (processor sharing seen per bottleneck).

use crate::machine::network::FlowId;
use crate::time::{SimDuration, SimTime};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A non-negative, finite f64 ordered as a number (for heaps).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Key(pub f64);

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// No channel, no group.
pub const NONE: u32 = u32::MAX;

#[derive(Clone, Debug, Default)]
pub struct Group {
    /// The channel this group is held by (where its flows froze in the last full filling, or
    /// the tightest channel of the flow that opened it); while the network's allocation is
    /// kept, that channel carries only this group's flows.
    pub bottleneck: u32,
    /// Bytes per ns, the same for every member.
    pub rate: f64,
    /// Service (bytes per member) at `since`, the last time the rate changed.
    service: f64,
    since: SimTime,
    /// Members by (tag, id): the next to finish first.
    members: BinaryHeap<Reverse<(Key, FlowId, u32)>>,
    /// Lower bounds of the equal shares (capacity / flows) of the channels the members cross,
    /// with the channel; an entry is current when it equals the channel's share today.
    pub slack: BinaryHeap<Reverse<(Key, u32)>>,
    /// The channels the members cross (kept with `slack`).
    pub channels: Vec<u32>,
    /// Version of the group's scheduled completion; bumped whenever it may have moved.
    pub epoch: u32,
    pub live: bool,
}

impl Group {
    /// Starts an empty group at `now` with the given rate.
    pub fn open(&mut self, bottleneck: u32, rate: f64, now: SimTime) {
        self.bottleneck = bottleneck;
        self.rate = rate;
        self.service = 0.0;
        self.since = now;
        self.members.clear();
        self.slack.clear();
        self.channels.clear();
        self.epoch = self.epoch.wrapping_add(1);
        self.live = true;
    }

    pub fn close(&mut self) {
        self.members.clear();
        self.slack.clear();
        self.channels.clear();
        self.live = false;
        self.bottleneck = NONE;
        self.epoch = self.epoch.wrapping_add(1);
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Service at `t` (not before `since`).
    pub fn service_at(&self, t: SimTime) -> f64 {
        self.service + self.rate * (t - self.since).as_nanos() as f64
    }

    /// Bytes a member with tag `tag` has left at `t`; never zero before it is due.
    pub fn left(&self, tag: f64, t: SimTime) -> f64 {
        let left = tag - self.service_at(t);
        if self.due(tag) > t {
            left.max(f64::MIN_POSITIVE)
        } else {
            left.max(0.0)
        }
    }

    /// When a member with tag `tag` is through at today's rate.
    pub fn due(&self, tag: f64) -> SimTime {
        self.since + SimDuration::from_nanos_ceil((tag - self.service) / self.rate)
    }

    /// Adds a member with `bytes` to send from `now`; returns its tag.
    pub fn join(&mut self, id: FlowId, slot: u32, bytes: f64, now: SimTime) -> f64 {
        let tag = self.service_at(now) + bytes;
        self.members.push(Reverse((Key(tag), id, slot)));
        tag
    }

    /// Changes the rate from `now` on; members keep their tags.
    pub fn set_rate(&mut self, rate: f64, now: SimTime) {
        if rate != self.rate {
            self.service = self.service_at(now);
            self.since = now;
            self.rate = rate;
        }
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// The next member to finish and when.
    pub fn next_due(&self) -> Option<(SimTime, FlowId, u32)> {
        self.members
            .peek()
            .map(|Reverse((tag, id, slot))| (self.due(tag.0), *id, *slot))
    }

    /// Removes the next member to finish.
    pub fn pop(&mut self) -> Option<(FlowId, u32)> {
        self.members.pop().map(|Reverse((_, id, slot))| (id, slot))
    }

    /// Members, in no particular order: (id, slot, tag).
    pub fn members(&self) -> impl Iterator<Item = (FlowId, u32, f64)> + '_ {
        self.members
            .iter()
            .map(|Reverse((tag, id, slot))| (*id, *slot, tag.0))
    }

    pub fn take_members(&mut self) -> Vec<(FlowId, u32, f64)> {
        let out = self.members().collect();
        self.members.clear();
        out
    }
}
