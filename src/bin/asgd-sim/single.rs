//! `run`, `real` and `topology`: one scenario simulated or run for real, one machine described.

use super::*;

pub(crate) fn load_topology(source: &str) -> anyhow::Result<Topology> {
    let is_generator = !source.starts_with("builtin:")
        && !std::path::Path::new(source).exists()
        && Generator::KINDS
            .iter()
            .any(|g| source == *g || source.starts_with(&format!("{g}:")));
    if is_generator {
        let g = Generator::parse_spec(source).map_err(|m| InputError::BadGenerator {
            spec: source.into(),
            message: m,
        })?;
        return g.build().map_err(|ps| {
            InputError::BadGenerator {
                spec: source.into(),
                message: ps
                    .into_iter()
                    .map(|(k, m)| format!("{k}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            }
            .into()
        });
    }
    Ok(topology_file::load(source)?)
}

/// Shows a download's bytes.
pub(crate) struct DownloadBar(pub(crate) ProgressBar);

impl asgd_sim::data::download::DownloadObserver for DownloadBar {
    fn start(&mut self, url: &str, total: Option<u64>) {
        self.0.reset();
        self.0.set_length(total.unwrap_or(0));
        self.0.set_style(
            ProgressStyle::with_template("{msg} {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.0.set_message(url.to_string());
    }
    fn progress(&mut self, bytes: u64) {
        self.0.inc(bytes);
    }
}

/// A bar over the scenario's iterations that moves as each ends, hidden when `quiet`.
pub(crate) fn iteration_bar(
    sc: &scenario::Scenario,
    prefix: String,
    quiet: bool,
) -> (ProgressBar, IterationBar) {
    let epochs = sc.file.workload.epochs;
    let iterations = epochs * sc.iterations_per_epoch;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(iterations)
    };
    bar.set_style(IterationBar::style());
    bar.set_prefix(prefix.clone());
    let ticking = IterationBar::new(bar.clone(), epochs, iterations).logged(&prefix, quiet);
    bar.tick();
    (bar, ticking)
}

/// A flag that Ctrl-C sets, for a run that stops and writes what it measured. A second Ctrl-C
/// while the results are written falls through to the default.
pub(crate) fn stop_on_ctrl_c() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    stop
}

pub(crate) fn run_command(
    spec: &str,
    out: Option<PathBuf>,
    set: &[String],
    trace: Option<PathBuf>,
    quiet: bool,
    threads: Option<usize>,
) -> anyhow::Result<()> {
    let threads = threads.unwrap_or_else(asgd_sim::setup::default_threads);
    let sc = scenario::load(spec, &parse_overrides(set)?)?;
    let out = out.unwrap_or_else(|| PathBuf::from("runs").join(sc.name()));
    asgd_sim::report::output::check_target("--out", &out)?;
    let (bar, ticking) = iteration_bar(&sc, sc.name().to_string(), quiet);
    let real_gradients = sc.file.workload.gradients == scenario::GradientMode::Real;
    let ticking = ticking.saying(
        real_gradients.then_some("evaluating the starting point"),
        None,
    );
    let recorder = trace.as_ref().map(|_| recorder_for(&sc));
    let started = Instant::now();
    let result = match recorder {
        Some(r) => {
            let res = run::simulate_with(&sc, (ticking, r), threads)?;
            (res.summary, res.curve, res.events, Some(res.observer.1))
        }
        None => {
            let res = run::simulate_with(&sc, ticking, threads)?;
            (res.summary, res.curve, res.events, None)
        }
    };
    let wall = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let (summary, curve, events, recorder) = result;
    let dir = OutputDir::begin(&out).with_context(|| format!("cannot create {}", out.display()))?;
    dir.write("summary.json", summary.to_json().as_bytes())
        .with_context(|| format!("cannot write into {}", out.display()))?;
    if !curve.is_empty() {
        dir.write("curve.csv", curve::to_csv(&curve).as_bytes())
            .with_context(|| format!("cannot write into {}", out.display()))?;
    }
    let written = dir
        .commit()
        .with_context(|| format!("cannot move results into {}", out.display()))?;
    if let (Some(path), Some(r)) = (&trace, recorder) {
        write_atomic(path, r.to_json().as_bytes())
            .with_context(|| format!("cannot write trace {}", path.display()))?;
    }
    if !quiet {
        let mut text = table::render(&summary);
        // With real gradients the wall time is the arithmetic's, not the engine's.
        let rate = if sc.file.workload.gradients == scenario::GradientMode::Real {
            "mostly the arithmetic of real gradients".to_string()
        } else {
            format!("{:.2} M events/s", events as f64 / wall.max(1e-9) / 1e6)
        };
        text.push_str(&format!(
            "{events} events in {wall:.3} s wall ({rate}); wrote {}\n",
            written.join("summary.json").display()
        ));
        if let Some(path) = &trace {
            text.push_str(&format!("trace: {}\n", path.display()));
        }
        emit(&text)?;
    }
    Ok(())
}

/// A trace of `sc`'s run, its tracks named by the learners' devices and the shards' cores.
fn recorder_for(sc: &scenario::Scenario) -> TraceRecorder {
    let ids = |nodes: &[petgraph::graph::NodeIndex]| -> Vec<String> {
        nodes
            .iter()
            .map(|&n| sc.topology.node(n).id.clone())
            .collect()
    };
    TraceRecorder::new(
        &ids(&sc.placement.learner_gpus),
        &ids(&sc.placement.shard_cores),
    )
}

/// What `real` was asked, with or without `--processes`.
pub(crate) struct RealArgs {
    pub spec: String,
    pub out: Option<PathBuf>,
    pub set: Vec<String>,
    pub trace: Option<PathBuf>,
    pub quiet: bool,
}

/// What a real run needs before it starts: its output directory (checked), the Ctrl-C flag,
/// the iteration bar of a run on `how` (threads, processes) and, with `--trace`, the
/// recorder of its timeline.
type RealStart = (
    PathBuf,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    ProgressBar,
    IterationBar,
    Option<TraceRecorder>,
);

fn real_start(sc: &scenario::Scenario, a: &RealArgs, how: &str) -> anyhow::Result<RealStart> {
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-real", sc.name())));
    asgd_sim::report::output::check_target("--out", &out)?;
    let stop = stop_on_ctrl_c();
    let (bar, ticking) = iteration_bar(sc, format!("{} ({how})", sc.name()), a.quiet);
    let ticking = ticking.saying(None, Some("evaluating each epoch's parameters"));
    let recorder = a.trace.as_ref().map(|_| recorder_for(sc));
    Ok((out, stop, bar, ticking, recorder))
}

pub(crate) fn real_command(a: RealArgs) -> anyhow::Result<()> {
    let sc = scenario::load(&a.spec, &parse_overrides(&a.set)?)?;
    let (out, stop, bar, ticking, recorder) = real_start(&sc, &a, "real")?;
    let res = asgd_sim::real::run(&sc, (ticking, recorder), &stop)?;
    bar.finish_and_clear();
    write_real(&res, &out, &a, "threads")
}

/// `real --processes`: this process's rank of a run across processes. Rank 0 (the
/// coordinator, and where no launcher started the ranks, the one that starts them) writes the
/// results; every other rank prints nothing but errors.
pub(crate) fn processes_command(a: RealArgs) -> anyhow::Result<()> {
    use asgd_sim::real::processes::{self, Launch};
    let sc = scenario::load(&a.spec, &parse_overrides(&a.set)?)?;
    let exe = std::env::current_exe().context("cannot find this program to start its ranks")?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let launch = Launch::from_env(Box::new(move |rank, world, at| {
        let mut c = std::process::Command::new(&exe);
        c.args(&args)
            .env("ASGD_SIM_RANK", rank.to_string())
            .env("ASGD_SIM_WORLD", world.to_string())
            .env("ASGD_SIM_COORDINATOR", at.to_string())
            .stdin(std::process::Stdio::null());
        c
    }))?;
    if launch.rank != 0 {
        // The coordinator decides when the run stops: Ctrl-C reaches every rank of a
        // terminal's or srun's job, and this rank ends when the coordinator says so.
        let _ = ctrlc::set_handler(|| {});
        let idle = std::sync::atomic::AtomicBool::new(false);
        processes::run(&sc, (), &idle, &launch)?;
        return Ok(());
    }
    let (out, stop, bar, ticking, recorder) = real_start(&sc, &a, "processes")?;
    // Where a watcher (the testbed's validation) asks for it, the progress goes to a file too.
    let file = asgd_sim::report::progress_file::ProgressFile::from_env();
    let res = processes::run(&sc, ((ticking, file), recorder), &stop, &launch)?;
    bar.finish_and_clear();
    match res {
        Some(res) => write_real(&res, &out, &a, "processes"),
        None => Ok(()),
    }
}

/// `real --processes --slurm`: prints the sbatch script of the run across processes.
pub(crate) fn sbatch_command(
    spec: &str,
    out: Option<PathBuf>,
    set: &[String],
    nodes: usize,
    cpus: usize,
) -> anyhow::Result<()> {
    use asgd_sim::real::processes::{World, sbatch};
    let sc = scenario::load(spec, &parse_overrides(set)?)?;
    let world = World::of(&sc)?;
    let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let out =
        absolute(&out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-real", sc.name()))));
    let scenario = if spec.starts_with("builtin:") {
        spec.to_string()
    } else {
        absolute(std::path::Path::new(spec)).display().to_string()
    };
    let program = std::env::current_exe().context("cannot find this program's path")?;
    // Slurm opens the job's --output file, beside `out`, before the script runs.
    let parent = out.parent().unwrap_or(std::path::Path::new("/"));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let opts = sbatch::SbatchOptions {
        scenario: &scenario,
        sets: set,
        nodes,
        cpus_per_task: cpus,
        out: &out,
        program: &program,
    };
    emit(&sbatch::script(sc.name(), world, &opts))
}

/// Writes a real run's summary.json and curve.csv into `out` and prints its table; a run
/// that stopped early is an error that says where what it measured is.
fn write_real<O>(
    res: &asgd_sim::real::RealResult<(O, Option<TraceRecorder>)>,
    out: &std::path::Path,
    a: &RealArgs,
    how: &str,
) -> anyhow::Result<()> {
    let (trace, quiet) = (a.trace.as_deref(), a.quiet);
    let dir = OutputDir::begin(out).with_context(|| format!("cannot create {}", out.display()))?;
    dir.write("summary.json", res.summary.to_json().as_bytes())
        .with_context(|| format!("cannot write into {}", out.display()))?;
    if !res.curve.is_empty() {
        dir.write("curve.csv", curve::to_csv(&res.curve).as_bytes())
            .with_context(|| format!("cannot write into {}", out.display()))?;
    }
    let written = dir
        .commit()
        .with_context(|| format!("cannot move results into {}", out.display()))?;
    if let (Some(path), Some(r)) = (trace, &res.observer.1) {
        write_atomic(path, r.to_json().as_bytes())
            .with_context(|| format!("cannot write trace {}", path.display()))?;
    }
    if !quiet {
        let mut text = table::render(&res.summary);
        text.push_str(&format!(
            "{} gradients on {} learner {how} and {} shard {how}, measured; wrote {}\n",
            res.gradients,
            res.summary.learners,
            res.summary.shards,
            written.join("summary.json").display()
        ));
        if let Some(path) = trace {
            text.push_str(&format!("trace: {}\n", path.display()));
        }
        emit(&text)?;
    }
    if let Some(why) = &res.stopped {
        anyhow::bail!(
            "the real run stopped early: {why}; what it measured is in {}",
            written.display()
        );
    }
    Ok(())
}
