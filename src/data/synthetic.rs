//! Synthetic data sets that need no download: an image-like set ([`images`]) and a sparse
//! text-like set ([`text`]), each a pure function of its sizes and seed. Every sample draws
//! from its own random stream, derived from (seed, split, index), so the data do not depend
//! on how many threads generate them, and a larger set starts with the samples of a smaller
//! one. Only correctly rounded arithmetic is used (no `sin`, `exp` or `ln` from the
//! platform's libm), so a seed gives the same bytes on every platform. This module must
//! never read files or share a random stream with the simulation.

mod image;
mod objects;
mod text;

pub use image::{IMAGE_CLASSES, IMAGE_SHAPE, images};
pub use objects::objects;
pub use text::{MIN_VOCABULARY, TEXT_CLASSES, TEXT_TOKENS, text};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use super::dataset::{DatasetError, Split};

/// Parameters a generator cannot honour. Fatal: nothing is generated.
#[derive(Debug, Error)]
pub enum SyntheticError {
    /// The text generator needs room for its keywords.
    #[error("synthetic text: vocabulary {vocabulary} is too small, at least {min} ids needed")]
    Vocabulary { vocabulary: usize, min: usize },
    /// The sizes cannot be held (more tokens than a split can index).
    #[error("{what}: {samples} samples are too many to hold")]
    TooLarge { what: &'static str, samples: usize },
    /// The samples do not form a data set (an empty train split, for one).
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

/// splitmix64 finaliser: spreads nearby inputs over the whole 64-bit range.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The random stream of one purpose (class templates, sample `index` of a split, ...).
fn stream(seed: u64, purpose: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(mix(mix(seed) ^ purpose) ^ index))
}

/// The stream of sample `index` of `split`.
fn sample_stream(seed: u64, split: Split, index: usize) -> ChaCha8Rng {
    let purpose = match split {
        Split::Train => 1,
        Split::Test => 2,
    };
    stream(seed, purpose, index as u64)
}

/// Calls `fill(index, chunk)` for every sample, chunks of `out` of `per_sample` values,
/// spread over the machine's cores.
fn par_fill<T: Send>(out: &mut [T], per_sample: usize, fill: impl Fn(usize, &mut [T]) + Sync) {
    if per_sample == 0 {
        return;
    }
    let samples = out.len() / per_sample;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = samples.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for (t, block) in out.chunks_mut(per_thread * per_sample).enumerate() {
            let fill = &fill;
            scope.spawn(move || {
                for (j, chunk) in block.chunks_exact_mut(per_sample).enumerate() {
                    fill(t * per_thread + j, chunk);
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_fill_visits_every_sample_once_in_place() {
        let mut out = vec![0usize; 3 * 101];
        par_fill(&mut out, 3, |i, chunk| {
            chunk.iter_mut().for_each(|v| *v += i + 1)
        });
        for (i, chunk) in out.chunks(3).enumerate() {
            assert_eq!(chunk, [i + 1; 3]);
        }
    }

    #[test]
    fn streams_differ_by_split_and_index() {
        use rand::RngCore;
        let a = sample_stream(7, Split::Train, 0).next_u64();
        assert_eq!(a, sample_stream(7, Split::Train, 0).next_u64());
        assert_ne!(a, sample_stream(7, Split::Test, 0).next_u64());
        assert_ne!(a, sample_stream(7, Split::Train, 1).next_u64());
        assert_ne!(a, sample_stream(8, Split::Train, 0).next_u64());
    }
}
