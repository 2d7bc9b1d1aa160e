//! A sweep's report: reads the finished points of one or more sweep directories (the shards of
//! one sweep), draws every figure and writes `index.html` with the tables beside them.
//!
//! Reads results only; never runs a point. The same points give the same report bytes,
//! whichever directories (shards) they were read from: nothing here depends on paths, clocks or
//! the order directories are given in.

use super::figures::breakdown::{Breakdown, BreakdownGroup};
use super::figures::convergence::Convergence;
use super::figures::ratio::GuaranteeRatio;
use super::figures::speedup::Speedup;
use super::figures::staleness::Staleness;
use super::figures::time_to_accuracy::TimeToAccuracy;
use super::figures::{Line, Panel, Rendered, render};
use super::html;
use super::output::OutputDir;
use super::results::{
    MEASURES, PointResult, ReportError, Row, SEED_KEY, SweepResults, TOPOLOGY_PNG, TOPOLOGY_SVG,
    mean, rows, series_except, series_of, target_accuracy, time_to_accuracy,
};
use super::summary::BreakdownSecs;
use crate::outcome::Activity;
use crate::outcome::CurvePoint;
use crate::report::record::pretty;
use std::path::{Path, PathBuf};

/// Points of one series at one p (several seeds).
struct Group<'a> {
    series: String,
    p: usize,
    points: Vec<&'a PointResult>,
}

impl Group<'_> {
    /// The mean over seeds of the time to `target` accuracy; None if any seed never reached it.
    fn mean_time_to(&self, target: f64) -> Option<f64> {
        let ts: Option<Vec<f64>> = self
            .points
            .iter()
            .map(|pt| time_to_accuracy(&pt.curve, target))
            .collect();
        ts.map(mean)
    }
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
            caption: if results.clock() == "measured" {
                format!("The same against measured wall-clock time on the real backend.{band}")
            } else {
                format!("The same against simulated wall-clock time on the modelled machine.{band}")
            },
            x_label: format!("{} time (s)", results.clock()),
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
                        let time = groups
                            .iter()
                            .find(|g| &g.series == s && g.p == p)
                            .and_then(|g| g.mean_time_to(t));
                        (s.clone(), time)
                    })
                    .collect();
                (format!("p = {p}"), rows)
            })
            .collect();
        out.push(render(&TimeToAccuracy {
            caption: format!(
                "{} time to reach {:.1} % test accuracy on {}, one bar per setting (mean over seeds; \"not reached\" if any seed never did).",
                capital(results.clock()),
                100.0 * t,
                results.points[0].summary.machine
            ),
            target: t,
            panels,
            clock: results.clock(),
        })?);
    }

    // Time to the target against the slow learners' slowdown, one line per setting.
    if let Some(t) = target.filter(|_| has_curves) {
        out.extend(straggler_figures(results, &ps, t)?);
    }

    // Speedup over the smallest p: time to the target solid, one line per setting; epoch time
    // dashed in the same colours, or one grey dashed line when the settings share their timing.
    if let Some(&p0) = ps.first().filter(|_| ps.len() > 1) {
        let mut lines = vec![];
        let mut epoch_lines = vec![];
        for s in &series {
            let of = |p: usize| groups.iter().find(|g| &g.series == s && g.p == p);
            let speedup = |m: &dyn Fn(&Group) -> Option<f64>| -> Option<Vec<(f64, f64)>> {
                let base = of(p0).and_then(m).filter(|b| *b > 0.0)?;
                Some(
                    ps.iter()
                        .filter_map(|&p| Some((p as f64, base / of(p).and_then(m)?)))
                        .collect(),
                )
            };
            // A line needs a second point: the base alone is 1 by definition and says nothing.
            if let Some(pts) = target
                .and_then(|t| speedup(&|g: &Group| g.mean_time_to(t)))
                .filter(|pts| pts.len() > 1)
            {
                lines.push(Line::plain(s.clone(), pts));
            }
            if differs || s == &series[0] {
                let et = |g: &Group| Some(mean(g.points.iter().map(|pt| pt.summary.epoch_time_s)));
                if let Some(pts) = speedup(&et) {
                    let label = if differs { s.clone() } else { String::new() };
                    epoch_lines.push(Line::plain(label, pts));
                }
            }
        }
        // Without a time to the target, epoch time is the one measure: drawn solid.
        let (lines, dashed) = if lines.is_empty() {
            for l in epoch_lines.iter_mut().filter(|l| l.label.is_empty()) {
                l.label = "epoch time".into();
            }
            (epoch_lines, vec![])
        } else {
            (lines, epoch_lines)
        };
        out.push(render(&Speedup {
            name: "speedup".into(),
            caption: match target {
                Some(t) if !dashed.is_empty() => format!(
                    "Speedup over p = {p0}: solid, in simulated time to reach {:.1} % test accuracy (points that never reach it are left out); dashed, in epoch time.",
                    100.0 * t
                ),
                _ => format!("Speedup in epoch time over p = {p0}."),
            },
            x_label: "learners p".into(),
            y_label: format!("speedup over p = {p0}"),
            solid_means: target
                .map(|t| format!("time to {:.1} % test accuracy", 100.0 * t))
                .unwrap_or_default(),
            dashed_means: "epoch time".into(),
            settings: series.clone(),
            lines,
            dashed,
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

/// The sweep axis whose values are the slow learners' slowdown (`[faults]`).
const STRAGGLER_KEY: &str = "faults.slowdown";

/// For a sweep over the slow learners' slowdown: for each p, the time to the `target` test
/// accuracy against the slowdown, one line per setting (e.g. per algorithm), mean over seeds
/// with a min-max band; a setting's point is left out where any seed never reached the
/// target.
fn straggler_figures(
    results: &SweepResults,
    ps: &[usize],
    target: f64,
) -> Result<Vec<Rendered>, ReportError> {
    let swept =
        |a: &crate::report::record::AxisRecord| a.key == STRAGGLER_KEY && a.values.len() > 1;
    if !results.sweep.axes.iter().any(swept) {
        return Ok(vec![]);
    }
    let mut out = vec![];
    for &p in ps {
        // (setting, slowdown) -> each seed's time, None where one never reached the target.
        let mut cells: Vec<(String, f64, Vec<Option<f64>>)> = vec![];
        let mut settings: Vec<String> = vec![];
        for pt in results.points.iter().filter(|pt| pt.summary.learners == p) {
            let Some(x) = (pt.record.values.iter())
                .find(|v| v.key == STRAGGLER_KEY)
                .and_then(|v| v.value.as_f64())
            else {
                continue;
            };
            let s = series_except(&pt.record, Some(STRAGGLER_KEY));
            if !settings.contains(&s) {
                settings.push(s.clone());
            }
            let time = time_to_accuracy(&pt.curve, target);
            match cells.iter_mut().find(|c| c.0 == s && c.1 == x) {
                Some(c) => c.2.push(time),
                None => cells.push((s, x, vec![time])),
            }
        }
        let lines: Vec<Line> = (settings.iter())
            .map(|s| Line {
                label: if s.is_empty() {
                    "time".into()
                } else {
                    s.clone()
                },
                points: (cells.iter().filter(|c| &c.0 == s))
                    .filter_map(|c| {
                        let ts: Option<Vec<f64>> = c.2.iter().copied().collect();
                        let ts = ts?;
                        let lo = ts.iter().copied().fold(f64::INFINITY, f64::min);
                        let hi = ts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        Some((c.1, mean(ts), lo, hi))
                    })
                    .collect(),
            })
            .collect();
        let name = if ps.len() > 1 {
            format!("stragglers-p{p}")
        } else {
            "stragglers".into()
        };
        out.push(render(&Speedup {
            name,
            caption: format!(
                "{} time to reach {:.1} % test accuracy against how many times slower the slow learners compute (faults.slowdown), p = {p}, one line per setting; points where a seed never reached it are left out.",
                capital(results.clock()),
                100.0 * target
            ),
            x_label: "slowdown of the slow learners".into(),
            y_label: format!("seconds to {:.1} % test accuracy", 100.0 * target),
            solid_means: String::new(),
            dashed_means: String::new(),
            settings: settings
                .iter()
                .map(|s| if s.is_empty() { "time".into() } else { s.clone() })
                .collect(),
            lines,
            dashed: vec![],
            ideal_base: None,
        })?);
    }
    Ok(out)
}

/// `word` with its first letter capital.
fn capital(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
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
    let mut s = String::from("point,series,learners,seed,");
    for m in &MEASURES {
        s.push_str(m.csv);
        s.push(',');
    }
    s.push_str("final_train_accuracy,final_test_accuracy,time_to_target_s,diverged\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},",
            csv_field(&r.point),
            csv_field(&r.series),
            r.learners,
            r.seed
        ));
        for m in &MEASURES {
            s.push_str(&format!("{},", (m.value)(r)));
        }
        s.push_str(&format!(
            "{},{},{},{}\n",
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
