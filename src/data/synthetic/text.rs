//! The synthetic text set: bags of about 40 token ids over a vocabulary of V ids in 20
//! classes, shaped like a topic-classification corpus. Must never depend on anything but its
//! sizes, vocabulary and seed.
//!
//! Every token of a document is drawn either from the background, a Zipf law over the whole
//! vocabulary (id `r` has weight `1 / (r + 1)`, so small ids are the frequent "stop words"),
//! or, with probability [`KEYWORD_SHARE`], from its class's keywords: [`KEYWORDS`] ids drawn
//! from a pool shared by all classes (so classes overlap in vocabulary), themselves Zipf
//! weighted. Document lengths are uniform in 20..=60, so a document holds about 4 keywords
//! among 36 background tokens. Measured (`tests/data/learnability.rs`; chance is 5 %):
//! multinomial naive Bayes on the bags, 5,000 train / 2,000 test documents over 20,000 ids,
//! 89 %; 50,000 / 5,000 over 100,000 ids, 93 %.

use rand::Rng;
use rand::seq::index;

use super::{SyntheticError, sample_stream, stream};
use crate::data::dataset::{Dataset, InputKind, Samples, Split};

pub const TEXT_CLASSES: usize = 20;
/// Mean tokens per document.
pub const TEXT_TOKENS: usize = 40;
/// The smallest vocabulary the generator accepts.
pub const MIN_VOCABULARY: usize = 1_000;
/// Keywords per class.
pub const KEYWORDS: usize = 40;
/// Probability that a token is one of its class's keywords rather than background.
pub const KEYWORD_SHARE: f64 = 0.10;
/// Keywords are drawn from this many ids, spread over the vocabulary past the most frequent
/// tenth; with 20 classes of 40 keywords each id of the pool serves about two classes.
const POOL: usize = 400;

/// Generates `train` and `test` documents over `vocabulary` ids from `seed`. The same
/// arguments give the same data; labels are uniform over the 20 classes.
pub fn text(
    train: usize,
    test: usize,
    vocabulary: usize,
    seed: u64,
) -> Result<Dataset, SyntheticError> {
    if vocabulary < MIN_VOCABULARY {
        return Err(SyntheticError::Vocabulary {
            vocabulary,
            min: MIN_VOCABULARY,
        });
    }
    let background = cumulative((0..vocabulary).map(|r| 1.0 / (r + 1) as f64));
    let mut rng = stream(seed, 20, 0);
    let skip = vocabulary / 10;
    let pool: Vec<u32> = index::sample(&mut rng, vocabulary - skip, POOL)
        .into_iter()
        .map(|i| (skip + i) as u32)
        .collect();
    let classes: Vec<Vec<u32>> = (0..TEXT_CLASSES)
        .map(|k| {
            let mut rng = stream(seed, 21, k as u64);
            index::sample(&mut rng, POOL, KEYWORDS)
                .into_iter()
                .map(|i| pool[i])
                .collect()
        })
        .collect();
    let keyword_weights = cumulative((0..KEYWORDS).map(|r| 1.0 / (r + 1) as f64));
    let split = |split: Split, n: usize| -> Result<Samples, SyntheticError> {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0u32);
        let mut ids = Vec::with_capacity(n * TEXT_TOKENS);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let mut rng = sample_stream(seed, split, i);
            let label = rng.random_range(0..TEXT_CLASSES);
            let len = rng.random_range(TEXT_TOKENS / 2..=TEXT_TOKENS * 3 / 2);
            for _ in 0..len {
                let id = if rng.random_bool(KEYWORD_SHARE) {
                    classes[label][draw(&keyword_weights, rng.random())]
                } else {
                    draw(&background, rng.random()) as u32
                };
                ids.push(id);
            }
            labels.push(label as u32);
            let end = u32::try_from(ids.len()).map_err(|_| SyntheticError::TooLarge {
                what: "synthetic-text",
                samples: n,
            })?;
            offsets.push(end);
        }
        Ok(Samples::tokens(offsets, ids, labels))
    };
    let class_names = (0..TEXT_CLASSES).map(|k| format!("topic{k}")).collect();
    Ok(Dataset::new(
        "synthetic-text",
        InputKind::Tokens { vocabulary },
        class_names,
        split(Split::Train, train)?,
        split(Split::Test, test)?,
    )?)
}

/// Cumulative weights, normalised to end at 1.
fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = weights
        .map(|w| {
            acc += w;
            acc
        })
        .collect();
    cdf.iter_mut().for_each(|c| *c /= acc);
    cdf
}

/// The index whose cumulative-weight interval holds `u` in [0, 1).
fn draw(cdf: &[f64], u: f64) -> usize {
    cdf.partition_point(|&c| c <= u).min(cdf.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_inverts_the_cumulative_weights() {
        let cdf = cumulative([1.0, 2.0, 1.0].into_iter());
        assert_eq!(cdf, vec![0.25, 0.75, 1.0]);
        assert_eq!(draw(&cdf, 0.0), 0);
        assert_eq!(draw(&cdf, 0.25), 1);
        assert_eq!(draw(&cdf, 0.74), 1);
        assert_eq!(draw(&cdf, 0.999), 2);
    }

    #[test]
    fn small_vocabulary_is_refused() {
        let e = text(10, 0, 999, 1).unwrap_err();
        assert!(e.to_string().contains("vocabulary 999 is too small"), "{e}");
    }
}
