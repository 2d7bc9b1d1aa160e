//! Reading user-written TOML (scenarios, topologies) with errors a person can act on.
//!
//! Input is read in two phases: serde structs with `deny_unknown_fields`, then a `validate()`
//! of the caller's that lists every problem with its key path. This module turns key paths into
//! `file:line:column` using the document's spans, and applies `--set key=value` overrides before
//! deserialising. It must never panic on user input and never write anything.

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Where a problem was found: a place in the file, an override on the command line, or the file
/// as a whole when the key is absent from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    File { line: usize, column: usize },
    Override { text: String },
    Missing,
}

/// One thing wrong with an input, with the key path it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub origin: Origin,
    pub message: String,
}

/// Errors from reading an input file. All are fatal for the command that read it.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be read at all.
    #[error("{}: cannot read: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{}:{line}:{column}: TOML syntax error: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A `builtin:NAME` that does not exist.
    #[error("no built-in {what} `{name}`; built-ins: {available}")]
    UnknownBuiltin {
        what: &'static str,
        name: String,
        available: String,
    },
    /// A topology generator given on the command line has bad parameters.
    #[error("topology generator `{spec}`: {message}")]
    BadGenerator { spec: String, message: String },
    /// An override (`--set`, or a sweep's axis or fixed key) is malformed; `text` says which
    /// and where it came from.
    #[error("{text}: {message}")]
    BadOverride { text: String, message: String },
    /// The document parsed but some keys are wrong; every problem found is listed.
    #[error("{}", format_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn format_problems(path: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match &p.origin {
            Origin::File { line, column } => {
                out.push_str(&format!("{}:{line}:{column}: ", path.display()))
            }
            Origin::Override { text } => out.push_str(&format!("{text}: ")),
            Origin::Missing => out.push_str(&format!("{}: ", path.display())),
        }
        if p.key.is_empty() {
            out.push_str(&p.message);
        } else {
            out.push_str(&format!("key `{}`: {}", p.key, p.message));
        }
    }
    out
}

/// A `--set key=value` override: the value is read as a TOML value, or as a plain string when
/// it is not one (so `--set workload.model=mlp` needs no quotes).
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub key: String,
    pub value: toml::Value,
    /// `key=value` as the user wrote it.
    pub text: String,
    /// Where it came from, for messages: `--set`, or e.g. `sweep.toml:7: axis`.
    pub from: String,
}

/// The error for `text`, given to command-line option `flag`, with what is wrong.
pub fn bad_flag(flag: &str, text: &str, message: &str) -> InputError {
    InputError::BadOverride {
        text: format!("{flag} {text}"),
        message: message.to_string(),
    }
}

/// `KEY=REST` given to `flag`: the key, trimmed and checked to be a dotted path, and the rest;
/// `form` is what was expected, for the message.
pub fn key_and_rest<'a>(
    flag: &str,
    text: &'a str,
    form: &str,
) -> Result<(&'a str, &'a str), InputError> {
    let (key, rest) = text
        .split_once('=')
        .ok_or_else(|| bad_flag(flag, text, &format!("expected {form}")))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|s| s.trim().is_empty()) {
        let message = "the key must be a dotted path such as cluster.learners";
        return Err(bad_flag(flag, text, message));
    }
    Ok((key, rest))
}

impl Override {
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let form = "KEY=VALUE, e.g. cluster.learners=8";
        let (key, raw) = key_and_rest("--set", text, form)?;
        let raw = raw.trim();
        let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
            Ok(mut t) => t
                .remove("v")
                .unwrap_or(toml::Value::String(raw.to_string())),
            Err(_) => toml::Value::String(raw.to_string()),
        };
        Ok(Override {
            key: key.to_string(),
            value,
            text: text.to_string(),
            from: "--set".into(),
        })
    }

    /// An override built by a program (a sweep's axis value), described by `from` in messages.
    pub fn new(key: &str, value: toml::Value, from: impl Into<String>) -> Self {
        Override {
            key: key.to_string(),
            text: format!("{key}={value}"),
            value,
            from: from.into(),
        }
    }

    /// How messages name it: `--set cluster.learners=8`.
    pub fn described(&self) -> String {
        format!("{} {}", self.from, self.text)
    }
}

/// The text of the built-in document `name` from a table of (name, text), or an error listing
/// the ones there are.
pub fn builtin_text(
    table: &[(&str, &str)],
    what: &'static str,
    name: &str,
) -> Result<String, InputError> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.to_string())
        .ok_or_else(|| InputError::UnknownBuiltin {
            what,
            name: name.into(),
            available: table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        })
}

/// A TOML file as read from disk, kept for locating keys in error messages.
pub struct Source {
    path: PathBuf,
    text: String,
    doc: toml_edit::Document<String>,
    overrides: Vec<Override>,
}

impl Source {
    pub fn read(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path).map_err(|cause| InputError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::from_text(path, text)
    }

    /// `path` is only used to name the document in messages.
    pub fn from_text(path: &Path, text: String) -> Result<Self, InputError> {
        let doc = toml_edit::Document::parse(text.clone()).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let (line, column) = line_column(&text, span.start);
            InputError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: syntax_message(&text, e.message().trim(), span),
            }
        })?;
        Ok(Source {
            path: path.to_path_buf(),
            text,
            doc,
            overrides: vec![],
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed document, with spans, for callers that walk it themselves.
    pub fn document(&self) -> &toml_edit::Document<String> {
        &self.doc
    }

    /// The text as read.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line and column of a byte offset into the text.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        line_column(&self.text, offset)
    }

    /// Deserialises the document with `overrides` applied, reporting the first serde error with
    /// its key path and place.
    pub fn deserialize<T: DeserializeOwned>(
        &mut self,
        overrides: &[Override],
    ) -> Result<T, InputError> {
        self.overrides = overrides.to_vec();
        let mut table: toml::Table =
            toml::from_str(&self.text).map_err(|e| InputError::Syntax {
                path: self.path.clone(),
                line: 1,
                column: 1,
                message: e.message().to_string(),
            })?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = key_path(e.path());
            let message = plain_expectation(e.into_inner().message());
            self.invalid(vec![(key, message)])
        })
    }

    /// Where `key` (a dotted path, `[i]` for array items) came from: an override naming it or a
    /// parent of it, else the deepest part of it present in the file.
    pub fn origin(&self, key: &str) -> Origin {
        if let Some(o) = self.overrides.iter().rev().find(|o| {
            key == o.key
                || key.starts_with(&format!("{}.", o.key))
                || o.key.starts_with(&format!("{key}."))
        }) {
            return Origin::Override {
                text: o.described(),
            };
        }
        match self.span_of(key) {
            Some(offset) => {
                let (line, column) = line_column(&self.text, offset);
                Origin::File { line, column }
            }
            None => Origin::Missing,
        }
    }

    /// Turns `(key, message)` pairs from a validation pass into one located error.
    pub fn invalid(&self, problems: Vec<(String, String)>) -> InputError {
        InputError::Invalid {
            path: self.path.clone(),
            problems: problems
                .into_iter()
                .map(|(key, message)| Problem {
                    origin: self.origin(&key),
                    key,
                    message,
                })
                .collect(),
        }
    }

    /// Byte offset of the deepest part of `key` present in the file (the key itself if it is
    /// there, else its nearest written parent).
    fn span_of(&self, key: &str) -> Option<usize> {
        let mut best = None;
        let mut item: Option<&toml_edit::Item> = None;
        let mut table: Option<&dyn toml_edit::TableLike> = Some(self.doc.as_table());
        for segment in split_key(key) {
            match segment {
                Segment::Key(k) => {
                    let Some((k_ref, it)) = table.take().and_then(|t| t.get_key_value(k)) else {
                        return best;
                    };
                    best = k_ref.span().map(|s| s.start).or(best);
                    item = Some(it);
                    table = it.as_table_like();
                }
                Segment::Index(i) => match item.take() {
                    Some(toml_edit::Item::ArrayOfTables(a)) => {
                        let Some(t) = a.get(i) else { return best };
                        best = t.span().map(|s| s.start).or(best);
                        table = Some(t);
                    }
                    Some(toml_edit::Item::Value(toml_edit::Value::Array(a))) => {
                        let Some(v) = a.get(i) else { return best };
                        best = v.span().map(|s| s.start).or(best);
                        table = match v {
                            toml_edit::Value::InlineTable(t) => Some(t),
                            _ => None,
                        };
                    }
                    _ => return best,
                },
            }
        }
        best
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[2].c` into keys and indices.
fn split_key(key: &str) -> Vec<Segment<'_>> {
    let mut out = vec![];
    for part in key.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            out.push(Segment::Key(&rest[..open]));
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    out.push(Segment::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Segment::Key(rest));
        }
    }
    out
}

fn key_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            serde_path_to_error::Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    out
}

fn apply_override(table: &mut toml::Table, o: &Override) -> Result<(), InputError> {
    let parts: Vec<&str> = o.key.split('.').map(str::trim).collect();
    let (last, parents) = parts.split_last().ok_or_else(|| InputError::BadOverride {
        text: o.described(),
        message: "empty key".into(),
    })?;
    let mut current = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(InputError::BadOverride {
                    text: o.described(),
                    message: format!("`{}` is not a table", parts[..=depth].join(".")),
                });
            }
        };
    }
    current.insert(last.to_string(), o.value.clone());
    Ok(())
}

/// 1-based line and column (in characters) of a byte offset.
/// The TOML parser's `message` for the error at `span` of `text`, with what it leaves out: the
/// key a duplicate or an overflowing integer belongs to, and what is allowed.
fn syntax_message(text: &str, message: &str, span: std::ops::Range<usize>) -> String {
    let line_start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = &text[line_start..line_end];
    let table = table_before(text, line_start);
    let dotted = |key: &str| match table.as_deref() {
        Some(t) if !line.trim_start().starts_with('[') => format!("{t}.{key}"),
        _ => key.to_string(),
    };
    if message == "duplicate key" {
        let key = text
            .get(span.clone())
            .map(|k| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty())
            .or_else(|| line_key(line).map(str::to_string));
        return match key {
            Some(key) => {
                let first = first_line_of(text, line_start, &key)
                    .map(|l| format!(" (first given at line {l})"))
                    .unwrap_or_default();
                format!(
                    "duplicate key `{}`{first}: each key may be given once in a table; \
                     keep one of them",
                    dotted(&key)
                )
            }
            None => "duplicate key: each key may be given once in a table".to_string(),
        };
    }
    if message.contains("overflow") {
        let range = "TOML integers are 64-bit, from -9223372036854775808 to 9223372036854775807";
        return match line_key(line) {
            Some(key) => format!("key `{}`: integer too large: {range}", dotted(key)),
            None => format!("integer too large: {range}"),
        };
    }
    message.to_string()
}

/// The `[table]` or `[[array]]` header in force at byte `offset` of `text`, if any.
fn table_before(text: &str, offset: usize) -> Option<String> {
    text[..offset].lines().rev().find_map(|l| {
        let l = l.trim();
        let inner = l.strip_prefix("[[").and_then(|r| r.split_once("]]"));
        let inner = inner.or_else(|| l.strip_prefix('[').and_then(|r| r.split_once(']')));
        inner.map(|(name, _)| name.trim().to_string())
    })
}

/// The key of a `key = value` line, if the line is one.
fn line_key(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[') && !key.starts_with('#')).then_some(key)
}

/// The line number of the first `key = ...` line of the table that holds byte `offset`, or of
/// the first `[key]` header when `key` is a table.
fn first_line_of(text: &str, offset: usize, key: &str) -> Option<usize> {
    let table = table_before(text, offset);
    let mut current: Option<String> = None;
    for (i, l) in text[..offset].lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            current = table_before(l, l.len());
            if current.as_deref() == Some(key) {
                return Some(i + 1);
            }
        } else if current == table && line_key(t) == Some(key) {
            return Some(i + 1);
        }
    }
    None
}

/// serde's message with its Rust type names (`expected usize`) said as the values allowed, and a
/// number too large to be a TOML integer (read by `--set` as text) said as such.
fn plain_expectation(message: &str) -> String {
    const TYPES: [(&str, &str); 8] = [
        ("usize", "a whole number from 0 to 18446744073709551615"),
        ("u64", "a whole number from 0 to 18446744073709551615"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u16", "a whole number from 0 to 65535"),
        ("u8", "a whole number from 0 to 255"),
        (
            "i64",
            "a whole number from -9223372036854775808 to 9223372036854775807",
        ),
        ("i32", "a whole number from -2147483648 to 2147483647"),
        ("f64", "a number"),
    ];
    let Some((head, ty)) = message.rsplit_once(", expected ") else {
        return message.to_string();
    };
    let Some((_, allowed)) = TYPES.iter().find(|(t, _)| *t == ty) else {
        return message.to_string();
    };
    let digits = head
        .strip_prefix("invalid type: string \"")
        .and_then(|r| r.strip_suffix('"'))
        .filter(|d| {
            let d = d.strip_prefix('-').unwrap_or(d);
            !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
        });
    match digits {
        Some(d) => format!("integer `{d}` is too large; expected {allowed}"),
        None => format!("{head}, expected {allowed}"),
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[allow(dead_code)]
        name: String,
        cluster: Cluster,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Cluster {
        learners: u32,
    }

    const TEXT: &str = "name = \"x\"\n\n[cluster]\nlearners = 4\n";

    fn source() -> Source {
        Source::from_text(Path::new("s.toml"), TEXT.to_string()).unwrap()
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let text = TEXT.replace("learners = 4", "learners = \"four\"");
        let mut s = Source::from_text(Path::new("s.toml"), text).unwrap();
        let err = s.deserialize::<Doc>(&[]).unwrap_err().to_string();
        assert!(
            err.starts_with("s.toml:4:1: key `cluster.learners`: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = TEXT.replace("learners = 4", "learners = 4\nlerners = 5");
        let mut s = Source::from_text(Path::new("s.toml"), text).unwrap();
        let err = s.deserialize::<Doc>(&[]).unwrap_err().to_string();
        assert!(err.contains("s.toml:5:1"), "{err}");
        assert!(err.contains("unknown field `lerners`"), "{err}");
    }

    #[test]
    fn override_replaces_value_and_is_blamed() {
        let mut s = source();
        let o = Override::parse("cluster.learners=9").unwrap();
        let doc: Doc = s.deserialize(&[o]).unwrap();
        assert_eq!(doc.cluster.learners, 9);
        let o = Override::parse("cluster.learners=lots").unwrap();
        let err = s.deserialize::<Doc>(&[o]).unwrap_err().to_string();
        assert!(
            err.starts_with("--set cluster.learners=lots: key `cluster.learners`"),
            "{err}"
        );
    }

    #[test]
    fn syntax_error_has_line() {
        let err = Source::from_text(Path::new("s.toml"), "a = \n[b\n".into())
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("s.toml:2:"), "{err}");
        assert!(err.contains("unclosed table"), "{err}");
    }

    #[test]
    fn missing_key_is_placed_at_its_nearest_parent() {
        let s = source();
        assert_eq!(
            s.origin("cluster.shards"),
            Origin::File { line: 3, column: 2 }
        );
        assert_eq!(
            s.origin("cluster.learners"),
            Origin::File { line: 4, column: 1 }
        );
        assert_eq!(s.origin("nowhere.at_all"), Origin::Missing);
    }

    #[test]
    fn override_needs_equals() {
        assert!(Override::parse("cluster.learners").is_err());
        assert_eq!(
            Override::parse("workload.model=mlp").unwrap().value,
            toml::Value::String("mlp".into())
        );
    }
}
