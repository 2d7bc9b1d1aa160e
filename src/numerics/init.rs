//! Initial parameters: a closed set of schemes, each a deterministic function of the seed.
//!
//! Values are drawn in layout order from one ChaCha8 stream seeded with the seed, so the same
//! seed gives the same vector on every machine. This module must never draw from any other
//! RNG, nor depend on anything but the layers and the seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::layer::{Kind, Layer};

/// How [`Objective::init_params`](super::Objective::init_params) draws the parameters.
/// Embedding rows are standard normal under every scheme (Torch7's `nn.LookupTable` and
/// PyTorch's `nn.Embedding` default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Init {
    /// The seed paper's Torch7 default (`nn.Linear` and `nn.SpatialConvolution` `reset()`):
    /// weights and biases uniform in +-1 / sqrt(fan_in). With it the CIFAR-10 network starts
    /// near the chance loss ln 10 in training mode; under `He` its four dropout layers (each
    /// doubling the second moment in training) and max-pools start it near 35.
    #[default]
    Torch,
    /// He-normal, std sqrt(2 / fan_in), for conv and dense weights followed by a ReLU before
    /// the next layer with parameters; Glorot-uniform, limit sqrt(6 / (fan_in + fan_out)),
    /// for the others; biases zero.
    He,
}

/// A parameter vector of `len` values for `layers` under `init`.
pub(crate) fn draw(layers: &[Layer], len: usize, init: Init, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut params = vec![0.0f32; len];
    for (i, l) in layers.iter().enumerate() {
        let (weights, bias) = params[l.params.clone()].split_at_mut(l.weight_count());
        let (fan_in, fan_out) = match &l.kind {
            Kind::Conv(c) => (c.fan_in(), c.oc * c.k * c.k),
            Kind::Dense(d) => (d.inputs, d.outputs),
            Kind::Embedding(_) => {
                weights
                    .iter_mut()
                    .for_each(|v| *v = rng.sample(StandardNormal));
                continue;
            }
            Kind::Relu | Kind::MaxPool(_) | Kind::Dropout(_) => continue,
        };
        let mut uniform = |values: &mut [f32], limit: f32| {
            values
                .iter_mut()
                .for_each(|v| *v = rng.random_range(-limit..limit));
        };
        match init {
            Init::Torch => {
                let limit = 1.0 / (fan_in as f32).sqrt();
                uniform(weights, limit);
                uniform(bias, limit);
            }
            Init::He => {
                let relu_follows = layers[i + 1..]
                    .iter()
                    .take_while(|n| n.params.is_empty())
                    .any(|n| n.kind == Kind::Relu);
                if relu_follows {
                    let std = (2.0 / fan_in as f32).sqrt();
                    weights
                        .iter_mut()
                        .for_each(|v| *v = std * rng.sample::<f32, _>(StandardNormal));
                } else {
                    uniform(weights, (6.0 / (fan_in + fan_out) as f32).sqrt());
                }
            }
        }
    }
    params
}
