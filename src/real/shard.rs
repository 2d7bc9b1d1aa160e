//! The parameter-server shard thread, for every algorithm with shards: it serves a pull at once
//! with the last applied version and takes pushes in arrival order, applying each alone
//! (Downpour and its variants, the partitioned model, SSP, elastic averaging) or, for
//! synchronous SGD, holding a round's until every learner's is in and then taking one step.
//! What a push does to the slice is the algorithm's [`Apply`]; the loop, the messages, the
//! version and staleness ledger and the timing of each update are the same for all of them.

use super::runtime::{Clock, ShardEnd};
use super::timeline::ShardSpan;
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
        /// The pushed buffer, handed back for the next push.
        spare: Vec<f32>,
    },
}

/// What an algorithm's shard does with what it serves and what it is pushed.
pub(super) trait Apply {
    /// `learner` is served `slice` as it is now.
    fn pulled(&mut self, _learner: usize, _slice: &[f32]) {}

    /// Applies `learner`'s push `data` to `slice` at once, alone; `staleness` is the update's.
    fn apply(&mut self, learner: usize, slice: &mut [f32], data: &[f32], staleness: u64);

    /// How many learners' pushes make a round that is applied as one step (synchronous SGD);
    /// 0, the default, applies each push as it comes.
    fn round(&self) -> usize {
        0
    }

    /// Takes one step by a whole round's pushes, `round[l]` learner l's.
    fn step(&mut self, _slice: &mut [f32], _round: &[Option<Push>]) {}
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
/// push applied as it comes, or held until its round is complete and then stepped by with the
/// round's others, as `rule` says. A push that breaks the protocol (a wrong size, twice in
/// one round) is an error of the run.
pub(super) fn shard_loop(
    k: usize,
    mut slice: Vec<f32>,
    rx: Receiver<ToShard>,
    replies: &[Sender<FromShard>],
    clock: &impl Clock,
    mut rule: impl Apply,
) -> Result<ShardEnd, String> {
    let mut end = ShardEnd::default();
    let mut round: Vec<Option<Push>> = (0..rule.round()).map(|_| None).collect();
    let mut held = 0;
    // The queue closes when every learner is done; a learner that stopped early has dropped
    // its reply channel, so failed replies are not errors.
    while let Ok(msg) = rx.recv() {
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
                let push = Push {
                    learner,
                    data,
                    arrived,
                };
                if round.is_empty() {
                    let started = clock.now();
                    let staleness = staleness(end.ledger.version, read_version);
                    rule.apply(learner, &mut slice, &push.data, staleness);
                    let finished = clock.now();
                    end.ledger.commit(read_version);
                    end.busy_ns += finished - started;
                    reply(replies, push, started, finished);
                    continue;
                }
                // A round's wait is counted from when the shard took the gradient in.
                let arrived = clock.now();
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
                held += 1;
                if held < round.len() {
                    continue;
                }
                let started = clock.now();
                rule.step(&mut slice, &round);
                let finished = clock.now();
                end.busy_ns += finished - started;
                end.ledger.commit_round(round.len());
                held = 0;
                for push in round.iter_mut().filter_map(Option::take) {
                    reply(replies, push, started, finished);
                }
            }
            ToShard::Snapshot { reply } => {
                let _ = reply.send((k, slice.clone()));
            }
        }
    }
    end.slice = slice;
    Ok(end)
}

/// Acknowledges `push`, applied from `started` to `finished`, handing its buffer back.
fn reply(replies: &[Sender<FromShard>], push: Push, started: u64, finished: u64) {
    if let Some(r) = replies.get(push.learner) {
        let _ = r.send(FromShard::Applied {
            span: ShardSpan::applied(push.arrived, started, finished),
            spare: push.data,
        });
    }
}
