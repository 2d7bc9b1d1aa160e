//! The processes backend through the real binary: every learner and shard its own process,
//! talking over TCP on loopback. It learns what the threads backend learns (bit for bit with
//! one learner), ranks started by a launcher meet through the coordinator's address, a rank
//! that dies or a Ctrl-C ends every process with what was measured, and launches that cannot
//! work are refused with the usual clear errors.

mod common;

use common::{SMALL, assert_bad_input, json, learning};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_asgd-sim");

/// `asgd-sim real quick.toml` with [`SMALL`], `sets` and `extra` arguments, into `out`.
fn real(out: &Path, sets: &[&str], extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["real", "scenarios/quick.toml", "-q", "--out"])
        .arg(out)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for s in SMALL.iter().chain(sets) {
        c.args(["--set", s]);
    }
    c.args(extra);
    // A launcher's variables in the test's own environment must not leak in.
    for k in [
        "SLURM_PROCID",
        "SLURM_NTASKS",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "PMI_RANK",
        "PMI_SIZE",
        "ASGD_SIM_RANK",
        "ASGD_SIM_WORLD",
        "ASGD_SIM_COORDINATOR",
        "MASTER_ADDR",
        "MASTER_PORT",
    ] {
        c.env_remove(k);
    }
    c
}

fn run(mut c: Command) -> Output {
    c.output().unwrap()
}

#[test]
fn processes_with_one_learner_learn_what_threads_learn_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let sets = ["cluster.learners=1", "cluster.shards=2"];
    let (threads, procs) = (tmp.path().join("threads"), tmp.path().join("procs"));
    let o = run(real(&threads, &sets, &[]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(real(&procs, &sets, &["--processes"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(learning(&threads), learning(&procs));
    let (t, p) = (json(&threads), json(&procs));
    assert_eq!(t["backend"], "real");
    assert_eq!(p["backend"], "processes");
    for key in ["final", "staleness", "bytes_moved", "iterations_per_epoch"] {
        assert_eq!(t[key], p[key], "{key}");
    }
    let updates = |s: &serde_json::Value| -> Vec<u64> {
        let shards = s["per_shard"].as_array().unwrap();
        shards
            .iter()
            .map(|x| x["updates"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(updates(&t), updates(&p));
    assert_eq!(updates(&p), vec![64, 64]);
    assert!(p["cut_short"].is_null());
    assert!(p["breakdown"]["pull"].as_f64().unwrap() > 0.0);
}

#[test]
fn processes_with_three_learners_apply_every_iteration_once_at_every_shard() {
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["downpour", "ssp"] {
        let out = tmp.path().join(kind);
        let sets = [
            "cluster.learners=3",
            "cluster.shards=2",
            &format!("algorithm.kind={kind}"),
            "algorithm.ssp.staleness_bound=1",
        ];
        let o = run(real(&out, &sets, &["--processes"]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let s = json(&out);
        let per_learner = s["per_learner"].as_array().unwrap();
        let done: u64 = per_learner
            .iter()
            .map(|l| l["iterations"].as_u64().unwrap())
            .sum();
        assert_eq!(done, 64, "{kind}");
        for sh in s["per_shard"].as_array().unwrap() {
            assert_eq!(sh["updates"], 64, "{kind}");
        }
        let staleness: u64 = s["staleness"]["histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(
            staleness,
            2 * 64,
            "{kind}: one staleness per update per shard"
        );
        assert_eq!(s["epoch_ends_s"].as_array().unwrap().len(), 2, "{kind}");
        let curve = std::fs::read_to_string(out.join("curve.csv")).unwrap();
        assert_eq!(
            curve.lines().count(),
            4,
            "{kind}: header, start, two epochs"
        );
    }
}

#[test]
fn synchronous_sgd_across_processes_learns_what_threads_learn_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    // Every round's step sums the gradients in learner order, whatever the timing: the same
    // numbers with three learners, through the shards and around the ring.
    for kind in ["ssgd-ps", "ssgd-allreduce"] {
        let sets = [
            "cluster.learners=3",
            "cluster.shards=2",
            "algorithm.momentum=0.9",
            &format!("algorithm.kind={kind}"),
        ];
        let threads = tmp.path().join(format!("{kind}-threads"));
        let procs = tmp.path().join(format!("{kind}-procs"));
        let o = run(real(&threads, &sets, &[]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = run(real(&procs, &sets, &["--processes"]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(learning(&threads), learning(&procs), "{kind}");
        let (t, p) = (json(&threads), json(&procs));
        assert_eq!(p["backend"], "processes");
        assert!(p["cut_short"].is_null(), "{kind}");
        for key in ["final", "staleness", "bytes_moved", "per_shard"] {
            let (t, p) = (&t[key], &p[key]);
            if key == "per_shard" {
                let updates = |s: &serde_json::Value| -> Vec<serde_json::Value> {
                    let shards = s.as_array().unwrap();
                    shards.iter().map(|x| x["updates"].clone()).collect()
                };
                assert_eq!(updates(t), updates(p), "{kind}");
            } else {
                assert_eq!(t, p, "{kind}: {key}");
            }
        }
        let iterations = |s: &serde_json::Value| -> Vec<u64> {
            let each = s["per_learner"].as_array().unwrap();
            each.iter()
                .map(|l| l["iterations"].as_u64().unwrap())
                .collect()
        };
        // Two epochs of 32 in 22 rounds of three: the last round's second and third batches
        // do not count.
        assert_eq!(iterations(&p), vec![22, 21, 21], "{kind}");
        assert_eq!(iterations(&t), iterations(&p), "{kind}");
        assert!(p["breakdown"]["compute"].as_f64().unwrap() > 0.0, "{kind}");
        assert!(p["breakdown"]["push"].as_f64().unwrap() > 0.0, "{kind}");
    }
}

#[test]
fn ranks_started_by_a_launcher_meet_at_the_coordinators_address() {
    let tmp = tempfile::tempdir().unwrap();
    let sets = ["cluster.learners=1", "cluster.shards=2"];
    let own = tmp.path().join("own");
    let o = run(real(&own, &sets, &["--processes"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // As srun would: four tasks, each told its rank and the coordinator's address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tmp.path().join("srun");
    let tasks: Vec<Child> = (0..4)
        .map(|rank| {
            let mut c = real(&out, &sets, &["--processes"]);
            c.env("SLURM_PROCID", rank.to_string())
                .env("SLURM_NTASKS", "4")
                .env("ASGD_SIM_COORDINATOR", format!("127.0.0.1:{port}"))
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for t in tasks {
        let o = t.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(learning(&own), learning(&out));
    assert_eq!(json(&out)["backend"], "processes");
}

/// The pids of `parent`'s children, with their ASGD_SIM_RANK.
fn ranks_of(parent: u32) -> Vec<(u32, String)> {
    let mut found = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let after = &stat[stat.rfind(')').unwrap_or(0) + 1..];
        let ppid: u32 = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid != parent {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let rank = env
            .split(|&b| b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .find_map(|kv| kv.strip_prefix("ASGD_SIM_RANK="))
            .unwrap_or("")
            .to_string();
        found.push((pid, rank));
    }
    found
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s[s.rfind(')').unwrap_or(0) + 1..]
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Starts a long run of `kind` across processes (1 coordinator, 2 learners and, but for the
/// ring, 2 shards), waits until every rank is up and the run has gone on a while, then hands
/// over the coordinator and its ranks' pids by rank.
// The child is handed to the caller, which waits for it (`ended`).
#[allow(clippy::zombie_processes)]
fn long_run(out: &Path, kind: &str) -> (Child, Vec<(u32, String)>) {
    let sets = [
        "cluster.learners=2",
        "cluster.shards=2",
        "workload.epochs=400",
        &format!("algorithm.kind={kind}"),
    ];
    let ranks = if kind == "ssgd-allreduce" { 2 } else { 4 };
    let mut c = real(out, &sets, &["--processes"]);
    let mut child = c.stderr(Stdio::piped()).spawn().unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        // A child read between fork and exec still has the launcher's environment, with no
        // rank: wait until every child has its own.
        let got = ranks_of(child.id());
        if got.len() == ranks && got.iter().all(|(_, r)| !r.is_empty()) {
            std::thread::sleep(Duration::from_secs(3));
            return (child, got);
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the ranks did not all start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to a minute for `child`, then checks that none of `ranks` is left.
fn ended(child: Child, ranks: &[(u32, String)]) -> Output {
    let until = Instant::now() + Duration::from_secs(60);
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            panic!("the coordinator did not end");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    for (pid, rank) in ranks {
        assert!(!alive(*pid), "rank {rank} (pid {pid}) outlived the run");
    }
    o
}

#[cfg(target_os = "linux")]
#[test]
fn a_killed_rank_ends_every_process_and_the_run_says_which_and_what_it_measured() {
    let tmp = tempfile::tempdir().unwrap();
    // Ranks: 0 coordinator, 1-2 shards, 3-4 learners; in the ring, 1-2 learners. A learner
    // killed under synchronous SGD leaves the others waiting at the barrier (the shards') or
    // for its chunk (the ring's): they too must end.
    for (kind, victim, role) in [
        ("downpour", "4", "learner 1"),
        ("downpour", "2", "shard 1"),
        ("ssgd-ps", "3", "learner 0"),
        ("ssgd-allreduce", "2", "learner 1"),
    ] {
        let out = tmp.path().join(format!("{kind}-{victim}"));
        let (child, ranks) = long_run(&out, kind);
        let pid = ranks.iter().find(|(_, r)| r == victim).unwrap().0;
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let o = ended(child, &ranks);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains(role) && err.contains("stopped early"),
            "{kind}: {err}"
        );
        let s = json(&out);
        let why = s["cut_short"].as_str().unwrap_or_default();
        assert!(why.contains(role), "{kind}: {why}");
        let done = s["completed_epochs"].as_f64().unwrap();
        assert!(done > 0.0 && done < 400.0, "{kind}: {done}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn an_interrupt_stops_every_process_and_writes_what_was_measured() {
    let tmp = tempfile::tempdir().unwrap();
    // Synchronous learners may be waiting at the shards' barrier or for a chunk when it
    // comes: they stop too, and the run says it was interrupted, not that a link broke.
    for kind in ["downpour", "ssgd-ps", "ssgd-allreduce"] {
        let out = tmp.path().join(kind);
        let (child, ranks) = long_run(&out, kind);
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let o = ended(child, &ranks);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{kind}: {err}");
        assert!(err.contains("interrupted after"), "{kind}: {err}");
        let s = json(&out);
        let why = s["cut_short"].as_str().unwrap();
        assert!(why.starts_with("interrupted after"), "{kind}: {why}");
        let curve = std::fs::read_to_string(out.join("curve.csv")).unwrap();
        assert!(curve.lines().count() >= 2, "{kind}");
    }
}

#[test]
fn launches_that_cannot_work_are_refused_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut c = real(&out, &["cluster.learners=1"], &["--processes"]);
    c.env("SLURM_PROCID", "0").env("SLURM_NTASKS", "3");
    let o = run(c);
    assert_bad_input(
        &o,
        &out,
        &["ASGD_SIM_COORDINATOR=host:port", "SLURM_PROCID"],
    );
    let mut c = real(
        &out,
        &["cluster.learners=1", "cluster.shards=2"],
        &["--processes"],
    );
    c.env("SLURM_PROCID", "0")
        .env("SLURM_NTASKS", "3")
        .env("ASGD_SIM_COORDINATOR", "127.0.0.1:9");
    let o = run(c);
    assert_bad_input(&o, &out, &["runs as 4 processes", "srun -n 4"]);
    let o = run(real(&out, &["algorithm.kind=hogwild"], &["--processes"]));
    assert_bad_input(&o, &out, &["hogwild", "cannot run across processes"]);
}

/// The learners' timeline of a real run (`--trace`), for both backends: every gradient is
/// one compute span, each learner's spans follow one another without overlap, and each
/// activity's spans add up to the summary's breakdown of it.
#[test]
fn a_real_runs_trace_holds_every_learners_acts_in_order_and_adds_up_to_its_breakdown() {
    let tmp = tempfile::tempdir().unwrap();
    let sets = ["cluster.learners=2", "cluster.shards=2"];
    for (how, extra) in [("threads", vec![]), ("processes", vec!["--processes"])] {
        let (out, trace) = (tmp.path().join(how), tmp.path().join(format!("{how}.json")));
        let mut args = extra.clone();
        args.extend(["--trace", trace.to_str().unwrap()]);
        let o = run(real(&out, &sets, &args));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let s = json(&out);
        let t: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
        let spans: Vec<&serde_json::Value> = t["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] == "X" && e["cat"] == "learner")
            .collect();
        let computes = spans.iter().filter(|e| e["name"] == "compute").count();
        assert_eq!(computes, 64, "{how}: one compute span per gradient");
        let epochs = s["epochs"].as_f64().unwrap();
        let learners = s["learners"].as_f64().unwrap();
        for activity in ["pull", "compute", "push"] {
            let traced: f64 = spans
                .iter()
                .filter(|e| e["name"] == activity)
                .map(|e| e["dur"].as_f64().unwrap() * 1e-6)
                .sum();
            // The breakdown is per epoch, the mean over learners; a push's span also holds
            // its server update and wait.
            let mut booked = s["breakdown"][activity].as_f64().unwrap() * epochs * learners;
            if activity == "push" {
                for more in ["server_update", "wait"] {
                    booked += s["breakdown"][more].as_f64().unwrap() * epochs * learners;
                }
            }
            assert!(
                (traced - booked).abs() <= 1e-6 * booked.max(1.0),
                "{how} {activity}: traced {traced} s, breakdown {booked} s"
            );
        }
        for l in 0..2u64 {
            let mut mine: Vec<(f64, f64)> = spans
                .iter()
                .filter(|e| e["tid"].as_u64() == Some(l))
                .map(|e| {
                    let ts = e["ts"].as_f64().unwrap();
                    (ts, ts + e["dur"].as_f64().unwrap())
                })
                .collect();
            mine.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(!mine.is_empty(), "{how}: learner {l} has no spans");
            for w in mine.windows(2) {
                assert!(
                    w[1].0 >= w[0].1 - 1e-3,
                    "{how}: learner {l} overlaps: {w:?}"
                );
            }
        }
    }
}
