//! Data set descriptions as written under `[workload.dataset]`, and their loading. The timing
//! model needs only the sizes and the input shape; synthetic sets give those without being
//! generated, file sets are read (their sizes live in the files).

use crate::data::{self, Dataset, InputKind, Samples, Split};
use crate::workload::Shape;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a run's samples come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DatasetSpec {
    /// Generated 3x32x32 images in 10 classes (CIFAR-10's shape); no download.
    SyntheticImage {
        train_samples: u64,
        #[serde(default = "default_test")]
        test_samples: u64,
        /// Seed of the generated data (independent of the run's seed, so that runs with
        /// different seeds train on the same data).
        #[serde(default)]
        data_seed: u64,
    },
    /// Generated 3x32x32 images in 10 classes, one textured object each on clutter, that the
    /// seed paper's ConvNet learns like CIFAR-10 early on; no download.
    SyntheticObjects {
        train_samples: u64,
        #[serde(default = "default_test")]
        test_samples: u64,
        #[serde(default)]
        data_seed: u64,
    },
    /// Generated bags of ~40 words over `vocabulary` ids in 20 classes; no download.
    SyntheticText {
        train_samples: u64,
        #[serde(default = "default_test")]
        test_samples: u64,
        #[serde(default = "default_vocabulary")]
        vocabulary: u64,
        #[serde(default)]
        data_seed: u64,
    },
    /// CIFAR-10 binary version: a directory holding `data_batch_1.bin`..`test_batch.bin`.
    Cifar10 { path: PathBuf },
    /// MNIST IDX files (plain or .gz) in a directory.
    Mnist { path: PathBuf },
    /// LIBSVM sparse text files, read as bags of words.
    Libsvm { train: PathBuf, test: PathBuf },
    /// No data: samples that only count, for objectives that draw their own noise (the
    /// noisy quadratic model).
    None {
        train_samples: u64,
        #[serde(default = "default_test")]
        test_samples: u64,
    },
}

fn default_test() -> u64 {
    10_000
}

fn default_vocabulary() -> u64 {
    100_000
}

/// Sizes and input of a data set, known before (or without) generating it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DatasetInfo {
    pub train_samples: u64,
    pub test_samples: u64,
    pub input: Shape,
    pub classes: usize,
}

impl DatasetSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            DatasetSpec::SyntheticImage { .. } => "synthetic-image",
            DatasetSpec::SyntheticObjects { .. } => "synthetic-objects",
            DatasetSpec::SyntheticText { .. } => "synthetic-text",
            DatasetSpec::Cifar10 { .. } => "cifar10",
            DatasetSpec::Mnist { .. } => "mnist",
            DatasetSpec::Libsvm { .. } => "libsvm",
            DatasetSpec::None { .. } => "none",
        }
    }

    pub fn is_synthetic(&self) -> bool {
        matches!(
            self,
            DatasetSpec::SyntheticImage { .. }
                | DatasetSpec::SyntheticObjects { .. }
                | DatasetSpec::SyntheticText { .. }
                | DatasetSpec::None { .. }
        )
    }

    /// Sizes and input of a synthetic set, without generating it (None for file sets).
    pub fn synthetic_info(&self) -> Option<DatasetInfo> {
        match *self {
            DatasetSpec::SyntheticImage {
                train_samples,
                test_samples,
                ..
            }
            | DatasetSpec::SyntheticObjects {
                train_samples,
                test_samples,
                ..
            } => Some(DatasetInfo {
                train_samples,
                test_samples,
                input: image_shape(data::synthetic::IMAGE_SHAPE),
                classes: data::synthetic::IMAGE_CLASSES,
            }),
            DatasetSpec::SyntheticText {
                train_samples,
                test_samples,
                vocabulary,
                ..
            } => Some(DatasetInfo {
                train_samples,
                test_samples,
                input: Shape::Tokens {
                    vocabulary: vocabulary as usize,
                    tokens: data::synthetic::TEXT_TOKENS,
                },
                classes: data::synthetic::TEXT_CLASSES,
            }),
            DatasetSpec::None {
                train_samples,
                test_samples,
            } => Some(DatasetInfo {
                train_samples,
                test_samples,
                input: Shape::Tokens {
                    vocabulary: 1,
                    tokens: 0,
                },
                classes: 1,
            }),
            _ => None,
        }
    }

    /// Generates or reads the data set; relative paths are taken from `base`. Errors name the
    /// file and what is wrong with it.
    pub fn load(&self, base: &Path) -> Result<Dataset, String> {
        let at = |p: &PathBuf| base.join(p);
        match self {
            DatasetSpec::SyntheticImage {
                train_samples,
                test_samples,
                data_seed,
            } => {
                data::synthetic::images(*train_samples as usize, *test_samples as usize, *data_seed)
                    .map_err(|e| e.to_string())
            }
            DatasetSpec::SyntheticObjects {
                train_samples,
                test_samples,
                data_seed,
            } => data::synthetic::objects(
                *train_samples as usize,
                *test_samples as usize,
                *data_seed,
            )
            .map_err(|e| e.to_string()),
            DatasetSpec::SyntheticText {
                train_samples,
                test_samples,
                vocabulary,
                data_seed,
            } => data::synthetic::text(
                *train_samples as usize,
                *test_samples as usize,
                *vocabulary as usize,
                *data_seed,
            )
            .map_err(|e| e.to_string()),
            DatasetSpec::Cifar10 { path } => {
                data::cifar10::load(&at(path)).map_err(|e| e.to_string())
            }
            DatasetSpec::Mnist { path } => data::mnist::load(&at(path)).map_err(|e| e.to_string()),
            DatasetSpec::Libsvm { train, test } => {
                data::libsvm::load(&at(train), &at(test)).map_err(|e| e.to_string())
            }
            DatasetSpec::None {
                train_samples,
                test_samples,
            } => {
                let empty = |n: u64| {
                    let n = n as usize;
                    Samples::tokens(vec![0; n + 1], vec![], vec![0; n])
                };
                Dataset::new(
                    "none",
                    InputKind::Tokens { vocabulary: 1 },
                    vec!["none".into()],
                    empty(*train_samples),
                    empty(*test_samples),
                )
                .map_err(|e| e.to_string())
            }
        }
    }
}

/// Sizes and input of a loaded data set.
pub fn info_of(d: &Dataset) -> DatasetInfo {
    let train = d.len(Split::Train);
    let input = match d.input() {
        InputKind::Dense(s) => image_shape(s),
        InputKind::Tokens { vocabulary } => {
            // Mean bag length over the training split, for the FLOP count.
            let total: usize = (0..train)
                .map(|i| d.tokens(Split::Train, i).map_or(0, <[u32]>::len))
                .sum();
            Shape::Tokens {
                vocabulary,
                tokens: total.div_ceil(train.max(1)).max(1),
            }
        }
    };
    DatasetInfo {
        train_samples: train as u64,
        test_samples: d.len(Split::Test) as u64,
        input,
        classes: d.classes(),
    }
}

fn image_shape(s: data::ImageShape) -> Shape {
    Shape::Image {
        c: s.channels,
        h: s.height,
        w: s.width,
    }
}
