//! Synchronous SGD, two ways. Through the sharded server (`ssgd-ps`): a learner pulls, computes
//! and pushes as in Downpour, but each shard sums the p gradients of a round as they arrive and
//! takes one step by their mean before it acknowledges any (the server's barrier, a
//! [`super::Server::Synchronous`]). By ring all-reduce (`ssgd-allreduce`): no server; the
//! learners are [`RingPeer`]s, whose schedule (which chunk goes where at which step, and what a
//! peer may do next) both backends follow ([`super::Server::Ring`]). Neither reads a key of its
//! own.

use super::role::{Happened, Me, Step};

/// A learner of synchronous SGD through the server: Downpour's; the barrier is the shards'.
pub(super) fn learner(me: &Me, happened: Happened) -> Step {
    super::downpour::learner(me, happened)
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
