//! Each layer kind's gradients, with respect to its input and its parameters, against central
//! finite differences of `sum(y * r)` for a random `r`.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::numerics::loss::softmax_cross_entropy;

/// Piecewise-linear layers are exact under a step that crosses no kink, so the step is large
/// and the tolerance covers f32 rounding only.
const EPS: f32 = 1e-2;

fn close(analytic: f64, numeric: f64) -> bool {
    (analytic - numeric).abs() <= 2e-3 + 1e-2 * numeric.abs()
}

fn random(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

struct Case {
    layer: Layer,
    n: usize,
    x: Vec<f32>,
    params: Vec<f32>,
}

const PASS: Pass = Pass {
    training: true,
    seed: 7,
    first_sample: 3,
};

impl Case {
    fn new(
        kind: Kind,
        in_len: usize,
        out_len: usize,
        params: usize,
        n: usize,
        x: Vec<f32>,
    ) -> Case {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        Case {
            layer: Layer {
                kind,
                in_len,
                out_len,
                params: 0..params,
            },
            n,
            x,
            params: random(&mut rng, params),
        }
    }

    fn forward(&self, x: &[f32], params: &[f32], bufs: &mut LayerBufs) {
        let input = Input::Values(x);
        self.layer
            .forward(self.n, input, params, bufs, &mut Work::default(), PASS);
    }

    fn objective(&self, x: &[f32], params: &[f32], r: &[f32]) -> f64 {
        let mut bufs = LayerBufs::default();
        self.forward(x, params, &mut bufs);
        bufs.out
            .iter()
            .zip(r)
            .map(|(&y, &r)| f64::from(y) * f64::from(r))
            .sum()
    }

    fn check(&self) {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let r = random(&mut rng, self.n * self.layer.out_len);
        let mut bufs = LayerBufs::default();
        self.forward(&self.x, &self.params, &mut bufs);
        let mut dx = vec![f32::NAN; self.x.len()];
        let mut dp = vec![0.0; self.params.len()];
        let l = &self.layer;
        let b = Backprop {
            n: self.n,
            x: &self.x,
            dy: &r,
            dx: Some(&mut dx),
        };
        l.backward(b, &self.params, &mut dp, &bufs, &mut Work::default());
        let fd = |v: &mut Vec<f32>, j: usize, f: &dyn Fn(&[f32]) -> f64| {
            let keep = v[j];
            v[j] = keep + EPS;
            let up = f(v);
            v[j] = keep - EPS;
            let down = f(v);
            v[j] = keep;
            (up - down) / (2.0 * f64::from(EPS))
        };
        let mut x = self.x.clone();
        for (j, &analytic) in dx.iter().enumerate() {
            let num = fd(&mut x, j, &|x| self.objective(x, &self.params, &r));
            let kind = &l.kind;
            assert!(
                close(f64::from(analytic), num),
                "{kind:?} dx[{j}]: {analytic} vs {num}"
            );
        }
        let mut p = self.params.clone();
        for (j, &analytic) in dp.iter().enumerate() {
            let num = fd(&mut p, j, &|p| self.objective(&self.x, p, &r));
            let kind = &l.kind;
            assert!(
                close(f64::from(analytic), num),
                "{kind:?} dparams[{j}]: {analytic} vs {num}"
            );
        }
    }
}

#[test]
fn conv_gradients() {
    // (c, h, w, out channels, kernel, padding, n): padded, unpadded, kernel wider than the
    // image, and one whose images are split into several im2col groups.
    for (c, h, w, oc, k, pad, n) in [
        (2, 5, 4, 3, 3, 1, 2),
        (3, 4, 4, 2, 2, 0, 2),
        (1, 2, 3, 2, 5, 2, 1),
        (1, 24, 24, 2, 3, 1, 3),
    ] {
        let conv = Conv2d::new(c, h, w, oc, k, pad);
        let (in_len, out_len) = (c * h * w, oc * conv.oh * conv.ow);
        let params = conv.weight_count() + oc;
        let x = random(&mut ChaCha8Rng::seed_from_u64(3), n * in_len);
        Case::new(Kind::Conv(conv), in_len, out_len, params, n, x).check();
    }
}

#[test]
fn dense_gradients() {
    let x = random(&mut ChaCha8Rng::seed_from_u64(4), 3 * 5);
    Case::new(
        Kind::Dense(Dense {
            inputs: 5,
            outputs: 4,
        }),
        5,
        4,
        24,
        3,
        x,
    )
    .check();
}

#[test]
fn relu_gradients() {
    // Away from the kink at 0, so that no finite-difference step crosses it.
    let mut x = random(&mut ChaCha8Rng::seed_from_u64(5), 2 * 10);
    x.iter_mut().for_each(|v| *v += 0.1f32.copysign(*v));
    Case::new(Kind::Relu, 10, 10, 0, 2, x).check();
}

#[test]
fn max_pool_gradients() {
    // Distinct values 0.05 apart, so that no step changes a window's maximum; odd sizes.
    let (c, h, w, n) = (2, 5, 3, 2);
    let mut x: Vec<f32> = (0..n * c * h * w).map(|i| i as f32 * 0.05).collect();
    x.shuffle(&mut ChaCha8Rng::seed_from_u64(6));
    let out_len = c * (h / 2) * (w / 2);
    Case::new(
        Kind::MaxPool(MaxPool2 { c, h, w }),
        c * h * w,
        out_len,
        0,
        n,
        x,
    )
    .check();
}

#[test]
fn dropout_gradients() {
    let x = random(&mut ChaCha8Rng::seed_from_u64(7), 3 * 8);
    Case::new(Kind::Dropout(Dropout::new(0.3, 2)), 8, 8, 0, 3, x).check();
}

#[test]
fn embedding_bag_gradient() {
    let e = EmbeddingBag {
        vocabulary: 5,
        dim: 3,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut table = random(&mut rng, 15);
    // Bags: a repeated token, an empty bag, a single token.
    let (offsets, ids) = ([0u32, 3, 3, 4], [1u32, 4, 1, 0]);
    let r = random(&mut rng, 9);
    let objective = |t: &[f32]| {
        let mut y = vec![0.0; 9];
        e.forward(&offsets, &ids, t, &mut y);
        y.iter()
            .zip(&r)
            .map(|(&y, &r)| f64::from(y) * f64::from(r))
            .sum::<f64>()
    };
    let mut dt = vec![0.0; 15];
    e.backward(&offsets, &ids, &r, &mut dt);
    for j in 0..15 {
        let keep = table[j];
        table[j] = keep + EPS;
        let up = objective(&table);
        table[j] = keep - EPS;
        let down = objective(&table);
        table[j] = keep;
        let num = (up - down) / (2.0 * f64::from(EPS));
        assert!(
            close(f64::from(dt[j]), num),
            "dtable[{j}]: {} vs {num}",
            dt[j]
        );
    }
    // Rows 2 and 3 are in no bag: untouched.
    assert!(dt[6..12].iter().all(|&v| v == 0.0));
}

#[test]
fn softmax_cross_entropy_gradient() {
    let (classes, n) = (4, 3);
    let mut z = random(&mut ChaCha8Rng::seed_from_u64(9), n * classes);
    z.iter_mut().for_each(|v| *v *= 3.0);
    let labels = [2u32, 0, 3];
    let scale = 1.0 / n as f32;
    let mut d = vec![0.0; n * classes];
    softmax_cross_entropy(classes, &z, &labels, scale, Some(&mut d));
    // Smooth: a smaller step, and the mean loss.
    let eps = 1e-3f32;
    for j in 0..z.len() {
        let keep = z[j];
        z[j] = keep + eps;
        let up = softmax_cross_entropy(classes, &z, &labels, scale, None).0 / n as f64;
        z[j] = keep - eps;
        let down = softmax_cross_entropy(classes, &z, &labels, scale, None).0 / n as f64;
        z[j] = keep;
        let num = (up - down) / (2.0 * f64::from(eps));
        assert!(
            close(f64::from(d[j]), num),
            "dlogits[{j}]: {} vs {num}",
            d[j]
        );
    }
}
