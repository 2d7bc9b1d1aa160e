//! The training algorithms: the closed set that `algorithm.kind` in a scenario picks from, and
//! each one's checked parameters. Both backends (the simulator in `sim`, the real threads in
//! `real`) run what is named here; this module runs nothing itself.

mod downpour;
mod elastic;
mod hogwild;
pub mod partitioned;
pub mod role;
pub mod ssgd;
pub mod ssp;

pub use downpour::DcAsgdKeys;
pub use elastic::ElasticKeys;
pub use partitioned::PartitionedKeys;
use role::{Happened, LearnerRole, Me, Step};
use serde::{Deserialize, Serialize};
pub use ssgd::SsgdKeys;
pub use ssp::SspKeys;

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
    /// Synchronous SGD through the sharded server: each shard waits for the p gradients of a
    /// round (the first p - b, with `algorithm.ssgd.backup_workers` b) and applies their mean
    /// once.
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
    /// Stale synchronous parallel (Ho et al. 2013): Downpour in which no learner runs more
    /// than `algorithm.staleness_bound` iterations ahead of the slowest.
    Ssp,
}

impl AlgorithmKind {
    pub const ALL: [AlgorithmKind; 10] = [
        AlgorithmKind::Downpour,
        AlgorithmKind::StalenessAware,
        AlgorithmKind::DcAsgd,
        AlgorithmKind::SsgdPs,
        AlgorithmKind::SsgdAllreduce,
        AlgorithmKind::Easgd,
        AlgorithmKind::Eamsgd,
        AlgorithmKind::Hogwild,
        AlgorithmKind::Partitioned,
        AlgorithmKind::Ssp,
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
            AlgorithmKind::Ssp => "ssp",
        }
    }
}

/// A scenario's `[algorithm]` section: the kind, what every kind reads, and one table of keys
/// for each file of kinds that has its own (`[algorithm.elastic]` for EASGD and EAMSGD, ...),
/// read by those kinds only. Every table given is checked, whatever the kind (so one sweep
/// may set them all, for every kind); each kind requires its own keys. Each kind's file says
/// how.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub kind: AlgorithmKind,
    /// gamma; used by the numerics.
    pub learning_rate: f64,
    /// Mini-batch size M per learner.
    pub batch_size: u64,
    /// Heavy-ball momentum applied by the server (0: plain SGD).
    #[serde(default)]
    pub momentum: f64,
    /// L2 weight decay added to each gradient by the server.
    #[serde(default)]
    pub weight_decay: f64,
    /// `[algorithm.dc-asgd]`, read by `dc-asgd`.
    #[serde(default, rename = "dc-asgd")]
    pub dc_asgd: DcAsgdKeys,
    /// `[algorithm.elastic]`, read by `easgd` and `eamsgd`.
    #[serde(default)]
    pub elastic: ElasticKeys,
    /// `[algorithm.partitioned]`, read by `partitioned`.
    #[serde(default)]
    pub partitioned: PartitionedKeys,
    /// `[algorithm.ssp]`, read by `ssp`.
    #[serde(default)]
    pub ssp: SspKeys,
    /// `[algorithm.ssgd]`, read by `ssgd-ps`.
    #[serde(default)]
    pub ssgd: SsgdKeys,
}

/// Where a key of an `[algorithm]` section that is now in its kind's table went.
pub fn moved(key: &str) -> Option<&'static str> {
    Some(match key {
        "algorithm.lambda" => "algorithm.dc-asgd.lambda",
        "algorithm.tau" => "algorithm.elastic.tau",
        "algorithm.alpha" => "algorithm.elastic.alpha",
        "algorithm.delta" => "algorithm.elastic.delta",
        "algorithm.blocks" => "algorithm.partitioned.blocks",
        "algorithm.staleness_bound" => "algorithm.ssp.staleness_bound",
        "algorithm.backup_workers" => "algorithm.ssgd.backup_workers",
        _ => return None,
    })
}

/// A problem with a key: the key, as `algorithm.<name>`, and what is wrong.
pub type Problem = (String, String);

fn problem(key: &str, message: impl Into<String>) -> Problem {
    (format!("algorithm.{key}"), message.into())
}

impl AlgorithmKind {
    /// What is wrong with the section's keys for this kind with `learners` learners: each
    /// key's range, and the keys this kind requires. The registry of checks, one line per
    /// file of kinds.
    pub fn check(self, keys: &Section, learners: usize) -> Vec<Problem> {
        let mut problems = vec![];
        downpour::check(self, keys, &mut problems);
        ssgd::check(self, keys, learners, &mut problems);
        elastic::check(self, keys, &mut problems);
        ssp::check(self, keys, &mut problems);
        partitioned::check(&keys.partitioned, &mut problems);
        problems
    }

    /// The algorithm with its parameters read from `keys` (already checked) for `p` learners:
    /// the registry of parameters, one line per kind.
    pub fn parameters(self, keys: &Section, p: usize) -> Algorithm {
        match self {
            AlgorithmKind::Downpour => Algorithm::Downpour { rule: Rule::Sgd },
            AlgorithmKind::StalenessAware => downpour::staleness_aware(),
            AlgorithmKind::DcAsgd => downpour::dc_asgd(keys),
            AlgorithmKind::SsgdPs => Algorithm::SsgdPs {
                backups: keys.ssgd.backup_workers.unwrap_or(0),
            },
            AlgorithmKind::SsgdAllreduce => Algorithm::SsgdAllreduce,
            AlgorithmKind::Easgd => elastic::easgd(keys, p),
            AlgorithmKind::Eamsgd => elastic::eamsgd(keys, p),
            AlgorithmKind::Hogwild => Algorithm::Hogwild,
            AlgorithmKind::Partitioned => Algorithm::Partitioned,
            AlgorithmKind::Ssp => ssp::parameters(keys),
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
    /// Synchronous SGD through the server, each round stepping without its `backups`
    /// slowest gradients.
    SsgdPs {
        backups: u32,
    },
    SsgdAllreduce,
    /// EASGD (`delta` None) or EAMSGD (`delta` its Nesterov momentum).
    Elastic {
        tau: u64,
        alpha: f32,
        delta: Option<f32>,
    },
    Hogwild,
    Partitioned,
    /// SSP with its staleness bound.
    Ssp {
        bound: u64,
    },
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

    /// Learner `learner`'s role, with `shards` server shards.
    pub fn learner(self, learner: usize, shards: usize) -> LearnerRole {
        LearnerRole::new(self, learner, shards)
    }

    /// What a learner of this algorithm does after `happened`: the registry of learner roles,
    /// one line per kind. (The ring all-reduce's learners are ring peers, run by the ring's
    /// own model; as a server-facing learner it would be Downpour's.)
    #[inline]
    pub(crate) fn react(self, me: &Me, happened: Happened) -> Step {
        match self {
            Algorithm::Downpour { .. } => downpour::learner(me, happened),
            Algorithm::SsgdPs { .. } => ssgd::learner(me, happened),
            Algorithm::SsgdAllreduce => ssgd::learner(me, happened),
            Algorithm::Elastic { tau, .. } => elastic::learner(me, tau, happened),
            Algorithm::Hogwild => hogwild::learner(me, happened),
            Algorithm::Partitioned => partitioned::learner(me, happened),
            Algorithm::Ssp { bound } => ssp::learner(me, bound, happened),
        }
    }

    /// How this algorithm's server takes the learners' pushes: the registry of servers, one
    /// line per kind.
    pub fn server(self) -> Server {
        match self {
            Algorithm::Downpour { .. } => Server::Async,
            Algorithm::SsgdPs { .. } => Server::Synchronous,
            Algorithm::SsgdAllreduce => Server::Ring,
            Algorithm::Elastic { .. } => Server::Elastic,
            Algorithm::Hogwild => Server::LockFree,
            Algorithm::Partitioned => Server::Async,
            Algorithm::Ssp { .. } => Server::Async,
        }
    }

    /// A shard's synchronous round with `learners` learners (its backup workers spare).
    pub fn sync_round(self, learners: usize) -> ssgd::SyncRound {
        let backups = match self {
            Algorithm::SsgdPs { backups } => backups as usize,
            _ => 0,
        };
        ssgd::SyncRound::new(learners, backups)
    }

    /// The rule the shards apply a gradient with (plain SGD unless the kind says otherwise).
    pub fn rule(self) -> Rule {
        match self {
            Algorithm::Downpour { rule } => rule,
            _ => Rule::Sgd,
        }
    }
}

/// How a server takes the learners' pushes: what each backend builds around the learners'
/// roles. Closed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// Shards apply each gradient alone, one at a time in arrival order, with the algorithm's
    /// [`Rule`].
    Async,
    /// Shards add each elastic difference to the centre variable, in arrival order.
    Elastic,
    /// Each shard sums the p gradients of a round as they arrive, then takes one step by
    /// their mean and acknowledges them all.
    Synchronous,
    /// No server: the learners sum their gradients around a ring (all-reduce).
    Ring,
    /// One shared vector that updates start on as they arrive, several at once, without a
    /// lock; a read during an update sees it partly written.
    LockFree,
}

/// How a shard turns a gradient into an update. Closed set: the algorithm picks one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// The gradient as it is (Downpour).
    Sgd,
    /// The learning rate divided by the update's staleness when it is above 1 (Zhang, Gupta,
    /// Lian & Liu, IJCAI 2016).
    StalenessAware,
    /// The gradient compensated for the parameters' change since the learner read them:
    /// `g + lambda g (.) g (.) (x_now - x_read)` (Zheng et al., ICML 2017, DC-ASGD).
    DelayCompensated { lambda: f32 },
}

impl Rule {
    /// Bytes streamed through memory per parameter byte by one update: read x, read g, write x;
    /// delay compensation also reads the learner's copy of x and, at the pull, writes it.
    pub fn memory_passes(self) -> f64 {
        match self {
            Rule::Sgd | Rule::StalenessAware => 3.0,
            Rule::DelayCompensated { .. } => 5.0,
        }
    }

    /// Whether a shard must keep a copy of the slice each learner read.
    pub fn needs_backup(self) -> bool {
        matches!(self, Rule::DelayCompensated { .. })
    }
}
