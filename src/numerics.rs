//! Real gradient computation: the loss and mean gradient of a [`ModelDef`] on a [`Batch`],
//! computed on the CPU in f32 with explicit forward and backward passes per layer.
//!
//! The simulator's timing never depends on this module; it calls an [`Objective`] only where a
//! gradient's value is applied. Every result is a pure function of (parameters, batch, seed):
//! this module must never read a clock, a global RNG or a global thread pool, and must never
//! let the number of threads change a single bit of a result.
//!
//! Use: `Net::new(&model)?` (optionally `.with_threads(n)`, `.with_init(Init::He)`), then the
//! [`Objective`] methods with one [`Scratch`] per calling thread. Layers are a closed enum
//! (`layer.rs`), one file per kind; `chunked.rs` runs a batch through them in chunks of
//! [`CHUNK_SAMPLES`]; all heavy lifting is matrix products (`gemm.rs`).
//!
//! [`ModelDef`]: crate::workload::model::ModelDef

mod chunked;
mod conv;
mod dense;
mod embedding;
mod gemm;
mod init;
mod layer;
mod loss;
mod net;
mod pointwise;
mod pool;
pub mod quadratic;
mod scratch;

use crate::data::Batch;

pub use init::Init;
pub use net::{CHUNK_SAMPLES, Net, ParamBlock};
pub use scratch::Scratch;

/// What a layer's backward pass for `n` samples reads and writes besides its parameters: its
/// forward input `x`, the gradient `dy` of its output, and where to write the gradient of its
/// input (None: not needed, e.g. for the first layer).
pub(crate) struct Backprop<'a> {
    pub n: usize,
    pub x: &'a [f32],
    pub dy: &'a [f32],
    pub dx: Option<&'a mut [f32]>,
}

/// A differentiable training objective over a flat `f32` parameter vector, called by the
/// simulator from worker threads (each with its own [`Scratch`]).
pub trait Objective: Send + Sync {
    fn num_params(&self) -> usize;

    /// A fresh parameter vector, a deterministic function of `seed`.
    fn init_params(&self, seed: u64) -> Vec<f32>;

    /// Mean loss over the batch; overwrites `grad` with the mean gradient. `seed` drives
    /// dropout, so the result is a pure function of (params, batch, seed).
    fn loss_grad(
        &self,
        params: &[f32],
        batch: &Batch,
        seed: u64,
        grad: &mut [f32],
        scratch: &mut Scratch,
    ) -> f32;

    /// Inference (no dropout): (sum of losses, number of correct predictions) over the batch.
    fn evaluate(&self, params: &[f32], batch: &Batch, scratch: &mut Scratch) -> (f64, usize);
}

/// Errors from building a network or checking a batch against it. Fatal for the run: the
/// model or the data does not fit the numerics.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NumericsError {
    /// The model's layers do not fit together (message from `ModelDef::layer_stats`), or it
    /// uses a layer in a place the numerics cannot compute it.
    #[error("{0}")]
    Model(String),
    /// A batch does not fit the model: wrong input kind or size, a label out of range, a token
    /// id outside the vocabulary, malformed offsets.
    #[error("batch does not fit model `{model}`: {message}")]
    Batch { model: String, message: String },
}
