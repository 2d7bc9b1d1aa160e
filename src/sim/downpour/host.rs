//! Downpour on a shared-memory host, as the real backend runs it: every learner and every shard
//! is a thread, and a thread does one task at a time on the host's shared cores. A message
//! takes the host's message latency, the last part of it core time of the receiving thread
//! (waking up to it), so that on busy cores a message waits for its receiver to get a core. A
//! pull is a request, the shard copying its slice into a reply (a shard task, queued
//! behind the updates that arrived first), the reply (latency), and the learner copying it into
//! its parameters (a learner task). A push is the learner copying each gradient slice into a
//! message and sending it (learner tasks, one shard after another), the shard applying it (a
//! shard task) and the acknowledgement (latency). The gradient itself is a learner task of the
//! measured one-thread gradient time. The threads share the cores as `machine::cpu` says: one
//! run queue, the measured time slice, and the measured slowdown of busy cores.

use super::{Downpour, Event, Fabric, Message, STEP};
use crate::engine::Context;
use crate::machine::cpu::Sharing;
use crate::machine::threads::Threads;
use crate::machine::topology::HostSpec;
use crate::observe::{MessageKind, Observer};
use crate::sim::fabric::Wake;
use crate::time::SimDuration;
use crate::training::Gradients;

/// What a thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Task {
    /// Learner: copy a shard's slice from its reply into the parameters.
    CopyIn { shard: usize },
    /// Learner: compute the mini-batch gradient.
    Compute,
    /// Learner: copy the gradient's slice for a shard into a message.
    CopyOut { shard: usize },
    /// Shard: copy the slice into a learner's reply.
    Serve { learner: usize },
    /// Shard: apply a learner's gradient.
    Apply { learner: usize },
    /// Shard: take a synchronous round's step.
    Step,
    /// Hogwild learner: copy a slice of the shared vector into its parameters.
    Read { shard: usize },
    /// Hogwild learner: write its update into a slice of the shared vector.
    Write { shard: usize },
    /// Either: wake up to a message (the core time of its latency).
    Receive(Message),
}

/// The host's threads and what its messages cost.
pub(super) struct Host {
    pub threads: Threads<Task>,
    /// A message's delay before its receiver wakes, and the core time of waking.
    pub delay: SimDuration,
    pub wake: SimDuration,
    copy_gb_per_s: f64,
    learners: usize,
    pub wake_at: Wake,
    /// Bytes of slices and gradients copied into messages.
    pub bytes_sent: u64,
}

impl Host {
    pub fn new(spec: &HostSpec, cores: usize, learners: usize, shards: usize) -> Self {
        Self {
            threads: Threads::new(
                learners + shards,
                Sharing {
                    cores,
                    slice: SimDuration::from_nanos(spec.time_slice_ns),
                    slowdown: spec.busy_slowdown,
                },
            ),
            delay: SimDuration::from_nanos(
                spec.message_latency_ns.saturating_sub(spec.message_cpu_ns),
            ),
            wake: SimDuration::from_nanos(spec.message_cpu_ns),
            copy_gb_per_s: spec.copy_gb_per_s,
            learners,
            wake_at: Wake::default(),
            bytes_sent: 0,
        }
    }

    pub fn learner_thread(&self, learner: usize) -> usize {
        learner
    }

    pub fn shard_thread(&self, shard: usize) -> usize {
        self.learners + shard
    }

    /// Which learner or shard a thread is: `Ok(learner)` or `Err(shard)`.
    pub fn role(&self, thread: usize) -> Result<usize, usize> {
        if thread < self.learners {
            Ok(thread)
        } else {
            Err(thread - self.learners)
        }
    }

    /// One thread's time to copy `bytes`.
    pub fn copy_time(&self, bytes: u64) -> SimDuration {
        SimDuration::from_nanos_ceil(bytes as f64 / self.copy_gb_per_s)
    }
}

/// The host's threads as the Downpour model drives them: tasks queued on a thread, started
/// when it gets a core, and what each task's start and end mean for the protocol.
impl<O: Observer, G: Gradients> Downpour<O, G> {
    /// Queues a task on a host thread, starting it at once if the thread is idle.
    pub(super) fn run_task(
        &mut self,
        ctx: &mut Context<'_, Event>,
        thread: usize,
        task: Task,
        work: SimDuration,
    ) {
        let Fabric::Host(h) = &mut self.fabric else {
            return;
        };
        if h.threads.push(ctx.now(), thread, task, work) {
            self.task_started(ctx, thread, task);
        }
        self.sync_wake(ctx);
    }

    /// A host task begins: a shard reads its slice for a reply or starts an update.
    pub(super) fn task_started(&mut self, ctx: &mut Context<'_, Event>, thread: usize, task: Task) {
        let Fabric::Host(h) = &self.fabric else {
            return;
        };
        let s = match (h.role(thread), task) {
            (Ok(l), Task::Read { shard }) => return self.read_slice(l, shard),
            (Ok(l), Task::Write { shard }) => return self.begin_update(ctx.now(), shard, l),
            (Ok(_), _) => return,
            (Err(s), _) => s,
        };
        match task {
            Task::Serve { learner } => self.read_slice(learner, s),
            Task::Apply { learner } => self.begin_update(ctx.now(), s, learner),
            Task::Step => {
                let version = self.shards[s].ledger.version;
                self.shards[s].begin_apply(ctx.now(), STEP, version);
            }
            _ => {}
        }
    }

    /// A host task ends.
    pub(super) fn task_done(&mut self, ctx: &mut Context<'_, Event>, thread: usize, task: Task) {
        let Fabric::Host(h) = &self.fabric else {
            return;
        };
        match (h.role(thread), task) {
            (Ok(l), Task::CopyIn { .. }) => self.slice_in(ctx, l),
            (Ok(l), Task::Compute) => self.gradient_done(ctx, l),
            (Ok(l), Task::CopyOut { shard }) => {
                self.dispatch(ctx, MessageKind::Gradient, l, shard);
            }
            (Err(s), Task::Serve { learner }) => {
                self.send(ctx, MessageKind::Parameters, learner, s);
            }
            (Ok(l), Task::Read { .. }) => self.slice_in(ctx, l),
            (Ok(l), Task::Write { shard }) => {
                self.end_update(ctx, shard, l);
            }
            (Err(s), Task::Apply { learner }) => {
                self.end_update(ctx, s, learner);
            }
            (Err(s), Task::Step) => self.step_done(ctx, s),
            (_, Task::Receive(msg)) => self.deliver(ctx, msg),
            // A learner never serves or applies, a shard never computes or copies for itself.
            _ => {}
        }
    }
}
