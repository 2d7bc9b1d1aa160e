//! `summary.json`: the scenario, the epoch time and where it goes, staleness, per-learner and
//! per-shard figures. Deterministic: the same run gives the same bytes (no wall-clock time, no
//! hash-map order).

use crate::outcome::CurvePoint;
use crate::outcome::{Activity, Breakdown};
use crate::outcome::{FaultRecord, Outcome};
use crate::scenario::{GradientMode, Scenario};
use serde::{Deserialize, Serialize};

/// JSON has no NaN or infinity: serde_json writes them as `null`, read back here as NaN (a
/// diverged run's losses).
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Seconds per epoch in each activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BreakdownSecs {
    #[serde(deserialize_with = "nan_if_null")]
    pub compute: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub pull: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub push: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub server_update: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub wait: f64,
}

impl BreakdownSecs {
    fn per_epoch(b: &Breakdown, epochs: f64) -> Self {
        let s = |a| b.get(a) as f64 * 1e-9 / epochs;
        Self {
            compute: s(Activity::Compute),
            pull: s(Activity::Pull),
            push: s(Activity::Push),
            server_update: s(Activity::ServerUpdate),
            wait: s(Activity::Wait),
        }
    }

    pub fn get(&self, a: Activity) -> f64 {
        match a {
            Activity::Compute => self.compute,
            Activity::Pull => self.pull,
            Activity::Push => self.push,
            Activity::ServerUpdate => self.server_update,
            Activity::Wait => self.wait,
        }
    }

    pub fn total(&self) -> f64 {
        self.compute + self.pull + self.push + self.server_update + self.wait
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StalenessSummary {
    #[serde(deserialize_with = "nan_if_null")]
    pub mean: f64,
    pub max: u64,
    /// `histogram[t]`: number of (update, shard) applications with staleness t.
    pub histogram: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearnerSummary {
    pub gpu: String,
    pub iterations: u64,
    pub breakdown: BreakdownSecs,
    /// How many times longer than its device the learner computed (`[faults]`); absent at 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub slowdown: f64,
    /// Gradients it computed and pushed that a synchronous round dropped (backup workers):
    /// work lost; absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_gradients: u64,
    /// On the real backend, a slowed learner's seconds per gradient (its wait included) over
    /// the median of the unslowed learners': the slowdown it really had; absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_slowdown: Option<f64>,
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

fn one() -> f64 {
    1.0
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardSummary {
    pub core: String,
    pub params: u64,
    pub updates: u64,
    /// Fraction of the run the shard's core spent applying updates.
    #[serde(deserialize_with = "nan_if_null")]
    pub utilization: f64,
}

/// The LHL15 bound (1) evaluated for a real-gradient run with its observed maximum staleness
/// T in place of p, and sigma^2, L, D_f estimated at its initial point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TheorySummary {
    /// Observed maximum staleness, used as the staleness bound.
    #[serde(rename = "T")]
    pub staleness_max: u64,
    #[serde(deserialize_with = "nan_if_null")]
    pub sigma2: f64,
    #[serde(rename = "L")]
    #[serde(deserialize_with = "nan_if_null")]
    pub lipschitz: f64,
    #[serde(rename = "D_f")]
    #[serde(deserialize_with = "nan_if_null")]
    pub d_f: f64,
    #[serde(rename = "M")]
    pub batch_size: u64,
    #[serde(rename = "K")]
    pub updates: u64,
    /// The run's learning rate per sample (`algorithm.learning_rate / M`).
    #[serde(deserialize_with = "nan_if_null")]
    pub gamma: f64,
    /// `2 D_f / (M K gamma)`, `sigma^2 L gamma`, `2 sigma^2 L^2 M T gamma^2`.
    pub terms: TermsSummary,
    #[serde(deserialize_with = "nan_if_null")]
    pub bound: f64,
    /// Left side of LHL15's condition (2) with T: the theory covers the run when <= 1.
    #[serde(deserialize_with = "nan_if_null")]
    pub constraint: f64,
    pub inside_regime: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TermsSummary {
    #[serde(deserialize_with = "nan_if_null")]
    pub initial_gap: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub variance: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub staleness: f64,
}

/// Where a real-gradient run ended up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalMetrics {
    #[serde(deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub train_accuracy: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub test_loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub test_accuracy: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub scenario: String,
    pub backend: String,
    pub algorithm: String,
    pub machine: String,
    pub model: String,
    pub dataset: String,
    /// `timing-only` or `real`.
    pub gradients: String,
    pub params: u64,
    pub seed: u64,
    pub learners: usize,
    pub shards: usize,
    pub batch_size: u64,
    pub epochs: u64,
    pub iterations_per_epoch: u64,
    /// Epochs (a fraction) a run that was cut short completed (stopped, diverged); absent
    /// when it completed them all. Per-epoch figures are then per completed epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_epochs: Option<f64>,
    /// Why a run ended before its last iteration (interrupted, a learner or shard failed,
    /// diverged); absent when it completed every iteration it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_short: Option<String>,
    /// Simulated time of the whole run, seconds.
    #[serde(deserialize_with = "nan_if_null")]
    pub sim_time_s: f64,
    /// Mean simulated time per epoch, seconds.
    #[serde(deserialize_with = "nan_if_null")]
    pub epoch_time_s: f64,
    /// Simulated time at which each epoch completed, seconds.
    pub epoch_ends_s: Vec<f64>,
    /// Seconds per epoch in each activity, mean over learners; sums to `epoch_time_s`.
    pub breakdown: BreakdownSecs,
    /// Fraction of the epoch a learner is not computing: moving data, waiting for its update to
    /// be applied, or queued behind other learners at the shards.
    #[serde(deserialize_with = "nan_if_null")]
    pub communication_share: f64,
    pub staleness: StalenessSummary,
    pub per_learner: Vec<LearnerSummary>,
    pub per_shard: Vec<ShardSummary>,
    /// Bytes of parameters and gradients carried by the network.
    pub bytes_moved: u64,
    /// Metrics at the end of a real-gradient run (absent for timing-only runs).
    #[serde(rename = "final", skip_serializing_if = "Option::is_none")]
    pub final_metrics: Option<FinalMetrics>,
    /// A loss or a parameter became NaN or infinite and the run stopped there.
    pub diverged: bool,
    /// The learners' failures that happened (`[faults]`): who, when, when back (null: never
    /// before the run ended), and the gradients lost with each; absent when none did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultRecord>,
    /// The shards' failures that happened (`[faults]`): which, when, when back from its
    /// checkpoint, the updates lost and the messages held; absent when none did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_faults: Vec<crate::outcome::ShardFaultRecord>,
    /// Each flaky learner's slow spells over the run (`faults.flaky_*`): how many, how long in
    /// all, the first ones; absent when none is flaky.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slow_spells: Vec<crate::faults::SpellRecord>,
    /// The links `[faults]` slowed, with their factors; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slow_links: Vec<crate::faults::SlowLink>,
    /// The convergence bound evaluated for this run (real-gradient runs whose estimates
    /// succeeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theory: Option<TheorySummary>,
}

impl Summary {
    /// Sets each slowed learner's `measured_slowdown`: its seconds of compute per gradient
    /// over the median of the unslowed learners' (none where no learner is unslowed or a
    /// learner did no gradient).
    pub fn measure_slowdowns(&mut self) {
        let per = |l: &LearnerSummary| {
            (l.iterations > 0).then(|| l.breakdown.compute / l.iterations as f64)
        };
        let mut even: Vec<f64> = (self.per_learner.iter())
            .filter(|l| l.slowdown == 1.0)
            .filter_map(per)
            .collect();
        even.sort_by(f64::total_cmp);
        let Some(&median) = even.get(even.len() / 2).filter(|m| **m > 0.0) else {
            return;
        };
        for l in self.per_learner.iter_mut().filter(|l| l.slowdown != 1.0) {
            l.measured_slowdown = per(l).map(|s| s / median);
        }
    }

    pub fn new(scenario: &Scenario, o: &Outcome, last: Option<&CurvePoint>) -> Self {
        let f = &scenario.file;
        let per_epoch = scenario.iterations_per_epoch.max(1);
        let completed: u64 = o.learner_iterations.iter().sum();
        // A run cut short is measured per epoch it completed, not per epoch it was given.
        let completed_epochs = (completed < f.workload.epochs * scenario.iterations_per_epoch)
            .then(|| completed as f64 / per_epoch as f64);
        let epochs = match completed_epochs {
            Some(e) if e > 0.0 => e,
            Some(_) => f64::NAN,
            None => f.workload.epochs.max(1) as f64,
        };
        let mut total = Breakdown::default();
        for b in &o.breakdowns {
            for a in Activity::ALL {
                total.add(a, b.get(a));
            }
        }
        let n = o.breakdowns.len().max(1) as f64;
        let mean = BreakdownSecs::per_epoch(&total, epochs * n);
        let sim_time_s = o.end.as_secs_f64();
        let epoch_time_s = sim_time_s / epochs;
        let communication_share = if mean.total() > 0.0 {
            1.0 - mean.compute / mean.total()
        } else {
            0.0
        };
        let topo = &scenario.topology;
        Summary {
            scenario: f.name.clone(),
            backend: "sim".into(),
            algorithm: f.algorithm.kind.name().into(),
            machine: topo.name().to_string(),
            model: scenario.model.name().to_string(),
            dataset: f.workload.dataset.kind().into(),
            gradients: match f.workload.gradients {
                GradientMode::TimingOnly => "timing-only",
                GradientMode::Real => "real",
            }
            .into(),
            params: scenario.model.params(),
            seed: f.seed,
            learners: o.breakdowns.len(),
            shards: o.shard_updates.len(),
            batch_size: f.algorithm.batch_size,
            epochs: f.workload.epochs,
            iterations_per_epoch: scenario.iterations_per_epoch,
            cut_short: if o.diverged {
                Some("diverged: a loss or parameter became NaN or infinite".into())
            } else if let Some(why) = &o.stalled {
                Some(why.clone())
            } else {
                completed_epochs.map(|_| "stopped before its last iteration".into())
            },
            completed_epochs,
            sim_time_s,
            epoch_time_s,
            epoch_ends_s: o.epoch_ends.iter().map(|t| t.as_secs_f64()).collect(),
            breakdown: mean,
            communication_share,
            staleness: StalenessSummary {
                mean: o.staleness.mean(),
                max: o.staleness.max(),
                histogram: o.staleness.counts().to_vec(),
            },
            per_learner: o
                .breakdowns
                .iter()
                .zip(&o.learner_iterations)
                .zip(&scenario.placement.learner_gpus)
                .enumerate()
                .map(|(l, ((b, &iterations), &g))| LearnerSummary {
                    gpu: topo.node(g).id.clone(),
                    iterations,
                    breakdown: BreakdownSecs::per_epoch(b, epochs),
                    slowdown: scenario.slowdowns.get(l).copied().unwrap_or(1.0),
                    dropped_gradients: o.learner_dropped.get(l).copied().unwrap_or(0),
                    measured_slowdown: None,
                })
                .collect(),
            per_shard: scenario
                .placement
                .shard_cores
                .iter()
                .zip(&scenario.placement.shard_ranges)
                .zip(o.shard_updates.iter().zip(&o.shard_busy_ns))
                .map(|((&c, r), (&updates, &busy))| ShardSummary {
                    core: topo.node(c).id.clone(),
                    params: r.len() as u64,
                    updates,
                    utilization: if o.end.as_nanos() > 0 {
                        busy as f64 / o.end.as_nanos() as f64
                    } else {
                        0.0
                    },
                })
                .collect(),
            bytes_moved: o.bytes_moved,
            final_metrics: last.map(|c| FinalMetrics {
                train_loss: c.train_loss,
                train_accuracy: c.train_accuracy,
                test_loss: c.test_loss,
                test_accuracy: c.test_accuracy,
            }),
            diverged: o.diverged,
            faults: o.faults.clone(),
            slow_links: scenario.slow_links.clone(),
            slow_spells: (scenario.spells().into_iter().enumerate())
                .filter_map(|(l, s)| Some(s?.record(l, sim_time_s)))
                // Spells of factor 1 slow nothing.
                .filter(|r| r.factor != 1.0)
                .collect(),
            shard_faults: o.shard_faults.clone(),
            theory: None,
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }
}
