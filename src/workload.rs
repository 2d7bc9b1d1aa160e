//! What is being trained: the model (its layers, hence its parameter count and FLOPs per
//! sample) and the data set (hence the samples per epoch). These definitions are the one source
//! of truth that the timing model, and the numerics built on it, both read.

pub mod dataset;
pub mod model;

pub use dataset::DatasetSpec;
pub use model::{Layer, ModelDef, Shape};
