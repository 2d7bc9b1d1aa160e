//! Sweeps end to end through the binary: points and their directories, restarting after a kill,
//! shards merged by `report` into the same report as one unsharded sweep, divergence recorded,
//! bad sweep files rejected before anything is written, and the Slurm script.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_asgd-sim");

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn asgd(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("cannot start asgd-sim")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A small real-gradient sweep over the shipped quick scenario: p in {1, 2, 4} x two learning
/// rates, two epochs of 600 images.
fn write_sweep(dir: &Path, axes: &str, epochs: u32) -> PathBuf {
    let path = dir.join("small.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"small\"\nscenario = \"{}\"\n\n[set]\nworkload.epochs = {epochs}\nworkload.eval_train_samples = 200\nworkload.dataset.train_samples = 600\nworkload.dataset.test_samples = 200\n\n[axes]\n{axes}\n",
            repo("scenarios/quick.toml").display()
        ),
    )
    .unwrap();
    path
}

const AXES: &str = "cluster.learners = [1, 2, 4]\nalgorithm.learning_rate = [0.05, 0.2]";

/// Every file under `dir`, relative path to bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn point_names(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out.join("points"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn sharded_sweep_merged_by_report_equals_one_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(dir.path(), AXES, 2);
    let s = sweep.to_str().unwrap();
    let stdout = ok(asgd(dir.path(), &["sweep", s, "--out", "whole", "-q"]));
    assert!(stdout.contains("6 points"), "{stdout}");
    assert!(
        stdout.contains("report: whole/report/index.html"),
        "{stdout}"
    );
    assert_eq!(
        point_names(&dir.path().join("whole")),
        [
            "learners=1,learning_rate=0.05",
            "learners=1,learning_rate=0.2",
            "learners=2,learning_rate=0.05",
            "learners=2,learning_rate=0.2",
            "learners=4,learning_rate=0.05",
            "learners=4,learning_rate=0.2",
        ]
    );
    let mut shards = vec![];
    for i in 1..=3 {
        let out = format!("shard-{i}");
        let stdout = ok(asgd(
            dir.path(),
            &[
                "sweep",
                s,
                "--out",
                &out,
                "--shard",
                &format!("{i}/3"),
                "-q",
            ],
        ));
        assert!(stdout.contains("2 in shard"), "{stdout}");
        assert!(!dir.path().join(&out).join("report").exists());
        assert_eq!(point_names(&dir.path().join(&out)).len(), 2);
        shards.push(out);
    }
    let mut args = vec!["report"];
    args.extend(shards.iter().map(String::as_str));
    args.extend(["--out", "merged"]);
    let stdout = ok(asgd(dir.path(), &args));
    assert!(stdout.contains("6 of 6 points"), "{stdout}");
    let whole = files(&dir.path().join("whole/report"));
    let merged = files(&dir.path().join("merged"));
    assert_eq!(
        whole.keys().collect::<Vec<_>>(),
        merged.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &whole {
        assert!(merged[name] == *bytes, "{} differs", name.display());
    }
    for fig in [
        "topology",
        "breakdown",
        "convergence-epochs",
        "convergence-time",
        "time-to-accuracy",
        "speedup",
        "staleness",
        "guarantee-ratio",
    ] {
        for ext in ["svg", "png"] {
            let f = PathBuf::from(format!("{fig}.{ext}"));
            assert!(whole.get(&f).is_some_and(|b| b.len() > 1000), "{fig}.{ext}");
        }
    }
    let html = String::from_utf8(whole[&PathBuf::from("index.html")].clone()).unwrap();
    assert_eq!(html.matches("<img class=\"figure\"").count(), 8);
    assert!(html.contains("learners=4,learning_rate=0.2"));

    // A report over two shards of three names the missing points.
    let o = asgd(
        dir.path(),
        &["report", "shard-1", "shard-2", "--out", "part"],
    );
    let stdout = ok(o);
    assert!(stdout.contains("4 of 6 points"), "{stdout}");
    assert!(
        stdout
            .contains("missing points: learners=2,learning_rate=0.05 learners=4,learning_rate=0.2"),
        "{stdout}"
    );

    // Directories of different sweeps do not merge.
    let other = write_sweep(dir.path(), "cluster.learners = [1, 2]", 2);
    let o = asgd(
        dir.path(),
        &["sweep", other.to_str().unwrap(), "--out", "other", "-q"],
    );
    ok(o);
    let o = asgd(dir.path(), &["report", "whole", "other"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("describe different sweeps"),
        "{}",
        text(&o)
    );
}

#[test]
fn killed_sweep_restarts_without_redoing_finished_points() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(
        dir.path(),
        "cluster.learners = [1, 2]\nseed = [1, 2, 3, 4]",
        6,
    );
    let s = sweep.to_str().unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(BIN)
        .args(["sweep", s, "--out", "out", "--jobs", "1", "-q"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let finished = |out: &Path| {
        point_names(out)
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .count()
    };
    while finished(&out) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no point finished in 2 minutes"
        );
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let done: Vec<String> = point_names(&out)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(done.len() >= 2 && done.len() < 8, "{done:?}");
    let before: Vec<(String, Vec<u8>, std::time::SystemTime)> = done
        .iter()
        .map(|n| {
            let f = out.join("points").join(n).join("summary.json");
            (
                n.clone(),
                std::fs::read(&f).unwrap(),
                std::fs::metadata(&f).unwrap().modified().unwrap(),
            )
        })
        .collect();
    let stdout = ok(asgd(dir.path(), &["sweep", s, "--out", "out", "-q"]));
    assert!(
        stdout.contains(&format!("ran {} (", 8 - done.len()))
            && stdout.contains(&format!("kept {} finished before", done.len())),
        "{stdout}"
    );
    for (n, bytes, mtime) in before {
        let f = out.join("points").join(&n).join("summary.json");
        assert_eq!(std::fs::read(&f).unwrap(), bytes, "{n} was rewritten");
        assert_eq!(
            std::fs::metadata(&f).unwrap().modified().unwrap(),
            mtime,
            "{n} was rewritten"
        );
    }
    let all = point_names(&out);
    assert_eq!(all.len(), 8, "hidden leftovers remain: {all:?}");
    assert!(out.join("report/index.html").is_file());
    // Started again with nothing left, it runs nothing.
    let stdout = ok(asgd(dir.path(), &["sweep", s, "--out", "out", "-q"]));
    assert!(
        stdout.contains("ran 0 ") && stdout.contains("kept 8 finished"),
        "{stdout}"
    );
}

#[test]
fn a_diverging_point_is_recorded_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(dir.path(), "algorithm.learning_rate = [0.05, 1e30]", 2);
    let stdout = ok(asgd(
        dir.path(),
        &["sweep", sweep.to_str().unwrap(), "--out", "out", "-q"],
    ));
    assert!(
        stdout.contains("diverged (recorded): learning_rate=1e30"),
        "{stdout}"
    );
    let summary = std::fs::read_to_string(
        dir.path()
            .join("out/points/learning_rate=1e30/summary.json"),
    )
    .unwrap();
    assert!(summary.contains("\"diverged\": true"), "{summary}");
    let fine = std::fs::read_to_string(
        dir.path()
            .join("out/points/learning_rate=0.05/summary.json"),
    )
    .unwrap();
    assert!(fine.contains("\"diverged\": false"));
    let html = std::fs::read_to_string(dir.path().join("out/report/index.html")).unwrap();
    assert!(html.contains(">diverged</td>"), "the table marks the point");
}

#[test]
fn a_sweep_whose_stderr_is_a_log_ends_its_progress_with_every_point_counted() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(dir.path(), "algorithm.learning_rate = [0.05, 0.2]", 1);
    let o = asgd(
        dir.path(),
        &[
            "sweep",
            sweep.to_str().unwrap(),
            "--out",
            "out",
            "--jobs",
            "1",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let log = String::from_utf8_lossy(&o.stderr);
    let last = log
        .lines()
        .rfind(|l| l.starts_with("sweep small: "))
        .unwrap_or_else(|| panic!("no progress line in {log:?}"));
    assert!(last.contains("(100%) 2/2 points, "), "{last:?}");
}

#[test]
fn bad_sweeps_are_rejected_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(dir.path(), "cluster.learners = [2, 0]", 1);
    let o = asgd(
        dir.path(),
        &["sweep", sweep.to_str().unwrap(), "--out", "out"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("small.toml:11 axis cluster.learners=0"), "{t}");
    assert!(
        t.contains("key `cluster.learners`: must be at least 1"),
        "{t}"
    );
    assert!(!dir.path().join("out").exists());
    assert!(!t.contains("panicked"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "scenario = \"builtin:quick\"\n[axes]\nseed = 3\n").unwrap();
    let o = asgd(dir.path(), &["sweep", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("bad.toml:3:1: key `axes.seed`: an axis must be a non-empty array"),
        "{}",
        text(&o)
    );

    let o = asgd(
        dir.path(),
        &["sweep", sweep.to_str().unwrap(), "--shard", "4/3"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--shard 4/3: need 1 <= I <= N"),
        "{}",
        text(&o)
    );

    let o = asgd(dir.path(), &["report", "nowhere"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nowhere/sweep.json"), "{}", text(&o));
}

#[test]
fn run_with_sweep_flags_is_a_sweep_and_slurm_prints_a_job_array() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = repo("scenarios/paper-cifar10.toml");
    let stdout = ok(asgd(
        dir.path(),
        &[
            "run",
            scenario.to_str().unwrap(),
            "--set",
            "workload.epochs=1",
            "--sweep",
            "cluster.learners=2,4",
            "--sweep",
            "cluster.shards=1,8",
            "--out",
            "s",
            "-q",
        ],
    ));
    assert!(
        stdout.contains("sweep paper-cifar10-sweep: 4 points"),
        "{stdout}"
    );
    assert_eq!(
        point_names(&dir.path().join("s")),
        [
            "learners=2,shards=1",
            "learners=2,shards=8",
            "learners=4,shards=1",
            "learners=4,shards=8"
        ]
    );
    let html = std::fs::read_to_string(dir.path().join("s/report/index.html")).unwrap();
    assert!(
        html.contains("shards = 8"),
        "timing-only series are named in the report"
    );
    assert!(dir.path().join("s/report/breakdown.png").is_file());
    assert!(
        !dir.path().join("s/report/convergence-epochs.svg").exists(),
        "no curves without real gradients"
    );

    let sweep = write_sweep(dir.path(), AXES, 1);
    let scratch = dir.path().join("scratch/x");
    let script = ok(asgd(
        dir.path(),
        &[
            "sweep",
            sweep.to_str().unwrap(),
            "--slurm",
            "--slurm-cpus",
            "8",
            "--out",
            scratch.to_str().unwrap(),
        ],
    ));
    assert!(script.contains("#SBATCH --array=1-6"), "{script}");
    assert!(script.contains("#SBATCH --cpus-per-task=8"), "{script}");
    assert!(
        script.contains("--shard \"${SLURM_ARRAY_TASK_ID}/6\""),
        "{script}"
    );
    assert!(
        script.contains(&format!("sweep {}", sweep.display())),
        "{script}"
    );
    assert!(!dir.path().join("runs").exists(), "--slurm runs nothing");
}

#[test]
fn shipped_sweeps_read_and_every_point_checks() {
    use asgd_sim::scenario::{DataCache, load_with};
    use asgd_sim::sweep::SweepSpec;
    let cache = DataCache::default();
    for name in ["paper-cifar10", "paper-nlc"] {
        let spec = SweepSpec::read(&repo(&format!("scenarios/sweeps/{name}.toml"))).unwrap();
        assert_eq!(spec.name, name);
        let points = spec.points();
        assert_eq!(
            points.len(),
            8,
            "p in {{2, 4, 8, 16}} x gamma in {{0.1, 0.005}}"
        );
        for p in &points {
            let sc = load_with(&spec.scenario, &spec.overrides(p), &cache)
                .unwrap_or_else(|e| panic!("{name}/{}: {e}", p.name));
            assert_eq!(sc.file.name, name);
        }
    }
}

/// The learning-rate experiment is the paper's: p = 16 and 1, the three rates, two seeds, and
/// every point trains on M K = 500,000 samples of the object set.
#[test]
fn paper_lr_sweep_trains_every_point_on_the_papers_500000_samples() {
    use asgd_sim::scenario::{DataCache, load_with};
    use asgd_sim::sweep::SweepSpec;
    let cache = DataCache::default();
    let spec = SweepSpec::read(&repo("scenarios/sweeps/paper-lr.toml")).unwrap();
    let points = spec.points();
    assert_eq!(
        points.len(),
        12,
        "p in {{16, 1}} x three rates x seeds 1 and 2"
    );
    let (mut seen, mut seeds) = (vec![], vec![]);
    for p in &points {
        let sc = load_with(&spec.scenario, &spec.overrides(p), &cache)
            .unwrap_or_else(|e| panic!("{}: {e}", p.name));
        let f = &sc.file;
        assert_eq!(
            sc.dataset.as_ref().map(|d| d.name()),
            Some("synthetic-objects")
        );
        let budget = f.workload.epochs * sc.iterations_per_epoch * f.algorithm.batch_size;
        // 10 epochs of ceil(50,000 / 128) = 391 mini-batches of 128.
        assert_eq!(budget, 500_480);
        seen.push((sc.placement.learner_gpus.len(), f.algorithm.learning_rate));
        seeds.push(f.seed);
    }
    assert!(seen.contains(&(16, 0.1)) && seen.contains(&(16, 0.005)));
    assert!(seen.contains(&(1, 0.1)) && seen.contains(&(1, 0.005)));
    assert_eq!(seeds.iter().filter(|&&s| s == 2).count(), 6, "{seeds:?}");
}

#[test]
fn reproduce_writes_a_full_report_per_sweep_and_resumes() {
    // The shipped paper sweeps take minutes; the command is the same on a small one.
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(dir.path(), AXES, 1);
    let args = [
        "reproduce",
        "--sweeps",
        sweep.to_str().unwrap(),
        "--out",
        "figs",
        "--runs",
        "runs",
        "--set",
        "workload.dataset.train_samples=300",
        "-q",
    ];
    let stdout = ok(asgd(dir.path(), &args));
    assert!(stdout.contains("small: 6 points (6 run now)"), "{stdout}");
    assert!(dir.path().join("runs/small/points").is_dir());
    let report = dir.path().join("figs/small");
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert_eq!(html.matches("<img class=\"figure\"").count(), 8);
    assert!(
        html.contains("workload.dataset.train_samples=300"),
        "--set reaches every point"
    );
    // Again: nothing left to run, the same report.
    let before = files(&report);
    let stdout = ok(asgd(dir.path(), &args));
    assert!(stdout.contains("(0 run now)"), "{stdout}");
    assert!(files(&report) == before, "the report changed");
}

/// A sweep over the slow learners' slowdown gets a figure of the time to the target against
/// the slowdown, one line per algorithm, beside the usual ones; a sweep without that axis does
/// not.
#[test]
fn a_sweep_over_the_slowdown_draws_time_to_target_against_it_per_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(
        dir.path(),
        "faults.slowdown = [1.0, 4.0]\nalgorithm.kind = [\"downpour\", \"ssgd-ps\"]\n\n[report]\ntarget_accuracy = 0.2",
        2,
    );
    let text = std::fs::read_to_string(&sweep).unwrap().replace(
        "[set]\n",
        "[set]\ncluster.learners = 4\ndevices.compute_time_s = 0.01\n",
    );
    std::fs::write(&sweep, text).unwrap();
    let out = dir.path().join("out");
    ok(asgd(
        dir.path(),
        &[
            "sweep",
            sweep.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ],
    ));
    let svg = std::fs::read_to_string(out.join("report/stragglers.svg")).unwrap();
    assert!(svg.contains("downpour") && svg.contains("ssgd-ps"), "{svg}");
    assert!(svg.contains("slowdown of the slow learners"));
    assert!(out.join("report/stragglers.png").exists());
    // Synchronous SGD takes the slow learner's pace; Downpour loses only its share of work.
    let csv = std::fs::read_to_string(out.join("report/points.csv")).unwrap();
    // Fields split at commas outside quotes.
    let fields = |line: &str| -> Vec<String> {
        let (mut out, mut cur, mut quoted) = (vec![], String::new(), false);
        for c in line.chars() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => out.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        out.push(cur);
        out
    };
    let header = fields(csv.lines().next().unwrap());
    let i = header.iter().position(|h| h == "epoch_time_s").unwrap();
    let epoch = |name: &str| -> f64 {
        let line = csv.lines().find(|l| fields(l)[0] == name).unwrap();
        fields(line)[i].parse().unwrap()
    };
    let ssgd = epoch("slowdown=4,kind=ssgd-ps") / epoch("slowdown=1,kind=ssgd-ps");
    let down = epoch("slowdown=4,kind=downpour") / epoch("slowdown=1,kind=downpour");
    assert!(
        ssgd > 2.5 && down < 1.4,
        "ssgd-ps x{ssgd}, downpour x{down}"
    );
    // Without the axis, no such figure.
    let plain = write_sweep(
        dir.path(),
        "algorithm.kind = [\"downpour\", \"ssgd-ps\"]",
        1,
    );
    let out2 = dir.path().join("out2");
    ok(asgd(
        dir.path(),
        &[
            "sweep",
            plain.to_str().unwrap(),
            "--out",
            out2.to_str().unwrap(),
            "-q",
        ],
    ));
    assert!(!out2.join("report/stragglers.svg").exists());
}

#[test]
fn a_real_sweep_runs_each_point_on_the_real_backend_and_its_report_says_measured() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(
        dir.path(),
        "faults.slowdown = [1.0, 4.0]\n\n[report]\ntarget_accuracy = 0.2",
        1,
    );
    let body = std::fs::read_to_string(&sweep).unwrap().replace(
        "[set]\n",
        "backend = \"real\"\n\n[set]\nalgorithm.kind = \"ssgd-ps\"\n",
    );
    std::fs::write(&sweep, body).unwrap();
    let out = dir.path().join("out");
    let printed = ok(asgd(
        dir.path(),
        &["sweep", sweep.to_str().unwrap(), "--out", "out", "-q"],
    ));
    assert!(
        printed.contains("one at a time on the real backend"),
        "{printed}"
    );
    let summary = |name: &str| -> serde_json::Value {
        let t = std::fs::read_to_string(out.join("points").join(name).join("summary.json"));
        serde_json::from_str(&t.unwrap()).unwrap()
    };
    let slow = summary("slowdown=4");
    assert_eq!(slow["backend"], "real");
    assert_eq!(summary("slowdown=1")["backend"], "real");
    // The slow learner really took longer per gradient than its unslowed peers.
    let measured = slow["per_learner"][3]["measured_slowdown"]
        .as_f64()
        .unwrap();
    assert!(measured > 2.0, "measured slowdown {measured} at factor 4");
    let point = std::fs::read_to_string(out.join("points/slowdown=4/point.json")).unwrap();
    assert!(point.contains("\"backend\": \"real\""), "{point}");
    let html = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    assert!(html.contains("Seconds are measured"), "{html}");
    assert!(!html.contains("Seconds are simulated"));

    // A simulator sweep in the same directory is a different sweep: its points run again.
    let sim = std::fs::read_to_string(&sweep)
        .unwrap()
        .replace("backend = \"real\"\n", "");
    std::fs::write(&sweep, sim).unwrap();
    let printed = ok(asgd(
        dir.path(),
        &["sweep", sweep.to_str().unwrap(), "--out", "out", "-q"],
    ));
    assert!(printed.contains("ran 2 "), "{printed}");
    assert_eq!(summary("slowdown=4")["backend"], "sim");

    // A point the real backend would refuse fails the sweep before anything runs.
    std::fs::write(
        &sweep,
        "scenario = \"builtin:quick\"\nbackend = \"real\"\n[axes]\nfaults.link_slowdown = [1.0, 2.0]\n",
    )
    .unwrap();
    let o = asgd(
        dir.path(),
        &["sweep", sweep.to_str().unwrap(), "--out", "refused"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("point link_slowdown=2: faults slow the link between"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("refused").exists());

    std::fs::write(
        &sweep,
        "scenario = \"builtin:quick\"\nbackend = \"gpu\"\n[axes]\nseed = [1]\n",
    )
    .unwrap();
    let o = asgd(dir.path(), &["sweep", sweep.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("key `backend`: must be \"simulator\" (the default) or \"real\""),
        "{}",
        text(&o)
    );
}

#[test]
fn shipped_straggler_and_failure_sweeps_check_on_both_backends() {
    use asgd_sim::scenario::{DataCache, load_with};
    use asgd_sim::sweep::{Backend, SweepSpec};
    let cache = DataCache::default();
    for (name, backend, points) in [
        ("stragglers", Backend::Simulator, 40),
        ("failures", Backend::Simulator, 18),
        ("stragglers-real", Backend::Real, 40),
        ("failures-real", Backend::Real, 18),
    ] {
        let spec = SweepSpec::read(&repo(&format!("scenarios/sweeps/{name}.toml"))).unwrap();
        assert_eq!((spec.name.as_str(), spec.backend), (name, backend));
        assert_eq!(spec.points().len(), points, "{name}");
        for p in &spec.points() {
            let sc = load_with(&spec.scenario, &spec.overrides(p), &cache)
                .unwrap_or_else(|e| panic!("{name}/{}: {e}", p.name));
            if backend == Backend::Real {
                assert_eq!(asgd_sim::real::refusal(&sc), None, "{name}/{}", p.name);
            }
        }
    }
}
