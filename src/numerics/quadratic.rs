//! The noisy quadratic model: f(x) = 1/2 sum_i h_i x_i^2 with curvatures spaced geometrically
//! from `h_max` down to `h_min`, and stochastic gradients G = h (.) x + noise whose squared norm
//! has mean `noise_variance / M` for a mini-batch of M samples (per-sample variance sigma^2).
//! Its smoothness constant L = h_max and its noise are known exactly, which makes it the
//! objective for theory checks and cheap sweeps. It reads no data: a batch only says how many
//! samples it stands for. Every result is a pure function of (parameters, batch size, seed).

use super::{Objective, Scratch};
use crate::data::Batch;
use crate::workload::model::QuadraticDef;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

pub struct NoisyQuadratic {
    def: QuadraticDef,
    curvature: Vec<f32>,
}

impl NoisyQuadratic {
    pub fn new(def: QuadraticDef) -> Self {
        let curvature = def.curvatures().into_iter().map(|h| h as f32).collect();
        Self { def, curvature }
    }

    /// f(x), accumulated in f64.
    pub fn value(&self, x: &[f32]) -> f64 {
        0.5 * x
            .iter()
            .zip(&self.curvature)
            .map(|(&x, &h)| h as f64 * x as f64 * x as f64)
            .sum::<f64>()
    }
}

impl Objective for NoisyQuadratic {
    fn num_params(&self) -> usize {
        self.def.dim
    }

    /// Every coordinate starts at `x0`, whatever the seed.
    fn init_params(&self, _seed: u64) -> Vec<f32> {
        vec![self.def.x0 as f32; self.def.dim]
    }

    /// Returns the exact f(x); the gradient carries the noise.
    fn loss_grad(
        &self,
        params: &[f32],
        batch: &Batch,
        seed: u64,
        grad: &mut [f32],
        _scratch: &mut Scratch,
    ) -> f32 {
        let m = batch.len().max(1) as f64;
        let std = (self.def.noise_variance / (m * self.def.dim as f64)).sqrt() as f32;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for ((g, &x), &h) in grad.iter_mut().zip(params).zip(&self.curvature) {
            let z: f32 = if std > 0.0 {
                StandardNormal.sample(&mut rng)
            } else {
                0.0
            };
            *g = h * x + std * z;
        }
        self.value(params) as f32
    }

    /// (n f(x), 0): the model predicts no classes.
    fn evaluate(&self, params: &[f32], batch: &Batch, _scratch: &mut Scratch) -> (f64, usize) {
        (batch.len() as f64 * self.value(params), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::BatchInputs;

    fn batch(n: usize) -> Batch {
        Batch {
            inputs: BatchInputs::Tokens {
                offsets: vec![0; n + 1],
                ids: vec![],
            },
            labels: vec![0; n],
        }
    }

    #[test]
    fn noise_has_the_chosen_variance_and_zero_is_exact() {
        let def = QuadraticDef {
            dim: 200,
            h_max: 2.0,
            h_min: 0.02,
            noise_variance: 3.0,
            x0: 1.0,
        };
        let q = NoisyQuadratic::new(def.clone());
        let x = q.init_params(0);
        let mut g = vec![0.0; 200];
        let (m, trials) = (4, 2000);
        let mut mean_sq = 0.0;
        for seed in 0..trials {
            q.loss_grad(&x, &batch(m), seed, &mut g, &mut Scratch::default());
            mean_sq += g
                .iter()
                .zip(&q.curvature)
                .map(|(&g, &h)| ((g - h * 1.0) as f64).powi(2))
                .sum::<f64>();
        }
        mean_sq /= trials as f64;
        assert!((mean_sq / (3.0 / m as f64) - 1.0).abs() < 0.05, "{mean_sq}");
        let exact = NoisyQuadratic::new(QuadraticDef {
            noise_variance: 0.0,
            ..def
        });
        let loss = exact.loss_grad(&x, &batch(1), 9, &mut g, &mut Scratch::default());
        assert_eq!(g, exact.curvature);
        assert!((loss as f64 - exact.value(&x)).abs() < 1e-6);
        assert_eq!(exact.curvature[0], 2.0);
        assert!((exact.curvature[199] - 0.02).abs() < 1e-7);
    }
}
