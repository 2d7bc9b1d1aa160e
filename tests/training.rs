//! Real gradients through simulated staleness: one learner reproduces plain sequential SGD bit
//! for bit, results do not depend on the thread count, the quick scenario learns, and a
//! diverging run stops cleanly.

use asgd_sim::data::Split;
use asgd_sim::input::Override;
use asgd_sim::numerics::{Net, Objective, Scratch};
use asgd_sim::run::simulate_with;
use asgd_sim::scenario::{self, Scenario};
use asgd_sim::training::sampler::{Sampler, gradient_seed};

fn quick(overrides: &[&str]) -> Scenario {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/quick.toml");
    let o: Vec<Override> = overrides
        .iter()
        .map(|s| Override::parse(s).unwrap())
        .collect();
    scenario::load(path, &o).unwrap()
}

#[test]
fn one_learner_is_bit_identical_to_sequential_sgd() {
    // Three shards: the learner's parameters are assembled from three slices each pull.
    let sc = quick(&[
        "cluster.learners=1",
        "cluster.shards=3",
        "workload.epochs=2",
        "workload.dataset.train_samples=640",
        "workload.dataset.test_samples=100",
        "workload.eval_train_samples=100",
        "devices.jitter.std_s=0",
    ]);
    let sim = simulate_with(&sc, (), 2).unwrap();

    let data = sc.dataset.clone().unwrap();
    let net = Net::new(&sc.model).unwrap();
    let (seed, m, lr) = (sc.file.seed, 32, sc.file.algorithm.learning_rate as f32);
    let mut x = net.init_params(seed);
    let mut g = vec![0.0f32; x.len()];
    let mut sampler = Sampler::for_run(data.len(Split::Train), 1, seed);
    let mut scratch = Scratch::default();
    let mut step = 0u64;
    for _epoch in 0..2 {
        for _ in 0..sc.iterations_per_epoch {
            let batch = data.gather(Split::Train, &sampler.next_batch(0, m));
            net.loss_grad(
                &x,
                &batch,
                gradient_seed(seed, 0, step),
                &mut g,
                &mut scratch,
            );
            for (x, g) in x.iter_mut().zip(&g) {
                *x -= lr * g;
            }
            step += 1;
        }
        sampler.repartition();
    }
    assert_eq!(sim.parameters.len(), x.len());
    let differing = sim
        .parameters
        .iter()
        .zip(&x)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(differing, 0, "parameters differ from sequential SGD");
    assert_eq!(sim.summary.staleness.max, 0);
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let sc = quick(&["workload.epochs=2", "workload.dataset.train_samples=1000"]);
    let one = simulate_with(&sc, (), 1).unwrap();
    let three = simulate_with(&sc, (), 3).unwrap();
    assert_eq!(one.curve, three.curve);
    assert!(
        one.parameters
            .iter()
            .zip(&three.parameters)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    assert_eq!(one.summary.to_json(), three.summary.to_json());
}

#[test]
fn quick_learns_well_above_chance_at_p_1_and_4() {
    for p in [1, 4] {
        let sc = quick(&[&format!("cluster.learners={p}")]);
        let res = simulate_with(&sc, (), 2).unwrap();
        let f = res.summary.final_metrics.as_ref().unwrap();
        // Ten classes: chance is 10 %.
        assert!(
            f.test_accuracy > 0.5,
            "p = {p}: test accuracy {}",
            f.test_accuracy
        );
        assert!(!res.summary.diverged);
        assert_eq!(res.curve.len() as u64, sc.file.workload.epochs + 1);
        assert!(res.curve.last().unwrap().train_loss < res.curve[0].train_loss / 2.0);
    }
}

#[test]
fn a_diverging_run_stops_and_says_so() {
    let sc = quick(&["algorithm.learning_rate=1e30", "workload.epochs=3"]);
    let res = simulate_with(&sc, (), 2).unwrap();
    assert!(res.summary.diverged);
    // Stopped early: fewer iterations than three epochs.
    let done: u64 = res.summary.per_learner.iter().map(|l| l.iterations).sum();
    assert!(done < 3 * sc.iterations_per_epoch, "{done}");
}
