//! Runs a checked scenario on the simulator: builds the algorithm's model over the machine,
//! attaches the numerics when gradients are real, drives the engine to the end, and returns the
//! measured summary and convergence curve. Writes nothing.

use crate::algorithm::Server;
use crate::engine::Simulation;
use crate::observe::Observer;
use crate::outcome::{CurvePoint, Outcome, RunError};
use crate::predict::PredictOptions;
use crate::report::summary::{Summary, TermsSummary, TheorySummary};
use crate::scenario::{GradientMode, Scenario};
use crate::setup::real_parts;
use crate::sim::Simulated;
use crate::sim::allreduce::{AllReduce, AllReduceSetup};
use crate::sim::downpour::{Downpour, DownpourSetup};
use crate::theory::Problem;
use crate::training::Gradients;
use crate::training::real::RealGradients;

/// What a run measured, plus how much simulation work it took.
pub struct RunResult<O> {
    pub summary: Summary,
    /// One point per epoch (and the starting point) for real-gradient runs; empty otherwise.
    pub curve: Vec<CurvePoint>,
    /// The server's parameters at the end of a real-gradient run; empty otherwise.
    pub parameters: Vec<f32>,
    /// Gradients computed (real-gradient runs).
    pub gradients: u64,
    /// Events the engine handled (not in the summary: it describes the machine, not the tool).
    pub events: u64,
    pub observer: O,
}

/// Simulates `scenario` with the default number of threads, reporting to `observer`.
pub fn simulate<O: Observer>(scenario: &Scenario, observer: O) -> Result<RunResult<O>, RunError> {
    simulate_with(scenario, observer, crate::setup::default_threads())
}

/// Simulates `scenario` using up to `threads` threads for the gradient arithmetic. The result
/// does not depend on `threads`.
pub fn simulate_with<O: Observer>(
    scenario: &Scenario,
    observer: O,
    threads: usize,
) -> Result<RunResult<O>, RunError> {
    match scenario.file.workload.gradients {
        GradientMode::TimingOnly => {
            let (outcome, events, observer, ()) = drive(scenario, observer, ())?;
            Ok(RunResult {
                summary: Summary::new(scenario, &outcome, None),
                curve: vec![],
                parameters: vec![],
                gradients: 0,
                events,
                observer,
            })
        }
        GradientMode::Real => {
            let parts = real_parts(scenario, threads)?;
            let gradients = RealGradients::new(parts.setup, parts.objective, parts.dataset);
            let (outcome, events, observer, mut gradients) = drive(scenario, observer, gradients)?;
            gradients.finish(outcome.end);
            let curve = gradients.curve().to_vec();
            let mut summary = Summary::new(scenario, &outcome, curve.last());
            summary.theory = bound_for(scenario, summary.staleness.max, threads);
            Ok(RunResult {
                summary,
                curve,
                parameters: gradients.parameters().to_vec(),
                gradients: gradients.gradients_started(),
                events,
                observer,
            })
        }
    }
}

/// sigma^2, L and D_f at the run's initial point (with light estimator settings: this runs
/// after every real-gradient run) and the LHL15 bound with the observed maximum staleness.
/// None when an estimate is degenerate (e.g. a noise-free objective has sigma^2 = 0).
fn bound_for(scenario: &Scenario, staleness_max: u64, threads: usize) -> Option<TheorySummary> {
    let opts = PredictOptions {
        probes: 16,
        curvature_samples: 256,
        power_iterations: 10,
        loss_samples: 1024,
        threads,
        ..Default::default()
    };
    let pred = crate::predict::predict(scenario, &opts).ok()?;
    let (m, k) = (pred.batch_size, pred.updates);
    let problem = Problem::new(pred.d_f, pred.lipschitz, pred.sigma2, m as f64, k).ok()?;
    let gamma = pred.current_learning_rate / m as f64;
    let t = u32::try_from(staleness_max).unwrap_or(u32::MAX);
    let terms = problem.terms(gamma, t);
    let constraint = problem.constraint(gamma, t);
    Some(TheorySummary {
        staleness_max,
        sigma2: pred.sigma2,
        lipschitz: pred.lipschitz,
        d_f: pred.d_f,
        batch_size: m,
        // The scenario's epochs give a whole number of mini-batches.
        updates: k.round() as u64,
        gamma,
        terms: TermsSummary {
            initial_gap: terms.initial_gap,
            variance: terms.variance,
            staleness: terms.staleness,
        },
        bound: terms.total(),
        constraint,
        inside_regime: constraint <= 1.0,
    })
}

/// Runs the scenario's algorithm with the given numerics to the end.
fn drive<O: Observer, G: Gradients>(
    scenario: &Scenario,
    observer: O,
    gradients: G,
) -> Result<(Outcome, u64, O, G), RunError> {
    let unroutable = |p: Vec<(String, String)>| RunError::Unroutable {
        scenario: scenario.name().to_string(),
        message: p.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; "),
    };
    let spec = scenario.spec();
    if spec.server() == Server::Ring {
        {
            let setup = AllReduceSetup {
                learner_gpus: scenario.placement.learner_gpus.clone(),
                compute: scenario.compute.clone(),
                params: scenario.model.params() as usize,
                iterations_per_epoch: scenario.iterations_per_epoch,
                epochs: scenario.file.workload.epochs,
                flow_share_cv: scenario.file.machine.flow_share_cv,
                spells: scenario.spells(),
            };
            let model = AllReduce::new(&scenario.topology, setup, observer, gradients)
                .map_err(unroutable)?;
            return run_to_end(scenario, model);
        }
    }
    let setup = DownpourSetup {
        placement: scenario.placement.clone(),
        compute: scenario.compute.clone(),
        iterations_per_epoch: scenario.iterations_per_epoch,
        update_passes: spec.memory_passes(),
        epochs: scenario.file.workload.epochs,
        algorithm: spec,
        flow_share_cv: scenario.file.machine.flow_share_cv,
        failures: scenario.failures.clone(),
        spells: scenario.spells(),
        shard_faults: scenario.shard_faults.clone(),
    };
    let model =
        Downpour::new(&scenario.topology, setup, observer, gradients).map_err(unroutable)?;
    run_to_end(scenario, model)
}

/// Drives a model to its end and checks that it got there.
fn run_to_end<O, G, M: Simulated<O, G>>(
    scenario: &Scenario,
    model: M,
) -> Result<(Outcome, u64, O, G), RunError> {
    let mut sim = Simulation::new(model, scenario.file.seed);
    sim.run();
    let events = sim.events_handled();
    let outcome = sim.model().outcome(sim.now());
    let completed: u64 = outcome.learner_iterations.iter().sum();
    let target = scenario.iterations_per_epoch * scenario.file.workload.epochs;
    // A run that a failure stalled reports what it completed and why it stopped.
    if !sim.model().finished() && !outcome.diverged && outcome.stalled.is_none() {
        return Err(RunError::Stalled {
            scenario: scenario.name().to_string(),
            completed,
            target,
        });
    }
    let (observer, gradients) = sim.into_model().into_parts();
    Ok((outcome, events, observer, gradients))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Split;
    use crate::input::Override;
    use crate::numerics::Scratch;
    use crate::training::sampler::{Sampler, gradient_seed};

    fn quick(sets: &[&str]) -> Scenario {
        let small = [
            "workload.dataset.train_samples=512",
            "workload.dataset.test_samples=64",
            "workload.eval_train_samples=64",
            "workload.epochs=1",
            "algorithm.batch_size=16",
        ];
        let o: Vec<Override> = small
            .iter()
            .chain(sets)
            .map(|s| Override::parse(s).unwrap())
            .collect();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/quick.toml");
        crate::scenario::load(path, &o).unwrap()
    }

    #[test]
    fn easgd_with_alpha_zero_is_p_independent_sgd_runs() {
        let p = 3;
        let sc = quick(&[
            "algorithm.kind=easgd",
            "algorithm.elastic.tau=2",
            "algorithm.elastic.alpha=0",
            "cluster.learners=3",
            "algorithm.weight_decay=0.001",
        ]);
        let parts = real_parts(&sc, 2).unwrap();
        let (objective, data, setup) = (parts.objective, parts.dataset, parts.setup);
        let gradients = RealGradients::new(setup.clone(), objective.clone(), data.clone());
        let (outcome, _, (), mut gradients) = drive(&sc, (), gradients).unwrap();
        gradients.finish(outcome.end);
        let init = objective.init_params(setup.seed);
        // No exchange moves the centre ...
        assert_eq!(gradients.parameters(), &init[..]);
        // ... and each learner is plain SGD on its own batches, from the same start.
        let mut sampler = Sampler::for_run(data.len(Split::Train), p, setup.seed);
        let mut scratch = Scratch::default();
        let mut g = vec![0.0f32; init.len()];
        for l in 0..p {
            let (params, batches) = gradients.learner_parameters(l);
            let mut x = init.clone();
            for t in 0..batches {
                let idx = sampler.next_batch(l, setup.batch_size);
                let batch = data.gather(Split::Train, &idx);
                let seed = gradient_seed(setup.seed, l, t);
                objective.loss_grad(&x, &batch, seed, &mut g, &mut scratch);
                crate::training::update::apply(
                    &mut x,
                    &mut [],
                    &g,
                    setup.learning_rate,
                    0.0,
                    setup.weight_decay,
                );
            }
            assert!(batches >= outcome.learner_iterations[l].max(2));
            assert!(params == &x[..], "learner {l} is not plain SGD");
            assert!(x != init);
        }
    }
}
