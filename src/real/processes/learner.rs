//! A learner's process: it links to every shard, then runs the same learner loop as the
//! threads backend (`real::learner::Learner`), with the same numbers (`real::sharded::learn`),
//! or synchronous SGD's (`real::ssgd::ps_learner`). Its reach is a socket per shard
//! ([`Sockets`]); in a ring (`ssgd-allreduce`) it links to its neighbours instead and runs the
//! threads backend's ring peer (`real::ssgd::RingLearner`) over them ([`RingSockets`]). Its
//! view of the run ([`Remote`]) is its link to the coordinator, which answers each call from
//! the run's one shared state. A shard or a neighbour that stops answering is told to the
//! coordinator, which halts the run.

use super::super::control::Control;
use super::super::learner::{Learner, Reach, Taken, Work, read_versions};
use super::super::runtime::{Clock, LearnerEnd};
use super::super::shard::Answer;
use super::super::sharded::learn;
use super::super::ssgd::{
    Chunk, Common, LearnerEnd as HandIn, Neighbours, Plan, RingLearner, ps_learner, ring_chunks,
};
use super::super::timeline::ShardSpan;
use super::wire::{Conn, Msg, unexpected};
use super::{Joined, ProcessesError, RENDEZVOUS, RunClock, World, accept_one};
use crate::algorithm::Server;
use crate::data::Split;
use crate::setup::RealParts;
use crate::training::sampler::Sampler;
use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

pub(super) fn run(
    j: &mut Joined,
    l: usize,
    w: World,
    parts: &RealParts,
    plan: Plan,
) -> Result<(), ProcessesError> {
    let who = format!("rank {} (learner {l})", j.rank);
    let links = if w.ring {
        let (next, prev) = ring_links(j, l, w)
            .map_err(|e| ProcessesError::Rendezvous(format!("{who}: cannot join the ring: {e}")))?;
        Links::Ring(next, prev)
    } else {
        let mut links = vec![];
        for (k, &addr) in j.shards.iter().enumerate() {
            let link = Conn::connect(addr, RENDEZVOUS).and_then(|mut c| {
                c.send(&Msg::Learner { learner: l as u32 })?;
                Ok(c)
            });
            links.push(link.map_err(|e| {
                ProcessesError::Rendezvous(format!("{who}: cannot reach shard {k} at {addr}: {e}"))
            })?);
        }
        Links::Shards(links)
    };
    j.ready()
        .map_err(|e| ProcessesError::Rendezvous(format!("{who}: the coordinator: {e}")))?;
    let setup = &parts.setup;
    let samples = parts.dataset.len(Split::Train);
    let remote = Remote {
        link: RefCell::new(&mut j.coordinator),
        clock: &j.clock,
        halted: Cell::new(false),
        epochs: Cell::new(0),
        repartitioned: Cell::new(0),
        sampler: RefCell::new(Sampler::for_run(samples, w.learners, setup.seed)),
        lost: RefCell::new(None),
    };
    let init = parts.objective.init_params(setup.seed);
    let common = Common {
        l,
        setup,
        plan,
        control: &remote,
        objective: &*parts.objective,
        dataset: &parts.dataset,
    };
    let end = match links {
        Links::Ring(next, prev) => run_ring(common, w.learners, next, prev, init),
        Links::Shards(links) => {
            let reach = Sockets {
                ranges: &setup.shard_ranges,
                links,
                read: vec![0; setup.shard_ranges.len()],
                spare: vec![],
                control: &remote,
            };
            if setup.algorithm.server() == Server::Synchronous {
                ps_learner(&common, reach)
            } else {
                let learner = Learner {
                    l,
                    setup,
                    control: &remote,
                };
                learn(&learner, reach, &*parts.objective, &parts.dataset, &init).into()
            }
        }
    };
    let HandIn {
        measured,
        rounds,
        params,
    } = end;
    remote.tell(&Msg::LearnerDone {
        measured,
        rounds,
        params,
        finished_ns: remote.now(),
    });
    let lost = remote.lost.borrow().clone();
    match lost {
        Some(why) => Err(ProcessesError::Lost(format!("{who}: {why}"))),
        None => Ok(()),
    }
}

/// A learner's links: one to every shard, or in a ring the one to its successor and the one
/// from its predecessor.
enum Links {
    Shards(Vec<Conn>),
    Ring(Conn, Conn),
}

/// Links learner `l` into the ring: connects to its successor's listener, then takes its
/// predecessor's connection (with one learner, both are its own).
fn ring_links(j: &mut Joined, l: usize, w: World) -> std::io::Result<(Conn, Conn)> {
    let p = w.learners;
    let (succ, pred) = ((l + 1) % p, (l + p - 1) % p);
    let addr = *j
        .ring
        .get(succ)
        .ok_or_else(|| std::io::Error::other("the directory has no ring"))?;
    let mut next = Conn::connect(addr, RENDEZVOUS)
        .map_err(|e| std::io::Error::other(format!("learner {succ} at {addr}: {e}")))?;
    next.send(&Msg::Learner { learner: l as u32 })?;
    let listener = j
        .listener
        .take()
        .ok_or_else(|| std::io::Error::other("no listener"))?;
    let mut prev = accept_one(&listener, RENDEZVOUS)?;
    prev.patience(Some(Duration::from_secs(10)))?;
    match prev.recv()? {
        Msg::Learner { learner } if learner as usize == pred => {}
        Msg::Learner { learner } => {
            return Err(std::io::Error::other(format!(
                "learner {learner} connected, but learner {pred} comes before {l}"
            )));
        }
        other => return Err(unexpected("Learner", &other)),
    }
    prev.patience(None)?;
    Ok((next, prev))
}

/// Runs the ring's peer with its links: chunks to the successor go out through a writer
/// thread (a peer never blocks on a send, so a ring of full sockets cannot deadlock), chunks
/// from the predecessor are read as the schedule waits for them.
fn run_ring(c: Common<Remote>, p: usize, next: Conn, prev: Conn, init: Vec<f32>) -> HandIn {
    let chunks = ring_chunks(c.setup, p, init.len());
    let (pred, control) = ((c.l + p - 1) % p, c.control);
    let peer = RingLearner {
        c,
        p,
        chunks: &chunks,
    };
    let (out, queue) = channel::<Chunk>();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut next = next;
            for chunk in queue {
                let Chunk {
                    round,
                    step,
                    data,
                    sent,
                } = chunk;
                let msg = Msg::Chunk {
                    round,
                    step,
                    sent,
                    data,
                };
                if next.send(&msg).is_err() {
                    break;
                }
            }
        });
        let mut links = RingSockets {
            out,
            prev,
            pred,
            control,
        };
        peer.run(&mut links, init)
    })
}

/// The run as a learner's process sees it: every call is a message to the coordinator and
/// its answer. The learner's sampler is its own copy of the run's, dealt out again at every
/// epoch end the coordinator reports, so it draws the batches the shared one would.
struct Remote<'a> {
    link: RefCell<&'a mut Conn>,
    clock: &'a RunClock,
    halted: Cell<bool>,
    /// Epochs ended, as last heard.
    epochs: Cell<u64>,
    repartitioned: Cell<u64>,
    sampler: RefCell<Sampler>,
    /// Why the link to the coordinator broke.
    lost: RefCell<Option<String>>,
}

impl Remote<'_> {
    fn lose(&self, e: std::io::Error) {
        self.halted.set(true);
        self.lost
            .borrow_mut()
            .get_or_insert_with(|| format!("the coordinator is gone: {e}"));
    }

    /// Sends `msg`, expecting no answer.
    fn tell(&self, msg: &Msg) {
        let sent = self.link.borrow_mut().send(msg);
        if let Err(e) = sent {
            self.lose(e);
        }
    }

    /// Sends `msg` and returns the answer; None if the link broke.
    fn call(&self, msg: &Msg) -> Option<Msg> {
        if self.lost.borrow().is_some() {
            return None;
        }
        let answer = {
            let mut link = self.link.borrow_mut();
            link.send(msg).and_then(|()| link.recv())
        };
        answer.map_err(|e| self.lose(e)).ok()
    }

    fn heard(&self, epochs: u64, halted: bool) {
        self.epochs.set(self.epochs.get().max(epochs));
        if halted {
            self.halted.set(true);
        }
    }
}

impl Control for Remote<'_> {
    fn now(&self) -> u64 {
        self.clock.now()
    }

    fn halted(&self) -> bool {
        self.halted.get()
    }

    fn fail(&self, why: String) {
        self.tell(&Msg::Fail { why });
        self.halted.set(true);
    }

    fn diverge(&self) {
        self.tell(&Msg::Diverged);
        self.halted.set(true);
    }

    fn learner_fault(&self, l: usize, down: bool, unclaim: bool) {
        // One way, as a complaint is: nothing to wait for.
        self.tell(&Msg::LearnerFault { l, down, unclaim });
    }

    fn claim(&self) -> bool {
        if self.halted.get() {
            return false;
        }
        match self.call(&Msg::Claim) {
            Some(Msg::Claimed { ok, epochs }) => {
                self.heard(epochs, false);
                ok
            }
            _ => false,
        }
    }

    fn complete(&self, _l: usize, k: u64) -> (Range<u64>, u64) {
        match self.call(&Msg::Complete { k }) {
            Some(Msg::Completed {
                from,
                to,
                done,
                halted,
            }) => {
                self.heard(to.saturating_sub(1), halted);
                (from..to, done)
            }
            _ => (0..0, 0),
        }
    }

    fn wait_for(&self, iterations: u64) {
        if let Some(Msg::Released { halted, epochs }) = self.call(&Msg::WaitFor { iterations }) {
            self.heard(epochs, halted);
        }
    }

    /// Nothing to wait for: this process deals its own copy of the data, and a synchronous
    /// learner asks for the epochs ended by the rounds it has seen done (every learner's
    /// gradients of them applied), so it deals out again exactly as often as the shared
    /// sampler would have been.
    fn await_epochs(&self, epochs: u64) -> bool {
        self.heard(epochs, false);
        !self.halted.get()
    }

    fn next_batch(&self, l: usize, m: usize) -> Option<Vec<usize>> {
        let mut sampler = self.sampler.borrow_mut();
        while self.repartitioned.get() < self.epochs.get() {
            sampler.repartition();
            self.repartitioned.set(self.repartitioned.get() + 1);
        }
        Some(sampler.next_batch(l, m))
    }

    fn end_epoch(&self, epoch: u64, at_ns: u64, iterations: u64, params: Option<Vec<f32>>) {
        self.tell(&Msg::EpochEnd {
            epoch,
            at_ns,
            iterations,
            params: params.unwrap_or_default(),
        });
    }
}

/// A learner's reach of the shards: one socket to each.
struct Sockets<'a> {
    ranges: &'a [Range<usize>],
    links: Vec<Conn>,
    /// The version of each shard's slice last pulled.
    read: Vec<u64>,
    /// A message buffer to reuse.
    spare: Vec<f32>,
    control: &'a Remote<'a>,
}

impl Sockets<'_> {
    fn lost(&self, k: usize, e: impl std::fmt::Display) {
        self.control
            .fail(format!("shard {k} stopped answering learner links: {e}"));
    }

    fn send(&mut self, k: usize, msg: &Msg) -> Option<()> {
        let sent = self.links[k].send(msg);
        sent.map_err(|e| self.lost(k, e)).ok()
    }

    fn recv(&mut self, k: usize) -> Option<Msg> {
        let got = self.links[k].recv();
        got.map_err(|e| self.lost(k, e)).ok()
    }
}

impl Reach for Sockets<'_> {
    /// Asks every shard for its slice, then takes each answer into the work.
    fn pull(&mut self, work: &mut impl Work, end: &mut LearnerEnd) -> Option<()> {
        for k in 0..self.ranges.len() {
            self.send(k, &Msg::Pull)?;
        }
        for k in 0..self.ranges.len() {
            let range = self.ranges[k].clone();
            match self.recv(k)? {
                Msg::Slice { version, data } if data.len() == range.len() => {
                    work.take_slice(range, &data, end);
                    self.read[k] = version;
                }
                other => {
                    self.lost(k, format!("a slice was expected, got {}", other.name()));
                    return None;
                }
            }
        }
        Some(())
    }

    /// Sends each target shard the work's message, then waits for every acknowledgement; the
    /// time is push, server update or wait by what the shards did meanwhile, on the run's
    /// clock.
    fn push(
        &mut self,
        work: &mut impl Work,
        targets: Range<usize>,
        began: u64,
        end: &mut LearnerEnd,
    ) -> Option<Answer> {
        let clock = self.control.clock;
        for k in targets.clone() {
            let mut data = std::mem::take(&mut self.spare);
            work.push_message(self.ranges[k].clone(), &mut data, end);
            let msg = Msg::Push {
                read_version: self.read[k],
                arrived: clock.now(),
                data,
            };
            self.send(k, &msg)?;
            if let Msg::Push { data, .. } = msg {
                self.spare = data;
            }
        }
        let mut spans = Vec::with_capacity(targets.len());
        let mut answers = Vec::with_capacity(targets.len());
        for k in targets {
            match self.recv(k)? {
                Msg::Applied {
                    arrived,
                    started,
                    finished,
                    dropped,
                    slot,
                } => {
                    spans.push(ShardSpan {
                        arrived,
                        started,
                        finished,
                        received: clock.now(),
                    });
                    answers.push(Answer { dropped, slot });
                }
                other => {
                    self.lost(
                        k,
                        format!("an acknowledgement was expected, got {}", other.name()),
                    );
                    return None;
                }
            }
        }
        end.charge_push(began, clock.now(), &spans);
        Some(Answer::merge(answers))
    }

    fn versions(&self) -> (u64, u64) {
        read_versions(&self.read)
    }

    /// Asks every shard to keep its slice as the epoch's; they hand them in at the run's end.
    fn snapshot(&mut self, epoch: u64) -> Option<Taken> {
        for k in 0..self.ranges.len() {
            self.send(k, &Msg::Snapshot { epoch })?;
        }
        Some(Taken::AtShards)
    }
}

/// A ring peer's neighbours across processes: a queue to the writer of its successor's link,
/// and the link from its predecessor.
struct RingSockets<'a, 'b> {
    out: Sender<Chunk>,
    prev: Conn,
    pred: usize,
    control: &'a Remote<'b>,
}

impl Neighbours for RingSockets<'_, '_> {
    fn send(&mut self, chunk: Chunk) -> bool {
        self.out.send(chunk).is_ok()
    }

    fn receive(&mut self) -> Option<Chunk> {
        let why = match self.prev.recv() {
            Ok(Msg::Chunk {
                round,
                step,
                sent,
                data,
            }) => {
                return Some(Chunk {
                    round,
                    step,
                    data,
                    sent,
                });
            }
            Ok(other) => unexpected("Chunk", &other).to_string(),
            Err(e) => e.to_string(),
        };
        if !self.control.halted() {
            let pred = self.pred;
            self.control.fail(format!(
                "learner {pred}, before this one in the ring, was lost: {why}"
            ));
        }
        None
    }
}
