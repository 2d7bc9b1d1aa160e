//! What a run of either backend produces, and what the reports read: where each learner's
//! time went, the measurements of a finished run, the points of a convergence curve, and the
//! errors that end a run. Low in the tree: it imports only time, statistics and the numerics'
//! error, and nothing that runs or reports.

use crate::numerics::NumericsError;
use crate::stats::Histogram;
use crate::time::SimTime;
use serde::{Deserialize, Serialize};

/// What a learner is doing at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Compute,
    Pull,
    Push,
    ServerUpdate,
    Wait,
}

impl Activity {
    pub const ALL: [Activity; 5] = [
        Activity::Compute,
        Activity::Pull,
        Activity::Push,
        Activity::ServerUpdate,
        Activity::Wait,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Activity::Compute => "compute",
            Activity::Pull => "pull",
            Activity::Push => "push",
            Activity::ServerUpdate => "server_update",
            Activity::Wait => "wait",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Nanoseconds spent in each activity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    ns: [u64; 5],
}

impl Breakdown {
    pub fn get(&self, a: Activity) -> u64 {
        self.ns[a.index()]
    }

    pub fn add(&mut self, a: Activity, ns: u64) {
        self.ns[a.index()] += ns;
    }

    pub fn total(&self) -> u64 {
        self.ns.iter().sum()
    }
}

/// What a finished run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub end: SimTime,
    pub epoch_ends: Vec<SimTime>,
    pub breakdowns: Vec<Breakdown>,
    pub learner_iterations: Vec<u64>,
    /// Each learner's gradients dropped unapplied (synchronous SGD's backup workers).
    pub learner_dropped: Vec<u64>,
    pub staleness: Histogram,
    pub shard_busy_ns: Vec<u64>,
    pub shard_updates: Vec<u64>,
    pub bytes_moved: u64,
    /// The numerics reported NaN or infinity and the run stopped early.
    pub diverged: bool,
    /// The learners' failures that happened before the run ended.
    pub faults: Vec<FaultRecord>,
    /// The shards' failures that happened before the run ended.
    pub shard_faults: Vec<ShardFaultRecord>,
    /// Why the run could not go on, where it stalled before its last iteration (a learner that
    /// failed and never came back, waited for at a barrier).
    pub stalled: Option<String>,
}

/// A shard's failure as it happened.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardFaultRecord {
    pub shard: usize,
    /// When it failed, seconds into the run.
    pub failed_at_s: f64,
    /// When it was back from its checkpoint; None if the run ended first.
    pub back_at_s: Option<f64>,
    /// Gradients it had applied since its last checkpoint, lost when it came back.
    pub lost_updates: u64,
    /// Requests and gradients that waited for it while it was down.
    pub held_messages: u64,
}

/// A learner's failure as it happened.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub learner: usize,
    /// When it failed, seconds into the run.
    pub failed_at_s: f64,
    /// When it was back and pulling again; None if it never came back before the run ended.
    pub back_at_s: Option<f64>,
    /// Gradients it was computing when it failed, lost with it.
    pub lost_gradients: u64,
}

/// One row of `curve.csv`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CurvePoint {
    pub epoch: u64,
    /// Training samples processed so far (applied gradients x batch size).
    pub samples: u64,
    pub sim_time_s: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
}

/// Errors from running a scenario that passed its checks. Fatal for the run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The machine cannot carry the algorithm's traffic (e.g. no route between a learner and a
    /// shard).
    #[error("{scenario}: {message}")]
    Unroutable { scenario: String, message: String },
    /// The model cannot be computed by the numerics.
    #[error("{scenario}: {source}")]
    Numerics {
        scenario: String,
        source: NumericsError,
    },
    /// The run would never end (or cannot be run this way): refused before it starts.
    #[error("{scenario}: {message}")]
    Refused { scenario: String, message: String },
    /// Real gradients were asked for but no data set was loaded (a bug in the scenario checks).
    #[error("{scenario}: real gradients need a data set")]
    NoData { scenario: String },
    /// `calibrate` was given no scenario to time.
    #[error("nothing to calibrate: give at least one scenario")]
    NoScenario,
    /// The simulation ran out of events before its last iteration: a bug in the simulator.
    /// Fatal: a truncated run's figures would be wrong.
    #[error(
        "{scenario}: the simulation ran out of events after {completed} of {target} iterations (a simulator bug)"
    )]
    Stalled {
        scenario: String,
        completed: u64,
        target: u64,
    },
}
