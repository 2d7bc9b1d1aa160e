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
}

impl AlgorithmKind {
    pub fn name(self) -> &'static str {
        match self {
            AlgorithmKind::Downpour => "downpour",
        }
    }
}
