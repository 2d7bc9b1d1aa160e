//! Training algorithms as simulation models. Closed set: `algorithm.kind` in a scenario picks
//! one. Each algorithm drives the cluster roles (learners, shards) over the machine (network,
//! devices) and reports to an observer; none of them reads files or prints.

pub mod downpour;

use serde::{Deserialize, Serialize};

/// The algorithms asgd-sim simulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlgorithmKind {
    /// Downpour ASGD (Dean et al. 2012) with a sharded parameter server.
    Downpour,
    /// Downpour whose shards divide the learning rate by each update's staleness.
    StalenessAware,
    /// Downpour whose shards compensate each gradient for the delay (DC-ASGD), with
    /// `algorithm.lambda`.
    DcAsgd,
}

impl AlgorithmKind {
    pub const ALL: [AlgorithmKind; 3] = [
        AlgorithmKind::Downpour,
        AlgorithmKind::StalenessAware,
        AlgorithmKind::DcAsgd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AlgorithmKind::Downpour => "downpour",
            AlgorithmKind::StalenessAware => "staleness-aware",
            AlgorithmKind::DcAsgd => "dc-asgd",
        }
    }

    /// The server's update rule; `lambda` is read by DC-ASGD only.
    pub fn rule(self, lambda: f64) -> crate::training::update::Rule {
        use crate::training::update::Rule;
        match self {
            AlgorithmKind::Downpour => Rule::Sgd,
            AlgorithmKind::StalenessAware => Rule::StalenessAware,
            AlgorithmKind::DcAsgd => Rule::DelayCompensated {
                lambda: lambda as f32,
            },
        }
    }
}
