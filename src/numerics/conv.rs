//! Stride-1 2-D convolution with zero padding, forward and backward, by im2col and a matrix
//! product per group of images.
//!
//! Weights are `[out_channels][in_channels][kernel][kernel]`, then one bias per output channel
//! (PyTorch's layout). Activations are NCHW. The grouping of images into products depends only
//! on the layer's shape and the number of samples, never on threads, so the summation order of
//! the weight gradient is fixed. It must never keep im2col buffers between forward and
//! backward: they are rebuilt, trading a cheap copy for a large saving in memory.

use super::Backprop;
use super::gemm::{Op, gemm};
use super::scratch::{Work, sized};

/// Aim for about this many columns (output pixels of all grouped images) per im2col product:
/// enough for matrixmultiply to run near its peak, small enough for the buffer to stay in L2.
const TARGET_COLUMNS: usize = 1024;

/// A convolution over `c x h x w` inputs giving `oc x oh x ow` outputs.
/// One row of the column matrix: `(ci, ky, kx, row, lo, hi)`, input channel `ci` at kernel
/// position (`ky`, `kx`), the row's index, and the output columns `lo..hi` whose input column
/// is inside the image.
struct KernelRow(usize, usize, usize, usize, usize, usize);

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Conv2d {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oc: usize,
    pub k: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Conv2d {
    pub fn new(c: usize, h: usize, w: usize, oc: usize, k: usize, pad: usize) -> Conv2d {
        let (oh, ow) = (h + 2 * pad + 1 - k, w + 2 * pad + 1 - k);
        Conv2d {
            c,
            h,
            w,
            oc,
            k,
            pad,
            oh,
            ow,
        }
    }

    /// Inputs feeding one output: in_channels x kernel x kernel.
    pub fn fan_in(&self) -> usize {
        self.c * self.k * self.k
    }

    pub fn weight_count(&self) -> usize {
        self.oc * self.fan_in()
    }

    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }

    fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    fn out_len(&self) -> usize {
        self.oc * self.pixels()
    }

    /// Images per product for a chunk of `n`.
    fn group(&self, n: usize) -> usize {
        TARGET_COLUMNS.div_ceil(self.pixels()).clamp(1, n.max(1))
    }

    /// Fills `cols` (`fan_in x g * pixels`, column = image * pixels + output pixel) from `g`
    /// NCHW images in `x`.
    fn im2col(&self, x: &[f32], g: usize, cols: &mut [f32]) {
        let (p, gp) = (self.pixels(), g * self.pixels());
        for KernelRow(ci, ky, kx, row, lo, hi) in self.kernel_rows() {
            for img in 0..g {
                let plane = &x[img * self.in_len() + ci * self.h * self.w..];
                let dst = &mut cols[row * gp + img * p..][..p];
                if self.ow == self.w {
                    self.shifted_plane(&plane[..self.h * self.w], ky, kx, dst);
                    continue;
                }
                for oy in 0..self.oh {
                    let d = &mut dst[oy * self.ow..][..self.ow];
                    match self.source_row(oy, ky) {
                        None => d.fill(0.0),
                        Some(iy) => {
                            let src = &plane[iy * self.w..][..self.w];
                            d[..lo].fill(0.0);
                            if lo < hi {
                                let s = &src[lo + kx - self.pad..hi + kx - self.pad];
                                d[lo..hi].copy_from_slice(s);
                            }
                            d[hi..].fill(0.0);
                        }
                    }
                }
            }
        }
    }

    /// One im2col row for one image of a size-preserving convolution (`ow == w`), where
    /// `dst[oy * w + ox] = plane[(oy + ky - pad) * w + ox + kx - pad]`: the valid rows are one
    /// contiguous copy, after which the columns that wrapped round a row's end are zeroed.
    /// (Row-by-row copies of 8 to 32 values cost a `memcpy` call each.)
    fn shifted_plane(&self, plane: &[f32], ky: usize, kx: usize, dst: &mut [f32]) {
        let (w, pad) = (self.w, self.pad);
        let oy0 = pad.saturating_sub(ky).min(self.oh);
        let oy1 = (self.h + pad).saturating_sub(ky).clamp(oy0, self.oh);
        let (top, rest) = dst.split_at_mut(oy0 * w);
        let (band, bottom) = rest.split_at_mut((oy1 - oy0) * w);
        top.fill(0.0);
        bottom.fill(0.0);
        if band.is_empty() {
            return;
        }
        // Plane index of band[0]; off the plane by at most `pad` at either end, where the
        // elements are wrapped columns anyway.
        let start = ((oy0 + ky - pad) * w + kx) as isize - pad as isize;
        let from = start.max(0) as usize;
        let to = (start + band.len() as isize).min(plane.len() as isize) as usize;
        let skip = (from as isize - start) as usize;
        let (head, tail) = band.split_at_mut(skip);
        head.fill(0.0);
        let (body, tail) = tail.split_at_mut(to - from);
        body.copy_from_slice(&plane[from..to]);
        tail.fill(0.0);
        let wrapped = if kx < pad {
            0..pad - kx
        } else {
            w + pad - kx..w
        };
        for col in wrapped {
            band[col..].iter_mut().step_by(w).for_each(|v| *v = 0.0);
        }
    }

    /// Adds `cols` (as laid out by `im2col`) back into the `g` images of `dx`.
    fn col2im(&self, cols: &[f32], g: usize, dx: &mut [f32]) {
        let (p, gp, in_len) = (self.pixels(), g * self.pixels(), self.in_len());
        for KernelRow(ci, ky, kx, row, lo, hi) in self.kernel_rows() {
            for img in 0..g {
                let src = &cols[row * gp + img * p..][..p];
                let plane = &mut dx[img * in_len + ci * self.h * self.w..];
                for oy in 0..self.oh {
                    if let (Some(iy), true) = (self.source_row(oy, ky), lo < hi) {
                        let s = &src[oy * self.ow + lo..][..hi - lo];
                        let d = &mut plane[iy * self.w + lo + kx - self.pad..][..hi - lo];
                        for (d, s) in d.iter_mut().zip(s) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }

    /// The input row read by output row `oy` at kernel row `ky`, if inside the image.
    fn source_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy + ky).checked_sub(self.pad).filter(|&iy| iy < self.h)
    }

    /// The rows of the column matrix, in order: each input channel and kernel position.
    fn kernel_rows(&self) -> impl Iterator<Item = KernelRow> + '_ {
        (0..self.c).flat_map(move |ci| {
            (0..self.k).flat_map(move |ky| {
                (0..self.k).map(move |kx| {
                    let (lo, hi) = self.valid_columns(kx);
                    let row = (ci * self.k + ky) * self.k + kx;
                    KernelRow(ci, ky, kx, row, lo, hi)
                })
            })
        })
    }

    /// Output columns `lo..hi` whose input column at kernel column `kx` is inside the image.
    fn valid_columns(&self, kx: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(kx).min(self.ow);
        let hi = (self.w + self.pad).saturating_sub(kx).min(self.ow).max(lo);
        (lo, hi)
    }

    /// `y = conv(x) + b` for `n` images.
    pub fn forward(&self, n: usize, x: &[f32], params: &[f32], y: &mut [f32], work: &mut Work) {
        let (weights, bias) = params.split_at(self.weight_count());
        let (p, in_len, out_len) = (self.pixels(), self.in_len(), self.out_len());
        let g = self.group(n);
        for start in (0..n).step_by(g) {
            let gg = g.min(n - start);
            let cols = sized(&mut work.cols, self.fan_in() * gg * p);
            self.im2col(&x[start * in_len..], gg, cols);
            let dims = (self.oc, gg * p, self.fan_in());
            let out = &mut y[start * out_len..][..gg * out_len];
            if gg == 1 {
                // One image: the product is already in NCHW order.
                gemm(dims, 1.0, weights, Op::N, cols, Op::N, 0.0, out);
                for (row, &b) in out.chunks_exact_mut(p).zip(bias) {
                    row.iter_mut().for_each(|v| *v += b);
                }
                continue;
            }
            let prod = sized(&mut work.tmp, self.oc * gg * p);
            gemm(dims, 1.0, weights, Op::N, cols, Op::N, 0.0, prod);
            for (o, (rows, &b)) in prod.chunks_exact(gg * p).zip(bias).enumerate() {
                for (img, src) in rows.chunks_exact(p).enumerate() {
                    let dst = &mut out[img * out_len + o * p..][..p];
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d = s + b;
                    }
                }
            }
        }
    }

    /// Adds the parameter gradient to `dparams`; writes the input gradient to `dx` if asked.
    pub fn backward(&self, b: Backprop<'_>, params: &[f32], dparams: &mut [f32], work: &mut Work) {
        let Backprop { n, x, dy, mut dx } = b;
        let weights = &params[..self.weight_count()];
        let (dw, db) = dparams.split_at_mut(self.weight_count());
        let (p, in_len, out_len) = (self.pixels(), self.in_len(), self.out_len());
        let g = self.group(n);
        for start in (0..n).step_by(g) {
            let gg = g.min(n - start);
            let dy_here = &dy[start * out_len..][..gg * out_len];
            let dyg: &[f32] = if gg == 1 {
                // One image: NCHW is already the product's layout.
                dy_here
            } else {
                let dyg = sized(&mut work.tmp, self.oc * gg * p);
                for (img, src) in dy_here.chunks_exact(out_len).enumerate() {
                    for (o, src) in src.chunks_exact(p).enumerate() {
                        dyg[o * gg * p + img * p..][..p].copy_from_slice(src);
                    }
                }
                dyg
            };
            for (db, row) in db.iter_mut().zip(dyg.chunks_exact(gg * p)) {
                *db += lane_sum(row);
            }
            let cols = sized(&mut work.cols, self.fan_in() * gg * p);
            self.im2col(&x[start * in_len..], gg, cols);
            let dims = (self.oc, self.fan_in(), gg * p);
            gemm(dims, 1.0, dyg, Op::N, cols, Op::T, 1.0, dw);
            if let Some(dx) = dx.as_deref_mut() {
                let dims = (self.fan_in(), gg * p, self.oc);
                gemm(dims, 1.0, weights, Op::T, dyg, Op::N, 0.0, cols);
                let dxg = &mut dx[start * in_len..][..gg * in_len];
                dxg.fill(0.0);
                self.col2im(cols, gg, dxg);
            }
        }
    }
}

/// Sum in 16 interleaved lanes, then the lanes in order: a fixed order (so bit-reproducible)
/// that the compiler can vectorise, unlike a plain left-to-right sum.
fn lane_sum(xs: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut blocks = xs.chunks_exact(16);
    for block in &mut blocks {
        for (l, v) in lanes.iter_mut().zip(block) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + blocks.remainder().iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition of the convolution, for one image.
    fn direct(l: &Conv2d, x: &[f32], params: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0; l.out_len()];
        for o in 0..l.oc {
            for oy in 0..l.oh {
                for ox in 0..l.ow {
                    let mut s = params[l.weight_count() + o];
                    for ci in 0..l.c {
                        for ky in 0..l.k {
                            for kx in 0..l.k {
                                let (iy, ix) = (oy + ky, ox + kx);
                                if iy < l.pad
                                    || ix < l.pad
                                    || iy >= l.h + l.pad
                                    || ix >= l.w + l.pad
                                {
                                    continue;
                                }
                                let xv = x[(ci * l.h + iy - l.pad) * l.w + ix - l.pad];
                                s += params[((o * l.c + ci) * l.k + ky) * l.k + kx] * xv;
                            }
                        }
                    }
                    y[(o * l.oh + oy) * l.ow + ox] = s;
                }
            }
        }
        y
    }

    #[test]
    fn forward_matches_the_direct_definition() {
        for (c, h, w, oc, k, pad) in [(2, 5, 4, 3, 3, 1), (1, 4, 6, 2, 2, 0), (3, 3, 3, 2, 5, 2)] {
            let l = Conv2d::new(c, h, w, oc, k, pad);
            let n = 3;
            let x: Vec<f32> = (0..n * l.in_len())
                .map(|i| (i as f32 * 0.13).sin())
                .collect();
            let params: Vec<f32> = (0..l.weight_count() + oc)
                .map(|i| (i as f32 * 0.29).cos())
                .collect();
            let mut y = vec![0.0; n * l.out_len()];
            l.forward(n, &x, &params, &mut y, &mut Work::default());
            for i in 0..n {
                let want = direct(&l, &x[i * l.in_len()..][..l.in_len()], &params);
                for (a, b) in y[i * l.out_len()..][..l.out_len()].iter().zip(&want) {
                    assert!((a - b).abs() < 1e-4, "{l:?}: {a} vs {b}");
                }
            }
        }
    }
}
