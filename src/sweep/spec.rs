//! What a sweep is: read from a sweep file or built from `run --sweep KEY=V1,V2`, checked, and
//! expanded into points. Never runs anything and never writes.
//!
//! A sweep file:
//!
//! ```toml
//! name = "cifar10-p-gamma"          # optional; defaults to the file's stem
//! scenario = "paper-cifar10.toml"   # relative to this file, or builtin:NAME
//!
//! [set]                             # keys fixed for every point
//! workload.gradients = "real"
//!
//! [axes]                            # each array is an axis; points are their product
//! cluster.learners = [2, 4, 8, 16]
//! algorithm.learning_rate = [0.1, 0.005]
//! seed = [1, 2, 3]
//!
//! [report]
//! target_accuracy = 0.3             # optional; test accuracy the speedup figure aims at
//! ```
//!
//! A top-level `backend = "real"` runs every point with the real backend (threads on this
//! host, one point at a time, times measured) instead of the simulator.

use crate::input::{self, InputError, Override, Source};
use std::path::{Path, PathBuf};

/// What runs a sweep's points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The simulator: deterministic, several points at once.
    #[default]
    Simulator,
    /// The real backend on this host's threads: one point at a time, since each measures.
    Real,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Simulator => "simulator",
            Backend::Real => "real",
        }
    }
}

/// One axis: a scenario key and the values it takes, in the order written.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<toml::Value>,
    /// Where it was written, for messages (`sweep.toml:9` or `--sweep`).
    pub from: String,
}

/// One point of the product: its index in the sweep's order, its axis values and the name of
/// its result directory.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub index: usize,
    pub values: Vec<(String, toml::Value)>,
    pub name: String,
}

/// `--shard I/N`: this process runs the points whose index is I-1 modulo N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let bad = |message: &str| input::bad_flag("--shard", text, message);
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| bad("expected I/N, e.g. 2/8 for the second of eight shards"))?;
        let i: usize = i
            .trim()
            .parse()
            .map_err(|_| bad("I must be a whole number"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| bad("N must be a whole number"))?;
        if n == 0 || i == 0 || i > n {
            return Err(bad("need 1 <= I <= N"));
        }
        Ok(Shard { index: i, count: n })
    }

    pub fn owns(&self, point: &Point) -> bool {
        point.index % self.count == self.index - 1
    }
}

/// A checked sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepSpec {
    pub name: String,
    /// The sweep file, or None for a sweep given on the command line.
    pub path: Option<PathBuf>,
    /// The base scenario as `scenario::load` takes it (a path or `builtin:NAME`).
    pub scenario: String,
    /// Overrides applied to every point before its axis values.
    pub fixed: Vec<Override>,
    pub axes: Vec<Axis>,
    /// Test accuracy (a fraction) the report's time-to-accuracy figures aim at.
    pub target_accuracy: Option<f64>,
    pub backend: Backend,
}

impl SweepSpec {
    /// Reads and checks a sweep file.
    pub fn read(path: &Path) -> Result<Self, InputError> {
        let source = Source::read(path)?;
        let file_name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let doc = source.document();
        let mut problems: Vec<(String, String)> = vec![];
        let at = |item: &toml_edit::Item| {
            let line = item.span().map_or(0, |s| source.line_column(s.start).0);
            format!("{file_name}:{line}")
        };
        let mut name = None;
        let mut scenario = None;
        let mut fixed = vec![];
        let mut axes = vec![];
        let mut target_accuracy = None;
        let mut backend = Backend::Simulator;
        for (key, item) in doc.as_table().iter() {
            match key {
                "name" => match item.as_str() {
                    Some(s) if !s.trim().is_empty() => name = Some(s.to_string()),
                    _ => problems.push(("name".into(), "must be a non-empty string".into())),
                },
                "scenario" => match item.as_str() {
                    Some(s) if s.starts_with("builtin:") => scenario = Some(s.to_string()),
                    Some(s) => {
                        let base = path.parent().unwrap_or(Path::new(""));
                        scenario = Some(base.join(s).to_string_lossy().into_owned());
                    }
                    None => problems.push((
                        "scenario".into(),
                        "must be a string: a scenario file relative to the sweep file, or builtin:NAME".into(),
                    )),
                },
                "backend" => match item.as_str() {
                    Some("simulator") => backend = Backend::Simulator,
                    Some("real") => backend = Backend::Real,
                    _ => problems.push((
                        "backend".into(),
                        format!(
                            "must be \"simulator\" (the default) or \"real\" (each point run \
                             for real on this host's threads), got {}",
                            item.to_string().trim()
                        ),
                    )),
                },
                "set" | "axes" => {
                    let Some(table) = item.as_table_like() else {
                        problems.push((key.into(), "must be a table of scenario keys".into()));
                        continue;
                    };
                    let mut leaves = vec![];
                    flatten(table, "", &mut leaves);
                    for (k, leaf) in leaves {
                        let Some(value) = to_toml(leaf) else {
                            problems.push((format!("{key}.{k}"), "not a TOML value".into()));
                            continue;
                        };
                        if key == "set" {
                            fixed.push(Override::new(&k, value, format!("{} [set]", at(leaf))));
                            continue;
                        }
                        match value {
                            toml::Value::Array(values) if !values.is_empty() => {
                                if values.iter().any(|v| v.is_table() || v.is_array()) {
                                    problems.push((
                                        format!("axes.{k}"),
                                        "axis values must be numbers, strings or booleans".into(),
                                    ));
                                }
                                axes.push(Axis {
                                    key: k,
                                    values,
                                    from: at(leaf),
                                });
                            }
                            _ => problems.push((
                                format!("axes.{k}"),
                                "an axis must be a non-empty array of values, e.g. [2, 4, 8]".into(),
                            )),
                        }
                    }
                }
                "report" => {
                    let Some(table) = item.as_table_like() else {
                        problems.push(("report".into(), "must be a table".into()));
                        continue;
                    };
                    for (k, v) in table.iter() {
                        match (k, v.as_float().or(v.as_integer().map(|i| i as f64))) {
                            ("target_accuracy", Some(t)) if t > 0.0 && t <= 1.0 => {
                                target_accuracy = Some(t)
                            }
                            ("target_accuracy", _) => problems.push((
                                "report.target_accuracy".into(),
                                "must be a fraction in (0, 1], e.g. 0.3 for 30 %".into(),
                            )),
                            _ => problems.push((
                                format!("report.{k}"),
                                "unknown key; allowed: target_accuracy".into(),
                            )),
                        }
                    }
                }
                _ => problems.push((
                    key.into(),
                    "unknown key; allowed: name, scenario, backend, [set], [axes], [report]".into(),
                )),
            }
        }
        if scenario.is_none() && !problems.iter().any(|(k, _)| k == "scenario") {
            problems.push((
                "scenario".into(),
                "missing: the base scenario, e.g. scenario = \"paper-cifar10.toml\"".into(),
            ));
        }
        check_axes(&axes, &mut problems);
        if !problems.is_empty() {
            return Err(source.invalid(problems));
        }
        let name = name.unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "sweep".into(), |s| s.to_string_lossy().into_owned())
        });
        Ok(SweepSpec {
            name,
            path: Some(path.to_path_buf()),
            scenario: scenario.unwrap_or_default(),
            fixed,
            axes,
            target_accuracy,
            backend,
        })
    }

    /// A sweep from the command line: `run SCENARIO --set K=V --sweep K=V1,V2,...`.
    pub fn from_command_line(
        scenario: &str,
        name: &str,
        fixed: Vec<Override>,
        sweeps: &[String],
    ) -> Result<Self, InputError> {
        Self::from_lists(scenario, name, fixed, sweeps, "--sweep")
    }

    /// As [`SweepSpec::from_command_line`], the lists given with `flag` (named in messages).
    pub fn from_lists(
        scenario: &str,
        name: &str,
        fixed: Vec<Override>,
        sweeps: &[String],
        flag: &str,
    ) -> Result<Self, InputError> {
        let mut axes = vec![];
        for text in sweeps {
            let form = "KEY=V1,V2,..., e.g. cluster.learners=2,4,8";
            let (key, list) = input::key_and_rest(flag, text, form)?;
            let values: Vec<toml::Value> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|raw| Override::parse(&format!("{key}={raw}")).map(|o| o.value))
                .collect::<Result<_, _>>()?;
            if values.is_empty() {
                return Err(input::bad_flag(flag, text, "give at least one value"));
            }
            axes.push(Axis {
                key: key.to_string(),
                values,
                from: flag.into(),
            });
        }
        let mut problems = vec![];
        check_axes(&axes, &mut problems);
        if let Some((key, message)) = problems.into_iter().next() {
            return Err(InputError::BadOverride {
                text: format!("{flag} {key}"),
                message,
            });
        }
        Ok(SweepSpec {
            name: name.to_string(),
            path: None,
            scenario: scenario.to_string(),
            fixed,
            axes,
            target_accuracy: None,
            backend: Backend::Simulator,
        })
    }

    /// A key is either fixed or swept: an axis whose key (or a key above or below it) is
    /// also fixed, or swept twice, is an error naming both places.
    pub fn check_keys(&self) -> Result<(), InputError> {
        let overlaps = |a: &str, b: &str| {
            a == b || a.starts_with(&format!("{b}.")) || b.starts_with(&format!("{a}."))
        };
        for (i, axis) in self.axes.iter().enumerate() {
            if let Some(o) = self.fixed.iter().find(|o| overlaps(&o.key, &axis.key)) {
                return Err(InputError::BadOverride {
                    text: format!("{}: axis `{}`", axis.from, axis.key),
                    message: format!(
                        "also fixed by {} (`{}`); a key is either fixed or swept",
                        o.from, o.text
                    ),
                });
            }
            if let Some(other) = self.axes[..i].iter().find(|a| overlaps(&a.key, &axis.key)) {
                return Err(InputError::BadOverride {
                    text: format!("{}: axis `{}`", axis.from, axis.key),
                    message: format!("also swept by {} (`{}`)", other.from, other.key),
                });
            }
        }
        Ok(())
    }

    /// The cartesian product of the axes, the first axis varying slowest.
    pub fn points(&self) -> Vec<Point> {
        let total: usize = self.axes.iter().map(|a| a.values.len()).product();
        let short = short_keys(&self.axes);
        (0..total)
            .map(|index| {
                let mut rest = index;
                let mut values = vec![None; self.axes.len()];
                for (i, axis) in self.axes.iter().enumerate().rev() {
                    values[i] = Some((
                        axis.key.clone(),
                        axis.values[rest % axis.values.len()].clone(),
                    ));
                    rest /= axis.values.len();
                }
                let values: Vec<(String, toml::Value)> = values.into_iter().flatten().collect();
                let name = if values.is_empty() {
                    "base".to_string()
                } else {
                    values
                        .iter()
                        .zip(&short)
                        .map(|((_, v), k)| format!("{k}={}", value_text(v)))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                Point {
                    index,
                    values,
                    name: safe_name(&name),
                }
            })
            .collect()
    }

    /// The overrides that make `point`'s scenario: the fixed ones, then its axis values.
    pub fn overrides(&self, point: &Point) -> Vec<Override> {
        let mut all = self.fixed.clone();
        for (key, value) in &point.values {
            let from = self
                .axes
                .iter()
                .find(|a| &a.key == key)
                .map_or("axis".to_string(), |a| format!("{} axis", a.from));
            all.push(Override::new(key, value.clone(), from));
        }
        all
    }
}

/// Two axes on one key would make points that cannot be told apart.
fn check_axes(axes: &[Axis], problems: &mut Vec<(String, String)>) {
    for (i, a) in axes.iter().enumerate() {
        if axes[..i].iter().any(|b| b.key == a.key) {
            problems.push((format!("axes.{}", a.key), "this axis is given twice".into()));
        }
        for (j, v) in a.values.iter().enumerate() {
            if a.values[..j].contains(v) {
                problems.push((
                    format!("axes.{}", a.key),
                    format!("the value {v} is given twice"),
                ));
            }
        }
    }
}

/// Each axis is named in directory names by its last key segment, or its whole key when two
/// axes end alike.
fn short_keys(axes: &[Axis]) -> Vec<String> {
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    axes.iter()
        .map(|a| {
            let s = last(&a.key);
            if axes.iter().filter(|b| last(&b.key) == s).count() > 1 {
                a.key.clone()
            } else {
                s
            }
        })
        .collect()
}

/// A value as it appears in a point's name: strings bare, numbers as TOML writes them.
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) if *f != 0.0 && (f.abs() >= 1e6 || f.abs() < 1e-4) => {
            format!("{f:e}")
        }
        toml::Value::Float(f) => format!("{f}"),
        other => other.to_string(),
    }
}

/// Keeps a directory name portable: letters, digits and `._+-=,` pass, the rest become `_`.
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-=,".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn flatten<'a>(
    table: &'a dyn toml_edit::TableLike,
    prefix: &str,
    out: &mut Vec<(String, &'a toml_edit::Item)>,
) {
    for (k, item) in table.iter() {
        let key = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        match item.as_table_like() {
            // An inline table is a value (e.g. a jitter spec) only under [set]; dotted keys and
            // [axes.cluster] sub-tables are walked.
            Some(t) if !item.is_inline_table() => flatten(t, &key, out),
            _ => out.push((key, item)),
        }
    }
}

fn to_toml(item: &toml_edit::Item) -> Option<toml::Value> {
    let text = item.as_value()?.to_string();
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()?
        .remove("v")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("s.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn product_orders_first_axis_slowest_and_names_points() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "scenario = \"builtin:quick\"\n[set]\nworkload.epochs = 2\n[axes]\ncluster.learners = [2, 4]\nalgorithm.learning_rate = [0.1, 0.005]\nseed = [1]\n",
        );
        let s = SweepSpec::read(&p).unwrap();
        assert_eq!(s.name, "s");
        assert_eq!(s.fixed.len(), 1);
        let names: Vec<String> = s.points().into_iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "learners=2,learning_rate=0.1,seed=1",
                "learners=2,learning_rate=0.005,seed=1",
                "learners=4,learning_rate=0.1,seed=1",
                "learners=4,learning_rate=0.005,seed=1",
            ]
        );
        let o = s.overrides(&s.points()[3]);
        assert_eq!(o.len(), 4);
        assert_eq!(o[1].key, "cluster.learners");
        assert_eq!(o[1].value, toml::Value::Integer(4));
        assert!(o[1].from.starts_with("s.toml:5"), "{}", o[1].from);
    }

    #[test]
    fn shards_partition_the_points() {
        let s = SweepSpec::from_command_line(
            "builtin:quick",
            "q",
            vec![],
            &["cluster.learners=1,2,3".into(), "seed=1,2,3,4,5".into()],
        )
        .unwrap();
        let points = s.points();
        assert_eq!(points.len(), 15);
        let n = 4;
        let mut seen = vec![0; points.len()];
        for i in 1..=n {
            let shard = Shard::parse(&format!("{i}/{n}")).unwrap();
            for p in points.iter().filter(|p| shard.owns(p)) {
                seen[p.index] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1));
        for bad in ["0/2", "3/2", "1", "a/b", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_sweep_files_name_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "scenario = \"builtin:quick\"\n[axes]\ncluster.learners = 4\nseed = [1, 1]\n[report]\ncolour = 1\n",
        );
        let e = SweepSpec::read(&p).unwrap_err().to_string();
        assert!(e.contains("s.toml:3:9: key `axes.cluster.learners`"), "{e}");
        assert!(e.contains("given twice"), "{e}");
        assert!(e.contains("report.colour"), "{e}");
        let p = write(dir.path(), "[axes]\nseed = [1]\n");
        let e = SweepSpec::read(&p).unwrap_err().to_string();
        assert!(e.contains("key `scenario`: missing"), "{e}");
        let e = SweepSpec::from_command_line("x", "x", vec![], &["cluster.learners".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--sweep cluster.learners"), "{e}");
    }

    #[test]
    fn no_axes_is_one_point() {
        let s = SweepSpec::from_command_line("builtin:quick", "q", vec![], &[]).unwrap();
        let points = s.points();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].name, "base");
    }
}
