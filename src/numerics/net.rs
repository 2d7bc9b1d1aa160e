//! A network built from a `ModelDef`: its flat parameter layout, deterministic initialisation,
//! and the [`Objective`] the simulator calls.
//!
//! A batch is cut into chunks of at most [`CHUNK_SAMPLES`] samples, a cut that depends on the
//! batch size alone. Each chunk's gradient is computed into its own buffer and the buffers are
//! added to the result in chunk order, so the bits of a result never depend on the number of
//! threads or on which thread calls. The embedding table's gradient is sparse: it is scattered
//! once, in sample order, after the chunks. This module must never sum in any other order.

use std::ops::Range;

use super::init::{self, Init};
use super::layer::{self, Kind, Layer};
use super::scratch::Scratch;
use super::{NumericsError, Objective};
use crate::data::{Batch, BatchInputs};
use crate::workload::model::{ModelDef, Shape};

/// Most samples in one chunk: the unit of work of one thread, and of the fixed summation
/// order. Part of what a result is: changing it changes the low bits of gradients.
pub const CHUNK_SAMPLES: usize = 16;

/// A feed-forward network with softmax cross-entropy on top.
///
/// Parameter layout: per layer, in layer order, its weights then its bias.
/// - conv2d: weights `[out_channels][in_channels][kernel][kernel]`, bias `[out_channels]`;
/// - dense: weights `[outputs][inputs]` (inputs in the flattened input's order: channel, row,
///   column), bias `[outputs]`;
/// - embedding-bag: table `[vocabulary][dim]`, no bias;
/// - ReLU, max-pool, dropout: none.
#[derive(Clone, Debug)]
pub struct Net {
    pub(super) name: String,
    pub(super) input: Shape,
    pub(super) layers: Vec<Layer>,
    pub(super) num_params: usize,
    pub(super) classes: usize,
    /// Parameters of a leading embedding-bag, whose gradient is scattered, not chunked.
    pub(super) sparse_params: usize,
    pub(super) threads: usize,
    pub(super) init: Init,
}

/// Where one layer's parameters lie in the flat vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamBlock {
    pub layer: usize,
    pub kind: &'static str,
    pub weights: Range<usize>,
    /// The weights' dimensions, outermost first.
    pub weight_shape: Vec<usize>,
    pub bias: Option<Range<usize>>,
}

impl Net {
    /// Builds the network of `model`, or says which layer the numerics cannot compute.
    /// Computes on one thread; see [`Net::with_threads`].
    pub fn new(model: &ModelDef) -> Result<Net, NumericsError> {
        let layers = layer::build(model)?;
        let num_params = layers.last().map_or(0, |l| l.params.end);
        let sparse_params = match layers.first() {
            Some(l) if matches!(l.kind, Kind::Embedding(_)) => l.params.end,
            _ => 0,
        };
        Ok(Net {
            name: model.name.to_string(),
            input: model.input,
            classes: layers.last().map_or(0, |l| l.out_len),
            layers,
            num_params,
            sparse_params,
            threads: 1,
            init: Init::default(),
        })
    }

    /// Uses up to `threads` threads per call (at least 1). Changes speed only, never a result.
    pub fn with_threads(mut self, threads: usize) -> Net {
        self.threads = threads.max(1);
        self
    }

    /// Draws initial parameters with `init` (default [`Init::Torch`]).
    pub fn with_init(mut self, init: Init) -> Net {
        self.init = init;
        self
    }

    pub fn init(&self) -> Init {
        self.init
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The parameter layout, one block per layer that has parameters.
    pub fn layout(&self) -> Vec<ParamBlock> {
        let mut blocks = vec![];
        for (i, l) in self.layers.iter().enumerate() {
            let (kind, weight_shape) = match &l.kind {
                Kind::Conv(c) => ("conv2d", vec![c.oc, c.c, c.k, c.k]),
                Kind::Dense(d) => ("dense", vec![d.outputs, d.inputs]),
                Kind::Embedding(e) => ("embedding-bag", vec![e.vocabulary, e.dim]),
                Kind::Relu | Kind::MaxPool(_) | Kind::Dropout(_) => continue,
            };
            let w_end = l.params.start + l.weight_count();
            blocks.push(ParamBlock {
                layer: i,
                kind,
                weights: l.params.start..w_end,
                weight_shape,
                bias: (w_end < l.params.end).then_some(w_end..l.params.end),
            });
        }
        blocks
    }

    /// Checks that `batch` fits this network: input kind and size, offsets, token ids, labels.
    /// [`Objective`] calls panic with this error on a batch that does not fit.
    pub fn check_batch(&self, batch: &Batch) -> Result<(), NumericsError> {
        let n = batch.len();
        let fail = |message: String| {
            Err(NumericsError::Batch {
                model: self.name.clone(),
                message,
            })
        };
        match (&batch.inputs, self.input) {
            (BatchInputs::Dense { x, sample_len }, Shape::Image { .. } | Shape::Vector(_)) => {
                if *sample_len != self.input.len() {
                    return fail(format!(
                        "samples of {sample_len} values, model takes {}",
                        self.input.len()
                    ));
                }
                if x.len() != n * sample_len {
                    return fail(format!(
                        "{} values for {n} samples of {sample_len}",
                        x.len()
                    ));
                }
            }
            (BatchInputs::Tokens { offsets, ids }, Shape::Tokens { vocabulary, .. }) => {
                if offsets.len() != n + 1 {
                    return fail(format!("{} offsets for {n} samples", offsets.len()));
                }
                if offsets.windows(2).any(|w| w[0] > w[1]) || offsets[n] as usize > ids.len() {
                    return fail("offsets decrease or run past the ids".to_string());
                }
                if let Some(id) = ids.iter().find(|&&id| id as usize >= vocabulary) {
                    return fail(format!("token id {id} outside vocabulary of {vocabulary}"));
                }
            }
            (BatchInputs::Dense { .. }, _) => return fail("dense inputs for a token model".into()),
            (BatchInputs::Tokens { .. }, _) => {
                return fail("token inputs for a dense model".into());
            }
        }
        if let Some(l) = batch.labels.iter().find(|&&l| l as usize >= self.classes) {
            return fail(format!("label {l} outside 0..{}", self.classes));
        }
        Ok(())
    }

    fn check_call(&self, params: &[f32], batch: &Batch) {
        assert_eq!(
            params.len(),
            self.num_params,
            "parameter vector of the wrong length for model `{}`",
            self.name
        );
        if let Err(e) = self.check_batch(batch) {
            panic!("{e}");
        }
    }
}

impl Objective for Net {
    fn num_params(&self) -> usize {
        self.num_params
    }

    fn init_params(&self, seed: u64) -> Vec<f32> {
        init::draw(&self.layers, self.num_params, self.init, seed)
    }

    fn loss_grad(
        &self,
        params: &[f32],
        batch: &Batch,
        seed: u64,
        grad: &mut [f32],
        scratch: &mut Scratch,
    ) -> f32 {
        self.check_call(params, batch);
        assert_eq!(
            grad.len(),
            self.num_params,
            "gradient vector of the wrong length"
        );
        grad.fill(0.0);
        let (sparse, dense) = grad.split_at_mut(self.sparse_params);
        let mut loss = 0.0f64;
        let emb = match self.layers.first().map(|l| &l.kind) {
            Some(Kind::Embedding(e)) => Some(e),
            _ => None,
        };
        self.run(params, batch, seed, true, scratch, |r, w| {
            loss += w.loss;
            for (g, s) in dense.iter_mut().zip(&w.slot) {
                *g += s;
            }
            if let (Some(e), BatchInputs::Tokens { offsets, ids }) = (emb, &batch.inputs) {
                e.backward(&offsets[r.start..=r.end], ids, &w.emb_dy, sparse);
            }
        });
        match batch.len() {
            0 => 0.0,
            n => (loss / n as f64) as f32,
        }
    }

    fn evaluate(&self, params: &[f32], batch: &Batch, scratch: &mut Scratch) -> (f64, usize) {
        self.check_call(params, batch);
        let (mut loss, mut correct) = (0.0, 0);
        self.run(params, batch, 0, false, scratch, |_, w| {
            loss += w.loss;
            correct += w.correct;
        });
        (loss, correct)
    }
}
