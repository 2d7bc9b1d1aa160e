//! Shard failures: `faults.shard_failures = [{ shard, at_s, down_for_s }]` and
//! `faults.checkpoint_every_s`. A failed shard stops serving; what learners send it meanwhile
//! waits (their requests retry until it answers, as an RPC client waiting for a server to be
//! ready does) and is served when it is back; it comes back from its last checkpoint, so the
//! updates it applied since then are lost. A shard checkpoints its slice every
//! `checkpoint_every_s` seconds of the run (absent: only the starting parameters are kept, as
//! a job that never checkpoints restarts from them).

use super::{FaultsSection, MAX_FAIL_AT_S, index_problem, time_problem};
use serde::{Deserialize, Serialize};

/// One entry of `shard_failures`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardFailureKeys {
    pub shard: usize,
    pub at_s: f64,
    pub down_for_s: f64,
}

/// A shard's failure, checked: shard `shard` stops at `at_s` and is back `down_for_s` later.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardFailure {
    pub shard: usize,
    pub at_s: f64,
    pub down_for_s: f64,
}

/// The shards' failures and checkpoints, checked against the number of shards.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardFaults {
    /// In the order of their times (then shards).
    pub failures: Vec<ShardFailure>,
    pub checkpoint_every_s: Option<f64>,
}

impl FaultsSection {
    /// The shard failures of a run with `shards` shards, or every problem as (key, message).
    pub fn shard_faults(&self, shards: usize) -> Result<ShardFaults, Vec<(String, String)>> {
        let mut problems = vec![];
        let mut failures = vec![];
        let positive = |t: f64| t.is_finite() && t > 0.0 && t <= MAX_FAIL_AT_S;
        for (i, f) in self.shard_failures.iter().flatten().enumerate() {
            let key = |k: &str| format!("faults.shard_failures[{i}].{k}");
            problems.extend(index_problem(key("shard"), f.shard, shards, "shards"));
            problems.extend(time_problem(key("at_s"), f.at_s));
            if !positive(f.down_for_s) {
                problems.push((
                    key("down_for_s"),
                    format!(
                        "must be a positive time up to {MAX_FAIL_AT_S} seconds (the shard comes \
                         back after its failure; every learner waits for a shard that never \
                         does), got {}",
                        f.down_for_s
                    ),
                ));
            }
            let overlaps = |g: &ShardFailure| {
                g.shard == f.shard
                    && f.at_s < g.at_s + g.down_for_s
                    && g.at_s < f.at_s + f.down_for_s
            };
            if failures.iter().any(overlaps) {
                problems.push((
                    key("at_s"),
                    format!("shard {} fails again while it is down", f.shard),
                ));
            }
            failures.push(ShardFailure {
                shard: f.shard,
                at_s: f.at_s,
                down_for_s: f.down_for_s,
            });
        }
        if let Some(c) = self.checkpoint_every_s.filter(|c| !positive(*c)) {
            problems.push((
                "faults.checkpoint_every_s".to_string(),
                format!("must be a positive time up to {MAX_FAIL_AT_S} seconds, got {c}"),
            ));
        }
        failures.sort_by(|a, b| a.at_s.total_cmp(&b.at_s).then(a.shard.cmp(&b.shard)));
        if problems.is_empty() {
            Ok(ShardFaults {
                failures,
                checkpoint_every_s: self.checkpoint_every_s,
            })
        } else {
            Err(problems)
        }
    }
}
