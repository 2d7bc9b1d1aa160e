//! `predict`: the estimates of sigma^2, L and D_f against the noisy quadratic's known truth,
//! gamma and alpha against their formulas, finite estimates on a real network, and
//! `--apply` rewriting nothing but the learning rate.

use asgd_sim::input::Override;
use asgd_sim::numerics::Objective;
use asgd_sim::numerics::quadratic::NoisyQuadratic;
use asgd_sim::predict::{PredictOptions, Prediction, apply_to_scenario_text, predict};
use asgd_sim::scenario::{self, Scenario};
use asgd_sim::workload::model::ModelSpec;

fn load(path: &str, sets: &[&str]) -> Scenario {
    let overrides: Vec<Override> = ["workload.gradients=real"]
        .iter()
        .chain(sets)
        .map(|s| Override::parse(s).expect("override"))
        .collect();
    scenario::load(path, &overrides).expect("scenario loads")
}

fn rel(a: f64, b: f64) -> f64 {
    (a / b - 1.0).abs()
}

fn quadratic() -> (Scenario, Prediction) {
    let sc = load("scenarios/quadratic.toml", &[]);
    let pred = predict(&sc, &PredictOptions::default()).expect("predict");
    (sc, pred)
}

#[test]
fn quadratic_estimates_match_the_known_truth() {
    let (sc, pred) = quadratic();
    let ModelSpec::Quadratic(def) = &sc.model else {
        panic!("quadratic.toml is the quadratic model")
    };
    println!("{}", pred.to_text());
    // The mean over 64 probes of a 1,000-dimensional chi-square has ~0.6% relative sd; the
    // max sits ~2.4 sd of one probe (~4.5% each) above it, so only the mean is held to 5%.
    assert!(
        rel(pred.sigma2_mean, def.noise_variance) < 0.05,
        "sigma2 mean {} vs {}",
        pred.sigma2_mean,
        def.noise_variance
    );
    assert!(pred.sigma2 >= pred.sigma2_mean);
    assert!(
        rel(pred.lipschitz, def.h_max) < 0.05,
        "L {}",
        pred.lipschitz
    );
    assert!(
        pred.lipschitz <= def.h_max * 1.001,
        "power iteration overshoots"
    );

    let q = NoisyQuadratic::new(def.clone());
    let f1 = q.value(&q.init_params(sc.file.seed));
    assert!(rel(pred.d_f, f1) < 1e-12, "D_f {} vs f(x_1) {f1}", pred.d_f);

    let (m, k) = (pred.batch_size as f64, pred.updates);
    assert_eq!(pred.batch_size, 16);
    assert_eq!(pred.updates, (10 * 1600 / 16) as f64);
    assert_eq!(pred.p, 8);
    let gamma = (pred.d_f / (m * k * pred.lipschitz * pred.sigma2)).sqrt();
    let alpha = (k * pred.sigma2 / (m * pred.lipschitz * pred.d_f)).sqrt();
    assert!(rel(pred.gamma, gamma) < 1e-12 && rel(pred.alpha, alpha) < 1e-12);
    assert!(rel(pred.learning_rate, m * gamma) < 5e-3);
    assert!(pred.guarantee_ratio.is_finite() && pred.guarantee_ratio > 0.0);

    let json = serde_json::to_value(&pred).expect("serialises");
    for key in [
        "sigma2",
        "L",
        "D_f",
        "M",
        "K",
        "gamma",
        "alpha",
        "p",
        "learning_rate",
    ] {
        assert!(json.get(key).is_some(), "JSON lacks {key}: {json}");
    }
}

#[test]
fn noise_free_quadratic_is_refused_not_infinite() {
    let sc = load(
        "scenarios/quadratic.toml",
        &["workload.quadratic.noise_variance=0.0"],
    );
    let err = predict(&sc, &PredictOptions::default()).expect_err("sigma^2 = 0");
    assert!(err.to_string().contains("sigma^2"), "{err}");
}

#[test]
fn mlp_estimates_are_finite_and_positive() {
    let sc = load("scenarios/quick.toml", &[]);
    let opts = PredictOptions {
        probes: 16,
        curvature_samples: 256,
        power_iterations: 10,
        loss_samples: 1000,
        ..PredictOptions::default()
    };
    let pred = predict(&sc, &opts).expect("predict");
    let text = pred.to_text();
    println!("{text}");
    for v in [
        pred.sigma2,
        pred.lipschitz,
        pred.d_f,
        pred.gamma,
        pred.alpha,
    ] {
        assert!(v.is_finite() && v > 0.0, "{text}");
    }
    // Ten classes from a fresh network: the loss starts near ln 10.
    assert!(pred.d_f > 1.0 && pred.d_f < 5.0, "{text}");
    assert!(text.contains("learning_rate"));
}

#[test]
fn timing_only_scenario_without_data_is_refused() {
    let sc = scenario::load("scenarios/paper-cifar10.toml", &[]).expect("loads");
    let err = predict(&sc, &PredictOptions::default()).expect_err("no data");
    assert!(err.to_string().contains("workload.gradients=real"), "{err}");
}

#[test]
fn apply_changes_only_the_learning_rate_line() {
    let text = std::fs::read_to_string("scenarios/paper-cifar10.toml").expect("read");
    let out = apply_to_scenario_text(&text, 0.00512).expect("apply");
    let (before, after): (Vec<_>, Vec<_>) = (text.lines().collect(), out.lines().collect());
    assert_eq!(before.len(), after.len());
    let changed: Vec<_> = before.iter().zip(&after).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].1.trim(), "learning_rate = 0.00512");

    let commented = "[algorithm]\nlearning_rate = 0.1 # was\nbatch_size = 8\n";
    let out = apply_to_scenario_text(commented, 0.25).expect("apply");
    assert_eq!(
        out,
        "[algorithm]\nlearning_rate = 0.25 # was\nbatch_size = 8\n"
    );
    assert!(apply_to_scenario_text("algorithm = 3\n", 0.1).is_err());
    assert!(apply_to_scenario_text("not toml [", 0.1).is_err());
}

/// The seed paper's network at full estimator settings: minutes on two cores, so run it by
/// hand with `cargo test --release --test predict -- --ignored --nocapture` (another scenario
/// with PREDICT_SCENARIO=path).
#[test]
#[ignore]
fn paper_cifar10_prediction() {
    let path = std::env::var("PREDICT_SCENARIO").unwrap_or("scenarios/paper-cifar10.toml".into());
    let sc = load(&path, &[]);
    let start = std::time::Instant::now();
    let pred = predict(&sc, &PredictOptions::default()).expect("predict");
    println!("{}({:.1} s)", pred.to_text(), start.elapsed().as_secs_f64());
    assert!(pred.gamma.is_finite() && pred.gamma > 0.0);
}
