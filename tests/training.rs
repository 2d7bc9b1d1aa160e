//! Real gradients through simulated staleness: one learner reproduces plain sequential SGD bit
//! for bit, results do not depend on the thread count, the quick scenario learns, and a
//! diverging run stops cleanly.

use asgd_sim::data::Split;
use asgd_sim::input::Override;
use asgd_sim::numerics::{Net, Objective, Scratch};
use asgd_sim::run::simulate_with;
use asgd_sim::scenario::{self, Scenario};
use asgd_sim::training::sampler::{Sampler, gradient_seed};

/// A shipped scenario with overrides.
fn shipped(name: &str, overrides: &[&str]) -> Scenario {
    let path = format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let o: Vec<Override> = overrides
        .iter()
        .map(|s| Override::parse(s).unwrap())
        .collect();
    scenario::load(&path, &o).unwrap()
}

fn quick(overrides: &[&str]) -> Scenario {
    shipped("quick", overrides)
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
    let net = Net::new(sc.model.layers().unwrap()).unwrap();
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

fn quadratic(overrides: &[&str]) -> Scenario {
    shipped("quadratic", overrides)
}

#[test]
fn noise_free_quadratic_at_p_1_follows_its_closed_form() {
    // x_i <- x_i (1 - gamma h_i) each step, so after K steps
    // f = 1/2 sum h_i x0^2 (1 - gamma h_i)^(2K).
    let sc = quadratic(&[
        "cluster.learners=1",
        "workload.quadratic.noise_variance=0",
        "workload.epochs=3",
    ]);
    let res = simulate_with(&sc, (), 2).unwrap();
    let asgd_sim::workload::model::ModelSpec::Quadratic(q) = &sc.model else {
        panic!("not a quadratic");
    };
    let gamma = sc.file.algorithm.learning_rate;
    for point in &res.curve {
        let k = point.epoch * sc.iterations_per_epoch;
        let expected: f64 = q
            .curvatures()
            .iter()
            .map(|h| 0.5 * h * q.x0 * q.x0 * (1.0 - gamma * h).powi(2 * k as i32))
            .sum();
        assert!(
            (point.train_loss / expected - 1.0).abs() < 1e-3,
            "epoch {}: {} vs {expected}",
            point.epoch,
            point.train_loss
        );
    }
}

#[test]
fn stale_gradients_destabilise_a_step_size_one_learner_tolerates() {
    // gamma h_max = 0.5 is stable for plain SGD (< 2) but not with staleness 7.
    let alone = simulate_with(
        &quadratic(&["cluster.learners=1", "algorithm.learning_rate=0.5"]),
        (),
        2,
    )
    .unwrap();
    assert!(!alone.summary.diverged);
    let stale = simulate_with(&quadratic(&["algorithm.learning_rate=0.5"]), (), 2).unwrap();
    assert!(stale.summary.diverged);
    let fine = simulate_with(&quadratic(&[]), (), 2).unwrap();
    assert!(!fine.summary.diverged);
    let f = fine.summary.final_metrics.unwrap();
    assert!(f.train_loss < fine.curve[0].train_loss / 100.0);
}
