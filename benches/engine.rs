//! Simulator speed: events handled per second of wall time for timing-only Downpour with
//! p = 16 learners on the paper machine (Power8 + 8 x K80), one epoch per run.
//!
//! - `paper-cifar10`: compute-bound; few flows in the network at once.
//! - `paper-nlc`: communication-bound (~102 MB per pull and push over PCIe); many concurrent
//!   flows, so every event reshares bandwidth over a crowded network.
//!
//! Throughput is reported in elements = engine events (`RunResult::events`), which are the same
//! for every run of a scenario (a run is a function of the scenario and its seed).
//!
//! `cluster`: the shipped cluster scenario at p = 16, 64, 256 and 1,024 learners, 20
//! mini-batches per learner, jitter off. Throughput is in elements = simulated iterations, so
//! criterion's time per element is the wall time per simulated iteration.
//!
//! `cargo bench --bench engine` for the full measurement; `cargo bench --bench engine --
//! --quick` for a short one.

use asgd_sim::input::Override;
use asgd_sim::run::simulate;
use asgd_sim::scenario::{self, Scenario};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

const LEARNERS: usize = 16;
const EPOCHS: u64 = 1;

fn load(name: &str) -> Scenario {
    let overrides = [
        Override::parse(&format!("cluster.learners={LEARNERS}")).expect("override"),
        Override::parse(&format!("workload.epochs={EPOCHS}")).expect("override"),
    ];
    scenario::load(&format!("builtin:{name}"), &overrides)
        .unwrap_or_else(|e| panic!("loading builtin:{name}: {e}"))
}

fn downpour(c: &mut Criterion) {
    let mut group = c.benchmark_group("downpour-timing-only");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for name in ["paper-cifar10", "paper-nlc"] {
        let sc = load(name);
        // A run is deterministic, so one run tells how many events every run handles.
        let events = simulate(&sc, ()).expect("scenario runs").events;
        eprintln!("{name}, p = {LEARNERS}, {EPOCHS} epoch: {events} events per run");
        group.throughput(Throughput::Elements(events));
        group.bench_function(format!("{name}/p{LEARNERS}/{EPOCHS}-epoch"), |b| {
            b.iter(|| simulate(black_box(&sc), ()).expect("scenario runs").events)
        });
    }
    group.finish();
}

fn cluster(c: &mut Criterion) {
    let mut group = c.benchmark_group("cluster");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for p in [16, 64, 256, 1024] {
        let sets = [
            format!("cluster.learners={p}"),
            format!("workload.dataset.train_samples={}", p * 20 * 128),
            "devices.jitter.std_s=0".to_string(),
        ];
        let overrides: Vec<Override> = sets
            .iter()
            .map(|s| Override::parse(s).expect("override"))
            .collect();
        let sc = scenario::load("builtin:cluster", &overrides).expect("builtin:cluster loads");
        let iterations = sc.iterations_per_epoch * sc.file.workload.epochs;
        group.throughput(Throughput::Elements(iterations));
        group.bench_function(format!("p{p}/20-iterations-per-learner"), |b| {
            b.iter(|| simulate(black_box(&sc), ()).expect("scenario runs").events)
        });
    }
    group.finish();
}

criterion_group!(benches, downpour, cluster);
criterion_main!(benches);
