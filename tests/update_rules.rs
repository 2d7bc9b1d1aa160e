//! Downpour's variants, each pinned by an exact answer: staleness-aware ASGD with one learner
//! (staleness 0) is plain Downpour, DC-ASGD with lambda = 0 is plain Downpour, in the simulator
//! and in the real backend.

use asgd_sim::real;
use asgd_sim::run;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

mod common;

use common::quick;

fn simulated(sets: &[&str]) -> (Vec<f32>, f64) {
    let r = run::simulate(&quick(sets), ()).unwrap();
    (r.parameters, r.summary.epoch_time_s)
}

fn really(sets: &[&str]) -> Vec<f32> {
    let stop = AtomicBool::new(false);
    let r = real::run(&quick(sets), (), &stop).unwrap();
    assert!(r.stopped.is_none());
    r.parameters
}

#[test]
fn staleness_aware_with_one_learner_is_downpour_bit_for_bit() {
    let one = "cluster.learners=1";
    let (plain, t_plain) = simulated(&[one]);
    let (aware, t_aware) = simulated(&[one, "algorithm.kind=staleness-aware"]);
    assert_eq!(plain, aware);
    assert_eq!(t_plain, t_aware);
    assert_eq!(
        really(&[one]),
        really(&[one, "algorithm.kind=staleness-aware"])
    );
    // With four learners updates are stale and the rate is cut: the runs part.
    let (plain4, _) = simulated(&["cluster.learners=4"]);
    let (aware4, _) = simulated(&["cluster.learners=4", "algorithm.kind=staleness-aware"]);
    assert_ne!(plain4, aware4);
}

#[test]
fn dc_asgd_with_lambda_zero_is_downpour_bit_for_bit() {
    // DC-ASGD's shards do more memory work per update (they keep each learner's copy), so with
    // several learners the updates interleave differently; with one they cannot.
    let dc = ["algorithm.kind=dc-asgd", "algorithm.dc-asgd.lambda=0"];
    let one = "cluster.learners=1";
    let (plain, _) = simulated(&[one]);
    let (zero, _) = simulated(&[one, dc[0], dc[1]]);
    assert_eq!(plain, zero);
    assert_eq!(really(&[one]), really(&[one, dc[0], dc[1]]));
    // With four learners the same timing, with and without compensation, parts the runs.
    let four = "cluster.learners=4";
    let (zero4, t0) = simulated(&[four, dc[0], dc[1]]);
    let (comp4, t2) = simulated(&[four, dc[0], "algorithm.dc-asgd.lambda=2"]);
    assert_eq!(t0, t2);
    assert_ne!(zero4, comp4);
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_asgd-sim"))
}

#[test]
fn dc_asgd_without_lambda_is_bad_input() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = bin()
        .args(["run"])
        .arg(root.join("scenarios/quick.toml"))
        .args(["--set", "algorithm.kind=dc-asgd", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("algorithm.dc-asgd.lambda"), "{err}");
}
