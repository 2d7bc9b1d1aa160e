//! The parameter-server shard thread, for every algorithm with shards: it serves a pull at once
//! with the last applied version and takes pushes in arrival order, applying each alone
//! (Downpour and its variants, the partitioned model, SSP, elastic averaging) or, for
//! synchronous SGD, holding a round's until every learner's is in and then taking one step.
//! What a push does to the slice is the algorithm's [`Apply`]; the loop, the messages, the
//! version and staleness ledger and the timing of each update are the same for all of them.

mod outage;
pub(super) use outage::Outage;

use super::runtime::{Clock, ShardEnd};
use super::timeline::ShardSpan;
use crate::algorithm::role::Happened;
use crate::algorithm::ssgd::{Offer, SyncRound, decides};
use crate::cluster::shard::staleness;
use std::sync::mpsc::{Receiver, Sender};

pub(super) enum ToShard {
    Pull {
        learner: usize,
        /// A buffer of the learner's to copy the slice into (no allocation per pull).
        buf: Vec<f32>,
    },
    Push {
        learner: usize,
        read_version: u64,
        /// What the learner pushes over the shard's range (a gradient, an elastic difference).
        data: Vec<f32>,
        /// When the learner enqueued it, ns since the run's start.
        arrived: u64,
    },
    Snapshot {
        reply: Sender<(usize, Vec<f32>)>,
    },
}

/// What a shard sends back to a learner; synchronous SGD's shards reply the same way.
pub(super) enum FromShard {
    Slice {
        shard: usize,
        version: u64,
        data: Vec<f32>,
    },
    Applied {
        span: ShardSpan,
        answer: Answer,
        /// The pushed buffer, handed back for the next push.
        spare: Vec<f32>,
    },
}

/// What a shard did with a push, as far as it counts for the learner
/// (`algorithm::ssgd::decides`): for a synchronous round, applied in `slot` of the round's
/// learner order or dropped unapplied (its round was stepped without it); a shard whose round
/// does not decide answers `slot` `u32::MAX`, never dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Answer {
    pub dropped: bool,
    pub slot: u32,
}

impl Answer {
    /// Shard `k`'s answer for a gradient its round took in `slot`, or dropped.
    fn of_round(k: usize, slot: Option<usize>) -> Answer {
        match (decides(k), slot) {
            (true, Some(slot)) => Answer {
                dropped: false,
                slot: slot as u32,
            },
            (true, None) => Answer {
                dropped: true,
                slot: u32::MAX,
            },
            (false, _) => Answer {
                dropped: false,
                slot: u32::MAX,
            },
        }
    }

    /// What several shards' answers to one push come to: the deciding shard's (dropped if it
    /// dropped it, its slot).
    pub fn merge(answers: impl IntoIterator<Item = Answer>) -> Answer {
        let mut all = Answer {
            dropped: false,
            slot: u32::MAX,
        };
        for a in answers {
            all.dropped |= a.dropped;
            all.slot = all.slot.min(a.slot);
        }
        all
    }

    /// What the learner's role is told.
    pub fn happened(self) -> Happened {
        if self.dropped {
            Happened::Dropped
        } else {
            Happened::Pushed
        }
    }
}

/// What an algorithm's shard does with what it serves and what it is pushed.
pub(super) trait Apply {
    /// `learner` is served `slice` as it is now.
    fn pulled(&mut self, _learner: usize, _slice: &[f32]) {}

    /// Applies `learner`'s push `data` to `slice` at once, alone; `staleness` is the update's.
    fn apply(&mut self, learner: usize, slice: &mut [f32], data: &[f32], staleness: u64);

    /// The round that holds pushes until their step (synchronous SGD); None, the default,
    /// applies each push as it comes.
    fn round(&self) -> Option<SyncRound> {
        None
    }

    /// Takes one step by a whole round's pushes, `round[l]` learner l's.
    fn step(&mut self, _slice: &mut [f32], _round: &[Option<Push>]) {}

    /// What it keeps beside the slice that a checkpoint holds too (the server's momentum).
    fn state(&mut self) -> &mut [f32] {
        &mut []
    }
}

/// A push as the shard took it in.
pub(super) struct Push {
    pub learner: usize,
    pub data: Vec<f32>,
    /// When the learner enqueued it (for a round: when the shard took it in), ns since the
    /// run's start.
    pub arrived: u64,
}

/// Serves shard `k`, starting from `slice`, until every learner has dropped its sender: each
/// push applied as it comes, or offered to its round and, once the round has what it needs,
/// stepped by with the round's others (a push the round drops is answered at once), as `rule`
/// says; it fails and comes back as `outage` says. A push that breaks the protocol (a wrong
/// size, twice in one round) is an error of the run.
pub(super) fn shard_loop(
    k: usize,
    mut slice: Vec<f32>,
    rx: Receiver<ToShard>,
    replies: &[Sender<FromShard>],
    clock: &impl Clock,
    mut rule: impl Apply,
    mut outage: Outage,
) -> Result<ShardEnd, String> {
    let mut end = ShardEnd::default();
    let mut sync = rule.round();
    let slots = if sync.is_some() { replies.len() } else { 0 };
    let mut round: Vec<Option<Push>> = (0..slots).map(|_| None).collect();
    // The queue closes when every learner is done; a learner that stopped early has dropped
    // its reply channel, so failed replies are not errors.
    loop {
        // Waits for the next message, or until the next failure, which it then goes through.
        let next = match outage.next() {
            Some(at) => {
                let now = clock.now();
                if now >= at {
                    outage.fail(now, &mut slice, rule.state(), || clock.now());
                    continue;
                }
                match rx.recv_timeout(std::time::Duration::from_nanos(at - now)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    other => other.ok(),
                }
            }
            None => rx.recv().ok(),
        };
        let Some(msg) = next else {
            break;
        };
        match msg {
            ToShard::Pull { learner, mut buf } => {
                buf.clear();
                buf.extend_from_slice(&slice);
                rule.pulled(learner, &slice);
                if let Some(r) = replies.get(learner) {
                    let _ = r.send(FromShard::Slice {
                        shard: k,
                        version: end.ledger.version,
                        data: buf,
                    });
                }
            }
            ToShard::Push {
                learner,
                read_version,
                data,
                arrived,
            } => {
                if data.len() != slice.len() {
                    return Err(format!(
                        "shard {k}: learner {learner} pushed {} values for a slice of {}",
                        data.len(),
                        slice.len()
                    ));
                }
                outage.held(arrived);
                let push = Push {
                    learner,
                    data,
                    arrived,
                };
                let Some(sync) = &mut sync else {
                    let started = clock.now();
                    outage.applying(started, 1, &slice, rule.state());
                    let staleness = staleness(end.ledger.version, read_version);
                    rule.apply(learner, &mut slice, &push.data, staleness);
                    let finished = clock.now();
                    end.ledger.commit(read_version);
                    end.busy_ns += finished - started;
                    reply(replies, push, started, finished, Answer::default());
                    continue;
                };
                // A round's wait is counted from when the shard took the gradient in.
                let arrived = clock.now();
                let full = match sync.offer(learner, read_version, end.ledger.version) {
                    Offer::Taken { full } => full,
                    Offer::Dropped => {
                        let dropped = Answer::of_round(k, None);
                        reply(replies, push, arrived, arrived, dropped);
                        continue;
                    }
                };
                match round.get_mut(learner) {
                    Some(slot @ None) => *slot = Some(Push { arrived, ..push }),
                    Some(Some(_)) => {
                        return Err(format!(
                            "shard {k}: learner {learner} pushed twice in round {}",
                            end.ledger.version
                        ));
                    }
                    None => return Err(format!("shard {k}: no learner {learner}")),
                }
                if !full {
                    continue;
                }
                let started = clock.now();
                let n = round.iter().flatten().count() as u64;
                outage.applying(started, n, &slice, rule.state());
                rule.step(&mut slice, &round);
                let finished = clock.now();
                end.busy_ns += finished - started;
                let order = sync.close();
                end.ledger.commit_round(order.len());
                for (slot, &l) in order.iter().enumerate() {
                    if let Some(push) = round[l].take() {
                        let answer = Answer::of_round(k, Some(slot));
                        reply(replies, push, started, finished, answer);
                    }
                }
            }
            ToShard::Snapshot { reply } => {
                let _ = reply.send((k, slice.clone()));
            }
        }
    }
    end.slice = slice;
    end.faults = outage.records;
    Ok(end)
}

/// Answers `push`, applied from `started` to `finished` (or dropped), handing its buffer
/// back.
fn reply(replies: &[Sender<FromShard>], push: Push, started: u64, finished: u64, answer: Answer) {
    if let Some(r) = replies.get(push.learner) {
        let _ = r.send(FromShard::Applied {
            span: ShardSpan::applied(push.arrived, started, finished),
            answer,
            spare: push.data,
        });
    }
}
