//! Fully connected layer, forward and backward, as matrix products over a chunk of samples.
//!
//! Weights are `[outputs][inputs]` (inputs in the flattened sample's order, c then h then w),
//! then one bias per output. It must never depend on anything but its arguments.

use super::Backprop;
use super::gemm::{Op, gemm};

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Dense {
    pub inputs: usize,
    pub outputs: usize,
}

impl Dense {
    pub fn weight_count(&self) -> usize {
        self.inputs * self.outputs
    }

    /// `y = x W^T + b` for `n` samples.
    pub fn forward(&self, n: usize, x: &[f32], params: &[f32], y: &mut [f32]) {
        let (weights, bias) = params.split_at(self.weight_count());
        let dims = (n, self.outputs, self.inputs);
        gemm(dims, 1.0, x, Op::N, weights, Op::T, 0.0, y);
        for row in y[..n * self.outputs].chunks_exact_mut(self.outputs) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
    }

    /// Adds the parameter gradient to `dparams`; writes the input gradient to `dx` if asked.
    pub fn backward(&self, b: Backprop<'_>, params: &[f32], dparams: &mut [f32]) {
        let Backprop { n, x, dy, dx } = b;
        let (dw, db) = dparams.split_at_mut(self.weight_count());
        gemm(
            (self.outputs, self.inputs, n),
            1.0,
            dy,
            Op::T,
            x,
            Op::N,
            1.0,
            dw,
        );
        for row in dy[..n * self.outputs].chunks_exact(self.outputs) {
            for (d, g) in db.iter_mut().zip(row) {
                *d += g;
            }
        }
        if let Some(dx) = dx {
            let weights = &params[..self.weight_count()];
            gemm(
                (n, self.inputs, self.outputs),
                1.0,
                dy,
                Op::N,
                weights,
                Op::N,
                0.0,
                dx,
            );
        }
    }
}
