//! The synthetic object set: 3 x 32 x 32 byte images in 10 classes, CIFAR-10's shape, made so
//! that the seed paper's ConvNet learns it the way it learns CIFAR-10 early on: above chance
//! within an epoch, still rising after five, far from perfect. Must never depend on anything
//! but its sizes and seed.
//!
//! Each image holds one object on a cluttered background. The object is a patch of texture:
//! a grating (parallel stripes) of the class's orientation and stripe width, seen through a
//! round window of random size at a random place, in a random colour, with a random phase:
//!
//! ```text
//! pixel = 128 + brightness + tint[c] + clutter[c, y, x]
//!         + contrast * colour[c] * window(x, y) * cos(2 pi (u x + v y) + phase) + noise
//! ```
//!
//! The classes are the 5 orientations 0, 36, 72, 108 and 144 degrees times 2 stripe periods
//! ([`PERIODS`]); each sample turns its class's orientation by a normal angle (sd
//! [`TURN_SD`]) and stretches its period by up to [`STRETCH`]. The clutter is the image
//! set's smooth background fields plus a second, fainter grating of any orientation and
//! period anywhere in the image, so that a stripe alone does not give the class away. Since
//! the phase and place are uniform, every class has the same mean image: a linear model on
//! pixels gets little (only the stripes that fall in phase with its weights; 16.8 % where
//! chance is 10 %, `tests/data/learnability.rs`), and what separates the classes is local
//! oriented energy, which convolutions with a non-linearity learn. Its hardness is set by the object's contrast
//! against the clutter and the noise, chosen (and only chosen) on one-learner runs of the
//! paper's ConvNet at its companion paper's rate 0.01, batch 128 (README).

use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

use super::image::{BANK, IMAGE_CLASSES, ImageSet, colour_field, normal};
use super::{SyntheticError, stream};
use crate::data::dataset::Dataset;

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
/// The two stripe periods of the classes, in pixels (classes 0-4 and 5-9).
pub const PERIODS: [f64; 2] = [8.0, 4.0];
/// Standard deviation of a sample's turn away from its class's orientation, in degrees.
pub const TURN_SD: f64 = 20.0;
/// Largest relative stretch of a sample's stripe period, either way.
pub const STRETCH: f64 = 0.15;
/// Range of the object window's radius, in pixels.
const RADIUS: (f64, f64) = (6.0, 11.0);
/// The object's amplitude before colour, in pixel levels (0-255), and its random range.
const OBJECT: f64 = 80.0;
const CONTRAST: (f64, f64) = (0.5, 1.5);
/// The background's amplitude, in pixel levels.
const CLUTTER: f64 = 10.0;
/// The distractor grating's amplitude relative to the object's.
const DISTRACTOR: f64 = 0.2;
/// Largest brightness offset, and largest extra offset per channel, in pixel levels.
const BRIGHTNESS: f64 = 30.0;
const TINT: f64 = 10.0;
/// Standard deviation of the pixel noise, in pixel levels.
const NOISE: f32 = 10.0;

/// Generates `train` and `test` object images from `seed`. The same arguments give the same
/// bytes; labels are uniform over the 10 classes.
pub fn objects(train: usize, test: usize, seed: u64) -> Result<Dataset, SyntheticError> {
    let bank: Vec<Vec<f32>> = (0..BANK)
        .map(|j| colour_field(&mut stream(seed, 22, j as u64)))
        .collect();
    let class_names = (0..IMAGE_CLASSES)
        .map(|k| {
            let (degrees, period) = class(k);
            format!("stripes-{degrees}deg-{period}px")
        })
        .collect();
    let set = ImageSet {
        name: "synthetic-objects",
        class_names,
        seed: seed ^ OBJECTS,
    };
    set.generate(train, test, |label, rng, out| draw(label, &bank, rng, out))
}

/// Sets the object images' sample streams apart from the image set's of the same seed.
const OBJECTS: u64 = 0x6f62_6a65_6374_7300;

/// Class `k`'s orientation in degrees and stripe period in pixels.
fn class(k: usize) -> (u32, u32) {
    (36 * (k % 5) as u32, PERIODS[k / 5] as u32)
}

/// A grating: the wave vector (cycles per pixel along x and y), its phase in turns, and the
/// round window it is seen through.
struct Grating {
    u: f64,
    v: f64,
    phase: f64,
    centre: (f64, f64),
    radius: f64,
}

impl Grating {
    fn draw(rng: &mut ChaCha8Rng, degrees: f64, period: f64) -> Self {
        let (cos, sin) = cos_sin(degrees / 360.0);
        let f = 1.0 / (period * (1.0 + rng.random_range(-STRETCH..=STRETCH)));
        let margin = 4.0;
        let mut place = || rng.random_range(margin..SIDE as f64 - margin);
        let centre = (place(), place());
        Grating {
            u: f * cos,
            v: f * sin,
            phase: rng.random::<f64>(),
            centre,
            radius: rng.random_range(RADIUS.0..RADIUS.1),
        }
    }

    /// The windowed wave at pixel (x, y), in [-1, 1].
    fn at(&self, x: usize, y: usize) -> f64 {
        let (dx, dy) = (x as f64 - self.centre.0, y as f64 - self.centre.1);
        let r2 = (dx * dx + dy * dy) / (self.radius * self.radius);
        if r2 >= 1.0 {
            return 0.0;
        }
        let window = (1.0 - r2) * (1.0 - r2);
        window * cos_sin(self.u * x as f64 + self.v * y as f64 + self.phase).0
    }
}

/// One sample of class `label`, written as bytes into `out`.
fn draw(label: usize, bank: &[Vec<f32>], rng: &mut ChaCha8Rng, out: &mut [u8]) {
    let (degrees, _) = class(label);
    let turn = TURN_SD * f64::from(normal(rng));
    let object = Grating::draw(rng, f64::from(degrees) + turn, PERIODS[label / 5]);
    let distractor = {
        let degrees = rng.random_range(0.0..180.0);
        let period = rng.random_range(PERIODS[1]..PERIODS[0]);
        Grating::draw(rng, degrees, period)
    };
    let colour = |rng: &mut ChaCha8Rng| -> [f64; 3] {
        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
        std::array::from_fn(|_| sign * (1.0 + rng.random_range(-0.5..0.5)))
    };
    let (object_colour, distractor_colour) = (colour(rng), colour(rng));
    let gain = OBJECT * rng.random_range(CONTRAST.0..CONTRAST.1);
    let weights: Vec<f32> = bank.iter().map(|_| normal(rng)).collect();
    let spread = (1.0 / bank.len() as f32).sqrt();
    let brightness = rng.random_range(-BRIGHTNESS..BRIGHTNESS);
    let noise_scale = NOISE / 147.8;
    let mut noise = [0u8; 4 * PLANE];
    for (c, plane) in out.chunks_exact_mut(PLANE).enumerate() {
        let base = 128.0 + brightness + rng.random_range(-TINT..TINT);
        rng.fill_bytes(&mut noise);
        for (i, (o, n)) in plane.iter_mut().zip(noise.chunks_exact(4)).enumerate() {
            let (x, y) = (i % SIDE, i / SIDE);
            let clutter: f32 = (bank.iter().zip(&weights))
                .map(|(field, w)| w * field[c * PLANE + i])
                .sum::<f32>()
                * spread;
            let v = base
                + CLUTTER * f64::from(clutter)
                + gain * object_colour[c] * object.at(x, y)
                + DISTRACTOR * OBJECT * distractor_colour[c] * distractor.at(x, y);
            // Noise as the image set draws it: four uniform bytes, sd 147.8 before scaling.
            let sum = n.iter().map(|&b| u32::from(b)).sum::<u32>() as f32;
            let v = v as f32 + (sum - 510.0) * noise_scale;
            *o = v.round().clamp(0.0, 255.0) as u8;
        }
    }
}

/// `(cos, sin)` of `turns` full turns, with correctly rounded operations only (no libm), so
/// the images are the same bytes on every platform: reduced to within half a turn, then
/// Taylor series to well under f32's precision.
fn cos_sin(turns: f64) -> (f64, f64) {
    let t = turns - turns.round();
    let a = t * std::f64::consts::TAU;
    let a2 = a * a;
    let (mut cos, mut sin) = (1.0, a);
    let (mut c_term, mut s_term) = (1.0, a);
    for k in 1..=12 {
        let k = f64::from(k);
        c_term *= -a2 / ((2.0 * k - 1.0) * (2.0 * k));
        s_term *= -a2 / ((2.0 * k) * (2.0 * k + 1.0));
        cos += c_term;
        sin += s_term;
    }
    (cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cos_sin_matches_libm_over_turns() {
        for i in -200..=200 {
            let turns = i as f64 * 0.0173;
            let a = turns * std::f64::consts::TAU;
            let (c, s) = cos_sin(turns);
            assert!(
                (c - a.cos()).abs() < 1e-12 && (s - a.sin()).abs() < 1e-12,
                "{turns}"
            );
        }
    }

    #[test]
    fn classes_are_five_orientations_by_two_periods() {
        let names: Vec<(u32, u32)> = (0..IMAGE_CLASSES).map(class).collect();
        assert_eq!(names[0], (0, 8));
        assert_eq!(names[4], (144, 8));
        assert_eq!(names[5], (0, 4));
        assert_eq!(names[9], (144, 4));
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), IMAGE_CLASSES);
    }

    #[test]
    fn an_object_is_its_classs_grating_inside_its_window_only() {
        let mut rng = stream(1, 99, 0);
        let g = Grating::draw(&mut rng, 36.0, 8.0);
        let (cx, cy) = g.centre;
        for y in 0..SIDE {
            for x in 0..SIDE {
                let r = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
                let v = g.at(x, y);
                assert!(v.abs() <= 1.0);
                if r >= g.radius {
                    assert_eq!(v, 0.0);
                }
            }
        }
        // The wave runs across the stripes at 36 degrees with a period within the stretch.
        let f = (g.u * g.u + g.v * g.v).sqrt();
        assert!((1.0 / f - 8.0).abs() <= 8.0 * STRETCH + 1e-9);
        assert!((g.v.atan2(g.u).to_degrees() - 36.0).abs() < 1e-9);
    }
}
