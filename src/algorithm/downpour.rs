//! Downpour ASGD with a sharded parameter server, as a discrete-event model.
//!
//! Each learner loops: ask every shard for its slice (a latency-only request), receive the slices
//! over the network, compute a gradient on its GPU, send each shard its gradient slice, and wait
//! for every shard's acknowledgement that the update is applied. Each shard applies one update at
//! a time in arrival order, each costing the time to stream the slice and the gradient through
//! the core's memory; a pull is served at once with the last fully applied version (updates are
//! atomic, reads are never half-updated, and the slice leaves by DMA without core time). A
//! shard's version counts its applied updates; an update's staleness is the version at apply
//! minus the version the learner read.
//!
//! The run ends when `epochs x iterations_per_epoch` iterations have completed across all
//! learners. This model never touches numeric values: it decides only when things happen, and
//! tells its [`Gradients`] when values move (timing-only runs pass `()`). A diverged run stops.

use crate::cluster::Placement;
use crate::cluster::learner::{Breakdown, Learner, Phase};
use crate::cluster::shard::Shard;
use crate::engine::{Context, Model};
use crate::machine::device::{ComputeModel, update_time};
use crate::machine::network::{FlowId, Network};
use crate::machine::topology::{Route, Topology};
use crate::observe::{MessageKind, MessageRecord, Observer};
use crate::stats::Histogram;
use crate::time::SimTime;
use crate::training::Gradients;
use crate::workload::model::BYTES_PER_PARAM;
use std::collections::HashMap;

/// Everything Downpour needs to know about a run, already checked.
#[derive(Clone, Debug)]
pub struct DownpourSetup {
    pub placement: Placement,
    /// One compute model per learner.
    pub compute: Vec<ComputeModel>,
    /// Iterations (mini-batches) across all learners that make one epoch.
    pub iterations_per_epoch: u64,
    pub epochs: u64,
}

/// The model's events: a closed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The network has a flow activating or completing now.
    NetworkWake,
    /// A latency-only message arrives.
    Deliver(Message),
    /// A learner's GPU finished its gradient.
    ComputeDone { learner: usize },
    /// A shard finished applying the update it was working on.
    ApplyDone { shard: usize },
}

/// A message in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    pub kind: MessageKind,
    pub learner: usize,
    pub shard: usize,
    pub sent: SimTime,
}

/// What a finished run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub end: SimTime,
    pub epoch_ends: Vec<SimTime>,
    pub breakdowns: Vec<Breakdown>,
    pub learner_iterations: Vec<u64>,
    pub staleness: Histogram,
    pub shard_busy_ns: Vec<u64>,
    pub shard_updates: Vec<u64>,
    pub bytes_moved: u64,
    /// The numerics reported NaN or infinity and the run stopped early.
    pub diverged: bool,
}

pub struct Downpour<O: Observer, G: Gradients = ()> {
    setup: DownpourSetup,
    network: Network,
    /// Route from shard `s` down to learner `l` at `[l * shards + s]`, and back up.
    down: Vec<Route>,
    up: Vec<Route>,
    learners: Vec<Learner>,
    shards: Vec<Shard>,
    /// Learner each busy shard is applying an update for.
    applying_for: Vec<Option<usize>>,
    flows: HashMap<FlowId, Message>,
    wake_at: Option<SimTime>,
    completed: u64,
    epoch_ends: Vec<SimTime>,
    finished_at: Option<SimTime>,
    observer: O,
    gradients: G,
    scratch: Vec<FlowId>,
    /// The time of the event being handled, for the learners' accounting.
    now: SimTime,
}

impl<O: Observer, G: Gradients> Downpour<O, G> {
    /// Builds the model. Fails with (key, message) problems if a learner cannot reach a shard.
    pub fn new(
        topology: &Topology,
        setup: DownpourSetup,
        observer: O,
        gradients: G,
    ) -> Result<Self, Vec<(String, String)>> {
        let p = &setup.placement;
        let (nl, ns) = (p.learner_gpus.len(), p.shard_cores.len());
        let mut down = Vec::with_capacity(nl * ns);
        let mut up = Vec::with_capacity(nl * ns);
        let mut problems = vec![];
        for &gpu in &p.learner_gpus {
            for &core in &p.shard_cores {
                match (topology.route(core, gpu), topology.route(gpu, core)) {
                    (Some(d), Some(u)) => {
                        down.push(d);
                        up.push(u);
                    }
                    _ => problems.push((
                        "machine.topology".to_string(),
                        format!(
                            "no route between gpu `{}` and core `{}`",
                            topology.node(gpu).id,
                            topology.node(core).id
                        ),
                    )),
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let shards = p
            .shard_cores
            .iter()
            .zip(&p.shard_ranges)
            .map(|(&core, range)| {
                let bytes = range.len() as u64 * BYTES_PER_PARAM;
                let bw = topology
                    .node(core)
                    .core
                    .as_ref()
                    .map_or(1.0, |c| c.memory_bandwidth_gb_per_s);
                Shard::new(core, range.clone(), bytes, update_time(bytes, bw))
            })
            .collect();
        let learners = p
            .learner_gpus
            .iter()
            .map(|&g| Learner::new(g, ns))
            .collect();
        Ok(Self {
            network: Network::new(topology.channel_capacities()),
            down,
            up,
            learners,
            shards,
            applying_for: vec![None; ns],
            flows: HashMap::new(),
            wake_at: None,
            completed: 0,
            epoch_ends: vec![],
            finished_at: None,
            observer,
            gradients,
            scratch: vec![],
            now: SimTime::ZERO,
            setup,
        })
    }

    fn target(&self) -> u64 {
        self.setup.epochs * self.setup.iterations_per_epoch
    }

    /// Sends a message: slices and gradients go through the network, requests and acks only
    /// take their route's latency.
    fn send(
        &mut self,
        ctx: &mut Context<'_, Event>,
        kind: MessageKind,
        learner: usize,
        shard: usize,
    ) {
        let i = learner * self.shards.len() + shard;
        let route = match kind {
            MessageKind::PullRequest | MessageKind::Gradient => &self.up[i],
            MessageKind::Parameters | MessageKind::Ack => &self.down[i],
        };
        let msg = Message {
            kind,
            learner,
            shard,
            sent: ctx.now(),
        };
        self.learners[learner].in_transfer += 1;
        match kind {
            MessageKind::PullRequest | MessageKind::Ack => {
                ctx.schedule_in(route.latency, Event::Deliver(msg));
            }
            MessageKind::Parameters | MessageKind::Gradient => {
                let id = self
                    .network
                    .start_flow(ctx.now(), route, self.shards[shard].bytes);
                self.flows.insert(id, msg);
                self.sync_wake(ctx);
            }
        }
    }

    /// Makes sure a wake-up is scheduled for the network's next change.
    fn sync_wake(&mut self, ctx: &mut Context<'_, Event>) {
        if let Some(t) = self.network.next_event_time() {
            if self.wake_at.is_none_or(|w| t < w) {
                self.wake_at = Some(t);
                ctx.schedule_at(t, Event::NetworkWake);
            }
        }
    }

    fn refresh(&mut self, learner: usize) {
        if let Some(seg) = self.learners[learner].update(self.now) {
            self.observer.learner_activity(learner, seg);
        }
    }

    fn start_pull(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        let shards = self.shards.len();
        let learner = &mut self.learners[l];
        learner.phase = Phase::Pulling;
        learner.pending = shards as u32;
        for s in 0..shards {
            self.send(ctx, MessageKind::PullRequest, l, s);
        }
        self.refresh(l);
    }

    fn deliver(&mut self, ctx: &mut Context<'_, Event>, msg: Message) {
        let now = ctx.now();
        let (l, s) = (msg.learner, msg.shard);
        let bytes = match msg.kind {
            MessageKind::Parameters | MessageKind::Gradient => self.shards[s].bytes,
            _ => 0,
        };
        self.observer.message(MessageRecord {
            kind: msg.kind,
            learner: l,
            shard: s,
            bytes,
            sent: msg.sent,
            delivered: now,
        });
        self.learners[l].in_transfer -= 1;
        match msg.kind {
            MessageKind::PullRequest => {
                self.learners[l].versions_read[s] = self.shards[s].version;
                self.gradients.pull(l, s);
                self.send(ctx, MessageKind::Parameters, l, s);
                self.refresh(l);
            }
            MessageKind::Gradient => {
                self.learners[l].queued += 1;
                self.shards[s].enqueue_update(l);
                self.refresh(l);
                self.run_shard(ctx, s);
            }
            MessageKind::Parameters => {
                let learner = &mut self.learners[l];
                learner.pending -= 1;
                if learner.pending == 0 {
                    learner.phase = Phase::Computing;
                    self.gradients.compute(l);
                    let dt = self.setup.compute[l].sample(ctx.rng());
                    ctx.schedule_in(dt, Event::ComputeDone { learner: l });
                }
                self.refresh(l);
            }
            MessageKind::Ack => {
                let learner = &mut self.learners[l];
                learner.pending -= 1;
                if learner.pending > 0 {
                    self.refresh(l);
                    return;
                }
                learner.iterations += 1;
                self.completed += 1;
                if self.completed % self.setup.iterations_per_epoch == 0 {
                    self.epoch_ends.push(now);
                    let epoch = self.epoch_ends.len() as u64;
                    self.gradients.epoch_end(epoch, now);
                    self.observer.epoch_end(epoch, now);
                }
                if self.completed >= self.target() || self.gradients.diverged() {
                    self.finish(now);
                } else {
                    self.start_pull(ctx, l);
                }
            }
        }
    }

    /// Starts the shard's next queued update if its core is free.
    fn run_shard(&mut self, ctx: &mut Context<'_, Event>, s: usize) {
        if let Some(learner) = self.shards[s].next_update() {
            let read = self.learners[learner].versions_read[s];
            self.learners[learner].queued -= 1;
            self.learners[learner].applying += 1;
            self.shards[s].begin_apply(ctx.now(), read);
            self.applying_for[s] = Some(learner);
            ctx.schedule_in(self.shards[s].update_time, Event::ApplyDone { shard: s });
            self.refresh(learner);
        }
    }

    fn finish(&mut self, now: SimTime) {
        self.finished_at = Some(now);
        for l in 0..self.learners.len() {
            if let Some(seg) = self.learners[l].close(now) {
                self.observer.learner_activity(l, seg);
            }
        }
    }

    /// The run's measurements; `end` is when the last iteration completed (or `now` if the run
    /// was cut short).
    pub fn outcome(&self, now: SimTime) -> Outcome {
        let end = self.finished_at.unwrap_or(now);
        let mut staleness = Histogram::default();
        for s in &self.shards {
            staleness.merge(&s.staleness);
        }
        let (_, bytes_moved) = self.network.byte_totals();
        Outcome {
            end,
            epoch_ends: self.epoch_ends.clone(),
            breakdowns: self.learners.iter().map(|l| *l.breakdown()).collect(),
            learner_iterations: self.learners.iter().map(|l| l.iterations).collect(),
            staleness,
            shard_busy_ns: self.shards.iter().map(|s| s.busy_ns(end)).collect(),
            shard_updates: self.shards.iter().map(|s| s.version).collect(),
            bytes_moved,
            diverged: self.gradients.diverged(),
        }
    }

    pub fn observer_mut(&mut self) -> &mut O {
        &mut self.observer
    }

    pub fn observer(&self) -> &O {
        &self.observer
    }

    /// The observer and the numerics, handed back at the end of a run.
    pub fn into_parts(self) -> (O, G) {
        (self.observer, self.gradients)
    }
}

impl<O: Observer, G: Gradients> Model for Downpour<O, G> {
    type Event = Event;

    fn start(&mut self, ctx: &mut Context<'_, Event>) {
        self.now = ctx.now();
        if self.target() == 0 {
            self.finish(ctx.now());
            return;
        }
        for l in 0..self.learners.len() {
            self.start_pull(ctx, l);
        }
    }

    fn handle(&mut self, event: Event, ctx: &mut Context<'_, Event>) {
        self.now = ctx.now();
        match event {
            Event::NetworkWake => {
                if self.wake_at == Some(ctx.now()) {
                    self.wake_at = None;
                }
                let mut done = std::mem::take(&mut self.scratch);
                self.network.advance(ctx.now(), &mut done);
                for id in done.drain(..) {
                    if let Some(msg) = self.flows.remove(&id) {
                        self.deliver(ctx, msg);
                        if self.finished_at.is_some() {
                            break;
                        }
                    }
                }
                self.scratch = done;
                self.sync_wake(ctx);
            }
            Event::Deliver(msg) => self.deliver(ctx, msg),
            Event::ComputeDone { learner } => {
                let shards = self.shards.len();
                let l = &mut self.learners[learner];
                l.phase = Phase::Pushing;
                l.pending = shards as u32;
                for s in 0..shards {
                    self.send(ctx, MessageKind::Gradient, learner, s);
                }
                self.refresh(learner);
            }
            Event::ApplyDone { shard } => {
                let now = ctx.now();
                self.shards[shard].end_apply(now);
                if let Some(l) = self.applying_for[shard].take() {
                    let began = SimTime::from_nanos(
                        now.as_nanos()
                            .saturating_sub(self.shards[shard].update_time.as_nanos()),
                    );
                    self.observer.shard_update(shard, l, began, now);
                    self.gradients.apply(l, shard);
                    if self.gradients.diverged() {
                        self.finish(now);
                        return;
                    }
                    self.learners[l].applying -= 1;
                    self.send(ctx, MessageKind::Ack, l, shard);
                    self.refresh(l);
                }
                self.run_shard(ctx, shard);
            }
        }
    }

    fn finished(&self) -> bool {
        self.finished_at.is_some()
    }
}
