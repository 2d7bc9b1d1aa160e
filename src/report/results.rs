//! The finished points of a sweep as a report reads them: gathered from one or more sweep
//! directories, named by series, with the table's rows and the time each point took to reach
//! the target accuracy. Reads results only; draws and writes nothing.

use super::curve;
use super::figures::FigureError;
use super::summary::{BreakdownSecs, Summary};
use crate::outcome::CurvePoint;
use crate::report::record::{POINT_FILE, POINTS_DIR, PointRecord, SWEEP_FILE, SweepRecord};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Errors reading sweep results or writing the report. Fatal for the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error(
        "{} and {} describe different sweeps ({what}); give the directories of one sweep's shards",
        first.display(),
        other.display()
    )]
    Mismatch {
        first: PathBuf,
        other: PathBuf,
        what: String,
    },
    #[error("no finished point in {dirs}")]
    Empty { dirs: String },
    #[error(transparent)]
    Figure(#[from] FigureError),
    #[error("cannot write the report into {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The result of one finished point.
#[derive(Clone, Debug)]
pub struct PointResult {
    pub record: PointRecord,
    pub summary: Summary,
    pub curve: Vec<CurvePoint>,
}

/// Everything a report is drawn from.
#[derive(Clone, Debug)]
pub struct SweepResults {
    pub sweep: SweepRecord,
    /// Finished points in sweep order.
    pub points: Vec<PointResult>,
    /// Names of the sweep's points with no result in any directory.
    pub missing: Vec<String>,
    /// The machine drawn when the sweep started (SVG, PNG), if a directory has it.
    pub topology: Option<(String, Vec<u8>)>,
}

impl SweepResults {
    /// How the points' seconds were taken: "measured" where every point ran on the real
    /// backend, "simulated" otherwise.
    pub fn clock(&self) -> &'static str {
        let real = |p: &PointResult| p.summary.backend == "real";
        if !self.points.is_empty() && self.points.iter().all(real) {
            "measured"
        } else {
            "simulated"
        }
    }
}

pub const TOPOLOGY_SVG: &str = "topology.svg";
pub const TOPOLOGY_PNG: &str = "topology.png";

fn read(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|e| ReportError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Reads the sweep directories `dirs` (one, or the shards of one sweep).
pub fn gather(dirs: &[PathBuf]) -> Result<SweepResults, ReportError> {
    let mut sweep: Option<(PathBuf, SweepRecord)> = None;
    for dir in dirs {
        let path = dir.join(SWEEP_FILE);
        let record: SweepRecord =
            serde_json::from_str(&read(&path)?).map_err(|e| ReportError::Read {
                path: path.clone(),
                message: format!("not a sweep record: {e}"),
            })?;
        match &sweep {
            None => sweep = Some((path, record)),
            Some((first, r)) => {
                let what = if r.name != record.name {
                    format!("names `{}` and `{}`", r.name, record.name)
                } else if r.points != record.points {
                    "their points differ".into()
                } else if r != &record {
                    "their base scenarios or settings differ".into()
                } else {
                    continue;
                };
                return Err(ReportError::Mismatch {
                    first: first.clone(),
                    other: path,
                    what,
                });
            }
        }
    }
    let Some((_, sweep)) = sweep else {
        return Err(ReportError::Empty {
            dirs: "(no directory given)".into(),
        });
    };
    let mut points = vec![];
    let mut missing = vec![];
    for rec in &sweep.points {
        let found = dirs.iter().find_map(|d| {
            let dir = d.join(POINTS_DIR).join(&rec.name);
            let same = std::fs::read_to_string(dir.join(POINT_FILE))
                .ok()
                .and_then(|t| serde_json::from_str::<PointRecord>(&t).ok())
                .is_some_and(|r| r == *rec);
            (same && dir.join("summary.json").is_file()).then_some(dir)
        });
        let Some(dir) = found else {
            missing.push(rec.name.clone());
            continue;
        };
        let path = dir.join("summary.json");
        let summary: Summary =
            serde_json::from_str(&read(&path)?).map_err(|e| ReportError::Read {
                path: path.clone(),
                message: format!("not a run summary: {e}"),
            })?;
        let curve_path = dir.join("curve.csv");
        let curve = if curve_path.is_file() {
            curve::from_csv(&read(&curve_path)?).map_err(|message| ReportError::Read {
                path: curve_path,
                message,
            })?
        } else {
            vec![]
        };
        points.push(PointResult {
            record: rec.clone(),
            summary,
            curve,
        });
    }
    if points.is_empty() {
        return Err(ReportError::Empty {
            dirs: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let topology = dirs.iter().find_map(|d| {
        let svg = std::fs::read_to_string(d.join(TOPOLOGY_SVG)).ok()?;
        let png = std::fs::read(d.join(TOPOLOGY_PNG)).ok()?;
        Some((svg, png))
    });
    Ok(SweepResults {
        sweep,
        points,
        missing,
        topology,
    })
}

/// Axes that are not drawn as lines: the learners (panels, x axes) and the seed (bands).
pub const P_KEY: &str = "cluster.learners";
pub const SEED_KEY: &str = "seed";

/// How an axis is named in legends.
fn axis_label(key: &str) -> String {
    match key {
        "algorithm.learning_rate" => "γ".into(),
        "algorithm.kind" => String::new(),
        _ => key.rsplit('.').next().unwrap_or(key).to_string(),
    }
}

/// An axis value as legends and tables show it: strings bare.
pub fn value_label(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The line a point belongs to: its values on the axes other than p and the seed.
pub fn series_of(rec: &PointRecord) -> String {
    series_except(rec, None)
}

/// As [`series_of`], leaving out the axis `except` too (the abscissa of a figure over it).
pub fn series_except(rec: &PointRecord, except: Option<&str>) -> String {
    rec.values
        .iter()
        .filter(|v| v.key != P_KEY && v.key != SEED_KEY && Some(v.key.as_str()) != except)
        .map(|v| {
            let k = axis_label(&v.key);
            if k.is_empty() {
                value_label(&v.value)
            } else {
                format!("{k} = {}", value_label(&v.value))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Simulated time at which `curve` first reaches `target` test accuracy, interpolated between
/// evaluations; None if it never does.
pub fn time_to_accuracy(curve: &[CurvePoint], target: f64) -> Option<f64> {
    let mut prev: Option<&CurvePoint> = None;
    for c in curve {
        if c.test_accuracy >= target {
            return Some(match prev {
                Some(a) if c.test_accuracy > a.test_accuracy => {
                    let f = (target - a.test_accuracy) / (c.test_accuracy - a.test_accuracy);
                    a.sim_time_s + f * (c.sim_time_s - a.sim_time_s)
                }
                _ => c.sim_time_s,
            });
        }
        prev = Some(c);
    }
    None
}

/// The sweep's target, or half-way from the mean starting test accuracy to the best any point
/// reached, rounded to 0.1 %: a level the better settings reach and the others show how late
/// (or whether) they do.
pub fn target_accuracy(results: &SweepResults) -> Option<f64> {
    if let Some(t) = results.sweep.target_accuracy {
        return Some(t);
    }
    let curves: Vec<&Vec<CurvePoint>> = results
        .points
        .iter()
        .map(|p| &p.curve)
        .filter(|c| !c.is_empty())
        .collect();
    if curves.is_empty() {
        return None;
    }
    let start = mean(curves.iter().map(|c| c[0].test_accuracy));
    let best = curves
        .iter()
        .flat_map(|c| c.iter().map(|p| p.test_accuracy))
        .filter(|a| a.is_finite())
        .fold(0.0, f64::max);
    let t = ((start + best) / 2.0 * 1000.0).round() / 1000.0;
    (t > start).then_some(t)
}

/// One row of the report's table and of `points.csv`.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub point: String,
    pub series: String,
    pub learners: usize,
    pub seed: u64,
    pub epoch_time_s: f64,
    pub breakdown: BreakdownSecs,
    pub communication_share: f64,
    pub staleness_mean: f64,
    pub staleness_max: u64,
    pub final_train_accuracy: Option<f64>,
    pub final_test_accuracy: Option<f64>,
    pub time_to_target_s: Option<f64>,
    pub diverged: bool,
}

/// A measured column of the points table, written alike to points.csv and index.html.
pub struct Measure {
    /// points.csv's header; the value there is written in full.
    pub csv: &'static str,
    /// index.html's header; the value there is scaled and rounded.
    pub html: &'static str,
    pub value: fn(&Row) -> f64,
    pub html_scale: f64,
    pub html_decimals: usize,
}

/// The points table's measured columns, in order, from the epoch time to the mean staleness.
pub const MEASURES: [Measure; 9] = [
    secs("epoch_time_s", "epoch (s)", |r| r.epoch_time_s),
    secs("compute_s", "compute", |r| r.breakdown.compute),
    secs("pull_s", "pull", |r| r.breakdown.pull),
    secs("push_s", "push", |r| r.breakdown.push),
    secs("server_update_s", "server update", |r| {
        r.breakdown.server_update
    }),
    secs("wait_s", "wait", |r| r.breakdown.wait),
    Measure {
        csv: "communication_share",
        html: "comm. share (%)",
        value: |r| r.communication_share,
        html_scale: 100.0,
        html_decimals: 1,
    },
    Measure {
        csv: "staleness_mean",
        html: "staleness mean",
        value: |r| r.staleness_mean,
        html_scale: 1.0,
        html_decimals: 2,
    },
    Measure {
        csv: "staleness_max",
        html: "max",
        value: |r| r.staleness_max as f64,
        html_scale: 1.0,
        html_decimals: 0,
    },
];

const fn secs(csv: &'static str, html: &'static str, value: fn(&Row) -> f64) -> Measure {
    Measure {
        csv,
        html,
        value,
        html_scale: 1.0,
        html_decimals: 4,
    }
}

pub fn rows(results: &SweepResults, target: Option<f64>) -> Vec<Row> {
    results
        .points
        .iter()
        .map(|p| Row {
            point: p.record.name.clone(),
            series: series_of(&p.record),
            learners: p.summary.learners,
            seed: p.summary.seed,
            epoch_time_s: p.summary.epoch_time_s,
            breakdown: p.summary.breakdown.clone(),
            communication_share: p.summary.communication_share,
            staleness_mean: p.summary.staleness.mean,
            staleness_max: p.summary.staleness.max,
            final_train_accuracy: p.summary.final_metrics.as_ref().map(|f| f.train_accuracy),
            final_test_accuracy: p.summary.final_metrics.as_ref().map(|f| f.test_accuracy),
            time_to_target_s: target.and_then(|t| time_to_accuracy(&p.curve, t)),
            diverged: p.summary.diverged,
        })
        .collect()
}

pub fn mean(v: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for x in v {
        sum += x;
        n += 1;
    }
    if n == 0 { f64::NAN } else { sum / n as f64 }
}
