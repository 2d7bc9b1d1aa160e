//! End-to-end tests of the `asgd-sim` command line: they run the real binary and pin what a user
//! sees (exit status, messages, files written, the contents of summary.json and the trace).

mod common;

use common::{assert_bad_input, partial_entries};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_asgd-sim");

/// A path inside the repository.
fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The repository's topology, as an absolute path.
fn repo_topology() -> PathBuf {
    repo("topologies/power8-k80.toml")
}

/// Runs the binary with `args` in the repository root.
fn asgd(args: &[&str]) -> Output {
    asgd_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// Runs the binary with `args` in `cwd`.
fn asgd_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("cannot start asgd-sim")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Asserts that a run succeeded, showing its output otherwise.
fn assert_success(o: &Output) {
    assert!(
        o.status.success(),
        "asgd-sim failed with {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// A shipped scenario's text with its topology pointing at the repository's file by absolute
/// path, so that it can be written anywhere.
fn scenario_text(name: &str) -> String {
    let text = std::fs::read_to_string(repo(&format!("scenarios/{name}.toml"))).unwrap();
    let rel = "\"../topologies/power8-k80.toml\"";
    assert!(text.contains(rel), "scenario {name} no longer names {rel}");
    text.replace(rel, &format!("{:?}", path_str(&repo_topology())))
}

/// Replaces exactly one occurrence of `from` in `text`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "expected exactly one `{from}` in the file"
    );
    text.replacen(from, to, 1)
}

/// 1-based number of the (first) line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line contains `{needle}`"))
        + 1
}

/// Writes `text` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `run SCENARIO --out OUT ARGS...` quietly.
fn run_scenario(scenario: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", path_str(scenario), "--out", path_str(out), "-q"];
    args.extend_from_slice(extra);
    asgd(&args)
}

/// Runs a scenario that must succeed and returns its summary.json.
fn summary_of(scenario: &str, out: &Path, extra: &[&str]) -> Value {
    let o = run_scenario(&repo(scenario), out, extra);
    assert_success(&o);
    read_json(&out.join("summary.json"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn f64_at(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {v}"))
}

fn u64_at(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` is not an integer in {v}"))
}

// ---------------------------------------------------------------------------------------------
// Bad input: exit status 2, a located message naming the key and what is allowed, no output.
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_scenario_key_is_rejected_with_file_line_and_allowed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let text = replace_once(
        &scenario_text("paper-cifar10"),
        "learners = 16\n",
        "learners = 16\nlerners = 4\n",
    );
    let line = line_of(&text, "lerners = 4");
    let scenario = write(dir.path(), "s.toml", &text);
    let out = dir.path().join("out");
    let o = run_scenario(&scenario, &out, &[]);
    assert_bad_input(
        &o,
        &out,
        &[
            &format!("{}:{line}:1:", scenario.display()),
            "cluster.lerners",
            "unknown field `lerners`",
            "expected one of `learners`",
        ],
    );
}

#[test]
fn wrong_type_in_scenario_names_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = replace_once(
        &scenario_text("paper-cifar10"),
        "learners = 16\n",
        "learners = \"four\"\n",
    );
    let line = line_of(&text, "learners = \"four\"");
    let scenario = write(dir.path(), "s.toml", &text);
    let out = dir.path().join("out");
    let o = run_scenario(&scenario, &out, &[]);
    assert_bad_input(
        &o,
        &out,
        &[
            &format!("{}:{line}:", scenario.display()),
            "key `cluster.learners`",
            "invalid type",
            "expected a whole number from 0 to",
        ],
    );
}

#[test]
fn wrong_type_in_set_override_names_the_override_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run_scenario(
        &repo("scenarios/paper-cifar10.toml"),
        &out,
        &["--set", "cluster.learners=abc"],
    );
    assert_bad_input(
        &o,
        &out,
        &[
            "error: --set cluster.learners=abc: ",
            "key `cluster.learners`",
            "invalid type",
            "expected a whole number from 0 to",
        ],
    );
}

#[test]
fn negative_link_bandwidth_in_topology_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let link = r#"{ between = ["phb0", "tree-root"], class = "pcie-host" }"#;
    let topo_text = replace_once(
        &std::fs::read_to_string(repo_topology()).unwrap(),
        link,
        r#"{ between = ["phb0", "tree-root"], class = "pcie-host", bandwidth_gb_per_s = -1 }"#,
    );
    let line = line_of(&topo_text, "bandwidth_gb_per_s = -1");
    let topo = write(dir.path(), "bad-topology.toml", &topo_text);
    let scenario = write(
        dir.path(),
        "s.toml",
        &scenario_text("paper-cifar10").replace(
            path_str(&repo_topology()),
            path_str(&topo), // absolute, no characters that TOML escapes
        ),
    );
    let out = dir.path().join("out");
    let needles = [
        format!("{}:{line}:", topo.display()),
        "bandwidth_gb_per_s".to_string(),
        "must be a positive number".to_string(),
        "-1".to_string(),
    ];
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    // Through a scenario, and on its own with the topology command.
    let o = run_scenario(&scenario, &out, &[]);
    assert_bad_input(&o, &out, &needles);
    let o = asgd(&["topology", path_str(&topo)]);
    assert_bad_input(&o, &out, &needles);
}

#[test]
fn negative_class_bandwidth_in_topology_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(repo_topology()).unwrap();
    // The only bandwidth of class pcie-host, used by one link.
    let class_at = original.find("[link_class.pcie-host]").unwrap();
    let bw_at = class_at
        + original[class_at..]
            .find("bandwidth_gb_per_s = 12.0")
            .unwrap();
    let topo_text = format!(
        "{}bandwidth_gb_per_s = -1{}",
        &original[..bw_at],
        &original[bw_at + "bandwidth_gb_per_s = 12.0".len()..]
    );
    let class_line = line_of(&topo_text, "bandwidth_gb_per_s = -1");
    let link_line = line_of(&topo_text, r#"class = "pcie-host""#);
    let topo = write(dir.path(), "bad-topology.toml", &topo_text);
    let out = dir.path().join("out");
    let o = asgd(&["topology", path_str(&topo)]);
    assert_bad_input(
        &o,
        &out,
        &["bandwidth_gb_per_s", "must be a positive number", "-1"],
    );
    // Either the line of the bad value or the line of the link that uses it will do.
    let err = stderr(&o);
    let at_class = format!("{}:{class_line}:", topo.display());
    let at_link = format!("{}:{link_line}:", topo.display());
    assert!(
        err.contains(&at_class) || err.contains(&at_link),
        "stderr names no line (expected `{at_class}` or `{at_link}`):\n{err}"
    );
}

#[test]
fn gpu_not_connected_to_host_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let topo_text = replace_once(
        &std::fs::read_to_string(repo_topology()).unwrap(),
        "  { between = [\"k80-7-switch\", \"gpu15\"], class = \"pcie-board\" },\n",
        "",
    );
    let topo = write(dir.path(), "cut.toml", &topo_text);
    let scenario = write(
        dir.path(),
        "s.toml",
        &scenario_text("paper-cifar10").replace(path_str(&repo_topology()), path_str(&topo)),
    );
    let out = dir.path().join("out");
    let o = run_scenario(&scenario, &out, &[]);
    assert_bad_input(
        &o,
        &out,
        &[
            &format!("{}:", topo.display()),
            "gpu `gpu15`",
            "not connected to the host",
        ],
    );
}

#[test]
fn more_learners_than_gpus_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run_scenario(
        &repo("scenarios/paper-cifar10.toml"),
        &out,
        &["--set", "cluster.learners=17"],
    );
    assert_bad_input(
        &o,
        &out,
        &[
            "--set cluster.learners=17",
            "key `cluster.learners`",
            "only 16 GPUs",
            "allowed: 1 to 16",
        ],
    );
}

#[test]
fn missing_scenario_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("no-such-scenario.toml");
    let out = dir.path().join("out");
    let o = run_scenario(&scenario, &out, &[]);
    assert_bad_input(&o, &out, &[&format!("{}: cannot read", scenario.display())]);
}

#[test]
fn missing_topology_file_is_named_with_the_scenario_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario_text("paper-cifar10").replace(
        &format!("{:?}", path_str(&repo_topology())),
        "\"no-such-topology.toml\"",
    );
    let line = line_of(&text, "no-such-topology.toml");
    let scenario = write(dir.path(), "s.toml", &text);
    let out = dir.path().join("out");
    let o = run_scenario(&scenario, &out, &[]);
    // A relative topology path is taken from the scenario's directory.
    assert_bad_input(
        &o,
        &out,
        &[
            &format!("{}:{line}:", scenario.display()),
            "key `machine.topology`",
            "cannot read topology file",
            path_str(&dir.path().join("no-such-topology.toml")),
        ],
    );
}

#[test]
fn set_without_equals_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run_scenario(
        &repo("scenarios/paper-cifar10.toml"),
        &out,
        &["--set", "cluster.learners"],
    );
    assert_bad_input(&o, &out, &["--set cluster.learners: ", "KEY=VALUE"]);
}

// ---------------------------------------------------------------------------------------------
// Runs.
// ---------------------------------------------------------------------------------------------

#[test]
fn same_seed_gives_identical_summary_and_trace_other_seed_differs() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = repo("scenarios/paper-cifar10.toml");
    let run = |tag: &str, extra: &[&str]| -> (Vec<u8>, Option<Vec<u8>>) {
        let out = dir.path().join(format!("out-{tag}"));
        let trace = dir.path().join(format!("trace-{tag}.json"));
        let mut args = vec!["--set", "workload.epochs=1", "--trace", path_str(&trace)];
        args.extend_from_slice(extra);
        let o = run_scenario(&scenario, &out, &args);
        assert_success(&o);
        (
            std::fs::read(out.join("summary.json")).unwrap(),
            Some(std::fs::read(&trace).unwrap()),
        )
    };
    let (summary_a, trace_a) = run("a", &[]);
    let (summary_b, trace_b) = run("b", &[]);
    assert!(summary_a == summary_b, "same seed, different summary.json");
    assert!(trace_a == trace_b, "same seed, different trace");

    let (summary_c, trace_c) = run("c", &["--set", "seed=2"]);
    let a: Value = serde_json::from_slice(&summary_a).unwrap();
    let c: Value = serde_json::from_slice(&summary_c).unwrap();
    assert_eq!(u64_at(&c, "seed"), 2);
    // More than the seed field must change: paper-cifar10 has jitter.
    assert_ne!(
        f64_at(&a, "sim_time_s"),
        f64_at(&c, "sim_time_s"),
        "seed 2 gave the same simulated time as seed 1"
    );
    assert!(trace_a != trace_c, "seed 2 gave the same trace as seed 1");
}

#[test]
fn every_learner_count_from_1_to_16_runs_with_consistent_summary() {
    let dir = tempfile::tempdir().unwrap();
    for p in 1..=16usize {
        let out = dir.path().join(format!("p{p}"));
        let set = format!("cluster.learners={p}");
        let s = summary_of(
            "scenarios/paper-cifar10.toml",
            &out,
            &["--set", &set, "--set", "workload.epochs=1"],
        );
        assert_eq!(u64_at(&s, "learners"), p as u64, "p = {p}");
        assert_eq!(s["per_learner"].as_array().unwrap().len(), p, "p = {p}");
        assert_eq!(u64_at(&s, "epochs"), 1);

        let epoch = f64_at(&s, "epoch_time_s");
        assert!(epoch > 0.0, "p = {p}: epoch_time_s = {epoch}");
        let b = &s["breakdown"];
        let parts = ["compute", "pull", "push", "server_update", "wait"];
        assert_eq!(b.as_object().unwrap().len(), parts.len(), "p = {p}: {b}");
        let sum: f64 = parts.iter().map(|k| f64_at(b, k)).sum();
        assert!(
            ((sum - epoch) / epoch).abs() <= 1e-9,
            "p = {p}: breakdown sums to {sum}, epoch_time_s is {epoch}"
        );
        for k in parts {
            assert!(f64_at(b, k) >= 0.0, "p = {p}: breakdown.{k} < 0");
        }

        let iterations = u64_at(&s, "iterations_per_epoch") * u64_at(&s, "epochs");
        let per_learner: u64 = s["per_learner"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| u64_at(l, "iterations"))
            .sum();
        assert_eq!(per_learner, iterations, "p = {p}");
        if p == 1 {
            assert_eq!(
                u64_at(&s["staleness"], "max"),
                0,
                "one learner, no staleness"
            );
        }
    }
}

#[test]
fn staleness_histogram_counts_every_applied_update_for_every_learner_count() {
    let dir = tempfile::tempdir().unwrap();
    for p in 1..=16usize {
        let out = dir.path().join(format!("p{p}"));
        let set = format!("cluster.learners={p}");
        let s = summary_of(
            "scenarios/paper-cifar10.toml",
            &out,
            &["--set", &set, "--set", "workload.epochs=1"],
        );
        let iterations = u64_at(&s, "iterations_per_epoch") * u64_at(&s, "epochs");
        let shards = u64_at(&s, "shards");
        let histogram: u64 = s["staleness"]["histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        let applied: u64 = s["per_shard"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sh| u64_at(sh, "updates"))
            .sum();
        assert_eq!(
            histogram, applied,
            "p = {p}: staleness histogram sum vs updates applied by the shards"
        );
        assert_eq!(
            histogram,
            iterations * shards,
            "p = {p}: staleness histogram sum vs iterations x shards"
        );
    }
}

#[test]
fn communication_share_nlc_far_above_cifar_and_grows_with_learners() {
    let dir = tempfile::tempdir().unwrap();
    let share = |scenario: &str, p: usize| -> f64 {
        let out = dir
            .path()
            .join(format!("{}-{p}", scenario.replace('/', "_")));
        let set = format!("cluster.learners={p}");
        let s = summary_of(
            scenario,
            &out,
            &["--set", &set, "--set", "workload.epochs=1"],
        );
        let c = f64_at(&s, "communication_share");
        assert!((0.0..=1.0).contains(&c), "{scenario} p = {p}: share {c}");
        c
    };
    let nlc16 = share("scenarios/paper-nlc.toml", 16);
    let cifar16 = share("scenarios/paper-cifar10.toml", 16);
    let nlc1 = share("scenarios/paper-nlc.toml", 1);
    assert!(nlc16 > 0.9, "paper-nlc p = 16: communication share {nlc16}");
    assert!(
        cifar16 < 0.1,
        "paper-cifar10 p = 16: communication share {cifar16}"
    );
    assert!(
        nlc1 < nlc16,
        "paper-nlc: communication share p = 1 {nlc1} is not below p = 16 {nlc16}"
    );
}

#[test]
fn trace_is_chrome_trace_json_with_learner_and_message_events() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("sub/trace.json");
    let o = run_scenario(
        &repo("scenarios/paper-cifar10.toml"),
        &dir.path().join("out"),
        &[
            "--set",
            "workload.epochs=1",
            "--set",
            "cluster.learners=4",
            "--trace",
            path_str(&trace),
        ],
    );
    assert_success(&o);
    let t = read_json(&trace);
    let events = t["traceEvents"]
        .as_array()
        .expect("traceEvents is an array");
    let learner_x: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "learner")
        .collect();
    assert!(!learner_x.is_empty(), "no complete learner events");
    for e in &learner_x {
        assert!(
            e["ts"].as_f64().is_some() && e["dur"].as_f64().unwrap() >= 0.0,
            "{e}"
        );
        assert!(e["tid"].as_u64().unwrap() < 4, "{e}");
    }
    let names: std::collections::BTreeSet<&str> = learner_x
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains("compute"), "learner activities: {names:?}");

    let begins: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "b" && e["cat"] == "message")
        .collect();
    let ends: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "e" && e["cat"] == "message")
        .collect();
    assert!(!begins.is_empty(), "no async message events");
    assert_eq!(begins.len(), ends.len(), "unmatched message begin/end");
    let mut begin_ts = std::collections::BTreeMap::new();
    for b in &begins {
        begin_ts.insert(b["id"].as_u64().unwrap(), b["ts"].as_f64().unwrap());
    }
    for e in &ends {
        let id = e["id"].as_u64().unwrap();
        let start = begin_ts
            .get(&id)
            .unwrap_or_else(|| panic!("end without begin: {e}"));
        assert!(
            e["ts"].as_f64().unwrap() >= *start,
            "message ends before it begins: {e}"
        );
    }
    // No temporary trace file is left next to it.
    assert_eq!(
        partial_entries(trace.parent().unwrap()),
        Vec::<String>::new()
    );
}

// ---------------------------------------------------------------------------------------------
// The topology command.
// ---------------------------------------------------------------------------------------------

/// Kinds of the nodes declared in DOT output (the second line of each node's label).
fn dot_node_kinds(dot: &str) -> Vec<String> {
    dot.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('"') && !l.contains(" -- "))
        .filter_map(|l| {
            let label = l.split("label=\"").nth(1)?.split('"').next()?;
            label.split("\\n").nth(1).map(str::to_string)
        })
        .collect()
}

#[test]
fn topology_command_prints_dot_and_summaries() {
    let o = asgd(&["topology", "topologies/power8-k80.toml", "--dot"]);
    assert_success(&o);
    let dot = stdout(&o);
    assert!(dot.starts_with("graph \"power8-k80\" {"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    let kinds = dot_node_kinds(&dot);
    assert_eq!(kinds.len(), 58, "node count");
    assert_eq!(kinds.iter().filter(|k| *k == "gpu").count(), 16);
    assert_eq!(dot.lines().filter(|l| l.contains(" -- ")).count(), 57);

    let o = asgd(&["topology", "fat-tree:k=4", "--dot"]);
    assert_success(&o);
    let dot = stdout(&o);
    assert!(dot.starts_with("graph "), "{dot}");
    assert!(dot.contains(" -- "), "{dot}");
    assert!(dot_node_kinds(&dot).iter().any(|k| k == "gpu"), "{dot}");

    let o = asgd(&["topology", "nvlink:mesh=true"]);
    assert_success(&o);
    let summary = stdout(&o);
    assert!(summary.contains("nodes"), "{summary}");
    assert!(summary.contains("links"), "{summary}");
    assert!(summary.contains("gpu"), "{summary}");
    assert!(!summary.contains("graph"), "{summary}");
}

// ---------------------------------------------------------------------------------------------
// Output location.
// ---------------------------------------------------------------------------------------------

#[test]
fn default_output_directory_is_runs_scenario_name_in_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = repo("scenarios/paper-cifar10.toml");
    let o = asgd_in(
        dir.path(),
        &[
            "run",
            path_str(&scenario),
            "-q",
            "--set",
            "workload.epochs=1",
        ],
    );
    assert_success(&o);
    assert_eq!(stdout(&o), "", "-q must print nothing");
    let summary = dir.path().join("runs/paper-cifar10/summary.json");
    let s = read_json(&summary);
    assert_eq!(s["scenario"], "paper-cifar10");
    assert_eq!(
        partial_entries(&dir.path().join("runs")),
        Vec::<String>::new()
    );
    // Nothing was written next to the scenario file.
    assert!(!repo("scenarios/runs").exists());
}

#[test]
fn a_run_whose_stderr_is_a_log_gets_its_progress_as_plain_lines_and_quiet_gets_none() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = repo("scenarios/paper-cifar10.toml");
    let run = |quiet: bool| {
        let out = dir.path().join(if quiet { "quiet" } else { "loud" });
        let mut args = vec![
            "run",
            path_str(&scenario),
            "--out",
            path_str(&out),
            "--set",
            "workload.epochs=1",
        ];
        if quiet {
            args.push("-q");
        }
        let o = asgd(&args);
        assert_success(&o);
        stderr(&o)
    };
    // Standard error is a pipe here, as it is for a run under nohup: no bar is drawn, so the
    // run's end is written as a line with its iterations and elapsed time.
    let log = run(false);
    let last = log
        .lines()
        .rfind(|l| l.starts_with("paper-cifar10: "))
        .unwrap_or_else(|| panic!("no progress line in {log:?}"));
    let (done, rest) = last["paper-cifar10: ".len()..].split_once('/').unwrap();
    assert!(
        rest.starts_with(&format!("{done} (100%)")),
        "the last line counts every iteration: {last:?}"
    );
    assert!(last.contains(" elapsed"), "{last:?}");
    assert!(
        !run(true).contains("paper-cifar10: "),
        "-q writes no progress"
    );
}

#[test]
fn real_gradient_scenarios_write_curves_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("quick", vec!["--set", "workload.epochs=2"]),
        ("quadratic", vec![]),
    ] {
        let out = dir.path().join(name);
        let o = run_scenario(&repo(&format!("scenarios/{name}.toml")), &out, &extra);
        assert_success(&o);
        let curve = std::fs::read_to_string(out.join("curve.csv")).unwrap();
        let mut lines = curve.lines();
        assert_eq!(
            lines.next(),
            Some("epoch,samples,sim_time_s,train_loss,train_accuracy,test_loss,test_accuracy")
        );
        let s = read_json(&out.join("summary.json"));
        let epochs = s["epochs"].as_u64().unwrap();
        assert_eq!(
            lines.count() as u64,
            epochs + 1,
            "{name}: one row per epoch and the start"
        );
        assert_eq!(s["gradients"], "real");
        assert_eq!(s["diverged"], false);
        assert!(s["final"]["train_loss"].as_f64().unwrap().is_finite());
        // The LHL15 bound evaluated with the observed maximum staleness.
        let t = &s["theory"];
        assert_eq!(t["T"], s["staleness"]["max"], "{name}");
        let terms =
            ["initial_gap", "variance", "staleness"].map(|k| t["terms"][k].as_f64().unwrap());
        assert!((terms.iter().sum::<f64>() - t["bound"].as_f64().unwrap()).abs() < 1e-9);
        assert_eq!(
            t["inside_regime"].as_bool().unwrap(),
            t["constraint"].as_f64().unwrap() <= 1.0
        );
    }
}

#[test]
fn theory_commands_print_tables_and_json_and_reject_bad_numbers() {
    let o = asgd(&["theory", "ratio", "--alpha", "1,4", "--p", "1,16", "--json"]);
    assert_success(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ratio"][0][0].as_f64(), Some(1.0));
    assert!(v["ratio"][1][1].as_f64().unwrap() > 1.0);
    let o = asgd(&["theory", "workers", "--k", "1000000", "--m", "100"]);
    assert_success(&o);
    assert!(stdout(&o).contains("100"), "{}", stdout(&o));
    let o = asgd(&["theory", "ratio", "--alpha", "-1", "--p", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("alpha"));
}

#[test]
fn predict_lr_recovers_the_quadratic_and_applies_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("p.json");
    let applied = dir.path().join("applied.toml");
    let o = asgd(&[
        "predict-lr",
        path_str(&repo("scenarios/quadratic.toml")),
        "--json",
        path_str(&json),
        "--apply",
        path_str(&applied),
    ]);
    assert_success(&o);
    let p = read_json(&json);
    for key in ["sigma2", "L", "D_f", "M", "K", "gamma", "alpha"] {
        assert!(p[key].as_f64().is_some(), "{key} missing");
    }
    assert!((p["L"].as_f64().unwrap() - 1.0).abs() < 0.05);
    let text = std::fs::read_to_string(&applied).unwrap();
    let rate = p["learning_rate"].as_f64().unwrap();
    assert!(text.contains(&format!("learning_rate = {rate}")), "{text}");
}

/// gamma = sqrt(D_f / (M K L sigma^2)): the same estimates at four times the budget MK give
/// half the rate; the rate with condition (2) enforced is the smaller of the formula's and
/// M gamma_max, and `--within-condition` writes it.
#[test]
fn predict_lr_at_a_budget_of_samples_halves_at_four_times_it_and_can_enforce_condition_two() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = repo("scenarios/quadratic.toml");
    let predict = |samples: &str, extra: &[&str]| {
        let json = dir.path().join(format!("p{samples}.json"));
        let mut args = vec![
            "predict-lr",
            path_str(&scenario),
            "--samples",
            samples,
            "--json",
            path_str(&json),
        ];
        args.extend_from_slice(extra);
        let o = asgd(&args);
        assert_success(&o);
        (read_json(&json), stdout(&o))
    };
    let (small, text) = predict("125000", &[]);
    assert!(text.contains("M K = 125000 samples, given"), "{text}");
    let applied = dir.path().join("within.toml");
    let (large, _) = predict(
        "500000",
        &["--apply", path_str(&applied), "--within-condition"],
    );
    assert_eq!(small["MK"].as_u64(), Some(125_000));
    assert_eq!(large["K"].as_f64(), Some(500_000.0 / 16.0));
    let ratio = small["gamma"].as_f64().unwrap() / large["gamma"].as_f64().unwrap();
    assert!((ratio - 2.0).abs() < 1e-12, "{ratio}");
    let m = large["M"].as_f64().unwrap();
    let formula = m * large["gamma"].as_f64().unwrap();
    let feasible = m * large["gamma_max"].as_f64().unwrap();
    let within = large["learning_rate_within_condition"].as_f64().unwrap();
    assert!(
        (within / formula.min(feasible) - 1.0).abs() < 5e-3,
        "{within} {formula} {feasible}"
    );
    // The quadratic's 8 learners break (2) at this budget, so enforcing it lowers the rate.
    assert!(large["constraint"].as_f64().unwrap() > 1.0);
    assert!(within < large["learning_rate"].as_f64().unwrap());
    let text = std::fs::read_to_string(&applied).unwrap();
    assert!(
        text.contains(&format!("learning_rate = {within}")),
        "{text}"
    );

    let o = asgd(&["predict-lr", path_str(&scenario), "--samples", "8"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("less than one mini-batch (M = algorithm.batch_size = 16)"));
}

#[test]
fn corrupt_data_file_is_named_with_its_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cifar");
    std::fs::create_dir(&data).unwrap();
    // One record whose label byte is 11 (allowed 0-9).
    let mut record = vec![0u8; 3073];
    record[0] = 11;
    std::fs::write(data.join("data_batch_1.bin"), &record).unwrap();
    let text = scenario_text("quick").replace(
        "kind = \"synthetic-image\"\ntrain_samples = 5000\ntest_samples = 1000",
        &format!("kind = \"cifar10\"\npath = \"{}\"", path_str(&data)),
    );
    assert!(text.contains("cifar10"));
    let scenario = write(dir.path(), "s.toml", &text);
    let out = dir.path().join("out");
    let o = run_scenario(&scenario, &out, &[]);
    assert_bad_input(&o, &out, &["data_batch_1.bin", "byte offset 0", "label 11"]);
}

#[test]
fn flow_share_cv_outside_zero_to_one_is_rejected_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["-0.1", "1.5", "nan"] {
        let out = dir.path().join("out");
        let set = format!("machine.flow_share_cv={bad}");
        let o = run_scenario(&repo("scenarios/quick.toml"), &out, &["--set", &set]);
        assert_bad_input(
            &o,
            &out,
            &["key `machine.flow_share_cv`", "must be in [0, 1]"],
        );
    }
}

/// Drawn shares are the run's: the same seed gives the same summary, a share spread of 0
/// draws nothing (the summary of a scenario without the key), and a spread lets four
/// learners on one shared port fall out of step sooner than exact max-min does.
#[test]
fn flow_share_cv_is_deterministic_zero_draws_nothing_and_a_spread_breaks_lockstep() {
    let dir = tempfile::tempdir().unwrap();
    let testbed = repo("topologies/testbed.toml");
    let base = [
        "--set",
        "workload.gradients=timing-only",
        "--set",
        "workload.epochs=1",
        "--set",
        "workload.dataset.train_samples=2000",
        "--set",
        "devices.compute_time_s=0.003",
        "--set",
        "devices.jitter.std_s=0",
    ];
    let topo = format!("machine.topology={}", testbed.display());
    let run = |tag: &str, extra: &[&str]| -> Value {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(["--set", &topo]);
        args.extend(extra);
        summary_of("scenarios/quick.toml", &dir.path().join(tag), &args)
    };
    let exact = run("exact", &[]);
    let zero = run("zero", &["--set", "machine.flow_share_cv=0"]);
    assert_eq!(exact, zero);
    let a = run("a", &["--set", "machine.flow_share_cv=0.2"]);
    let b = run("b", &["--set", "machine.flow_share_cv=0.2"]);
    assert_eq!(a, b);
    // In lockstep the port's two directions take turns: every pull waits for four.
    let (e, s) = (f64_at(&exact, "epoch_time_s"), f64_at(&a, "epoch_time_s"));
    assert!(s < 0.95 * e, "spread {s} s, exact {e} s");
}
