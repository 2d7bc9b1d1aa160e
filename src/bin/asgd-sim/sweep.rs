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

/// The shipped sweeps `reproduce` runs and their wall time where the shipped figures were made,
/// on the 2-core development machine (figures/README.md): seconds, and peak memory in GB.
const SHIPPED: &[(&str, f64, f64)] = &[
    ("paper-cifar10.toml", 1538.0, 9.3),
    ("paper-nlc.toml", 279.0, 9.3),
    ("paper-lr.toml", PAPER_LR_S, 0.5),
];

/// The learning-rate sweep's twelve points, two seeds of three p = 16 points of 18.3 min each
/// and three p = 1 points of 20.5 min each, alone on the machine.
const PAPER_LR_S: f64 = 2.0 * (3.0 * 1098.0 + 3.0 * 1233.0);

/// What `reproduce` is about to do and, where every sweep is a shipped one, how long they took
/// where the shipped figures were made.
fn reproduce_estimate(files: &[PathBuf], specs: &[asgd_sim::sweep::SweepSpec]) -> String {
    let points: usize = specs.iter().map(|s| s.points().len()).sum();
    let sweeps = if specs.len() == 1 { "sweep" } else { "sweeps" };
    let mut text = format!("reproduce: {points} points in {} {sweeps}", specs.len());
    let known: Option<Vec<&(&str, f64, f64)>> = files
        .iter()
        .map(|f| {
            let name = f.file_name()?.to_string_lossy().into_owned();
            SHIPPED.iter().find(|(n, _, _)| *n == name)
        })
        .collect();
    if let Some(known) = known.filter(|k| !k.is_empty()) {
        let seconds: f64 = known.iter().map(|(_, s, _)| s).sum();
        let memory = known.iter().map(|(_, _, m)| *m).fold(0.0, f64::max);
        let cores = asgd_sim::setup::default_threads().max(1) as f64;
        // Scaled by core count: points run side by side, one per core.
        let minutes = seconds / 60.0;
        let here = minutes * 2.0 / cores;
        text.push_str(&format!(
            "; about {minutes:.0} min of wall time on 2 cores ({memory} GB peak memory), about \
             {here:.0} min on this host's {cores} cores if the points spread over them; \
             finished points are kept, so a stopped run resumes"
        ));
    }
    text.push('\n');
    text
}

/// Runs the paper's sweeps and puts each report under `out/<sweep name>/`, and the guarantee
/// ratio of the seed's theorem beside them.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(names: &[&str]) -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/sweeps");
        let files: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
        let specs: Vec<_> = files
            .iter()
            .map(|f| asgd_sim::sweep::SweepSpec::read(f).unwrap())
            .collect();
        reproduce_estimate(&files, &specs)
    }

    #[test]
    fn reproduce_says_the_shipped_sweeps_wall_time_and_memory_and_nothing_for_others() {
        let paper = estimate(&["paper-cifar10.toml", "paper-nlc.toml"]);
        assert!(
            paper.starts_with("reproduce: 16 points in 2 sweeps; about 30 min of wall time on 2 cores (9.3 GB peak memory)"),
            "{paper}"
        );
        let lr = estimate(&["paper-lr.toml"]);
        assert!(
            lr.starts_with("reproduce: 12 points in 1 sweep; about 233 min of wall time on 2 cores (0.5 GB peak memory)"),
            "{lr}"
        );
        let other = estimate(&["stragglers.toml"]);
        assert!(other.ends_with("sweep\n"), "{other}");
    }
}
