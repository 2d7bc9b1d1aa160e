//! Synchronous SGD, two ways. Through the sharded server (`ssgd-ps`): a learner pulls, computes
//! and pushes as in Downpour, but each shard sums the p gradients of a round as they arrive and
//! takes one step by their mean before it acknowledges any (the server's barrier, a
//! [`super::Server::Synchronous`]). By ring all-reduce (`ssgd-allreduce`): no server; the
//! learners are [`RingPeer`]s, whose schedule (which chunk goes where at which step, and what a
//! peer may do next) both backends follow ([`super::Server::Ring`]).
//!
//! Backup workers (Chen, Pan, Monga, Bengio & Jozefowicz, "Revisiting Distributed Synchronous
//! SGD", 2016), `algorithm.ssgd.backup_workers = b`, for `ssgd-ps`: each shard's round takes
//! the first p - b gradients computed from its current version and steps by their mean; a
//! later one is dropped ([`SyncRound`]). The ring all-reduce has none: every peer holds a
//! chunk of every sum.

use super::role::{Act, Happened, Me, Step};
use super::{AlgorithmKind, Problem, Section, problem};
use serde::{Deserialize, Serialize};

/// `[algorithm.ssgd]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsgdKeys {
    /// Backup workers b of `ssgd-ps`: each round steps by the first p - b gradients and
    /// drops the rest (default 0: every learner's).
    pub backup_workers: Option<u32>,
}

/// Backup workers are `ssgd-ps`'s, fewer than the learners.
pub(super) fn check(
    kind: AlgorithmKind,
    keys: &Section,
    learners: usize,
    problems: &mut Vec<Problem>,
) {
    let Some(b) = keys.ssgd.backup_workers else {
        return;
    };
    if kind == AlgorithmKind::SsgdAllreduce && b > 0 {
        problems.push(problem(
            "ssgd.backup_workers",
            "ssgd-allreduce has no backup workers: every ring peer holds a chunk of every sum, \
             so a round needs them all; use ssgd-ps, whose shards can step without the slowest",
        ));
    }
    if b as usize >= learners.max(1) {
        problems.push(problem(
            "ssgd.backup_workers",
            format!(
                "is {b}, but a round needs at least one gradient: at most {} with {learners} \
                 learners",
                learners.max(1) - 1
            ),
        ));
    }
}

/// A learner of synchronous SGD through the server: Downpour's (the barrier is the shards'),
/// except that a gradient a round dropped completes nothing: the learner pulls the new
/// version and computes again.
pub(super) fn learner(me: &Me, happened: Happened) -> Step {
    match happened {
        Happened::Dropped => Step::next(Act::Pull),
        _ => super::downpour::learner(me, happened),
    }
}

/// Whether shard `shard`'s round says if a learner's gradient counts. Each shard keeps its own
/// round, and gradients can reach the shards in different orders, so with backup workers two
/// shards may step by different learners' gradients (as per-variable accumulators do); the
/// first shard's round decides which gradients count as iterations (the learner's role hears
/// [`Happened::Pushed`] or [`Happened::Dropped`] by it), so every round counts exactly p - b.
pub fn decides(shard: usize) -> bool {
    shard == 0
}

/// One shard's round of synchronous SGD through the server: the first `need` gradients
/// computed from the slice's current version, in the order they are summed in. With backup
/// workers `need` is p - b, and a gradient computed from an older version (its round was
/// stepped without it) is dropped: acknowledged at once, never applied, as TensorFlow's
/// `SyncReplicasOptimizer` drops a gradient whose step is past. Both backends' shards keep
/// their rounds with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRound {
    need: usize,
    taken: Vec<usize>,
    /// Versions past the run's last step, whose rounds no learner fills.
    last: u64,
}

/// What a round does with a gradient offered to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Summed into the round; `full` when it was the last the round needs: the shard takes
    /// the step now.
    Taken { full: bool },
    /// Not applied: its round was stepped without it.
    Dropped,
}

impl SyncRound {
    /// A round of `learners` learners, `backups` of them spare.
    pub fn new(learners: usize, backups: usize) -> Self {
        let need = learners.saturating_sub(backups).max(1);
        SyncRound {
            need,
            taken: Vec::with_capacity(need),
            last: u64::MAX,
        }
    }

    /// The same round for a run of `iterations` iterations: once the slice has taken the
    /// run's last step it drops every gradient (a learner stops once every slice it pulled
    /// has; with backups a shard can be a step ahead of another, and a gradient of that
    /// learner's must not wait there for a round nobody fills).
    pub fn until(self, iterations: u64) -> Self {
        SyncRound {
            last: iterations.div_ceil(self.need as u64),
            ..self
        }
    }

    /// Gradients a step takes.
    pub fn need(&self) -> usize {
        self.need
    }

    /// `learner`'s gradient, computed from version `read`, reaches the slice at `version`:
    /// taken, or dropped if computed from an older version or past the round's need (the
    /// shard's step is on its way).
    pub fn offer(&mut self, learner: usize, read: u64, version: u64) -> Offer {
        if read < version || version >= self.last || self.taken.len() >= self.need {
            return Offer::Dropped;
        }
        self.taken.push(learner);
        Offer::Taken {
            full: self.taken.len() == self.need,
        }
    }

    /// Learners whose gradients the round holds, in arrival order.
    pub fn taken(&self) -> &[usize] {
        &self.taken
    }

    /// The round's step is taken: its learners in learner order (the order the mean sums
    /// them in), and the next round starts empty.
    pub fn close(&mut self) -> Vec<usize> {
        let mut order = std::mem::take(&mut self.taken);
        order.sort_unstable();
        self.taken = Vec::with_capacity(self.need);
        order
    }
}

/// Learner `l` of a ring of `p` for `ssgd-allreduce`. The vector is cut into p chunks; each
/// round, after its gradient:
/// - reduce-scatter, p - 1 steps: at step k the peer sends chunk (l - k) mod p of its running
///   sum (at step 0 its own gradient) to its successor, which adds its own slice of that chunk
///   to what arrived; after the last step the peer holds chunk (l + 1) mod p summed over every
///   learner, in [`RingPeer::order`];
/// - update: it takes the step on that chunk by the mean gradient;
/// - all-gather, p - 1 steps: at step j it sends the updated chunk (l + 1 - j) mod p, and copies
///   in what arrives.
#[derive(Clone, Copy, Debug)]
pub struct RingPeer {
    pub l: usize,
    pub p: usize,
}

/// What a ring peer's driver has done in the current round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingState {
    /// Steps whose send has gone.
    pub sent: u32,
    /// A send in progress.
    pub sending: bool,
    /// Steps whose incoming chunk has arrived and been taken in.
    pub got: u32,
    /// The owned chunk is updated.
    pub updated: bool,
    /// Its update is in progress.
    pub updating: bool,
}

/// What a ring peer does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingAct {
    /// Take the step on the owned chunk: every reduce-scatter chunk is in and sent on.
    Update,
    /// Send the chunk of this step to the successor.
    Send(u32),
    /// Every step is sent and received: the round is done.
    RoundDone,
    /// Nothing until a send goes, a chunk arrives or the update ends.
    Wait,
}

/// What a step's message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carries {
    /// Reduce-scatter: partial sums of gradients.
    GradientSum,
    /// All-gather: updated parameters.
    Parameters,
}

impl RingPeer {
    /// Steps of each half of the round (reduce-scatter, all-gather).
    pub fn half(&self) -> u32 {
        self.p as u32 - 1
    }

    /// Steps of a round.
    pub fn steps(&self) -> u32 {
        2 * self.half()
    }

    pub fn successor(&self) -> usize {
        (self.l + 1) % self.p
    }

    pub fn predecessor(&self) -> usize {
        (self.l + self.p - 1) % self.p
    }

    /// The chunk this peer updates.
    pub fn owns(&self) -> usize {
        self.successor()
    }

    /// The order of learners in which the owned chunk is summed: from the learner that sends
    /// it first (learner `owns()`), along the ring, each adding its own slice to what it
    /// received.
    pub fn order(&self) -> Vec<usize> {
        (0..self.p).map(|k| (self.owns() + k) % self.p).collect()
    }

    /// The chunk this peer sends at `step`: reduce-scatter step k passes chunk (l - k), the
    /// all-gather's step j the updated chunk (l + 1 - j).
    pub fn sends(&self, step: u32) -> usize {
        let (p, h) = (self.p, self.half());
        let back = if step < h {
            step
        } else {
            step - h + p as u32 - 1
        };
        (self.l + p * 2 - back as usize % p) % p
    }

    /// The chunk that arrives at `step`: what the predecessor sends.
    pub fn receives(&self, step: u32) -> usize {
        RingPeer {
            l: self.predecessor(),
            p: self.p,
        }
        .sends(step)
    }

    pub fn carries(&self, step: u32) -> Carries {
        if step < self.half() {
            Carries::GradientSum
        } else {
            Carries::Parameters
        }
    }

    /// What the peer does next after its gradient is computed. A send of step k waits for the
    /// previous send to go and for the chunk of step k - 1 to be in; the all-gather waits for
    /// the update.
    pub fn next(&self, r: &RingState) -> RingAct {
        let h = self.half();
        if r.got >= h && r.sent == h && !r.updated && !r.updating {
            return RingAct::Update;
        }
        if r.sent == 2 * h && r.got == 2 * h {
            return RingAct::RoundDone;
        }
        let step = r.sent;
        if !r.sending && step < 2 * h && r.got >= step && (step < h || r.updated) {
            RingAct::Send(step)
        } else {
            RingAct::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_takes_the_first_p_minus_b_gradients_of_its_version_and_drops_the_rest() {
        let mut r = SyncRound::new(4, 1);
        assert_eq!(r.need(), 3);
        assert_eq!(r.offer(2, 5, 5), Offer::Taken { full: false });
        // Computed from the version before: its round was stepped without it.
        assert_eq!(r.offer(1, 4, 5), Offer::Dropped);
        assert_eq!(r.offer(0, 5, 5), Offer::Taken { full: false });
        assert_eq!(r.offer(3, 5, 5), Offer::Taken { full: true });
        // Full: the fourth of the version is a backup's.
        assert_eq!(r.offer(1, 5, 5), Offer::Dropped);
        assert_eq!(r.taken(), [2, 0, 3]);
        assert_eq!(r.close(), [0, 2, 3]);
        assert!(r.taken().is_empty());
        // Past the run's last step nothing is taken.
        let mut done = SyncRound::new(2, 0).until(3);
        assert_eq!(done.offer(0, 1, 1), Offer::Taken { full: false });
        assert_eq!(done.offer(0, 2, 2), Offer::Dropped);
        // Without backups every learner is needed.
        let mut all = SyncRound::new(2, 0);
        assert_eq!(all.offer(1, 0, 0), Offer::Taken { full: false });
        assert_eq!(all.offer(0, 0, 0), Offer::Taken { full: true });
    }

    #[test]
    fn backup_workers_are_ssgd_ps_s_and_fewer_than_the_learners() {
        let keys = |b: u32| {
            let mut k: Section =
                toml::from_str("kind = \"ssgd-ps\"\nlearning_rate = 0.1\nbatch_size = 8").unwrap();
            k.ssgd.backup_workers = Some(b);
            k
        };
        let problems = |kind: AlgorithmKind, b: u32, p: usize| {
            let mut out = vec![];
            check(kind, &keys(b), p, &mut out);
            out.into_iter()
                .map(|(k, m)| format!("{k}: {m}"))
                .collect::<Vec<_>>()
        };
        assert!(problems(AlgorithmKind::SsgdPs, 3, 4).is_empty());
        assert!(problems(AlgorithmKind::SsgdPs, 4, 4)[0].contains("at most 3 with 4 learners"));
        let ring = problems(AlgorithmKind::SsgdAllreduce, 1, 4);
        assert!(ring[0].starts_with("algorithm.ssgd.backup_workers: ssgd-allreduce has no"));
        assert!(problems(AlgorithmKind::SsgdAllreduce, 0, 4).is_empty());
    }

    #[test]
    fn a_dropped_gradient_completes_nothing_and_the_learner_pulls_again() {
        let me = Me {
            learner: 0,
            shards: 2,
            done: 3,
        };
        assert_eq!(learner(&me, Happened::Dropped), Step::next(Act::Pull));
        assert_eq!(learner(&me, Happened::Pushed).completed, 1);
    }

    #[test]
    fn every_chunk_is_summed_once_by_every_peer_and_gathered_by_every_peer() {
        for p in 1..=9 {
            for c in 0..p {
                // Reduce-scatter: chunk c passes through every learner once, ending at its owner.
                let holders: Vec<usize> = (0..p)
                    .filter(|&l| (0..p as u32 - 1).any(|k| RingPeer { l, p }.sends(k) == c))
                    .collect();
                assert_eq!(holders.len(), p - 1, "p = {p} chunk {c}");
                let owner = (0..p).find(|&l| RingPeer { l, p }.owns() == c).unwrap();
                assert!(!holders.contains(&owner));
                // All-gather: every other learner receives it once.
                let peer = |l| RingPeer { l, p };
                for l in (0..p).filter(|&l| l != owner) {
                    let got = (p as u32 - 1..2 * (p as u32 - 1))
                        .filter(|&s| peer(l).receives(s) == c)
                        .count();
                    assert_eq!(got, 1, "p = {p} chunk {c} learner {l}");
                }
                assert_eq!(peer(owner).order()[0], c);
            }
        }
    }

    #[test]
    fn a_peer_alternates_sends_and_receipts_and_updates_between_the_halves() {
        let peer = RingPeer { l: 2, p: 4 };
        let mut r = RingState::default();
        let mut acts = vec![];
        loop {
            let act = peer.next(&r);
            acts.push(act);
            match act {
                RingAct::Send(s) => {
                    assert_eq!(s, r.sent);
                    r.sent += 1;
                    r.got += 1;
                }
                RingAct::Update => r.updated = true,
                RingAct::RoundDone => break,
                RingAct::Wait => panic!("stuck at {r:?}"),
            }
        }
        use RingAct::*;
        assert_eq!(
            acts,
            [
                Send(0),
                Send(1),
                Send(2),
                Update,
                Send(3),
                Send(4),
                Send(5),
                RoundDone
            ]
        );
        // A send waits for the chunk of the step before it.
        let r = RingState {
            sent: 1,
            got: 0,
            ..RingState::default()
        };
        assert_eq!(peer.next(&r), Wait);
        // Alone, a peer only takes the step on its whole vector.
        let alone = RingPeer { l: 0, p: 1 };
        assert_eq!(alone.next(&RingState::default()), Update);
        let updated = RingState {
            updated: true,
            ..RingState::default()
        };
        assert_eq!(alone.next(&updated), RoundDone);
    }
}
