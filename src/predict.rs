//! `predict-lr`: the learning rate that Lian, Huang, Li & Liu's analysis (LHL15, NeurIPS 2015)
//! assumes, gamma = sqrt(D_f / (M K L sigma^2)), with its three unknowns measured at the
//! starting point x_1 the way seed 000 did. This module only reads a scenario and evaluates
//! its objective; it must never run the simulation, and never write a file (the binary does,
//! via [`apply_to_scenario_text`]).
//!
//! - sigma^2 (per sample, as in LHL15: E||G(x, z) - grad f(x)||^2 <= sigma^2 for ONE sample):
//!   `probes` mini-batches of the scenario's size M are drawn without replacement (disjoint
//!   while the training set lasts) with different dropout seeds, as training draws them. The
//!   full gradient g_bar is their mean; each probe gives v_j = ||G_j - g_bar||^2 n / (n - 1)
//!   (the factor undoes the mean's own share of G_j, so E v_j = E||G_j - grad f||^2), and
//!   M v_j is a per-sample estimate. Seed 000 took the MAXIMUM observed variance; so do we, in
//!   `sigma2`, and report the mean in `sigma2_mean`. The max is biased upwards by design, and the
//!   more probes the larger: with n probes it sits near mean + z_n * sd, z_64 ~ 2.4 (for the
//!   1,000-dimensional noisy quadratic v_j has relative sd ~ sqrt(2/d) = 4.5%, so max ~ 1.1 x
//!   mean). A larger max gives a smaller, safer gamma.
//! - L: power iteration on Hessian-vector products by central differences,
//!   Hv ~ (grad(x + eps v) - grad(x - eps v)) / (2 eps), on one fixed batch with one fixed
//!   dropout seed (both sides see the same samples and the same mask, so sampling noise
//!   cancels), eps = `fd_rel_step` * max(||x||, 1) for unit v. L = ||Hv|| after the last
//!   iteration: a lower bound of the top |eigenvalue| of the local Hessian that rises towards it.
//!   Gradient differences along random directions measure ||H u|| for random u, the RMS of
//!   the eigenvalues, far below the largest when the spectrum decays; the power iteration
//!   amplifies the top direction instead.
//! - D_f = f(x_1) - f*, with f* taken as 0 (cross-entropy and the quadratic are >= 0, so this
//!   is an upper bound): the mean inference loss over `loss_samples` training samples.
//! - M = `algorithm.batch_size`; K = epochs * iterations per epoch, the updates of the whole run
//!   (M K = samples processed), or the budget `samples` / M where a budget of samples is given
//!   (`--samples`: seed 000 predicted its rate for M K = 500,000); p = the learners.
//!
//! Units: LHL15's update sums the M per-sample gradients, x <- x - gamma sum_m G(x, z_m), so
//! gamma is a per-sample step. The simulator's server applies its rate to the MEAN gradient of
//! a mini-batch, so the equivalent `algorithm.learning_rate` is M * gamma (the stability
//! condition L M gamma <= 1 of LHL15 then reads learning_rate * L <= 1, the familiar one).
//! `--apply` writes that, rounded to 3 significant digits, because it is the same step as the
//! formula's gamma in the simulator's convention; both are printed. The formula ignores
//! LHL15's condition (2), L M gamma + 2 L^2 M^2 p^2 gamma^2 <= 1, which binds with many
//! learners or a small alpha; its left side and the largest feasible gamma are reported (and a
//! warning printed), and both rates are given: the formula's (what seed 000 tested, and what
//! `--apply` writes) and the one with (2) enforced, M min(gamma, gamma_max)
//! (`--apply --within-condition`).

use crate::data::{Batch, Dataset, Split};
use crate::numerics::quadratic::NoisyQuadratic;
use crate::numerics::{Net, NumericsError, Objective, Scratch};
use crate::scenario::Scenario;
use crate::theory;
use crate::workload::model::ModelSpec;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;
use std::sync::Arc;

/// How the three unknowns are estimated.
#[derive(Clone, Debug, Serialize)]
pub struct PredictOptions {
    /// Mini-batches drawn for sigma^2 (at least 2). Memory: probes * parameters * 4 bytes.
    pub probes: usize,
    /// Samples in the fixed batch of the Hessian-vector products.
    pub curvature_samples: usize,
    /// Power iterations for L (two gradients each).
    pub power_iterations: usize,
    /// Finite-difference step relative to max(||x_1||, 1).
    pub fd_rel_step: f64,
    /// Training samples whose mean loss is D_f.
    pub loss_samples: usize,
    /// The run's budget of samples M K, given directly; None: the scenario's epochs times
    /// its iterations per epoch times M.
    pub samples: Option<u64>,
    /// Threads inside each gradient; results do not depend on it.
    #[serde(skip)]
    pub threads: usize,
}

impl Default for PredictOptions {
    fn default() -> Self {
        Self {
            probes: 64,
            curvature_samples: 1024,
            power_iterations: 30,
            fd_rel_step: 1e-3,
            loss_samples: 4096,
            samples: None,
            threads: crate::setup::default_threads(),
        }
    }
}

/// The estimates at x_1 and the learning rate they imply. JSON names follow LHL15.
#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    pub scenario: String,
    pub model: String,
    /// Per-sample gradient variance: the maximum over the probes.
    pub sigma2: f64,
    /// The mean over the probes (for information).
    pub sigma2_mean: f64,
    #[serde(rename = "L")]
    pub lipschitz: f64,
    #[serde(rename = "D_f")]
    pub d_f: f64,
    #[serde(rename = "M")]
    pub batch_size: u64,
    /// The updates of the run, MK / M (a fraction where a budget of samples is not a whole
    /// number of mini-batches).
    #[serde(rename = "K")]
    pub updates: f64,
    /// The budget of samples M K the rate is for.
    #[serde(rename = "MK")]
    pub samples: u64,
    /// Whether MK was given (`--samples`) rather than taken from the scenario's epochs.
    pub samples_given: bool,
    /// LHL15's per-sample step sqrt(D_f / (M K L sigma^2)).
    pub gamma: f64,
    /// sqrt(K sigma^2 / (M L D_f)); seed 000's theorem needs alpha <= p.
    pub alpha: f64,
    pub p: u32,
    /// Optimal guarantee with p learners over that with one (about p / alpha).
    pub guarantee_ratio: f64,
    /// Left side of LHL15's condition (2), L M gamma + 2 L^2 M^2 p^2 gamma^2, at `gamma`
    /// with p learners: the analysis holds only when it is <= 1.
    pub constraint: f64,
    /// The largest gamma satisfying (2) with p learners (its learning rate is M gamma_max).
    pub gamma_max: f64,
    /// M * gamma rounded to 3 significant digits: what `--apply` writes.
    pub learning_rate: f64,
    /// M * min(gamma, gamma_max) rounded to 3 significant digits: the rate with condition (2)
    /// enforced (what `--apply --within-condition` writes).
    pub learning_rate_within_condition: f64,
    /// The scenario's `algorithm.learning_rate`, for comparison.
    pub current_learning_rate: f64,
    pub estimator: PredictOptions,
}

/// Errors of `predict-lr`. All are fatal for the command.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// The scenario was loaded without its data (timing-only synthetic set).
    #[error("{scenario}: no data set loaded; load it with --set workload.gradients=real")]
    NoData { scenario: String },
    /// The model cannot be computed by the numerics.
    #[error("{scenario}: {source}")]
    Numerics {
        scenario: String,
        source: NumericsError,
    },
    /// An estimate is zero or not finite, so gamma is undefined (e.g. noise-free gradients).
    #[error(
        "{scenario}: {quantity} = {value}; the learning rate formula needs it finite and positive"
    )]
    Degenerate {
        scenario: String,
        quantity: &'static str,
        value: f64,
    },
    #[error("bad estimator option: {0}")]
    Options(String),
    /// The theory refused the estimates (cannot happen after the checks above; kept typed).
    #[error("estimates rejected by the theory: {0}")]
    Theory(#[from] theory::TheoryError),
    /// The scenario text given to [`apply_to_scenario_text`] is not TOML.
    #[error("scenario is not valid TOML: {0}")]
    Toml(#[from] toml_edit::TomlError),
    #[error("scenario key `algorithm` is not a table")]
    AlgorithmNotTable,
}

/// Measures sigma^2, L and D_f at x_1 and computes gamma, alpha and the guarantee ratio.
pub fn predict(scenario: &Scenario, opts: &PredictOptions) -> Result<Prediction, PredictError> {
    let name = scenario.name().to_string();
    if opts.probes < 2 || opts.curvature_samples == 0 || opts.power_iterations == 0 {
        return Err(PredictError::Options(
            "need probes >= 2, curvature_samples >= 1, power_iterations >= 1".into(),
        ));
    }
    if !(opts.fd_rel_step.is_finite() && opts.fd_rel_step > 0.0) || opts.loss_samples == 0 {
        return Err(PredictError::Options(
            "need fd_rel_step > 0 and loss_samples >= 1".into(),
        ));
    }
    let data = scenario
        .dataset
        .clone()
        .ok_or_else(|| PredictError::NoData {
            scenario: name.clone(),
        })?;
    let objective: Arc<dyn Objective> = match &scenario.model {
        ModelSpec::Layers(m) => Arc::new(
            Net::new(m)
                .map_err(|source| PredictError::Numerics {
                    scenario: name.clone(),
                    source,
                })?
                .with_threads(opts.threads.max(1)),
        ),
        ModelSpec::Quadratic(q) => Arc::new(NoisyQuadratic::new(q.clone())),
    };
    let f = &scenario.file;
    let seed = f.seed;
    let x = objective.init_params(seed);
    let m = f.algorithm.batch_size;
    let samples = match opts.samples {
        Some(n) if n < m => {
            return Err(PredictError::Options(format!(
                "--samples {n} is less than one mini-batch (M = algorithm.batch_size = {m}); \
                 give the run's budget of samples, M K, at least {m}"
            )));
        }
        Some(n) => n,
        None => m * f.workload.epochs * scenario.iterations_per_epoch,
    };
    let p = scenario.placement.learner_gpus.len() as u32;
    let mut probe = Probe {
        objective: objective.as_ref(),
        data: &data,
        scratch: Scratch::default(),
    };

    let (sigma2, sigma2_mean) = probe.sigma2(&x, m as usize, opts.probes, seed);
    let lipschitz = probe.lipschitz(&x, opts, seed);
    let d_f = probe.mean_loss(&x, opts.loss_samples, seed);
    for (quantity, value) in [("sigma^2", sigma2), ("L", lipschitz), ("D_f", d_f)] {
        if !(value.is_finite() && value > 0.0) {
            return Err(PredictError::Degenerate {
                scenario: name,
                quantity,
                value,
            });
        }
    }
    let (mf, kf) = (m as f64, samples as f64 / m as f64);
    let gamma = theory::predicted_gamma(d_f, mf, kf, lipschitz, sigma2);
    let alpha = theory::alpha(kf, sigma2, mf, lipschitz, d_f);
    let problem = theory::Problem::new(d_f, lipschitz, sigma2, mf, kf)?;
    let mut estimator = opts.clone();
    let n = data.len(Split::Train);
    estimator.curvature_samples = opts.curvature_samples.min(n);
    estimator.loss_samples = opts.loss_samples.min(n);
    Ok(Prediction {
        scenario: name,
        model: scenario.model.name().to_string(),
        sigma2,
        sigma2_mean,
        lipschitz,
        d_f,
        batch_size: m,
        updates: kf,
        samples,
        samples_given: opts.samples.is_some(),
        gamma,
        alpha,
        p,
        guarantee_ratio: theory::guarantee_ratio(alpha, p),
        constraint: problem.constraint(gamma, p),
        gamma_max: problem.gamma_max(p),
        learning_rate: round_significant(mf * gamma, 3),
        learning_rate_within_condition: round_significant(mf * gamma.min(problem.gamma_max(p)), 3),
        current_learning_rate: f.algorithm.learning_rate,
        estimator,
    })
}

impl Prediction {
    /// A few lines for the terminal.
    pub fn to_text(&self) -> String {
        format!(
            "{} ({}), at x_1:\n\
             \x20 sigma^2 = {:.4e} per sample (max over {} probes; mean {:.4e})\n\
             \x20 L       = {:.4e} (power iteration, {} steps on {} samples)\n\
             \x20 D_f     = {:.4e} (f(x_1) on {} samples, f* taken as 0)\n\
             \x20 M = {}, K = {} (M K = {} samples{}), p = {}\n\
             gamma = sqrt(D_f / (M K L sigma^2)) = {:.4e} per sample (LHL15)\n\
             alpha = sqrt(K sigma^2 / (M L D_f)) = {:.4}; guarantee ratio p vs 1 learner = {:.4}\n\
             learning_rate = M * gamma = {} (now {}; --apply writes this)\n\
             LHL15 condition (2) at gamma with p = {}: {:.3} (<= 1 needed); \
             largest feasible learning rate M * gamma_max = {:.4e}\n\
             learning_rate with (2) enforced = M * min(gamma, gamma_max) = {} \
             (--apply --within-condition writes this)\n{}",
            self.scenario,
            self.model,
            self.sigma2,
            self.estimator.probes,
            self.sigma2_mean,
            self.lipschitz,
            self.estimator.power_iterations,
            self.estimator.curvature_samples,
            self.d_f,
            self.estimator.loss_samples,
            self.batch_size,
            self.updates,
            self.samples,
            if self.samples_given {
                ", given"
            } else {
                ", the scenario's epochs"
            },
            self.p,
            self.gamma,
            self.alpha,
            self.guarantee_ratio,
            self.learning_rate,
            self.current_learning_rate,
            self.p,
            self.constraint,
            self.batch_size as f64 * self.gamma_max,
            self.learning_rate_within_condition,
            if self.constraint > 1.0 {
                "warning: gamma violates (2), so LHL15's guarantee does not cover it\n"
            } else {
                ""
            },
        )
    }
}

/// `text` (a scenario file) with `algorithm.learning_rate` set to `learning_rate`; comments,
/// order and every other line are kept, as is a comment after the old value.
pub fn apply_to_scenario_text(text: &str, learning_rate: f64) -> Result<String, PredictError> {
    let mut doc: toml_edit::DocumentMut = text.parse()?;
    let algorithm = doc
        .entry("algorithm")
        .or_insert_with(toml_edit::table)
        .as_table_like_mut()
        .ok_or(PredictError::AlgorithmNotTable)?;
    let mut new = toml_edit::Value::from(learning_rate);
    match algorithm.get_mut("learning_rate") {
        Some(item) => {
            if let Some(old) = item.as_value() {
                *new.decor_mut() = old.decor().clone();
            }
            *item = toml_edit::Item::Value(new);
        }
        None => {
            algorithm.insert("learning_rate", toml_edit::Item::Value(new));
        }
    }
    Ok(doc.to_string())
}

fn round_significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// One objective on one data set, evaluated at fixed points.
struct Probe<'a> {
    objective: &'a dyn Objective,
    data: &'a Dataset,
    scratch: Scratch,
}

impl Probe<'_> {
    fn grad(&mut self, x: &[f32], batch: &Batch, seed: u64) -> Vec<f32> {
        let mut g = vec![0.0; x.len()];
        self.objective
            .loss_grad(x, batch, seed, &mut g, &mut self.scratch);
        g
    }

    /// (max, mean) over `probes` mini-batches of M times the corrected ||G_j - g_bar||^2.
    fn sigma2(&mut self, x: &[f32], m: usize, probes: usize, seed: u64) -> (f64, f64) {
        let order = sample_order(self.data.len(Split::Train), m * probes, seed ^ 0x5167);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xD50);
        let grads: Vec<Vec<f32>> = order
            .chunks(m)
            .map(|idx| {
                let batch = self.data.gather(Split::Train, idx);
                self.grad(x, &batch, rng.random())
            })
            .collect();
        let n = grads.len() as f64;
        let mut mean = vec![0.0f64; x.len()];
        for g in &grads {
            mean.iter_mut().zip(g).for_each(|(s, &v)| *s += v as f64);
        }
        mean.iter_mut().for_each(|s| *s /= n);
        let per_sample = grads.iter().map(|g| {
            let v: f64 = g
                .iter()
                .zip(&mean)
                .map(|(&a, b)| (a as f64 - b).powi(2))
                .sum();
            m as f64 * v * n / (n - 1.0)
        });
        let (max, sum) = per_sample.fold((0.0f64, 0.0), |(mx, s), v| (mx.max(v), s + v));
        (max, sum / n)
    }

    /// ||Hv|| after power iteration with central-difference Hessian-vector products.
    fn lipschitz(&mut self, x: &[f32], opts: &PredictOptions, seed: u64) -> f64 {
        let n = self.data.len(Split::Train);
        let idx = sample_order(n, opts.curvature_samples.min(n), seed ^ 0x1195);
        let batch = self.data.gather(Split::Train, &idx);
        let dropout_seed = seed ^ 0xC0FFEE;
        let eps = opts.fd_rel_step * norm(x.iter().map(|&v| v as f64)).max(1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9077);
        let mut v: Vec<f64> = (0..x.len()).map(|_| rng.sample(StandardNormal)).collect();
        let mut hv_norm = 0.0;
        for _ in 0..opts.power_iterations {
            let scale = 1.0 / norm(v.iter().copied());
            v.iter_mut().for_each(|a| *a *= scale);
            let shifted = |sign: f64| -> Vec<f32> {
                x.iter()
                    .zip(&v)
                    .map(|(&a, &d)| (a as f64 + sign * eps * d) as f32)
                    .collect()
            };
            let plus = self.grad(&shifted(1.0), &batch, dropout_seed);
            let minus = self.grad(&shifted(-1.0), &batch, dropout_seed);
            v = plus
                .iter()
                .zip(&minus)
                .map(|(&a, &b)| (a as f64 - b as f64) / (2.0 * eps))
                .collect();
            hv_norm = norm(v.iter().copied());
            if !(hv_norm.is_finite() && hv_norm > 0.0) {
                break;
            }
        }
        hv_norm
    }

    /// Mean inference loss over `samples` training samples (all of them if fewer).
    fn mean_loss(&mut self, x: &[f32], samples: usize, seed: u64) -> f64 {
        let n = self.data.len(Split::Train);
        let idx = sample_order(n, samples.min(n), seed ^ 0xDF);
        let total: f64 = idx
            .chunks(1024)
            .map(|c| {
                let batch = self.data.gather(Split::Train, c);
                self.objective.evaluate(x, &batch, &mut self.scratch).0
            })
            .sum();
        total / idx.len() as f64
    }
}

/// `count` training indices: shuffled passes over the n samples, so disjoint while they last.
fn sample_order(n: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    while out.len() < count && n > 0 {
        let mut pass: Vec<usize> = (0..n).collect();
        pass.shuffle(&mut rng);
        out.extend(pass.into_iter().take(count - out.len()));
    }
    out
}

fn norm(v: impl Iterator<Item = f64>) -> f64 {
    v.map(|a| a * a).sum::<f64>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_significant_digits() {
        assert_eq!(round_significant(0.0051234, 3), 0.00512);
        assert_eq!(round_significant(1234.5, 3), 1230.0);
    }
}
