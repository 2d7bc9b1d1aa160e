//! Uneven learners (`[faults]`), in both backends: factors of 1 change nothing, a slowed
//! learner's gradient takes its factor times the device's time in the simulator, the real
//! backend makes a slowed learner really take longer, synchronous SGD's backup workers step
//! without the slowest, and bad specifications are refused with their key.

mod common;

use asgd_sim::run;
use common::quick;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_asgd-sim");

/// Every kind's run on the quick scenario with `sets`, simulated, as its summary's JSON.
fn simulated(kind: &str, sets: &[&str]) -> String {
    let mut all = vec![
        "cluster.learners=4",
        "devices.jitter.std_s=0.002",
        "algorithm.elastic.tau=2",
        "algorithm.ssp.staleness_bound=1",
        "algorithm.dc-asgd.lambda=0.5",
    ];
    let k = format!("algorithm.kind={kind}");
    all.push(&k);
    all.extend(sets);
    let sc = quick(&all);
    run::simulate(&sc, ()).unwrap().summary.to_json()
}

#[test]
fn factors_of_one_everywhere_give_the_same_run_bit_for_bit() {
    for kind in ["downpour", "ssp", "easgd", "ssgd-ps", "ssgd-allreduce"] {
        let plain = simulated(kind, &[]);
        let ones = simulated(kind, &["faults.learner_slowdowns=[1.0, 1.0, 1.0, 1.0]"]);
        assert_eq!(plain, ones, "{kind}");
        let none_slow = simulated(kind, &["faults.slowdown=1.0", "faults.slow_learners=4"]);
        assert_eq!(plain, none_slow, "{kind}");
    }
}

/// One learner alone, slowed k times: every gradient takes exactly k times the device's
/// time (0.125 s and 0.375 s are exact in binary, so no rounding stands between them).
#[test]
fn one_learner_at_factor_k_alone_takes_exactly_k_times_the_compute_time() {
    let at = |k: &str| {
        let sc = quick(&[
            "cluster.learners=1",
            "workload.gradients=timing-only",
            "devices.compute_time_s=0.125",
            "devices.jitter.std_s=0",
            &format!("faults.slowdown={k}"),
        ]);
        let s = run::simulate(&sc, ()).unwrap().summary;
        (
            s.breakdown.compute,
            s.iterations_per_epoch as f64,
            s.epoch_time_s,
        )
    };
    let (one, n, epoch1) = at("1");
    let (three, _, epoch3) = at("3");
    assert_eq!(one, 0.125 * n);
    assert_eq!(three, 0.375 * n);
    // The rest of the epoch (pulls, pushes, updates) is untouched.
    let rest = epoch1 - one;
    assert!(
        (epoch3 - three - rest).abs() < 1e-9,
        "{epoch3} {three} {rest}"
    );
}

/// A slowed learner in a run of several: only its gradients stretch, so it completes fewer
/// of the run's iterations than the others.
#[test]
fn a_slowed_learner_does_fewer_of_the_iterations() {
    let sc = quick(&[
        "workload.gradients=timing-only",
        "devices.compute_time_s=0.05",
        "faults.slowdown=4",
    ]);
    let s = run::simulate(&sc, ()).unwrap().summary;
    let done: Vec<u64> = s.per_learner.iter().map(|l| l.iterations).collect();
    let (slow, fast) = (done[3], done[0]);
    assert!(slow * 2 < fast, "iterations per learner: {done:?}");
    // The summary says who was slowed, and by how much; a learner at its device's speed
    // carries no such key, so unslowed runs' summaries read as before.
    let factors: Vec<f64> = s.per_learner.iter().map(|l| l.slowdown).collect();
    assert_eq!(factors, [1.0, 1.0, 1.0, 4.0]);
    let json: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
    assert_eq!(json["per_learner"][3]["slowdown"], 4.0);
    assert!(json["per_learner"][0].get("slowdown").is_none());
}

/// The real backend's compute spans of each of two learners slowed by `factors`, in
/// microseconds (from `real --trace`).
fn real_computes(factors: &str) -> [Vec<f64>; 2] {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.json");
    let o = Command::new(BIN)
        .args(["real", "scenarios/quick.toml", "-q", "--out"])
        .arg(dir.path().join("out"))
        .args(["--trace", trace.to_str().unwrap()])
        .args(["--set", "cluster.learners=2"])
        .args(["--set", "workload.epochs=1"])
        .args(["--set", "workload.dataset.train_samples=1024"])
        .args(["--set", "algorithm.batch_size=64"])
        .args(["--set", &format!("faults.learner_slowdowns={factors}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let spans = |l: u64| -> Vec<f64> {
        let mut c: Vec<f64> = t["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] == "X" && e["name"] == "compute" && e["tid"].as_u64() == Some(l))
            .map(|e| e["dur"].as_f64().unwrap())
            .collect();
        c.sort_by(f64::total_cmp);
        c
    };
    [spans(0), spans(1)]
}

/// The real backend slows a learner for real: in one run, beside a peer at its device's
/// speed, a learner slowed 4 times takes well over its peer's median gradient (a learner not
/// slowed would take about as long as its peer). Only a loose lower bound is pinned: both
/// share this machine's cores with the rest of the suite, so each one's own work varies
/// (measured 3.84 to 4.51 times for a factor of 4 on an idle machine, 9.6 while it was busy
/// compiling, 2.13 with two busy loops beside the suite: a learner waking from its sleep gets
/// a core sooner than its peer). That the wait is the factor times the learner's own work is
/// pinned exactly by the unit tests of `real::runtime::slow_down`.
#[test]
fn a_slowed_learner_really_takes_well_over_its_peers_gradient() {
    let median = |c: &[f64]| c[c.len() / 2];
    let [peer, slowed] = real_computes("[1.0, 4.0]");
    assert!(peer.len() > slowed.len(), "{} {}", peer.len(), slowed.len());
    let ratio = median(&slowed) / median(&peer);
    assert!(ratio >= 1.5, "measured slowdown {ratio}");
}

/// Timing-only synchronous SGD through the server on the quick scenario with `sets`.
fn ssgd_ps(sets: &[&str]) -> asgd_sim::report::summary::Summary {
    let mut all = vec![
        "algorithm.kind=ssgd-ps",
        "workload.gradients=timing-only",
        "workload.epochs=2",
        "devices.jitter.std_s=0",
    ];
    all.extend(sets);
    run::simulate(&quick(&all), ()).unwrap().summary
}

#[test]
fn no_backup_workers_is_plain_synchronous_sgd_bit_for_bit() {
    let plain = ssgd_ps(&[]).to_json();
    assert_eq!(
        plain,
        ssgd_ps(&["algorithm.ssgd.backup_workers=0"]).to_json()
    );
    assert!(!plain.contains("dropped_gradients"));
}

/// With one backup worker the round never waits for a learner a thousand times slower: the
/// epoch takes what three equal learners' does (the slow one's rare gradients, dropped,
/// cost the shards and links a little), where without the backup it takes the slow one's.
#[test]
fn one_backup_worker_steps_without_the_slowest_learner() {
    let three = ssgd_ps(&["cluster.learners=3"]).epoch_time_s;
    let slow = ["cluster.learners=4", "faults.slowdown=1000"];
    let waits = ssgd_ps(&slow).epoch_time_s;
    let mut sets = slow.to_vec();
    sets.push("algorithm.ssgd.backup_workers=1");
    let backed = ssgd_ps(&sets);
    let ratio = backed.epoch_time_s / three;
    assert!((1.0..1.01).contains(&ratio), "{backed:?} vs {three}");
    assert!(waits > 10.0 * backed.epoch_time_s, "{waits}");
    // Every step took three gradients; the slow learner never finished one in time.
    let done: u64 = backed.per_learner.iter().map(|l| l.iterations).sum();
    assert_eq!(done, 2 * backed.iterations_per_epoch);
    assert_eq!(backed.per_learner[3].iterations, 0);
    assert_eq!(backed.staleness.max, 0);
    // Four equal learners: every round drops the last gradient to come in, and the run
    // still counts exactly its iterations.
    let equal = ssgd_ps(&["cluster.learners=4", "algorithm.ssgd.backup_workers=1"]);
    let done: u64 = equal.per_learner.iter().map(|l| l.iterations).sum();
    let dropped: u64 = equal.per_learner.iter().map(|l| l.dropped_gradients).sum();
    assert_eq!(done, 2 * equal.iterations_per_epoch);
    assert!(dropped >= done / 3 - 1, "{dropped} dropped of {done}");
}

/// The real backend's shards keep the same rounds: with a backup worker and a slowed
/// learner, both backends finish every iteration, the slow learner's gradients mostly
/// dropped, none of the applied ones stale.
#[test]
fn real_backup_workers_finish_the_run_and_drop_the_slow_learners_gradients() {
    let sc = quick(&[
        "algorithm.kind=ssgd-ps",
        "cluster.learners=3",
        "algorithm.ssgd.backup_workers=1",
        "faults.slowdown=8",
        "workload.epochs=1",
        "workload.dataset.train_samples=1600",
    ]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let real = asgd_sim::real::run(&sc, (), &stop).unwrap();
    let s = &real.summary;
    assert!(s.cut_short.is_none(), "{:?}", s.cut_short);
    let done: u64 = s.per_learner.iter().map(|l| l.iterations).sum();
    assert_eq!(done, sc.iterations_per_epoch);
    let (fast, slow) = (&s.per_learner[0], &s.per_learner[2]);
    assert!(slow.dropped_gradients > 0, "{s:?}");
    assert!(slow.iterations < fast.iterations, "{s:?}");
    assert_eq!(s.staleness.max, 0);
    let applied: u64 = s.per_shard.iter().map(|sh| sh.updates).sum();
    // Each shard steps once per round of two gradients.
    assert_eq!(applied, 2 * sc.iterations_per_epoch.div_ceil(2));
}

#[test]
fn bad_fault_specifications_are_refused_with_their_key() {
    for (set, needle) in [
        (
            "faults.fail_at_s=-1",
            "key `faults.fail_at_s`: must be a time from 0",
        ),
        (
            "faults.learner_failures=[{learner = 4, at_s = 1.0}]",
            "key `faults.learner_failures[0].learner`: is 4, but the run has learners 0 to 3",
        ),
        (
            "faults.learner_failures=[{learner = 1, at_s = 1.0, down_for_s = -0.5}]",
            "key `faults.learner_failures[0].down_for_s`: must be a positive time",
        ),
        (
            "faults.down_for_s=3",
            "key `faults.down_for_s`: needs faults.fail_at_s",
        ),
        (
            "algorithm.ssgd.backup_workers=4",
            "key `algorithm.ssgd.backup_workers`: is 4, but a round needs at least one",
        ),
        (
            "faults.slowdown=-2",
            "key `faults.slowdown`: must be a factor from 1",
        ),
        (
            "faults.slow_learners=9",
            "key `faults.slowdown`: is needed to say how slow",
        ),
        (
            "faults.learner_slowdowns=[1.0, 2.0]",
            "key `faults.learner_slowdowns`: has 2 factors for 4 learners",
        ),
        (
            "faults.shard_failures=[{shard = 2, at_s = 1.0, down_for_s = 1.0}]",
            "key `faults.shard_failures[0].shard`: is 2, but the run has shards 0 to 1",
        ),
        (
            "faults.shard_failures=[{shard = 0, at_s = 1.0, down_for_s = 0.0}]",
            "key `faults.shard_failures[0].down_for_s`: must be a positive time",
        ),
        (
            "faults.shard_failures=[{shard = 0, at_s = 1.0, down_for_s = 2.0}, {shard = 0, at_s = 2.0, down_for_s = 1.0}]",
            "key `faults.shard_failures[1].at_s`: shard 0 fails again while it is down",
        ),
        (
            "algorithm.kind=ssgd-allreduce --set faults.shard_failures=[{shard = 0, at_s = 1.0, down_for_s = 1.0}]",
            "key `faults.shard_failures`: cannot fail a shard: ssgd-allreduce has no shards",
        ),
        (
            "faults.checkpoint_every_s=-1",
            "key `faults.checkpoint_every_s`: must be a positive time",
        ),
        (
            "algorithm.kind=hogwild --set faults.shard_failures=[{shard = 0, at_s = 1.0, down_for_s = 1.0}]",
            "key `faults.shard_failures`: cannot fail a shard: hogwild's learners write one shared vector",
        ),
        (
            "faults.link_slowdown=0.5",
            "key `faults.link_slowdown`: must be a factor from 1 to 1000 (how many times slower \
             the link carries data",
        ),
        (
            "faults.slow_links=2",
            "key `faults.link_slowdown`: is needed to say how slow the 2 slow learners' links",
        ),
        (
            "faults.link_slowdowns=[{between = [\"gpu3\"], factor = 2.0}]",
            "key `faults.link_slowdowns[0].between`: must name the link's two ends",
        ),
        (
            "faults.link_slowdowns=[{between = [\"gpu3\", \"gpu99\"], factor = 2.0}]",
            "key `faults.link_slowdowns[0].between`: `power8-k80` has no node `gpu99`",
        ),
        (
            "faults.link_slowdowns=[{between = [\"gpu3\", \"gpu0\"], factor = 2.0}]",
            "key `faults.link_slowdowns[0].between`: `gpu3` and `gpu0` are not linked",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let o = Command::new(BIN)
            .args(["run", "scenarios/quick.toml", "--out"])
            .arg(&out)
            .args(set.split(" --set ").flat_map(|s| ["--set", s]))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        common::assert_bad_input(&o, &out, &[needle]);
    }
}

/// Timing-only runs of the quick scenario with `sets`.
fn timed(sets: &[&str]) -> asgd_sim::report::summary::Summary {
    let mut all = vec!["workload.gradients=timing-only"];
    all.extend(sets);
    run::simulate(&quick(&all), ()).unwrap().summary
}

/// What a run's timing is, learner by learner, leaving out learners past `p`.
fn timing(s: &asgd_sim::report::summary::Summary, p: usize) -> String {
    let per: Vec<_> = s.per_learner[..p]
        .iter()
        .map(|l| (l.iterations, serde_json::to_string(&l.breakdown).unwrap()))
        .collect();
    format!(
        "{} {:?} {:?} {:?} {} {:?}",
        s.sim_time_s,
        s.epoch_ends_s,
        s.staleness.histogram,
        s.per_shard
            .iter()
            .map(|sh| (sh.updates, sh.utilization))
            .collect::<Vec<_>>(),
        s.bytes_moved,
        per
    )
}

/// A learner down from t = 0 never sends anything and draws nothing from the run's RNG, so
/// the run's timing is a run of p - 1 learners' to the nanosecond: every epoch's end, each
/// remaining learner's iterations and breakdown, the staleness, the shards' updates and the
/// bytes. (The numbers differ: the data is still dealt out in p partitions, and the dead
/// learner's is never read.)
#[test]
fn a_learner_dead_from_the_start_times_the_run_of_p_minus_1_learners() {
    for kind in ["downpour", "ssp", "hogwild"] {
        let k = format!("algorithm.kind={kind}");
        let sets = [k.as_str(), "algorithm.ssp.staleness_bound=1"];
        let three = timed(&[&sets[..], &["cluster.learners=3"]].concat());
        let dead = timed(&[&sets[..], &["faults.fail_at_s=0"]].concat());
        assert_eq!(timing(&three, 3), timing(&dead, 3), "{kind}");
        assert_eq!(dead.per_learner[3].iterations, 0);
        assert!(dead.cut_short.is_none());
        let f = &dead.faults[0];
        assert_eq!((f.learner, f.failed_at_s, f.back_at_s), (3, 0.0, None));
    }
}

/// Synchronous SGD with b backup workers and one learner that never computes (down from the
/// start): every round steps by the p - 1 others, and the epoch times are p - 1 equal
/// learners' exactly.
#[test]
fn backup_workers_and_a_learner_down_from_the_start_time_the_run_of_p_minus_1() {
    let three = ssgd_ps(&["cluster.learners=3"]);
    let dead = ssgd_ps(&["faults.fail_at_s=0", "algorithm.ssgd.backup_workers=1"]);
    assert_eq!(timing(&three, 3), timing(&dead, 3));
}

/// Without backups synchronous SGD waits at its barrier for a learner that never comes back:
/// the run stops where it stalled, reports what it completed and says why.
#[test]
fn synchronous_sgd_stalls_on_a_learner_gone_for_good_and_says_why() {
    let s = ssgd_ps(&["faults.fail_at_s=0.005"]);
    let why = s.cut_short.as_deref().unwrap();
    assert!(why.starts_with("stalled: learner 3 (failed at 0.005 s) never came back"));
    assert!(why.contains("backup_workers"));
    let done: u64 = s.per_learner.iter().map(|l| l.iterations).sum();
    assert!(done > 0 && done < 2 * s.iterations_per_epoch);
    assert_eq!(
        s.completed_epochs,
        Some(done as f64 / s.iterations_per_epoch as f64)
    );
    // Back after a while, it is waited for and the run completes.
    let back = ssgd_ps(&["faults.fail_at_s=0.005", "faults.down_for_s=0.01"]);
    assert!(back.cut_short.is_none());
    let plain = ssgd_ps(&[]);
    assert!(
        back.sim_time_s > plain.sim_time_s + 0.009,
        "{} {}",
        back.sim_time_s,
        plain.sim_time_s
    );
}

/// SSP's bound counts the learners that are up: a learner that fails holds nobody back, and
/// one that comes back rejoins at the slowest running count, so no update is staler than
/// the bound allows.
#[test]
fn ssp_goes_on_without_a_failed_learner_and_keeps_its_bound() {
    for down in [None, Some("faults.down_for_s=0.005")] {
        let mut sets = vec![
            "algorithm.kind=ssp",
            "algorithm.ssp.staleness_bound=1",
            "faults.fail_at_s=0.003",
        ];
        sets.extend(down);
        let s = timed(&sets);
        assert!(s.cut_short.is_none(), "{:?}", s.cut_short);
        assert!(s.staleness.max <= asgd_sim::algorithm::ssp::max_staleness(4, 1));
        assert_eq!(s.faults[0].back_at_s.is_some(), down.is_some());
    }
}

/// A learner that fails and comes back, with real gradients: the run completes, the summary
/// says when it failed and came back, and the trace marks both.
#[test]
fn a_learner_that_comes_back_pulls_again_and_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (out, trace) = (dir.path().join("out"), dir.path().join("trace.json"));
    let o = Command::new(BIN)
        .args(["run", "scenarios/quick.toml", "-q", "--out"])
        .arg(&out)
        .arg("--trace")
        .arg(&trace)
        .args([
            "--set",
            "faults.fail_at_s=0.02",
            "--set",
            "faults.down_for_s=0.03",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let f = &summary["faults"][0];
    assert_eq!(f["learner"], 3);
    assert_eq!(f["failed_at_s"], 0.02);
    assert_eq!(f["back_at_s"], 0.05);
    assert!(summary.get("cut_short").is_none());
    assert!(summary["final"]["test_accuracy"].as_f64().unwrap() > 0.3);
    let t = std::fs::read_to_string(&trace).unwrap();
    assert!(t.contains("\"name\":\"failed\"") && t.contains("\"name\":\"back\""));
}

/// The real backend applies the same failures: a learner gone for good gives its claimed
/// iteration back and the others finish the run; one that comes back does so when its time
/// down is over, counted as wait, and carries on.
#[test]
fn real_learners_fail_and_come_back_on_the_scenarios_schedule() {
    let run = |sets: &[&str]| {
        let mut all = vec![
            "workload.dataset.train_samples=1600",
            "faults.fail_at_s=0.03",
        ];
        all.extend(sets);
        let stop = std::sync::atomic::AtomicBool::new(false);
        let sc = quick(&all);
        let s = asgd_sim::real::run(&sc, (), &stop).unwrap().summary;
        assert!(s.cut_short.is_none(), "{:?}", s.cut_short);
        let done: u64 = s.per_learner.iter().map(|l| l.iterations).sum();
        assert_eq!(done, s.epochs * sc.iterations_per_epoch, "{sets:?}");
        assert_eq!(s.faults.len(), 1, "{sets:?}");
        let f = s.faults[0];
        assert_eq!(f.learner, 3);
        // It fails between acts, at the first after its time.
        assert!((0.03..0.5).contains(&f.failed_at_s), "{f:?}");
        (s, f)
    };
    for kind in ["algorithm.kind=downpour", "algorithm.kind=ssgd-ps"] {
        let (s, f) = run(&[kind, "algorithm.ssgd.backup_workers=1"]);
        assert_eq!(f.back_at_s, None);
        assert!(s.per_learner[3].iterations < s.per_learner[0].iterations);
    }
    let (_, f) = run(&["faults.down_for_s=0.05", "workload.epochs=4"]);
    let back = f.back_at_s.expect("back before the run ended");
    assert!((0.08..0.2).contains(&back), "{f:?}");
}

/// A real synchronous run whose learner fails for good would wait at its barrier forever:
/// refused before it starts, with what to change.
#[test]
fn a_real_synchronous_run_that_would_wait_forever_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = Command::new(BIN)
        .args(["real", "scenarios/quick.toml", "--out"])
        .arg(&out)
        .args([
            "--set",
            "algorithm.kind=ssgd-ps",
            "--set",
            "faults.fail_at_s=1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    common::assert_bad_input(
        &o,
        &out,
        &[
            "learner 3 fails for good at 1 s",
            "algorithm.ssgd.backup_workers",
        ],
    );
}

/// Across processes the learner's failure goes to the coordinator: the others finish the run
/// and the summary records it.
#[test]
fn a_learner_process_fails_and_the_others_finish_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = Command::new(BIN)
        .args(["real", "scenarios/quick.toml", "--processes", "-q", "--out"])
        .arg(&out)
        .args([
            "--set",
            "workload.epochs=1",
            "--set",
            "workload.dataset.train_samples=1600",
        ])
        .args(["--set", "faults.fail_at_s=0.05"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(s.get("cut_short").is_none(), "{s}");
    let done: u64 = (s["per_learner"].as_array().unwrap().iter())
        .map(|l| l["iterations"].as_u64().unwrap())
        .sum();
    assert_eq!(done, s["iterations_per_epoch"].as_u64().unwrap());
    assert_eq!(s["faults"][0]["learner"], 3);
    assert!(s["faults"][0]["back_at_s"].is_null());
}

/// Slow spells of factor 1 stretch nothing: every kind's run is the same bit for bit.
#[test]
fn slow_spells_of_factor_one_change_nothing() {
    let spells = [
        "faults.flaky_slowdown=1",
        "faults.flaky_slow_s=0.001",
        "faults.flaky_fast_s=0.001",
        "faults.flaky_learners=4",
    ];
    for kind in ["downpour", "ssgd-ps", "ssgd-allreduce", "easgd"] {
        assert_eq!(simulated(kind, &[]), simulated(kind, &spells), "{kind}");
    }
}

/// A learner whose first fast stay ends within a nanosecond and whose slow spell lasts a
/// million seconds on average computes every gradient in the slow spell: exactly the compute
/// time of a learner slowed by the same factor for good. Spells that come and go land between
/// the two.
#[test]
fn a_learner_always_in_its_slow_spell_is_a_slowed_learner() {
    let compute = |sets: &[&str]| {
        let mut all = vec![
            "cluster.learners=1",
            "workload.gradients=timing-only",
            "devices.compute_time_s=0.125",
            "devices.jitter.std_s=0",
        ];
        all.extend(sets);
        run::simulate(&quick(&all), ())
            .unwrap()
            .summary
            .breakdown
            .compute
    };
    let slowed = compute(&["faults.slowdown=3"]);
    let always = compute(&[
        "faults.flaky_slowdown=3",
        "faults.flaky_fast_s=1e-9",
        "faults.flaky_slow_s=1e6",
    ]);
    assert_eq!(always, slowed);
    let plain = compute(&[]);
    let spells = compute(&[
        "faults.flaky_slowdown=3",
        "faults.flaky_fast_s=0.5",
        "faults.flaky_slow_s=0.5",
    ]);
    assert!(
        plain < spells && spells < slowed,
        "{plain} {spells} {slowed}"
    );
}

/// The quick scenario's machine with the link from `gpu` to its board's switch at `1 / factor`
/// of its bandwidth, written into `dir`.
fn machine_with_slow_link(dir: &std::path::Path, gpu: &str, board: &str, factor: f64) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("topologies/power8-k80.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let bw = doc["link_class"]["pcie-board"]["bandwidth_gb_per_s"]
        .as_float()
        .unwrap();
    let link = format!("{{ between = [\"{board}\", \"{gpu}\"], class = \"pcie-board\" }}");
    assert!(text.contains(&link), "{link}");
    let slow = format!(
        "{{ between = [\"{board}\", \"{gpu}\"], class = \"pcie-board\", bandwidth_gb_per_s = {} }}",
        bw / factor
    );
    let path = dir.join("slow.toml");
    std::fs::write(&path, text.replace(&link, &slow)).unwrap();
    format!("machine.topology=\"{}\"", path.display())
}

/// A run's summary as JSON without the record of the slowed links.
fn without_slow_links(s: &asgd_sim::report::summary::Summary) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap();
    v.as_object_mut().unwrap().remove("slow_links");
    v
}

/// A slowed link is the machine with that link's bandwidth divided by the factor, to the
/// last bit of every number; naming the link or slowing the learner's own links is the same;
/// and a factor of 1 changes nothing.
#[test]
fn a_slow_link_is_the_machine_with_that_link_at_its_bandwidth_over_the_factor() {
    let dir = tempfile::tempdir().unwrap();
    let edited = machine_with_slow_link(dir.path(), "gpu3", "k80-1-switch", 4.0);
    for kind in ["downpour", "ssgd-ps", "ssgd-allreduce", "easgd"] {
        let k = format!("algorithm.kind={kind}");
        let tau = "algorithm.elastic.tau=2";
        let own = timed(&[&k, tau, "faults.link_slowdown=4"]);
        assert_eq!(own.slow_links.len(), 1, "{kind}: {:?}", own.slow_links);
        assert_eq!(own.slow_links[0].between, ["gpu3", "k80-1-switch"]);
        assert_eq!(own.slow_links[0].learner, Some(3));
        let named = timed(&[
            &k,
            tau,
            "faults.link_slowdowns=[{between = [\"k80-1-switch\", \"gpu3\"], factor = 4.0}]",
        ]);
        let machine = timed(&[&k, tau, &edited]);
        assert!(machine.slow_links.is_empty());
        assert_eq!(
            without_slow_links(&own),
            without_slow_links(&machine),
            "{kind}"
        );
        assert_eq!(
            without_slow_links(&named),
            without_slow_links(&machine),
            "{kind}"
        );
        let slower = own.per_learner[3].breakdown.pull + own.per_learner[3].breakdown.push;
        let plain = timed(&[&k, tau]);
        let base = plain.per_learner[3].breakdown.pull + plain.per_learner[3].breakdown.push;
        assert!(
            slower > base,
            "{kind}: slowed link moves data in {slower} s, not {base}"
        );
        let one = timed(&[&k, tau, "faults.link_slowdown=1", "faults.slow_links=4"]);
        assert_eq!(one.to_json(), plain.to_json(), "{kind}");
    }
}

#[test]
fn the_real_backend_refuses_slow_links_it_cannot_slow() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let root = env!("CARGO_MANIFEST_DIR");
    let o = Command::new(BIN)
        .args(["real", "scenarios/quick.toml", "--out"])
        .arg(&out)
        .args(["--set", "faults.link_slowdown=4", "-q"])
        .current_dir(root)
        .output()
        .unwrap();
    common::assert_bad_input(
        &o,
        &out,
        &[
            "the real backend cannot slow a link",
            "`gpu3` and `k80-1-switch`",
        ],
    );
}

/// While a shard is down every learner of synchronous SGD waits for it: the run takes its
/// time down longer. It comes back from its checkpoint: with none but the start it loses every
/// update it had applied, with one every microsecond none; what waited for it is served.
#[test]
fn a_failed_shard_holds_the_run_for_its_time_down_and_comes_back_from_its_checkpoint() {
    let plain = timed(&["algorithm.kind=ssgd-ps"]);
    // Down for as long as the whole run takes, from a third of the way in.
    let (at, down) = (plain.sim_time_s / 3.0, plain.sim_time_s);
    let fail = format!("faults.shard_failures=[{{shard = 0, at_s = {at}, down_for_s = {down}}}]");
    let fail = fail.as_str();
    let failed = timed(&["algorithm.kind=ssgd-ps", fail]);
    let longer = failed.sim_time_s - plain.sim_time_s;
    assert!(
        (longer - down).abs() < 0.05 * down,
        "{longer} s longer, down for {down} s"
    );
    let [f] = &failed.shard_faults[..] else {
        panic!("{:?}", failed.shard_faults)
    };
    assert_eq!(f.shard, 0);
    assert!((f.failed_at_s - at).abs() < 1e-8, "{f:?}");
    assert!((f.back_at_s.unwrap() - at - down).abs() < 1e-8, "{f:?}");
    assert!(f.held_messages > 0 && f.lost_updates > 0, "{f:?}");
    let every = timed(&[
        "algorithm.kind=ssgd-ps",
        fail,
        "faults.checkpoint_every_s=1e-6",
    ]);
    assert_eq!(every.shard_faults[0].lost_updates, 0);
    // The run's numbers are the same either way; only what the shard holds differs.
    assert_eq!(every.sim_time_s, failed.sim_time_s);
}

/// Coming back from the starting checkpoint near the end of a run puts the shards' slices
/// back to the starting parameters: the real numbers lose what they had learned.
#[test]
fn shards_back_from_the_starting_checkpoint_lose_what_the_run_learned() {
    let run = |sets: &[&str]| run::simulate(&quick(sets), ()).unwrap().summary;
    let plain = run(&[]);
    let end = plain.sim_time_s;
    let fail = format!(
        "faults.shard_failures=[{{shard = 0, at_s = {0}, down_for_s = 0.001}}, {{shard = 1, at_s = {0}, down_for_s = 0.001}}]",
        0.95 * end
    );
    let rolled = run(&[&fail]);
    let kept = run(&[&fail, "faults.checkpoint_every_s=1e-6"]);
    let acc =
        |s: &asgd_sim::report::summary::Summary| s.final_metrics.as_ref().unwrap().test_accuracy;
    assert!(
        acc(&rolled) < acc(&plain) - 0.2,
        "{} after the rollback, {} without",
        acc(&rolled),
        acc(&plain)
    );
    assert!(
        (acc(&kept) - acc(&plain)).abs() < 0.05,
        "{} {}",
        acc(&kept),
        acc(&plain)
    );
    assert!(rolled.shard_faults.iter().all(|f| f.lost_updates > 0));
}

/// The real backend's shard sleeps out its time down while the learners' messages wait, then
/// comes back from its checkpoint (the start's: every update it applied is lost); the run
/// completes every iteration. Its schedule is the simulator's: a shard busy past its failure
/// time fails late but is back at `at_s + down_for_s` all the same, as a real learner is.
#[test]
fn a_real_shard_fails_sleeps_out_its_time_down_and_comes_back_from_its_checkpoint() {
    use std::sync::atomic::AtomicBool;
    let fail = "faults.shard_failures=[{shard = 1, at_s = 0.05, down_for_s = 0.2}]";
    let sc = quick(&["cluster.learners=2", fail]);
    let res = asgd_sim::real::run(&sc, (), &AtomicBool::new(false)).unwrap();
    assert_eq!(res.stopped, None);
    let s = &res.summary;
    let [f] = &s.shard_faults[..] else {
        panic!("{:?}", s.shard_faults)
    };
    assert_eq!(f.shard, 1);
    assert!(f.failed_at_s >= 0.05, "{f:?}");
    assert!(f.back_at_s.unwrap() >= 0.25, "{f:?}");
    assert!(f.lost_updates > 0, "{f:?}");
    let done: u64 = s.per_learner.iter().map(|l| l.iterations).sum();
    assert!(
        done >= s.epochs * s.iterations_per_epoch,
        "{done} iterations"
    );
}
