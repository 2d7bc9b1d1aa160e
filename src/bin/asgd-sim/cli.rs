//! The command line's shape: every subcommand, its arguments and their help, as clap reads
//! them. What each one does is in `main.rs`'s dispatch and the files it calls.

use super::*;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "asgd-sim",
    version,
    about = "Discrete-event simulator of asynchronous SGD on HPC machines"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How a sweep's points share the cores.
#[derive(clap::Args)]
pub(crate) struct Parallel {
    /// Points run at once [default: one per core, each with one arithmetic thread].
    #[arg(long, value_parser = at_least_one)]
    pub(crate) jobs: Option<usize>,
    /// Threads for all points together [default: all cores].
    #[arg(long, value_parser = at_least_one)]
    pub(crate) threads: Option<usize>,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
        #[arg(long, value_parser = at_least_one)]
        threads: Option<usize>,
        /// Sweep a key over values, e.g. --sweep cluster.learners=2,4,8,16 (repeatable; the
        /// points are the product). Results go to OUT/points/<point>/ and a report to
        /// OUT/report/ [OUT default: runs/<scenario name>-sweep].
        #[arg(long = "sweep", value_name = "KEY=V1,V2,...", conflicts_with = "trace")]
        sweep: Vec<String>,
        /// With --sweep: points run at once [default: one per core].
        #[arg(long, requires = "sweep", value_parser = at_least_one)]
        jobs: Option<usize>,
        /// With --sweep: run only the I-th of N shares of the points (1 <= I <= N).
        #[arg(long, value_name = "I/N", requires = "sweep")]
        shard: Option<String>,
    },
    /// Run the scenario's algorithm for real on this host: learner and shard threads, real
    /// copies of parameters and gradients, real gradients; writes summary.json (backend "real",
    /// measured seconds) and curve.csv like `run`. Ctrl-C stops it and writes what it measured.
    Real {
        /// Scenario file, or builtin:NAME (its algorithm and model; this host is the machine).
        scenario: String,
        /// Output directory [default: runs/<scenario name>-real].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a scenario key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Also write the learners' timeline as Chrome Trace Event JSON (open in Perfetto),
        /// on the run's clock, as `run --trace` writes the simulated one.
        #[arg(long, value_name = "FILE", conflicts_with = "slurm")]
        trace: Option<PathBuf>,
        /// Print nothing but errors.
        #[arg(long, short)]
        quiet: bool,
        /// Run every learner and shard as its own process, talking over TCP. Under Slurm
        /// (srun) or an MPI launcher each task is one rank, and ASGD_SIM_COORDINATOR=host:port
        /// names rank 0's address; otherwise asgd-sim starts every rank on this host.
        #[arg(long)]
        processes: bool,
        /// With --processes: print an sbatch script that runs it under Slurm, one task per
        /// rank, and exit (creates the directory above --out, where Slurm writes the job's
        /// log).
        #[arg(long, requires = "processes")]
        slurm: bool,
        /// With --slurm: nodes to spread the ranks over.
        #[arg(long, default_value_t = 2, requires = "slurm", value_parser = at_least_one)]
        slurm_nodes: usize,
        /// With --slurm: cores per task.
        #[arg(long, default_value_t = 1, requires = "slurm", value_parser = at_least_one)]
        slurm_cpus: usize,
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
        /// Print nothing but errors.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Build a small cluster on this machine (root): network namespaces for the hosts of a
    /// topology on one switch, veth pairs, each port's rate set by tc; measure each host's
    /// latency and goodput and concurrent TCP flows against max-min sharing; tear it down.
    Testbed {
        /// Topology of hosts on one net-switch.
        #[arg(default_value = "builtin:testbed")]
        topology: String,
        /// How a port shares its rate among the hosts whose traffic meets there: fair (htb,
        /// one class per host) or fifo (tbf, one queue).
        #[arg(long, default_value = "fair")]
        sharing: TestbedSharing,
        /// The host the flows go to [default: the one host without a learner device].
        #[arg(long)]
        to: Option<String>,
        /// Sizes of the concurrent flows, one from each other host in order, MB.
        #[arg(long, value_delimiter = ',', default_value = "2.5,5,10,20")]
        megabytes: Vec<f64>,
        /// When each flow starts after the first, ms [default: all at once].
        #[arg(long, value_delimiter = ',')]
        start_ms: Vec<f64>,
        /// Output directory for probe.json [default: runs/testbed-<sharing>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print nothing but errors.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check the simulator against real runs on this host: for each point, run the scenario
    /// for real, simulate it on the calibrated host, and report the errors of the epoch time
    /// and its phases, the KS distance between the staleness distributions and the difference
    /// in final accuracy; writes validation.json and comparison figures.
    Validate {
        /// Scenario file, or builtin:NAME, to run for real and simulate.
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
        /// The real side: threads on this host, or processes on a testbed of network
        /// namespaces (root), simulated on the testbed's topology as measured.
        #[arg(long, default_value = "threads")]
        backend: ValidateBackend,
        /// With --backend processes: the testbed's topology [default: builtin:testbed].
        #[arg(long)]
        testbed: Option<String>,
        /// With --backend processes: how the testbed's ports share, fair or fifo [default:
        /// fair].
        #[arg(long)]
        sharing: Option<TestbedSharing>,
        /// Print nothing but errors.
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
        #[command(flatten)]
        parallel: Parallel,
        /// Run only the I-th of N shares of the points (1 <= I <= N), e.g. one Slurm array task.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Print an sbatch script that runs the sweep as a Slurm job array and create the
        /// directory its tasks write into; run nothing.
        #[arg(long)]
        slurm: bool,
        /// With --slurm: array tasks [default: one per point].
        #[arg(long, requires = "slurm", value_parser = at_least_one)]
        slurm_tasks: Option<usize>,
        /// With --slurm: cores per array task.
        #[arg(long, default_value_t = 4, requires = "slurm", value_parser = at_least_one)]
        slurm_cpus: usize,
        /// Print nothing but errors and the final line.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Merge the results of sweep directories (one sweep, or its shards) into one report:
    /// figures as SVG and PNG, and index.html. Given a `validate` directory, redraw its
    /// figures from its validation.json, measuring nothing.
    Report {
        /// Sweep directories: one sweep's, or the shards' of one sweep; or one validate
        /// directory.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Report directory [default: DIR/report of the first DIR; a validate directory's
        /// figures are redrawn in place].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Re-run Bhardwaj & Cong's experiments (scenarios/sweeps/paper-cifar10.toml and
    /// paper-nlc.toml, about 30 min on 2 cores; `--sweeps scenarios/sweeps/paper-lr.toml` runs
    /// the learning-rate result at 500,000 samples, two seeds, about 4 hours) and write their
    /// reports, with the guarantee-ratio figure (`--out figures` refreshes the shipped ones).
    Reproduce {
        /// Where the reports go.
        #[arg(long, default_value = "runs/reproduce/reports")]
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
        #[command(flatten)]
        parallel: Parallel,
        /// Print nothing but errors and the final line of each sweep.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Describe a machine: a topology file, builtin:NAME, or a generator such as
    /// fat-tree:k=4,host.gpus_per_node=4 or nvlink:mesh=true.
    Topology {
        /// A topology file, builtin:NAME, or a generator (fat-tree:..., nvlink:...).
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
        /// The run's budget of samples M K (Bhardwaj & Cong predicted for 500000) [default: the scenario's epochs
        /// times its training samples].
        #[arg(long, value_name = "MK", value_parser = at_least_one_u64)]
        samples: Option<u64>,
        /// With --apply: write the rate with LHL15's condition (2) enforced,
        /// M * min(gamma, gamma_max), instead of the formula's M * gamma.
        #[arg(long, requires = "apply")]
        within_condition: bool,
        /// Threads for the arithmetic [default: all cores]; results do not depend on it.
        #[arg(long, value_parser = at_least_one)]
        threads: Option<usize>,
    },
    /// Convergence-guarantee analysis (LHL15 bound as restated by Bhardwaj & Cong).
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
    /// Measure speed: simulated events per second and wall time per simulated iteration of a
    /// timing-only scenario (default), the gradient arithmetic (--numerics), or a real-gradient
    /// run against its arithmetic alone (--overhead).
    Bench {
        /// The scenario to simulate (events mode), run timing-only.
        #[arg(default_value = "builtin:paper-cifar10")]
        scenario: String,
        /// Training steps of the paper's CIFAR-10 network at batch 128, in samples/s.
        #[arg(long, conflicts_with = "overhead")]
        numerics: bool,
        /// Wall time of a real-gradient scenario against the same arithmetic without the
        /// simulation.
        #[arg(long, value_name = "SCENARIO")]
        overhead: Option<String>,
        /// Learners (events mode; short for --set cluster.learners=P) [default: the scenario's].
        #[arg(long)]
        learners: Option<usize>,
        /// Epochs per repetition (events mode; short for --set workload.epochs=E) [default: 3
        /// for the built-in paper-cifar10, else the scenario's].
        #[arg(long)]
        epochs: Option<u64>,
        /// Repetitions or measured steps; the best (events) or median (numerics) is reported.
        #[arg(long, default_value_t = 5, value_parser = at_least_one)]
        repeat: usize,
        /// Threads for the arithmetic [default: all cores].
        #[arg(long, value_parser = at_least_one)]
        threads: Option<usize>,
        /// Override a key of the scenario (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum TheoryCommand {
    /// Ratio of the optimal guarantees of p learners and of one, over alpha and p (lists
    /// `1,2,4` or log grids `start:stop:count`).
    Ratio {
        /// alpha = sqrt(K sigma^2 / (M L D_f)) values, each > 0: `0.5,1,10` or `0.1:1000:61`.
        #[arg(long, allow_hyphen_values = true)]
        alpha: String,
        /// Learner counts p >= 1: `1,2,4` or `1:1024:11`.
        #[arg(long, allow_hyphen_values = true)]
        p: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Samples p learners need to reach the optimal guarantee one learner reaches with its
    /// budget (give --alpha, or --d-f, --l, --sigma2, --m and --k1).
    Samples {
        /// Learner counts p >= 1: `1,2,4` or `1:1024:11`.
        #[arg(long, allow_hyphen_values = true)]
        p: String,
        /// alpha = sqrt(K sigma^2 / (M L D_f)) > 0, instead of the five quantities below.
        #[arg(long, allow_negative_numbers = true)]
        alpha: Option<f64>,
        /// D_f = f(x_1) - f*, the initial optimality gap, > 0.
        #[arg(long = "d-f", allow_negative_numbers = true)]
        d_f: Option<f64>,
        /// L, the gradient's Lipschitz constant, > 0.
        #[arg(long, allow_negative_numbers = true)]
        l: Option<f64>,
        /// sigma^2, the variance of one sample's gradient, > 0.
        #[arg(long, allow_negative_numbers = true)]
        sigma2: Option<f64>,
        /// M, the mini-batch size, > 0.
        #[arg(long, allow_negative_numbers = true)]
        m: Option<f64>,
        /// K_1, the one learner's budget of updates, > 0.
        #[arg(long, allow_negative_numbers = true)]
        k1: Option<f64>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Largest worker counts for linear speedup: LHL15 and Wang, Shen & Zhao 2019.
    Workers {
        /// K, the number of updates, > 0.
        #[arg(long, allow_negative_numbers = true)]
        k: f64,
        /// M, the mini-batch size, > 0.
        #[arg(long, allow_negative_numbers = true)]
        m: f64,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum DataCommand {
    /// Download, verify (MD5) and unpack an official data set.
    Get {
        /// The data set.
        #[arg(value_parser = ["cifar10", "mnist"])]
        name: String,
        /// Directory to put it in.
        #[arg(long, default_value = asgd_sim::data::download::DEFAULT_DIR)]
        dir: PathBuf,
    },
}

/// A count of threads or jobs: a whole number of at least 1.
pub(crate) fn at_least_one_u64(text: &str) -> Result<u64, String> {
    at_least_one(text).map(|n| n as u64)
}

pub(crate) fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}
