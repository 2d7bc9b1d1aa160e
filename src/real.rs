//! The real-hardware backend: runs a scenario's algorithm for real on this host, with learner
//! and shard threads, real copies of parameters and gradients, and the same scenario, models,
//! data, update rule and output files as the simulator, so that the two can be compared. It
//! measures; it never simulates a delay or consults the machine model. `runtime` starts, stops,
//! joins and adds up the threads of every algorithm; `learner` runs a learner's role
//! (`algorithm::role`) on a thread, reaching the server through the `shard` loop's threads or,
//! for Hogwild, a shared vector; `sharded` holds each kind's numbers for it. Synchronous SGD
//! (`ssgd`) runs in whole rounds, its learners over the same `control::Control` as every
//! other. `processes` drives the same learners and shards as processes over TCP.

mod control;
pub mod hogwild;
mod learner;
mod outage;
pub mod processes;
mod runtime;
mod shard;
pub mod sharded;

pub use runtime::{Job, RealRun};
pub mod ssgd;
pub mod timeline;

use crate::algorithm::Server;
use crate::observe::Observer;
use crate::outcome::CurvePoint;
use crate::outcome::RunError;
use crate::report::summary::Summary;
use crate::scenario::Scenario;
use crate::setup::real_parts;
use std::sync::atomic::AtomicBool;

/// What a real run measured, in the simulator's terms: `summary.backend` is `"real"` and its
/// times are measured seconds on this host.
pub struct RealResult<O> {
    pub summary: Summary,
    pub curve: Vec<CurvePoint>,
    pub parameters: Vec<f32>,
    pub gradients: u64,
    /// Why the run ended before its last iteration (a learner or shard panicked, Ctrl-C).
    pub stopped: Option<String>,
    pub observer: O,
}

/// Runs `scenario` for real. Real runs always compute real gradients, whatever
/// `workload.gradients` says; `stop` ends the run early when set (e.g. by Ctrl-C).
pub fn run<O: Observer + Send>(
    scenario: &Scenario,
    observer: O,
    stop: &AtomicBool,
) -> Result<RealResult<O>, RunError> {
    if let Some(message) = refusal(scenario) {
        let scenario = scenario.name().to_string();
        return Err(RunError::Refused { scenario, message });
    }
    let learners = scenario.placement.learner_gpus.len();
    // One thread per learner, each computing its gradients alone.
    let parts = real_parts(scenario, learners)?;
    let f = &scenario.file;
    let go = match scenario.spec().server() {
        Server::Async | Server::Elastic | Server::Synchronous => sharded::run::<O>,
        Server::Ring => ssgd::run_allreduce::<O>,
        Server::LockFree => hogwild::run::<O>,
    };

    let job = Job {
        setup: &parts.setup,
        objective: &parts.objective,
        dataset: &parts.dataset,
        iterations_per_epoch: scenario.iterations_per_epoch,
        epochs: f.workload.epochs,
        stop,
    };
    let (run, observer) = go(&job, observer);
    Ok(result(scenario, run, observer, "real"))
}

/// Why the real backend will not run `scenario`, if it will not: slow links, which it has no
/// way to slow (its learners and shards reach each other through this host's memory or
/// sockets, at whatever speed those have), or a run that would never end.
pub fn refusal(scenario: &Scenario) -> Option<String> {
    refusal_with(scenario, false)
}

/// As [`refusal`]; with `links_shaped` (a testbed whose ports tc set to the scenario's slowed
/// links) slow links are real and taken.
pub fn refusal_with(scenario: &Scenario, links_shaped: bool) -> Option<String> {
    if let Some(link) = scenario.slow_links.first().filter(|_| !links_shaped) {
        return Some(format!(
            "faults slow the link between `{}` and `{}`, and the real backend cannot slow a \
             link: its learners and shards reach each other at this host's (or network's) own \
             speed; slow links are modelled by the simulator, and real on the testbed \
             (`validate --backend processes`), whose ports tc sets to the slowed rates",
            link.between[0], link.between[1]
        ));
    }
    would_hang(scenario)
}

/// Why a real run of `scenario` would never end, if it would not: synchronous SGD without
/// backup workers waits at its barrier for a learner that fails for good, as the real system
/// does (the simulator shows the stall and stops there; a real run would hang).
fn would_hang(scenario: &Scenario) -> Option<String> {
    let sync = matches!(
        scenario.spec(),
        crate::algorithm::Algorithm::SsgdPs { backups: 0 }
    );
    let gone = scenario.failures.iter().find(|f| f.down_for_s.is_none())?;
    sync.then(|| {
        format!(
            "learner {} fails for good at {} s and ssgd-ps without backup workers would wait \
             for it at every round from then on: a real run would never end (the simulator \
             reports the stall); give faults.down_for_s, or algorithm.ssgd.backup_workers",
            gone.learner, gone.at_s
        )
    })
}

/// What `run` measured, as the result of backend `backend`.
fn result<O>(scenario: &Scenario, run: RealRun, observer: O, backend: &str) -> RealResult<O> {
    let mut summary = Summary::new(scenario, &run.outcome, run.curve.last());
    summary.backend = backend.into();
    summary.gradients = "real".into();
    summary.measure_slowdowns();
    if run.stopped.is_some() {
        summary.cut_short.clone_from(&run.stopped);
    }
    RealResult {
        summary,
        curve: run.curve,
        parameters: run.parameters,
        gradients: run.gradients,
        stopped: run.stopped,
        observer,
    }
}

/// What the real backend's unit tests share: a small quick scenario, and a stop at the first
/// epoch end.
#[cfg(test)]
mod testing {
    use crate::input::Override;
    use crate::scenario::{self, Scenario};
    use std::path::Path;
    use std::sync::atomic::AtomicBool;

    /// The quick scenario on 600 training images, one epoch, with `sets` on top.
    pub fn quick(sets: &[&str]) -> Scenario {
        let overrides: Vec<Override> = [
            "workload.dataset.train_samples=600",
            "workload.dataset.test_samples=200",
            "workload.eval_train_samples=200",
            "workload.epochs=1",
        ]
        .iter()
        .chain(sets)
        .filter_map(|s| Override::parse(s).ok())
        .collect();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
        scenario::load(path.to_str().unwrap_or_default(), &overrides)
            .unwrap_or_else(|e| panic!("quick.toml: {e:?}"))
    }

    /// Sets the stop flag at the first epoch end, as Ctrl-C would.
    struct StopAtFirstEpoch<'a>(&'a AtomicBool);

    impl crate::observe::Observer for StopAtFirstEpoch<'_> {
        fn epoch_end(&mut self, _epoch: u64, _time: crate::time::SimTime) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn a_stop_ends_the_run_with_what_it_measured() {
        for kind in ["downpour", "easgd", "hogwild"] {
            let sc = quick(&[
                &format!("algorithm.kind={kind}"),
                "cluster.learners=2",
                "algorithm.elastic.tau=3",
                "workload.epochs=3",
            ]);
            let stop = AtomicBool::new(false);
            let r = crate::real::run(&sc, StopAtFirstEpoch(&stop), &stop)
                .unwrap_or_else(|e| panic!("{e:?}"));
            let why = r.stopped.unwrap_or_default();
            assert!(why.starts_with("interrupted after"), "{kind}: {why}");
            assert_eq!(r.summary.cut_short.as_deref(), Some(why.as_str()), "{kind}");
            let done = r.summary.completed_epochs.unwrap_or_default();
            assert!((1.0..3.0).contains(&done), "{kind}: {done}");
            assert!(r.gradients >= sc.iterations_per_epoch, "{kind}");
            assert!(r.gradients < 3 * sc.iterations_per_epoch, "{kind}");
            assert_eq!(r.summary.epoch_ends_s.len(), 1, "{kind}");
            assert!((2..=3).contains(&r.curve.len()), "{kind}");
            assert!(r.parameters.iter().all(|x| x.is_finite()), "{kind}");
        }
    }
}
