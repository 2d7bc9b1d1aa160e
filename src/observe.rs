//! Observers of a run: hooks the algorithms call as things happen, with no-op defaults, so that
//! traces, progress bars and any future instrumentation stay out of the algorithms. An observer
//! must not influence the run: it gets copies of facts, never the simulation state.

pub mod bar;
pub mod log_lines;

use crate::cluster::learner::Segment;
use crate::time::SimTime;

/// What a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A learner asks a shard for its slice (latency only).
    PullRequest,
    /// A shard's parameter slice travelling to a learner.
    Parameters,
    /// A learner's gradient slice travelling to a shard.
    Gradient,
    /// A shard tells a learner its update is applied (latency only).
    Ack,
}

impl MessageKind {
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::PullRequest => "pull-request",
            MessageKind::Parameters => "parameters",
            MessageKind::Gradient => "gradient",
            MessageKind::Ack => "ack",
        }
    }
}

/// One message from send to delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    pub kind: MessageKind,
    pub learner: usize,
    pub shard: usize,
    pub bytes: u64,
    pub sent: SimTime,
    pub delivered: SimTime,
}

/// What failed or came back: a learner or a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultSite {
    Learner(usize),
    Shard(usize),
}

pub trait Observer {
    /// A learner finished a stretch of one activity.
    fn learner_activity(&mut self, _learner: usize, _segment: Segment) {}
    /// A shard applied a learner's update over [start, end).
    fn shard_update(&mut self, _shard: usize, _learner: usize, _start: SimTime, _end: SimTime) {}
    /// A message was delivered.
    fn message(&mut self, _record: MessageRecord) {}
    /// The given number of epochs (1-based) completed at `time`.
    fn epoch_end(&mut self, _epoch: u64, _time: SimTime) {}
    /// `done` iterations (mini-batches, over all learners) are completed so far; told as each
    /// one ends, so that progress moves with the work and not only at epoch ends.
    fn iterations(&mut self, _done: u64) {}
    /// A learner or a shard failed (`down`) or came back at `time`.
    fn fault(&mut self, _site: FaultSite, _down: bool, _time: SimTime) {}
}

/// Observes nothing.
impl Observer for () {}

impl<O: Observer + ?Sized> Observer for &mut O {
    fn learner_activity(&mut self, learner: usize, segment: Segment) {
        (**self).learner_activity(learner, segment)
    }
    fn shard_update(&mut self, shard: usize, learner: usize, start: SimTime, end: SimTime) {
        (**self).shard_update(shard, learner, start, end)
    }
    fn message(&mut self, record: MessageRecord) {
        (**self).message(record)
    }
    fn epoch_end(&mut self, epoch: u64, time: SimTime) {
        (**self).epoch_end(epoch, time)
    }
    fn iterations(&mut self, done: u64) {
        (**self).iterations(done)
    }
    fn fault(&mut self, site: FaultSite, down: bool, time: SimTime) {
        (**self).fault(site, down, time)
    }
}

/// An observer that may be absent.
impl<O: Observer> Observer for Option<O> {
    fn learner_activity(&mut self, learner: usize, segment: Segment) {
        if let Some(o) = self {
            o.learner_activity(learner, segment);
        }
    }
    fn shard_update(&mut self, shard: usize, learner: usize, start: SimTime, end: SimTime) {
        if let Some(o) = self {
            o.shard_update(shard, learner, start, end);
        }
    }
    fn message(&mut self, record: MessageRecord) {
        if let Some(o) = self {
            o.message(record);
        }
    }
    fn epoch_end(&mut self, epoch: u64, time: SimTime) {
        if let Some(o) = self {
            o.epoch_end(epoch, time);
        }
    }
    fn iterations(&mut self, done: u64) {
        if let Some(o) = self {
            o.iterations(done);
        }
    }
    fn fault(&mut self, site: FaultSite, down: bool, time: SimTime) {
        if let Some(o) = self {
            o.fault(site, down, time);
        }
    }
}

/// Both observers see everything.
impl<A: Observer, B: Observer> Observer for (A, B) {
    fn learner_activity(&mut self, learner: usize, segment: Segment) {
        self.0.learner_activity(learner, segment);
        self.1.learner_activity(learner, segment);
    }
    fn shard_update(&mut self, shard: usize, learner: usize, start: SimTime, end: SimTime) {
        self.0.shard_update(shard, learner, start, end);
        self.1.shard_update(shard, learner, start, end);
    }
    fn message(&mut self, record: MessageRecord) {
        self.0.message(record);
        self.1.message(record);
    }
    fn epoch_end(&mut self, epoch: u64, time: SimTime) {
        self.0.epoch_end(epoch, time);
        self.1.epoch_end(epoch, time);
    }
    fn iterations(&mut self, done: u64) {
        self.0.iterations(done);
        self.1.iterations(done);
    }
    fn fault(&mut self, site: FaultSite, down: bool, time: SimTime) {
        self.0.fault(site, down, time);
        self.1.fault(site, down, time);
    }
}
