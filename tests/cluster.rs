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

#[test]
fn shipped_scaling_report_is_what_its_sweep_gives_and_no_faster_than_the_server_nic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let o = asgd(&[
        "sweep",
        "scenarios/sweeps/cluster-cifar10.toml",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    stdout(&o);
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("figures/cluster-cifar10/points.csv"),
    )
    .unwrap();
    let fresh = std::fs::read_to_string(out.join("report/points.csv")).unwrap();
    assert_eq!(
        fresh, shipped,
        "figures/cluster-cifar10/ is stale: rerun its sweep"
    );
    // Every pull and every push crosses the server host's one NIC (12.5 GB/s each way): an
    // epoch can take no less than the bytes of one direction over it.
    for p in [16, 32, 64, 128, 256, 512, 1024] {
        let text =
            std::fs::read_to_string(out.join(format!("points/learners={p}/summary.json"))).unwrap();
        let s: serde_json::Value = serde_json::from_str(&text).unwrap();
        let model = 4.0 * s["params"].as_f64().unwrap();
        let one_way = s["bytes_moved"].as_f64().unwrap() / 2.0 - p as f64 * model;
        let epoch = s["epoch_time_s"].as_f64().unwrap();
        assert!(epoch >= one_way / 12.5e9, "p = {p}: {epoch} s");
    }
}
