//! 2x2 max-pooling with stride 2, odd sizes rounded down; forward remembers each window's
//! maximum so that backward routes the gradient to it alone.
//!
//! Ties go to the first element of the window in row-major order. The last row or column of
//! an odd-sized input is never read and gets a zero gradient. Backward must never be called
//! without the `argmax` its forward pass wrote.

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MaxPool2 {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl MaxPool2 {
    /// `y` = window maxima of `n` samples; `argmax` = where in its window each maximum lies
    /// (0 top left, 1 top right, 2 bottom left, 3 bottom right).
    pub fn forward(&self, n: usize, x: &[f32], y: &mut [f32], argmax: &mut [u8]) {
        let outs = y
            .chunks_exact_mut(self.w / 2)
            .zip(argmax.chunks_exact_mut(self.w / 2));
        for ((r0, r1), (ys, am)) in self.row_pairs(n, x).zip(outs) {
            let windows = r0.chunks_exact(2).zip(r1.chunks_exact(2));
            for ((y, a), (t, b)) in ys.iter_mut().zip(am.iter_mut()).zip(windows) {
                // Ties go to the first in row-major order: only strictly greater replaces.
                let (mut best, mut v) = (0, t[0]);
                for (at, cand) in [(1, t[1]), (2, b[0]), (3, b[1])] {
                    if cand > v {
                        (best, v) = (at, cand);
                    }
                }
                *y = v;
                *a = best;
            }
        }
    }

    /// The pairs of input rows that make the windows, in output order (odd last rows left out).
    fn row_pairs<'a>(
        &self,
        n: usize,
        x: &'a [f32],
    ) -> impl Iterator<Item = (&'a [f32], &'a [f32])> {
        let (h, w) = (self.h, self.w);
        x.chunks_exact(h * w)
            .take(n * self.c)
            .flat_map(move |plane| plane.chunks_exact(2 * w).map(move |pair| pair.split_at(w)))
    }

    /// `dx` = `dy` routed to each window's maximum, zero elsewhere (and in odd last rows and
    /// columns, which no window reads).
    pub fn backward(&self, n: usize, dy: &[f32], argmax: &[u8], dx: &mut [f32]) {
        let (h, w, ow) = (self.h, self.w, self.w / 2);
        let mut grads = dy.chunks_exact(ow).zip(argmax.chunks_exact(ow));
        for plane in dx.chunks_exact_mut(h * w).take(n * self.c) {
            let (pairs, odd_row) = plane.split_at_mut(h / 2 * 2 * w);
            odd_row.fill(0.0);
            for (pair, (gs, am)) in pairs.chunks_exact_mut(2 * w).zip(&mut grads) {
                let (r0, r1) = pair.split_at_mut(w);
                r0[2 * ow..].fill(0.0);
                r1[2 * ow..].fill(0.0);
                let windows = r0.chunks_exact_mut(2).zip(r1.chunks_exact_mut(2));
                for ((t, b), (&g, &at)) in windows.zip(gs.iter().zip(am)) {
                    let pick = |i: u8| if at == i { g } else { 0.0 };
                    (t[0], t[1], b[0], b[1]) = (pick(0), pick(1), pick(2), pick(3));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_sizes_round_down_and_ties_take_the_first() {
        let l = MaxPool2 { c: 1, h: 3, w: 3 };
        let x = [1.0, 1.0, 9.0, 0.0, -1.0, 9.0, 9.0, 9.0, 9.0];
        let (mut y, mut am) = ([0.0], [9]);
        l.forward(1, &x, &mut y, &mut am);
        assert_eq!((y, am), ([1.0], [0]));
        let mut dx = [5.0; 9];
        l.backward(1, &[2.0], &am, &mut dx);
        assert_eq!(dx, [2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
