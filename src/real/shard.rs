//! One asynchronous parameter-server shard thread, for every algorithm whose shards serve a
//! pull at once with the last applied version and apply pushes one at a time in arrival order
//! (Downpour and its variants, the partitioned model, elastic averaging). What a push does to
//! the slice is the algorithm's [`Apply`]; the loop, the messages, the version and staleness
//! ledger and the timing of each update are the same for all of them.

use super::runtime::{ShardEnd, Shared};
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

    /// Applies `learner`'s push `data` to `slice`; `staleness` is the update's.
    fn apply(&mut self, learner: usize, slice: &mut [f32], data: &[f32], staleness: u64);
}

/// Serves shard `k`, starting from `slice`, until every learner has dropped its sender.
pub(super) fn shard_loop(
    k: usize,
    mut slice: Vec<f32>,
    rx: Receiver<ToShard>,
    replies: &[Sender<FromShard>],
    shared: &Shared,
    mut rule: impl Apply,
) -> ShardEnd {
    let mut end = ShardEnd::default();
    // The queue closes when every learner is done; a learner that stopped early has dropped
    // its reply channel, so failed replies are not errors.
    while let Ok(msg) = rx.recv() {
        match msg {
            ToShard::Pull { learner, mut buf } => {
                buf.clear();
                buf.extend_from_slice(&slice);
                rule.pulled(learner, &slice);
                let _ = replies[learner].send(FromShard::Slice {
                    shard: k,
                    version: end.ledger.version,
                    data: buf,
                });
            }
            ToShard::Push {
                learner,
                read_version,
                data,
                arrived,
            } => {
                let started = shared.now();
                let staleness = staleness(end.ledger.version, read_version);
                rule.apply(learner, &mut slice, &data, staleness);
                let finished = shared.now();
                end.ledger.commit(read_version);
                end.busy_ns += finished - started;
                let _ = replies[learner].send(FromShard::Applied {
                    span: ShardSpan::applied(arrived, started, finished),
                    spare: data,
                });
            }
            ToShard::Snapshot { reply } => {
                let _ = reply.send((k, slice.clone()));
            }
        }
    }
    end.slice = slice;
    end
}
