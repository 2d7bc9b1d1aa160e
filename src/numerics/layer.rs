//! The closed set of layer kinds the numerics compute, built from a model's layer list with
//! their shapes and parameter ranges resolved, and dispatched by `match`.
//!
//! Shapes and parameter counts come from `ModelDef::layer_stats`, the one source of truth;
//! building must reject, with an error naming the layer, anything the kinds cannot compute,
//! so that the passes themselves never meet a model they do not fit.

use std::ops::Range;

use super::conv::Conv2d;
use super::dense::Dense;
use super::embedding::EmbeddingBag;
use super::pointwise::{Dropout, relu_backward, relu_forward};
use super::pool::MaxPool2;
use super::scratch::{LayerBufs, Work, sized};
use super::{Backprop, NumericsError};
use crate::workload::model::{Layer as LayerDef, ModelDef, Shape};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    Conv(Conv2d),
    Relu,
    MaxPool(MaxPool2),
    Dropout(Dropout),
    Dense(Dense),
    Embedding(EmbeddingBag),
}

/// A layer with its per-sample input and output sizes and its slice of the parameters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layer {
    pub kind: Kind,
    /// Per-sample input length (0 for token input).
    pub in_len: usize,
    pub out_len: usize,
    /// Weights then bias, in the flat parameter vector.
    pub params: Range<usize>,
}

/// A layer's input for a chunk of samples.
#[derive(Clone, Copy)]
pub(crate) enum Input<'a> {
    Values(&'a [f32]),
    /// Bag `i` is `ids[offsets[i]..offsets[i + 1]]` (offsets index the whole batch's ids).
    Tokens {
        offsets: &'a [u32],
        ids: &'a [u32],
    },
}

/// What a forward pass needs besides data: dropout's seed and where the chunk starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pass {
    pub training: bool,
    pub seed: u64,
    pub first_sample: usize,
}

/// Resolves `model`'s layers. Errors name the layer.
pub(crate) fn build(model: &ModelDef) -> Result<Vec<Layer>, NumericsError> {
    let stats = model.layer_stats().map_err(NumericsError::Model)?;
    let bad = |i: usize, what: &str| {
        NumericsError::Model(format!("model `{}` layer {i}: {what}", model.name))
    };
    if model.layers.is_empty() {
        return Err(NumericsError::Model(format!(
            "model `{}` has no layers",
            model.name
        )));
    }
    let (mut shape, mut offset) = (model.input, 0usize);
    let mut layers = Vec::with_capacity(stats.len());
    for (i, (def, st)) in model.layers.iter().zip(&stats).enumerate() {
        let tokens = matches!(shape, Shape::Tokens { .. });
        if tokens && !matches!(def, LayerDef::EmbeddingBag { .. }) {
            return Err(bad(i, "token input must go straight into an embedding-bag"));
        }
        let kind = match (def.clone(), shape) {
            (
                LayerDef::Conv2d {
                    out_channels,
                    kernel,
                    padding,
                },
                Shape::Image { c, h, w },
            ) => Kind::Conv(Conv2d::new(c, h, w, out_channels, kernel, padding)),
            (LayerDef::Relu, _) => Kind::Relu,
            (LayerDef::MaxPool2, Shape::Image { c, h, w }) => Kind::MaxPool(MaxPool2 { c, h, w }),
            (LayerDef::Dropout { p }, _) => {
                if !(0.0..1.0).contains(&p) {
                    return Err(bad(i, &format!("dropout p = {p} is outside [0, 1)")));
                }
                Kind::Dropout(Dropout::new(p, i))
            }
            (LayerDef::Dense { outputs }, s) => Kind::Dense(Dense {
                inputs: s.len(),
                outputs,
            }),
            (LayerDef::EmbeddingBag { dim }, Shape::Tokens { vocabulary, .. }) => {
                Kind::Embedding(EmbeddingBag { vocabulary, dim })
            }
            // layer_stats accepted the model, so every kind met the input it needs.
            _ => return Err(bad(i, "layer does not fit its input")),
        };
        let count = st.params as usize;
        layers.push(Layer {
            kind,
            in_len: if tokens { 0 } else { shape.len() },
            out_len: st.output.len(),
            params: offset..offset + count,
        });
        offset += count;
        shape = st.output;
    }
    if matches!(shape, Shape::Tokens { .. }) || shape.is_empty() {
        return Err(NumericsError::Model(format!(
            "model `{}` has no class outputs",
            model.name
        )));
    }
    Ok(layers)
}

impl Layer {
    /// Weights before the bias, and whether the layer has parameters at all.
    pub fn weight_count(&self) -> usize {
        match &self.kind {
            Kind::Conv(c) => c.weight_count(),
            Kind::Dense(d) => d.weight_count(),
            Kind::Embedding(e) => e.weight_count(),
            Kind::Relu | Kind::MaxPool(_) | Kind::Dropout(_) => 0,
        }
    }

    /// Runs `n` samples forward into `bufs.out`; `params` is the whole parameter vector.
    pub fn forward(
        &self,
        n: usize,
        input: Input<'_>,
        params: &[f32],
        bufs: &mut LayerBufs,
        work: &mut Work,
        pass: Pass,
    ) {
        let p = &params[self.params.clone()];
        let y = sized(&mut bufs.out, n * self.out_len);
        let x = match input {
            Input::Values(x) => &x[..n * self.in_len],
            Input::Tokens { offsets, ids } => {
                if let Kind::Embedding(e) = &self.kind {
                    e.forward(&offsets[..=n], ids, p, y);
                    return;
                }
                unreachable!("token input reaches only an embedding-bag (checked by build)");
            }
        };
        match &self.kind {
            Kind::Conv(c) => c.forward(n, x, p, y, work),
            Kind::Relu => relu_forward(x, y),
            Kind::MaxPool(m) => m.forward(n, x, y, sized(&mut bufs.argmax, n * self.out_len)),
            Kind::Dropout(d) if pass.training => {
                let mask = sized(&mut bufs.mask, n * self.out_len);
                d.forward((pass.seed, pass.first_sample, self.in_len), x, y, mask);
            }
            Kind::Dropout(_) => y.copy_from_slice(x),
            Kind::Dense(d) => d.forward(n, x, p, y),
            Kind::Embedding(_) => {
                unreachable!("an embedding-bag gets token input (checked by build)")
            }
        }
    }

    /// Backward pass of a value-input layer: adds the parameter gradient to `dparams` (this
    /// layer's slice) and writes the input gradient to `b.dx` if asked. `bufs` is what the
    /// forward pass left.
    pub fn backward(
        &self,
        b: Backprop<'_>,
        params: &[f32],
        dparams: &mut [f32],
        bufs: &LayerBufs,
        work: &mut Work,
    ) {
        let Backprop { n, x, dy, dx } = b;
        let p = &params[self.params.clone()];
        let (x, dy) = (&x[..n * self.in_len], &dy[..n * self.out_len]);
        let dx = dx.map(|d| &mut d[..n * self.in_len]);
        match (&self.kind, dx) {
            (Kind::Conv(c), dx) => c.backward(Backprop { n, x, dy, dx }, p, dparams, work),
            (Kind::Dense(d), dx) => d.backward(Backprop { n, x, dy, dx }, p, dparams),
            (Kind::Relu, Some(dx)) => relu_backward(&bufs.out[..n * self.out_len], dy, dx),
            (Kind::MaxPool(m), Some(dx)) => m.backward(n, dy, &bufs.argmax, dx),
            (Kind::Dropout(d), Some(dx)) => d.backward(&bufs.mask, dy, dx),
            (Kind::Relu | Kind::MaxPool(_) | Kind::Dropout(_), None) => {}
            (Kind::Embedding(_), _) => unreachable!("embedding gradients are scattered by the net"),
        }
    }
}

#[cfg(test)]
mod tests;
