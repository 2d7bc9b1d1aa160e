//! What one sample's input is (a dense image of a shape, or a bag of token ids) and which split
//! of a data set it belongs to: the plain descriptions that storage and data sets share.

/// Shape of one dense sample: `channels x height x width`, stored channel-major. A flat
/// vector of `n` features is `1 x 1 x n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    /// Values per sample, `c * h * w`.
    pub fn sample_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Values per channel, `h * w`.
    pub fn plane(&self) -> usize {
        self.height * self.width
    }
}

/// What one sample's input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A dense image of this shape (bytes on disk, normalised `f32` in a batch).
    Dense(ImageShape),
    /// A bag of token ids, each below `vocabulary`; bags may be empty and repeat ids.
    Tokens { vocabulary: usize },
}

/// One of the two splits of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}
