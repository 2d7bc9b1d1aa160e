//! Stale synchronous parallel in both backends: a bound the run never reaches is Downpour bit
//! for bit, no update is staler than the bound allows, and a bound of 0 runs the learners in
//! lock step.

use asgd_sim::algorithm::ssp::max_staleness;
use asgd_sim::real;
use asgd_sim::report::summary::Summary;
use asgd_sim::run;
use asgd_sim::scenario::Scenario;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

mod common;

use common::quick;

fn ssp(bound: u64, sets: &[&str]) -> Scenario {
    let kind = [
        "algorithm.kind=ssp".to_string(),
        format!("algorithm.ssp.staleness_bound={bound}"),
    ];
    let all: Vec<&str> = kind
        .iter()
        .map(String::as_str)
        .chain(sets.iter().copied())
        .collect();
    quick(&all)
}

/// A summary as JSON without the fields that name the scenario's kind.
fn measured(s: &Summary) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap();
    let m = v.as_object_mut().unwrap();
    m.remove("algorithm");
    m.remove("scenario");
    v
}

/// Uneven learners: compute times that vary by a third, so the fast ones run ahead.
const UNEVEN: [&str; 2] = [
    "devices.jitter.std_s=0.0004",
    "workload.gradients=\"timing-only\"",
];

#[test]
fn a_staleness_bound_beyond_the_run_is_downpour_bit_for_bit() {
    // 64 iterations in all: no learner can run 1,000 ahead.
    for sets in [
        &["cluster.learners=4"][..],
        &["cluster.learners=8", UNEVEN[0], UNEVEN[1]],
    ] {
        let downpour = run::simulate(&quick(sets), ()).unwrap();
        let bounded = run::simulate(&ssp(1000, sets), ()).unwrap();
        assert_eq!(measured(&downpour.summary), measured(&bounded.summary));
        assert_eq!(downpour.parameters, bounded.parameters);
        assert_eq!(downpour.curve, bounded.curve);
    }
    // The real backend with one learner is deterministic: the same parameters to the bit.
    let stop = AtomicBool::new(false);
    let one = ["cluster.learners=1"];
    let downpour = real::run(&quick(&one), (), &stop).unwrap();
    let bounded = real::run(&ssp(1000, &one), (), &stop).unwrap();
    assert!(downpour.stopped.is_none() && bounded.stopped.is_none());
    assert_eq!(downpour.parameters, bounded.parameters);
}

#[test]
fn no_update_is_staler_than_the_bound_allows() {
    for p in [4usize, 8] {
        let learners = format!("cluster.learners={p}");
        let sets = [learners.as_str(), UNEVEN[0], UNEVEN[1]];
        let free = run::simulate(&quick(&sets), ())
            .unwrap()
            .summary
            .staleness
            .max;
        for s in [0, 1, 2] {
            let got = run::simulate(&ssp(s, &sets), ()).unwrap().summary;
            let allowed = max_staleness(p, s);
            assert!(
                got.staleness.max <= allowed,
                "p = {p}, s = {s}: staleness {} over the bound {allowed}",
                got.staleness.max
            );
            assert!(got.breakdown.wait > 0.0, "p = {p}, s = {s}: nobody waited");
        }
        // Unbounded, the uneven learners do run further apart than s = 0 allows.
        assert!(
            free > max_staleness(p, 0),
            "p = {p}: Downpour's staleness {free}"
        );
    }
}

#[test]
fn the_real_backend_keeps_to_the_bound() {
    let stop = AtomicBool::new(false);
    for s in [0, 1] {
        let r = real::run(&ssp(s, &["cluster.learners=4"]), (), &stop).unwrap();
        assert!(r.stopped.is_none());
        let allowed = max_staleness(4, s);
        let got = &r.summary;
        assert!(
            got.staleness.max <= allowed,
            "s = {s}: staleness {} over {allowed}",
            got.staleness.max
        );
        let done: u64 = got.per_learner.iter().map(|l| l.iterations).sum();
        assert_eq!(done, 64, "s = {s}");
    }
}

#[test]
fn a_bound_of_zero_runs_the_learners_in_lock_step() {
    // 64 iterations over 4 uneven learners: bulk-synchronous rounds give each 16.
    let sets = ["cluster.learners=4", UNEVEN[0], UNEVEN[1]];
    let got = run::simulate(&ssp(0, &sets), ()).unwrap().summary;
    let each: Vec<u64> = got.per_learner.iter().map(|l| l.iterations).collect();
    assert_eq!(each, vec![16; 4]);
    assert!(got.staleness.max <= 3);
    let free = run::simulate(&quick(&sets), ()).unwrap().summary;
    let each: Vec<u64> = free.per_learner.iter().map(|l| l.iterations).collect();
    assert_ne!(
        each,
        vec![16; 4],
        "Downpour's uneven learners do not keep step"
    );
    assert!(got.epoch_time_s > free.epoch_time_s);
    // With one learner there is nobody to wait for: s = 0 is Downpour, sequential SGD.
    let one = ["cluster.learners=1"];
    let downpour = run::simulate(&quick(&one), ()).unwrap();
    let bounded = run::simulate(&ssp(0, &one), ()).unwrap();
    assert_eq!(measured(&downpour.summary), measured(&bounded.summary));
    assert_eq!(downpour.parameters, bounded.parameters);
}

#[test]
fn ssp_without_a_bound_is_bad_input() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_asgd-sim"))
        .arg("run")
        .arg(root.join("scenarios/quick.toml"))
        .args(["--set", "algorithm.kind=ssp", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("algorithm.ssp.staleness_bound"), "{err}");
}
