//! A mini-batch: the samples one gradient is computed on, gathered from a data set split.
//! Shared currency between the data sets (which fill batches) and the numerics (which read
//! them); it owns its buffers so it can be sent to a worker thread.

/// Inputs of the samples in a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchInputs {
    /// Dense samples, `x.len() == n * sample_len`, each sample laid out as its model input
    /// expects (images channel-major: c, then h, then w).
    Dense { x: Vec<f32>, sample_len: usize },
    /// Bags of token ids: sample `i` holds `ids[offsets[i]..offsets[i + 1]]`
    /// (`offsets.len() == n + 1`).
    Tokens { offsets: Vec<u32>, ids: Vec<u32> },
}

/// Inputs and class labels of `n` samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub inputs: BatchInputs,
    pub labels: Vec<u32>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}
