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
use crate::real::runtime::{Job, RealRun, ServerEnd, finish, guarded, join};
use crate::training::update;
use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// A chunk on its way to the successor.
struct Message {
    round: u64,
    /// 0..p-1: reduce-scatter; p-1..2(p-1): all-gather.
    step: u32,
    data: Vec<f32>,
    /// When it was handed to the channel, ns since the run's start.
    sent: u64,
}

/// Runs synchronous SGD by ring all-reduce: `setup.learners` learner threads in a ring, one
/// chunk of the vector per learner, until `epochs * iterations_per_epoch` iterations are done
/// (whole rounds) or the run is stopped.
pub fn run_allreduce<O: Observer + Send>(job: &Job, observer: O) -> (RealRun, O) {
    let (setup, objective, dataset) = (job.setup, job.objective, job.dataset);
    let (run, plan, gate) = start(job, observer);
    let (p, init, shared, sampler, observer) = run.parts();
    // One chunk per learner; the simulator cuts it the same way.
    let chunks = if setup.shard_ranges.len() == p {
        setup.shard_ranges.clone()
    } else {
        crate::cluster::split_even(init.len(), p)
    };
    let chunks = &chunks;
    // Channel l carries the messages into learner l.
    let (tx, rx): (Vec<Sender<Message>>, Vec<_>) = (0..p).map(|_| channel()).unzip();

    let learners: Vec<LearnerEnd> = std::thread::scope(|s| {
        let handles: Vec<_> = rx
            .into_iter()
            .enumerate()
            .map(|(l, prev)| {
                let next = tx[(l + 1) % p].clone();
                let (shared, gate, sampler, observer) = (&shared, &gate, &sampler, &observer);
                let (objective, dataset) = (Arc::clone(objective), Arc::clone(dataset));
                let params = init.clone();
                s.spawn(move || {
                    let ctx = RingLearner {
                        c: Common {
                            l,
                            setup,
                            plan,
                            shared,
                            gate,
                            sampler,
                            observer,
                            objective: &*objective,
                            dataset: &dataset,
                        },
                        p,
                        chunks,
                        next: &next,
                        prev: &prev,
                    };
                    guarded(shared, || format!("learner {l}"), || ctx.run(params))
                        .unwrap_or_default()
                })
            })
            .collect();
        drop(tx);
        join(handles)
    });
    let end_ns = shared.now();
    // Every learner that finished the most rounds holds the same vector; the first of them.
    let most = learners.iter().map(|e| e.rounds).max().unwrap_or(0);
    let parameters = learners
        .iter()
        .find(|e| e.rounds == most && e.params.len() == init.len())
        .map_or(init, |e| e.params.clone());
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

struct RingLearner<'a, O> {
    c: Common<'a, O>,
    p: usize,
    chunks: &'a [Range<usize>],
    next: &'a Sender<Message>,
    prev: &'a Receiver<Message>,
}

impl<O: Observer> RingLearner<'_, O> {
    /// Copies `data` into a message (in a spare buffer) and sends it to the successor; the
    /// time goes to `activity`. False if the successor is gone.
    fn send(
        &self,
        round: u64,
        step: u32,
        data: &[f32],
        spares: &mut Vec<Vec<f32>>,
        end: &mut LearnerEnd,
        activity: Activity,
    ) -> bool {
        let sh = self.c.shared;
        let t = sh.now();
        let mut buf = spares.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        end.bytes += bytes_of(buf.len());
        let sent = sh.now();
        let msg = Message {
            round,
            step,
            data: buf,
            sent,
        };
        if self.next.send(msg).is_err() {
            if !sh.halted() {
                sh.fail(format!(
                    "learner {} stopped answering",
                    (self.c.l + 1) % self.p
                ));
            }
            return false;
        }
        end.breakdown.add(activity, sh.now() - t);
        true
    }

    /// Waits for the predecessor's message of `(round, step)`, `want` values long: the time
    /// before it was sent is wait, after it `activity`. None if the run halted.
    fn receive(
        &self,
        round: u64,
        step: u32,
        want: usize,
        end: &mut LearnerEnd,
        activity: Activity,
    ) -> Option<Vec<f32>> {
        let sh = self.c.shared;
        let t = sh.now();
        let msg = sh.receive(self.prev)?;
        let got = sh.now();
        let sent = msg.sent.clamp(t, got);
        end.breakdown.add(Activity::Wait, sent - t);
        end.breakdown.add(activity, got - sent);
        if msg.round != round || msg.step != step || msg.data.len() != want {
            sh.fail(format!(
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

    fn run(&self, mut params: Vec<f32>) -> LearnerEnd {
        let sh = self.c.shared;
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
            if sh.halted() {
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
                        if !self.send(round, step, data, &mut spares, &mut end, activity) {
                            break 'rounds;
                        }
                        r.sent += 1;
                    }
                    // Blocked: the one thing that can come is the predecessor's next chunk.
                    RingAct::Wait => {
                        let step = r.got;
                        let chunk = self.chunks[peer.receives(step)].clone();
                        let carries = peer.carries(step);
                        let Some(mut got) =
                            self.receive(round, step, chunk.len(), &mut end, transfer(carries))
                        else {
                            break 'rounds;
                        };
                        let t = sh.now();
                        match carries {
                            // What arrived plus its own: the sum keeps the ring's order.
                            Carries::GradientSum => {
                                update::sum_into(&mut got, &grad[chunk]);
                                spares.push(std::mem::replace(&mut acc, got));
                                end.breakdown.add(Activity::ServerUpdate, sh.now() - t);
                            }
                            Carries::Parameters => {
                                params[chunk].copy_from_slice(&got);
                                spares.push(got);
                                end.breakdown.add(Activity::Pull, sh.now() - t);
                            }
                        }
                        r.got += 1;
                    }
                    // The step on the owned chunk by the mean gradient.
                    RingAct::Update => {
                        let t = sh.now();
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
                            end.staleness.record(0);
                        }
                        end.breakdown.add(Activity::ServerUpdate, sh.now() - t);
                        r.updated = true;
                    }
                    RingAct::RoundDone => break,
                }
            }
            self.c.round_done(round, &mut end, || Some(params.clone()));
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
