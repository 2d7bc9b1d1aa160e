//! `asgd-sim validate --backend processes`: the simulator checked against the processes
//! backend on the testbed. The testbed is built, measured (each host's latency and goodput to
//! the server host, and this machine's gradient, copy and update times, by `calibrate`'s own
//! code), and written as a calibrated copy of its topology; then every point runs for real
//! with its ranks on the testbed's hosts, `repeats` times with the points taking turns, and is
//! simulated once on the calibrated topology. The comparison is `validate`'s.

use super::probe::{self, HostProbe};
use super::ranks::{self, RankHosts};
use super::{Plan, Sharing, Testbed, TestbedError};
use crate::calibrate::Calibration;
use crate::input::Override;
use crate::machine::topology::{Topology, file as topology_file};
use crate::report::summary::Summary;
use crate::scenario::{self, Scenario};
use crate::validate::{PointValidation, RealRuns};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Longest one real run on the testbed may take before its ranks are killed.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// What to validate.
pub struct Request<'a> {
    /// The scenario as given (a path or builtin:NAME), and each point's name and overrides.
    pub scenario: &'a str,
    pub points: &'a [(String, Vec<Override>)],
    /// The testbed's topology (a path or builtin:NAME) and how its ports share.
    pub testbed: &'a str,
    pub sharing: Sharing,
    pub repeats: usize,
    /// This program, which the ranks run.
    pub program: &'a Path,
}

/// The validation's results, before they are written.
pub struct Validated {
    pub points: Vec<PointValidation>,
    /// The testbed's topology with the measured rates and latencies.
    pub calibrated_toml: String,
    pub probes: Vec<HostProbe>,
    pub calibration: Calibration,
    pub cores: usize,
    /// Why it stopped early, if it did; the points compared are those with every run.
    pub stopped: Option<String>,
}

/// Runs the validation; `work` is a directory for the calibrated topology (written there as
/// `testbed.toml`) and the runs' outputs. `progress` hears what starts, `iterations` the real
/// iterations done of all the runs' (done, total) as they complete.
pub fn validate(
    req: &Request,
    work: &Path,
    stop: &AtomicBool,
    mut progress: impl FnMut(&str),
    mut iterations: impl FnMut(u64, u64),
) -> Result<Validated, TestbedError> {
    let testbed_topology = topology_file::load(req.testbed)?;
    let plan = Plan::of(&testbed_topology)
        .map_err(|m| TestbedError::Unfit(format!("{}: {m}", req.testbed)))?;
    let on_testbed = Override::new(
        "machine.topology",
        toml::Value::String(req.testbed.to_string()),
        "--testbed",
    );
    // Every point is checked, and placed on the testbed's hosts, before anything is built.
    let mut real: Vec<Scenario> = vec![];
    for (_, o) in req.points {
        let mut o = o.clone();
        o.push(on_testbed.clone());
        let sc = scenario::load(req.scenario, &o)?;
        crate::real::processes::World::of(&sc).map_err(|e| TestbedError::Unfit(e.to_string()))?;
        real.push(sc);
    }
    if real.is_empty() {
        return Err(TestbedError::Unfit("no point to validate".into()));
    }
    // Each point's ports: the testbed's, but for links its faults slow.
    let rates: Vec<Vec<u64>> = (real.iter())
        .map(|sc| {
            Plan::of(&sc.topology).map(|p| p.hosts.iter().map(|h| h.port_bits_per_s).collect())
        })
        .collect::<Result<_, _>>()
        .map_err(|m| TestbedError::Unfit(format!("{}: {m}", req.testbed)))?;
    let mut tb = Testbed::build(plan, req.sharing)?;
    let placed: Vec<RankHosts> = real
        .iter()
        .map(|sc| RankHosts::of(&tb, sc))
        .collect::<Result<_, _>>()?;
    let server = placed[0].0[0];
    progress(&format!(
        "measuring each host's latency and goodput to {}",
        tb.plan.hosts[server].name
    ));
    let probes = probe::alone(&tb, server, stop)?;
    progress("timing a gradient, a copy and an update on this machine");
    let calibration = crate::calibrate::measure(&[&real[0]])?;
    let calibrated_toml = calibrated(
        req.testbed,
        &testbed_topology,
        &tb.plan,
        server,
        &probes,
        &calibration,
    )?;
    let file = work.join("testbed.toml");
    std::fs::write(&file, &calibrated_toml)
        .map_err(|e| TestbedError::Probe(format!("cannot write {}: {e}", file.display())))?;
    let file = std::path::absolute(&file).unwrap_or(file);
    let mut runs = RealRuns {
        runs: vec![vec![]; real.len()],
        calibrations: vec![calibration.clone()],
        stopped: None,
    };
    let args = |o: &[Override]| {
        let mut a = vec![req.scenario.to_string()];
        for o in o.iter().chain([&on_testbed]) {
            a.push("--set".into());
            a.push(format!("{}={}", o.key, o.value));
        }
        a
    };
    let each: Vec<u64> = real
        .iter()
        .map(|sc| sc.file.workload.epochs * sc.iterations_per_epoch)
        .collect();
    let total = each.iter().sum::<u64>() * req.repeats.max(1) as u64;
    // Every real run's timeline is kept, to set beside the simulated one in Perfetto.
    let traces = std::path::absolute(work.join("traces")).unwrap_or_else(|_| work.join("traces"));
    std::fs::create_dir_all(&traces)
        .map_err(|e| TestbedError::Probe(format!("cannot create {}: {e}", traces.display())))?;
    let mut before = 0;
    iterations(0, total);
    'rounds: for r in 0..req.repeats.max(1) {
        for (i, (name, o)) in req.points.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                runs.stopped = Some("interrupted".into());
                break 'rounds;
            }
            progress(&format!(
                "{name}: real run {} of {} on the testbed",
                r + 1,
                req.repeats
            ));
            tb.reshape(&rates[i])?;
            let out = work.join(format!("run-{i}-{r}"));
            let mut args = args(o);
            args.push("--trace".into());
            args.push(
                traces
                    .join(format!("{}-real-{}.json", file_name(name), r + 1))
                    .to_string_lossy()
                    .into_owned(),
            );
            let ran = match ranks::run(
                &tb,
                req.program,
                &args,
                &out,
                &placed[i],
                stop,
                RUN_LIMIT,
                &mut |done| iterations(before + done.min(each[i]), total),
            ) {
                Ok(ran) => ran,
                Err(TestbedError::Interrupted) => {
                    runs.stopped = Some("interrupted".into());
                    break 'rounds;
                }
                Err(e) => return Err(e),
            };
            let text = std::fs::read_to_string(ran.out.join("summary.json")).map_err(|e| {
                TestbedError::Probe(format!("{name}: no summary.json from rank 0: {e}"))
            })?;
            let summary: Summary = serde_json::from_str(&text)
                .map_err(|e| TestbedError::Probe(format!("{name}: rank 0's summary.json: {e}")))?;
            let _ = std::fs::remove_dir_all(&out);
            runs.runs[i].push(summary);
            before += each[i];
            iterations(before, total);
        }
    }
    drop(tb);
    let done = runs.runs.iter().map(Vec::len).min().unwrap_or(0);
    for r in &mut runs.runs {
        r.truncate(done);
    }
    // The simulated side: the calibrated testbed, each learner computing for the measured
    // gradient time on its share of this machine's cores.
    let mut simulated = vec![];
    for ((_, o), sc) in req.points.iter().zip(&real) {
        let p = sc.placement.learner_gpus.len();
        let gradient = gradient_on_testbed(&calibration, p);
        let mut o = o.clone();
        o.push(Override::new(
            "machine.topology",
            toml::Value::String(file.to_string_lossy().into_owned()),
            "validate",
        ));
        o.push(Override::new(
            "devices.compute_time_s",
            toml::Value::Float(gradient),
            "validate",
        ));
        // The learners' gradients vary as much as the calibration's did, stretched alike:
        // it is what lets learners that start together fall out of step.
        let mut jitter = toml::map::Map::new();
        jitter.insert("distribution".into(), toml::Value::String("normal".into()));
        jitter.insert(
            "std_s".into(),
            toml::Value::Float(spread_on_testbed(&calibration, p)),
        );
        o.push(Override::new(
            "devices.jitter",
            toml::Value::Table(jitter),
            "validate",
        ));
        simulated.push(scenario::load(req.scenario, &o)?);
    }
    let named: Vec<(&str, &Scenario)> = req
        .points
        .iter()
        .zip(&simulated)
        .map(|((n, _), s)| (n.as_str(), s))
        .collect();
    let points = crate::validate::compare(&named, &runs, progress)?;
    Ok(Validated {
        points,
        calibrated_toml,
        probes,
        cores: calibration.cores,
        calibration,
        stopped: runs.stopped,
    })
}

/// A point's name as a file name: `learners=4` stays, anything but letters, digits and
/// `=.-_` becomes `_`.
fn file_name(point: &str) -> String {
    point
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "=.-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One learner's gradient time when `p` learners compute at once on the testbed: the
/// testbed's hosts are namespaces of one machine, so they share its cores. Alone, the time
/// measured; with others, that time slowed as measured with every core computing one
/// (shared caches and memory bandwidth), and stretched by p / cores where the learners
/// outnumber the cores. In a communication-bound run the learners seldom compute at once, but
/// their compute is then too short for the difference to show.
pub fn gradient_on_testbed(cal: &Calibration, p: usize) -> f64 {
    let alone = cal.gradients.first().map(|g| g.seconds).unwrap_or(0.0);
    if p <= 1 {
        return alone;
    }
    let cores = cal.cores.max(1);
    alone * cal.busy_slowdown.max(1.0) * (p as f64 / cores as f64).max(1.0)
}

/// The standard deviation of one learner's gradient time when `p` learners compute at once
/// on the testbed: the calibration's, stretched as [`gradient_on_testbed`] stretches the
/// mean.
pub fn spread_on_testbed(cal: &Calibration, p: usize) -> f64 {
    let Some(g) = cal.gradients.first() else {
        return 0.0;
    };
    if g.seconds <= 0.0 {
        return 0.0;
    }
    g.spread_s * gradient_on_testbed(cal, p) / g.seconds
}

/// The testbed's topology file with what was measured in place of its estimates: each
/// switch port at its host's goodput (the server's at the fastest), with half its host's
/// one-way latency (the server's: half the mean), the links inside hosts at the measured copy
/// rate, the shards' cores at the measured update rate.
fn calibrated(
    spec: &str,
    t: &Topology,
    plan: &Plan,
    server: usize,
    probes: &[HostProbe],
    cal: &Calibration,
) -> Result<String, TestbedError> {
    let text = match spec.strip_prefix("builtin:") {
        Some(name) => crate::input::builtin_text(topology_file::BUILTIN, "topology", name)?,
        None => std::fs::read_to_string(spec)
            .map_err(|e| TestbedError::Probe(format!("{spec}: {e}")))?,
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| TestbedError::Probe(format!("{spec}: {e}")))?;
    let gb = |p: &HostProbe| p.goodput_mbit_per_s * 1e6 / 8.0 / 1e9;
    let round = |x: f64| (x * 1e6).round() / 1e6;
    let port = |h: usize| -> (f64, i64) {
        if h == server {
            let bw = probes.iter().map(gb).fold(0.0, f64::max);
            let mean = probes.iter().map(|p| p.one_way_latency_us).sum::<f64>()
                / probes.len().max(1) as f64;
            (bw, (mean * 1e3 / 2.0).round() as i64)
        } else {
            let p = probes.iter().find(|p| p.host == plan.hosts[h].name);
            p.map(|p| (gb(p), (p.one_way_latency_us * 1e3 / 2.0).round() as i64))
                .unwrap_or((0.0, 0))
        }
    };
    let cores: Vec<String> = t.cores().iter().map(|&c| t.node(c).id.clone()).collect();
    if let Some(links) = doc.get_mut("links").and_then(|l| l.as_array_mut()) {
        for link in links.iter_mut() {
            let Some(tbl) = link.as_inline_table_mut() else {
                continue;
            };
            let ends: Vec<String> = tbl
                .get("between")
                .and_then(|b| b.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let other = ends.iter().find(|e| **e != plan.switch);
            let (bw, lat) = if ends.contains(&plan.switch) {
                match other.and_then(|o| plan.host_of(o)) {
                    Some(h) => port(h),
                    None => continue,
                }
            } else {
                (cal.copy_gb_per_s(), -1)
            };
            tbl.insert("bandwidth_gb_per_s", round(bw).into());
            if lat >= 0 {
                tbl.insert("latency_ns", lat.into());
            }
        }
    }
    if let Some(nodes) = doc.get_mut("nodes").and_then(|n| n.as_array_mut()) {
        for node in nodes.iter_mut() {
            let Some(tbl) = node.as_inline_table_mut() else {
                continue;
            };
            if tbl
                .get("id")
                .and_then(|v| v.as_str())
                .is_some_and(|id| cores.iter().any(|c| c == id))
            {
                tbl.insert(
                    "memory_bandwidth_gb_per_s",
                    round(cal.update_memory_gb_per_s()).into(),
                );
            }
        }
    }
    let mut out = format!(
        "# {} as measured on the testbed by `asgd-sim validate --backend processes` (asgd-sim {}):\n\
         # each switch port at its host's goodput and half its one-way latency to {}, links in\n\
         # hosts at one thread's copy rate, cores at the measured update rate.\n",
        plan.topology,
        env!("CARGO_PKG_VERSION"),
        plan.hosts[server].name
    );
    out.push_str(&doc.to_string());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learners_gradient_is_stretched_only_where_learners_outnumber_the_cores() {
        // 3 cores, busy slowdown 1.25, 1 ms alone.
        let cal = crate::calibrate::fixture(1e-3);
        let at = |p| gradient_on_testbed(&cal, p);
        assert_eq!(at(1), 1e-3);
        assert!((at(2) - 1.25e-3).abs() < 1e-15);
        assert!((at(3) - 1.25e-3).abs() < 1e-15);
        assert!((at(6) - 2.5e-3).abs() < 1e-15);
        // The spread (a tenth of the time alone) is stretched alike.
        let sd = |p| spread_on_testbed(&cal, p);
        assert!((sd(1) - 1e-4).abs() < 1e-15);
        assert!((sd(6) - 2.5e-4).abs() < 1e-15);
    }

    #[test]
    fn the_calibrated_testbed_has_the_measured_ports_and_reads_back() {
        let t = topology_file::load("builtin:testbed").unwrap();
        let plan = Plan::of(&t).unwrap();
        let probe = |host: &str, mbit: f64, us: f64| HostProbe {
            host: host.into(),
            port_mbit_per_s: 100.0,
            one_way_latency_us: us,
            goodput_mbit_per_s: mbit,
        };
        let probes = [
            probe("learner0", 80.0, 20.0),
            probe("learner1", 96.0, 40.0),
            probe("learner2", 88.0, 30.0),
            probe("learner3", 90.0, 30.0),
        ];
        let cal = crate::calibrate::fixture(1e-3);
        let text = calibrated("builtin:testbed", &t, &plan, 4, &probes, &cal).unwrap();
        // learner0's port: 80 Mbit/s = 0.01 GB/s, half of 20 us; the server's: the fastest
        // host's goodput, half the mean latency (30 us).
        assert!(
            text.contains(
                r#"{ between = ["learner0-nic", "switch"], class = "ethernet-100m" , bandwidth_gb_per_s = 0.01, latency_ns = 10000 }"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"{ between = ["server-nic", "switch"], class = "ethernet-100m" , bandwidth_gb_per_s = 0.012, latency_ns = 15000 }"#
            ),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("testbed.toml");
        std::fs::write(&file, &text).unwrap();
        let back = topology_file::load(file.to_str().unwrap()).unwrap();
        let caps = back.channel_capacities();
        for gb in [0.01, 0.012, 0.011, 0.01125] {
            assert!(
                caps.iter().any(|&c| (c - gb).abs() < 1e-12),
                "{gb} in {caps:?}"
            );
        }
        let core = back.node(back.find("server-core0").unwrap());
        assert!(core.core.is_some());
    }
}
