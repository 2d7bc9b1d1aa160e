//! Runs a sweep's points, several at once, each into its own directory under `OUT/points/`.
//!
//! Safe to stop at any moment: a point's directory is built under a hidden name and renamed
//! whole when its run ends, so a directory with a `summary.json` is a finished point and is
//! never run again; hidden leftovers of a killed run are removed when the sweep starts again.
//! A point that diverges is a finished point (its summary says so); a point whose run fails is
//! reported and the others go on. The machine is drawn once, beside the points, for the report.

use super::record::{POINT_FILE, POINTS_DIR, PointRecord, SWEEP_FILE, SweepRecord, pretty};
use super::spec::{Backend, Point, Shard, SweepSpec};
use crate::input::InputError;
use crate::observe::bar::IterationBar;
use crate::observe::log_lines::LogLines;
use crate::report::curve;
use crate::report::figures::render;
use crate::report::figures::topology::TopologyFigure;
use crate::report::output::{OutputDir, write_atomic};
use crate::report::results::{TOPOLOGY_PNG, TOPOLOGY_SVG};
use crate::run;
use crate::scenario::{self, DataCache, Scenario};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Errors that stop a sweep before or between points. Fatal for the sweep.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("cannot draw the machine: {0}")]
    Figure(String),
    /// The real backend will not run a point (bad input: nothing was run or written).
    #[error("point {point}: {message}")]
    Refused { point: String, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SweepError + '_ {
    move |source| SweepError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub struct SweepOptions {
    /// The sweep's directory: `sweep.json`, `points/<name>/`.
    pub out: PathBuf,
    /// Points run at once [default: as many as `threads` allows, one thread each].
    pub jobs: Option<usize>,
    /// Threads for all points together (the machine's cores by default).
    pub threads: usize,
    pub shard: Option<Shard>,
    /// No progress bars.
    pub quiet: bool,
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct SweepOutcome {
    /// Points in the whole sweep, and in this shard.
    pub total: usize,
    pub owned: usize,
    /// Points found finished and left alone.
    pub skipped: Vec<String>,
    /// Points run now.
    pub ran: Vec<String>,
    /// Points (run now or before) whose training diverged.
    pub diverged: Vec<String>,
    /// Points whose run failed, with why.
    pub failed: Vec<(String, String)>,
    /// Every point of the sweep is finished in this directory.
    pub complete: bool,
    /// Points run at once, and threads each.
    pub jobs: usize,
    pub threads_per_point: usize,
}

/// The directory of `point` in a sweep directory.
pub fn point_dir(out: &Path, point_name: &str) -> PathBuf {
    out.join(POINTS_DIR).join(point_name)
}

/// A point is finished when its directory holds a summary and the same definition.
fn finished(out: &Path, record: &PointRecord) -> bool {
    let dir = point_dir(out, &record.name);
    dir.join("summary.json").is_file()
        && std::fs::read_to_string(dir.join(POINT_FILE))
            .ok()
            .and_then(|t| serde_json::from_str::<PointRecord>(&t).ok())
            .is_some_and(|r| r == *record)
}

/// Runs the points of `spec` that this process owns and that are not finished yet.
pub fn run(spec: &SweepSpec, opts: &SweepOptions) -> Result<SweepOutcome, SweepError> {
    spec.check_keys()?;
    let points = spec.points();
    let owned: Vec<&Point> = points
        .iter()
        .filter(|p| opts.shard.is_none_or(|s| s.owns(p)))
        .collect();
    // Every point is checked before any runs, in every shard: a bad value fails the sweep at
    // once, not hours in, and every shard draws the same machine.
    let cache = DataCache::default();
    let base = scenario::load_with(&spec.scenario, &spec.fixed, &cache)?;
    let mut scenarios: Vec<(&Point, Scenario)> = Vec::with_capacity(points.len());
    for p in &points {
        scenarios.push((
            p,
            scenario::load_with(&spec.scenario, &spec.overrides(p), &cache)?,
        ));
    }
    if spec.backend == Backend::Real {
        for (p, sc) in &scenarios {
            if let Some(message) = crate::real::refusal(sc) {
                let point = p.name.clone();
                return Err(SweepError::Refused { point, message });
            }
        }
    }
    let text = scenario::source_text(&spec.scenario)?;
    let record = SweepRecord::new(spec, base.name(), &text);
    drop(base);
    // The machine as the largest point uses it, drawn once for the report.
    let machine = scenarios
        .iter()
        .max_by_key(|(p, sc)| (sc.placement.learner_gpus.len(), std::cmp::Reverse(p.index)))
        .map(|(_, sc)| {
            render(&TopologyFigure {
                topology: &sc.topology,
                learners: sc.placement.learner_gpus.clone(),
                shards: sc.placement.shard_cores.clone(),
            })
        })
        .transpose()
        .map_err(|e| SweepError::Figure(e.to_string()))?;

    let points_dir = opts.out.join(POINTS_DIR);
    std::fs::create_dir_all(&points_dir).map_err(io(&points_dir))?;
    let sweep_file = opts.out.join(SWEEP_FILE);
    write_atomic(&sweep_file, record.to_json().as_bytes()).map_err(io(&sweep_file))?;
    remove_leftovers(&points_dir, &owned).map_err(io(&points_dir))?;
    if let Some(fig) = machine {
        for (name, bytes) in [
            (TOPOLOGY_SVG, fig.svg.as_bytes()),
            (TOPOLOGY_PNG, fig.png.as_slice()),
        ] {
            let path = opts.out.join(name);
            write_atomic(&path, bytes).map_err(io(&path))?;
        }
    }

    let mut outcome = SweepOutcome {
        total: points.len(),
        owned: owned.len(),
        ..Default::default()
    };
    let mut pending = vec![];
    for (p, sc) in scenarios {
        if !owned.contains(&p) {
            continue;
        }
        let rec = &record.points[p.index];
        if finished(&opts.out, rec) {
            outcome.skipped.push(p.name.clone());
            if point_diverged(&opts.out, &p.name) {
                outcome.diverged.push(p.name.clone());
            }
        } else {
            pending.push((rec, sc));
        }
    }
    let threads = opts.threads.max(1);
    // A real point measures this host: it runs alone.
    let jobs = match spec.backend {
        Backend::Simulator => opts.jobs.unwrap_or(threads).clamp(1, pending.len().max(1)),
        Backend::Real => 1,
    };
    let per_point = (threads / jobs).max(1);
    outcome.jobs = jobs;
    outcome.threads_per_point = per_point;

    let multi = MultiProgress::with_draw_target(if opts.quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    // The overall bar counts iterations over every point to run, so that it moves within a
    // point and its ETA weighs a long point as long; its message counts the points.
    let work: u64 = pending
        .iter()
        .map(|(_, sc)| sc.file.workload.epochs * sc.iterations_per_epoch)
        .sum();
    let overall = multi.add(ProgressBar::new(work));
    overall.set_style(style(
        "{prefix} [{bar:25}] {percent:>3}% {msg}, {elapsed}, ETA {eta}",
    ));
    overall.set_prefix(format!("sweep {}", spec.name));
    let finished_points = AtomicUsize::new(0);
    let points_message = |n: usize| format!("{n}/{} points", pending.len());
    overall.set_message(points_message(0));
    overall.tick();
    let log = LogLines::for_stderr(&overall, &format!("sweep {}", spec.name), opts.quiet);

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<bool, String>)>> = Mutex::new(vec![]);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((rec, sc)) = pending.get(i) else {
                        break;
                    };
                    let epochs = sc.file.workload.epochs;
                    let iterations = epochs * sc.iterations_per_epoch;
                    let bar = multi.insert_before(&overall, ProgressBar::new(iterations));
                    bar.set_style(style("  {prefix} [{bar:20}] {percent:>3}% {msg} {elapsed}"));
                    bar.set_prefix(rec.name.clone());
                    let ticking =
                        IterationBar::new(bar.clone(), epochs, iterations).feeding(overall.clone());
                    bar.tick();
                    let result = run_point(&opts.out, rec, sc, per_point, ticking, spec.backend);
                    multi.remove(&bar);
                    let n = finished_points.fetch_add(1, Ordering::Relaxed) + 1;
                    overall.set_message(points_message(n));
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((i, result));
                }
            });
        }
    });
    drop(log);
    overall.finish_and_clear();
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    for (i, r) in results {
        let name = pending[i].0.name.clone();
        match r {
            Ok(diverged) => {
                if diverged {
                    outcome.diverged.push(name.clone());
                }
                outcome.ran.push(name);
            }
            Err(why) => outcome.failed.push((name, why)),
        }
    }
    outcome.diverged.sort();
    outcome.complete = record.points.iter().all(|p| finished(&opts.out, p));
    Ok(outcome)
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Runs one point on `backend` and writes its directory; Ok(diverged) or why it failed.
fn run_point(
    out: &Path,
    rec: &PointRecord,
    sc: &Scenario,
    threads: usize,
    bar: IterationBar,
    backend: Backend,
) -> Result<bool, String> {
    let (summary, points, bar) = match backend {
        Backend::Simulator => {
            let res = run::simulate_with(sc, bar, threads).map_err(|e| e.to_string())?;
            (res.summary, res.curve, res.observer)
        }
        Backend::Real => {
            let bar = bar.saying(None, Some("evaluating each epoch's parameters"));
            let stop = std::sync::atomic::AtomicBool::new(false);
            let res = crate::real::run(sc, bar, &stop).map_err(|e| e.to_string())?;
            if let Some(why) = res.stopped {
                return Err(format!("the real run stopped early: {why}"));
            }
            (res.summary, res.curve, res.observer)
        }
    };
    let target = point_dir(out, &rec.name);
    let write = || -> std::io::Result<PathBuf> {
        let dir = OutputDir::begin(&target)?;
        dir.write("summary.json", summary.to_json().as_bytes())?;
        if !points.is_empty() {
            dir.write("curve.csv", curve::to_csv(&points).as_bytes())?;
        }
        dir.write(POINT_FILE, pretty(rec).as_bytes())?;
        dir.commit()
    };
    write().map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    bar.finish();
    Ok(summary.diverged)
}

fn point_diverged(out: &Path, name: &str) -> bool {
    std::fs::read_to_string(point_dir(out, name).join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("diverged").and_then(|d| d.as_bool()))
        .unwrap_or(false)
}

/// Removes the hidden, half-built directories a killed run left for points this process owns
/// (other shards may be building theirs in the same directory right now).
fn remove_leftovers(points_dir: &Path, owned: &[&Point]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(points_dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.') else {
            continue;
        };
        let Some((point, _pid)) = rest.rsplit_once(".partial-") else {
            continue;
        };
        if owned.iter().any(|p| p.name == point) {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}
