//! `asgd-sim testbed` through the real binary: namespaces, veth pairs and tc on this machine.
//! On the fair (per-host htb classes) switch, concurrent TCP flows finish when max-min sharing
//! at the measured goodputs says; on the FIFO one the total still holds; a Ctrl-C tears the
//! testbed down; nothing outlives a run.
//!
//! Needs root and network namespaces; without them the tests that build one say that they
//! skipped and why. `ASGD_SIM_REQUIRE_NETNS=1` (as `.ci/run` sets) makes them required.

mod common;

use common::assert_bad_input;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_asgd-sim");
/// One testbed at a time: their traffic shares this machine's cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Why a testbed cannot be built here, if it cannot.
fn cannot_build() -> Option<String> {
    let root = common::is_root();
    if !root {
        return Some("not root".into());
    }
    let name = format!("asgdcheck{}", std::process::id());
    let made = Command::new("ip")
        .args(["netns", "add", &name])
        .output()
        .is_ok_and(|o| o.status.success());
    if !made {
        return Some("`ip netns add` fails here (no iproute2, or no namespaces)".into());
    }
    let _ = Command::new("ip").args(["netns", "del", &name]).output();
    None
}

/// Whether to go on; says so when skipping, fails when namespaces are required.
fn can_build(test: &str) -> bool {
    match cannot_build() {
        None => true,
        Some(why) if std::env::var_os("ASGD_SIM_REQUIRE_NETNS").is_none() => {
            eprintln!("skipped {test}: cannot build a testbed here: {why}");
            false
        }
        Some(why) => panic!("ASGD_SIM_REQUIRE_NETNS is set, but {why}"),
    }
}

fn testbed(out: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("testbed").args(args).arg("--out").arg(out).arg("-q");
    c
}

fn probe(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("probe.json")).unwrap()).unwrap()
}

/// The namespaces the run of process `pid` made that are still there.
fn left_by(pid: u32) -> Vec<String> {
    let o = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("asgd{pid}-")))
        .map(str::to_string)
        .collect()
}

fn succeeded(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn on_the_fair_switch_concurrent_flows_finish_as_max_min_says() {
    if !can_build("on_the_fair_switch_concurrent_flows_finish_as_max_min_says") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fair");
    // The last starts while the others run: max-min shares among the flows present.
    let child = testbed(&out, &["--megabytes", "1,2,4,8", "--start-ms", "0,0,0,100"])
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    succeeded(&o);
    assert_eq!(left_by(pid), Vec::<String>::new(), "torn down");
    let p = probe(&out);
    assert_eq!(p["sharing"], "fair");
    assert_eq!(p["target"], "server");
    for h in p["hosts"].as_array().unwrap() {
        let g = h["goodput_mbit_per_s"].as_f64().unwrap();
        // Below the port's 100 Mbit/s by the headers, and not by much more.
        assert!((85.0..100.0).contains(&g), "goodput {g} Mbit/s: {h}");
        let l = h["one_way_latency_us"].as_f64().unwrap();
        assert!(l > 0.0 && l < 5_000.0, "latency {l} us");
    }
    let flows = p["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 4);
    for f in flows {
        let e = f["error"].as_f64().unwrap();
        assert!(
            e.abs() < 0.15,
            "a flow off max-min by {:.1}%: {f}",
            e * 100.0
        );
    }
    // The smallest flow ends first and the largest last, as max-min has them.
    let t: Vec<f64> = flows
        .iter()
        .map(|f| f["measured_s"].as_f64().unwrap())
        .collect();
    assert!(t[0] < t[1] && t[1] < t[2] && t[2] < t[3], "{t:?}");
}

#[test]
fn on_the_fifo_switch_the_total_holds() {
    if !can_build("on_the_fifo_switch_the_total_holds") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fifo");
    let o = testbed(&out, &["--sharing", "fifo", "--megabytes", "1,2,4,8"])
        .output()
        .unwrap();
    succeeded(&o);
    let p = probe(&out);
    assert_eq!(p["sharing"], "fifo");
    let last = &p["flows"][3];
    let e = last["error"].as_f64().unwrap();
    assert!(
        e.abs() < 0.10,
        "the last flow, when all bytes are through: {last}"
    );
}

#[test]
fn ctrl_c_tears_the_testbed_down_and_writes_nothing() {
    if !can_build("ctrl_c_tears_the_testbed_down_and_writes_nothing") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("stopped");
    let child = testbed(&out, &["--megabytes", "30,30,30"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Until its namespaces exist, then a little into the measurement.
    for _ in 0..100 {
        if !left_by(pid).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    send_signal(pid, "-INT");
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("interrupted; the testbed was torn down"),
        "{err}"
    );
    assert_eq!(left_by(pid), Vec::<String>::new());
    assert!(!out.exists());
}

fn send_signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn a_topology_without_one_switch_is_refused_before_anything_is_built() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("none");
    let o = testbed(&out, &["builtin:power8-k80"]).output().unwrap();
    assert_bad_input(&o, &out, &["exactly one net-switch node, and has 0"]);
    let o = testbed(&out, &["--megabytes", "1000,1000"])
        .output()
        .unwrap();
    assert_bad_input(&o, &out, &["bounded to 120 s"]);
    let o = testbed(&out, &["--to", "nowhere"]).output().unwrap();
    assert_bad_input(&o, &out, &["no such host; the hosts are learner0"]);
    let o = testbed(&out, &["--megabytes", "1,1", "--start-ms", "0"])
        .output()
        .unwrap();
    assert_bad_input(&o, &out, &["1 start times for 2 flows"]);
    // validate --backend processes refuses, before building anything, what cannot run there.
    let validate = |args: &[&str]| {
        Command::new(BIN)
            .args(["validate", "scenarios/quick.toml", "-q"])
            .args(args)
            .arg("--out")
            .arg(&out)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let o = validate(&[
        "--backend",
        "processes",
        "--host",
        "topologies/power8-k80.toml",
    ]);
    assert_bad_input(&o, &out, &["a host file is for --backend threads"]);
    let o = validate(&["--backend", "processes", "--set", "algorithm.kind=hogwild"]);
    assert_bad_input(&o, &out, &["hogwild"]);
    let o = validate(&["--backend", "processes", "--set", "cluster.learners=5"]);
    assert_bad_input(&o, &out, &["cluster.learners"]);
    // And the testbed's flags are refused without it.
    let o = validate(&["--sharing", "fifo"]);
    assert_bad_input(&o, &out, &["--sharing fifo: is for --backend processes"]);
}

#[test]
fn validate_on_the_testbed_runs_processes_across_namespaces_and_simulates_the_measured_topology() {
    if !can_build("validate_on_the_testbed_runs_processes_across_namespaces") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("validate");
    // Communication-bound: a softmax model's 123 kB of parameters take about 10 ms each way
    // through the server's 100 Mbit/s port; its gradient takes well under a millisecond.
    let v = validate_on_testbed(&out, &["cluster.learners=1,2"]);
    assert!(
        v["real_on"]
            .as_str()
            .unwrap()
            .contains("processes backend on the testbed")
    );
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for p in points {
        let real = p["real"]["epoch_time_s"].as_f64().unwrap();
        // 32 iterations, each a pull and a push of 123 kB through 100 Mbit/s: at least 0.3 s.
        assert!(real > 0.3, "{p}");
        assert!(p["staleness_ks"].is_object(), "{p}");
    }
    // With one learner nothing overlaps and the model holds (within 5 % on a steady machine).
    // A busy machine only slows the one real run, so the simulation comes out fast: -20 %
    // often, -40.8 % once in about ten runs. A shaper that lets messages through at memory
    // speed makes the real run fast instead, the simulation twice too slow: that side stays
    // tight.
    let e = points[0]["epoch_time_error"].as_f64().unwrap();
    assert!(
        (-0.6..0.25).contains(&e),
        "p = 1 epoch-time error {:.1}%",
        e * 100.0
    );
    // The topology simulated is the testbed's with measured ports.
    let t = std::fs::read_to_string(out.join("testbed.toml")).unwrap();
    assert!(t.contains("as measured on the testbed"), "{t}");
    let hosts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("hosts.json")).unwrap()).unwrap();
    assert_eq!(hosts.as_array().unwrap().len(), 4);
}

/// `validate quick.toml --backend processes` on the default testbed, shrunk to one epoch of a
/// softmax model on 1,024 samples, with `sets`, into `out`: checks that it succeeded and tore
/// the testbed down, and returns its validation.json.
fn validate_on_testbed(out: &Path, sets: &[&str]) -> serde_json::Value {
    let mut c = Command::new(BIN);
    c.args(["validate", "scenarios/quick.toml", "--backend", "processes"])
        .args(["--repeats", "1", "-q", "--out"])
        .arg(out)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for s in [
        "workload.model=softmax",
        "workload.epochs=1",
        "workload.dataset.train_samples=1024",
        "workload.dataset.test_samples=64",
        "workload.eval_train_samples=64",
    ]
    .iter()
    .chain(sets)
    {
        c.args(["--set", s]);
    }
    let child = c.spawn().unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    succeeded(&o);
    assert_eq!(left_by(pid), Vec::<String>::new(), "torn down");
    serde_json::from_str(&std::fs::read_to_string(out.join("validation.json")).unwrap()).unwrap()
}

#[test]
fn validate_on_the_testbed_runs_a_ring_of_learners_without_shards() {
    if !can_build("validate_on_the_testbed_runs_a_ring_of_learners_without_shards") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let v = validate_on_testbed(
        &tmp.path().join("ring"),
        &["algorithm.kind=ssgd-allreduce", "cluster.learners=2"],
    );
    let p = &v["points"][0];
    assert_eq!(p["shards"], 0, "{p}");
    // 16 rounds, each two steps of half the 123 kB vector from one learner host to the other
    // through 100 Mbit/s ports: at least 0.157 s.
    let real = p["real"]["epoch_time_s"].as_f64().unwrap();
    assert!(real > 0.15, "{p}");
    // Both learners move in step, so the model holds closely (5-11 % on an otherwise idle
    // machine: the calibrated gradient is short, and the model has no per-round control
    // message). A busy machine only slows the real run (-29 % with a busy loop beside the
    // suite), so only the simulation's slow side stays tight.
    let e = p["epoch_time_error"].as_f64().unwrap();
    assert!(
        (-0.6..0.25).contains(&e),
        "p = 2 epoch-time error {:.1}%",
        e * 100.0
    );
    assert_eq!(p["staleness_ks"]["statistic"], 0.0, "{p}");
}

/// A slow link is real on the testbed: tc sets the slowed learner's port to its rate over the
/// factor for that point's runs (and back for the next), and the simulator, slowing the same
/// link of the calibrated testbed, follows it.
#[test]
fn validate_on_the_testbed_shapes_a_slowed_learners_port_and_the_simulator_follows() {
    if !can_build("validate_on_the_testbed_shapes_a_slowed_learners_port") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let v = validate_on_testbed(
        &tmp.path().join("slow"),
        &["cluster.learners=1", "faults.link_slowdown=1,4"],
    );
    let points = v["points"].as_array().unwrap();
    let epoch = |i: usize, side: &str| points[i][side]["epoch_time_s"].as_f64().unwrap();
    // One learner, its every pull and push through its own port: 4 times slower, the epoch
    // is mostly that much longer (3.85 times here).
    let real = epoch(1, "real") / epoch(0, "real");
    assert!(
        real > 2.5,
        "the slowed port's epoch is {real} times as long"
    );
    // As for one learner, a busy machine slows only the real run: the slow side stays tight.
    let e = points[1]["epoch_time_error"].as_f64().unwrap();
    assert!(
        (-0.6..0.25).contains(&e),
        "slowed link epoch-time error {:.1}%",
        e * 100.0
    );
}
