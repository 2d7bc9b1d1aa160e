//! A learner's process: it links to every shard, then runs the same learner loop as the
//! threads backend (`real::learner::Learner`), with the same numbers (`real::sharded::learn`).
//! Its reach is a socket per shard ([`Sockets`]); its view of the run ([`Remote`]) is its link
//! to the coordinator, which answers each call from the run's one shared state. A shard that
//! stops answering is told to the coordinator, which halts the run.

use super::super::control::Control;
use super::super::learner::{Learner, Reach, Taken, Work};
use super::super::runtime::{Clock, LearnerEnd};
use super::super::sharded::learn;
use super::super::timeline::{ShardSpan, classify};
use super::wire::{Conn, Msg};
use super::{Joined, ProcessesError, RENDEZVOUS, RunClock, World};
use crate::data::Split;
use crate::outcome::Activity;
use crate::setup::RealParts;
use crate::training::sampler::Sampler;
use crate::workload::model::BYTES_PER_PARAM;
use std::cell::{Cell, RefCell};
use std::ops::Range;

pub(super) fn run(
    j: &mut Joined,
    l: usize,
    w: World,
    parts: &RealParts,
) -> Result<(), ProcessesError> {
    let who = format!("rank {} (learner {l})", j.rank);
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
    let reach = Sockets {
        ranges: &setup.shard_ranges,
        links,
        read: vec![0; setup.shard_ranges.len()],
        spare: vec![],
        control: &remote,
    };
    let learner = Learner {
        l,
        setup,
        control: &remote,
    };
    let init = parts.objective.init_params(setup.seed);
    let end = learn(&learner, reach, &*parts.objective, &parts.dataset, &init);
    let LearnerEnd {
        breakdown,
        iterations,
        gradients,
        bytes,
        staleness,
    } = end;
    remote.tell(&Msg::LearnerDone {
        breakdown,
        iterations,
        gradients,
        bytes,
        staleness,
    });
    let lost = remote.lost.borrow().clone();
    match lost {
        Some(why) => Err(ProcessesError::Lost(format!("{who}: {why}"))),
        None => Ok(()),
    }
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

    fn fail(&self, why: String) {
        self.tell(&Msg::Fail { why });
        self.halted.set(true);
    }

    fn diverge(&self) {
        self.tell(&Msg::Diverged);
        self.halted.set(true);
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

    fn next_batch(&self, l: usize, m: usize) -> Option<Vec<usize>> {
        let mut sampler = self.sampler.borrow_mut();
        while self.repartitioned.get() < self.epochs.get() {
            sampler.repartition();
            self.repartitioned.set(self.repartitioned.get() + 1);
        }
        Some(sampler.next_batch(l, m))
    }

    fn end_epoch(&self, epoch: u64, at_ns: u64, iterations: u64, _params: Option<Vec<f32>>) {
        self.tell(&Msg::EpochEnd {
            epoch,
            at_ns,
            iterations,
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
                    work.destination(range).copy_from_slice(&data);
                    self.read[k] = version;
                    end.bytes += BYTES_PER_PARAM * data.len() as u64;
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
    ) -> Option<()> {
        let clock = self.control.clock;
        for k in targets.clone() {
            let mut data = std::mem::take(&mut self.spare);
            work.message(self.ranges[k].clone(), &mut data);
            end.bytes += BYTES_PER_PARAM * data.len() as u64;
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
        for k in targets {
            match self.recv(k)? {
                Msg::Applied {
                    arrived,
                    started,
                    finished,
                } => spans.push(ShardSpan {
                    arrived,
                    started,
                    finished,
                    received: clock.now(),
                }),
                other => {
                    self.lost(
                        k,
                        format!("an acknowledgement was expected, got {}", other.name()),
                    );
                    return None;
                }
            }
        }
        let (push, server, wait) = classify(began, clock.now(), &spans);
        end.breakdown.add(Activity::Push, push);
        end.breakdown.add(Activity::ServerUpdate, server);
        end.breakdown.add(Activity::Wait, wait);
        Some(())
    }

    /// Asks every shard to keep its slice as the epoch's; they hand them in at the run's end.
    fn snapshot(&mut self, epoch: u64) -> Option<Taken> {
        for k in 0..self.ranges.len() {
            self.send(k, &Msg::Snapshot { epoch })?;
        }
        Some(Taken::AtShards)
    }
}
