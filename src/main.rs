//! The `asgd-sim` command line: parse, run, print the error chain, return an exit code
//! (0 success, 1 failure while running or writing, 2 bad input).

use anyhow::Context as _;
use asgd_sim::input::{InputError, Override};
use asgd_sim::machine::topology::generators::Generator;
use asgd_sim::machine::topology::{Topology, file as topology_file};
use asgd_sim::observe::Observer;
use asgd_sim::report::output::{OutputDir, write_atomic};
use asgd_sim::report::sweep as report_sweep;
use asgd_sim::report::{curve, table, trace::TraceRecorder};
use asgd_sim::time::SimTime;
use asgd_sim::{run, scenario, workload};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "asgd-sim",
    version,
    about = "Discrete-event simulator of asynchronous SGD on HPC machines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a scenario and write summary.json to the output directory.
    Run {
        /// Scenario file, or builtin:paper-cifar10 / builtin:paper-nlc.
        scenario: String,
        /// Output directory [default: runs/<scenario name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a scenario key, e.g. --set cluster.learners=8 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Also write the event timeline as Chrome Trace Event JSON (open in Perfetto).
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Print nothing but errors.
        #[arg(long, short)]
        quiet: bool,
        /// Threads for the gradient arithmetic [default: all cores]; results do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Sweep a key over values, e.g. --sweep cluster.learners=2,4,8,16 (repeatable; the
        /// points are the product). Results go to OUT/points/<point>/ and a report to
        /// OUT/report/ [OUT default: runs/<scenario name>-sweep].
        #[arg(long = "sweep", value_name = "KEY=V1,V2,...", conflicts_with = "trace")]
        sweep: Vec<String>,
        /// With --sweep: points run at once [default: one per core].
        #[arg(long, requires = "sweep")]
        jobs: Option<usize>,
        /// With --sweep: run only the I-th of N shares of the points (1 <= I <= N).
        #[arg(long, value_name = "I/N", requires = "sweep")]
        shard: Option<String>,
    },
    /// Run the scenario's algorithm for real on this host: learner and shard threads, real
    /// copies of parameters and gradients, real gradients; writes summary.json (backend "real",
    /// measured seconds) and curve.csv like `run`. Ctrl-C stops it and writes what it measured.
    Real {
        scenario: String,
        /// Output directory [default: runs/<scenario name>-real].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a scenario key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Measure this host as the real backend uses it (cores, memory copy rate, update rate,
    /// message latency between threads, one thread's gradient time for each scenario's model
    /// and batch size) and write a topology file with a [host] table, so that the simulator
    /// can model this host.
    Calibrate {
        /// Scenarios whose model and batch size to time; the first sets the slice size
        /// [default: builtin:quick].
        scenarios: Vec<String>,
        /// Topology file to write.
        #[arg(long, default_value = "topologies/localhost.toml")]
        out: PathBuf,
        /// Override a key of every scenario (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check the simulator against real runs on this host: for each point, run the scenario
    /// for real, simulate it on the calibrated host, and report the errors of the epoch time
    /// and its phases, the KS distance between the staleness distributions and the difference
    /// in final accuracy; writes validation.json and comparison figures.
    Validate {
        scenario: String,
        /// KEY=VALUE fixes a key; KEY=V1,V2,... makes one point per value, e.g.
        /// --set cluster.learners=1,2,4 (repeatable; the points are the product).
        #[arg(long = "set", value_name = "KEY=VALUE[,VALUE...]")]
        set: Vec<String>,
        /// A host file written by `calibrate` [default: calibrate now, into OUT/localhost.toml].
        #[arg(long)]
        host: Option<PathBuf>,
        /// Output directory [default: runs/<scenario name>-validate].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Real runs of each point, averaged (the points take turns).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        repeats: u32,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run a sweep file: a base scenario, fixed keys and axes whose product are the points.
    /// Finished points are kept: a stopped sweep started again runs only the rest.
    Sweep {
        /// The sweep file (see scenarios/sweeps/).
        sweep: PathBuf,
        /// Sweep directory [default: runs/<sweep name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Fix a key for every point, after the sweep file's [set] (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Points run at once [default: one per core, each with one arithmetic thread].
        #[arg(long)]
        jobs: Option<usize>,
        /// Threads for all points together [default: all cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Run only the I-th of N shares of the points (1 <= I <= N), e.g. one Slurm array task.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Print an sbatch script that runs the sweep as a Slurm job array, and run nothing.
        #[arg(long)]
        slurm: bool,
        /// With --slurm: array tasks [default: one per point].
        #[arg(long, requires = "slurm")]
        slurm_tasks: Option<usize>,
        /// With --slurm: cores per array task.
        #[arg(long, default_value_t = 4, requires = "slurm")]
        slurm_cpus: usize,
        /// Print nothing but errors and the final line.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Merge the results of sweep directories (one sweep, or its shards) into one report:
    /// figures as SVG and PNG, and index.html.
    Report {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Report directory [default: DIR/report of the first DIR].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Re-run the seed paper's experiments (scenarios/sweeps/paper-*.toml) and write their
    /// reports, with the guarantee-ratio figure, under figures/.
    Reproduce {
        /// Where the reports go.
        #[arg(long, default_value = "figures")]
        out: PathBuf,
        /// Where the sweeps' points go (kept, so a stopped reproduction resumes).
        #[arg(long, default_value = "runs/reproduce")]
        runs: PathBuf,
        /// The sweep files to run.
        #[arg(long, default_values = ["scenarios/sweeps/paper-cifar10.toml", "scenarios/sweeps/paper-nlc.toml"])]
        sweeps: Vec<PathBuf>,
        /// Fix a key for every point of every sweep (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Describe a machine: a topology file, builtin:NAME, or a generator such as
    /// fat-tree:k=4,host.gpus_per_node=4 or nvlink:mesh=true.
    Topology {
        source: String,
        /// Print Graphviz DOT instead of a summary.
        #[arg(long)]
        dot: bool,
    },
    /// List the built-in models with their parameter counts and FLOPs.
    Models,
    /// Predict the learning rate of LHL15's analysis from sigma^2, L and D_f measured at the
    /// scenario's initial point.
    PredictLr {
        /// Scenario file (or builtin:NAME, without --apply).
        scenario: String,
        /// Override a scenario key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Also write the prediction as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write a copy of the scenario with algorithm.learning_rate set to the prediction.
        #[arg(long, value_name = "OUT.toml")]
        apply: Option<PathBuf>,
        /// Mini-batches probed for sigma^2.
        #[arg(long, default_value_t = 64)]
        probes: usize,
        /// Threads for the arithmetic [default: all cores]; results do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Convergence-guarantee analysis (LHL15 bound as restated by the seed paper).
    Theory {
        #[command(subcommand)]
        command: TheoryCommand,
    },
    /// Data sets: `data get cifar10|mnist [--dir DIR]` downloads the official archive and
    /// verifies its checksum.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Measure speed: simulated events per second (default), the gradient arithmetic
    /// (--numerics), or a real-gradient run against its arithmetic alone (--overhead).
    Bench {
        /// Training steps of the paper's CIFAR-10 network at batch 128, in samples/s.
        #[arg(long, conflicts_with = "overhead")]
        numerics: bool,
        /// Wall time of a real-gradient scenario against the same arithmetic without the
        /// simulation.
        #[arg(long, value_name = "SCENARIO")]
        overhead: Option<String>,
        /// Learners (events mode; 1 to 16).
        #[arg(long, default_value_t = 16)]
        learners: usize,
        /// Epochs of paper-cifar10 per repetition (events mode).
        #[arg(long, default_value_t = 3)]
        epochs: u64,
        /// Repetitions or measured steps; the best (events) or median (numerics) is reported.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Threads for the arithmetic [default: all cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Override a key of the --overhead scenario (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

#[derive(Subcommand)]
enum TheoryCommand {
    /// Ratio of the optimal guarantees of p learners and of one, over alpha and p (lists
    /// `1,2,4` or log grids `start:stop:count`).
    Ratio {
        #[arg(long)]
        alpha: String,
        #[arg(long)]
        p: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Samples p learners need to reach the optimal guarantee one learner reaches with its
    /// budget (give --alpha, or --d-f, --l, --sigma2, --m and --k1).
    Samples {
        #[arg(long)]
        p: String,
        #[arg(long)]
        alpha: Option<f64>,
        #[arg(long = "d-f")]
        d_f: Option<f64>,
        #[arg(long)]
        l: Option<f64>,
        #[arg(long)]
        sigma2: Option<f64>,
        #[arg(long)]
        m: Option<f64>,
        #[arg(long)]
        k1: Option<f64>,
        #[arg(long)]
        json: bool,
    },
    /// Largest worker counts for linear speedup: LHL15 and the second seed paper.
    Workers {
        #[arg(long)]
        k: f64,
        #[arg(long)]
        m: f64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Download, verify (MD5) and unpack an official data set.
    Get {
        #[arg(value_parser = ["cifar10", "mnist"])]
        name: String,
        /// Directory to put it in.
        #[arg(long, default_value = asgd_sim::data::download::DEFAULT_DIR)]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if e.chain().any(is_bad_input) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Errors caused by what the user gave (exit status 2), as opposed to failures while running.
fn is_bad_input(e: &(dyn std::error::Error + 'static)) -> bool {
    use asgd_sim::report::sweep::ReportError;
    use asgd_sim::sweep::runner::SweepError;
    e.downcast_ref::<InputError>().is_some()
        || e.downcast_ref::<asgd_sim::theory::TheoryError>().is_some()
        || matches!(e.downcast_ref::<SweepError>(), Some(SweepError::Input(_)))
        || matches!(
            e.downcast_ref::<ReportError>(),
            Some(
                ReportError::Read { .. } | ReportError::Mismatch { .. } | ReportError::Empty { .. }
            )
        )
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            scenario,
            out,
            set,
            trace,
            quiet,
            threads,
            sweep,
            jobs,
            shard,
        } => {
            if sweep.is_empty() {
                return run_command(&scenario, out, &set, trace, quiet, threads);
            }
            let fixed = parse_overrides(&set)?;
            let base = scenario::load(&scenario, &fixed)?;
            let spec = asgd_sim::sweep::SweepSpec::from_command_line(
                &scenario,
                &format!("{}-sweep", base.name()),
                fixed,
                &sweep,
            )?;
            drop(base);
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&spec.name));
            sweep_command(&spec, &out, shard.as_deref(), jobs, threads, quiet)
        }
        Command::Sweep {
            sweep,
            out,
            set,
            jobs,
            threads,
            shard,
            slurm,
            slurm_tasks,
            slurm_cpus,
            quiet,
        } => {
            let mut spec = asgd_sim::sweep::SweepSpec::read(&sweep)?;
            spec.fixed.extend(parse_overrides(&set)?);
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&spec.name));
            if slurm {
                let absolute = |p: &std::path::Path| {
                    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
                };
                let file = absolute(&sweep);
                let out = absolute(&out);
                return emit(&asgd_sim::sweep::slurm::script(
                    &spec,
                    &asgd_sim::sweep::slurm::SlurmOptions {
                        tasks: slurm_tasks,
                        cpus_per_task: slurm_cpus,
                        sweep_file: &file,
                        out: &out,
                    },
                ));
            }
            sweep_command(&spec, &out, shard.as_deref(), jobs, threads, quiet)
        }
        Command::Real {
            scenario,
            out,
            set,
            quiet,
        } => real_command(&scenario, out, &set, quiet),
        Command::Calibrate {
            scenarios,
            out,
            set,
            quiet,
        } => calibrate_command(&scenarios, &out, &set, quiet),
        Command::Validate {
            scenario,
            set,
            host,
            out,
            repeats,
            quiet,
        } => validate_command(&scenario, &set, host, out, repeats as usize, quiet),
        Command::Report { dirs, out } => {
            let out = out.unwrap_or_else(|| dirs[0].join("report"));
            let results = report_sweep::gather(&dirs)?;
            let written = report_sweep::write(&results, &out)?;
            let mut text = format!(
                "report of {} ({} of {} points): {}\n",
                results.sweep.name,
                results.points.len(),
                results.sweep.points.len(),
                written.join("index.html").display()
            );
            if !results.missing.is_empty() {
                text.push_str(&format!("missing points: {}\n", results.missing.join(" ")));
            }
            emit(&text)
        }
        Command::Reproduce {
            out,
            runs,
            sweeps,
            set,
            jobs,
            threads,
            quiet,
        } => reproduce(&out, &runs, &sweeps, &set, jobs, threads, quiet),
        Command::Topology { source, dot } => {
            let t = load_topology(&source)?;
            if dot {
                emit(&t.to_dot())
            } else {
                emit(&format!("{}\n{}\n", t.summary(), t.description()))
            }
        }
        Command::Models => {
            // Each model is shown on the data it was made for; its input layer and classes follow
            // the scenario's data set.
            let image = workload::Shape::Image { c: 3, h: 32, w: 32 };
            let text_bags = workload::Shape::Tokens {
                vocabulary: 100_000,
                tokens: 40,
            };
            let mut text = format!(
                "{:<12} {:<26} {:>12} {:>18}  description\n",
                "model", "shown on", "params", "train FLOP/sample"
            );
            for name in workload::model::NAMES {
                let (input, classes, data) = if *name == "nlc-text" {
                    (text_bags, 20, "100k-word bags, 20 classes")
                } else {
                    (image, 10, "3x32x32 images, 10 classes")
                };
                if *name == "quadratic" {
                    let q = workload::model::ModelSpec::Quadratic(Default::default());
                    text.push_str(&format!(
                        "{:<12} {:<26} {:>12} {:>18.3e}  {}\n",
                        q.name(),
                        "no data (kind = \"none\")",
                        q.params(),
                        q.train_flops_per_sample(),
                        "noisy quadratic 1/2 sum h_i x_i^2, [workload.quadratic]"
                    ));
                }
                if let Some(m) = workload::model::builtin(name, input, classes) {
                    text.push_str(&format!(
                        "{:<12} {:<26} {:>12} {:>18.3e}  {}\n",
                        m.name,
                        data,
                        m.params(),
                        m.train_flops_per_sample(),
                        m.description
                    ));
                }
            }
            emit(&text)
        }
        Command::Bench {
            numerics,
            overhead,
            learners,
            epochs,
            repeat,
            threads,
            set,
        } => {
            let threads = threads.unwrap_or_else(run::default_threads);
            match (numerics, overhead) {
                (true, _) => bench_numerics(repeat, threads),
                (false, Some(spec)) => bench_overhead(&spec, &set, threads),
                (false, None) => bench(learners, epochs, repeat),
            }
        }
        Command::Theory { command } => {
            use asgd_sim::theory::command::{self as th, Budget, Format};
            let fmt = |j: bool| if j { Format::Json } else { Format::Text };
            let text = match command {
                TheoryCommand::Ratio { alpha, p, json } => th::ratio(&alpha, &p, fmt(json))?,
                TheoryCommand::Samples {
                    p,
                    alpha,
                    d_f,
                    l,
                    sigma2,
                    m,
                    k1,
                    json,
                } => {
                    let budget = Budget::from_options(alpha, d_f, l, sigma2, m, k1)?;
                    th::samples(&budget, &p, fmt(json))?
                }
                TheoryCommand::Workers { k, m, json } => th::workers(k, m, fmt(json))?,
            };
            emit(&text)
        }
        Command::PredictLr {
            scenario,
            set,
            json,
            apply,
            probes,
            threads,
        } => predict_lr(&scenario, &set, json, apply, probes, threads),
        Command::Data {
            command: DataCommand::Get { name, dir },
        } => {
            let mut bar = DownloadBar(ProgressBar::no_length());
            let got = asgd_sim::data::download::get(&name, &dir, &mut bar)?;
            bar.0.finish_and_clear();
            emit(&format!(
                "{}: {}\n",
                name,
                if got.fetched {
                    format!(
                        "downloaded, verified and unpacked into {}",
                        got.path.display()
                    )
                } else {
                    format!("already present in {}", got.path.display())
                }
            ))
        }
    }
}

fn parse_overrides(set: &[String]) -> anyhow::Result<Vec<Override>> {
    Ok(set
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Runs (this shard of) a sweep into `out`, then writes its report if every point is there.
fn sweep_command(
    spec: &asgd_sim::sweep::SweepSpec,
    out: &std::path::Path,
    shard: Option<&str>,
    jobs: Option<usize>,
    threads: Option<usize>,
    quiet: bool,
) -> anyhow::Result<()> {
    use asgd_sim::sweep::{self, Shard, SweepOptions};
    let shard = shard.map(Shard::parse).transpose()?;
    let opts = SweepOptions {
        out: out.to_path_buf(),
        jobs,
        threads: threads.unwrap_or_else(run::default_threads),
        shard,
        quiet,
    };
    let started = Instant::now();
    let o = sweep::run(spec, &opts)?;
    let mut text = format!(
        "sweep {}: {} points{}; ran {} ({} at a time, {} thread(s) each) in {:.1} s, kept {} finished before",
        spec.name,
        o.total,
        shard.map_or(String::new(), |s| format!(
            ", {} in shard {}/{}",
            o.owned, s.index, s.count
        )),
        o.ran.len(),
        o.jobs,
        o.threads_per_point,
        started.elapsed().as_secs_f64(),
        o.skipped.len(),
    );
    if !o.diverged.is_empty() {
        text.push_str(&format!("; diverged (recorded): {}", o.diverged.join(" ")));
    }
    text.push('\n');
    if o.complete {
        let results = report_sweep::gather(&[out.to_path_buf()])?;
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
fn reproduce(
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
    let mut specs = vec![];
    for file in sweeps {
        let mut spec = sweep::SweepSpec::read(file)?;
        spec.fixed.extend(fixed.iter().cloned());
        specs.push(spec);
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
                threads: threads.unwrap_or_else(run::default_threads),
                shard: None,
                quiet,
            },
        )?;
        if let Some((name, why)) = o.failed.first() {
            anyhow::bail!("sweep {}: point {name} failed: {why}", spec.name);
        }
        let results = report_sweep::gather(&[dir])?;
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

fn load_topology(source: &str) -> anyhow::Result<Topology> {
    let is_generator = !source.starts_with("builtin:")
        && !std::path::Path::new(source).exists()
        && ["fat-tree", "nvlink"]
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
struct DownloadBar(ProgressBar);

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

/// Advances a progress bar by epochs.
struct Progress(ProgressBar);

impl Observer for Progress {
    fn epoch_end(&mut self, epoch: u64, _time: SimTime) {
        self.0.set_position(epoch);
    }
}

fn run_command(
    spec: &str,
    out: Option<PathBuf>,
    set: &[String],
    trace: Option<PathBuf>,
    quiet: bool,
    threads: Option<usize>,
) -> anyhow::Result<()> {
    let threads = threads.unwrap_or_else(run::default_threads);
    let overrides = set
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let sc = scenario::load(spec, &overrides)?;
    let out = out.unwrap_or_else(|| PathBuf::from("runs").join(sc.name()));
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(sc.file.workload.epochs)
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] epoch {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(sc.name().to_string());
    let recorder = trace.as_ref().map(|_| {
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
    });
    let started = Instant::now();
    let result = match recorder {
        Some(r) => {
            let res = run::simulate_with(&sc, (Progress(bar.clone()), r), threads)?;
            (res.summary, res.curve, res.events, Some(res.observer.1))
        }
        None => {
            let res = run::simulate_with(&sc, Progress(bar.clone()), threads)?;
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
        text.push_str(&format!(
            "{events} events in {wall:.3} s wall ({:.2} M events/s); wrote {}\n",
            events as f64 / wall.max(1e-9) / 1e6,
            written.join("summary.json").display()
        ));
        if let Some(path) = &trace {
            text.push_str(&format!("trace: {}\n", path.display()));
        }
        emit(&text)?;
    }
    Ok(())
}

fn real_command(
    spec: &str,
    out: Option<PathBuf>,
    set: &[String],
    quiet: bool,
) -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let sc = scenario::load(spec, &parse_overrides(set)?)?;
    let out = out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-real", sc.name())));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // A second Ctrl-C while the results are written falls through to the default.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(sc.file.workload.epochs)
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] epoch {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("{} (real)", sc.name()));
    let res = asgd_sim::real::run(&sc, Progress(bar.clone()), &stop)?;
    bar.finish_and_clear();
    let dir = OutputDir::begin(&out).with_context(|| format!("cannot create {}", out.display()))?;
    dir.write("summary.json", res.summary.to_json().as_bytes())
        .with_context(|| format!("cannot write into {}", out.display()))?;
    if !res.curve.is_empty() {
        dir.write("curve.csv", curve::to_csv(&res.curve).as_bytes())
            .with_context(|| format!("cannot write into {}", out.display()))?;
    }
    let written = dir
        .commit()
        .with_context(|| format!("cannot move results into {}", out.display()))?;
    if !quiet {
        let mut text = table::render(&res.summary);
        text.push_str(&format!(
            "{} gradients on {} learner threads and {} shard threads, measured; wrote {}\n",
            res.gradients,
            res.summary.learners,
            res.summary.shards,
            written.join("summary.json").display()
        ));
        emit(&text)?;
    }
    if let Some(why) = res.stopped {
        anyhow::bail!(
            "the real run stopped early: {why}; what it measured is in {}",
            written.display()
        );
    }
    Ok(())
}

/// Loads `specs` (default: the quick scenario) with real gradients, for timing them.
fn calibration_scenarios(
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

fn calibrate_command(
    specs: &[String],
    out: &std::path::Path,
    set: &[String],
    quiet: bool,
) -> anyhow::Result<()> {
    let scenarios = calibration_scenarios(specs, &parse_overrides(set)?)?;
    if !quiet {
        eprintln!("measuring this host (a few seconds; leave it otherwise idle)");
    }
    let cal = asgd_sim::calibrate::measure(&scenarios)?;
    write_atomic(out, cal.topology_toml("localhost").as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    if !quiet {
        emit(&format!("{}wrote {}\n", cal.table(), out.display()))?;
    }
    Ok(())
}

fn validate_command(
    spec: &str,
    set: &[String],
    host: Option<PathBuf>,
    out: Option<PathBuf>,
    repeats: usize,
    quiet: bool,
) -> anyhow::Result<()> {
    use asgd_sim::validate::{self as v, Validation};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    // KEY=V1,V2,... is a list of points; anything else (arrays and strings included) is fixed.
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
    fixed.push(v::real_gradients());
    let base = scenario::load(spec, &fixed)?;
    let lists: Vec<String> = lists.into_iter().cloned().collect();
    let sweep = asgd_sim::sweep::SweepSpec::from_lists(spec, base.name(), fixed, &lists, "--set")?;
    let out =
        out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-validate", base.name())));
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
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    let say = |what: &str| {
        if !quiet {
            eprintln!("{what}");
        }
    };
    let named: Vec<(&str, &scenario::Scenario)> = points
        .iter()
        .zip(&real)
        .map(|(p, r)| (p.name.as_str(), r))
        .collect();
    let runs = v::run_real(&named, repeats, given.is_none(), &stop, say)?;
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
    let stopped = runs.stopped;
    // Where the host file will be once the directory is in place.
    let recorded = match &calibration {
        Some(_) => out.join("localhost.toml").to_string_lossy().into_owned(),
        None => host_text.clone(),
    };
    let validation = Validation::new(base.name(), &recorded, machine.cores().len(), results);
    dir.write("validation.json", validation.to_json().as_bytes())
        .with_context(|| format!("cannot write into {}", out.display()))?;
    if !validation.points.is_empty() {
        for f in validation.figures()? {
            dir.write(&format!("{}.svg", f.name), f.svg.as_bytes())
                .with_context(|| format!("cannot write into {}", out.display()))?;
            dir.write(&format!("{}.png", f.name), &f.png)
                .with_context(|| format!("cannot write into {}", out.display()))?;
        }
    }
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
    if let Some(why) = stopped {
        anyhow::bail!(
            "validation stopped ({why}) with {} of {} points compared; they are in {}",
            validation.points.len(),
            points.len(),
            written.display()
        );
    }
    Ok(())
}

/// A topology file that describes a shared-memory host (has a `[host]` table).
fn host_topology(file: &std::path::Path) -> anyhow::Result<Topology> {
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

/// Writes to standard output; a reader that went away (`| head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to standard output"),
    }
}

fn bench(learners: usize, epochs: u64, repeat: usize) -> anyhow::Result<()> {
    let overrides = [
        Override::parse(&format!("cluster.learners={learners}"))?,
        Override::parse(&format!("workload.epochs={epochs}"))?,
    ];
    let sc = scenario::load("builtin:paper-cifar10", &overrides)?;
    let mut best = f64::INFINITY;
    let mut events = 0;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let res = run::simulate(&sc, ())?;
        best = best.min(t.elapsed().as_secs_f64());
        events = res.events;
    }
    emit(&format!(
        "timing-only downpour, paper-cifar10, p = {learners}, {epochs} epochs: {events} events in {best:.4} s = {:.2} M events/s (best of {repeat})\n",
        events as f64 / best / 1e6
    ))
}

fn bench_numerics(steps: usize, threads: usize) -> anyhow::Result<()> {
    use asgd_sim::data::{Batch, BatchInputs};
    use asgd_sim::numerics::{Net, Objective, Scratch};
    use rand::{Rng, SeedableRng};
    const BATCH: usize = 128;
    let model = workload::model::cifar10_cnn();
    let net = Net::new(&model)?.with_threads(threads);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let len = model.input.len();
    let batch = Batch {
        inputs: BatchInputs::Dense {
            x: (0..BATCH * len)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect(),
            sample_len: len,
        },
        labels: (0..BATCH).map(|_| rng.random_range(0..10)).collect(),
    };
    let params = net.init_params(1);
    let mut grad = vec![0.0; params.len()];
    let mut scratch = Scratch::default();
    for step in 0..2 {
        net.loss_grad(&params, &batch, step, &mut grad, &mut scratch);
    }
    let mut times: Vec<f64> = (0..steps.max(1))
        .map(|step| {
            let start = Instant::now();
            net.loss_grad(&params, &batch, step as u64, &mut grad, &mut scratch);
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let gflop = model.train_flops_per_sample() * BATCH as f64 / 1e9;
    emit(&format!(
        "cifar10-cnn training step, batch {BATCH}, {threads} thread(s): median {:.1} ms (best {:.1} ms) = {:.0} samples/s ({:.0} best), {:.0} GFLOP/s\n",
        median * 1e3,
        times[0] * 1e3,
        BATCH as f64 / median,
        BATCH as f64 / times[0],
        gflop / median
    ))
}

fn bench_overhead(spec: &str, set: &[String], threads: usize) -> anyhow::Result<()> {
    let mut overrides = vec![Override::parse("workload.gradients=real")?];
    for s in set {
        overrides.push(Override::parse(s)?);
    }
    let sc = scenario::load(spec, &overrides)?;
    let start = Instant::now();
    let res = run::simulate_with(&sc, (), threads)?;
    let run_s = start.elapsed().as_secs_f64();
    let parts = run::real_parts(&sc, threads)?;
    let alone = asgd_sim::training::replay::arithmetic_only(
        parts.objective,
        parts.dataset,
        &parts.setup,
        res.gradients,
        res.curve.len(),
    )
    .as_secs_f64();
    emit(&format!(
        "{}: {} gradients and {} evaluations; simulated run {run_s:.3} s wall, the same arithmetic alone {alone:.3} s: overhead {:+.1}%\n",
        sc.name(),
        res.gradients,
        res.curve.len(),
        100.0 * (run_s / alone - 1.0)
    ))
}

fn predict_lr(
    spec: &str,
    set: &[String],
    json: Option<PathBuf>,
    apply: Option<PathBuf>,
    probes: usize,
    threads: Option<usize>,
) -> anyhow::Result<()> {
    use asgd_sim::predict::{self, PredictOptions};
    if apply.is_some() && spec.starts_with("builtin:") {
        return Err(InputError::UnknownBuiltin {
            what: "scenario file for --apply (a builtin has no file to copy)",
            name: spec.into(),
            available: "a path to a scenario file".into(),
        }
        .into());
    }
    let mut overrides = vec![Override::parse("workload.gradients=real")?];
    for s in set {
        overrides.push(Override::parse(s)?);
    }
    let sc = scenario::load(spec, &overrides)?;
    let opts = PredictOptions {
        probes,
        threads: threads.unwrap_or_else(run::default_threads),
        ..Default::default()
    };
    let pred = predict::predict(&sc, &opts)?;
    if let Some(path) = &json {
        let mut text = serde_json::to_string_pretty(&pred)?;
        text.push('\n');
        write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &apply {
        let text = std::fs::read_to_string(spec).with_context(|| format!("cannot read {spec}"))?;
        let new = predict::apply_to_scenario_text(&text, pred.learning_rate)?;
        write_atomic(path, new.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut text = pred.to_text();
    if let Some(path) = &apply {
        text.push_str(&format!("wrote {}\n", path.display()));
    }
    emit(&text)
}
