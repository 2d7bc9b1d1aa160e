//! Loader for MNIST in its IDX format (<http://yann.lecun.com/exdb/mnist/>): four files,
//! `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
//! `t10k-labels-idx1-ubyte`, each plain or gzip-compressed with a `.gz` suffix (the plain
//! file wins when both exist). Headers are big-endian: images `0x00000803, n, rows, cols`
//! then `n * rows * cols` bytes; labels `0x00000801, n` then `n` bytes of 0-9. This module
//! must never guess: a header that disagrees with the file, or a label out of range, is an
//! error naming the file and the byte offset (in the decompressed stream for `.gz` files).

use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::dataset::{Dataset, DatasetError, ImageShape, InputKind, Samples};

pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
/// The four file names, without `.gz`.
pub const FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// An MNIST file that cannot be read. Every variant is fatal: nothing is loaded.
#[derive(Debug, Error)]
pub enum MnistError {
    /// Neither the plain nor the `.gz` file is there.
    #[error(
        "{}: missing (nor is there a .gz of it); an MNIST directory holds {} \
         (plain or .gz; `asgd-sim data get mnist` downloads them)",
        path.display(), FILES.join(", ")
    )]
    Missing { path: PathBuf },
    /// The file exists but could not be read or decompressed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Too short to hold its header.
    #[error("{}: {len} bytes, shorter than the {need}-byte IDX header", path.display())]
    Header {
        path: PathBuf,
        len: usize,
        need: usize,
    },
    /// The magic number (byte offset 0) is not the one this file must have.
    #[error(
        "{}: byte offset 0: magic number 0x{found:08x}, expected 0x{expected:08x} ({what})",
        path.display()
    )]
    Magic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    /// Image rows or columns of zero.
    #[error("{}: byte offset 8: image size {rows}x{cols}, both must be positive", path.display())]
    Dims { path: PathBuf, rows: u32, cols: u32 },
    /// The header's count and dimensions do not match the number of bytes after it.
    #[error(
        "{}: the header announces {count} {what} = {expected} bytes after the {header}-byte \
         header, the file has {found}",
        path.display()
    )]
    Size {
        path: PathBuf,
        what: String,
        count: u32,
        header: usize,
        expected: u64,
        found: u64,
    },
    /// A label byte above 9.
    #[error("{}: byte offset {offset}: label {value}, allowed 0-9", path.display())]
    Label {
        path: PathBuf,
        offset: usize,
        value: u8,
    },
    /// The image and label files of a split hold different numbers of samples.
    #[error(
        "{} holds {images} images but {} holds {labels} labels; they must match",
        images_path.display(), labels_path.display()
    )]
    Count {
        images_path: PathBuf,
        images: usize,
        labels_path: PathBuf,
        labels: usize,
    },
    /// Train and test images have different sizes.
    #[error(
        "{}: images are {test_rows}x{test_cols} but the training images are \
         {train_rows}x{train_cols}; both splits must have one size",
        path.display()
    )]
    Shape {
        path: PathBuf,
        train_rows: usize,
        train_cols: usize,
        test_rows: usize,
        test_cols: usize,
    },
    /// The samples do not form a data set (cannot happen for files that passed the checks
    /// above; kept so that no failure is swallowed).
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

/// Images of one IDX file: `count` images of `rows x cols` bytes, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

impl Images {
    pub fn count(&self) -> usize {
        self.pixels.len() / (self.rows * self.cols).max(1)
    }
}

/// Loads the four files of `dir` (1 channel, `rows x cols` from the headers, 28 x 28 for
/// MNIST).
pub fn load(dir: &Path) -> Result<Dataset, MnistError> {
    let (train_images, train_labels) = read_split(dir, TRAIN_IMAGES, TRAIN_LABELS)?;
    let (test_images, test_labels) = read_split(dir, TEST_IMAGES, TEST_LABELS)?;
    if (test_images.rows, test_images.cols) != (train_images.rows, train_images.cols) {
        return Err(MnistError::Shape {
            path: resolve(dir, TEST_IMAGES)?,
            train_rows: train_images.rows,
            train_cols: train_images.cols,
            test_rows: test_images.rows,
            test_cols: test_images.cols,
        });
    }
    let shape = ImageShape {
        channels: 1,
        height: train_images.rows,
        width: train_images.cols,
    };
    Ok(Dataset::new(
        "mnist",
        InputKind::Dense(shape),
        (0..10).map(|d| d.to_string()).collect(),
        Samples::pixels(train_images.pixels, train_labels),
        Samples::pixels(test_images.pixels, test_labels),
    )?)
}

fn read_split(dir: &Path, images: &str, labels: &str) -> Result<(Images, Vec<u32>), MnistError> {
    let images_path = resolve(dir, images)?;
    let labels_path = resolve(dir, labels)?;
    let img = read_images(&images_path)?;
    let lab = read_labels(&labels_path)?;
    if img.count() != lab.len() {
        return Err(MnistError::Count {
            images: img.count(),
            images_path,
            labels: lab.len(),
            labels_path,
        });
    }
    Ok((img, lab))
}

/// `dir/name` if it exists, else `dir/name.gz` if that exists.
fn resolve(dir: &Path, name: &str) -> Result<PathBuf, MnistError> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(MnistError::Missing { path: plain })
}

/// The whole content of `path`, decompressed when its name ends in `.gz`.
fn read_all(path: &Path) -> Result<Vec<u8>, MnistError> {
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => MnistError::Missing { path: path.into() },
        _ => MnistError::Io {
            path: path.into(),
            source,
        },
    };
    let raw = std::fs::read(path).map_err(io)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(io)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn header(
    path: &Path,
    bytes: &[u8],
    need: usize,
    magic: u32,
    what: &'static str,
) -> Result<(), MnistError> {
    if bytes.len() < need {
        return Err(MnistError::Header {
            path: path.into(),
            len: bytes.len(),
            need,
        });
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(MnistError::Magic {
            path: path.into(),
            found,
            expected: magic,
            what,
        });
    }
    Ok(())
}

/// Reads an IDX3 image file (plain or `.gz`, by its name).
pub fn read_images(path: &Path) -> Result<Images, MnistError> {
    let bytes = read_all(path)?;
    header(
        path,
        &bytes,
        16,
        IMAGES_MAGIC,
        "IDX images: unsigned bytes, 3 dimensions",
    )?;
    let (count, rows, cols) = (be_u32(&bytes, 4), be_u32(&bytes, 8), be_u32(&bytes, 12));
    if rows == 0 || cols == 0 {
        return Err(MnistError::Dims {
            path: path.into(),
            rows,
            cols,
        });
    }
    let expected = u64::from(count) * u64::from(rows) * u64::from(cols);
    let found = (bytes.len() - 16) as u64;
    if expected != found {
        return Err(MnistError::Size {
            path: path.into(),
            what: format!("images of {rows}x{cols}"),
            count,
            header: 16,
            expected,
            found,
        });
    }
    Ok(Images {
        rows: rows as usize,
        cols: cols as usize,
        pixels: bytes[16..].to_vec(),
    })
}

/// Reads an IDX1 label file (plain or `.gz`, by its name); labels must be 0-9.
pub fn read_labels(path: &Path) -> Result<Vec<u32>, MnistError> {
    let bytes = read_all(path)?;
    header(
        path,
        &bytes,
        8,
        LABELS_MAGIC,
        "IDX labels: unsigned bytes, 1 dimension",
    )?;
    let count = be_u32(&bytes, 4);
    let found = (bytes.len() - 8) as u64;
    if u64::from(count) != found {
        return Err(MnistError::Size {
            path: path.into(),
            what: "labels of 1 byte".into(),
            count,
            header: 8,
            expected: u64::from(count),
            found,
        });
    }
    bytes[8..]
        .iter()
        .enumerate()
        .map(|(i, &value)| match value {
            0..=9 => Ok(u32::from(value)),
            _ => Err(MnistError::Label {
                path: path.into(),
                offset: 8 + i,
                value,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_file_wins_over_gz_and_gz_is_decompressed() {
        let dir = tempfile::tempdir().unwrap();
        let labels = [0u8, 0, 8, 1, 0, 0, 0, 2, 4, 9];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &labels).unwrap();
        std::fs::write(dir.path().join("l.gz"), gz.finish().unwrap()).unwrap();
        let found = resolve(dir.path(), "l").unwrap();
        assert_eq!(read_labels(&found).unwrap(), vec![4, 9]);
        std::fs::write(dir.path().join("l"), [0, 0, 8, 1, 0, 0, 0, 1, 7]).unwrap();
        let found = resolve(dir.path(), "l").unwrap();
        assert_eq!(found, dir.path().join("l"));
        assert_eq!(read_labels(&found).unwrap(), vec![7]);
    }
}
