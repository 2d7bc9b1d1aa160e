//! The real backend on small models: every iteration applied once at every shard, staleness
//! recorded for each, the same outputs as the simulator, no deadlock over many short runs, and
//! faults (a panicking learner, a stop request) ending the run with what it measured.

use asgd_sim::data::Dataset;
use asgd_sim::input::Override;
use asgd_sim::numerics::{Objective, Scratch};
use asgd_sim::real;
use asgd_sim::scenario::{self, Scenario};
use asgd_sim::training::real::RealSetup;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn quick(sets: &[&str]) -> Scenario {
    let mut overrides: Vec<Override> = [
        "workload.dataset.train_samples=256",
        "workload.dataset.test_samples=64",
        "workload.eval_train_samples=64",
        "algorithm.batch_size=16",
        "workload.epochs=2",
    ]
    .iter()
    .chain(sets)
    .map(|s| Override::parse(s).unwrap())
    .collect();
    overrides.push(Override::parse("workload.model=softmax").unwrap());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
    scenario::load(path.to_str().unwrap(), &overrides).unwrap()
}

#[test]
fn every_iteration_is_applied_once_at_every_shard_with_its_staleness() {
    for (p, shards) in [(1, 1), (3, 2), (4, 4)] {
        let sc = quick(&[
            &format!("cluster.learners={p}"),
            &format!("cluster.shards={shards}"),
        ]);
        let stop = AtomicBool::new(false);
        let r = real::run(&sc, (), &stop).unwrap();
        let s = &r.summary;
        let total = 2 * sc.iterations_per_epoch;
        assert_eq!(s.backend, "real");
        assert!(r.stopped.is_none());
        assert_eq!(r.gradients, total, "p = {p}");
        assert_eq!(
            s.per_learner.iter().map(|l| l.iterations).sum::<u64>(),
            total
        );
        assert!(s.per_shard.iter().all(|sh| sh.updates == total), "p = {p}");
        assert_eq!(
            s.staleness.histogram.iter().sum::<u64>(),
            total * shards as u64
        );
        if p == 1 {
            assert_eq!(s.staleness.max, 0, "one learner is never stale");
        }
        // Threads are scheduled by the OS, so no tighter bound holds: a learner descheduled
        // between its pull and its push can see every other learner's update in between.
        assert!(
            s.staleness.max < total,
            "p = {p}: staleness past every update"
        );
        assert_eq!(r.curve.len(), 3, "the start and two epochs");
        assert_eq!(s.epoch_ends_s.len(), 2);
        assert!(s.epoch_ends_s[0] < s.epoch_ends_s[1]);
        let b = &s.breakdown;
        let sum = b.compute + b.pull + b.push + b.server_update + b.wait;
        assert!(
            sum > 0.0 && sum <= s.epoch_time_s * 1.01,
            "{b:?} {}",
            s.epoch_time_s
        );
        assert!(r.curve[2].train_accuracy > r.curve[0].train_accuracy);
    }
}

#[test]
fn one_learner_for_real_is_sequential_sgd() {
    // p = 1: the real run and the simulator apply the same gradients in the same order.
    let sc = quick(&["cluster.learners=1", "cluster.shards=2"]);
    let stop = AtomicBool::new(false);
    let real = real::run(&sc, (), &stop).unwrap();
    let sim = asgd_sim::run::simulate_with(&sc, (), 1).unwrap();
    assert_eq!(real.parameters, sim.parameters);
    assert_eq!(
        real.curve.last().unwrap().test_accuracy,
        sim.curve.last().unwrap().test_accuracy
    );
}

#[test]
fn fifty_short_runs_never_deadlock() {
    let sc = quick(&[
        "cluster.learners=4",
        "cluster.shards=3",
        "workload.epochs=1",
    ]);
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for i in 0..50 {
            let stop = AtomicBool::new(false);
            let r = real::run(&sc, (), &stop).unwrap();
            assert_eq!(r.gradients, sc.iterations_per_epoch, "run {i}");
        }
        tx.send(()).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(240)).is_ok(),
        "50 runs did not finish in 4 minutes (started {:?} ago)",
        started.elapsed()
    );
}

/// A softmax model that panics on its n-th gradient.
struct Faulty {
    inner: Arc<dyn Objective>,
    calls: AtomicU64,
    panic_at: u64,
}

impl Objective for Faulty {
    fn num_params(&self) -> usize {
        self.inner.num_params()
    }
    fn init_params(&self, seed: u64) -> Vec<f32> {
        self.inner.init_params(seed)
    }
    fn loss_grad(
        &self,
        params: &[f32],
        batch: &asgd_sim::data::Batch,
        seed: u64,
        grad: &mut [f32],
        scratch: &mut Scratch,
    ) -> f32 {
        if self.calls.fetch_add(1, Ordering::Relaxed) == self.panic_at {
            panic!("injected fault");
        }
        self.inner.loss_grad(params, batch, seed, grad, scratch)
    }
    fn evaluate(
        &self,
        params: &[f32],
        batch: &asgd_sim::data::Batch,
        scratch: &mut Scratch,
    ) -> (f64, usize) {
        self.inner.evaluate(params, batch, scratch)
    }
}

fn parts(sc: &Scenario) -> (RealSetup, Arc<dyn Objective>, Arc<Dataset>) {
    let p = asgd_sim::setup::real_parts(sc, 1).unwrap();
    (p.setup, p.objective, p.dataset)
}

#[test]
fn a_panicking_learner_stops_the_run_with_what_was_measured() {
    let sc = quick(&["cluster.learners=3", "cluster.shards=2"]);
    let (setup, objective, dataset) = parts(&sc);
    let faulty: Arc<dyn Objective> = Arc::new(Faulty {
        inner: objective,
        calls: AtomicU64::new(0),
        panic_at: 10,
    });
    let stop = AtomicBool::new(false);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let job = real::Job {
        setup: &setup,
        objective: &faulty,
        dataset: &dataset,
        iterations_per_epoch: sc.iterations_per_epoch,
        epochs: 2,
        stop: &stop,
    };
    let (run, ()) = real::sharded::run(&job, ());
    std::panic::set_hook(hook);
    let why = run.stopped.expect("the run reports the fault");
    assert!(why.contains("panicked: injected fault"), "{why}");
    assert!(
        run.gradients < 2 * sc.iterations_per_epoch,
        "the others stopped too"
    );
    assert!(!run.curve.is_empty(), "the start is evaluated");
}

#[test]
fn a_stop_request_ends_the_run_and_says_how_far_it_got() {
    let sc = quick(&["cluster.learners=2"]);
    let stop = AtomicBool::new(true);
    let r = real::run(&sc, (), &stop).unwrap();
    assert_eq!(r.gradients, 0);
    let why = r.stopped.unwrap();
    assert!(why.starts_with("interrupted after 0 of"), "{why}");
}

#[test]
fn the_real_command_writes_the_simulators_files() {
    let dir = tempfile::tempdir().unwrap();
    let quick = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_asgd-sim"))
        .args(["real", quick.to_str().unwrap(), "--out", "r"])
        .args(["--set", "workload.dataset.train_samples=256"])
        .args(["--set", "workload.epochs=2"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("s measured on this host"), "{stdout}");
    let summary = std::fs::read_to_string(dir.path().join("r/summary.json")).unwrap();
    assert!(summary.contains("\"backend\": \"real\""), "{summary}");
    let curve = std::fs::read_to_string(dir.path().join("r/curve.csv")).unwrap();
    assert_eq!(curve.lines().count(), 1 + 3);
    // Bad input is refused before any thread starts.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_asgd-sim"))
        .args([
            "real",
            quick.to_str().unwrap(),
            "--set",
            "cluster.learners=0",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("key `cluster.learners`: must be at least 1"),
        "{err}"
    );
    assert!(!dir.path().join("runs").exists());
}

#[test]
fn a_run_cut_short_is_measured_per_epoch_it_completed() {
    use asgd_sim::outcome::{Breakdown, Outcome};
    use asgd_sim::report::summary::Summary;
    use asgd_sim::stats::Histogram;
    use asgd_sim::time::SimTime;
    // 256 samples in batches of 16: 16 iterations an epoch, 2 epochs given.
    let sc = quick(&["cluster.learners=2", "cluster.shards=1"]);
    let per_epoch = sc.iterations_per_epoch;
    assert_eq!(per_epoch, 16);
    let outcome = |iterations: [u64; 2]| Outcome {
        end: SimTime::from_nanos(3_000_000_000),
        epoch_ends: vec![SimTime::from_nanos(2_000_000_000)],
        breakdowns: vec![Breakdown::default(); 2],
        learner_iterations: iterations.to_vec(),
        learner_dropped: vec![0; iterations.len()],
        staleness: Histogram::default(),
        shard_busy_ns: vec![0],
        shard_updates: vec![iterations.iter().sum()],
        bytes_moved: 0,
        diverged: false,
        faults: vec![],
        shard_faults: vec![],
        stalled: None,
    };
    // Stopped after 24 of 32 iterations: 1.5 epochs in 3 s, 2 s an epoch.
    let s = Summary::new(&sc, &outcome([12, 12]), None);
    assert_eq!(s.completed_epochs, Some(1.5));
    assert_eq!(s.epoch_time_s, 2.0);
    let table = asgd_sim::report::table::render(&s);
    assert!(table.contains("cut short: 1.50 of 2 epochs"), "{table}");
    // A run that completed them all is per epoch given, and says nothing of it.
    let s = Summary::new(&sc, &outcome([16, 16]), None);
    assert_eq!((s.completed_epochs, s.epoch_time_s), (None, 1.5));
    assert!(
        !serde_json::to_string(&s)
            .unwrap()
            .contains("completed_epochs")
    );
}

/// Every count of iterations an observer hears, in order.
#[derive(Default)]
struct Heard(Vec<u64>);

impl asgd_sim::observe::Observer for Heard {
    fn iterations(&mut self, done: u64) {
        self.0.push(done);
    }
}

#[test]
fn progress_hears_every_iteration_not_only_epoch_ends_in_both_backends() {
    for kind in ["downpour", "easgd", "ssgd-ps", "ssgd-allreduce", "hogwild"] {
        let sc = quick(&[
            &format!("algorithm.kind={kind}"),
            "cluster.learners=2",
            "algorithm.elastic.tau=3",
        ]);
        let total = sc.file.workload.epochs * sc.iterations_per_epoch;
        // The simulator tells each count once, in order, up to the run's last iteration.
        let sim = asgd_sim::run::simulate_with(&sc, Heard::default(), 1).unwrap();
        assert_eq!(
            sim.observer.0,
            (1..=total).collect::<Vec<_>>(),
            "{kind} simulated"
        );
        // The real backend's learners tell theirs as they end, from their own threads.
        let stop = AtomicBool::new(false);
        let mut heard = real::run(&sc, Heard::default(), &stop).unwrap().observer.0;
        assert_eq!(heard.len() as u64, total, "{kind} real");
        heard.sort_unstable();
        assert_eq!(heard, (1..=total).collect::<Vec<_>>(), "{kind} real");
    }
}
