//! Every algorithm with a sharded parameter server (Downpour and its variants, synchronous SGD
//! through the server, elastic averaging, Hogwild, the partitioned model, SSP), as a
//! discrete-event model: the driver of the learners' roles (`algorithm::role`) in the
//! simulator. What a learner does next is its role's answer; this model carries it out.
//!
//! In Downpour's case each learner loops: ask every shard for its slice (a latency-only request), receive the slices
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

mod faults;
mod host;
mod messages;
mod outage;
mod roles;
mod server;

use super::fabric::Wires;
use super::progress::Progress;
use crate::algorithm::role::{Happened, LearnerRole, Step};
use crate::algorithm::ssgd::SyncRound;
use crate::algorithm::{Algorithm, Server};
use crate::cluster::Placement;
use crate::cluster::learner::{Learner, Phase};
use crate::cluster::shard::Shard;
use crate::engine::{Context, Model};
use crate::faults::{Failure, Spells};
use crate::machine::device::{ComputeModel, stretch, update_time};
use crate::machine::topology::{Route, Topology};
use crate::observe::{MessageKind, MessageRecord, Observer};
use crate::outcome::{FaultRecord, Outcome};
use crate::stats::Histogram;
use crate::time::{SimDuration, SimTime};
use crate::training::Gradients;
use crate::workload::model::BYTES_PER_PARAM;
use host::{Host, Task};
use std::ops::Range;

/// Stands for "the round" where a shard's busy span is a synchronous step, not one learner's.
const STEP: usize = usize::MAX;

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
    pub algorithm: Algorithm,
    /// `machine.flow_share_cv`: how far messages meeting on a link stray from equal shares.
    pub flow_share_cv: f64,
    /// Learners that fail (and come back), in time order.
    pub failures: Vec<Failure>,
    /// Each learner's slow spells (`[faults]`), None where it has none.
    pub spells: Vec<Option<Spells>>,
    /// Shards that fail, and how often they checkpoint.
    pub shard_faults: crate::faults::ShardFaults,
}

/// The model's events: a closed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The network has a flow activating or completing now.
    NetworkWake,
    /// A latency-only message arrives.
    Deliver(Message),
    /// A learner's GPU finished its gradient, begun in the learner's `life` (the failures it
    /// had come through then).
    ComputeDone { learner: usize, life: u32 },
    /// The `k`-th failure of the setup happens.
    LearnerDown { failure: usize },
    /// The `k`-th failure's learner is back.
    LearnerUp { failure: usize },
    /// The `k`-th shard failure happens.
    ShardDown { failure: usize },
    /// The `k`-th shard failure's shard is back.
    ShardUp { failure: usize },
    /// A shard finished applying a learner's update.
    ApplyDone { shard: usize, learner: usize },
    /// A shard finished a synchronous round's step.
    StepDone { shard: usize },
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
    /// The learner's life when the exchange began: a reply to a life that failed is lost.
    pub life: u32,
}

/// What carries the messages and does the work.
// One per run, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Fabric {
    /// Devices joined by links: slices and gradients are flows sharing the links' bandwidth,
    /// GPUs compute and host cores apply updates, each on its own.
    Links {
        wires: Wires<Message>,
        /// Route from shard `s` down to learner `l` at `[l * shards + s]`, and back up.
        down: Vec<Route>,
        up: Vec<Route>,
    },
    /// One shared-memory host whose learners and shards are threads.
    Host(Host),
}

pub struct Downpour<O: Observer, G: Gradients = ()> {
    setup: DownpourSetup,
    fabric: Fabric,
    learners: Vec<Learner>,
    /// What each learner does next: its algorithm's role.
    roles: Vec<LearnerRole>,
    /// How the shards serve: the algorithm's server.
    server: Server,
    /// Learners waiting until every learner has completed so many iterations.
    waiting: Vec<(usize, u64)>,
    /// Learners whose wait is over (kept to reuse its memory).
    released: Vec<usize>,
    shards: Vec<Shard>,
    /// Each shard's synchronous round (synchronous SGD only).
    rounds: Vec<SyncRound>,
    progress: Progress,
    observer: O,
    gradients: G,
    /// Messages whose flows completed at a wake-up (kept to reuse its memory).
    arrived: Vec<Message>,
    ended: Vec<(usize, Task)>,
    /// The time of the event being handled, for the learners' accounting.
    now: SimTime,
    /// Each learner's failures so far: messages and computations of an earlier life are lost.
    life: Vec<u32>,
    /// Learners down now.
    down: Vec<bool>,
    /// Learners whose time down is over, waiting for what they sent before they failed to
    /// settle before they start again.
    returning: Vec<usize>,
    /// Iterations added to a returning learner's count for SSP's bound: it rejoins at the
    /// slowest running learner's count.
    rejoined_at: Vec<u64>,
    /// The failures that happened, in order.
    faults: Vec<FaultRecord>,
    /// Shards' failures and checkpoints.
    outages: outage::ShardOutages,
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
            None => Self::links(topology, p, setup.flow_share_cv)?,
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
        let roles = (0..nl).map(|l| setup.algorithm.learner(l, ns)).collect();
        let rounds = (0..ns).map(|_| setup.algorithm.sync_round(nl)).collect();
        let outages = outage::ShardOutages::new(setup.shard_faults.clone(), ns);
        Ok(Self {
            fabric,
            learners,
            roles,
            server: setup.algorithm.server(),
            waiting: vec![],
            released: vec![],
            shards,
            rounds,
            progress: Progress::new(setup.iterations_per_epoch, setup.epochs),
            observer,
            gradients,
            arrived: vec![],
            ended: vec![],
            now: SimTime::ZERO,
            life: vec![0; nl],
            down: vec![false; nl],
            returning: vec![],
            rejoined_at: vec![0; nl],
            faults: vec![],
            outages,
            setup,
        })
    }

    fn refresh(&mut self, learner: usize) {
        if let Some(seg) = self.learners[learner].update(self.now) {
            self.observer.learner_activity(learner, seg);
        }
    }

    /// Whether learners read and write the shared vector themselves (Hogwild on a host).
    fn self_served(&self) -> bool {
        self.server == Server::LockFree && matches!(self.fabric, Fabric::Host(_))
    }

    fn start_pull(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        let shards = self.shards.len();
        let learner = &mut self.learners[l];
        learner.phase = Phase::Pulling;
        learner.pending = shards as u32;
        for s in 0..shards {
            match &self.fabric {
                Fabric::Host(h) if self.server == Server::LockFree => {
                    let (thread, work) = (h.learner_thread(l), h.copy_time(self.shards[s].bytes));
                    self.run_task(ctx, thread, Task::Read { shard: s }, work);
                }
                _ => self.send(ctx, MessageKind::PullRequest, l, s),
            }
        }
        self.refresh(l);
    }

    /// The learner reads shard `s`'s slice as it is now (lock-free: with the updates in
    /// progress partly written).
    fn read_slice(&mut self, l: usize, s: usize) {
        self.learners[l].versions_read[s] = self.shards[s].ledger.version;
        if self.server == Server::LockFree {
            let in_flight = self.shards[s].in_flight(self.now);
            self.gradients.pull_partial(l, s, &in_flight);
        } else {
            self.gradients.pull(l, s);
        }
    }

    /// A slice is in the learner's parameters; with the last one its role goes on.
    fn slice_in(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        let learner = &mut self.learners[l];
        learner.pending -= 1;
        if learner.pending == 0 {
            let step = self.roles[l].on(Happened::Pulled);
            self.act(ctx, l, step.then);
        }
        self.refresh(l);
    }

    /// The learner computes one mini-batch: its gradient, or one of elastic averaging's local
    /// steps.
    fn start_compute(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        self.learners[l].phase = Phase::Computing;
        self.gradients.compute(l);
        let spell = self.setup.spells[l].as_mut();
        let factor = spell.map_or(1.0, |s| s.factor_at(ctx.now().as_secs_f64()));
        let dt = stretch(self.setup.compute[l].sample(ctx.rng()), factor);
        match &self.fabric {
            Fabric::Links { .. } => {
                let life = self.life[l];
                ctx.schedule_in(dt, Event::ComputeDone { learner: l, life });
            }
            Fabric::Host(h) => {
                let thread = h.learner_thread(l);
                self.run_task(ctx, thread, Task::Compute, dt);
            }
        }
        self.refresh(l);
    }

    /// The learner's computation is done.
    fn gradient_done(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        self.gradients.computed(l);
        let step = self.roles[l].on(Happened::Computed);
        self.went_on(ctx, l, step);
    }

    /// Counts the iterations learner `l`'s last event completed (ending the run when they are
    /// the last) and carries out what it does next.
    fn went_on(&mut self, ctx: &mut Context<'_, Event>, l: usize, step: Step) {
        let now = ctx.now();
        if step.completed > 0 {
            self.learners[l].iterations += step.completed;
            let over =
                self.progress
                    .count(step.completed, now, &mut self.gradients, &mut self.observer);
            if over {
                return self.finish(now);
            }
        }
        self.act(ctx, l, step.then);
        if step.completed > 0 {
            self.release(ctx);
        }
    }

    /// The learner sends each shard of `targets` its slice (on a host, copying each into its
    /// message first); Hogwild's learner on a host writes the shared vector itself.
    fn start_push(&mut self, ctx: &mut Context<'_, Event>, l: usize, targets: Range<usize>) {
        let learner = &mut self.learners[l];
        learner.phase = Phase::Pushing;
        learner.pending = targets.len() as u32;
        let own = self.self_served();
        for s in targets {
            match &self.fabric {
                Fabric::Links { .. } => self.send(ctx, MessageKind::Gradient, l, s),
                Fabric::Host(h) if own => {
                    let (thread, work) = (h.learner_thread(l), self.shards[s].update_time);
                    self.learners[l].queued += 1;
                    self.run_task(ctx, thread, Task::Write { shard: s }, work);
                }
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
        let to_shard = matches!(msg.kind, MessageKind::PullRequest | MessageKind::Gradient);
        if to_shard && self.outages.hold(msg) {
            return;
        }
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
        // A request or a reply of a life that failed is lost with it; a gradient it sent
        // before it failed is applied.
        if msg.life != self.life[l] && msg.kind != MessageKind::Gradient {
            self.learners[l].pending = 0;
            self.refresh(l);
            return;
        }
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
                    None if self.server == Server::LockFree => {
                        self.begin_update(now, s, l);
                        let dt = self.shards[s].update_time;
                        ctx.schedule_in(
                            dt,
                            Event::ApplyDone {
                                shard: s,
                                learner: l,
                            },
                        );
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
            MessageKind::Ack => self.acked(ctx, l),
        }
    }

    /// One of the learner's updates is acknowledged (or, Hogwild on a host, written); with
    /// the last one its iteration is complete and it starts the next.
    fn acked(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        let learner = &mut self.learners[l];
        learner.pending -= 1;
        if learner.pending > 0 {
            self.refresh(l);
            return;
        }
        if std::mem::take(&mut learner.push_dropped) {
            learner.dropped += 1;
            let step = self.roles[l].on(Happened::Dropped);
            self.gradients.dropped(l);
            return self.went_on(ctx, l, step);
        }
        let step = self.roles[l].on(Happened::Pushed);
        self.gradients.iteration_done(l);
        self.went_on(ctx, l, step);
    }

    fn finish(&mut self, now: SimTime) {
        self.progress
            .finish(now, &mut self.learners, &mut self.observer);
    }

    /// The run's measurements; `end` is when the last iteration completed (or `now` if the run
    /// was cut short).
    pub fn outcome(&self, now: SimTime) -> Outcome {
        let outcome = (self.progress).outcome(now, &self.learners, self.gradients.diverged());
        let end = outcome.end;
        let mut staleness = Histogram::default();
        for s in &self.shards {
            staleness.merge(&s.ledger.staleness);
        }
        let bytes_moved = match &self.fabric {
            Fabric::Links { wires, .. } => wires.network.byte_totals().1,
            Fabric::Host(h) => h.bytes_sent,
        };
        Outcome {
            staleness,
            shard_busy_ns: self.shards.iter().map(|s| s.busy_ns(end)).collect(),
            shard_updates: self.shards.iter().map(|s| s.ledger.version).collect(),
            bytes_moved,
            faults: self.faults.clone(),
            shard_faults: self.outages.records.clone(),
            stalled: self.stall(),
            ..outcome
        }
    }

    pub fn observer_mut(&mut self) -> &mut O {
        &mut self.observer
    }

    pub fn observer(&self) -> &O {
        &self.observer
    }
}

impl<O: Observer, G: Gradients> super::Simulated<O, G> for Downpour<O, G> {
    fn outcome(&self, now: SimTime) -> Outcome {
        Downpour::outcome(self, now)
    }

    /// The observer and the numerics, handed back at the end of a run.
    fn into_parts(self) -> (O, G) {
        (self.observer, self.gradients)
    }
}

impl<O: Observer, G: Gradients> Model for Downpour<O, G> {
    type Event = Event;

    fn start(&mut self, ctx: &mut Context<'_, Event>) {
        self.now = ctx.now();
        let (learners, observer) = (&mut self.learners, &mut self.observer);
        if !self.progress.start(ctx.now(), learners, observer) {
            return;
        }
        self.schedule_shard_failures(ctx);
        for k in 0..self.setup.failures.len() {
            let at = SimDuration::from_secs_ceil(self.setup.failures[k].at_s);
            // A learner down from the start never begins.
            if at == SimDuration::ZERO {
                self.learner_down(ctx, k);
            } else {
                ctx.schedule_at(SimTime::ZERO + at, Event::LearnerDown { failure: k });
            }
        }
        for l in 0..self.learners.len() {
            if self.down[l] {
                continue;
            }
            let step = self.roles[l].on(Happened::Start);
            self.act(ctx, l, step.then);
        }
    }

    fn handle(&mut self, event: Event, ctx: &mut Context<'_, Event>) {
        self.now = ctx.now();
        self.handle_event(event, ctx);
        self.after_event(ctx);
    }

    fn finished(&self) -> bool {
        self.progress.finished()
    }
}

impl<O: Observer, G: Gradients> Downpour<O, G> {
    fn handle_event(&mut self, event: Event, ctx: &mut Context<'_, Event>) {
        match event {
            Event::NetworkWake => {
                let Fabric::Links { wires, .. } = &mut self.fabric else {
                    return;
                };
                let mut arrived = std::mem::take(&mut self.arrived);
                wires.advance(ctx.now(), &mut arrived);
                for msg in arrived.drain(..) {
                    self.deliver(ctx, msg);
                    if self.progress.finished() {
                        break;
                    }
                }
                self.arrived = arrived;
                self.sync_wake(ctx);
            }
            Event::ThreadsWake => {
                let Fabric::Host(h) = &mut self.fabric else {
                    return;
                };
                h.wake_at.fired(ctx.now());
                let mut ended = std::mem::take(&mut self.ended);
                h.threads.advance(ctx.now(), &mut ended);
                for &(thread, task) in &ended {
                    self.task_done(ctx, thread, task);
                    if self.progress.finished() {
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
            Event::ComputeDone { learner, life } if life == self.life[learner] => {
                self.gradient_done(ctx, learner)
            }
            // A computation its learner's failure cut short.
            Event::ComputeDone { .. } => {}
            Event::LearnerDown { failure } => self.learner_down(ctx, failure),
            Event::LearnerUp { failure } => {
                self.returning.push(self.setup.failures[failure].learner);
            }
            Event::ShardDown { failure } => self.shard_down(ctx, failure),
            Event::ShardUp { failure } => self.shard_up(ctx, failure),
            Event::ApplyDone { shard, learner } => {
                if self.end_update(ctx, shard, learner) && self.server != Server::LockFree {
                    self.run_shard(ctx, shard);
                }
            }
            Event::StepDone { shard } => {
                self.step_done(ctx, shard);
                self.run_shard(ctx, shard);
            }
        }
    }
}
