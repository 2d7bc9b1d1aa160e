//! Loader for the CIFAR-10 binary version (<https://www.cs.toronto.edu/~kriz/cifar.html>):
//! a directory with `data_batch_1.bin`..`data_batch_5.bin` (train, 50,000 images) and
//! `test_batch.bin` (test, 10,000). Each record is 1 label byte (0-9) then 3,072 pixel bytes:
//! 1,024 red, 1,024 green, 1,024 blue, each plane row-major 32 x 32, which is already the
//! channel-major layout a batch wants. This module must never download or accept a record
//! it cannot account for: every bad byte is reported with its file and offset.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::dataset::{Dataset, DatasetError, ImageShape, InputKind, Samples};

/// The training files, in the order their records are concatenated.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
pub const TEST_FILE: &str = "test_batch.bin";
/// The directory the official archive unpacks to.
pub const DIR_NAME: &str = "cifar-10-batches-bin";

pub const SHAPE: ImageShape = ImageShape {
    channels: 3,
    height: 32,
    width: 32,
};
const PIXELS: usize = 3 * 32 * 32;
/// Bytes per record: one label byte and the pixels.
pub const RECORD_BYTES: usize = 1 + PIXELS;

/// The class names, in label order (from the archive's `batches.meta.txt`).
pub const CLASS_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// A CIFAR-10 directory that cannot be read. Every variant is fatal: nothing is loaded.
#[derive(Debug, Error)]
pub enum CifarError {
    /// One of the six files is not there.
    #[error(
        "{}: missing; a CIFAR-10 binary directory holds data_batch_1.bin .. data_batch_5.bin \
         and test_batch.bin (`asgd-sim data get cifar10` downloads them)",
        path.display()
    )]
    Missing { path: PathBuf },
    /// The file exists but could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The size is zero or not a whole number of records.
    #[error(
        "{}: {len} bytes is not a positive multiple of the {RECORD_BYTES}-byte record \
         (1 label byte + 3072 pixel bytes); the file is truncated or not CIFAR-10 binary",
        path.display()
    )]
    Size { path: PathBuf, len: u64 },
    /// A label byte outside 0-9.
    #[error(
        "{}: byte offset {offset} (record {record}): label {value}, allowed 0-9",
        path.display()
    )]
    Label {
        path: PathBuf,
        offset: u64,
        record: usize,
        value: u8,
    },
    /// The records do not form a data set (cannot happen for files that passed the checks
    /// above; kept so that no failure is swallowed).
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

/// Loads the six files of `dir` (a `cifar-10-batches-bin` directory).
pub fn load(dir: &Path) -> Result<Dataset, CifarError> {
    let mut train = (Vec::new(), Vec::new());
    for name in TRAIN_FILES {
        read_file(&dir.join(name), &mut train.0, &mut train.1)?;
    }
    let mut test = (Vec::new(), Vec::new());
    read_file(&dir.join(TEST_FILE), &mut test.0, &mut test.1)?;
    Ok(Dataset::new(
        "cifar10",
        InputKind::Dense(SHAPE),
        CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        Samples::pixels(train.0, train.1),
        Samples::pixels(test.0, test.1),
    )?)
}

/// Appends the records of one binary batch file to `pixels` and `labels`.
pub fn read_file(
    path: &Path,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u32>,
) -> Result<(), CifarError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => CifarError::Missing { path: path.into() },
        _ => CifarError::Io {
            path: path.into(),
            source,
        },
    })?;
    if bytes.is_empty() || bytes.len() % RECORD_BYTES != 0 {
        return Err(CifarError::Size {
            path: path.into(),
            len: bytes.len() as u64,
        });
    }
    pixels.reserve(bytes.len() / RECORD_BYTES * PIXELS);
    for (record, chunk) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let value = chunk[0];
        if value > 9 {
            return Err(CifarError::Label {
                path: path.into(),
                offset: (record * RECORD_BYTES) as u64,
                record,
                value,
            });
        }
        labels.push(u32::from(value));
        pixels.extend_from_slice(&chunk[1..]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![fill; RECORD_BYTES];
        r[0] = label;
        r
    }

    #[test]
    fn records_are_split_into_labels_and_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.bin");
        std::fs::write(&path, [record(3, 7), record(9, 8)].concat()).unwrap();
        let (mut px, mut labels) = (vec![], vec![]);
        read_file(&path, &mut px, &mut labels).unwrap();
        assert_eq!(labels, vec![3, 9]);
        assert_eq!(px.len(), 2 * PIXELS);
        assert!(px[..PIXELS].iter().all(|&b| b == 7) && px[PIXELS..].iter().all(|&b| b == 8));
    }

    #[test]
    fn second_record_label_is_reported_at_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.bin");
        std::fs::write(&path, [record(3, 7), record(10, 8)].concat()).unwrap();
        let e = read_file(&path, &mut vec![], &mut vec![]).unwrap_err();
        assert!(
            e.to_string()
                .contains("byte offset 3073 (record 1): label 10, allowed 0-9"),
            "{e}"
        );
    }
}
