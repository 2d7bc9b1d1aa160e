//! `calibrate` and `validate`: this host measured, and the simulator checked against it.

use super::*;

/// Loads `specs` (default: the quick scenario) with real gradients, for timing them.
pub(crate) fn calibration_scenarios(
    specs: &[String],
    overrides: &[Override],
) -> anyhow::Result<Vec<scenario::Scenario>> {
    let default = ["builtin:quick".to_string()];
    let specs = if specs.is_empty() {
        &default[..]
    } else {
        specs
    };
    let mut all = overrides.to_vec();
    all.push(asgd_sim::validate::real_gradients());
    Ok(specs
        .iter()
        .map(|s| scenario::load(s, &all))
        .collect::<Result<_, _>>()?)
}

pub(crate) fn calibrate_command(
    specs: &[String],
    out: &std::path::Path,
    set: &[String],
    quiet: bool,
) -> anyhow::Result<()> {
    let scenarios = calibration_scenarios(specs, &parse_overrides(set)?)?;
    if !quiet {
        eprintln!("measuring this host (a few seconds; leave it otherwise idle)");
    }
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(1)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "calibrate [{bar:25}] {percent:>3}% {msg}, {elapsed}, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(500));
    let cal = asgd_sim::calibrate::measure_with(
        &scenarios.iter().collect::<Vec<_>>(),
        |s: &asgd_sim::calibrate::Stage| {
            // In milliseconds of the stages' nominal durations.
            bar.set_length(s.total.as_millis() as u64);
            bar.set_position(s.done.as_millis() as u64);
            bar.set_message(s.what.clone());
        },
    );
    bar.finish_and_clear();
    let cal = cal?;
    write_atomic(out, cal.topology_toml("localhost").as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    if !quiet {
        emit(&format!("{}wrote {}\n", cal.table(), out.display()))?;
    }
    Ok(())
}

/// The scenario with `set`'s fixed keys (and `extra`), real gradients, and the sweep of its
/// points: KEY=V1,V2,... is a list of points; anything else (arrays and strings included) is
/// fixed.
pub(crate) fn validation_points(
    spec: &str,
    set: &[String],
    extra: &[Override],
) -> anyhow::Result<(scenario::Scenario, asgd_sim::sweep::SweepSpec)> {
    let (lists, fixed): (Vec<&String>, Vec<&String>) = set.iter().partition(|s| {
        s.split_once('=').is_some_and(|(_, v)| {
            let v = v.trim_start();
            v.contains(',') && !v.starts_with(['[', '"', '\''])
        })
    });
    let mut fixed = fixed
        .into_iter()
        .map(|s| Override::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    fixed.push(asgd_sim::validate::real_gradients());
    fixed.extend_from_slice(extra);
    let base = scenario::load(spec, &fixed)?;
    let lists: Vec<String> = lists.into_iter().cloned().collect();
    let sweep = asgd_sim::sweep::SweepSpec::from_lists(spec, base.name(), fixed, &lists, "--set")?;
    Ok((base, sweep))
}

pub(crate) fn validate_command(
    spec: &str,
    set: &[String],
    host: Option<PathBuf>,
    out: Option<PathBuf>,
    repeats: usize,
    quiet: bool,
) -> anyhow::Result<()> {
    use asgd_sim::validate::{self as v, Validation};
    let (base, sweep) = validation_points(spec, set, &[])?;
    let out =
        out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-validate", base.name())));
    asgd_sim::report::output::check_target("--out", &out)?;
    let points = sweep.points();
    // Every point is checked before anything runs.
    let real: Vec<scenario::Scenario> = points
        .iter()
        .map(|p| scenario::load(spec, &sweep.overrides(p)))
        .collect::<Result<_, _>>()?;
    // A given host file is checked before anything is written.
    let given = match host {
        Some(h) => {
            let file = std::path::absolute(&h).unwrap_or(h);
            Some((file.clone(), host_topology(&file)?))
        }
        None => None,
    };
    // Each point on the host; on a given host checked before anything runs.
    let load_on_host = |file: &std::path::Path| -> Result<Vec<scenario::Scenario>, InputError> {
        let text = file.to_string_lossy();
        points
            .iter()
            .map(|p| {
                let mut o = sweep.overrides(p);
                o.extend(v::host_overrides(&text));
                scenario::load(spec, &o)
            })
            .collect()
    };
    let early = match &given {
        Some((file, _)) => Some(load_on_host(file)?),
        None => None,
    };
    let dir = OutputDir::begin(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let stop = stop_on_ctrl_c();
    // One bar over every real iteration of every round; its message says what runs now.
    let work: u64 = real
        .iter()
        .map(|sc| sc.file.workload.epochs * sc.iterations_per_epoch)
        .sum::<u64>()
        * repeats.max(1) as u64;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(work)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "validate [{bar:25}] {percent:>3}% of the real iterations, {msg}, {elapsed}, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_secs(1));
    let log = asgd_sim::observe::log_lines::LogLines::for_stderr(&bar, "validate", quiet);
    let say = |what: &str| bar.set_message(what.to_string());
    let watch = |sc: &scenario::Scenario| {
        let epochs = sc.file.workload.epochs;
        IterationBar::new(
            ProgressBar::hidden(),
            epochs,
            epochs * sc.iterations_per_epoch,
        )
        .feeding(bar.clone())
    };
    let named: Vec<(&str, &scenario::Scenario)> = points
        .iter()
        .zip(&real)
        .map(|(p, r)| (p.name.as_str(), r))
        .collect();
    let runs = v::run_real(&named, repeats, given.is_none(), &stop, say, watch)?;
    let (host_file, machine, calibration) = match given {
        Some((file, topology)) => (file, topology, None),
        None => {
            let Some(cal) = asgd_sim::calibrate::Calibration::mean(&runs.calibrations) else {
                anyhow::bail!(
                    "validation stopped before the host was calibrated: {}",
                    runs.stopped.as_deref().unwrap_or("interrupted")
                );
            };
            dir.write("localhost.toml", cal.topology_toml("localhost").as_bytes())
                .with_context(|| format!("cannot write into {}", out.display()))?;
            let file = dir.staging().join("localhost.toml");
            let file = std::path::absolute(&file).unwrap_or(file);
            let topology = host_topology(&file)?;
            (file, topology, Some(cal))
        }
    };
    let host_text = host_file.to_string_lossy().into_owned();
    let simulated = match early {
        Some(s) => s,
        None => load_on_host(&host_file)?,
    };
    let named: Vec<(&str, &scenario::Scenario)> = points
        .iter()
        .zip(&simulated)
        .map(|(p, s)| (p.name.as_str(), s))
        .collect();
    let results = v::compare(&named, &runs, say)?;
    drop(log);
    bar.finish_and_clear();
    let stopped = runs.stopped;
    // Where the host file will be once the directory is in place.
    let recorded = match &calibration {
        Some(_) => out.join("localhost.toml").to_string_lossy().into_owned(),
        None => host_text.clone(),
    };
    let mut validation = Validation::new(base.name(), &recorded, machine.cores().len(), results);
    validation.host_warning = v::host_warning(&runs.calibrations, &validation.points);
    write_validation(&dir, &validation, &out)?;
    let written = dir
        .commit()
        .with_context(|| format!("cannot move results into {}", out.display()))?;
    if !quiet {
        let mut text = String::new();
        if let Some(c) = &calibration {
            text.push_str(&c.table());
        }
        text.push_str(&validation.table());
        text.push_str(&format!(
            "wrote {}\n",
            written.join("validation.json").display()
        ));
        emit(&text)?;
    }
    match stopped {
        Some(why) => Err(stopped_early(
            &why,
            validation.points.len(),
            points.len(),
            &written,
        )),
        None => Ok(()),
    }
}

/// The error of a validation that stopped early, with how far it got and where that is.
pub(crate) fn stopped_early(
    why: &str,
    compared: usize,
    points: usize,
    written: &std::path::Path,
) -> anyhow::Error {
    anyhow::anyhow!(
        "validation stopped ({why}) with {compared} of {points} points compared; they are in {}",
        written.display()
    )
}

/// Writes validation.json and the comparison figures (SVG and PNG) into `dir`, bound for
/// `out`.
pub(crate) fn write_validation(
    dir: &OutputDir,
    validation: &asgd_sim::validate::Validation,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let fail = || format!("cannot write into {}", out.display());
    dir.write("validation.json", validation.to_json().as_bytes())
        .with_context(fail)?;
    if !validation.points.is_empty() {
        for f in validation.figures()? {
            dir.write(&format!("{}.svg", f.name), f.svg.as_bytes())
                .with_context(fail)?;
            dir.write(&format!("{}.png", f.name), &f.png)
                .with_context(fail)?;
        }
    }
    Ok(())
}

/// A topology file that describes a shared-memory host (has a `[host]` table).
pub(crate) fn host_topology(file: &std::path::Path) -> anyhow::Result<Topology> {
    let text = file.to_string_lossy();
    let topology = topology_file::load(&text)?;
    if topology.host().is_none() {
        let source = asgd_sim::input::Source::read(file)?;
        return Err(source
            .invalid(vec![(
                "host".into(),
                "this topology has no [host] table: give a file written by `asgd-sim calibrate`"
                    .into(),
            )])
            .into());
    }
    Ok(topology)
}

/// Whether `report` was given one `validate` directory (validation.json, no sweep.json).
pub(crate) fn is_validation(dirs: &[std::path::PathBuf]) -> bool {
    matches!(dirs, [d] if d.join("validation.json").is_file() && !d.join("sweep.json").exists())
}

/// Redraws a validation's figures from its validation.json, into `out` or the directory itself.
pub(crate) fn redraw_validation(
    dir: &std::path::Path,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let file = dir.join("validation.json");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let validation = asgd_sim::validate::Validation::from_json(&text).map_err(|e| {
        let message = format!("not a validation.json written by `asgd-sim validate`: {e}");
        asgd_sim::input::bad_flag("report", &file.display().to_string(), &message)
    })?;
    let out = out.unwrap_or(dir);
    asgd_sim::report::output::check_target("--out", out)?;
    let figures = if validation.points.is_empty() {
        vec![]
    } else {
        validation.figures()?
    };
    for f in &figures {
        for (ext, bytes) in [("svg", f.svg.as_bytes()), ("png", &f.png[..])] {
            let path = out.join(format!("{}.{ext}", f.name));
            asgd_sim::report::output::write_atomic(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    emit(&format!(
        "redrew {} figures of the validation (SVG and PNG) in {} from {}, measuring nothing\n",
        figures.len(),
        out.display(),
        file.display()
    ))
}
