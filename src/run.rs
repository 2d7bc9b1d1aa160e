//! Runs a checked scenario on the simulator: builds the algorithm's model over the machine,
//! drives the engine to the end, and returns the measured summary. Writes nothing.

use crate::algorithm::AlgorithmKind;
use crate::algorithm::downpour::{Downpour, DownpourSetup};
use crate::engine::Simulation;
use crate::observe::Observer;
use crate::report::summary::Summary;
use crate::scenario::Scenario;

/// Errors from running a scenario that passed its checks. Fatal for the run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The machine cannot carry the algorithm's traffic (e.g. no route between a learner and a
    /// shard).
    #[error("{scenario}: {message}")]
    Unroutable { scenario: String, message: String },
}

/// What a run measured, plus how much simulation work it took.
pub struct RunResult<O> {
    pub summary: Summary,
    /// Events the engine handled (not in the summary: it describes the machine, not the tool).
    pub events: u64,
    pub observer: O,
}

/// Simulates `scenario`, reporting to `observer` as it goes.
pub fn simulate<O: Observer>(scenario: &Scenario, observer: O) -> Result<RunResult<O>, RunError> {
    match scenario.algorithm() {
        AlgorithmKind::Downpour => {
            let setup = DownpourSetup {
                placement: scenario.placement.clone(),
                compute: scenario.compute.clone(),
                iterations_per_epoch: scenario.iterations_per_epoch,
                epochs: scenario.file.workload.epochs,
            };
            let model = Downpour::new(&scenario.topology, setup, observer).map_err(|p| {
                RunError::Unroutable {
                    scenario: scenario.name().to_string(),
                    message: p.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; "),
                }
            })?;
            let mut sim = Simulation::new(model, scenario.file.seed);
            sim.run();
            let events = sim.events_handled();
            let outcome = sim.model().outcome(sim.now());
            let summary = Summary::new(scenario, &outcome);
            Ok(RunResult {
                summary,
                events,
                observer: sim.into_model().into_observer(),
            })
        }
    }
}
