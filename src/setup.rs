//! What both backends build from a checked scenario before they run it: the objective, the
//! data and the numeric settings of a real-gradient run, and how many threads the arithmetic
//! may use. Neither backend's runner is needed for it.

use crate::algorithm::Algorithm;
use crate::data::Dataset;
use crate::numerics::quadratic::NoisyQuadratic;
use crate::numerics::{Net, Objective};
use crate::outcome::RunError;
use crate::scenario::Scenario;
use crate::training::real::RealSetup;
use crate::workload::model::ModelSpec;
use std::sync::Arc;

/// How many threads the numerics may use by default: every core this process may run on.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What the numeric side of a real-gradient run is made of.
pub struct RealParts {
    pub objective: Arc<dyn Objective>,
    pub dataset: Arc<Dataset>,
    pub setup: RealSetup,
}

/// The objective, the data and the numeric settings of a real-gradient run with `threads`
/// threads: parallel across learners first, what is left over inside each gradient.
pub fn real_parts(scenario: &Scenario, threads: usize) -> Result<RealParts, RunError> {
    let name = || scenario.name().to_string();
    let dataset = scenario
        .dataset
        .clone()
        .ok_or_else(|| RunError::NoData { scenario: name() })?;
    let threads = threads.max(1);
    let learners = scenario.placement.learner_gpus.len();
    let workers = learners.min(threads);
    let objective: Arc<dyn Objective> = match &scenario.model {
        ModelSpec::Layers(m) => Arc::new(
            Net::new(m)
                .map_err(|source| RunError::Numerics {
                    scenario: name(),
                    source,
                })?
                .with_threads((threads / workers).max(1)),
        ),
        ModelSpec::Quadratic(q) => Arc::new(NoisyQuadratic::new(q.clone())),
    };
    let f = &scenario.file;
    let setup = RealSetup {
        learners,
        // A ring all-reduce cuts the vector into one chunk per learner.
        shard_ranges: match scenario.spec() {
            Algorithm::SsgdAllreduce => {
                crate::cluster::split_even(scenario.model.params() as usize, learners)
            }
            _ => scenario.placement.shard_ranges.clone(),
        },
        batch_size: f.algorithm.batch_size as usize,
        learning_rate: f.algorithm.learning_rate as f32,
        momentum: f.algorithm.momentum as f32,
        weight_decay: f.algorithm.weight_decay as f32,
        algorithm: scenario.spec(),
        seed: f.seed,
        workers,
        eval_train_samples: f.workload.eval_train_samples as usize,
        slowdowns: scenario.slowdowns.clone(),
        iterations: f
            .workload
            .epochs
            .saturating_mul(scenario.iterations_per_epoch),
        failures: scenario.failures.clone(),
        flaky: scenario.flaky.clone(),
        shard_faults: scenario.shard_faults.clone(),
    };
    Ok(RealParts {
        objective,
        dataset,
        setup,
    })
}
