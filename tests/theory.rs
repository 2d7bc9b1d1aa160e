//! The theory module against closed forms, an independent minimiser, and the properties the seed
//! paper's theorem implies (REFERENCE.md, "Theory").

use asgd_sim::theory::bound::{constraint_root, normalised_constraint, normalised_optimum};
use asgd_sim::theory::command::{self, Budget, Format};
use asgd_sim::theory::samples::{samples_needed, samples_ratio};
use asgd_sim::theory::workers::worker_limits;
use asgd_sim::theory::{Problem, TheoryError, alpha, guarantee_ratio, predicted_gamma};

const ALPHAS: [f64; 12] = [
    1e-3, 0.05, 0.5, 1.0, 1.6, 2.0, 4.0, 8.0, 16.0, 100.0, 1e4, 1e7,
];
const PS: [u32; 9] = [1, 2, 3, 4, 8, 16, 64, 1000, 100_000];

fn problems() -> Vec<Problem> {
    let mut out = Vec::new();
    for (d_f, l, s2, m) in [
        (2.3, 0.7, 4.0, 128.0),
        (1.0, 10.0, 0.01, 1.0),
        (50.0, 0.1, 9.0, 32.0),
    ] {
        for k in [1.0, 100.0, 3906.0, 1e6] {
            out.push(Problem::new(d_f, l, s2, m, k).expect("valid constants"));
        }
    }
    out
}

/// Golden-section search in ln(gamma) over [gamma_max 1e-12, gamma_max]; R is convex in gamma,
/// hence unimodal in ln(gamma). Independent of the closed form the library uses.
fn golden_min(f: impl Fn(f64) -> f64, hi: f64) -> (f64, f64) {
    let (mut a, mut b) = ((hi * 1e-12).ln(), hi.ln());
    let r = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..200 {
        let (x1, x2) = (b - r * (b - a), a + r * (b - a));
        if f(x1.exp()) < f(x2.exp()) {
            b = x2;
        } else {
            a = x1;
        }
    }
    let x = ((a + b) / 2.0).exp();
    (x, f(x))
}

#[test]
fn optimum_matches_golden_section_on_the_raw_bound() {
    for pr in problems() {
        for p in [1, 2, 16, 1000] {
            let opt = pr.optimum(p);
            let (g, v) = golden_min(|g| pr.terms(g, p).total(), pr.gamma_max(p));
            let got = opt.terms.total();
            assert!(got <= v * (1.0 + 1e-12), "{pr:?} p={p}: {got} vs {v}");
            assert!((got - v).abs() <= 1e-12 * v, "{pr:?} p={p}: {got} vs {v}");
            assert!((opt.gamma - g).abs() <= 1e-6 * g, "{pr:?} p={p}");
        }
    }
}

#[test]
fn constraint_holds_at_every_returned_optimum() {
    for pr in problems() {
        for p in PS {
            let opt = pr.optimum(p);
            assert!(pr.constraint(opt.gamma, p) <= 1.0, "{pr:?} p={p}");
        }
    }
    for a in ALPHAS {
        for p in PS {
            let o = normalised_optimum(a, p);
            assert!(normalised_constraint(o.c, a, p) <= 1.0, "alpha={a} p={p}");
        }
    }
}

#[test]
fn one_learner_closed_form() {
    // p = 1: g(c) = 2/c + c + 2c^2/alpha, c <= alpha/2. The stationary point solves
    // 4c^3/alpha + c^2 = 2, i.e. alpha = 4c^3/(2 - c^2), and lies inside the constraint iff
    // c >= sqrt(2/3), i.e. alpha >= sqrt(8/3). Below that the optimum is c = alpha/2 with
    // g = 4/alpha + alpha.
    for c in [0.82, 0.9, 1.0, 1.2, 1.4, 1.414] {
        let a = 4.0 * c * c * c / (2.0 - c * c);
        let o = normalised_optimum(a, 1);
        assert!(
            !o.constrained && (o.c - c).abs() <= 1e-13 * c,
            "c={c}: {o:?}"
        );
        let g = 2.0 / c + c + 2.0 * c * c / a;
        assert!((o.value - g).abs() <= 1e-13 * g);
    }
    assert_eq!(normalised_optimum(4.0, 1).value, 3.5); // c = 1 exactly
    for a in [
        1e-6,
        0.01,
        0.5,
        1.0,
        1.6,
        (8.0f64 / 3.0).sqrt() * (1.0 - 1e-9),
    ] {
        let o = normalised_optimum(a, 1);
        assert!(o.constrained, "alpha={a}");
        assert!(
            (o.value - (4.0 / a + a)).abs() <= 1e-13 * o.value,
            "alpha={a}"
        );
    }
}

#[test]
fn raw_bound_is_the_scaled_normalised_bound() {
    for pr in problems() {
        // gamma_0 alpha L M = 1 links the two normalisations.
        let a = pr.alpha();
        assert!((pr.predicted_gamma() * a * pr.l * pr.m - 1.0).abs() < 1e-13);
        assert_eq!(a, alpha(pr.k, pr.sigma2, pr.m, pr.l, pr.d_f));
        assert_eq!(
            pr.predicted_gamma(),
            predicted_gamma(pr.d_f, pr.m, pr.k, pr.l, pr.sigma2)
        );
        for p in [1, 4, 64] {
            let o = normalised_optimum(a, p);
            let raw = pr.optimum(p).terms.total();
            assert!((raw - pr.scale() * o.value).abs() <= 1e-12 * raw);
        }
    }
    let t = Problem::new(1.0, 2.0, 3.0, 4.0, 5.0)
        .expect("valid")
        .terms(0.1, 2);
    assert!((t.initial_gap - 2.0 / (4.0 * 5.0 * 0.1)).abs() < 1e-15);
    assert!((t.variance - 3.0 * 2.0 * 0.1).abs() < 1e-15);
    assert!((t.staleness - 2.0 * 3.0 * 4.0 * 4.0 * 2.0 * 0.01).abs() < 1e-13);
}

#[test]
fn ratio_is_one_for_one_learner_and_monotone() {
    for a in ALPHAS {
        assert_eq!(guarantee_ratio(a, 1), 1.0);
        let mut prev = 1.0;
        for p in 1..=256 {
            let r = guarantee_ratio(a, p);
            assert!(r >= prev, "alpha={a} p={p}: {r} < {prev}");
            prev = r;
        }
    }
    // Non-increasing in alpha: more mini-batches make staleness cheaper.
    for p in PS {
        let mut prev = f64::INFINITY;
        for i in 0..400 {
            let a = 10f64.powf(-3.0 + 10.0 * f64::from(i) / 399.0);
            let r = guarantee_ratio(a, p);
            assert!(r <= prev * (1.0 + 1e-14), "p={p} alpha={a}: {r} > {prev}");
            prev = r;
        }
    }
}

#[test]
fn ratio_approaches_p_over_alpha_when_one_much_less_than_alpha_much_less_than_p() {
    // For alpha >> 1 one learner is unconstrained near c = sqrt(2): g*_1 = 2 sqrt(2)(1 + sqrt(2)/alpha
    // + ...). For alpha << p, p learners sit on the constraint with c = alpha u_p ~ alpha/(sqrt(2) p):
    // g*_p = 2 sqrt(2) p/alpha (1 + 1/(2 sqrt(2) p) + O(alpha^2/p^2)). So the ratio is
    // p/alpha (1 - sqrt(2)/alpha + ...): within 2 % for alpha >= 100 and p >= 100 alpha.
    for a in [100.0, 300.0, 1000.0] {
        for k in [100u32, 1000] {
            let p = (a as u32) * k;
            let r = guarantee_ratio(a, p) / (f64::from(p) / a);
            assert!((r - 1.0).abs() < 0.02, "alpha={a} p={p}: {r}");
        }
    }
}

#[test]
fn ratio_saturates_below_p_when_alpha_is_small() {
    // alpha <= sqrt(8/3): every p sits on its constraint, so the ratio has a closed form that
    // tends to u_1/u_p = (1 + sqrt(1 + 8p^2))/4 ~ 0.71 p as alpha -> 0, not to p/alpha.
    for a in [1e-6, 0.1, 1.0, 1.6] {
        for p in [1, 2, 16, 1000] {
            let u = constraint_root(p);
            let c = a * u;
            let g = 2.0 / c + c + 2.0 * f64::from(p) * c * c / a;
            let want = g / (4.0 / a + a);
            assert!(
                (guarantee_ratio(a, p) - want).abs() <= 1e-12 * want,
                "alpha={a} p={p}"
            );
        }
    }
    let lim = (1.0 + (1.0 + 8.0 * 16f64.powi(2)).sqrt()) / 4.0;
    assert!((guarantee_ratio(1e-6, 16) - lim).abs() < 1e-9);
}

#[test]
fn samples_match_the_one_learner_guarantee() {
    for pr in problems() {
        assert_eq!(samples_needed(&pr, 1), Ok(pr.k));
        let target = pr.optimum(1).terms.total();
        let mut prev = pr.k;
        for p in [2, 4, 16, 256] {
            let k_p = samples_needed(&pr, p).expect("reachable");
            assert!(k_p >= prev, "{pr:?} p={p}");
            prev = k_p;
            let reached = Problem { k: k_p, ..pr }.optimum(p).terms.total();
            assert!((reached - target).abs() <= 1e-10 * target, "{pr:?} p={p}");
        }
    }
    // Many mini-batches: staleness is free, K_p -> K_1 (linear speedup in samples per learner).
    assert!((samples_ratio(1e6, 4).expect("ok") - 1.0).abs() < 1e-4);
    // Few mini-batches: all constrained, K_p/K_1 -> u_1/u_p.
    let lim = (1.0 + (1.0 + 8.0 * 16f64.powi(2)).sqrt()) / 4.0;
    assert!((samples_ratio(1e-5, 16).expect("ok") / lim - 1.0).abs() < 1e-6);
}

#[test]
fn worker_limits_state_their_formulas() {
    let w = worker_limits(1e6, 100.0).expect("valid");
    assert_eq!((w.lhl15, w.counts().0), (100.0, 100));
    assert!((w.wsz19 - 1e4f64.cbrt()).abs() < 1e-12 && w.counts().1 == 21);
    let text = command::workers(1e6, 100.0, Format::Text).expect("valid");
    assert!(text.contains("constant taken as 1") && text.contains("log factors dropped"));
    assert!(command::workers(-1.0, 1.0, Format::Text).is_err());
}

#[test]
fn ratio_command_json_and_errors() {
    let j = command::ratio("0.5:8:5", "1,2,4", Format::Json).expect("valid");
    let v: serde_json::Value = serde_json::from_str(&j).expect("json");
    assert_eq!(v["alpha"].as_array().map(Vec::len), Some(5));
    assert_eq!(v["p"], serde_json::json!([1, 2, 4]));
    assert_eq!(v["ratio"][1][0], 1.0);
    assert_eq!(v["ratio"][4][2].as_f64(), Some(guarantee_ratio(8.0, 4)));
    let t = command::ratio("1,2", "1:16:5", Format::Text).expect("valid");
    assert_eq!(t.lines().count(), 4);
    assert!(matches!(
        command::ratio("1,x", "1", Format::Text),
        Err(TheoryError::BadNumber { what: "alpha", .. })
    ));
    assert!(matches!(
        command::ratio("1", "0", Format::Json),
        Err(TheoryError::BadNumber { what: "p", .. })
    ));
    assert!(matches!(
        command::ratio("1:2", "1", Format::Json),
        Err(TheoryError::BadGrid { .. })
    ));
}

#[test]
fn samples_command_budget() {
    let b = Budget::from_options(Some(2.0), None, None, None, None, None).expect("alpha");
    let t = command::samples(&b, "1,4", Format::Text).expect("ok");
    assert!(t.contains("K_p/K_1"));
    let b = Budget::from_options(None, Some(1.0), Some(1.0), Some(1.0), Some(8.0), Some(1e4));
    let j = command::samples(&b.expect("constants"), "1", Format::Json).expect("ok");
    let v: serde_json::Value = serde_json::from_str(&j).expect("json");
    assert_eq!(v["k_p"][0], 1e4);
    for bad in [
        Budget::from_options(None, None, None, None, None, None),
        Budget::from_options(Some(1.0), Some(1.0), None, None, None, None),
        Budget::from_options(None, Some(1.0), Some(1.0), Some(1.0), Some(1.0), None),
        Budget::from_options(Some(-1.0), None, None, None, None, None),
    ] {
        assert!(bad.is_err());
    }
}
