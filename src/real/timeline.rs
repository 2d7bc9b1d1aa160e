//! Where a learner's time went between sending its gradient and the last shard's
//! acknowledgement, classified as the simulator classifies it: while any shard is applying the
//! update it counts as server update, else while the update is queued at any shard as wait, else
//! (messages on their way) as push. Pure arithmetic on measured instants.

/// One shard's handling of one update, in nanoseconds on the learner's clock: the update arrived
/// in the shard's queue, the shard started applying it, and finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSpan {
    pub arrived: u64,
    pub started: u64,
    pub finished: u64,
}

/// Nanoseconds of push, server update and wait in `[from, to]`.
pub fn classify(from: u64, to: u64, spans: &[ShardSpan]) -> (u64, u64, u64) {
    if to <= from {
        return (0, 0, 0);
    }
    let clip = |t: u64| t.clamp(from, to);
    let mut cuts: Vec<u64> = vec![from, to];
    for s in spans {
        cuts.extend([clip(s.arrived), clip(s.started), clip(s.finished)]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let (mut push, mut update, mut wait) = (0, 0, 0);
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let mid = a + (b - a) / 2;
        let within = |lo: u64, hi: u64| lo <= mid && mid < hi;
        if spans.iter().any(|s| within(s.started, s.finished)) {
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
    fn applying_beats_queued_beats_in_flight() {
        // Shard 0: arrives at 10, applies 10-30. Shard 1: arrives at 15, queued to 40, applies
        // 40-50. Ack of the last at 60.
        let spans = [
            ShardSpan {
                arrived: 10,
                started: 10,
                finished: 30,
            },
            ShardSpan {
                arrived: 15,
                started: 40,
                finished: 50,
            },
        ];
        let (push, update, wait) = classify(0, 60, &spans);
        assert_eq!(update, 20 + 10);
        assert_eq!(wait, 10);
        assert_eq!(push, 10 + 10);
        assert_eq!(push + update + wait, 60);
        assert_eq!(classify(5, 5, &spans), (0, 0, 0));
        assert_eq!(classify(0, 7, &[]), (7, 0, 0));
    }
}
