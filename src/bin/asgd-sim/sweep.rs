//! `sweep`, `run --sweep` and `reproduce`: sweeps of scenarios and their reports.

use super::*;

/// Runs (this shard of) a sweep into `out`, then writes its report if every point is there.
pub(crate) fn sweep_command(
    spec: &asgd_sim::sweep::SweepSpec,
    out: &std::path::Path,
    shard: Option<&str>,
    jobs: Option<usize>,
    threads: Option<usize>,
    quiet: bool,
) -> anyhow::Result<()> {
    use asgd_sim::sweep::{self, Shard, SweepOptions};
    let shard = shard.map(Shard::parse).transpose()?;
    asgd_sim::report::output::check_target("--out", out)?;
    let opts = SweepOptions {
        out: out.to_path_buf(),
        jobs,
        threads: threads.unwrap_or_else(asgd_sim::setup::default_threads),
        shard,
        quiet,
    };
    let started = Instant::now();
    let o = sweep::run(spec, &opts)?;
    let mut text = format!(
        "sweep {}: {} points{}; ran {} ({}) in {:.1} s, kept {} finished before",
        spec.name,
        o.total,
        shard.map_or(String::new(), |s| format!(
            ", {} in shard {}/{}",
            o.owned, s.index, s.count
        )),
        o.ran.len(),
        match spec.backend {
            sweep::Backend::Real => "one at a time on the real backend".to_string(),
            sweep::Backend::Simulator => format!(
                "{} at a time, {} thread(s) each",
                o.jobs, o.threads_per_point
            ),
        },
        started.elapsed().as_secs_f64(),
        o.skipped.len(),
    );
    if !o.diverged.is_empty() {
        text.push_str(&format!("; diverged (recorded): {}", o.diverged.join(" ")));
    }
    text.push('\n');
    if o.complete {
        let results = asgd_sim::report::results::gather(&[out.to_path_buf()])?;
        let written = report_sweep::write(&results, &out.join("report"))?;
        text.push_str(&format!(
            "report: {}\n",
            written.join("index.html").display()
        ));
    } else if o.failed.is_empty() {
        text.push_str(&format!(
            "results in {}; when every shard is done: asgd-sim report {} [OTHER SHARD DIRS...]\n",
            out.display(),
            out.display()
        ));
    }
    emit(&text)?;
    if !o.failed.is_empty() {
        let list: Vec<String> = o
            .failed
            .iter()
            .map(|(n, why)| format!("{n}: {why}"))
            .collect();
        anyhow::bail!(
            "{} of {} points failed (the others are kept):\n  {}",
            o.failed.len(),
            o.owned,
            list.join("\n  ")
        );
    }
    Ok(())
}

/// Runs the paper's sweeps and puts each report under `out/<sweep name>/`, and the guarantee
/// ratio of the seed's theorem beside them.
/// What `reproduce` is about to do and, for the shipped sweeps, how long it took where the
/// shipped figures were made.
fn reproduce_estimate(files: &[PathBuf], specs: &[asgd_sim::sweep::SweepSpec]) -> String {
    let points: usize = specs.iter().map(|s| s.points().len()).sum();
    let sweeps = if specs.len() == 1 { "sweep" } else { "sweeps" };
    let mut text = format!("reproduce: {points} points in {} {sweeps}", specs.len());
    let shipped = ["paper-cifar10.toml", "paper-nlc.toml"];
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    if names == shipped {
        // Measured on a 2-core machine: CIFAR-10 1,538 s, NLC 279 s (figures/README.md).
        let cores = asgd_sim::setup::default_threads().max(1) as f64;
        // Scaled by core count: points run side by side, one per core.
        let minutes = (1538.0 + 279.0) / 60.0 * 2.0 / cores;
        text.push_str(&format!(
            "; about 30 min of wall time on 2 cores (9.3 GB peak memory), about {minutes:.0} \
             min on this host's {cores} cores if the points spread over them; finished points \
             are kept, so a stopped run resumes"
        ));
    }
    text.push('\n');
    text
}

pub(crate) fn reproduce(
    out: &std::path::Path,
    runs: &std::path::Path,
    sweeps: &[PathBuf],
    set: &[String],
    jobs: Option<usize>,
    threads: Option<usize>,
    quiet: bool,
) -> anyhow::Result<()> {
    use asgd_sim::sweep::{self, SweepOptions};
    let fixed = parse_overrides(set)?;
    asgd_sim::report::output::check_target("--out", out)?;
    asgd_sim::report::output::check_target("--runs", runs)?;
    let mut specs = vec![];
    for file in sweeps {
        let mut spec = sweep::SweepSpec::read(file)?;
        spec.fixed.extend(fixed.iter().cloned());
        specs.push(spec);
    }
    if !quiet {
        emit(&reproduce_estimate(sweeps, &specs))?;
    }
    let mut text = String::new();
    for spec in &specs {
        let dir = runs.join(&spec.name);
        let started = Instant::now();
        let o = sweep::run(
            spec,
            &SweepOptions {
                out: dir.clone(),
                jobs,
                threads: threads.unwrap_or_else(asgd_sim::setup::default_threads),
                shard: None,
                quiet,
            },
        )?;
        if let Some((name, why)) = o.failed.first() {
            anyhow::bail!("sweep {}: point {name} failed: {why}", spec.name);
        }
        let results = asgd_sim::report::results::gather(&[dir])?;
        let written = report_sweep::write(&results, &out.join(&spec.name))?;
        text.push_str(&format!(
            "{}: {} points ({} run now) in {:.1} s: {}\n",
            spec.name,
            o.total,
            o.ran.len(),
            started.elapsed().as_secs_f64(),
            written.join("index.html").display()
        ));
    }
    emit(&text)
}
