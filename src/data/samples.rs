//! The samples of one split as loaders and generators hand them over, and the one check
//! that they fit a data set's description ([`DatasetError`] says what does not). Must never
//! change the samples it checks.

use thiserror::Error;

use super::shape::{InputKind, Split};

/// The samples of one split as loaders and generators produce them, before checking.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    pub(super) inputs: Stored,
    pub(super) labels: Vec<u32>,
}

/// How a split's inputs are kept: bytes for images, flat ids with offsets for token bags.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Stored {
    /// `labels.len() * sample_len` bytes, sample after sample.
    Pixels(Vec<u8>),
    /// Sample `i` holds `ids[offsets[i]..offsets[i + 1]]`.
    Tokens { offsets: Vec<u32>, ids: Vec<u32> },
}

impl Samples {
    /// Images: `pixels` holds the samples one after another, each channel-major.
    pub fn pixels(pixels: Vec<u8>, labels: Vec<u32>) -> Self {
        Samples {
            inputs: Stored::Pixels(pixels),
            labels,
        }
    }

    /// Token bags: sample `i` holds `ids[offsets[i]..offsets[i + 1]]`, so
    /// `offsets.len() == labels.len() + 1` and `offsets[0] == 0`.
    pub fn tokens(offsets: Vec<u32>, ids: Vec<u32>, labels: Vec<u32>) -> Self {
        Samples {
            inputs: Stored::Tokens { offsets, ids },
            labels,
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn labels(&self) -> &[u32] {
        &self.labels
    }
}

/// Samples that do not fit the data set's description. Fatal: the loader or generator that
/// built them is wrong, or was given impossible parameters.
#[derive(Debug, Error)]
pub enum DatasetError {
    /// A data set needs at least one class.
    #[error("data set {name}: no classes")]
    NoClasses { name: String },
    /// The training split must hold at least one sample (normalisation and epochs need it).
    #[error("data set {name}: the train split is empty; at least one sample is needed")]
    EmptyTrain { name: String },
    /// An image shape with a zero dimension.
    #[error("data set {name}: image shape {c}x{h}x{w} has a zero dimension")]
    ZeroShape {
        name: String,
        c: usize,
        h: usize,
        w: usize,
    },
    /// A vocabulary with no ids.
    #[error("data set {name}: the vocabulary is empty")]
    EmptyVocabulary { name: String },
    /// The inputs are not the kind the description says, or their sizes do not add up.
    #[error("data set {name}, {split} split: {what}")]
    Layout {
        name: String,
        split: &'static str,
        what: String,
    },
    /// A label at or above the number of classes.
    #[error("data set {name}, {split} split, sample {sample}: label {label}, allowed 0-{max}")]
    Label {
        name: String,
        split: &'static str,
        sample: usize,
        label: u32,
        max: usize,
    },
    /// A token id at or above the vocabulary size.
    #[error("data set {name}, {split} split, sample {sample}: token id {id}, allowed 0-{max}")]
    Token {
        name: String,
        split: &'static str,
        sample: usize,
        id: u32,
        max: usize,
    },
}

/// Checks `samples` of `split` against the description.
pub(super) fn check(
    name: &str,
    input: InputKind,
    classes: usize,
    split: Split,
    samples: &Samples,
) -> Result<(), DatasetError> {
    let layout = |what: String| DatasetError::Layout {
        name: name.to_string(),
        split: split.name(),
        what,
    };
    let n = samples.len();
    match (input, &samples.inputs) {
        (InputKind::Dense(shape), Stored::Pixels(px)) => {
            let want = n.checked_mul(shape.sample_len());
            if want != Some(px.len()) {
                return Err(layout(format!(
                    "{} bytes of pixels for {n} samples of {}x{}x{}",
                    px.len(),
                    shape.channels,
                    shape.height,
                    shape.width
                )));
            }
        }
        (InputKind::Tokens { vocabulary }, Stored::Tokens { offsets, ids }) => {
            let well_formed = offsets.len() == n + 1
                && offsets.first() == Some(&0)
                && offsets.last().map(|&e| e as usize) == Some(ids.len())
                && offsets.windows(2).all(|w| w[0] <= w[1]);
            if !well_formed {
                return Err(layout(format!(
                    "token offsets do not delimit {n} bags of {} ids",
                    ids.len()
                )));
            }
            for (sample, w) in offsets.windows(2).enumerate() {
                let bag = &ids[w[0] as usize..w[1] as usize];
                if let Some(&id) = bag.iter().find(|&&id| id as usize >= vocabulary) {
                    return Err(DatasetError::Token {
                        name: name.to_string(),
                        split: split.name(),
                        sample,
                        id,
                        max: vocabulary - 1,
                    });
                }
            }
        }
        (InputKind::Dense(_), _) => return Err(layout("token bags for an image data set".into())),
        (InputKind::Tokens { .. }, _) => {
            return Err(layout("pixels for a token data set".into()));
        }
    }
    if let Some((sample, &label)) = samples
        .labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= classes)
    {
        return Err(DatasetError::Label {
            name: name.to_string(),
            split: split.name(),
            sample,
            label,
            max: classes - 1,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::{Dataset, ImageShape};

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| i.to_string()).collect()
    }

    #[test]
    fn bad_samples_are_rejected() {
        let tok = InputKind::Tokens { vocabulary: 4 };
        let empty = || Samples::tokens(vec![0], vec![], vec![]);
        let bad_id = Samples::tokens(vec![0, 1], vec![4], vec![0]);
        let e = Dataset::new("t", tok, names(1), bad_id, empty()).unwrap_err();
        assert!(e.to_string().contains("token id 4, allowed 0-3"), "{e}");
        let bad_label = Samples::tokens(vec![0, 1], vec![3], vec![1]);
        let e = Dataset::new("t", tok, names(1), bad_label, empty()).unwrap_err();
        assert!(e.to_string().contains("label 1, allowed 0-0"), "{e}");
        let e = Dataset::new("t", tok, names(1), empty(), empty()).unwrap_err();
        assert!(matches!(e, DatasetError::EmptyTrain { .. }));
        let bad_offsets = Samples::tokens(vec![0, 2], vec![3], vec![0]);
        assert!(Dataset::new("t", tok, names(1), bad_offsets, empty()).is_err());
        let img = InputKind::Dense(ImageShape {
            channels: 1,
            height: 2,
            width: 2,
        });
        let short = Samples::pixels(vec![0; 3], vec![0]);
        let e = Dataset::new("i", img, names(1), short, Samples::pixels(vec![], vec![]));
        assert!(e.unwrap_err().to_string().contains("3 bytes of pixels"));
    }
}
