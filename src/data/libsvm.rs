//! Loader for LIBSVM sparse text (`label index:value index:value ...`, one sample a line),
//! mapped to token bags for a bag-of-words model. This module must never accept a line it
//! cannot read exactly: every problem names the file, the line and the column (1-based, in
//! bytes) of the offending token.
//!
//! Rules:
//! - `#` starts a comment that runs to the end of the line; blank lines are skipped.
//! - The label is an integer (`3`, `-1`, `+1`; a decimal with no fraction such as `2.0` is
//!   read as that integer). Classes are the distinct labels of the train and the test file
//!   together, numbered 0..k-1 in ascending numeric order (`-1, +1` become 0, 1); the
//!   original labels are the data set's class names.
//! - Indices are 1-based and strictly increasing within a line. Index `i` is token id
//!   `i - 1`; the vocabulary is the largest index in either file.
//! - Values: a positive whole number `n` (`3`, `3.0`) is a count, the token repeated `n`
//!   times (at most [`MAX_COUNT`]); any other positive value (a weight such as tf-idf
//!   `0.31`) gives the token once; zero and negative values give no token (the feature is
//!   absent). A sample may end with no tokens.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::dataset::{Dataset, DatasetError, InputKind, Samples};

/// The largest count one `index:value` may repeat its token.
pub const MAX_COUNT: u32 = 65_536;

/// A LIBSVM file that cannot be read. Every variant is fatal: nothing is loaded.
#[derive(Debug, Error)]
pub enum LibsvmError {
    /// The file is missing or could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A token that is not `index:value` with a whole index and a finite number, or a line
    /// that is not UTF-8.
    #[error(
        "{}:{line}:{column}: `{token}`: {problem}; a line is `label index:value ...`",
        path.display()
    )]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
        token: String,
        problem: String,
    },
    /// The label is not an integer.
    #[error(
        "{}:{line}:{column}: label `{token}` is not an integer class (such as 3, -1 or +1)",
        path.display()
    )]
    Label {
        path: PathBuf,
        line: usize,
        column: usize,
        token: String,
    },
    /// Index 0, or an index not above the one before it on the line.
    #[error(
        "{}:{line}:{column}: index {index} {problem}; indices are 1-based and strictly \
         increasing along a line",
        path.display()
    )]
    Index {
        path: PathBuf,
        line: usize,
        column: usize,
        index: u64,
        problem: String,
    },
    /// A count above [`MAX_COUNT`].
    #[error("{}:{line}:{column}: count {value} is above the limit of {MAX_COUNT}", path.display())]
    Count {
        path: PathBuf,
        line: usize,
        column: usize,
        value: f64,
    },
    /// The file holds more tokens than a split can index (2^32 - 1).
    #[error("{}:{line}: more than 2^32 - 1 tokens in one file", path.display())]
    TooManyTokens { path: PathBuf, line: usize },
    /// The training file has no samples.
    #[error("{}: no samples; the training file needs at least one line", path.display())]
    Empty { path: PathBuf },
    /// The samples do not form a data set (cannot happen for files that passed the checks
    /// above; kept so that no failure is swallowed).
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

/// One file as read: original labels and token bags.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    pub labels: Vec<i64>,
    /// Bag `i` is `ids[offsets[i]..offsets[i + 1]]`.
    pub offsets: Vec<u32>,
    pub ids: Vec<u32>,
    /// The largest index seen (0 when there is none).
    pub max_index: u32,
}

/// Loads a train and a test file (see the module documentation for the rules).
pub fn load(train: &Path, test: &Path) -> Result<Dataset, LibsvmError> {
    let tr = read_file(train)?;
    let te = read_file(test)?;
    if tr.labels.is_empty() {
        return Err(LibsvmError::Empty { path: train.into() });
    }
    let mut classes: Vec<i64> = tr.labels.iter().chain(&te.labels).copied().collect();
    classes.sort_unstable();
    classes.dedup();
    let relabel = |p: Parsed| {
        let labels = p
            .labels
            .iter()
            // Every label is in `classes`, so the search finds it.
            .map(|l| classes.binary_search(l).unwrap_or(0) as u32)
            .collect();
        Samples::tokens(p.offsets, p.ids, labels)
    };
    let vocabulary = tr.max_index.max(te.max_index).max(1) as usize;
    let name = train
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "libsvm".into());
    let class_names = classes.iter().map(|c| c.to_string()).collect();
    Ok(Dataset::new(
        name,
        InputKind::Tokens { vocabulary },
        class_names,
        relabel(tr),
        relabel(te),
    )?)
}

/// Reads one file into labels and token bags.
pub fn read_file(path: &Path) -> Result<Parsed, LibsvmError> {
    let io = |source| LibsvmError::Io {
        path: path.into(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    read(std::io::BufReader::new(file), path)
}

/// Reads LIBSVM text from `input`; `path` names it in errors.
pub fn read(mut input: impl BufRead, path: &Path) -> Result<Parsed, LibsvmError> {
    let mut out = Parsed {
        offsets: vec![0],
        ..Parsed::default()
    };
    let mut raw = Vec::new();
    let mut line_no = 0;
    loop {
        raw.clear();
        let n = input
            .read_until(b'\n', &mut raw)
            .map_err(|source| LibsvmError::Io {
                path: path.into(),
                source,
            })?;
        if n == 0 {
            return Ok(out);
        }
        line_no += 1;
        let at = Pos {
            path,
            line: line_no,
        };
        let line = std::str::from_utf8(&raw)
            .map_err(|e| at.malformed(e.valid_up_to(), "", "the line is not valid UTF-8".into()))?;
        let line = line.split('#').next().unwrap_or("");
        let mut tokens = tokens(line);
        let Some((col, label)) = tokens.next() else {
            continue;
        };
        out.labels
            .push(parse_label(label).ok_or_else(|| LibsvmError::Label {
                path: path.into(),
                line: line_no,
                column: col + 1,
                token: label.into(),
            })?);
        let mut prev = 0u64;
        for (col, token) in tokens {
            let (index, count) = parse_feature(&at, col, token, prev)?;
            prev = u64::from(index);
            out.max_index = out.max_index.max(index);
            out.ids
                .extend(std::iter::repeat_n(index - 1, count as usize));
        }
        let end = u32::try_from(out.ids.len()).map_err(|_| LibsvmError::TooManyTokens {
            path: path.into(),
            line: line_no,
        })?;
        out.offsets.push(end);
    }
}

/// Where in a file a token sits, for errors.
struct Pos<'a> {
    path: &'a Path,
    line: usize,
}

impl Pos<'_> {
    fn malformed(&self, col: usize, token: &str, problem: String) -> LibsvmError {
        LibsvmError::Malformed {
            path: self.path.into(),
            line: self.line,
            column: col + 1,
            token: token.into(),
            problem,
        }
    }
}

/// Whitespace-separated tokens with their 0-based byte columns.
fn tokens(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.split(|c: char| c.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
        .map(move |t| (t.as_ptr() as usize - line.as_ptr() as usize, t))
}

fn parse_label(token: &str) -> Option<i64> {
    if let Ok(v) = token.parse::<i64>() {
        return Some(v);
    }
    let v: f64 = token.parse().ok()?;
    // Beyond 2^53 a float no longer tells integers apart.
    (v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
}

/// Index and number of token repeats of one `index:value`.
fn parse_feature(at: &Pos, col: usize, token: &str, prev: u64) -> Result<(u32, u32), LibsvmError> {
    let Some((index_text, value_text)) = token.split_once(':') else {
        return Err(at.malformed(col, token, "expected index:value".into()));
    };
    let index: u64 = index_text.parse().map_err(|_| {
        at.malformed(
            col,
            token,
            format!("index `{index_text}` is not a whole number"),
        )
    })?;
    let index_err = |problem: String| LibsvmError::Index {
        path: at.path.into(),
        line: at.line,
        column: col + 1,
        index,
        problem,
    };
    if index == 0 {
        return Err(index_err("is not allowed".into()));
    }
    if index <= prev {
        return Err(index_err(format!("does not follow {prev}")));
    }
    let index = u32::try_from(index)
        .ok()
        .filter(|&i| i < u32::MAX)
        .ok_or_else(|| at.malformed(col, token, format!("index above {}", u32::MAX - 1)))?;
    let value: f64 = value_text
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| {
            at.malformed(
                col,
                token,
                format!("value `{value_text}` is not a finite number"),
            )
        })?;
    let count = if value <= 0.0 {
        0
    } else if value.fract() != 0.0 {
        1
    } else if value > f64::from(MAX_COUNT) {
        return Err(LibsvmError::Count {
            path: at.path.into(),
            line: at.line,
            column: col + 1,
            value,
        });
    } else {
        value as u32
    };
    Ok((index, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Parsed, LibsvmError> {
        read(text.as_bytes(), Path::new("t.svm"))
    }

    #[test]
    fn counts_weights_and_comments_follow_the_rules() {
        let p = parse("# header\n2 1:2 3:0.5 4:0 7:-1 # tail\n\n-1\n+1 2:1.0\n").unwrap();
        assert_eq!(p.labels, vec![2, -1, 1]);
        assert_eq!(p.offsets, vec![0, 3, 3, 4]);
        assert_eq!(p.ids, vec![0, 0, 2, 1]);
        assert_eq!(p.max_index, 7);
    }

    #[test]
    fn errors_name_line_and_column() {
        for (input, expected) in [
            ("1 1:1\n2 3:1 2:1\n", "t.svm:2:7: index 2 does not follow 3"),
            ("1 0:1\n", "t.svm:1:3: index 0 is not allowed"),
            (
                "1.5 1:1\n",
                "t.svm:1:1: label `1.5` is not an integer class",
            ),
            ("1 1:1 5\n", "t.svm:1:7: `5`: expected index:value"),
            (
                "1  2:x\n",
                "t.svm:1:4: `2:x`: value `x` is not a finite number",
            ),
            (
                "1 2:1e9\n",
                "t.svm:1:3: count 1000000000 is above the limit",
            ),
        ] {
            let e = parse(input).unwrap_err().to_string();
            assert!(e.contains(expected), "{input:?}: {e}");
        }
    }
}
