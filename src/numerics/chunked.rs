//! Runs a batch through a [`Net`] chunk by chunk: the fixed cut of the batch into chunks,
//! the forward and backward pass of one chunk, and the waves of chunks spread over threads.
//!
//! Chunks are cut by the batch size alone, and finished chunks are handed back in chunk order
//! whatever thread ran them; this module must never let a thread count reach a result.

use std::ops::Range;

use super::Backprop;
use super::layer::{Input, Kind, Pass};
use super::loss::softmax_cross_entropy;
use super::net::{CHUNK_SAMPLES, Net};
use super::scratch::{Scratch, Worker, sized};
use crate::data::{Batch, BatchInputs};

impl Net {
    /// Sample range of chunk `i` of `chunks` over `n` samples (sizes differ by at most one).
    fn chunk(n: usize, chunks: usize, i: usize) -> Range<usize> {
        i * n / chunks..(i + 1) * n / chunks
    }

    /// The chunk's layer-0 input.
    fn input<'a>(&self, batch: &'a Batch, r: &Range<usize>) -> Input<'a> {
        match &batch.inputs {
            BatchInputs::Dense { x, sample_len } => {
                Input::Values(&x[r.start * sample_len..r.end * sample_len])
            }
            BatchInputs::Tokens { offsets, ids } => Input::Tokens {
                offsets: &offsets[r.start..=r.end],
                ids,
            },
        }
    }

    /// Runs chunk `r` forward (and backward if `grad_scale` is given, which it multiplies into
    /// the loss gradient), leaving its loss, correct count and gradient in `w`.
    fn run_chunk(
        &self,
        params: &[f32],
        batch: &Batch,
        r: Range<usize>,
        pass: Pass,
        grad_scale: Option<f32>,
        w: &mut Worker,
    ) {
        let n = r.len();
        let input = self.input(batch, &r);
        for (i, l) in self.layers.iter().enumerate() {
            let (before, rest) = w.layers.split_at_mut(i);
            let x = match before.last() {
                Some(prev) => Input::Values(&prev.out),
                None => input,
            };
            l.forward(n, x, params, &mut rest[0], &mut w.work, pass);
        }
        let last = self.layers.len() - 1;
        let logits = &w.layers[last].out[..n * self.classes];
        let labels = &batch.labels[r];
        let Some(scale) = grad_scale else {
            (w.loss, w.correct) = softmax_cross_entropy(self.classes, logits, labels, 1.0, None);
            return;
        };
        let dy = sized(&mut w.ga, n * self.classes);
        (w.loss, w.correct) = softmax_cross_entropy(self.classes, logits, labels, scale, Some(dy));
        let slot = sized(&mut w.slot, self.num_params - self.sparse_params);
        slot.fill(0.0);
        for (i, l) in self.layers.iter().enumerate().rev() {
            let dy = &w.ga[..n * l.out_len];
            if let Kind::Embedding(_) = l.kind {
                sized(&mut w.emb_dy, n * l.out_len).copy_from_slice(dy);
                continue;
            }
            let x = match (i, input) {
                (0, Input::Values(x)) => x,
                (0, Input::Tokens { .. }) => unreachable!("token input feeds an embedding-bag"),
                _ => &w.layers[i - 1].out[..],
            };
            let dx = (i > 0).then(|| sized(&mut w.gb, n * l.in_len));
            let dparams =
                &mut slot[l.params.start - self.sparse_params..l.params.end - self.sparse_params];
            let b = Backprop { n, x, dy, dx };
            l.backward(b, params, dparams, &w.layers[i], &mut w.work);
            std::mem::swap(&mut w.ga, &mut w.gb);
        }
    }

    /// Runs every chunk of `batch`, `threads` at a time, calling `merge` on each finished
    /// chunk in chunk order.
    pub(super) fn run(
        &self,
        params: &[f32],
        batch: &Batch,
        seed: u64,
        training: bool,
        scratch: &mut Scratch,
        mut merge: impl FnMut(Range<usize>, &Worker),
    ) {
        let n = batch.len();
        let chunks = n.div_ceil(CHUNK_SAMPLES);
        let threads = self.threads.min(chunks).max(1);
        let workers = scratch.workers(threads, self.layers.len());
        let scale = training.then_some(1.0 / n as f32);
        for wave in (0..chunks).step_by(threads) {
            let ranges = (wave..chunks.min(wave + threads)).map(move |i| Net::chunk(n, chunks, i));
            let job = |r: Range<usize>, w: &mut Worker| {
                let pass = Pass {
                    training,
                    seed,
                    first_sample: r.start,
                };
                self.run_chunk(params, batch, r, pass, scale, w);
            };
            if ranges.len() == 1 {
                // No scope: it would allocate, and one chunk needs no helper thread.
                job(Net::chunk(n, chunks, wave), &mut workers[0]);
            } else {
                std::thread::scope(|s| {
                    let mut jobs = workers.iter_mut().zip(ranges.clone());
                    let first = jobs.next();
                    for (w, r) in jobs {
                        s.spawn(move || job(r, w));
                    }
                    if let Some((w, r)) = first {
                        job(r, w);
                    }
                });
            }
            for (w, r) in workers.iter().zip(ranges) {
                merge(r, w);
            }
        }
    }
}
