//! `asgd-sim validate`: the simulator checked against real runs on this host. For each point of
//! the given values (e.g. `cluster.learners=1,2,4`) it runs the scenario for real, then
//! simulates it on the calibrated model of this host (a topology with a `[host]` table, from
//! `asgd-sim calibrate`), and states the simulator's error: the relative error of the epoch
//! time and of each phase of it, the two-sample Kolmogorov-Smirnov distance between the real and
//! simulated staleness distributions, and the difference in final test accuracy.
//!
//! Both sides compute real gradients, so their accuracies compare. The real run goes first and
//! alone, so the simulation's arithmetic never competes with it for the cores.

use crate::calibrate::Calibration;
use crate::input::Override;
use crate::outcome::RunError;
use crate::report::figures::breakdown::{Breakdown, BreakdownGroup};
use crate::report::figures::staleness::Staleness;
use crate::report::figures::{FigureError, Rendered, render};
use crate::report::summary::{BreakdownSecs, Summary};
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use statrs::stats_tests::NaNPolicy;
use statrs::stats_tests::ks_test::{KSTwoSampleAlternativeMethod, ks_twosample};
use std::fmt::Write as _;
use std::sync::atomic::AtomicBool;

/// The largest relative epoch-time error the simulator is held to on this host.
pub const TARGET_EPOCH_ERROR: f64 = 0.05;

/// One side of a comparison: what a run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub epoch_time_s: f64,
    /// Seconds per epoch in each activity, mean over learners.
    pub breakdown: BreakdownSecs,
    pub staleness_mean: f64,
    /// `staleness_histogram[t]`: updates applied with staleness t.
    pub staleness_histogram: Vec<u64>,
    pub final_test_accuracy: Option<f64>,
}

impl Side {
    /// The mean of runs of one point: mean times and accuracy, all their updates' staleness.
    fn of_runs(runs: &[Summary]) -> Self {
        let n = runs.len().max(1) as f64;
        let mean = |f: &dyn Fn(&Summary) -> f64| runs.iter().map(f).sum::<f64>() / n;
        let mut histogram: Vec<u64> = vec![];
        for r in runs {
            let h = &r.staleness.histogram;
            if histogram.len() < h.len() {
                histogram.resize(h.len(), 0);
            }
            for (a, b) in histogram.iter_mut().zip(h) {
                *a += b;
            }
        }
        let updates: u64 = histogram.iter().sum();
        let weighted: f64 = histogram
            .iter()
            .enumerate()
            .map(|(t, &c)| t as f64 * c as f64)
            .sum();
        let accuracy: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.final_metrics.as_ref().map(|f| f.test_accuracy))
            .collect();
        Self {
            epoch_time_s: mean(&|r| r.epoch_time_s),
            breakdown: BreakdownSecs {
                compute: mean(&|r| r.breakdown.compute),
                pull: mean(&|r| r.breakdown.pull),
                push: mean(&|r| r.breakdown.push),
                server_update: mean(&|r| r.breakdown.server_update),
                wait: mean(&|r| r.breakdown.wait),
            },
            staleness_mean: if updates > 0 {
                weighted / updates as f64
            } else {
                0.0
            },
            staleness_histogram: histogram,
            final_test_accuracy: (!accuracy.is_empty())
                .then(|| accuracy.iter().sum::<f64>() / accuracy.len() as f64),
        }
    }
}

/// One phase of the epoch on both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseError {
    pub phase: String,
    pub real_s: f64,
    pub simulated_s: f64,
    /// `(simulated - real) / real`; absent when the real phase took no time.
    pub relative_error: Option<f64>,
    /// The phase's share of the real epoch, to weigh its error by.
    pub share_of_real_epoch: f64,
}

/// The two-sample Kolmogorov-Smirnov test of the staleness distributions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KsTest {
    /// Largest distance between the two empirical distribution functions.
    pub statistic: f64,
    /// Asymptotic p-value (Kolmogorov); staleness is discrete, so it is conservative.
    pub p_value: f64,
}

/// The comparison at one point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointValidation {
    /// The point, e.g. `p=4`.
    pub point: String,
    pub learners: usize,
    pub shards: usize,
    /// Real runs averaged into `real`.
    pub real_runs: usize,
    /// Their epoch times' spread, (max - min) / mean: the noise the error is measured against.
    pub real_epoch_time_spread: f64,
    pub real: Side,
    pub simulated: Side,
    /// `(simulated - real) / real` of the epoch time.
    pub epoch_time_error: f64,
    pub phases: Vec<PhaseError>,
    /// Absent when either side applied no update.
    pub staleness_ks: Option<KsTest>,
    /// Simulated minus real final test accuracy.
    pub final_accuracy_difference: Option<f64>,
}

impl PointValidation {
    /// Compares real runs of a point (at least one) with the simulation of it.
    /// Compares the real runs with the simulated ones (one, or one per seed where the
    /// simulation draws its sharing), each side averaged.
    pub fn compare(point: &str, reals: &[Summary], sims: &[Summary]) -> Self {
        let (r, s) = (Side::of_runs(reals), Side::of_runs(sims));
        let sim = &sims[0];
        let epochs: Vec<f64> = reals.iter().map(|r| r.epoch_time_s).collect();
        let spread = (epochs.iter().copied().fold(f64::MIN, f64::max)
            - epochs.iter().copied().fold(f64::MAX, f64::min))
            / r.epoch_time_s;
        let phases = crate::outcome::Activity::ALL
            .iter()
            .map(|&a| {
                let (rv, sv) = (r.breakdown.get(a), s.breakdown.get(a));
                PhaseError {
                    phase: a.name().to_string(),
                    real_s: rv,
                    simulated_s: sv,
                    relative_error: (rv > 0.0).then(|| (sv - rv) / rv),
                    share_of_real_epoch: rv / r.epoch_time_s,
                }
            })
            .collect();
        let accuracy = match (r.final_test_accuracy, s.final_test_accuracy) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        Self {
            point: point.to_string(),
            learners: sim.learners,
            shards: sim.shards,
            real_runs: reals.len(),
            real_epoch_time_spread: if reals.len() > 1 { spread } else { 0.0 },
            epoch_time_error: (s.epoch_time_s - r.epoch_time_s) / r.epoch_time_s,
            phases,
            staleness_ks: ks(&r.staleness_histogram, &s.staleness_histogram),
            final_accuracy_difference: accuracy,
            real: r,
            simulated: s,
        }
    }
}

/// The two-sample KS test of two staleness histograms; None if either is empty.
pub fn ks(a: &[u64], b: &[u64]) -> Option<KsTest> {
    let samples = |h: &[u64]| -> Vec<f64> {
        h.iter()
            .enumerate()
            .flat_map(|(t, &n)| std::iter::repeat_n(t as f64, n as usize))
            .collect()
    };
    let (x, y) = (samples(a), samples(b));
    if x.is_empty() || y.is_empty() {
        return None;
    }
    // Equal distributions: the asymptotic p-value's series does not end at distance zero.
    if max_cdf_distance(a, b) <= 1e-12 {
        return Some(KsTest {
            statistic: 0.0,
            p_value: 1.0,
        });
    }
    ks_twosample(
        x,
        y,
        KSTwoSampleAlternativeMethod::TwoSidedAsymptotic,
        NaNPolicy::Error,
    )
    .ok()
    .map(|(statistic, p_value)| KsTest {
        statistic,
        p_value: p_value.clamp(0.0, 1.0),
    })
}

/// The largest distance between the distribution functions of two histograms.
fn max_cdf_distance(a: &[u64], b: &[u64]) -> f64 {
    let (na, nb) = (a.iter().sum::<u64>() as f64, b.iter().sum::<u64>() as f64);
    let (mut ca, mut cb, mut d) = (0u64, 0u64, 0.0f64);
    for t in 0..a.len().max(b.len()) {
        ca += a.get(t).copied().unwrap_or(0);
        cb += b.get(t).copied().unwrap_or(0);
        d = d.max((ca as f64 / na - cb as f64 / nb).abs());
    }
    d
}

/// The whole validation, as `validation.json` holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub scenario: String,
    /// The calibrated host file the simulation used.
    pub host: String,
    pub host_cores: usize,
    pub target_epoch_time_error: f64,
    pub points: Vec<PointValidation>,
    /// Largest absolute epoch-time error over the points.
    pub max_epoch_time_error: f64,
    pub within_target: bool,
    /// Why this host looked busy or unsteady while it was measured, if it did: the errors may
    /// then be the host's, not the model's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_warning: Option<String>,
    /// Where the real runs ran when not as threads on this host, e.g. "the processes backend
    /// on the testbed `testbed` (fair sharing)"; the figures say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_on: Option<String>,
}

/// Readings of one quantity that disagree by more than this ((max - min) / mean) say the host
/// was busy or unsteady while it was measured.
pub const UNSTEADY: f64 = 0.10;

/// (max - min) / mean of `xs`, 0 for fewer than two.
fn spread(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let (lo, hi) = xs
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    if mean > 0.0 { (hi - lo) / mean } else { 0.0 }
}

/// Whether the host looked busy or unsteady: the calibrations of the rounds time the same
/// gradient differently, or a point's real runs spread, by more than [`UNSTEADY`].
pub fn host_warning(calibrations: &[Calibration], points: &[PointValidation]) -> Option<String> {
    let mut why = vec![];
    let gradient: Vec<f64> = calibrations
        .iter()
        .filter_map(|c| c.gradients.first().map(|g| g.seconds))
        .collect();
    let g = spread(&gradient);
    if g > UNSTEADY {
        why.push(format!(
            "its {} calibrations timed the same gradient {:.1}% apart",
            gradient.len(),
            g * 100.0
        ));
    }
    let unsteady: Vec<String> = points
        .iter()
        .filter(|p| p.real_epoch_time_spread > UNSTEADY)
        .map(|p| format!("{} {:.1}%", p.point, p.real_epoch_time_spread * 100.0))
        .collect();
    if !unsteady.is_empty() {
        why.push(format!(
            "real runs of one point spread by {}",
            unsteady.join(", ")
        ));
    }
    (!why.is_empty()).then(|| {
        format!(
            "this host looks busy or unsteady ({}; over {:.0}% means noise): the errors above may \
             be the host's, not the model's; rerun on an idle host, or with more --repeats",
            why.join("; "),
            UNSTEADY * 100.0
        )
    })
}

impl Validation {
    pub fn new(scenario: &str, host: &str, cores: usize, points: Vec<PointValidation>) -> Self {
        let max = points
            .iter()
            .map(|p| p.epoch_time_error.abs())
            .fold(0.0, f64::max);
        Self {
            scenario: scenario.to_string(),
            host: host.to_string(),
            host_cores: cores,
            target_epoch_time_error: TARGET_EPOCH_ERROR,
            points,
            max_epoch_time_error: max,
            within_target: max <= TARGET_EPOCH_ERROR,
            host_warning: None,
            real_on: None,
        }
    }

    /// Where the real runs ran, for captions.
    fn where_real(&self) -> String {
        match &self.real_on {
            Some(on) => format!("with {on}"),
            None => format!("on this host ({} cores)", self.host_cores),
        }
    }

    /// Reads `validation.json` back, to redraw its figures without measuring again.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    }

    /// The comparison figures: the epoch-time breakdowns side by side, and the staleness
    /// histograms, real above simulated.
    pub fn figures(&self) -> Result<Vec<Rendered>, FigureError> {
        let breakdown = Breakdown {
            x_label: "measured (real) and simulated (sim)".into(),
            caption: format!(
                "{} {}: seconds per epoch by activity, measured (real) and simulated (sim), for each point",
                self.scenario,
                self.where_real()
            ),
            groups: self
                .points
                .iter()
                .map(|p| BreakdownGroup {
                    label: p.point.clone(),
                    bars: vec![
                        ("real".into(), p.real.breakdown.clone()),
                        ("sim".into(), p.simulated.breakdown.clone()),
                    ],
                })
                .collect(),
        };
        let mut panels: Vec<(String, Vec<u64>)> = self
            .points
            .iter()
            .map(|p| {
                (
                    format!("{}, real", p.point),
                    p.real.staleness_histogram.clone(),
                )
            })
            .collect();
        panels.extend(self.points.iter().map(|p| {
            (
                format!("{}, sim", p.point),
                p.simulated.staleness_histogram.clone(),
            )
        }));
        let staleness = Staleness {
            caption: format!(
                "{} {}: staleness of the applied updates, measured (top) and simulated (bottom)",
                self.scenario,
                self.where_real()
            ),
            panels,
        };
        let mut b = render(&breakdown)?;
        b.name = "validation-breakdown".into();
        let mut s = render(&staleness)?;
        s.name = "validation-staleness".into();
        Ok(vec![b, s])
    }

    /// The errors as a table for the terminal.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<8} {:>10} {:>7} {:>10} {:>8}  {:>8} {:>8} {:>8} {:>8} {:>8}  {:>6} {:>7}  {:>8}",
            "point",
            "real s/ep",
            "spread",
            "sim s/ep",
            "error",
            "compute",
            "pull",
            "push",
            "update",
            "wait",
            "KS D",
            "KS p",
            "acc diff"
        );
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |e| format!("{:+.1}%", e * 100.0));
        for p in &self.points {
            let _ = write!(
                t,
                "{:<8} {:>10.4} {:>7} {:>10.4} {:>8}",
                p.point,
                p.real.epoch_time_s,
                format!("{:.1}%", p.real_epoch_time_spread * 100.0),
                p.simulated.epoch_time_s,
                pct(Some(p.epoch_time_error))
            );
            t.push(' ');
            for ph in &p.phases {
                let _ = write!(t, " {:>8}", pct(ph.relative_error));
            }
            let (d, pv) = p
                .staleness_ks
                .as_ref()
                .map_or(("-".into(), "-".into()), |k| {
                    (format!("{:.3}", k.statistic), format!("{:.3}", k.p_value))
                });
            let acc = p
                .final_accuracy_difference
                .map_or("-".into(), |d| format!("{:+.1} pt", d * 100.0));
            let _ = writeln!(t, "  {d:>6} {pv:>7}  {acc:>8}");
        }
        let _ = writeln!(
            t,
            "phase columns: relative error of the simulated seconds; spread: (max - min) / mean of the real runs' epoch times\nlargest epoch-time error {:.1}% (target {:.0}%): {}",
            self.max_epoch_time_error * 100.0,
            TARGET_EPOCH_ERROR * 100.0,
            if self.within_target {
                "within target"
            } else {
                "over target"
            }
        );
        if let Some(w) = &self.host_warning {
            let _ = writeln!(t, "warning: {w}");
        }
        t
    }
}

/// What the real side of a validation measured.
pub struct RealRuns {
    /// Per point, the summaries of its real runs.
    pub runs: Vec<Vec<Summary>>,
    /// The calibrations taken between the rounds of runs, if asked for.
    pub calibrations: Vec<Calibration>,
    /// Why the runs stopped early (an interrupt, a fault), if they did.
    pub stopped: Option<String>,
}

/// Runs every point's scenario `repeats` times for real, the points taking turns so that a slow
/// drift of the host's speed touches them alike. With `calibrate`, each round of runs starts
/// with a calibration, so that the host model averages the same stretch of time as the runs.
/// `progress` hears what starts, and each run is watched by the observer `watch` gives for it.
/// A stop request or a run that ends early stops the rounds.
pub fn run_real<O: crate::observe::Observer + Send>(
    scenarios: &[(&str, &Scenario)],
    repeats: usize,
    calibrate: bool,
    stop: &AtomicBool,
    mut progress: impl FnMut(&str),
    mut watch: impl FnMut(&Scenario) -> O,
) -> Result<RealRuns, RunError> {
    let repeats = repeats.max(1);
    let mut out = RealRuns {
        runs: vec![vec![]; scenarios.len()],
        calibrations: vec![],
        stopped: None,
    };
    let all: Vec<&Scenario> = scenarios.iter().map(|&(_, s)| s).collect();
    'rounds: for r in 0..repeats {
        if calibrate {
            progress(&format!("calibrating this host ({} of {repeats})", r + 1));
            out.calibrations.push(crate::calibrate::measure(&all)?);
        }
        for (i, (name, sc)) in scenarios.iter().enumerate() {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                out.stopped = Some("interrupted".into());
                break 'rounds;
            }
            progress(&format!("{name}: real run {} of {repeats}", r + 1));
            let run = crate::real::run(sc, watch(sc), stop)?;
            if let Some(why) = run.stopped {
                out.stopped = Some(format!("{name}: {why}"));
                break 'rounds;
            }
            out.runs[i].push(run.summary);
        }
    }
    // A point is compared only with all its runs.
    let done = out.runs.iter().map(Vec::len).min().unwrap_or(0);
    if done < repeats {
        for r in &mut out.runs {
            r.truncate(done);
        }
    }
    Ok(out)
}

/// Simulates each point once on the calibrated host (the simulation is deterministic) and
/// compares it with its real runs; points without real runs are left out.
pub fn compare(
    points: &[(&str, &Scenario)],
    real: &RealRuns,
    mut progress: impl FnMut(&str),
) -> Result<Vec<PointValidation>, RunError> {
    let mut out = vec![];
    for ((name, host), runs) in points.iter().zip(&real.runs) {
        if runs.is_empty() {
            break;
        }
        // Where messages share links with drawn weights, one run is one draw of how the
        // learners fall out of step: average several seeds, as the real side averages runs.
        let seeds = if host.file.machine.flow_share_cv > 0.0 {
            NOISY_SIMULATIONS
        } else {
            1
        };
        let mut sims = vec![];
        for k in 0..seeds {
            progress(&format!("{name}: simulation {} of {seeds}", k + 1));
            let mut sc = (*host).clone();
            sc.file.seed = host.file.seed.wrapping_add(k as u64);
            sims.push(crate::run::simulate(&sc, ())?.summary);
        }
        out.push(PointValidation::compare(name, runs, &sims));
    }
    Ok(out)
}

/// Seeds simulated for a point whose sharing is drawn (`machine.flow_share_cv` > 0).
pub const NOISY_SIMULATIONS: usize = 4;

/// The overrides that put a scenario on a calibrated host file, with real gradients.
pub fn host_overrides(host_file: &str) -> Vec<Override> {
    vec![
        Override::new(
            "machine.topology",
            toml::Value::String(host_file.to_string()),
            "validate",
        ),
        real_gradients(),
    ]
}

/// Real gradients on both sides, so that their accuracies compare.
pub fn real_gradients() -> Override {
    Override::new(
        "workload.gradients",
        toml::Value::String("real".into()),
        "validate",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_host_is_said_beside_the_errors_when_its_calibrations_disagree() {
        // 1.0, 1.05 and 1.02 ms: 4.9 % apart, a steady host.
        let steady: Vec<Calibration> = [1.0e-3, 1.05e-3, 1.02e-3]
            .map(crate::calibrate::fixture)
            .into();
        assert_eq!(host_warning(&steady, &[]), None);
        // 1.0 and 1.3 ms: 26 % apart.
        let busy: Vec<Calibration> = [1.0e-3, 1.3e-3].map(crate::calibrate::fixture).into();
        let w = host_warning(&busy, &[]).unwrap();
        assert!(
            w.contains("busy or unsteady")
                && w.contains("2 calibrations timed the same gradient 26.1% apart"),
            "{w}"
        );
        let mut v = Validation::new("quick", "localhost.toml", 2, vec![]);
        v.host_warning = Some(w.clone());
        assert!(v.table().contains(&format!("warning: {w}")));
        assert!(v.to_json().contains("\"host_warning\""));
    }

    #[test]
    fn ks_of_equal_and_disjoint_histograms() {
        let same = ks(&[5, 3, 2], &[10, 6, 4]).unwrap();
        assert!(same.statistic.abs() < 1e-12, "{same:?}");
        let all_zero = ks(&[7], &[9]).unwrap();
        assert_eq!((all_zero.statistic, all_zero.p_value), (0.0, 1.0));
        // Every real update at staleness 0, every simulated one at 2: the distributions never
        // overlap, distance 1.
        let apart = ks(&[50], &[0, 0, 50]).unwrap();
        assert!((apart.statistic - 1.0).abs() < 1e-12);
        assert!(apart.p_value < 1e-6);
        assert!(ks(&[], &[1]).is_none());
    }
}
