//! A sweep's report: reads the finished points of one or more sweep directories (the shards of
//! one sweep), draws every figure and writes `index.html` with the tables beside them.
//!
//! Reads results only; never runs a point. The same points give the same report bytes,
//! whichever directories (shards) they were read from: nothing here depends on paths, clocks or
//! the order directories are given in.

use super::curve;
use super::figures::breakdown::{Breakdown, BreakdownGroup};
use super::figures::convergence::Convergence;
use super::figures::ratio::GuaranteeRatio;
use super::figures::speedup::Speedup;
use super::figures::staleness::Staleness;
use super::figures::time_to_accuracy::TimeToAccuracy;
use super::figures::{FigureError, Line, Panel, Rendered, render};
use super::html;
use super::output::OutputDir;
use super::summary::{BreakdownSecs, Summary};
use crate::cluster::learner::Activity;
use crate::sweep::record::{POINT_FILE, POINTS_DIR, PointRecord, SWEEP_FILE, SweepRecord, pretty};
use crate::training::real::CurvePoint;
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
const P_KEY: &str = "cluster.learners";
const SEED_KEY: &str = "seed";

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
    rec.values
        .iter()
        .filter(|v| v.key != P_KEY && v.key != SEED_KEY)
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

/// Points of one series at one p (several seeds).
struct Group<'a> {
    series: String,
    p: usize,
    points: Vec<&'a PointResult>,
}

fn groups(results: &SweepResults) -> (Vec<String>, Vec<usize>, Vec<Group<'_>>) {
    let mut series: Vec<String> = vec![];
    let mut ps: Vec<usize> = vec![];
    let mut groups: Vec<Group> = vec![];
    for pt in &results.points {
        let s = series_of(&pt.record);
        let p = pt.summary.learners;
        if !series.contains(&s) {
            series.push(s.clone());
        }
        if !ps.contains(&p) {
            ps.push(p);
        }
        match groups.iter_mut().find(|g| g.series == s && g.p == p) {
            Some(g) => g.points.push(pt),
            None => groups.push(Group {
                series: s,
                p,
                points: vec![pt],
            }),
        }
    }
    ps.sort_unstable();
    (series, ps, groups)
}

fn mean(v: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for x in v {
        sum += x;
        n += 1;
    }
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

fn mean_breakdown(points: &[&PointResult]) -> BreakdownSecs {
    let m = |a: Activity| mean(points.iter().map(|p| p.summary.breakdown.get(a)));
    BreakdownSecs {
        compute: m(Activity::Compute),
        pull: m(Activity::Pull),
        push: m(Activity::Push),
        server_update: m(Activity::ServerUpdate),
        wait: m(Activity::Wait),
    }
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

fn rows(results: &SweepResults, target: Option<f64>) -> Vec<Row> {
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

/// Whether the series differ in timing (e.g. algorithms), or only in numbers that do not
/// change it (a learning rate): then one breakdown and one staleness panel per p suffice.
fn timing_differs(groups: &[Group]) -> bool {
    groups.iter().any(|g| {
        groups.iter().any(|h| {
            h.p == g.p && {
                let (a, b) = (mean_breakdown(&g.points), mean_breakdown(&h.points));
                (a.total() - b.total()).abs() > 1e-9 * a.total().abs().max(1e-12)
            }
        })
    })
}

/// Lines over epochs or simulated time for one p: one per series, mean over seeds with a
/// min-max band; `x` picks the abscissa, `y` the metric (in percent).
fn accuracy_panel(
    gs: &[&Group],
    p: usize,
    x: fn(&CurvePoint) -> f64,
    y: fn(&CurvePoint) -> f64,
) -> Panel {
    let mut lines = vec![];
    for g in gs.iter().filter(|g| g.p == p) {
        let curves: Vec<&Vec<CurvePoint>> = g
            .points
            .iter()
            .map(|pt| &pt.curve)
            .filter(|c| !c.is_empty())
            .collect();
        let Some(len) = curves.iter().map(|c| c.len()).min() else {
            continue;
        };
        let points = (0..len)
            .map(|i| {
                let ys: Vec<f64> = curves.iter().map(|c| 100.0 * y(&c[i])).collect();
                let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (mean(curves.iter().map(|c| x(&c[i]))), mean(ys), lo, hi)
            })
            .collect();
        lines.push(Line {
            label: if g.series.is_empty() {
                "test".into()
            } else {
                g.series.clone()
            },
            points,
        });
    }
    Panel {
        title: format!("p = {p}"),
        lines,
    }
}

/// Draws every figure the results allow.
pub fn figures(results: &SweepResults) -> Result<Vec<Rendered>, ReportError> {
    let (series, ps, groups) = groups(results);
    let target = target_accuracy(results);
    let mut out = vec![];
    let differs = timing_differs(&groups);

    // Epoch-time breakdown.
    let breakdown_groups: Vec<BreakdownGroup> = if differs {
        series
            .iter()
            .map(|s| BreakdownGroup {
                label: s.clone(),
                bars: groups
                    .iter()
                    .filter(|g| &g.series == s)
                    .map(|g| (g.p.to_string(), mean_breakdown(&g.points)))
                    .collect(),
            })
            .collect()
    } else {
        vec![BreakdownGroup {
            label: String::new(),
            bars: ps
                .iter()
                .map(|&p| {
                    let pts: Vec<&PointResult> = groups
                        .iter()
                        .filter(|g| g.p == p)
                        .flat_map(|g| g.points.iter().copied())
                        .collect();
                    (p.to_string(), mean_breakdown(&pts))
                })
                .collect(),
        }]
    };
    let sorted = |mut g: Vec<BreakdownGroup>| {
        for x in &mut g {
            x.bars
                .sort_by_key(|(p, _)| p.parse::<usize>().unwrap_or(usize::MAX));
        }
        g
    };
    out.push(render(&Breakdown {
        x_label: "learners p".into(),
        caption: format!(
            "Where an epoch goes, mean over learners, for p learners on {} ({})",
            results.points[0].summary.machine, results.sweep.scenario_name
        ),
        groups: sorted(breakdown_groups),
    })?);

    // Convergence against epochs and simulated time.
    let has_curves = results.points.iter().any(|p| !p.curve.is_empty());
    let group_refs: Vec<&Group> = groups.iter().collect();
    if has_curves {
        let band = if results
            .sweep
            .axes
            .iter()
            .any(|a| a.key == SEED_KEY && a.values.len() > 1)
        {
            " Lines are means over seeds; bands span the lowest to the highest seed."
        } else {
            ""
        };
        let by = |x: fn(&CurvePoint) -> f64| -> Vec<(String, Vec<Panel>)> {
            vec![
                (
                    "train accuracy".into(),
                    ps.iter()
                        .map(|&p| accuracy_panel(&group_refs, p, x, |c| c.train_accuracy))
                        .collect(),
                ),
                (
                    "test accuracy".into(),
                    ps.iter()
                        .map(|&p| accuracy_panel(&group_refs, p, x, |c| c.test_accuracy))
                        .collect(),
                ),
            ]
        };
        out.push(render(&Convergence {
            name: "convergence-epochs".into(),
            caption: format!(
                "Train and test accuracy against epochs, one panel per p, one line per setting.{band}"
            ),
            x_label: "epoch".into(),
            y_label: "accuracy (%)".into(),
            rows: by(|c| c.epoch as f64),
        })?);
        out.push(render(&Convergence {
            name: "convergence-time".into(),
            caption: format!(
                "The same against simulated wall-clock time on the modelled machine.{band}"
            ),
            x_label: "simulated time (s)".into(),
            y_label: "accuracy (%)".into(),
            rows: by(|c| c.sim_time_s),
        })?);
    }

    // Time to the target accuracy, setting by setting (e.g. algorithm by algorithm).
    if let Some(t) = target.filter(|_| has_curves && series.len() > 1) {
        let panels = ps
            .iter()
            .map(|&p| {
                let rows = series
                    .iter()
                    .map(|s| {
                        let time =
                            groups
                                .iter()
                                .find(|g| &g.series == s && g.p == p)
                                .and_then(|g| {
                                    let ts: Option<Vec<f64>> = g
                                        .points
                                        .iter()
                                        .map(|pt| time_to_accuracy(&pt.curve, t))
                                        .collect();
                                    ts.map(mean)
                                });
                        (s.clone(), time)
                    })
                    .collect();
                (format!("p = {p}"), rows)
            })
            .collect();
        out.push(render(&TimeToAccuracy {
            caption: format!(
                "Simulated time to reach {:.1} % test accuracy on {}, one bar per setting (mean over seeds; \"not reached\" if any seed never did).",
                100.0 * t,
                results.points[0].summary.machine
            ),
            target: t,
            panels,
        })?);
    }

    // Speedup over the smallest p.
    if let Some(&p0) = ps.first().filter(|_| ps.len() > 1) {
        let mut lines = vec![];
        let mut epoch_lines = vec![];
        for s in &series {
            let of = |p: usize| groups.iter().find(|g| &g.series == s && g.p == p);
            let suffix = if s.is_empty() {
                String::new()
            } else {
                format!(", {s}")
            };
            if let Some(t) = target {
                let tt = |g: &Group| -> Option<f64> {
                    let ts: Option<Vec<f64>> = g
                        .points
                        .iter()
                        .map(|pt| time_to_accuracy(&pt.curve, t))
                        .collect();
                    ts.map(mean)
                };
                if let Some(base) = of(p0).and_then(tt).filter(|b| *b > 0.0) {
                    let pts: Vec<(f64, f64)> = ps
                        .iter()
                        .filter_map(|&p| Some((p as f64, base / of(p).and_then(tt)?)))
                        .collect();
                    lines.push(Line::plain(
                        format!("time to {:.1} % test accuracy{suffix}", 100.0 * t),
                        pts,
                    ));
                }
            }
            if differs || s == &series[0] {
                let et = |g: &Group| mean(g.points.iter().map(|pt| pt.summary.epoch_time_s));
                if let Some(base) = of(p0).map(et) {
                    let pts: Vec<(f64, f64)> = ps
                        .iter()
                        .filter_map(|&p| Some((p as f64, base / of(p).map(et)?)))
                        .collect();
                    let label = if differs {
                        suffix.clone()
                    } else {
                        String::new()
                    };
                    epoch_lines.push(Line::plain(format!("epoch time{label}"), pts));
                }
            }
        }
        lines.extend(epoch_lines);
        out.push(render(&Speedup {
            name: "speedup".into(),
            caption: match target {
                Some(t) => format!(
                    "Speedup over p = {p0}: in simulated time to reach {:.1} % test accuracy (points that never reach it are left out) and in epoch time.",
                    100.0 * t
                ),
                None => format!("Speedup in epoch time over p = {p0}."),
            },
            x_label: "learners p".into(),
            y_label: format!("speedup over p = {p0}"),
            lines,
            ideal_base: Some(p0 as f64),
        })?);
    }

    // Staleness.
    let sum_hist = |gs: Vec<&Group>| -> Vec<u64> {
        let mut h: Vec<u64> = vec![];
        for g in gs {
            for pt in &g.points {
                let s = &pt.summary.staleness.histogram;
                if h.len() < s.len() {
                    h.resize(s.len(), 0);
                }
                for (a, b) in h.iter_mut().zip(s) {
                    *a += b;
                }
            }
        }
        h
    };
    let panels: Vec<(String, Vec<u64>)> = if differs {
        groups
            .iter()
            .map(|g| (format!("p = {}, {}", g.p, g.series), sum_hist(vec![g])))
            .collect()
    } else {
        ps.iter()
            .map(|&p| {
                (
                    format!("p = {p}"),
                    sum_hist(groups.iter().filter(|g| g.p == p).collect()),
                )
            })
            .collect()
    };
    out.push(render(&Staleness {
        caption: "Staleness of the applied updates: how many updates reached a shard between a learner's pull and its push being applied there.".into(),
        panels,
    })?);

    // The seed paper's guarantee ratio over alpha, for the sweep's p.
    let mut ratio = GuaranteeRatio::default();
    let sweep_ps: Vec<u32> = ps.iter().filter(|&&p| p > 1).map(|&p| p as u32).collect();
    if !sweep_ps.is_empty() {
        ratio.p = sweep_ps;
    }
    out.push(render(&ratio)?);
    Ok(out)
}

/// Writes the report for `results` into `out` (replaced whole): every figure as SVG and PNG,
/// `index.html`, `points.csv` and `report.json`.
pub fn write(results: &SweepResults, out: &Path) -> Result<PathBuf, ReportError> {
    let figures = figures(results)?;
    let target = target_accuracy(results);
    let rows = rows(results, target);
    let werr = |source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    };
    let dir = OutputDir::begin(out).map_err(werr)?;
    let mut shown: Vec<html::Shown> = vec![];
    if let Some((svg, png)) = &results.topology {
        dir.write(TOPOLOGY_SVG, svg.as_bytes()).map_err(werr)?;
        dir.write(TOPOLOGY_PNG, png).map_err(werr)?;
        shown.push(html::Shown {
            name: "topology".into(),
            caption: format!(
                "The machine, {}, with the learners' GPUs and the server shards' cores of the largest p highlighted.",
                results.points[0].summary.machine
            ),
        });
    }
    for f in &figures {
        dir.write(&format!("{}.svg", f.name), f.svg.as_bytes())
            .map_err(werr)?;
        dir.write(&format!("{}.png", f.name), &f.png)
            .map_err(werr)?;
        shown.push(html::Shown {
            name: f.name.clone(),
            caption: f.caption.clone(),
        });
    }
    // The topology opens the page: it says what machine everything else ran on.
    dir.write("points.csv", points_csv(&rows).as_bytes())
        .map_err(werr)?;
    dir.write(
        "report.json",
        pretty(&serde_json::json!({
            "sweep": results.sweep.name,
            "target_accuracy": target,
            "missing": results.missing,
            "points": rows,
        }))
        .as_bytes(),
    )
    .map_err(werr)?;
    let page = html::page(results, &rows, target, &shown);
    dir.write("index.html", page.as_bytes()).map_err(werr)?;
    dir.commit().map_err(werr)
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| x.to_string())
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn points_csv(rows: &[Row]) -> String {
    let mut s = String::from(
        "point,series,learners,seed,epoch_time_s,compute_s,pull_s,push_s,server_update_s,wait_s,communication_share,staleness_mean,staleness_max,final_train_accuracy,final_test_accuracy,time_to_target_s,diverged\n",
    );
    for r in rows {
        let b = &r.breakdown;
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(&r.point),
            csv_field(&r.series),
            r.learners,
            r.seed,
            r.epoch_time_s,
            b.compute,
            b.pull,
            b.push,
            b.server_update,
            b.wait,
            r.communication_share,
            r.staleness_mean,
            r.staleness_max,
            opt(r.final_train_accuracy),
            opt(r.final_test_accuracy),
            opt(r.time_to_target_s),
            r.diverged
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(epoch: u64, t: f64, acc: f64) -> CurvePoint {
        CurvePoint {
            epoch,
            samples: epoch * 100,
            sim_time_s: t,
            train_loss: 1.0,
            train_accuracy: acc,
            test_loss: 1.0,
            test_accuracy: acc,
        }
    }

    #[test]
    fn csv_fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(csv_field("learners=2"), "learners=2");
        assert_eq!(csv_field("learners=2,seed=1"), "\"learners=2,seed=1\"");
        assert_eq!(csv_field("a \"b\""), "\"a \"\"b\"\"\"");
    }

    #[test]
    fn time_to_accuracy_interpolates_between_evaluations() {
        let c = [point(0, 0.0, 0.1), point(1, 2.0, 0.3), point(2, 4.0, 0.5)];
        assert_eq!(time_to_accuracy(&c, 0.1), Some(0.0));
        let near = |t: Option<f64>, want: f64| t.is_some_and(|t| (t - want).abs() < 1e-12);
        assert!(near(time_to_accuracy(&c, 0.2), 1.0));
        assert!(near(time_to_accuracy(&c, 0.4), 3.0));
        assert_eq!(time_to_accuracy(&c, 0.5), Some(4.0));
        assert_eq!(time_to_accuracy(&c, 0.6), None);
        assert_eq!(time_to_accuracy(&[], 0.1), None);
    }
}
