//! The synthetic image set: 3 x 32 x 32 byte images in 10 classes, CIFAR-10's shape, that a
//! CNN can learn well above chance but a linear model cannot learn nearly as well. Must never
//! depend on anything but its sizes and seed.
//!
//! Each class has a smooth colour template: a random sum of low-frequency cosines (at most
//! [`MAX_FREQUENCY`] cycles across the image, amplitude falling with frequency), half of its
//! variance shared by all classes and half its own. A sample is
//!
//! ```text
//! pixel = 128 + brightness + tint[c] + contrast * AMPLITUDE * shift(template[class]
//!         + sum_j a_j * variation[j])[c, y, x] + noise
//! ```
//!
//! where the `variation` fields are [`BANK`] more smooth fields common to all classes with
//! random weights `a_j` (each sample varies within its class, as real objects do), `shift`
//! is a cyclic translation by up to [`MAX_SHIFT`] pixels along each axis, and the noise is
//! independent per pixel. The translation turns a template's phase by up to pi/2 at the
//! lowest frequency and past a half turn at the highest, which blurs the class means a
//! linear model relies on; shift-invariant features (what convolutions with pooling learn)
//! still see the pattern, and the within-class variation and noise keep even those from a
//! perfect score. Measured with 5,000 train / 2,000 test samples, seeds 1-4
//! (`tests/data/learnability.rs`; chance is 10 %): nearest class mean on pixels 24-26 %,
//! softmax regression on pixels 34-36 %, softmax regression on shift-invariant Fourier
//! features 71-74 %; with 20,000 train samples (seed 1) 25 %, 35 % and 78 %.

use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

use super::{SyntheticError, par_fill, sample_stream, stream};
use crate::data::dataset::{Dataset, ImageShape, InputKind, Samples, Split};

pub const IMAGE_SHAPE: ImageShape = ImageShape {
    channels: 3,
    height: SIDE,
    width: SIDE,
};
pub const IMAGE_CLASSES: usize = 10;

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
const LEN: usize = 3 * PLANE;
/// Highest spatial frequency of a template, in cycles per image side.
pub const MAX_FREQUENCY: i32 = 3;
/// Largest translation of a sample, in pixels along each axis.
pub const MAX_SHIFT: i32 = 8;
/// Fraction of a template's variance common to all classes.
const SHARED: f32 = 0.5;
/// Standard deviation of a unit field before contrast, in pixel levels (0-255).
const AMPLITUDE: f32 = 32.0;
/// Number of within-class variation fields.
pub(super) const BANK: usize = 16;
/// Variance of a sample's within-class variation, relative to its template's (1).
const VARIATION: f32 = 2.0;
/// Range of the contrast factor.
const CONTRAST: (f32, f32) = (0.6, 1.4);
/// Largest brightness offset, and largest extra offset per channel, in pixel levels.
const BRIGHTNESS: f32 = 30.0;
const TINT: f32 = 10.0;
/// Standard deviation of the pixel noise, in pixel levels.
const NOISE: f32 = 40.0;

/// Generates `train` and `test` images from `seed`. The same arguments give the same bytes;
/// labels are uniform over the 10 classes.
pub fn images(train: usize, test: usize, seed: u64) -> Result<Dataset, SyntheticError> {
    let templates = templates(seed);
    let bank: Vec<Vec<f32>> = (0..BANK)
        .map(|j| colour_field(&mut stream(seed, 12, j as u64)))
        .collect();
    let class_names = (0..IMAGE_CLASSES).map(|k| format!("class{k}")).collect();
    let set = ImageSet {
        name: "synthetic-image",
        class_names,
        seed,
    };
    set.generate(train, test, |label, rng, out| {
        draw(&templates[label], &bank, rng, out)
    })
}

/// A generated set of 3 x 32 x 32 byte images in [`IMAGE_CLASSES`] uniform classes, each
/// sample drawn from its own stream of `seed`.
pub(super) struct ImageSet {
    pub name: &'static str,
    pub class_names: Vec<String>,
    pub seed: u64,
}

impl ImageSet {
    /// Both splits, each sample's label the first draw of its stream and `draw` the rest:
    /// `draw(label, stream, bytes)`.
    pub fn generate(
        self,
        train: usize,
        test: usize,
        draw: impl Fn(usize, &mut ChaCha8Rng, &mut [u8]) + Sync,
    ) -> Result<Dataset, SyntheticError> {
        let seed = self.seed;
        let split = |split: Split, n: usize| -> Result<Samples, SyntheticError> {
            let bytes = n.checked_mul(LEN).ok_or(SyntheticError::TooLarge {
                what: self.name,
                samples: n,
            })?;
            let mut pixels = vec![0u8; bytes];
            let mut labels = vec![0u32; n];
            par_fill(&mut labels, 1, |i, label| {
                label[0] = sample_stream(seed, split, i).random_range(0..IMAGE_CLASSES as u32);
            });
            par_fill(&mut pixels, LEN, |i, out| {
                // The same stream as the label above, so its first draw is this sample's label.
                let mut rng = sample_stream(seed, split, i);
                let label = rng.random_range(0..IMAGE_CLASSES as u32) as usize;
                draw(label, &mut rng, out);
            });
            Ok(Samples::pixels(pixels, labels))
        };
        let (train, test) = (split(Split::Train, train)?, split(Split::Test, test)?);
        Ok(Dataset::new(
            self.name,
            InputKind::Dense(IMAGE_SHAPE),
            self.class_names,
            train,
            test,
        )?)
    }
}

/// The class templates, channel-major, each with unit standard deviation.
fn templates(seed: u64) -> Vec<Vec<f32>> {
    let common = colour_field(&mut stream(seed, 10, 0));
    (0..IMAGE_CLASSES)
        .map(|k| {
            let own = colour_field(&mut stream(seed, 11, k as u64));
            let t: Vec<f32> = common
                .iter()
                .zip(&own)
                .map(|(s, o)| SHARED.sqrt() * s + (1.0 - SHARED).sqrt() * o)
                .collect();
            standardise(t)
        })
        .collect()
}

/// Three correlated smooth channels: a common luminance field plus a weaker field per
/// channel, as colour images have.
pub(super) fn colour_field(rng: &mut ChaCha8Rng) -> Vec<f32> {
    let luminance = smooth_field(rng);
    let mut out = Vec::with_capacity(LEN);
    for _ in 0..3 {
        let chroma = smooth_field(rng);
        out.extend(luminance.iter().zip(&chroma).map(|(l, c)| l + 0.6 * c));
    }
    standardise(out)
}

/// A zero-mean Gaussian random field on the 32 x 32 torus made of the waves with integer
/// frequencies up to `MAX_FREQUENCY`, so that cyclic shifts leave it seamless.
fn smooth_field(rng: &mut ChaCha8Rng) -> Vec<f32> {
    let (cos, sin) = unit_circle();
    let mut field = vec![0f32; PLANE];
    for v in 0..=MAX_FREQUENCY {
        for u in -MAX_FREQUENCY..=MAX_FREQUENCY {
            // One of each pair (u, v), (-u, -v); no constant term.
            if v == 0 && u <= 0 {
                continue;
            }
            let scale = 1.0 / (1.0 + (u * u + v * v) as f32).sqrt();
            let (re, im) = (scale * normal(rng), scale * normal(rng));
            for y in 0..SIDE {
                for x in 0..SIDE {
                    let k = (u * x as i32 + v * y as i32).rem_euclid(SIDE as i32) as usize;
                    field[y * SIDE + x] += re * cos[k] - im * sin[k];
                }
            }
        }
    }
    field
}

/// `cos` and `sin` of `2 pi k / 32`, from half-angle formulas and rotations: only
/// correctly rounded operations (no libm), so the templates are the same bytes on every
/// platform.
fn unit_circle() -> ([f32; SIDE], [f32; SIDE]) {
    // cos(pi / 2) = 0, then halve the angle three times to pi / 16 = 2 pi / 32.
    let mut c = 0f64;
    for _ in 0..3 {
        c = ((1.0 + c) / 2.0).sqrt();
    }
    let step = (c, (1.0 - c * c).sqrt());
    let (mut cos, mut sin) = ([0f32; SIDE], [0f32; SIDE]);
    let mut z = (1f64, 0f64);
    for k in 0..SIDE {
        (cos[k], sin[k]) = (z.0 as f32, z.1 as f32);
        z = (z.0 * step.0 - z.1 * step.1, z.0 * step.1 + z.1 * step.0);
    }
    (cos, sin)
}

/// A standard normal deviate, approximately: the sum of 12 uniforms minus 6 (Irwin-Hall),
/// chosen over exact samplers because it needs no libm and so repeats on every platform.
pub(super) fn normal(rng: &mut ChaCha8Rng) -> f32 {
    (0..12).map(|_| rng.random::<f32>()).sum::<f32>() - 6.0
}

fn standardise(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.len().max(1) as f32;
    let mean = v.iter().sum::<f32>() / n;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt();
    let scale = if std > 0.0 { 1.0 / std } else { 1.0 };
    v.iter_mut().for_each(|x| *x = (*x - mean) * scale);
    v
}

/// One sample of the class whose template is `template`, written as bytes into `out`.
fn draw(template: &[f32], bank: &[Vec<f32>], rng: &mut ChaCha8Rng, out: &mut [u8]) {
    let mut field = [0f32; LEN];
    field.copy_from_slice(template);
    let spread = (VARIATION / BANK as f32).sqrt();
    for variation in bank {
        let a = spread * normal(rng);
        field
            .iter_mut()
            .zip(variation)
            .for_each(|(f, v)| *f += a * v);
    }
    let mut shift = || {
        rng.random_range(-MAX_SHIFT..=MAX_SHIFT)
            .rem_euclid(SIDE as i32) as usize
    };
    let (dy, dx) = (shift(), shift());
    let gain = rng.random_range(CONTRAST.0..CONTRAST.1) * AMPLITUDE;
    let brightness = rng.random_range(-BRIGHTNESS..BRIGHTNESS);
    // Noise: the sum of four uniform bytes is bell-shaped with mean 510 and standard
    // deviation sqrt(4 * (256^2 - 1) / 12) = 147.8; one random word per pixel keeps
    // generation fast.
    let noise_scale = NOISE / 147.8;
    let mut noise = [0u8; 4 * PLANE];
    for (out, f) in out.chunks_exact_mut(PLANE).zip(field.chunks_exact(PLANE)) {
        let base = 128.0 + brightness + rng.random_range(-TINT..TINT);
        rng.fill_bytes(&mut noise);
        for (y, (out_row, noise_row)) in out
            .chunks_exact_mut(SIDE)
            .zip(noise.chunks_exact(4 * SIDE))
            .enumerate()
        {
            let row = &f[(y + dy) % SIDE * SIDE..][..SIDE];
            for (x, (o, n)) in out_row
                .iter_mut()
                .zip(noise_row.chunks_exact(4))
                .enumerate()
            {
                let sum = n.iter().map(|&b| u32::from(b)).sum::<u32>() as f32;
                let v = base + gain * row[(x + dx) % SIDE] + (sum - 510.0) * noise_scale;
                *o = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_circle_matches_libm() {
        let (cos, sin) = unit_circle();
        for k in 0..SIDE {
            let a = std::f64::consts::TAU * k as f64 / SIDE as f64;
            assert!(
                (cos[k] as f64 - a.cos()).abs() < 1e-6 && (sin[k] as f64 - a.sin()).abs() < 1e-6
            );
        }
    }

    #[test]
    fn templates_are_smooth_and_standardised() {
        let t = templates(3);
        assert_eq!(t.len(), IMAGE_CLASSES);
        for t in &t {
            let mean = t.iter().sum::<f32>() / LEN as f32;
            let var = t.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / LEN as f32;
            assert!(mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3);
            // Low frequencies only: horizontal neighbours differ far less than in white noise
            // of the same variance (mean |step| 2 / sqrt(pi) = 1.13).
            let steps: Vec<f32> = (0..LEN - 1)
                .filter(|i| (i + 1) % SIDE != 0)
                .map(|i| (t[i + 1] - t[i]).abs())
                .collect();
            let mean_step = steps.iter().sum::<f32>() / steps.len() as f32;
            assert!(mean_step < 0.5, "mean neighbour step {mean_step}");
        }
        assert_ne!(t[0], t[1]);
    }
}
