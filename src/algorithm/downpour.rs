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
//! On a shared-memory host (the real backend's machine) the same protocol runs over threads
//! instead of links, as `host` describes: messages take the host's message latency, and the
//! copying of slices and gradients, the shards' updates and the learners' gradients are tasks
//! of their threads, sharing the host's cores.
//!
//! The run ends when `epochs x iterations_per_epoch` iterations have completed across all
//! learners. This model never touches numeric values: it decides only when things happen, and
//! tells its [`Gradients`] when values move (timing-only runs pass `()`). A diverged run stops.

mod host;

use crate::cluster::Placement;
use crate::cluster::learner::{Breakdown, Learner, Phase};
use crate::cluster::shard::Shard;
use crate::engine::{Context, Model};
use crate::machine::device::{ComputeModel, update_time};
use crate::machine::network::{FlowId, Network};
use crate::machine::topology::{Route, Topology};
use crate::observe::{MessageKind, MessageRecord, Observer};
use crate::stats::Histogram;
use crate::time::{SimDuration, SimTime};
use crate::training::Gradients;
use crate::workload::model::BYTES_PER_PARAM;
use host::{Host, Task};
use std::collections::HashMap;

/// Everything Downpour needs to know about a run, already checked.
#[derive(Clone, Debug)]
pub struct DownpourSetup {
    pub placement: Placement,
    /// One compute model per learner.
    pub compute: Vec<ComputeModel>,
    /// Iterations (mini-batches) across all learners that make one epoch.
    pub iterations_per_epoch: u64,
    /// Bytes a shard streams through memory per parameter byte of an update.
    pub update_passes: f64,
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
    /// A task of a host's threads ends now.
    ThreadsWake,
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

/// What carries the messages and does the work.
// One per run, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Fabric {
    /// Devices joined by links: slices and gradients are flows sharing the links' bandwidth,
    /// GPUs compute and host cores apply updates, each on its own.
    Links {
        network: Network,
        /// Route from shard `s` down to learner `l` at `[l * shards + s]`, and back up.
        down: Vec<Route>,
        up: Vec<Route>,
        flows: HashMap<FlowId, Message>,
        wake_at: Option<SimTime>,
    },
    /// One shared-memory host whose learners and shards are threads.
    Host(Host),
}

pub struct Downpour<O: Observer, G: Gradients = ()> {
    setup: DownpourSetup,
    fabric: Fabric,
    learners: Vec<Learner>,
    shards: Vec<Shard>,
    /// Learner each busy shard is applying an update for.
    applying_for: Vec<Option<usize>>,
    completed: u64,
    epoch_ends: Vec<SimTime>,
    finished_at: Option<SimTime>,
    observer: O,
    gradients: G,
    scratch: Vec<FlowId>,
    ended: Vec<(usize, Task)>,
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
        let fabric = match topology.host() {
            Some(h) => Fabric::Host(Host::new(h, topology.cores().len(), nl, ns)),
            None => Self::links(topology, p)?,
        };
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
                Shard::new(
                    core,
                    range.clone(),
                    bytes,
                    update_time(bytes, bw, setup.update_passes),
                )
            })
            .collect();
        let learners = p
            .learner_gpus
            .iter()
            .map(|&g| Learner::new(g, ns))
            .collect();
        Ok(Self {
            fabric,
            learners,
            shards,
            applying_for: vec![None; ns],
            completed: 0,
            epoch_ends: vec![],
            finished_at: None,
            observer,
            gradients,
            scratch: vec![],
            ended: vec![],
            now: SimTime::ZERO,
            setup,
        })
    }

    /// Routes between every learner and shard over the topology's links.
    fn links(topology: &Topology, p: &Placement) -> Result<Fabric, Vec<(String, String)>> {
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
        Ok(Fabric::Links {
            network: Network::new(topology.channel_capacities()),
            down,
            up,
            flows: HashMap::new(),
            wake_at: None,
        })
    }

    fn target(&self) -> u64 {
        self.setup.epochs * self.setup.iterations_per_epoch
    }

    /// Sends a message: on links slices and gradients are flows through the network while
    /// requests and acks only take their route's latency; on a host every message takes the
    /// host's message latency (its data was copied by the sender's thread beforehand).
    fn send(
        &mut self,
        ctx: &mut Context<'_, Event>,
        kind: MessageKind,
        learner: usize,
        shard: usize,
    ) {
        self.learners[learner].in_transfer += 1;
        self.dispatch(ctx, kind, learner, shard);
    }

    /// Puts a message on its way without counting it again (see [`Downpour::send`]).
    fn dispatch(
        &mut self,
        ctx: &mut Context<'_, Event>,
        kind: MessageKind,
        learner: usize,
        shard: usize,
    ) {
        let msg = Message {
            kind,
            learner,
            shard,
            sent: ctx.now(),
        };
        let bytes = self.shards[shard].bytes;
        match &mut self.fabric {
            Fabric::Links {
                network,
                down,
                up,
                flows,
                ..
            } => {
                let i = learner * self.shards.len() + shard;
                let route = match kind {
                    MessageKind::PullRequest | MessageKind::Gradient => &up[i],
                    MessageKind::Parameters | MessageKind::Ack => &down[i],
                };
                match kind {
                    MessageKind::PullRequest | MessageKind::Ack => {
                        ctx.schedule_in(route.latency, Event::Deliver(msg));
                    }
                    MessageKind::Parameters | MessageKind::Gradient => {
                        let id = network.start_flow(ctx.now(), route, bytes);
                        flows.insert(id, msg);
                        self.sync_wake(ctx);
                    }
                }
            }
            Fabric::Host(h) => {
                if matches!(kind, MessageKind::Parameters | MessageKind::Gradient) {
                    h.bytes_sent += bytes;
                }
                ctx.schedule_in(h.delay, Event::Deliver(msg));
            }
        }
    }

    /// Makes sure a wake-up is scheduled for the fabric's next change.
    fn sync_wake(&mut self, ctx: &mut Context<'_, Event>) {
        let (next, wake_at, event) = match &mut self.fabric {
            Fabric::Links {
                network, wake_at, ..
            } => (network.next_event_time(), wake_at, Event::NetworkWake),
            Fabric::Host(h) => (
                h.threads.next_event_time(),
                &mut h.wake_at,
                Event::ThreadsWake,
            ),
        };
        // A time already past (a slice that ran out unnoticed) is due now.
        if let Some(t) = next.map(|t| t.max(ctx.now()))
            && wake_at.is_none_or(|w| t < w)
        {
            *wake_at = Some(t);
            ctx.schedule_at(t, event);
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

    /// The learner reads shard `s`'s slice as it is now.
    fn read_slice(&mut self, l: usize, s: usize) {
        self.learners[l].versions_read[s] = self.shards[s].version;
        self.gradients.pull(l, s);
    }

    /// A slice is in the learner's parameters; with the last one it starts its gradient.
    fn slice_in(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        let learner = &mut self.learners[l];
        learner.pending -= 1;
        if learner.pending == 0 {
            learner.phase = Phase::Computing;
            self.gradients.compute(l);
            let dt = self.setup.compute[l].sample(ctx.rng());
            match &self.fabric {
                Fabric::Links { .. } => ctx.schedule_in(dt, Event::ComputeDone { learner: l }),
                Fabric::Host(h) => {
                    let thread = h.learner_thread(l);
                    self.run_task(ctx, thread, Task::Compute, dt);
                }
            }
        }
        self.refresh(l);
    }

    /// The learner's gradient is ready: it sends each shard its slice (on a host, copying each
    /// into its message first).
    fn gradient_done(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        let shards = self.shards.len();
        let learner = &mut self.learners[l];
        learner.phase = Phase::Pushing;
        learner.pending = shards as u32;
        for s in 0..shards {
            match &self.fabric {
                Fabric::Links { .. } => self.send(ctx, MessageKind::Gradient, l, s),
                Fabric::Host(h) => {
                    let (thread, work) = (h.learner_thread(l), h.copy_time(self.shards[s].bytes));
                    // Counted from the start of the copy: the message is being made.
                    self.learners[l].in_transfer += 1;
                    self.run_task(ctx, thread, Task::CopyOut { shard: s }, work);
                }
            }
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
        // On a host: the learner's thread, the shard's thread, and the time to copy the slice.
        let host = match &self.fabric {
            Fabric::Host(h) => Some((
                h.learner_thread(l),
                h.shard_thread(s),
                h.copy_time(self.shards[s].bytes),
            )),
            Fabric::Links { .. } => None,
        };
        match msg.kind {
            MessageKind::PullRequest => match host {
                Some((_, thread, work)) => {
                    self.run_task(ctx, thread, Task::Serve { learner: l }, work);
                    self.refresh(l);
                }
                None => {
                    self.read_slice(l, s);
                    self.send(ctx, MessageKind::Parameters, l, s);
                    self.refresh(l);
                }
            },
            MessageKind::Gradient => {
                self.learners[l].queued += 1;
                match host {
                    Some((_, thread, _)) => {
                        let work = self.shards[s].update_time;
                        self.run_task(ctx, thread, Task::Apply { learner: l }, work);
                    }
                    None => {
                        self.shards[s].enqueue_update(l);
                        self.run_shard(ctx, s);
                    }
                }
                self.refresh(l);
            }
            MessageKind::Parameters => match host {
                Some((thread, _, work)) => {
                    self.run_task(ctx, thread, Task::CopyIn { shard: s }, work);
                }
                None => self.slice_in(ctx, l),
            },
            MessageKind::Ack => {
                let learner = &mut self.learners[l];
                learner.pending -= 1;
                if learner.pending > 0 {
                    self.refresh(l);
                    return;
                }
                learner.iterations += 1;
                self.completed += 1;
                if self
                    .completed
                    .is_multiple_of(self.setup.iterations_per_epoch)
                {
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
            self.begin_update(ctx.now(), s, learner);
            ctx.schedule_in(self.shards[s].update_time, Event::ApplyDone { shard: s });
        }
    }

    fn begin_update(&mut self, now: SimTime, s: usize, learner: usize) {
        let read = self.learners[learner].versions_read[s];
        self.learners[learner].queued -= 1;
        self.learners[learner].applying += 1;
        self.shards[s].begin_apply(now, read);
        self.applying_for[s] = Some(learner);
        self.refresh(learner);
    }

    /// The shard's update in progress is done: the numerics apply it and the learner is told.
    /// Returns false if the numerics diverged and the run stopped.
    fn end_update(&mut self, ctx: &mut Context<'_, Event>, s: usize) -> bool {
        let now = ctx.now();
        let staleness = self.shards[s].end_apply(now).unwrap_or(0);
        if let Some(l) = self.applying_for[s].take() {
            let began = SimTime::from_nanos(
                now.as_nanos()
                    .saturating_sub(self.shards[s].update_time.as_nanos()),
            );
            self.observer.shard_update(s, l, began, now);
            self.gradients.apply(l, s, staleness);
            if self.gradients.diverged() {
                self.finish(now);
                return false;
            }
            self.learners[l].applying -= 1;
            self.send(ctx, MessageKind::Ack, l, s);
            self.refresh(l);
        }
        true
    }

    /// Queues a task on a host thread, starting it at once if the thread is idle.
    fn run_task(
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
    fn task_started(&mut self, ctx: &mut Context<'_, Event>, thread: usize, task: Task) {
        let Fabric::Host(h) = &self.fabric else {
            return;
        };
        let Err(s) = h.role(thread) else {
            return;
        };
        match task {
            Task::Serve { learner } => self.read_slice(learner, s),
            Task::Apply { learner } => self.begin_update(ctx.now(), s, learner),
            Task::CopyIn { .. } | Task::Compute | Task::CopyOut { .. } | Task::Receive(_) => {}
        }
    }

    /// A host task ends.
    fn task_done(&mut self, ctx: &mut Context<'_, Event>, thread: usize, task: Task) {
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
            (Err(s), Task::Apply { .. }) => {
                self.end_update(ctx, s);
            }
            (_, Task::Receive(msg)) => self.deliver(ctx, msg),
            // A learner never serves or applies, a shard never computes or copies for itself.
            _ => {}
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
        let bytes_moved = match &self.fabric {
            Fabric::Links { network, .. } => network.byte_totals().1,
            Fabric::Host(h) => h.bytes_sent,
        };
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
                let Fabric::Links {
                    network,
                    flows,
                    wake_at,
                    ..
                } = &mut self.fabric
                else {
                    return;
                };
                if *wake_at == Some(ctx.now()) {
                    *wake_at = None;
                }
                let mut done = std::mem::take(&mut self.scratch);
                network.advance(ctx.now(), &mut done);
                let mut arrived = Vec::with_capacity(done.len());
                arrived.extend(done.drain(..).filter_map(|id| flows.remove(&id)));
                self.scratch = done;
                for msg in arrived {
                    self.deliver(ctx, msg);
                    if self.finished_at.is_some() {
                        break;
                    }
                }
                self.sync_wake(ctx);
            }
            Event::ThreadsWake => {
                let Fabric::Host(h) = &mut self.fabric else {
                    return;
                };
                if h.wake_at == Some(ctx.now()) {
                    h.wake_at = None;
                }
                let mut ended = std::mem::take(&mut self.ended);
                h.threads.advance(ctx.now(), &mut ended);
                for &(thread, task) in &ended {
                    self.task_done(ctx, thread, task);
                    if self.finished_at.is_some() {
                        break;
                    }
                    let Fabric::Host(h) = &mut self.fabric else {
                        break;
                    };
                    if let Some(next) = h.threads.start_next(ctx.now(), thread) {
                        self.task_started(ctx, thread, next);
                    }
                }
                ended.clear();
                self.ended = ended;
                self.sync_wake(ctx);
            }
            Event::Deliver(msg) => match &self.fabric {
                // On a host the receiver wakes up to it first, on a core.
                Fabric::Host(h) => {
                    let thread = match msg.kind {
                        MessageKind::PullRequest | MessageKind::Gradient => {
                            h.shard_thread(msg.shard)
                        }
                        MessageKind::Parameters | MessageKind::Ack => h.learner_thread(msg.learner),
                    };
                    let wake = h.wake;
                    self.run_task(ctx, thread, Task::Receive(msg), wake);
                }
                Fabric::Links { .. } => self.deliver(ctx, msg),
            },
            Event::ComputeDone { learner } => self.gradient_done(ctx, learner),
            Event::ApplyDone { shard } => {
                if self.end_update(ctx, shard) {
                    self.run_shard(ctx, shard);
                }
            }
        }
    }

    fn finished(&self) -> bool {
        self.finished_at.is_some()
    }
}
