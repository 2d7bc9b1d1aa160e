//! The simulator's model of a shared-memory host (a topology with a `[host]` table): a lone
//! learner's iteration against the closed form, work conservation on one core, and the
//! `calibrate` and `validate` commands as a user runs them.

use asgd_sim::input::Override;
use asgd_sim::run;
use asgd_sim::scenario::{self, Scenario};
use asgd_sim::time::SimDuration;
use std::path::{Path, PathBuf};
use std::process::Command;

const COPY_GB_PER_S: f64 = 10.0;
const MEMORY_GB_PER_S: f64 = 30.0;

/// A host of `cores` cores with round numbers, written into `dir`.
fn host_file(dir: &Path, cores: usize, latency_ns: u64, cpu_ns: u64) -> PathBuf {
    let nodes: String = (0..cores)
        .map(|c| format!("  {{ id = \"core{c}\", class = \"core\" }},\n"))
        .collect();
    let text = format!(
        "name = \"test-host\"\nnodes = [\n{nodes}]\n\
         [node_class.core]\nkind = \"cpu-core\"\nmemory_bandwidth_gb_per_s = {MEMORY_GB_PER_S}\n\
         [host]\ncopy_gb_per_s = {COPY_GB_PER_S}\nmessage_latency_ns = {latency_ns}\n\
         message_cpu_ns = {cpu_ns}\ntime_slice_ns = 3000000\n"
    );
    let path = dir.join(format!("host-{cores}-{latency_ns}-{cpu_ns}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn quick_on(host: &Path, sets: &[&str]) -> Scenario {
    let mut overrides: Vec<Override> = [
        "workload.gradients=\"timing-only\"",
        "devices.compute_time_s=0.001",
        "devices.jitter.std_s=0.0",
        "workload.epochs=2",
    ]
    .iter()
    .chain(sets)
    .map(|s| Override::parse(s).unwrap())
    .collect();
    overrides.push(Override::new(
        "machine.topology",
        toml::Value::String(host.to_string_lossy().into_owned()),
        "test",
    ));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
    scenario::load(path.to_str().unwrap(), &overrides).unwrap()
}

fn ns(secs: f64) -> f64 {
    secs * 1e9
}

#[test]
fn a_lone_learner_on_a_host_takes_the_closed_form_iteration_time() {
    let dir = tempfile::tempdir().unwrap();
    let (latency, cpu) = (10_000u64, 4_000u64);
    let host = host_file(dir.path(), 4, latency, cpu);
    let sc = quick_on(&host, &["cluster.learners=1", "cluster.shards=1"]);
    let bytes = sc.model.params() as f64 * 4.0;
    // Four messages (request, slice, gradient, ack), three copies (the shard's into the reply,
    // the learner's out of it, the learner's into the gradient message), the gradient and the
    // update's three passes over the slice; with 2 threads on 4 cores nothing waits.
    let copy = (bytes / COPY_GB_PER_S).ceil();
    let update = (bytes * 3.0 / MEMORY_GB_PER_S).ceil();
    let compute = SimDuration::from_secs_ceil(0.001).as_nanos() as f64;
    let iteration = 4.0 * latency as f64 + 3.0 * copy + compute + update;
    let res = run::simulate(&sc, ()).unwrap();
    let expected = iteration * (2 * sc.iterations_per_epoch) as f64;
    assert!(
        (ns(res.summary.sim_time_s) - expected).abs() < 1.0,
        "{} against {expected}",
        ns(res.summary.sim_time_s)
    );
    assert_eq!(res.summary.staleness.max, 0);
    // Where the time goes: pull is a request, a copy, a reply and a copy.
    let per_iteration = |s: f64| ns(s) * 2.0 / (2 * sc.iterations_per_epoch) as f64;
    let b = &res.summary.breakdown;
    assert!((per_iteration(b.pull) - (2.0 * latency as f64 + 2.0 * copy)).abs() < 1.0);
    assert!((per_iteration(b.compute) - compute).abs() < 1.0);
}

#[test]
fn on_one_core_with_no_idle_latency_the_run_takes_exactly_its_work() {
    // Every message is core time, so the single core never idles while a thread has work: the
    // run lasts the work of its iterations, plus at most the unfinished iterations of the
    // other learners when the last one completes.
    let dir = tempfile::tempdir().unwrap();
    let (latency, cpu) = (20_000u64, 20_000u64);
    let host = host_file(dir.path(), 1, latency, cpu);
    for p in [1usize, 2, 3] {
        let sc = quick_on(
            &host,
            &[&format!("cluster.learners={p}"), "cluster.shards=2"],
        );
        let slice = (sc.model.params() as f64 / 2.0).ceil() * 4.0;
        let copy = slice / COPY_GB_PER_S;
        let update = slice * 3.0 / MEMORY_GB_PER_S;
        let compute = ns(0.001);
        // Per iteration, per shard: four messages, three copies, one update.
        let work = compute + 2.0 * (4.0 * cpu as f64 + 3.0 * copy + update);
        let iterations = (2 * sc.iterations_per_epoch) as f64;
        let res = run::simulate(&sc, ()).unwrap();
        let t = ns(res.summary.sim_time_s);
        // Completion times round up to whole ns, a few per task.
        let slack = iterations * 20.0;
        assert!(t >= iterations * work - slack, "p = {p}: {t}");
        assert!(
            t <= (iterations + (p - 1) as f64) * work + slack,
            "p = {p}: {t}"
        );
        if p > 1 {
            assert!(res.summary.staleness.max > 0, "p = {p}");
        }
    }
}

#[test]
fn a_host_without_a_measured_gradient_names_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_file(dir.path(), 2, 1_000, 500);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
    let err = scenario::load(
        path.to_str().unwrap(),
        &[Override::new(
            "machine.topology",
            toml::Value::String(host.to_string_lossy().into_owned()),
            "test",
        )],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no measured gradient time for model `mlp`"),
        "{err}"
    );
    assert!(err.contains("asgd-sim calibrate"), "{err}");
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_asgd-sim"))
}

/// The quick scenario shrunk to a softmax model on a small data set.
const SMALL: [&str; 6] = [
    "workload.dataset.train_samples=512",
    "workload.dataset.test_samples=64",
    "workload.eval_train_samples=64",
    "workload.model=softmax",
    "workload.epochs=2",
    "algorithm.batch_size=16",
];

#[test]
fn calibrate_then_validate_as_a_user_runs_them() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("localhost.toml");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
    let mut cmd = bin();
    cmd.arg("calibrate").arg(&scenario).arg("--out").arg(&host);
    for s in SMALL {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&host).unwrap();
    assert!(
        text.contains("[host]") && text.contains("model = \"softmax\""),
        "{text}"
    );
    // A softmax slice's pull is mostly message latency; its copy is timed itself, not what is
    // left of the pull (noise, once at 61,000 GB/s), so one thread's rate is a memory's.
    let copy: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("copy_gb_per_s = "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no copy rate in {text}"));
    assert!((0.1..1000.0).contains(&copy), "copy rate {copy} GB/s");

    let runs = dir.path().join("validate");
    let mut cmd = bin();
    cmd.arg("validate")
        .arg(&scenario)
        .args(["--set", "cluster.learners=1,2", "--host"])
        .arg(&host)
        .arg("--out")
        .arg(&runs);
    for s in SMALL {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("largest epoch-time error"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("validation.json")).unwrap())
            .unwrap();
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for (pt, p) in points.iter().zip([1, 2]) {
        assert_eq!(pt["learners"], p);
        assert!(pt["real"]["epoch_time_s"].as_f64().unwrap() > 0.0);
        assert!(pt["simulated"]["epoch_time_s"].as_f64().unwrap() > 0.0);
        let err = pt["epoch_time_error"].as_f64().unwrap();
        assert!(err.is_finite() && err > -1.0, "{err}");
        assert_eq!(pt["phases"].as_array().unwrap().len(), 5);
        let d = pt["staleness_ks"]["statistic"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&d));
        assert!(pt["final_accuracy_difference"].as_f64().is_some());
    }
    // One learner is never stale, really or simulated.
    assert_eq!(points[0]["staleness_ks"]["statistic"], 0.0);
    for f in [
        "validation-breakdown.svg",
        "validation-breakdown.png",
        "validation-staleness.svg",
        "validation-staleness.png",
    ] {
        assert!(runs.join(f).exists(), "{f}");
    }
}

#[test]
fn validate_against_a_machine_that_is_not_a_host_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("validate");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = bin()
        .arg("validate")
        .arg(root.join("scenarios/quick.toml"))
        .arg("--host")
        .arg(root.join("topologies/power8-k80.toml"))
        .arg("--out")
        .arg(&runs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no [host] table"), "{err}");
    assert!(!runs.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_slice_that_runs_out_unnoticed_still_wakes_the_threads() {
    // A time slice shorter than a gradient ends while no thread waits; when one arrives later
    // the slice is already over. The simulation once scheduled that wake-up in the past, lost
    // it and ran out of events half-way.
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(host_file(dir.path(), 2, 20_000, 15_000)).unwrap();
    for slice in [100_000, 500_000, 890_000] {
        let host = dir.path().join(format!("slice-{slice}.toml"));
        let text = base.replace(
            "time_slice_ns = 3000000",
            &format!("time_slice_ns = {slice}"),
        );
        std::fs::write(&host, text).unwrap();
        for p in [2, 3, 4] {
            let sc = quick_on(
                &host,
                &[&format!("cluster.learners={p}"), "cluster.shards=2"],
            );
            let res = run::simulate(&sc, ()).unwrap();
            let done: u64 = res.summary.per_learner.iter().map(|l| l.iterations).sum();
            assert_eq!(done, 2 * sc.iterations_per_epoch, "p = {p}");
            assert_eq!(res.summary.epoch_ends_s.len(), 2);
        }
    }
}

#[test]
fn the_host_model_repeats_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_file(dir.path(), 2, 20_000, 15_000);
    let sc = quick_on(
        &host,
        &["cluster.learners=4", "devices.jitter.std_s=0.0002"],
    );
    let a = run::simulate(&sc, ()).unwrap().summary.to_json();
    let b = run::simulate(&sc, ()).unwrap().summary.to_json();
    assert_eq!(a, b);
}

#[test]
fn report_redraws_a_validation_from_its_json_and_refuses_a_foreign_one() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("figures/validation-quick");
    let json = std::fs::read(shipped.join("validation.json")).unwrap();
    let copy = dir.path().join("validation-quick");
    std::fs::create_dir(&copy).unwrap();
    std::fs::write(copy.join("validation.json"), &json).unwrap();
    let asgd = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_asgd-sim"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = asgd(&["report".as_ref(), copy.as_os_str()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.starts_with("redrew 2 figures of the validation"),
        "{out}"
    );
    for f in ["validation-breakdown", "validation-staleness"] {
        // The same drawing as the shipped one, from the numbers alone.
        for ext in ["svg", "png"] {
            let name = format!("{f}.{ext}");
            assert_eq!(
                std::fs::read(copy.join(&name)).unwrap(),
                std::fs::read(shipped.join(&name)).unwrap(),
                "{name} differs from the shipped one: redraw it with `asgd-sim report figures/validation-quick`"
            );
        }
    }
    assert_eq!(std::fs::read(copy.join("validation.json")).unwrap(), json);
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("validation.json"), "{\"x\": 1}").unwrap();
    let o = asgd(&["report".as_ref(), foreign.as_os_str()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "not a validation.json written by `asgd-sim validate`: missing field `scenario`"
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&foreign).unwrap().count(),
        1,
        "nothing written"
    );
}
