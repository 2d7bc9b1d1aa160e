//! Training algorithms as simulation models. Closed set: `algorithm.kind` in a scenario picks
//! one. Each algorithm drives the cluster roles (learners, shards) over the machine (network,
//! devices) and reports to an observer; none of them reads files or prints.

pub mod allreduce;
pub mod downpour;

use crate::engine::Model;
use crate::time::SimTime;
use crate::training::update::Rule;
use serde::{Deserialize, Serialize};

pub use downpour::Outcome;

/// What a run needs from an algorithm's model besides handling its events: the measurements
/// and, at the end, the observer and the numerics back.
pub trait Simulated<O, G>: Model {
    /// The run's measurements; `now` ends a run that was cut short.
    fn outcome(&self, now: SimTime) -> Outcome;
    fn into_parts(self) -> (O, G);
}

/// The algorithms asgd-sim simulates, as `algorithm.kind` names them.
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
    /// Synchronous SGD through the sharded server: each shard waits for all p gradients of a
    /// round and applies their mean once.
    SsgdPs,
    /// Synchronous SGD by ring all-reduce between the learners, no server.
    SsgdAllreduce,
    /// Elastic averaging SGD (Zhang, Choromanska & LeCun 2015): `algorithm.tau` local steps,
    /// then an elastic exchange with the centre variable, coefficient `algorithm.alpha`.
    Easgd,
    /// EASGD whose local steps use Nesterov momentum `algorithm.delta`.
    Eamsgd,
    /// Hogwild (Recht et al. 2011): lock-free updates of one shared vector; reads may see a
    /// partly written vector.
    Hogwild,
    /// The partitioned shared model (Kungurtsev et al. 2021): the model cut into blocks, one
    /// concurrent parameter server per block; each learner step updates one block, with
    /// momentum.
    Partitioned,
}

impl AlgorithmKind {
    pub const ALL: [AlgorithmKind; 9] = [
        AlgorithmKind::Downpour,
        AlgorithmKind::StalenessAware,
        AlgorithmKind::DcAsgd,
        AlgorithmKind::SsgdPs,
        AlgorithmKind::SsgdAllreduce,
        AlgorithmKind::Easgd,
        AlgorithmKind::Eamsgd,
        AlgorithmKind::Hogwild,
        AlgorithmKind::Partitioned,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AlgorithmKind::Downpour => "downpour",
            AlgorithmKind::StalenessAware => "staleness-aware",
            AlgorithmKind::DcAsgd => "dc-asgd",
            AlgorithmKind::SsgdPs => "ssgd-ps",
            AlgorithmKind::SsgdAllreduce => "ssgd-allreduce",
            AlgorithmKind::Easgd => "easgd",
            AlgorithmKind::Eamsgd => "eamsgd",
            AlgorithmKind::Hogwild => "hogwild",
            AlgorithmKind::Partitioned => "partitioned",
        }
    }
}

/// A scenario's algorithm with its own parameters, checked: what the simulator's models and
/// the real backend run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Algorithm {
    /// Downpour and its variants, which differ only in the shards' update rule.
    Downpour {
        rule: Rule,
    },
    SsgdPs,
    SsgdAllreduce,
    /// EASGD (`delta` None) or EAMSGD (`delta` its Nesterov momentum).
    Elastic {
        tau: u64,
        alpha: f32,
        delta: Option<f32>,
    },
    Hogwild,
    Partitioned,
}

impl Algorithm {
    /// Bytes a server streams through memory per parameter byte of one update: read x, read
    /// the message, write x (delay compensation streams more, see [`Rule::memory_passes`]).
    pub fn memory_passes(self) -> f64 {
        match self {
            Algorithm::Downpour { rule } => rule.memory_passes(),
            _ => 3.0,
        }
    }

    /// Mini-batches a learner computes between two exchanges with the server.
    pub fn batches_per_round(self) -> u64 {
        match self {
            Algorithm::Elastic { tau, .. } => tau,
            _ => 1,
        }
    }
}
