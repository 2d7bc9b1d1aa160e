//! Synchronous SGD by ring all-reduce, as a discrete-event model, step by step on the machine.
//!
//! The p learners form a ring in placement order (learner l sends to l + 1 mod p) and the
//! parameter vector is cut into p chunks. Each learner is a [`RingPeer`]: which chunk it sends
//! and receives at each step of the reduce-scatter and the all-gather, and what it may do next,
//! are the peer's; this model times them on the machine.
//!
//! A learner sends its next chunk once its previous send has gone and the chunk it needs has
//! arrived, so the ring runs as fast as its slowest link and learner. On links, every chunk is a
//! flow over the route between neighbouring GPUs, sharing bandwidth with the other flows; the
//! additions and the update run on the GPUs and are not timed (their memory traffic is a few
//! percent of a transfer's at GPU memory bandwidth; the topology has no GPU memory bandwidth).
//! On a shared-memory host the learners are threads: sending copies the chunk into a message,
//! the message takes the host's latency and its receiver's wake-up, and the addition, the copy
//! into the parameters and the update are tasks of the receiving thread at the host's copy
//! and memory rates.
//!
//! A learner's time: compute; push while its reduce-scatter chunk or its predecessor's is on
//! the way; pull the same for the all-gather; server update while it updates its chunk (and, on
//! a host, adds what arrived); wait while the ring holds it up (its predecessor has not sent
//! yet): the barrier.

use super::Simulated;
use super::fabric::{Wake, Wires};
use super::progress::Progress;
use crate::algorithm::ssgd::{Carries, RingAct, RingPeer, RingState};
use crate::cluster::learner::{Learner, Phase};
use crate::engine::{Context, Model};
use crate::faults::Spells;
use crate::machine::cpu::Sharing;
use crate::machine::device::{ComputeModel, stretch, update_time};
use crate::machine::network::Network;
use crate::machine::threads::Threads;
use crate::machine::topology::{Route, Topology};
use crate::observe::{MessageKind, MessageRecord, Observer};
use crate::outcome::Outcome;
use crate::stats::Histogram;
use crate::time::{SimDuration, SimTime};
use crate::training::Gradients;
use crate::workload::model::BYTES_PER_PARAM;
use petgraph::graph::NodeIndex;

/// Everything the all-reduce needs to know about a run, already checked.
#[derive(Clone, Debug)]
pub struct AllReduceSetup {
    /// Each learner's GPU (its core on a shared-memory host), in ring order.
    pub learner_gpus: Vec<NodeIndex>,
    pub compute: Vec<ComputeModel>,
    pub params: usize,
    pub iterations_per_epoch: u64,
    pub epochs: u64,
    /// `machine.flow_share_cv`: how far chunks meeting on a link stray from equal shares.
    pub flow_share_cv: f64,
    /// Each learner's slow spells (`[faults]`), None where it has none.
    pub spells: Vec<Option<Spells>>,
}

/// The model's events: a closed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    NetworkWake,
    ThreadsWake,
    ComputeDone {
        learner: usize,
    },
    /// A chunk message reaches `to` (host: its receiver then wakes up to it).
    Deliver(Chunk),
}

/// A chunk on its way from a learner to its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub to: usize,
    /// The sender's round (its completed rounds when it sent): a fast predecessor's chunk can
    /// arrive before its receiver has finished the round before.
    pub round: u64,
    pub step: u32,
    pub sent: SimTime,
}

/// What a learner thread does on a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    Compute,
    /// Copy the step's chunk into a message for the successor.
    Send {
        step: u32,
    },
    /// Wake up to a chunk that arrived.
    Receive(Chunk),
    /// Add (reduce-scatter) or copy (all-gather) the chunk of `round` that arrived.
    Take {
        round: u64,
    },
    /// Take the step on the owned chunk.
    Update,
}

/// Where a learner is in its round: the peer's own state (a send has gone when the chunk
/// left; on a host, when its message was made) and what only the driver sees.
#[derive(Clone, Copy, Debug, Default)]
struct Ring {
    peer: RingState,
    /// A chunk from the predecessor on its way, or arrived and not yet taken in.
    incoming: bool,
    /// Chunks of the next round taken in before this one ended.
    early: u32,
}

// One per run, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Fabric {
    Links {
        wires: Wires<Chunk>,
        /// Route from learner l to its successor.
        routes: Vec<Route>,
    },
    Host {
        threads: Threads<Task>,
        delay: SimDuration,
        wake: SimDuration,
        copy_gb_per_s: f64,
        memory_gb_per_s: f64,
        wake_at: Wake,
    },
}

pub struct AllReduce<O: Observer, G: Gradients = ()> {
    setup: AllReduceSetup,
    fabric: Fabric,
    learners: Vec<Learner>,
    rings: Vec<Ring>,
    /// Bytes of each chunk.
    chunk_bytes: Vec<u64>,
    progress: Progress,
    bytes_moved: u64,
    staleness: Histogram,
    observer: O,
    gradients: G,
    now: SimTime,
}

impl<O: Observer, G: Gradients> AllReduce<O, G> {
    /// Builds the model. Fails with (key, message) problems if a learner cannot reach its
    /// successor.
    pub fn new(
        topology: &Topology,
        setup: AllReduceSetup,
        observer: O,
        gradients: G,
    ) -> Result<Self, Vec<(String, String)>> {
        let p = setup.learner_gpus.len();
        let chunk_bytes = crate::cluster::split_even(setup.params, p)
            .iter()
            .map(|r| r.len() as u64 * BYTES_PER_PARAM)
            .collect();
        let fabric = match topology.host() {
            Some(h) => {
                let cores = topology.cores();
                let memory = cores
                    .first()
                    .and_then(|&c| topology.node(c).core.as_ref())
                    .map_or(h.copy_gb_per_s, |c| c.memory_bandwidth_gb_per_s);
                Fabric::Host {
                    threads: Threads::new(
                        p,
                        Sharing {
                            cores: cores.len(),
                            slice: SimDuration::from_nanos(h.time_slice_ns),
                            slowdown: h.busy_slowdown,
                        },
                    ),
                    delay: SimDuration::from_nanos(
                        h.message_latency_ns.saturating_sub(h.message_cpu_ns),
                    ),
                    wake: SimDuration::from_nanos(h.message_cpu_ns),
                    copy_gb_per_s: h.copy_gb_per_s,
                    memory_gb_per_s: memory,
                    wake_at: Wake::default(),
                }
            }
            None => {
                let pairs = crate::cluster::ring_pairs(&setup.learner_gpus);
                Fabric::Links {
                    wires: Wires::new(
                        Network::new(topology.channel_capacities()),
                        setup.flow_share_cv,
                    ),
                    routes: topology.routes(pairs, "the ring all-reduce")?,
                }
            }
        };
        Ok(Self {
            learners: setup
                .learner_gpus
                .iter()
                .map(|&g| Learner::new(g, 0))
                .collect(),
            rings: vec![Ring::default(); p],
            chunk_bytes,
            fabric,
            progress: Progress::new(setup.iterations_per_epoch, setup.epochs),
            bytes_moved: 0,
            staleness: Histogram::default(),
            observer,
            gradients,
            now: SimTime::ZERO,
            setup,
        })
    }

    fn p(&self) -> usize {
        self.learners.len()
    }

    /// Learner `l` as a ring peer.
    fn peer(&self, l: usize) -> RingPeer {
        RingPeer { l, p: self.p() }
    }

    /// Re-derives the learner's counters from its ring state, then its activity.
    fn refresh(&mut self, l: usize) {
        let ring = self.rings[l];
        let r = ring.peer;
        let peer = self.peer(l);
        let learner = &mut self.learners[l];
        if learner.phase != Phase::Computing {
            let total = peer.steps();
            learner.phase = if r.sent < peer.half() || !r.updated {
                Phase::Pushing
            } else {
                Phase::Pulling
            };
            learner.in_transfer = u32::from(r.sending) + u32::from(ring.incoming);
            learner.applying = u32::from(r.updating);
            let done = r.sent == total && r.got == total;
            learner.queued = u32::from(learner.in_transfer == 0 && !r.updating && !done);
        }
        if let Some(seg) = self.learners[l].update(self.now) {
            self.observer.learner_activity(l, seg);
        }
    }

    fn start_compute(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        let early = self.rings[l].early;
        self.rings[l] = Ring {
            peer: RingState {
                got: early,
                ..RingState::default()
            },
            ..Ring::default()
        };
        self.learners[l].phase = Phase::Computing;
        // Every learner's copy of the parameters is the same vector.
        for c in 0..self.p() {
            self.gradients.pull(l, c);
        }
        self.gradients.compute(l);
        let spell = self.setup.spells[l].as_mut();
        let factor = spell.map_or(1.0, |s| s.factor_at(ctx.now().as_secs_f64()));
        let dt = stretch(self.setup.compute[l].sample(ctx.rng()), factor);
        match &mut self.fabric {
            Fabric::Links { .. } => ctx.schedule_in(dt, Event::ComputeDone { learner: l }),
            Fabric::Host { .. } => self.run_task(ctx, l, Task::Compute, dt),
        }
        self.refresh(l);
    }

    fn compute_done(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        self.learners[l].phase = Phase::Pushing;
        self.advance_ring(ctx, l);
        self.refresh(l);
    }

    /// Does whatever the learner can do next: update its chunk, send its next chunk, or end
    /// its round.
    fn advance_ring(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        if self.learners[l].phase == Phase::Computing || self.progress.finished() {
            return;
        }
        match self.peer(l).next(&self.rings[l].peer) {
            RingAct::Update => self.start_update(ctx, l),
            RingAct::RoundDone => self.round_done(ctx, l),
            RingAct::Send(step) => self.start_send(ctx, l, step),
            RingAct::Wait => {}
        }
    }

    fn start_update(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        self.rings[l].peer.updating = true;
        match &self.fabric {
            Fabric::Links { .. } => self.update_done(ctx, l),
            Fabric::Host {
                memory_gb_per_s, ..
            } => {
                let c = self.peer(l).owns();
                let work = update_time(self.chunk_bytes[c], *memory_gb_per_s, 3.0);
                self.run_task(ctx, l, Task::Update, work);
                self.refresh(l);
            }
        }
    }

    /// Learner l's chunk is summed over the ring: the numerics take the step on it, in the
    /// ring's summation order.
    fn update_done(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        let (p, peer) = (self.p(), self.peer(l));
        self.gradients.apply_round(peer.owns(), &peer.order());
        for _ in 0..p {
            self.staleness.record(0);
        }
        let ring = &mut self.rings[l].peer;
        ring.updating = false;
        ring.updated = true;
        if self.gradients.diverged() {
            self.finish(ctx.now());
            return;
        }
        self.advance_ring(ctx, l);
        self.refresh(l);
    }

    fn start_send(&mut self, ctx: &mut Context<'_, Event>, l: usize, step: u32) {
        let peer = self.peer(l);
        let next = peer.successor();
        let bytes = self.chunk_bytes[peer.sends(step)];
        self.rings[l].peer.sending = true;
        self.rings[next].incoming = true;
        let chunk = Chunk {
            to: next,
            round: self.learners[l].iterations,
            step,
            sent: ctx.now(),
        };
        match &mut self.fabric {
            Fabric::Links { wires, routes } => {
                let now = ctx.now();
                wires.start(now, &routes[l], bytes, chunk, ctx.rng());
                self.sync_wake(ctx);
            }
            Fabric::Host { copy_gb_per_s, .. } => {
                let work = SimDuration::from_nanos_ceil(bytes as f64 / *copy_gb_per_s);
                self.run_task(ctx, l, Task::Send { step }, work);
            }
        }
        self.refresh(next);
        self.refresh(l);
    }

    /// Learner `from`'s send of `step` has gone.
    fn sent(&mut self, ctx: &mut Context<'_, Event>, from: usize) {
        let ring = &mut self.rings[from].peer;
        ring.sending = false;
        ring.sent += 1;
        self.advance_ring(ctx, from);
        self.refresh(from);
    }

    /// A chunk reached learner `to`: on links it is in GPU memory; on a host its receiver
    /// takes it in first.
    fn arrived(&mut self, ctx: &mut Context<'_, Event>, chunk: Chunk) {
        let l = chunk.to;
        let from = self.peer(l).predecessor();
        let shard = self.peer(l).receives(chunk.step);
        let carries = self.peer(l).carries(chunk.step);
        let bytes = self.chunk_bytes[shard];
        self.bytes_moved += bytes;
        self.observer.message(MessageRecord {
            // Reduce-scatter carries gradient sums, the all-gather updated parameters.
            kind: match carries {
                Carries::GradientSum => MessageKind::Gradient,
                Carries::Parameters => MessageKind::Parameters,
            },
            learner: from,
            shard,
            bytes,
            sent: chunk.sent,
            delivered: ctx.now(),
        });
        match &self.fabric {
            Fabric::Links { .. } => {
                self.sent(ctx, from);
                self.taken(ctx, l, chunk.round);
            }
            Fabric::Host {
                copy_gb_per_s,
                memory_gb_per_s,
                ..
            } => {
                // Adding reads two buffers and writes one; copying reads one and writes one.
                let work = if carries == Carries::GradientSum {
                    update_time(bytes, *memory_gb_per_s, 3.0)
                } else {
                    SimDuration::from_nanos_ceil(bytes as f64 / *copy_gb_per_s)
                };
                let round = chunk.round;
                self.run_task(ctx, l, Task::Take { round }, work);
            }
        }
    }

    /// Learner l has taken in the chunk of its next step (or, sent in `round` ahead of its
    /// own, of its next round's).
    fn taken(&mut self, ctx: &mut Context<'_, Event>, l: usize, round: u64) {
        let ahead = round > self.learners[l].iterations;
        let ring = &mut self.rings[l];
        ring.incoming = false;
        if ahead {
            ring.early += 1;
            self.refresh(l);
            return;
        }
        ring.peer.got += 1;
        self.advance_ring(ctx, l);
        self.refresh(l);
    }

    fn round_done(&mut self, ctx: &mut Context<'_, Event>, l: usize) {
        let now = ctx.now();
        self.learners[l].iterations += 1;
        self.gradients.iteration_done(l);
        let over = self
            .progress
            .count(1, now, &mut self.gradients, &mut self.observer);
        if over {
            self.finish(now);
        } else {
            self.start_compute(ctx, l);
        }
    }

    fn run_task(&mut self, ctx: &mut Context<'_, Event>, l: usize, task: Task, work: SimDuration) {
        if let Fabric::Host { threads, .. } = &mut self.fabric {
            threads.push(ctx.now(), l, task, work);
        }
        self.sync_wake(ctx);
    }

    fn task_done(&mut self, ctx: &mut Context<'_, Event>, l: usize, task: Task) {
        match task {
            Task::Compute => self.compute_done(ctx, l),
            Task::Send { step } => {
                // The message is made; it takes the host's latency.
                if let Fabric::Host { delay, .. } = &self.fabric {
                    let chunk = Chunk {
                        to: (l + 1) % self.p(),
                        round: self.learners[l].iterations,
                        step,
                        sent: ctx.now(),
                    };
                    ctx.schedule_in(*delay, Event::Deliver(chunk));
                }
                self.sent(ctx, l);
            }
            Task::Receive(chunk) => self.arrived(ctx, chunk),
            Task::Take { round } => self.taken(ctx, l, round),
            Task::Update => self.update_done(ctx, l),
        }
    }

    fn sync_wake(&mut self, ctx: &mut Context<'_, Event>) {
        let now = ctx.now();
        let (at, event) = match &mut self.fabric {
            Fabric::Links { wires, .. } => (wires.next_wake(now), Event::NetworkWake),
            Fabric::Host {
                threads, wake_at, ..
            } => (
                wake_at.schedule(threads.next_event_time(), now),
                Event::ThreadsWake,
            ),
        };
        if let Some(t) = at {
            ctx.schedule_at(t, event);
        }
    }

    fn finish(&mut self, now: SimTime) {
        self.progress
            .finish(now, &mut self.learners, &mut self.observer);
    }

    pub fn observer(&self) -> &O {
        &self.observer
    }
}

impl<O: Observer, G: Gradients> Model for AllReduce<O, G> {
    type Event = Event;

    fn start(&mut self, ctx: &mut Context<'_, Event>) {
        self.now = ctx.now();
        let (learners, observer) = (&mut self.learners, &mut self.observer);
        if !self.progress.start(ctx.now(), learners, observer) {
            return;
        }
        for l in 0..self.p() {
            self.start_compute(ctx, l);
        }
    }

    fn handle(&mut self, event: Event, ctx: &mut Context<'_, Event>) {
        self.now = ctx.now();
        match event {
            Event::NetworkWake => {
                let Fabric::Links { wires, .. } = &mut self.fabric else {
                    return;
                };
                let mut arrived = vec![];
                wires.advance(ctx.now(), &mut arrived);
                for chunk in arrived {
                    self.arrived(ctx, chunk);
                    if self.progress.finished() {
                        break;
                    }
                }
                self.sync_wake(ctx);
            }
            Event::ThreadsWake => {
                let Fabric::Host {
                    threads, wake_at, ..
                } = &mut self.fabric
                else {
                    return;
                };
                wake_at.fired(ctx.now());
                let mut ended = vec![];
                threads.advance(ctx.now(), &mut ended);
                for (l, task) in ended {
                    self.task_done(ctx, l, task);
                    if self.progress.finished() {
                        break;
                    }
                    if let Fabric::Host { threads, .. } = &mut self.fabric {
                        threads.start_next(ctx.now(), l);
                    }
                }
                self.sync_wake(ctx);
            }
            Event::Deliver(chunk) => {
                if let Fabric::Host { wake, .. } = &self.fabric {
                    let wake = *wake;
                    self.run_task(ctx, chunk.to, Task::Receive(chunk), wake);
                }
            }
            Event::ComputeDone { learner } => self.compute_done(ctx, learner),
        }
    }

    fn finished(&self) -> bool {
        self.progress.finished()
    }
}

impl<O: Observer, G: Gradients> Simulated<O, G> for AllReduce<O, G> {
    fn outcome(&self, now: SimTime) -> Outcome {
        let outcome = (self.progress).outcome(now, &self.learners, self.gradients.diverged());
        Outcome {
            staleness: self.staleness.clone(),
            bytes_moved: self.bytes_moved,
            ..outcome
        }
    }

    fn into_parts(self) -> (O, G) {
        (self.observer, self.gradients)
    }
}
