//! A data set in memory: a train and a test split, the class names, what one input is (a
//! dense image or a bag of token ids), and the gathering of mini-batches by sample index.
//! Loaders and generators build [`Samples`] and hand them to [`Dataset::new`], where they are
//! checked once; this module must never read files or generate data itself.
//!
//! Images are kept as the bytes the formats give (0-255, channel-major c, h, w) and turned
//! into `f32` only when a batch is gathered: `x = (byte / 255 - mean_c) / std_c`, with the
//! mean and (population) standard deviation of channel `c` taken over every pixel of the
//! *training* split and applied unchanged to the test split, so that no test statistic
//! leaks into training. This is the usual per-channel standardisation (torchvision's
//! `Normalize` with data-set statistics); it gives each channel roughly zero mean and unit
//! variance over the training set. A constant channel keeps `std = 1`.

use super::batch::{Batch, BatchInputs};
pub use super::samples::{DatasetError, Samples};
use super::samples::{Stored, check};
pub use super::shape::{ImageShape, InputKind, Split};

/// Mean and standard deviation of one channel over the training split, in units of
/// `byte / 255`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelStats {
    pub mean: f32,
    pub std: f32,
}

/// A checked data set with both splits in memory.
#[derive(Clone, Debug)]
pub struct Dataset {
    name: String,
    input: InputKind,
    class_names: Vec<String>,
    train: Samples,
    test: Samples,
    stats: Vec<ChannelStats>,
    /// Per channel, the normalised value of each byte.
    lut: Vec<[f32; 256]>,
}

impl Dataset {
    /// Checks the splits against the description and, for images, computes the per-channel
    /// statistics of the training split.
    pub fn new(
        name: impl Into<String>,
        input: InputKind,
        class_names: Vec<String>,
        train: Samples,
        test: Samples,
    ) -> Result<Self, DatasetError> {
        let name = name.into();
        if class_names.is_empty() {
            return Err(DatasetError::NoClasses { name });
        }
        if train.is_empty() {
            return Err(DatasetError::EmptyTrain { name });
        }
        match input {
            InputKind::Dense(s) if s.sample_len() == 0 => {
                return Err(DatasetError::ZeroShape {
                    name,
                    c: s.channels,
                    h: s.height,
                    w: s.width,
                });
            }
            InputKind::Tokens { vocabulary: 0 } => {
                return Err(DatasetError::EmptyVocabulary { name });
            }
            _ => {}
        }
        for (split, samples) in [(Split::Train, &train), (Split::Test, &test)] {
            check(&name, input, class_names.len(), split, samples)?;
        }
        let stats = match (input, &train.inputs) {
            (InputKind::Dense(shape), Stored::Pixels(px)) => channel_stats(shape, px),
            _ => vec![],
        };
        let lut = stats
            .iter()
            .map(|s| std::array::from_fn(|b| (b as f32 / 255.0 - s.mean) / s.std))
            .collect();
        Ok(Dataset {
            name,
            input,
            class_names,
            train,
            test,
            stats,
            lut,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn input(&self) -> InputKind {
        self.input
    }

    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    pub fn len(&self, split: Split) -> usize {
        self.samples(split).len()
    }

    pub fn labels(&self, split: Split) -> &[u32] {
        self.samples(split).labels()
    }

    /// Per-channel statistics of the training split used to normalise images; empty for
    /// token data.
    pub fn channel_stats(&self) -> &[ChannelStats] {
        &self.stats
    }

    /// The stored bytes of image `i` (channel-major), or `None` for token data or an index
    /// out of range.
    pub fn raw_image(&self, split: Split, i: usize) -> Option<&[u8]> {
        let InputKind::Dense(shape) = self.input else {
            return None;
        };
        let Stored::Pixels(px) = &self.samples(split).inputs else {
            return None;
        };
        let n = shape.sample_len();
        px.get(i * n..(i + 1) * n)
    }

    /// The token ids of sample `i`, or `None` for image data or an index out of range.
    pub fn tokens(&self, split: Split, i: usize) -> Option<&[u32]> {
        let Stored::Tokens { offsets, ids } = &self.samples(split).inputs else {
            return None;
        };
        let (a, b) = (*offsets.get(i)?, *offsets.get(i + 1)?);
        ids.get(a as usize..b as usize)
    }

    /// Gathers the samples at `indices` (in that order, repeats allowed) of `split` into a
    /// batch: images normalised to `f32` (see the module documentation), token bags copied.
    ///
    /// # Panics
    /// If an index is not below `self.len(split)`: indices come from the caller's sampler,
    /// never from user input, so this is a bug like an out-of-range slice index.
    pub fn gather(&self, split: Split, indices: &[usize]) -> Batch {
        let samples = self.samples(split);
        let n = samples.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            panic!(
                "data set {}: sample index {bad} out of range for the {} split of {n} samples",
                self.name,
                split.name()
            );
        }
        let labels = indices.iter().map(|&i| samples.labels[i]).collect();
        let inputs = match &samples.inputs {
            Stored::Pixels(px) => {
                let len = px.len() / n;
                let plane = len / self.lut.len().max(1);
                let mut x = Vec::with_capacity(indices.len() * len);
                for &i in indices {
                    let sample = &px[i * len..(i + 1) * len];
                    for (channel, lut) in sample.chunks_exact(plane).zip(&self.lut) {
                        x.extend(channel.iter().map(|&b| lut[b as usize]));
                    }
                }
                BatchInputs::Dense { x, sample_len: len }
            }
            Stored::Tokens { offsets, ids } => {
                let mut out_offsets = Vec::with_capacity(indices.len() + 1);
                let mut out_ids = Vec::new();
                out_offsets.push(0u32);
                for &i in indices {
                    out_ids.extend_from_slice(&ids[offsets[i] as usize..offsets[i + 1] as usize]);
                    let end = u32::try_from(out_ids.len())
                        .unwrap_or_else(|_| panic!("batch of more than 2^32 tokens"));
                    out_offsets.push(end);
                }
                BatchInputs::Tokens {
                    offsets: out_offsets,
                    ids: out_ids,
                }
            }
        };
        Batch { inputs, labels }
    }

    fn samples(&self, split: Split) -> &Samples {
        match split {
            Split::Train => &self.train,
            Split::Test => &self.test,
        }
    }
}

/// Exact per-channel mean and standard deviation from byte histograms.
fn channel_stats(shape: ImageShape, pixels: &[u8]) -> Vec<ChannelStats> {
    let plane = shape.plane();
    let mut hist = vec![[0u64; 256]; shape.channels];
    for sample in pixels.chunks_exact(shape.sample_len()) {
        for (channel, h) in sample.chunks_exact(plane).zip(hist.iter_mut()) {
            for &b in channel {
                h[b as usize] += 1;
            }
        }
    }
    hist.iter()
        .map(|h| {
            let count: u64 = h.iter().sum();
            let count = count.max(1) as f64;
            let v = |b: usize| b as f64 / 255.0;
            let mean = h
                .iter()
                .enumerate()
                .map(|(b, &k)| k as f64 * v(b))
                .sum::<f64>()
                / count;
            let var = h
                .iter()
                .enumerate()
                .map(|(b, &k)| k as f64 * (v(b) - mean).powi(2))
                .sum::<f64>()
                / count;
            let std = var.sqrt();
            ChannelStats {
                mean: mean as f32,
                std: if std > 1e-6 { std as f32 } else { 1.0 },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| i.to_string()).collect()
    }

    fn tiny_images() -> Dataset {
        let shape = ImageShape {
            channels: 2,
            height: 1,
            width: 2,
        };
        // Channel 0 takes 0 and 255, channel 1 is constant 51.
        let train = Samples::pixels(vec![0, 255, 51, 51, 255, 0, 51, 51], vec![0, 1]);
        let test = Samples::pixels(vec![255, 255, 51, 51], vec![1]);
        Dataset::new("tiny", InputKind::Dense(shape), names(2), train, test).unwrap()
    }

    #[test]
    fn images_are_standardised_with_train_statistics() {
        let d = tiny_images();
        let s = d.channel_stats();
        assert!((s[0].mean - 0.5).abs() < 1e-6 && (s[0].std - 0.5).abs() < 1e-6);
        assert!((s[1].mean - 0.2).abs() < 1e-6 && s[1].std == 1.0);
        let b = d.gather(Split::Test, &[0, 0]);
        let BatchInputs::Dense { x, sample_len } = b.inputs else {
            panic!("dense expected")
        };
        assert_eq!(sample_len, 4);
        assert_eq!(x, vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        assert_eq!(b.labels, vec![1, 1]);
    }

    #[test]
    fn token_bags_are_gathered_in_index_order() {
        let train = Samples::tokens(vec![0, 2, 2, 5], vec![1, 1, 0, 3, 2], vec![0, 1, 2]);
        let test = Samples::tokens(vec![0], vec![], vec![]);
        let d = Dataset::new(
            "t",
            InputKind::Tokens { vocabulary: 4 },
            names(3),
            train,
            test,
        )
        .unwrap();
        let b = d.gather(Split::Train, &[2, 1, 0]);
        assert_eq!(
            b.inputs,
            BatchInputs::Tokens {
                offsets: vec![0, 3, 3, 5],
                ids: vec![0, 3, 2, 1, 1]
            }
        );
        assert_eq!(b.labels, vec![2, 1, 0]);
        assert_eq!(d.tokens(Split::Train, 1), Some(&[][..]));
        assert_eq!(d.tokens(Split::Train, 3), None);
    }

    #[test]
    #[should_panic(expected = "sample index 1 out of range for the test split")]
    fn gather_out_of_range_panics_with_the_index() {
        tiny_images().gather(Split::Test, &[1]);
    }
}
