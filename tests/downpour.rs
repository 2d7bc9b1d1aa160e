//! Downpour and its neighbours on the paper machine against closed forms: one learner on an
//! idle machine takes exactly the analytic iteration time (Downpour; synchronous SGD through the
//! server, one step more; elastic averaging, tau mini-batches per exchange), a ring of two
//! takes two chunk transfers each way per round, and equal Downpour learners without jitter
//! settle into staleness p - 1.

use asgd_sim::input::Override;
use asgd_sim::machine::device::{UPDATE_MEMORY_PASSES, update_time};
use asgd_sim::machine::topology::{Route, Topology};
use asgd_sim::run::simulate;
use asgd_sim::scenario::{self, Scenario};
use asgd_sim::time::{SimDuration, SimTime};
use asgd_sim::workload::model::BYTES_PER_PARAM;

const SCENARIO: &str = r#"
name = "closed-form"
seed = 7
[machine]
topology = "TOPOLOGY"
[cluster]
learners = 1
shards = 1
[algorithm]
kind = "downpour"
learning_rate = 0.01
batch_size = 128
[workload]
model = "cifar10-cnn"
epochs = 2
[workload.dataset]
kind = "synthetic-image"
train_samples = 1280
[devices]
gpu_efficiency = 0.4
"#;

fn load(extra: &str, overrides: &[&str]) -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let topo = concat!(env!("CARGO_MANIFEST_DIR"), "/topologies/power8-k80.toml");
    let path = dir.path().join("s.toml");
    std::fs::write(&path, SCENARIO.replace("TOPOLOGY", topo) + extra).unwrap();
    let o: Vec<Override> = overrides
        .iter()
        .map(|s| Override::parse(s).unwrap())
        .collect();
    scenario::load(path.to_str().unwrap(), &o).unwrap()
}

/// Bottleneck bandwidth of a route in bytes per ns.
fn bottleneck(t: &Topology, r: &Route) -> f64 {
    r.channels
        .iter()
        .map(|&c| t.channel_ends(c).0.bandwidth_gb_per_s)
        .fold(f64::INFINITY, f64::min)
}

fn ns(d: SimDuration) -> u64 {
    d.as_nanos()
}

#[test]
fn one_learner_on_an_idle_machine_takes_the_analytic_time() {
    for shards in [1usize, 2] {
        // Two shards on the same chip: equal slices on routes of equal latency, sharing the
        // PCIe path equally, so each slice moves at half the bandwidth and all end together.
        let cores = ["\"chip0-core0\"", "\"chip0-core1\""][..shards].join(",");
        let sc = load(
            "",
            &[
                &format!("cluster.shards={shards}"),
                &format!("cluster.shard_cores=[{cores}]"),
            ],
        );
        let t = &sc.topology;
        let (gpu, core) = (sc.placement.learner_gpus[0], sc.placement.shard_cores[0]);
        let up = t.route(gpu, core).unwrap();
        let down = t.route(core, gpu).unwrap();
        let latency = ns(up.latency);
        assert_eq!(latency, ns(down.latency));
        let slice = sc.model.params() / shards as u64 * BYTES_PER_PARAM;
        let share = bottleneck(t, &up) / shards as f64;
        let transfer = ns(SimDuration::from_nanos_ceil(slice as f64 / share));
        let compute = ns(SimDuration::from_secs_ceil(
            sc.model.train_flops_per_sample() * 128.0 / (2.8e12 * 0.4),
        ));
        let update = ns(update_time(slice, 19.2, UPDATE_MEMORY_PASSES));
        // request + parameters + compute + gradient + update + ack.
        let iteration =
            latency + (latency + transfer) + compute + (latency + transfer) + update + latency;
        let iterations = 2 * 10;
        let s = simulate(&sc, ()).unwrap().summary;
        let total = SimTime::from_nanos(iterations * iteration);
        assert_eq!(s.sim_time_s, total.as_secs_f64(), "shards = {shards}");
        let per_epoch = |v: u64| (iterations * v) as f64 * 1e-9 / 2.0;
        assert!((s.breakdown.compute - per_epoch(compute)).abs() < 1e-12);
        assert!((s.breakdown.pull - per_epoch(2 * latency + transfer)).abs() < 1e-12);
        assert!((s.breakdown.push - per_epoch(2 * latency + transfer)).abs() < 1e-12);
        assert!((s.breakdown.server_update - per_epoch(update)).abs() < 1e-12);
        assert_eq!(s.breakdown.wait, 0.0);
        assert_eq!(s.staleness.histogram, vec![iterations * shards as u64]);
    }
}

#[test]
fn equal_learners_without_jitter_settle_into_staleness_p_minus_1() {
    for p in [2usize, 4, 8, 16] {
        for shards in [1usize, 4] {
            let sc = load(
                "",
                &[
                    &format!("cluster.learners={p}"),
                    &format!("cluster.shards={shards}"),
                    "workload.dataset.train_samples=12800",
                ],
            );
            let s = simulate(&sc, ()).unwrap().summary;
            let h = &s.staleness.histogram;
            let total: u64 = h.iter().sum();
            // The first round starts in lockstep (staleness 0, 1, ..., p - 1 at each shard);
            // after it every update sees exactly the other p - 1 learners' updates.
            let warm_up = (p * shards) as u64;
            assert_eq!(h.len(), p, "p = {p}, shards = {shards}: {h:?}");
            assert_eq!(h[p - 1], total - warm_up + shards as u64, "p = {p}: {h:?}");
        }
    }
}

#[test]
fn jitter_desynchronises_but_keeps_the_mean_near_p_minus_1() {
    let sc = load(
        "[devices.jitter]\ndistribution = \"exponential\"\nmean_s = 0.003\n",
        &["cluster.learners=8", "workload.dataset.train_samples=25600"],
    );
    let s = simulate(&sc, ()).unwrap().summary;
    assert!((s.staleness.mean - 7.0).abs() < 0.5, "{}", s.staleness.mean);
    assert!(s.staleness.max > 7);
}

/// Latency, one slice's transfer, compute and update times of a one-learner, one-shard run.
fn one_learner_times(sc: &Scenario) -> (u64, u64, u64, u64) {
    let t = &sc.topology;
    let (gpu, core) = (sc.placement.learner_gpus[0], sc.placement.shard_cores[0]);
    let up = t.route(gpu, core).unwrap();
    let slice = sc.model.params() * BYTES_PER_PARAM;
    let transfer = ns(SimDuration::from_nanos_ceil(
        slice as f64 / bottleneck(t, &up),
    ));
    let compute = ns(SimDuration::from_secs_ceil(
        sc.model.train_flops_per_sample() * 128.0 / (2.8e12 * 0.4),
    ));
    let update = ns(update_time(slice, 19.2, UPDATE_MEMORY_PASSES));
    (ns(up.latency), transfer, compute, update)
}

#[test]
fn synchronous_sgd_with_one_learner_adds_the_round_step() {
    let sc = load("", &["algorithm.kind=ssgd-ps"]);
    let (latency, transfer, compute, update) = one_learner_times(&sc);
    // Downpour's iteration, with the gradient summed in and then the step taken.
    let iteration =
        latency + (latency + transfer) + compute + (latency + transfer) + 2 * update + latency;
    let s = simulate(&sc, ()).unwrap().summary;
    assert_eq!(
        s.sim_time_s,
        SimTime::from_nanos(20 * iteration).as_secs_f64()
    );
    assert!((s.breakdown.server_update - (20 * 2 * update) as f64 * 1e-9 / 2.0).abs() < 1e-12);
    assert_eq!(s.breakdown.wait, 0.0);
}

#[test]
fn elastic_averaging_with_one_learner_computes_tau_batches_per_exchange() {
    let sc = load("", &["algorithm.kind=easgd", "algorithm.elastic.tau=5"]);
    let (latency, transfer, compute, update) = one_learner_times(&sc);
    // tau local steps, then the centre's pull and the difference's push.
    let round =
        5 * compute + latency + (latency + transfer) + (latency + transfer) + update + latency;
    let s = simulate(&sc, ()).unwrap().summary;
    // 20 mini-batches in 4 rounds of 5; the run ends with its 20th local step, before that
    // round's exchange.
    assert_eq!(
        s.sim_time_s,
        SimTime::from_nanos(3 * round + 5 * compute).as_secs_f64()
    );
    assert_eq!(s.per_learner[0].iterations, 20);
    assert_eq!(s.epoch_ends_s.len(), 2);
}

#[test]
fn a_ring_of_two_takes_two_chunk_transfers_each_way() {
    let sc = load("", &["algorithm.kind=ssgd-allreduce", "cluster.learners=2"]);
    let t = &sc.topology;
    let (a, b) = (sc.placement.learner_gpus[0], sc.placement.learner_gpus[1]);
    let (ab, ba) = (t.route(a, b).unwrap(), t.route(b, a).unwrap());
    assert_eq!(ab.latency, ba.latency);
    let chunk = sc.model.params().div_ceil(2) * BYTES_PER_PARAM;
    // Each step both learners send a chunk, over opposite directions of the same links.
    let step = ns(ab.latency)
        + ns(SimDuration::from_nanos_ceil(
            chunk as f64 / bottleneck(t, &ab).min(bottleneck(t, &ba)),
        ));
    let (_, _, compute, _) = one_learner_times(&sc);
    // Reduce-scatter one step, all-gather one step.
    let round = compute + 2 * step;
    let s = simulate(&sc, ()).unwrap().summary;
    // 20 mini-batches, 2 per round.
    assert_eq!(s.sim_time_s, SimTime::from_nanos(10 * round).as_secs_f64());
    assert!((s.breakdown.push - (10 * step) as f64 * 1e-9 / 2.0).abs() < 1e-12);
    assert!((s.breakdown.pull - (10 * step) as f64 * 1e-9 / 2.0).abs() < 1e-12);
    assert_eq!(s.breakdown.wait, 0.0);
    assert_eq!(s.staleness.max, 0);
}

#[test]
fn rings_of_every_size_run_to_the_end_with_jitter() {
    // A learner whose last reduce-scatter send is still going when its predecessor's
    // all-gather chunks arrive, or whose predecessor's next round starts early, must not stall.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/paper-cifar10.toml");
    for p in 1..=16usize {
        let o: Vec<Override> = [
            "algorithm.kind=ssgd-allreduce".to_string(),
            format!("cluster.learners={p}"),
            "workload.dataset.train_samples=6400".to_string(),
            "workload.epochs=2".to_string(),
        ]
        .iter()
        .map(|s| Override::parse(s).unwrap())
        .collect();
        let sc = scenario::load(path, &o).unwrap();
        let s = simulate(&sc, ()).unwrap().summary;
        let iterations: u64 = s.per_learner.iter().map(|l| l.iterations).sum();
        assert!(iterations >= 100, "p = {p}: {iterations} iterations");
        assert_eq!(s.epoch_ends_s.len(), 2, "p = {p}");
    }
}
