//! Data set descriptions. The timing model needs only how many samples an epoch holds; the
//! kinds that generate data need no download.

use serde::{Deserialize, Serialize};

/// Where a run's samples come from, as written under `[workload.dataset]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DatasetSpec {
    /// Generated 3x32x32 images in 10 classes.
    SyntheticImage {
        train_samples: u64,
        #[serde(default = "default_test")]
        test_samples: u64,
    },
    /// Generated sparse bags of words.
    SyntheticText {
        train_samples: u64,
        #[serde(default = "default_test")]
        test_samples: u64,
    },
}

fn default_test() -> u64 {
    10_000
}

impl DatasetSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            DatasetSpec::SyntheticImage { .. } => "synthetic-image",
            DatasetSpec::SyntheticText { .. } => "synthetic-text",
        }
    }

    /// Training samples: one epoch processes this many.
    pub fn train_samples(&self) -> u64 {
        match *self {
            DatasetSpec::SyntheticImage { train_samples, .. }
            | DatasetSpec::SyntheticText { train_samples, .. } => train_samples,
        }
    }

    pub fn test_samples(&self) -> u64 {
        match *self {
            DatasetSpec::SyntheticImage { test_samples, .. }
            | DatasetSpec::SyntheticText { test_samples, .. } => test_samples,
        }
    }

    /// Whether the data fit a model of this input kind: images for image models, token bags
    /// for token models.
    pub fn is_text(&self) -> bool {
        matches!(self, DatasetSpec::SyntheticText { .. })
    }
}
