//! Element-wise layers: ReLU, and inverted dropout whose mask is a pure function of
//! (seed, layer, sample index in the batch, element).
//!
//! Dropout draws element `j` of batch sample `i` in layer `l` from word `i * len + j` of
//! ChaCha8 stream `l` keyed by the call's seed, so the mask does not depend on how the batch
//! is cut into chunks or spread over threads. It must never draw from any other RNG.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `y = max(x, 0)`.
pub(crate) fn relu_forward(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = if x > 0.0 { x } else { 0.0 };
    }
}

/// `dx = dy` where the output was positive, else 0.
pub(crate) fn relu_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((dx, &dy), &y) in dx.iter_mut().zip(dy).zip(y) {
        *dx = if y > 0.0 { dy } else { 0.0 };
    }
}

/// Inverted dropout: in training each element is zeroed with probability `p` and the others
/// scaled by 1 / (1 - p); at inference it is the identity.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Dropout {
    /// An element is kept when its 32-bit draw is at least this.
    threshold: u64,
    scale: f32,
    /// RNG stream: the layer's index in the model.
    stream: u64,
}

impl Dropout {
    /// `p` must be in [0, 1) (checked when the net is built).
    pub fn new(p: f64, layer: usize) -> Dropout {
        Dropout {
            threshold: (p * 4_294_967_296.0).round() as u64,
            scale: (1.0 / (1.0 - p)) as f32,
            stream: layer as u64,
        }
    }

    /// Training forward pass over samples `first_sample..` of the batch, each of `len`
    /// elements; fills `mask` with each element's factor.
    pub fn forward(
        &self,
        (seed, first_sample, len): (u64, usize, usize),
        x: &[f32],
        y: &mut [f32],
        mask: &mut [f32],
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(first_sample as u128 * len as u128);
        let mut words = [0u32; 64];
        let blocks = y.chunks_mut(64).zip(mask.chunks_mut(64)).zip(x.chunks(64));
        for ((y, mask), x) in blocks {
            // Whole words, in order: element j of the call takes word `start + j`.
            let words = &mut words[..y.len()];
            rng.fill(words);
            for (((y, m), &x), &r) in y.iter_mut().zip(mask.iter_mut()).zip(x).zip(words.iter()) {
                *m = if u64::from(r) >= self.threshold {
                    self.scale
                } else {
                    0.0
                };
                *y = x * *m;
            }
        }
    }

    pub fn backward(&self, mask: &[f32], dy: &[f32], dx: &mut [f32]) {
        for ((dx, &dy), &m) in dx.iter_mut().zip(dy).zip(mask) {
            *dx = dy * m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_does_not_depend_on_chunking() {
        let d = Dropout::new(0.5, 3);
        let len = 7;
        let x = vec![1.0f32; 6 * len];
        let (mut whole, mut mask) = (vec![0.0; 6 * len], vec![0.0; 6 * len]);
        d.forward((42, 0, len), &x, &mut whole, &mut mask);
        let (mut parts, mut mask2) = (vec![0.0; 6 * len], vec![0.0; 6 * len]);
        let (a, b) = parts.split_at_mut(2 * len);
        let (ma, mb) = mask2.split_at_mut(2 * len);
        d.forward((42, 0, len), &x[..2 * len], a, ma);
        d.forward((42, 2, len), &x[2 * len..], b, mb);
        assert_eq!(whole, parts);
        let kept = whole.iter().filter(|&&v| v == 2.0).count();
        assert!((10..=32).contains(&kept), "{kept} of 42 kept");
        assert!(whole.iter().all(|&v| v == 0.0 || v == 2.0));
    }

    #[test]
    fn p_zero_keeps_everything() {
        let d = Dropout::new(0.0, 0);
        let x = [1.0, -2.0, 3.0];
        let (mut y, mut m) = ([0.0; 3], [0.0; 3]);
        d.forward((1, 5, 3), &x, &mut y, &mut m);
        assert_eq!(y, x);
    }
}
