//! `asgd-sim testbed`: build the namespaces, measure them, print and write what was
//! measured, tear down.

use crate::single::stop_on_ctrl_c;
use anyhow::Context as _;
use asgd_sim::machine::topology::file as topology_file;
use asgd_sim::observe::log_lines::LogLines;
use asgd_sim::report::output::OutputDir;
use asgd_sim::testbed::probe::{self, ProbeSpec};
use asgd_sim::testbed::{Plan, Sharing, Testbed, TestbedError};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Longest the flows may take at the ports' nominal rates: the testbed's traffic is bounded.
const MOST_SECONDS: f64 = 120.0;

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum TestbedSharing {
    Fair,
    Fifo,
}

impl From<TestbedSharing> for Sharing {
    fn from(s: TestbedSharing) -> Self {
        match s {
            TestbedSharing::Fair => Sharing::Fair,
            TestbedSharing::Fifo => Sharing::Fifo,
        }
    }
}

pub(crate) fn testbed_command(
    topology: &str,
    sharing: TestbedSharing,
    to: Option<&str>,
    megabytes: &[f64],
    start_ms: &[f64],
    out: Option<PathBuf>,
    quiet: bool,
) -> anyhow::Result<()> {
    let sharing = Sharing::from(sharing);
    let t = topology_file::load(topology)?;
    let plan = Plan::of(&t).map_err(|m| TestbedError::Unfit(format!("{topology}: {m}")))?;
    let spec = probe_spec(&plan, to, megabytes, start_ms)?;
    let out =
        out.unwrap_or_else(|| PathBuf::from("runs").join(format!("testbed-{}", sharing.name())));
    asgd_sim::report::output::check_target("--out", &out)?;
    let stop = stop_on_ctrl_c();
    let say = |s: String| {
        if !quiet {
            eprintln!("{s}");
        }
    };
    say(format!(
        "building {} hosts on one switch ({} sharing)",
        plan.hosts.len(),
        sharing.name()
    ));
    let tb = Testbed::build(plan, sharing)?;
    say(format!(
        "measuring latency and goodput from {} hosts to {}, then {} flows together",
        tb.plan.hosts.len() - 1,
        tb.plan.hosts[spec.target].name,
        spec.flow_bytes.len()
    ));
    let measured = probe::measure(&tb, &spec, &stop);
    drop(tb);
    let p = measured?;
    let dir = OutputDir::begin(&out).with_context(|| format!("cannot create {}", out.display()))?;
    write_json(&dir, "probe.json", &p, &out)?;
    let written = commit(dir, &out)?;
    if !quiet {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "testbed {} ({} sharing), to {}; torn down",
            p.topology,
            p.sharing.name(),
            p.target
        );
        let _ = writeln!(s, "  host        port Mbit/s  one-way us  goodput Mbit/s");
        for h in &p.hosts {
            let _ = writeln!(
                s,
                "  {:<10} {:>12.1} {:>11.1} {:>15.2}",
                h.host, h.port_mbit_per_s, h.one_way_latency_us, h.goodput_mbit_per_s
            );
        }
        let _ = writeln!(
            s,
            "  flow from        MB   start s  measured s  max-min s   error"
        );
        for f in &p.flows {
            let _ = writeln!(
                s,
                "  {:<10} {:>8.2} {:>9.3} {:>11.3} {:>10.3} {:>+7.1}%",
                f.from,
                f.megabytes,
                f.start_s,
                f.measured_s,
                f.max_min_s,
                f.error * 100.0
            );
        }
        let _ = writeln!(
            s,
            "largest flow error {:.1}%; wrote {}",
            p.max_flow_error * 100.0,
            written.join("probe.json").display()
        );
        crate::emit(&s)?;
    }
    Ok(())
}

/// `value` as pretty JSON into `dir`'s file `name`, bound for `out`.
fn write_json(
    dir: &OutputDir,
    name: &str,
    value: &impl serde::Serialize,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let mut json =
        serde_json::to_string_pretty(value).with_context(|| format!("cannot encode {name}"))?;
    json.push('\n');
    dir.write(name, json.as_bytes())
        .with_context(|| format!("cannot write into {}", out.display()))
}

/// Moves the finished directory into place at `out`.
fn commit(dir: OutputDir, out: &std::path::Path) -> anyhow::Result<PathBuf> {
    dir.commit()
        .with_context(|| format!("cannot move results into {}", out.display()))
}

/// The target host and the flows, checked against the plan.
fn probe_spec(
    plan: &Plan,
    to: Option<&str>,
    megabytes: &[f64],
    start_ms: &[f64],
) -> Result<ProbeSpec, TestbedError> {
    let names = || {
        plan.hosts
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let target = match to {
        Some(name) => plan
            .hosts
            .iter()
            .position(|h| h.name == name)
            .ok_or_else(|| {
                TestbedError::Unfit(format!(
                    "--to {name}: no such host; the hosts are {}",
                    names()
                ))
            })?,
        None => {
            let servers: Vec<usize> = (0..plan.hosts.len())
                .filter(|&h| !plan.hosts[h].learners)
                .collect();
            match servers[..] {
                [one] => one,
                _ => {
                    return Err(TestbedError::Unfit(format!(
                        "{} hosts hold no learner device, so which one the flows go to is not \
                         clear: name it with --to (the hosts are {})",
                        servers.len(),
                        names()
                    )));
                }
            }
        }
    };
    let senders = plan.hosts.len() - 1;
    if megabytes.is_empty() || megabytes.len() > senders {
        return Err(TestbedError::Unfit(format!(
            "--megabytes: {} flows asked for; one per host other than {}, so 1 to {senders}",
            megabytes.len(),
            plan.hosts[target].name
        )));
    }
    if let Some(bad) = megabytes.iter().find(|&&m| !(m > 0.0 && m <= 1000.0)) {
        return Err(TestbedError::Unfit(format!(
            "--megabytes: {bad} is not a flow size; each is more than 0 and at most 1000 MB"
        )));
    }
    let slowest = plan
        .hosts
        .iter()
        .map(|h| h.port_bits_per_s)
        .min()
        .unwrap_or(1) as f64;
    let seconds = megabytes.iter().sum::<f64>() * 8e6 / slowest;
    if seconds > MOST_SECONDS {
        return Err(TestbedError::Unfit(format!(
            "--megabytes: the flows would take about {seconds:.0} s through a {:.1} Mbit/s port; \
             the testbed's traffic is bounded to {MOST_SECONDS:.0} s: ask for fewer megabytes",
            slowest / 1e6
        )));
    }
    if !start_ms.is_empty() && start_ms.len() != megabytes.len() {
        return Err(TestbedError::Unfit(format!(
            "--start-ms: {} start times for {} flows; give one per flow (or none: all at 0)",
            start_ms.len(),
            megabytes.len()
        )));
    }
    if let Some(bad) = start_ms.iter().find(|&&t| !(0.0..=10_000.0).contains(&t)) {
        return Err(TestbedError::Unfit(format!(
            "--start-ms: {bad} is not a start time; each is 0 to 10000 ms after the first flow"
        )));
    }
    Ok(ProbeSpec {
        target,
        flow_bytes: megabytes.iter().map(|m| (m * 1e6).round() as u64).collect(),
        start_s: start_ms.iter().map(|t| t / 1e3).collect(),
    })
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ValidateBackend {
    Threads,
    Processes,
}

/// The flags of one validate backend refused with the other: a host file is the threads
/// backend's, the testbed and its sharing the processes backend's.
pub(crate) fn check_backend_flags(
    backend: ValidateBackend,
    host: Option<&std::path::Path>,
    testbed: Option<&str>,
    sharing: Option<TestbedSharing>,
) -> Result<(), asgd_sim::input::InputError> {
    use asgd_sim::input::bad_flag;
    match backend {
        ValidateBackend::Threads => {
            let given = match (testbed, sharing) {
                (Some(t), _) => Some(("--testbed", t.to_string())),
                (None, Some(s)) => Some(("--sharing", Sharing::from(s).name().to_string())),
                (None, None) => None,
            };
            match given {
                Some((flag, value)) => Err(bad_flag(
                    flag,
                    &value,
                    "is for --backend processes (the testbed); --backend threads runs on this host",
                )),
                None => Ok(()),
            }
        }
        ValidateBackend::Processes => match host {
            Some(h) => Err(bad_flag(
                "--host",
                &h.display().to_string(),
                "a host file is for --backend threads; on the testbed the topology is \
                 --testbed's, measured",
            )),
            None => Ok(()),
        },
    }
}

/// `validate --backend processes`: the points for real on the testbed, simulated on its
/// measured topology; writes validation.json, the calibrated topology and the figures.
pub(crate) fn validate_testbed_command(
    spec: &str,
    set: &[String],
    testbed: &str,
    sharing: TestbedSharing,
    out: Option<PathBuf>,
    repeats: usize,
    quiet: bool,
) -> anyhow::Result<()> {
    use asgd_sim::testbed::validate::{Request, validate};
    use asgd_sim::validate::{self as v, Validation};
    let sharing = Sharing::from(sharing);
    let on_testbed = asgd_sim::input::Override::new(
        "machine.topology",
        toml::Value::String(testbed.to_string()),
        "--testbed",
    );
    let (base, sweep) = crate::validation_points(spec, set, &[on_testbed])?;
    let out = out.unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("{}-validate-{}", base.name(), sharing.name()))
    });
    asgd_sim::report::output::check_target("--out", &out)?;
    let points: Vec<(String, Vec<asgd_sim::input::Override>)> = sweep
        .points()
        .iter()
        .map(|p| (p.name.clone(), sweep.overrides(p)))
        .collect();
    let dir = OutputDir::begin(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let stop = stop_on_ctrl_c();
    let program = std::env::current_exe().context("cannot find this program's path")?;
    // One bar over every real iteration of every run, moved as rank 0 reports them; its
    // message says what runs now (the probes and the calibration before the first run).
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        // Its length is known once the points are loaded; until then it stands at 0 %.
        indicatif::ProgressBar::new(1)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "validate on the testbed [{bar:25}] {percent:>3}% of the real iterations, {msg}, \
             {elapsed}, ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_secs(1));
    let log = LogLines::for_stderr(&bar, "validate on the testbed", quiet);
    let say = |what: &str| bar.set_message(what.to_string());
    let moved = |done: u64, total: u64| {
        if done == 0 {
            // The ETA counts from the first run, not from the probes before it.
            bar.reset_eta();
        }
        bar.set_length(total);
        bar.set_position(done);
    };
    let req = Request {
        scenario: spec,
        points: &points,
        testbed,
        sharing,
        repeats,
        program: &program,
    };
    let done = validate(&req, dir.staging(), &stop, say, moved);
    drop(log);
    bar.finish_and_clear();
    let done = done?;
    let recorded = out.join("testbed.toml").to_string_lossy().into_owned();
    let mut validation = Validation::new(base.name(), &recorded, done.cores, done.points);
    validation.host_warning =
        v::host_warning(std::slice::from_ref(&done.calibration), &validation.points);
    validation.real_on = Some(format!(
        "the processes backend on the testbed `{testbed}` ({} sharing)",
        sharing.name()
    ));
    write_json(&dir, "hosts.json", &done.probes, &out)?;
    crate::write_validation(&dir, &validation, &out)?;
    let written = commit(dir, &out)?;
    if !quiet {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "testbed {testbed} ({} sharing), measured:",
            sharing.name()
        );
        for h in &done.probes {
            let _ = writeln!(
                s,
                "  {:<10} one-way {:>7.1} us, goodput {:>8.2} Mbit/s of {:.1}",
                h.host, h.one_way_latency_us, h.goodput_mbit_per_s, h.port_mbit_per_s
            );
        }
        s.push_str(&validation.table());
        let _ = writeln!(s, "wrote {}", written.join("validation.json").display());
        crate::emit(&s)?;
    }
    match done.stopped {
        Some(why) => Err(crate::stopped_early(
            &why,
            validation.points.len(),
            points.len(),
            &written,
        )),
        None => Ok(()),
    }
}
