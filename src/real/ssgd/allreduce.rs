//! `ssgd-allreduce`: no shard threads; learner l sends to (l + 1) mod p over a channel and the
//! vector is cut into p chunks (`setup.shard_ranges`). Each learner is a [`RingPeer`] and
//! follows its schedule: a send when the peer says so; when it says wait, a blocking receive of
//! the predecessor's next chunk, added to its own slice (reduce-scatter, so chunk c is summed in
//! `RingPeer::order`) or copied into its parameters (all-gather); the step on the owned chunk
//! by `to_mean` and `update::apply`, bit for bit the simulator's `mean_in_order` and `apply`.
//! Each learner keeps its own parameters (identical after every round) and the velocity of the
//! one chunk it updates. Staleness: p zeros per chunk update, as
//! the simulator records them. A learner's time: compute; push for making and sending its
//! reduce-scatter messages and while a message it waits for is on its way (sent, not yet
//! received); pull the same for the all-gather and for copying chunks in; server update for the
//! additions and the step; wait while it is blocked before its predecessor has sent (the
//! barrier), and at the epoch gate. Each message carries its send instant, which splits a
//! blocked receive into wait (before it) and transfer (after it) — an approximation: the
//! channel has no separate in-flight state.

use super::{Common, LearnerEnd, bytes_of, start};
use crate::algorithm::ssgd::{Carries, RingAct, RingPeer, RingState};
use crate::numerics::Scratch;
use crate::observe::Observer;
use crate::outcome::Activity;
use crate::real::control::{Control, Local};
use crate::real::runtime::{Job, RealRun, ServerEnd, Shared, finish, guarded, join};
use crate::training::real::RealSetup;
use crate::training::update;
use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// A chunk on its way to the successor.
pub(in crate::real) struct Chunk {
    pub round: u64,
    /// 0..p-1: reduce-scatter; p-1..2(p-1): all-gather.
    pub step: u32,
    pub data: Vec<f32>,
    /// When it was handed to the link, ns since the run's start.
    pub sent: u64,
}

/// How a ring peer reaches its neighbours: a channel between threads, or a socket.
pub(in crate::real) trait Neighbours {
    /// Hands `chunk` to the link to the successor without waiting for it to be taken; false
    /// if the successor is gone.
    fn send(&mut self, chunk: Chunk) -> bool;
    /// The predecessor's next chunk; None if the run halted or the predecessor is gone.
    fn receive(&mut self) -> Option<Chunk>;
}

/// Neighbours on this host: a channel into the successor's thread, one out of the
/// predecessor's.
struct Channels<'a> {
    next: Sender<Chunk>,
    prev: Receiver<Chunk>,
    shared: &'a Shared<'a>,
}

impl Neighbours for Channels<'_> {
    fn send(&mut self, chunk: Chunk) -> bool {
        self.next.send(chunk).is_ok()
    }

    fn receive(&mut self) -> Option<Chunk> {
        self.shared.receive(&self.prev)
    }
}

/// Runs synchronous SGD by ring all-reduce: `setup.learners` learner threads in a ring, one
/// chunk of the vector per learner, until `epochs * iterations_per_epoch` iterations are done
/// (whole rounds) or the run is stopped.
pub fn run_allreduce<O: Observer + Send>(job: &Job, observer: O) -> (RealRun, O) {
    let (setup, objective, dataset) = (job.setup, job.objective, job.dataset);
    let (run, plan) = start(job, observer);
    let (p, init, shared, sampler, observer) = run.parts();
    let chunks = &ring_chunks(setup, p, init.len());
    // Channel l carries the chunks into learner l.
    let (tx, rx): (Vec<Sender<Chunk>>, Vec<_>) = (0..p).map(|_| channel()).unzip();

    let learners: Vec<LearnerEnd> = std::thread::scope(|s| {
        let handles: Vec<_> = rx
            .into_iter()
            .enumerate()
            .map(|(l, prev)| {
                let next = tx[(l + 1) % p].clone();
                let (shared, sampler, observer) = (&shared, &sampler, &observer);
                let (objective, dataset) = (Arc::clone(objective), Arc::clone(dataset));
                let params = init.clone();
                s.spawn(move || {
                    let control = Local::new(shared, sampler, observer);
                    let ctx = RingLearner {
                        c: Common {
                            l,
                            setup,
                            plan,
                            control: &control,
                            objective: &*objective,
                            dataset: &dataset,
                        },
                        p,
                        chunks,
                    };
                    let mut links = Channels { next, prev, shared };
                    guarded(
                        shared,
                        || format!("learner {l}"),
                        || ctx.run(&mut links, params),
                    )
                    .unwrap_or_default()
                })
            })
            .collect();
        drop(tx);
        join(handles)
    });
    let end_ns = shared.now();
    let parameters = ring_parameters(&learners, init);
    let learners: Vec<_> = learners.into_iter().map(LearnerEnd::into_end).collect();
    finish(
        setup,
        objective,
        dataset,
        shared,
        observer,
        end_ns,
        parameters,
        &learners,
        ServerEnd::default(),
    )
}

/// Learner `c.l` of a ring of `p`, with the chunks the vector is cut into.
pub(in crate::real) struct RingLearner<'a, C> {
    pub c: Common<'a, C>,
    pub p: usize,
    pub chunks: &'a [Range<usize>],
}

/// The chunks a ring of `p` cuts `n` parameters into: one per learner, the simulator's cut.
pub(in crate::real) fn ring_chunks(setup: &RealSetup, p: usize, n: usize) -> Vec<Range<usize>> {
    if setup.shard_ranges.len() == p {
        setup.shard_ranges.clone()
    } else {
        crate::cluster::split_even(n, p)
    }
}

/// The run's parameters from what the ring's learners handed back: every learner that
/// finished the most rounds holds the same vector; the first of them (`init` if none has one).
pub(in crate::real) fn ring_parameters(ends: &[LearnerEnd], init: Vec<f32>) -> Vec<f32> {
    let most = ends.iter().map(|e| e.rounds).max().unwrap_or(0);
    ends.iter()
        .find(|e| e.rounds == most && e.params.len() == init.len())
        .map_or(init, |e| e.params.clone())
}

impl<C: Control> RingLearner<'_, C> {
    /// Copies `data` into a chunk (in a spare buffer) and sends it to the successor; the
    /// time goes to `activity`. False if the successor is gone.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        links: &mut impl Neighbours,
        round: u64,
        step: u32,
        data: &[f32],
        spares: &mut Vec<Vec<f32>>,
        end: &mut LearnerEnd,
        activity: Activity,
    ) -> bool {
        let c = self.c.control;
        let t = c.now();
        let mut buf = spares.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        end.measured.bytes += bytes_of(buf.len());
        let sent = c.now();
        let chunk = Chunk {
            round,
            step,
            data: buf,
            sent,
        };
        if !links.send(chunk) {
            if !c.halted() {
                c.fail(format!(
                    "learner {} stopped answering",
                    (self.c.l + 1) % self.p
                ));
            }
            return false;
        }
        end.measured.did(activity, t, c.now());
        true
    }

    /// Waits for the predecessor's chunk of `(round, step)`, `want` values long: the time
    /// before it was sent is wait, after it `activity`. None if the run halted.
    fn receive(
        &self,
        links: &mut impl Neighbours,
        round: u64,
        step: u32,
        want: usize,
        end: &mut LearnerEnd,
        activity: Activity,
    ) -> Option<Vec<f32>> {
        let c = self.c.control;
        let t = c.now();
        let msg = links.receive()?;
        let got = c.now();
        let sent = msg.sent.clamp(t, got);
        end.measured.did(Activity::Wait, t, sent);
        end.measured.did(activity, sent, got);
        if msg.round != round || msg.step != step || msg.data.len() != want {
            c.fail(format!(
                "learner {}: expected round {round} step {step} ({want} values), got round {} \
                 step {} ({} values)",
                self.c.l,
                msg.round,
                msg.step,
                msg.data.len()
            ));
            return None;
        }
        Some(msg.data)
    }

    /// Runs the peer's schedule for the plan's rounds, starting from `params`, reaching its
    /// neighbours through `links`.
    pub fn run(&self, links: &mut impl Neighbours, mut params: Vec<f32>) -> LearnerEnd {
        let control = self.c.control;
        let setup = self.c.setup;
        let peer = RingPeer {
            l: self.c.l,
            p: self.p,
        };
        let n = params.len();
        // The chunk this learner updates, and its optimiser state.
        let own = self.chunks[peer.owns()].clone();
        let mut velocity = setup.velocity(own.len());
        let mut grad = vec![0.0f32; n];
        let mut acc: Vec<f32> = vec![];
        let mut spares: Vec<Vec<f32>> = vec![];
        let mut scratch = Scratch::default();
        let mut end = LearnerEnd::default();
        'rounds: for round in 0..self.c.plan.rounds() {
            if control.halted() {
                break;
            }
            if !self
                .c
                .gradient(round, &params, &mut grad, &mut scratch, &mut end)
            {
                break;
            }
            let mut r = RingState::default();
            loop {
                match peer.next(&r) {
                    RingAct::Send(step) => {
                        let chunk = self.chunks[peer.sends(step)].clone();
                        let carries = peer.carries(step);
                        let data = match carries {
                            Carries::GradientSum if step == 0 => &grad[chunk],
                            Carries::GradientSum => &acc[..],
                            Carries::Parameters => &params[chunk],
                        };
                        let activity = transfer(carries);
                        if !self.send(links, round, step, data, &mut spares, &mut end, activity) {
                            break 'rounds;
                        }
                        r.sent += 1;
                    }
                    // Blocked: the one thing that can come is the predecessor's next chunk.
                    RingAct::Wait => {
                        let step = r.got;
                        let chunk = self.chunks[peer.receives(step)].clone();
                        let carries = peer.carries(step);
                        let activity = transfer(carries);
                        let Some(mut got) =
                            self.receive(links, round, step, chunk.len(), &mut end, activity)
                        else {
                            break 'rounds;
                        };
                        let t = control.now();
                        match carries {
                            // What arrived plus its own: the sum keeps the ring's order.
                            Carries::GradientSum => {
                                update::sum_into(&mut got, &grad[chunk]);
                                spares.push(std::mem::replace(&mut acc, got));
                                end.measured
                                    .breakdown
                                    .add(Activity::ServerUpdate, control.now() - t);
                            }
                            Carries::Parameters => {
                                params[chunk].copy_from_slice(&got);
                                spares.push(got);
                                end.measured
                                    .breakdown
                                    .add(Activity::Pull, control.now() - t);
                            }
                        }
                        r.got += 1;
                    }
                    // The step on the owned chunk by the mean gradient.
                    RingAct::Update => {
                        let t = control.now();
                        if self.p == 1 {
                            acc.clear();
                            acc.extend_from_slice(&grad[own.clone()]);
                        }
                        update::to_mean(&mut acc, self.p);
                        update::apply(
                            &mut params[own.clone()],
                            &mut velocity,
                            &acc,
                            setup.learning_rate,
                            setup.momentum,
                            setup.weight_decay,
                        );
                        for _ in 0..self.p {
                            end.measured.staleness.record(0);
                        }
                        end.measured
                            .breakdown
                            .add(Activity::ServerUpdate, control.now() - t);
                        r.updated = true;
                    }
                    RingAct::RoundDone => break,
                }
            }
            // Every peer is in every round, in learner order.
            let slot = self.c.l as u32;
            self.c.round_done(round, slot, &mut end, |_| {
                Some(crate::real::learner::Taken::Here(params.clone()))
            });
        }
        end.params = params;
        end
    }
}

/// The activity a transfer counts as: reduce-scatter is push, all-gather pull.
fn transfer(carries: Carries) -> Activity {
    match carries {
        Carries::GradientSum => Activity::Push,
        Carries::Parameters => Activity::Pull,
    }
}
