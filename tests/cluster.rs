//! The shipped cluster (`scenarios/cluster.toml` on the `cluster` generator) and `asgd-sim
//! bench` on any scenario, through the real binary.

mod common;

use common::assert_bad_input;
use std::process::{Command, Output};

fn asgd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_asgd-sim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cannot start asgd-sim")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `run scenarios/cluster.toml` with each of `sets` as `--set`, into `out`.
fn run_cluster(sets: &[&str], out: &std::path::Path) -> Output {
    let mut args = vec![
        "run",
        "scenarios/cluster.toml",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    asgd(&args)
}

#[test]
fn cluster_runs_64_learners_each_through_the_server_nic_with_every_byte_accounted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // 64 learners on 16 nodes, 8 mini-batches each.
    let o = run_cluster(
        &[
            "cluster.learners=64",
            "workload.dataset.train_samples=65536",
        ],
        &out,
    );
    stdout(&o);
    let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s["learners"], 64);
    assert_eq!(s["shards"], 16);
    let learners = s["per_learner"].as_array().unwrap();
    let gpus: Vec<&str> = learners
        .iter()
        .map(|l| l["gpu"].as_str().unwrap())
        .collect();
    // The first p GPUs, node by node.
    assert_eq!(
        gpus[..5],
        [
            "node0-gpu0",
            "node0-gpu1",
            "node0-gpu2",
            "node0-gpu3",
            "node1-gpu0"
        ]
    );
    assert_eq!(gpus[63], "node15-gpu3");
    let iterations: u64 = learners
        .iter()
        .map(|l| l["iterations"].as_u64().unwrap())
        .sum();
    assert_eq!(iterations, 512);
    // Each learner pulls the whole model once before its first gradient, then pushes and pulls
    // it once per iteration, 4 bytes per parameter each time; the pulls that follow the last
    // iterations may still be on their way when the epoch ends.
    let model = 4 * s["params"].as_u64().unwrap();
    let moved = s["bytes_moved"].as_u64().unwrap();
    assert!(
        (2 * iterations * model..=(2 * iterations + 64) * model).contains(&moved),
        "{moved}"
    );
}

#[test]
fn bench_takes_any_scenario_and_reports_wall_per_iteration() {
    let o = asgd(&[
        "bench",
        "scenarios/cluster.toml",
        "--learners",
        "32",
        "--set",
        "workload.dataset.train_samples=8192",
        "--repeat",
        "1",
    ]);
    let line = stdout(&o);
    assert!(
        line.starts_with("timing-only downpour, cluster, p = 32, 1 epoch (64 iterations): "),
        "{line}"
    );
    assert!(
        line.contains(" events/s, ") && line.trim_end().ends_with("us per iteration (best of 1)"),
        "{line}"
    );
    // The paper machine stays the default.
    let line = stdout(&asgd(&[
        "bench",
        "--learners",
        "2",
        "--epochs",
        "1",
        "--repeat",
        "1",
    ]));
    assert!(
        line.starts_with("timing-only downpour, paper-cifar10, p = 2, 1 epoch (391 iterations): "),
        "{line}"
    );
}

#[test]
fn cluster_and_bench_refuse_what_the_machine_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = run_cluster(&["cluster.learners=1025"], &out);
    assert_bad_input(
        &o,
        &out,
        &["cluster.learners", "1025 learners", "1024 GPUs"],
    );
    let o = run_cluster(&["machine.generator.nodes_per_leaf=0"], &out);
    assert_bad_input(
        &o,
        &out,
        &["machine.generator.nodes_per_leaf", "must be from 1 to 4096"],
    );
    // A machine big enough, but a run that would take hours.
    let sets = [
        "machine.generator.nodes=2048",
        "cluster.learners=8192",
        "cluster.shards=16",
    ];
    let o = run_cluster(&sets, &out);
    assert_bad_input(&o, &out, &["131072 learner-shard pairs", "limit of 65536"]);
    let o = asgd(&["bench", "scenarios/cluster.toml", "--learners", "2000"]);
    assert_bad_input(&o, &out, &["2000 learners", "allowed: 1 to 1024"]);
}
