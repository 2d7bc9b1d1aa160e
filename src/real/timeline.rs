//! Where a learner's time went between its gradient and the last shard's acknowledgement,
//! classified as the simulator's learners classify it: while any gradient slice is still being
//! copied or sent, or any acknowledgement is on its way back, it counts as push; else while any
//! shard is applying the update as server update; else (the update queued behind others at a
//! shard) as wait. Pure arithmetic on measured instants.

/// One shard's handling of one update, in nanoseconds on the learner's clock: the slice was
/// sent into the shard's queue, the shard started applying it and finished, and the learner
/// received the acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSpan {
    pub arrived: u64,
    pub started: u64,
    pub finished: u64,
    pub received: u64,
}

impl ShardSpan {
    /// A shard has applied an update that arrived at `arrived`; `received` is set by the
    /// learner when it takes the acknowledgement.
    pub fn applied(arrived: u64, started: u64, finished: u64) -> Self {
        ShardSpan {
            arrived,
            started,
            finished,
            received: finished,
        }
    }
}

/// Nanoseconds of push, server update and wait in `[from, to]`.
pub fn classify(from: u64, to: u64, spans: &[ShardSpan]) -> (u64, u64, u64) {
    if to <= from {
        return (0, 0, 0);
    }
    let clip = |t: u64| t.clamp(from, to);
    let mut cuts: Vec<u64> = vec![from, to];
    for s in spans {
        cuts.extend([
            clip(s.arrived),
            clip(s.started),
            clip(s.finished),
            clip(s.received),
        ]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let (mut push, mut update, mut wait) = (0, 0, 0);
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let mid = a + (b - a) / 2;
        let within = |lo: u64, hi: u64| lo <= mid && mid < hi;
        let on_the_way = |s: &ShardSpan| within(from, s.arrived) || within(s.finished, s.received);
        if spans.iter().any(on_the_way) {
            push += b - a;
        } else if spans.iter().any(|s| within(s.started, s.finished)) {
            update += b - a;
        } else if spans.iter().any(|s| within(s.arrived, s.started)) {
            wait += b - a;
        } else {
            push += b - a;
        }
    }
    (push, update, wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_beats_applying_beats_queued() {
        // Shard 0: sent at 10, applies 10-30, ack received at 32. Shard 1: sent at 15, queued
        // to 40, applies 40-50, ack received at 60.
        let spans = [
            ShardSpan {
                arrived: 10,
                started: 10,
                finished: 30,
                received: 32,
            },
            ShardSpan {
                arrived: 15,
                started: 40,
                finished: 50,
                received: 60,
            },
        ];
        let (push, update, wait) = classify(0, 60, &spans);
        // 0-15: copying and sending; 15-30: shard 0 applying; 30-32: ack 0 on its way;
        // 32-40: shard 1 queued; 40-50: applying; 50-60: ack 1 on its way.
        assert_eq!(push, 15 + 2 + 10);
        assert_eq!(update, 15 + 10);
        assert_eq!(wait, 8);
        assert_eq!(push + update + wait, 60);
        assert_eq!(classify(5, 5, &spans), (0, 0, 0));
        assert_eq!(classify(0, 7, &[]), (7, 0, 0));
    }
}
