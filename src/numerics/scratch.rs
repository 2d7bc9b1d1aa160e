//! Reusable buffers for gradient computation, so that a training step allocates nothing once
//! the buffers have grown to the model's and the batch's size.
//!
//! A [`Scratch`] belongs to one calling thread and may be reused across models (buffers are
//! resized on use). It holds no result between calls: nothing here may ever change what a
//! computation returns, only how much it allocates.

/// Buffers for [`Objective`](super::Objective) calls: one set per worker thread the network
/// uses inside a call. `Scratch::default()` is empty; the first call sizes it.
#[derive(Default)]
pub struct Scratch {
    pub(crate) workers: Vec<Worker>,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let floats: usize = self.workers.iter().map(Worker::capacity).sum();
        f.debug_struct("Scratch")
            .field("workers", &self.workers.len())
            .field("bytes", &(floats * 4))
            .finish()
    }
}

impl Scratch {
    /// The first `threads` worker buffer sets, each with room for `layers` layers.
    pub(crate) fn workers(&mut self, threads: usize, layers: usize) -> &mut [Worker] {
        if self.workers.len() < threads {
            self.workers.resize_with(threads, Worker::default);
        }
        for w in &mut self.workers[..threads] {
            if w.layers.len() < layers {
                w.layers.resize_with(layers, LayerBufs::default);
            }
        }
        &mut self.workers[..threads]
    }
}

/// Everything one worker needs to run one chunk of samples through the network.
#[derive(Default)]
pub(crate) struct Worker {
    /// Per layer: its output and what its backward pass needs.
    pub layers: Vec<LayerBufs>,
    pub work: Work,
    /// Gradients with respect to activations, ping-ponged between layers.
    pub ga: Vec<f32>,
    pub gb: Vec<f32>,
    /// The chunk's gradient of the dense (non-embedding) parameters.
    pub slot: Vec<f32>,
    /// The chunk's gradient with respect to the embedding-bag output, scattered afterwards.
    pub emb_dy: Vec<f32>,
    /// Sum of the chunk's per-sample losses, and its correct predictions.
    pub loss: f64,
    pub correct: usize,
}

impl Worker {
    fn capacity(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|l| l.out.capacity() + l.mask.capacity() + l.argmax.capacity() / 4)
            .sum();
        layers
            + self.work.cols.capacity()
            + self.work.tmp.capacity()
            + self.ga.capacity()
            + self.gb.capacity()
            + self.slot.capacity()
            + self.emb_dy.capacity()
    }
}

/// One layer's buffers for a chunk.
#[derive(Default)]
pub(crate) struct LayerBufs {
    pub out: Vec<f32>,
    /// Dropout: per element 0 or 1 / (1 - p).
    pub mask: Vec<f32>,
    /// Max-pool: per output, where in its window the maximum lies.
    pub argmax: Vec<u8>,
}

/// Temporaries shared by the layers of one worker (used by one layer at a time).
#[derive(Default)]
pub(crate) struct Work {
    pub cols: Vec<f32>,
    pub tmp: Vec<f32>,
}

/// The first `len` elements of `v` (contents unspecified). `v` only ever grows: shrinking and
/// growing back would zero-fill the regrown part on every call.
pub(crate) fn sized<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}
