//! What a newcomer meets on the command line, pinned through the real binary: what a run says
//! about itself, and inputs that must be refused before any work starts.

mod common;

use common::assert_bad_input;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn asgd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_asgd-sim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cannot start asgd-sim")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_real_gradient_run_reports_no_engine_event_rate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let quick = repo("scenarios/quick.toml");
    let small = ["--set", "workload.epochs=1"];
    let o = asgd(&[&["run", path(&quick), "--out", path(&out)][..], &small].concat());
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(!stdout.contains("events/s"), "{stdout}");
    assert!(stdout.contains("real gradients"), "{stdout}");
    let timing = ["--set", "workload.gradients=timing-only"];
    let o = asgd(
        &[
            &["run", path(&quick), "--out", path(&out)][..],
            &small,
            &timing,
        ]
        .concat(),
    );
    let (stdout, _) = text(&o);
    assert!(stdout.contains("M events/s"), "{stdout}");
}

#[test]
fn the_real_backend_says_it_ran_on_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("real");
    let quick = repo("scenarios/quick.toml");
    let o = asgd(&[
        "real",
        path(&quick),
        "--out",
        path(&out),
        "--set",
        "workload.epochs=1",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.contains("downpour on this host"), "{first}");
    assert!(!first.contains("power8-k80"), "{first}");
    assert!(stdout.contains("1 epoch of"), "{stdout}");
}

/// The subcommands `asgd-sim <path> --help` lists, recursively.
fn subcommands(path: &[String]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let (help, _) = text(&asgd(&args));
    let mut found = vec![];
    let mut listing = false;
    for line in help.lines() {
        if line == "Commands:" {
            listing = true;
        } else if listing && line.is_empty() {
            listing = false;
        } else if listing
            && let Some(name) = line.split_whitespace().next()
            && name != "help"
        {
            let mut sub = path.to_vec();
            sub.push(name.to_string());
            found.extend(subcommands(&sub));
            found.push(sub);
        }
    }
    found
}

#[test]
fn every_argument_and_option_of_every_subcommand_has_a_description() {
    let commands = subcommands(&[]);
    assert!(commands.len() >= 15, "{commands:?}");
    let mut bare = vec![];
    for command in &commands {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        args.push("--help");
        let (help, _) = text(&asgd(&args));
        let mut section = false;
        for line in help.lines() {
            if line == "Arguments:" || line == "Options:" {
                section = true;
            } else if line.is_empty() {
                section = false;
            } else if section && line.starts_with("  ") && !line.starts_with("   ") {
                // `  <NAME>  description` or `  -x, --long <V>  description`.
                let entry = line.trim_start();
                let described = entry
                    .split_once("  ")
                    .is_some_and(|(_, d)| !d.trim().is_empty() && !d.trim().starts_with('['));
                if !described {
                    bare.push(format!("{}: {entry}", command.join(" ")));
                }
            }
        }
    }
    assert!(
        bare.is_empty(),
        "without a description:\n{}",
        bare.join("\n")
    );
}

#[test]
fn theory_takes_negative_values_to_its_range_check_and_counts_one_worker() {
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("none");
    let o = asgd(&["theory", "ratio", "--alpha", "-1", "--p", "2"]);
    assert_bad_input(&o, &none, &["`-1` in alpha is not a finite number > 0"]);
    let o = asgd(&["theory", "workers", "--k", "-4", "--m", "1"]);
    assert_bad_input(&o, &none, &["K = -4 is out of range"]);
    let o = asgd(&["theory", "workers", "--k", "4", "--m", "1"]);
    let (stdout, _) = text(&o);
    assert!(
        stdout.contains("-> 1 worker (") && stdout.contains("-> 2 workers ("),
        "{stdout}"
    );
}

#[test]
fn user_facing_text_names_no_paper_by_an_internal_number() {
    for command in subcommands(&[]).into_iter().chain([vec![]]) {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        args.push("--help");
        let (help, _) = text(&asgd(&args));
        for needle in ["seed 0", "seed paper"] {
            assert!(!help.contains(needle), "{command:?}: {needle}\n{help}");
        }
    }
    let (table, _) = text(&asgd(&["theory", "ratio", "--alpha", "1,10", "--p", "1,4"]));
    assert!(!table.contains("seed 0"), "{table}");
}

#[test]
fn sweep_slurm_creates_the_directory_slurm_opens_its_output_files_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cluster/sweep");
    let sweep = repo("scenarios/sweeps/algorithms-quick.toml");
    let o = asgd(&["sweep", path(&sweep), "--slurm", "--out", path(&out)]);
    let (script, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let output = format!("#SBATCH --output={}/slurm-", out.display());
    assert!(script.contains(&output), "{script}");
    assert!(
        out.is_dir(),
        "{} exists before sbatch opens files in it",
        out.display()
    );
    assert!(
        std::fs::read_dir(&out).unwrap().next().is_none(),
        "and holds nothing yet"
    );
    assert!(
        script.contains("20 points over 20 array tasks of 4 cores"),
        "{script}"
    );
}

#[test]
fn counts_of_threads_jobs_tasks_and_repeats_of_zero_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let quick = repo("scenarios/quick.toml");
    let sweep = repo("scenarios/sweeps/algorithms-quick.toml");
    let cases: [&[&str]; 6] = [
        &["run", path(&quick), "--threads", "0"],
        &["sweep", path(&sweep), "--jobs", "0"],
        &["sweep", path(&sweep), "--threads", "0"],
        &["sweep", path(&sweep), "--slurm", "--slurm-tasks", "0"],
        &["sweep", path(&sweep), "--slurm", "--slurm-cpus", "0"],
        &["bench", "--repeat", "0"],
    ];
    for args in cases {
        let mut all = args.to_vec();
        if args[0] != "bench" {
            all.extend(["--out", path(&out)]);
        }
        assert_bad_input(&asgd(&all), &out, &["must be at least 1"]);
    }
}

#[test]
fn reproduce_writes_under_runs_by_default_and_says_what_it_is_about_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("tiny.toml");
    std::fs::write(
        &sweep,
        "name = \"tiny\"\nscenario = \"builtin:quick\"\n[set]\nworkload.epochs = 1\n\
         workload.gradients = \"timing-only\"\n[axes]\ncluster.learners = [2, 4]\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_asgd-sim"))
        .args(["reproduce", "--sweeps", path(&sweep)])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.contains("reproduce: 2 points in 1 sweep"),
        "{stdout}"
    );
    assert!(
        dir.path()
            .join("runs/reproduce/reports/tiny/index.html")
            .is_file()
    );
    assert!(
        !dir.path().join("figures").exists(),
        "figures/ is written only when asked"
    );
}

#[test]
fn out_naming_a_file_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results");
    std::fs::write(&file, "keep me").unwrap();
    let below = file.join("sub");
    let quick = repo("scenarios/quick.toml");
    let sweep = repo("scenarios/sweeps/algorithms-quick.toml");
    for (out, why) in [
        (&file, "exists and is not a directory".to_string()),
        (&below, format!("{} is not a directory", file.display())),
    ] {
        for command in ["run", "real", "sweep", "validate", "report", "reproduce"] {
            let args: Vec<&str> = match command {
                "sweep" => vec![command, path(&sweep)],
                "report" => vec![command, path(dir.path())],
                "reproduce" => vec![command],
                _ => vec![command, path(&quick)],
            };
            let started = std::time::Instant::now();
            let o = asgd(&[&args[..], &["--out", path(out)]].concat());
            let (_, stderr) = text(&o);
            assert_eq!(o.status.code(), Some(2), "{command}: {stderr}");
            assert!(stderr.contains(&why), "{command}: {stderr}");
            assert!(started.elapsed().as_secs() < 5, "{command} refused at once");
        }
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn a_key_both_fixed_and_swept_is_bad_input_naming_both_places() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("both.toml");
    std::fs::write(
        &sweep,
        "name = \"both\"\nscenario = \"builtin:quick\"\n[set]\ncluster.learners = 2\n\
         [axes]\ncluster.learners = [2, 4]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = asgd(&["sweep", path(&sweep), "--out", path(&out)]);
    let why = "both.toml:6: axis `cluster.learners`: also fixed by both.toml:4";
    assert_bad_input(&o, &out, &[why]);
    let quick = repo("scenarios/sweeps/algorithms-quick.toml");
    let o = asgd(&[
        "sweep",
        path(&quick),
        "--set",
        "cluster.learners=4",
        "--out",
        path(&out),
    ]);
    assert_bad_input(&o, &out, &["also fixed by --set (`cluster.learners=4`)"]);
}

/// The shipped Power8 + K80 topology with `edit` applied to its text.
fn power8_with(dir: &Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(repo("topologies/power8-k80.toml")).unwrap();
    let p = dir.join("machine.toml");
    std::fs::write(&p, edit(&text)).unwrap();
    p
}

#[test]
fn a_core_without_links_is_refused_by_topology_and_by_run_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let link = "  { between = [\"p8-chip0\", \"chip0-core4\"], class = \"on-chip\" },\n";
    let machine = power8_with(dir.path(), |t| {
        assert!(t.contains(link));
        t.replacen(link, "", 1)
    });
    let out = dir.path().join("out");
    let o = asgd(&["topology", path(&machine)]);
    let at = "machine.toml:20:3: key `nodes[6]`";
    assert_bad_input(&o, &out, &[at, "cpu-core `chip0-core4` has no link"]);
    let set = format!("machine.topology={}", machine.display());
    let o = asgd(&["run", "builtin:quick", "--set", &set, "--out", path(&out)]);
    assert_bad_input(&o, &out, &["chip0-core4"]);
}

#[test]
fn a_link_given_twice_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let link = "  { between = [\"p8-chip0\", \"chip0-core4\"], class = \"on-chip\" },\n";
    let machine = power8_with(dir.path(), |t| {
        t.replacen(link, &format!("{link}{link}"), 1)
    });
    let o = asgd(&["topology", path(&machine)]);
    let at = "machine.toml:83:5: key `links[6].between`";
    let why = "a second link between `p8-chip0` and `chip0-core4`";
    assert_bad_input(&o, &dir.path().join("out"), &[at, why]);
}

#[test]
fn values_that_make_a_run_practically_endless_are_refused_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let easgd = repo("scenarios/easgd.toml");
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "builtin:quick",
            &["workload.epochs=4000000000"],
            "key `workload.epochs`: 4000000000 epochs of 157 mini-batches",
        ),
        (
            "builtin:quick",
            &["workload.dataset.train_samples=4290000000"],
            "at most 2000000 together",
        ),
        (
            "builtin:quick",
            &[
                "workload.dataset.train_samples=4290000000",
                "workload.gradients=timing-only",
            ],
            "past the limit of 100000000",
        ),
        (
            path(&easgd),
            &["algorithm.elastic.tau=9200000000000000000"],
            "must be from 1 to 1000000 local mini-batches",
        ),
    ];
    for (scenario, sets, needle) in cases {
        let mut args = vec!["run", scenario, "--out", path(&out)];
        for s in sets {
            args.extend(["--set", s]);
        }
        let started = std::time::Instant::now();
        assert_bad_input(&asgd(&args), &out, &[needle]);
        assert!(started.elapsed().as_secs() < 5, "{sets:?} refused at once");
    }
}

/// The shipped quick scenario with `edit` applied to its text, its topology path made absolute.
fn quick_with(dir: &Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(repo("scenarios/quick.toml")).unwrap();
    let topology = repo("topologies/power8-k80.toml");
    let text = text.replace("../topologies/power8-k80.toml", path(&topology));
    let p = dir.join("scenario.toml");
    std::fs::write(&p, edit(&text)).unwrap();
    p
}

#[test]
fn duplicate_keys_and_integer_overflow_name_the_key_and_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let twice = quick_with(dir.path(), |t| {
        t.replace("epochs = 5\n", "epochs = 5\nepochs = 6\n")
    });
    let o = asgd(&["run", path(&twice), "--out", path(&out)]);
    let why = "duplicate key `workload.epochs` (first given at line 22)";
    assert_bad_input(&o, &out, &["scenario.toml:23:1", why]);
    let table = quick_with(dir.path(), |t| format!("{t}\n[cluster]\nlearners = 2\n"));
    let o = asgd(&["run", path(&table), "--out", path(&out)]);
    assert_bad_input(
        &o,
        &out,
        &["duplicate key `cluster` (first given at line 11)"],
    );
    let huge = "learners = 99999999999999999999";
    let big = quick_with(dir.path(), |t| t.replace("learners = 4", huge));
    let o = asgd(&["run", path(&big), "--out", path(&out)]);
    let range = "from -9223372036854775808 to 9223372036854775807";
    assert_bad_input(
        &o,
        &out,
        &["key `cluster.learners`: integer too large", range],
    );
    let cases = [
        ("cluster.learners=99999999999999999999", "is too large"),
        ("cluster.learners=-1", "integer `-1`"),
        ("workload.epochs=1.5", "floating point `1.5`"),
    ];
    for (set, needle) in cases {
        let o = asgd(&["run", "builtin:quick", "--set", set, "--out", path(&out)]);
        let allowed = "expected a whole number from 0 to 18446744073709551615";
        assert_bad_input(&o, &out, &[needle, allowed]);
        assert!(!text(&o).1.contains("usize") && !text(&o).1.contains("u64"));
    }
}

#[test]
fn a_bad_value_in_a_class_is_blamed_on_the_class_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let zero = power8_with(dir.path(), |t| {
        t.replace("peak_tflops = 2.8", "peak_tflops = 0")
    });
    let o = asgd(&["topology", path(&zero)]);
    let at = "machine.toml:159:1: key `node_class.gk210.peak_tflops`: must be a positive number";
    assert_bad_input(&o, &out, &[at, "used by 16 entries, the first nodes[42]"]);
    assert_eq!(text(&o).1.lines().count(), 1, "one problem, said once");
    let bw = "[link_class.smp-xbus]\n# Power8 chip-to-chip SMP (X) bus. Estimate: not given in REFERENCE.md.\nbandwidth_gb_per_s = 38.4";
    let link = power8_with(dir.path(), |t| {
        assert!(t.contains(bw));
        t.replace(bw, &bw.replace("38.4", "0"))
    });
    let o = asgd(&["topology", path(&link)]);
    let at = "machine.toml:165:1: key `link_class.smp-xbus.bandwidth_gb_per_s`";
    assert_bad_input(&o, &out, &[at, "(used by links[0])"]);
}

#[test]
fn an_unknown_node_class_is_not_also_reported_as_an_unknown_node() {
    let dir = tempfile::tempdir().unwrap();
    let machine = power8_with(dir.path(), |t| {
        t.replace(
            "{ id = \"gpu0\", class = \"gk210\" }",
            "{ id = \"gpu0\", class = \"gk999\" }",
        )
    });
    let o = asgd(&["topology", path(&machine)]);
    let why = "key `nodes[42].class`: unknown node class `gk999`; declared: gk210";
    assert_bad_input(&o, &dir.path().join("out"), &[why]);
    assert!(
        !text(&o).1.contains("unknown node `gpu0`"),
        "{}",
        text(&o).1
    );
}

#[test]
fn a_mini_batch_larger_than_a_learners_share_of_the_data_is_refused_with_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cases: [(&[&str], &[&str]); 2] = [
        (
            &["algorithm.batch_size=100000"],
            &[
                "key `algorithm.batch_size`: a mini-batch of 100000 samples",
                "larger than the whole training set (5000 samples)",
                "at most 1250 here",
            ],
        ),
        (
            &["cluster.learners=16", "algorithm.batch_size=2000"],
            &[
                "5000 samples over 16 learners is 312 each",
                "fewer mini-batches than learners",
                "at most 312 here",
            ],
        ),
    ];
    for (sets, needles) in cases {
        let mut args = vec!["run", "builtin:quick", "--out", path(&out)];
        for s in sets {
            args.extend(["--set", s]);
        }
        assert_bad_input(&asgd(&args), &out, needles);
        args[0] = "real";
        assert_bad_input(&asgd(&args), &out, needles);
    }
    let fits = [
        "cluster.learners=16",
        "algorithm.batch_size=312",
        "workload.epochs=1",
    ];
    let mut args = vec!["run", "builtin:quick", "-q", "--out", path(&out)];
    for s in &fits {
        args.extend(["--set", s]);
    }
    args.extend(["--set", "workload.gradients=timing-only"]);
    assert!(
        asgd(&args).status.success(),
        "a batch of a whole share runs"
    );
}

/// `epoch_ends_s` and the learners' iterations of the summary in `dir`.
fn epochs_and_iterations(dir: &Path) -> (Vec<f64>, Vec<u64>) {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ends = s["epoch_ends_s"].as_array().unwrap();
    let per = s["per_learner"].as_array().unwrap();
    (
        ends.iter().map(|e| e.as_f64().unwrap()).collect(),
        per.iter()
            .map(|l| l["iterations"].as_u64().unwrap())
            .collect(),
    )
}

#[test]
fn elastic_averaging_counts_epochs_by_local_steps_trained_whatever_tau() {
    let dir = tempfile::tempdir().unwrap();
    let easgd = repo("scenarios/easgd.toml");
    for backend in ["run", "real"] {
        for tau in ["4", "500"] {
            let out = dir.path().join(format!("{backend}-{tau}"));
            let tau = format!("algorithm.elastic.tau={tau}");
            let o = asgd(&[
                backend,
                path(&easgd),
                "-q",
                "--out",
                path(&out),
                "--set",
                &tau,
                "--set",
                "workload.epochs=2",
            ]);
            assert!(o.status.success(), "{}", text(&o).1);
            let (ends, iterations) = epochs_and_iterations(&out);
            // 5,000 samples in batches of 32: 157 mini-batches an epoch, over 4 learners.
            assert_eq!(iterations.iter().sum::<u64>(), 2 * 157, "{backend} {tau}");
            assert!(
                iterations.iter().all(|&i| i > 0),
                "{backend} {tau}: {iterations:?}"
            );
            assert_eq!(ends.len(), 2);
            assert!(
                ends[1] > ends[0] * 1.5,
                "{backend} {tau}: two epochs of work: {ends:?}"
            );
            let curve = std::fs::read_to_string(out.join("curve.csv")).unwrap();
            let samples: Vec<&str> = curve
                .lines()
                .skip(1)
                .map(|l| l.split(',').nth(1).unwrap())
                .collect();
            assert_eq!(samples, ["0", "5024", "10048"], "{backend} {tau}");
        }
    }
}

#[test]
fn a_real_run_stopped_by_ctrl_c_reports_the_epochs_it_completed_and_that_it_was_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("real");
    let quick = repo("scenarios/quick.toml");
    let child = Command::new(env!("CARGO_BIN_EXE_asgd-sim"))
        .args(["real", path(&quick), "-q", "--out", path(&out)])
        .args(["--set", "workload.epochs=2000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cannot start asgd-sim");
    // Long enough for the run to be under way (its first epochs take well under a second),
    // far short of its 2,000 epochs.
    std::thread::sleep(std::time::Duration::from_secs(3));
    // SAFETY: a plain signal to the child this test started and still owns.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(sent, 0);
    let o = child.wait_with_output().unwrap();
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the real run stopped early: interrupted after"),
        "{stderr}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let done = summary["completed_epochs"].as_f64().unwrap();
    assert!(done > 0.0 && done < 2000.0, "{done}");
    assert_eq!(summary["epochs"], 2000);
    assert!(
        summary["cut_short"]
            .as_str()
            .unwrap()
            .starts_with("interrupted after"),
        "{summary}"
    );
    // The epoch time is per epoch completed: it times the completed epochs to the run's end.
    let (total, per) = (
        summary["sim_time_s"].as_f64().unwrap(),
        summary["epoch_time_s"].as_f64().unwrap(),
    );
    assert!(
        (per * done - total).abs() <= 1e-9 * total,
        "{per} x {done} vs {total}"
    );
    let ends = summary["epoch_ends_s"].as_array().unwrap().len() as f64;
    assert!(
        (ends - done).abs() < 1.0,
        "{ends} epoch ends, {done} completed"
    );
}
