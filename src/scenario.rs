//! Scenario files: what to simulate, read in two phases. Serde structs (unknown keys rejected)
//! take the TOML with any `--set` overrides applied; then [`ScenarioFile::resolve`] checks every
//! value, loads the machine and the model, and returns a [`Scenario`] ready to run, or every
//! problem found with its key path and line. Nothing here runs a simulation or writes a file.

use crate::algorithm::{self, Algorithm, AlgorithmKind};
use crate::cluster::Placement;
use crate::data::Dataset;
use crate::faults::FaultsSection;
use crate::input::{InputError, Override, Source};
use crate::machine::device::{ComputeModel, Jitter};
use crate::machine::topology::Topology;
use crate::machine::topology::generators::Generator;
use crate::workload::DatasetSpec;
use crate::workload::dataset::{DatasetInfo, info_of};
use crate::workload::model::{ModelSpec, QuadraticDef};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

mod machine;
mod trains;

use trains::block_ranges;

/// The most iterations (mini-batches, all learners together) a run may take: a timing-only
/// simulation runs some 10^5 of them per second, a real-gradient one far fewer, so this is
/// many minutes already.
pub const MAX_ITERATIONS: u64 = 100_000_000;

/// The most learner-shard pairs a parameter-server run may have on a machine with a network:
/// up to this many flows share the links at once, and every flow that starts or ends re-shares
/// bandwidth among all of them (1,024 learners and 16 shards, 16,384 pairs, take about 20 ms
/// of wall time per simulated iteration on one core).
pub const MAX_SERVER_PAIRS: usize = 65_536;

/// The most synthetic samples (training and test together) generated for real gradients: a
/// few GB of images.
pub const MAX_GENERATED: u64 = 2_000_000;

/// Scenarios shipped inside the binary, usable as `builtin:NAME`.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "paper-cifar10",
        include_str!("../scenarios/paper-cifar10.toml"),
    ),
    ("paper-nlc", include_str!("../scenarios/paper-nlc.toml")),
    ("quick", include_str!("../scenarios/quick.toml")),
    ("quadratic", include_str!("../scenarios/quadratic.toml")),
    ("cluster", include_str!("../scenarios/cluster.toml")),
];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seed of the run's one RNG.
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub machine: MachineSection,
    pub cluster: ClusterSection,
    pub algorithm: algorithm::Section,
    pub workload: WorkloadSection,
    #[serde(default)]
    pub devices: DevicesSection,
    /// Uneven learners (`crate::faults`).
    #[serde(default)]
    pub faults: FaultsSection,
}

fn default_seed() -> u64 {
    1
}

/// The machine: a topology file (or `builtin:NAME`), or a generator.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineSection {
    /// Path relative to the scenario file, or `builtin:power8-k80`.
    pub topology: Option<String>,
    pub generator: Option<Generator>,
    /// How far flows that meet on a channel stray from equal shares: every message's weight
    /// in the sharing is drawn log-normal with mean 1 and this coefficient of variation (0:
    /// exact max-min). Real flows through one port do not share it exactly, and under
    /// processor sharing the flow that gets ahead keeps its lead; no probe measures it yet
    /// (the README gives the value fitted on the testbed and where it holds).
    #[serde(default)]
    pub flow_share_cv: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Number of learners p, one per GPU.
    pub learners: usize,
    /// Number of parameter-server shards S, one per host core.
    #[serde(default = "default_shards")]
    pub shards: usize,
    /// GPU ids for the learners, in order (default: the first p GPUs).
    pub learner_gpus: Option<Vec<String>>,
    /// Core ids for the shards (default: spread over sockets).
    pub shard_cores: Option<Vec<String>>,
}

fn default_shards() -> usize {
    1
}

/// Whether gradients are computed for real or only timed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GradientMode {
    /// Only when things happen: no data, no arithmetic.
    #[default]
    TimingOnly,
    /// Real gradients of the model on the data, applied at the simulated moments.
    Real,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSection {
    /// A built-in model name (see `asgd-sim models`).
    pub model: String,
    pub dataset: DatasetSpec,
    pub epochs: u64,
    #[serde(default)]
    pub gradients: GradientMode,
    /// Training samples evaluated at each epoch end for the curve's train loss and accuracy
    /// (the whole test split is always evaluated).
    #[serde(default = "default_eval_train")]
    pub eval_train_samples: u64,
    /// Parameters of the noisy quadratic model (`model = "quadratic"`).
    pub quadratic: Option<QuadraticDef>,
}

fn default_eval_train() -> u64 {
    5_000
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesSection {
    /// Fraction of the GPU's FP32 peak that the gradient kernels reach.
    #[serde(default = "default_efficiency")]
    pub gpu_efficiency: f64,
    /// Fixed extra time per mini-batch (kernel launches, host-side work), seconds.
    #[serde(default)]
    pub compute_overhead_s: f64,
    /// A measured mini-batch time, seconds; replaces the FLOP model when given.
    pub compute_time_s: Option<f64>,
    /// Random extra time per mini-batch.
    pub jitter: Option<Jitter>,
}

fn default_efficiency() -> f64 {
    0.5
}

impl Default for DevicesSection {
    fn default() -> Self {
        Self {
            gpu_efficiency: default_efficiency(),
            compute_overhead_s: 0.0,
            compute_time_s: None,
            jitter: None,
        }
    }
}

/// A checked scenario with its machine and model resolved.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub file: ScenarioFile,
    /// Where it was read from (for messages and reports).
    pub path: PathBuf,
    pub topology: Topology,
    pub model: ModelSpec,
    pub placement: Placement,
    /// One compute model per learner (GPUs may differ), its `[faults]` slowdown included.
    pub compute: Vec<ComputeModel>,
    /// Each learner's slowdown factor from `[faults]` (1: as fast as its device).
    pub slowdowns: Vec<f64>,
    /// The learners' failures from `[faults]`, in time order.
    pub failures: Vec<crate::faults::Failure>,
    /// Each learner's slow spells from `[faults]` (None where it has none).
    pub flaky: Vec<Option<crate::faults::Flaky>>,
    /// The links `[faults]` slowed (already slowed in `topology`).
    pub slow_links: Vec<crate::faults::SlowLink>,
    /// The shards' failures and checkpoints from `[faults]`.
    pub shard_faults: crate::faults::ShardFaults,
    pub iterations_per_epoch: u64,
    /// Sizes and input of the data.
    pub data: DatasetInfo,
    /// The data set itself: read for file sets, generated for synthetic sets in real-gradient
    /// runs, absent for synthetic sets in timing-only runs.
    pub dataset: Option<Arc<Dataset>>,
}

/// Data sets already read or generated, shared by the scenarios loaded through it (a sweep's
/// points mostly differ in keys other than the data).
#[derive(Default)]
pub struct DataCache(Mutex<Vec<(String, Arc<Dataset>)>>);

impl DataCache {
    fn get_or_load(&self, spec: &DatasetSpec, base: &Path) -> Result<Arc<Dataset>, String> {
        let key = format!("{spec:?} in {}", base.display());
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, d)) = held.iter().find(|(k, _)| *k == key) {
            return Ok(d.clone());
        }
        let d = Arc::new(spec.load(base)?);
        held.push((key, d.clone()));
        Ok(d)
    }
}

/// The text of a scenario file or of `builtin:NAME`, as written.
pub fn source_text(spec: &str) -> Result<String, InputError> {
    match spec.strip_prefix("builtin:") {
        Some(name) => crate::input::builtin_text(BUILTIN, "scenario", name),
        None => std::fs::read_to_string(spec).map_err(|cause| InputError::Io {
            path: spec.into(),
            cause,
        }),
    }
}

/// Reads a scenario from a path or `builtin:NAME`, applies overrides and checks it.
pub fn load(spec: &str, overrides: &[Override]) -> Result<Scenario, InputError> {
    load_with(spec, overrides, &DataCache::default())
}

/// As [`load`], taking data sets from `cache` and adding the ones it reads to it.
pub fn load_with(
    spec: &str,
    overrides: &[Override],
    cache: &DataCache,
) -> Result<Scenario, InputError> {
    let (mut source, base) = match spec.strip_prefix("builtin:") {
        Some(name) => {
            let text = crate::input::builtin_text(BUILTIN, "scenario", name)?;
            // Built-in scenarios name their topology relative to the repository's scenarios/.
            (Source::from_text(Path::new(spec), text)?, None)
        }
        None => {
            let path = Path::new(spec);
            (
                Source::read(path)?,
                Some(path.parent().unwrap_or(Path::new(".")).to_path_buf()),
            )
        }
    };
    let file: ScenarioFile = source.deserialize(overrides).map_err(|mut e| {
        // A key that moved into its kind's table says where it went.
        if let InputError::Invalid { problems, .. } = &mut e {
            for p in problems {
                if let Some(now) = algorithm::moved(&p.key) {
                    p.message.push_str(&format!("; it is now `{now}`"));
                }
            }
        }
        e
    })?;
    file.resolve(&source, base.as_deref(), cache)
}

impl ScenarioFile {
    /// Checks every value and builds the runnable scenario. `base` is the directory relative
    /// paths are taken from (None for built-ins, whose topologies are built in too).
    pub fn resolve(
        self,
        source: &Source,
        base: Option<&Path>,
        cache: &DataCache,
    ) -> Result<Scenario, InputError> {
        let mut problems: Vec<(String, String)> = vec![];
        let (c, a) = (&self.cluster, &self.algorithm);
        let (w, d) = (&self.workload, &self.devices);
        let share_cv = self.machine.flow_share_cv;
        // Each key's range: (whether it holds, the key, what is wrong otherwise).
        let ranges: [(bool, &str, String); 11] = [
            (
                c.learners >= 1,
                "cluster.learners",
                "must be at least 1".into(),
            ),
            (c.shards >= 1, "cluster.shards", "must be at least 1".into()),
            (
                a.learning_rate.is_finite() && a.learning_rate > 0.0,
                "algorithm.learning_rate",
                format!("must be a positive number, got {}", a.learning_rate),
            ),
            (
                a.batch_size >= 1,
                "algorithm.batch_size",
                "must be at least 1".into(),
            ),
            (
                w.epochs >= 1,
                "workload.epochs",
                "must be at least 1".into(),
            ),
            (
                d.gpu_efficiency.is_finite() && d.gpu_efficiency > 0.0 && d.gpu_efficiency <= 1.0,
                "devices.gpu_efficiency",
                format!("must be in (0, 1], got {}", d.gpu_efficiency),
            ),
            (
                d.compute_overhead_s.is_finite() && d.compute_overhead_s >= 0.0,
                "devices.compute_overhead_s",
                format!(
                    "must be a non-negative number of seconds, got {}",
                    d.compute_overhead_s
                ),
            ),
            (
                share_cv.is_finite() && (0.0..=1.0).contains(&share_cv),
                "machine.flow_share_cv",
                format!(
                    "must be in [0, 1] (a coefficient of variation; 0 is exact max-min), got {}",
                    share_cv
                ),
            ),
            (
                d.compute_time_s.is_none_or(|t| t.is_finite() && t > 0.0),
                "devices.compute_time_s",
                format!(
                    "must be a positive number of seconds, got {}",
                    d.compute_time_s.unwrap_or_default()
                ),
            ),
            (
                a.momentum.is_finite() && (0.0..1.0).contains(&a.momentum),
                "algorithm.momentum",
                format!("must be in [0, 1), got {}", a.momentum),
            ),
            (
                a.weight_decay.is_finite() && a.weight_decay >= 0.0,
                "algorithm.weight_decay",
                format!("must be a non-negative number, got {}", a.weight_decay),
            ),
        ];
        for (ok, key, message) in ranges {
            need(&mut problems, ok, key, message);
        }
        if let Some(j) = &d.jitter {
            for (k, m) in j.check() {
                problems.push((format!("devices.jitter.{k}"), m));
            }
        }
        problems.extend(a.kind.check(a, c.learners));
        let crate::faults::Checked {
            slowdowns,
            flaky,
            failures,
            links,
        } = self.faults.check(c.learners, &mut problems);
        if !failures.is_empty() && a.kind == AlgorithmKind::SsgdAllreduce {
            problems.push((
                "faults.fail_at_s".into(),
                "ssgd-allreduce does not model failures: a ring stalls with one peer gone, and \
                 its collective library aborts the job; give the failure to a kind with a \
                 server (ssgd-ps, whose backup workers carry on without the learner)"
                    .into(),
            ));
        }
        let real = w.gradients == GradientMode::Real;
        let (data, dataset) = match w.dataset.synthetic_info() {
            Some(info) if !real => (Some(info), None),
            // Real gradients need the samples themselves, generated in memory.
            Some(info) if info.train_samples.saturating_add(info.test_samples) > MAX_GENERATED => {
                problems.push((
                    "workload.dataset.train_samples".into(),
                    format!(
                        "{} training and {} test samples to generate for real gradients; at \
                         most {MAX_GENERATED} together",
                        info.train_samples, info.test_samples
                    ),
                ));
                (None, None)
            }
            _ => match cache.get_or_load(&w.dataset, base.unwrap_or(Path::new("."))) {
                Ok(d) => (Some(info_of(&d)), Some(d)),
                Err(e) => {
                    problems.push(("workload.dataset".into(), e));
                    (None, None)
                }
            },
        };
        if let Some(info) = &data {
            need(
                &mut problems,
                info.train_samples >= 1,
                "workload.dataset.train_samples",
                "must be at least 1".into(),
            );
        }
        let model = self.resolve_model(data.as_ref(), &mut problems);
        let topology = self.load_topology(base, &mut problems)?;
        if !problems.is_empty() {
            return Err(source.invalid(problems));
        }
        let (Some(mut topology), Some(model), Some(data)) = (topology, model, data) else {
            return Err(source.invalid(problems));
        };
        // The partitioned model has one server per block and Hogwild one shared vector;
        // every other kind splits the parameters evenly over `cluster.shards`.
        let blocks = match a.kind {
            AlgorithmKind::Partitioned => {
                Some(block_ranges(&model, a.partitioned.blocks).map_err(|m| {
                    source.invalid(vec![("algorithm.partitioned.blocks".into(), m)])
                })?)
            }
            AlgorithmKind::Hogwild => Some(crate::cluster::split_even(model.params() as usize, 1)),
            _ => None,
        };
        let mut placement = Placement::new(
            &topology,
            c.learners,
            blocks.as_ref().map_or(c.shards, Vec::len),
            model.params() as usize,
            c.learner_gpus.as_deref(),
            c.shard_cores.as_deref(),
        )
        .map_err(|p| source.invalid(p))?;
        if let Some(ranges) = blocks {
            placement.shard_ranges = ranges;
        }
        let (gpus, cores) = (&placement.learner_gpus, &placement.shard_cores);
        let slow_links = crate::faults::slow_links(&links, &mut topology, gpus, cores)
            .map_err(|p| source.invalid(p))?;
        let shard_faults = self
            .faults
            .shard_faults(cores.len())
            .map_err(|p| source.invalid(p))?;
        if !shard_faults.failures.is_empty() {
            let kind = a.kind.name();
            let refused = match a.kind {
                AlgorithmKind::SsgdAllreduce => Some(format!("{kind} has no shards")),
                AlgorithmKind::Hogwild => Some(format!(
                    "{kind}'s learners write one shared vector in place; it has no server to fail"
                )),
                _ if topology.host().is_some() => Some(format!(
                    "`{}` is a shared-memory host, whose threads the simulator does not stop",
                    topology.name()
                )),
                _ => None,
            };
            if let Some(why) = refused {
                let key = "faults.shard_failures".to_string();
                return Err(source.invalid(vec![(key, format!("cannot fail a shard: {why}"))]));
            }
        }
        if !failures.is_empty() && topology.host().is_some() {
            return Err(source.invalid(vec![(
                "faults.fail_at_s".into(),
                format!(
                    "failures are modelled on a machine of devices and links; `{}` is a \
                     shared-memory host, whose threads the simulator does not stop",
                    topology.name()
                ),
            )]));
        }
        let ring = a.kind.parameters(a, c.learners).server() == algorithm::Server::Ring;
        let pairs = placement.learner_gpus.len() * placement.shard_cores.len();
        if !ring && topology.host().is_none() && pairs > MAX_SERVER_PAIRS {
            return Err(source.invalid(vec![(
                "cluster.learners".into(),
                format!(
                    "{} learners and {} shards are {pairs} learner-shard pairs, past the limit \
                     of {MAX_SERVER_PAIRS}: each pair is a flow sharing the network, and a run \
                     that large would take hours; fewer learners or fewer shards",
                    placement.learner_gpus.len(),
                    placement.shard_cores.len()
                ),
            )]));
        }
        placement
            .check_routes(&topology, ring)
            .map_err(|p| source.invalid(p))?;
        let flops = model.train_flops_per_sample() * a.batch_size as f64;
        // On a shared-memory host a learner is one thread, whose gradient time was measured.
        let host_seconds = match (topology.host(), d.compute_time_s) {
            (Some(h), None) => match h.gradient_seconds(&w.model, model.params(), a.batch_size) {
                Some(t) => Some(t),
                None => {
                    return Err(source.invalid(vec![(
                            "machine.topology".into(),
                            format!(
                                "host `{}` has no measured gradient time for model `{}` ({} parameters) at batch size {}; run `asgd-sim calibrate` on this scenario to measure it, or give devices.compute_time_s",
                                topology.name(),
                                w.model,
                                model.params(),
                                a.batch_size
                            ),
                        )]));
                }
            },
            (_, t) => t,
        };
        let compute = placement
            .learner_gpus
            .iter()
            .map(|&g| {
                let peak = topology.node(g).gpu.as_ref().map_or(1.0, |g| g.peak_tflops);
                let mut m = match host_seconds {
                    Some(t) => ComputeModel {
                        base_s: t,
                        jitter: None,
                        slowdown: 1.0,
                    },
                    None => ComputeModel::from_flops(
                        flops,
                        peak,
                        d.gpu_efficiency,
                        d.compute_overhead_s,
                    ),
                };
                m.jitter = d.jitter.clone();
                m
            })
            .zip(&slowdowns)
            .map(|(m, &slowdown)| ComputeModel { slowdown, ..m })
            .collect();
        let partition = data.train_samples / c.learners.max(1) as u64;
        if a.batch_size > partition {
            let whole = if a.batch_size > data.train_samples {
                format!(
                    "larger than the whole training set ({} samples)",
                    data.train_samples
                )
            } else {
                format!(
                    "larger than a learner's share of the training set: {} samples over {} \
                     learners is {partition} each, so every epoch would have fewer mini-batches \
                     than learners",
                    data.train_samples, c.learners
                )
            };
            return Err(source.invalid(vec![(
                "algorithm.batch_size".into(),
                format!(
                    "a mini-batch of {} samples is {whole}; at most {partition} here, or more \
                     train_samples, or fewer learners",
                    a.batch_size
                ),
            )]));
        }
        let iterations_per_epoch = data.train_samples.div_ceil(a.batch_size);
        let iterations = u128::from(w.epochs) * u128::from(iterations_per_epoch);
        if iterations > u128::from(MAX_ITERATIONS) {
            return Err(source.invalid(vec![(
                "workload.epochs".into(),
                format!(
                    "{} epochs of {iterations_per_epoch} mini-batches is {iterations} \
                     iterations, past the limit of {MAX_ITERATIONS} (many minutes of simulation); \
                     fewer epochs, a smaller data set or larger batches",
                    w.epochs
                ),
            )]));
        }
        Ok(Scenario {
            path: source.path().to_path_buf(),
            topology,
            model,
            placement,
            compute,
            slowdowns,
            failures,
            flaky,
            slow_links,
            shard_faults,
            iterations_per_epoch,
            data,
            dataset,
            file: self,
        })
    }
}

impl Scenario {
    pub fn name(&self) -> &str {
        &self.file.name
    }

    pub fn algorithm(&self) -> AlgorithmKind {
        self.file.algorithm.kind
    }

    /// The algorithm with its parameters (checked when the scenario was loaded).
    pub fn spec(&self) -> Algorithm {
        let a = &self.file.algorithm;
        a.kind.parameters(a, self.placement.learner_gpus.len())
    }

    /// Each learner's slow spells, from the start of the run.
    pub fn spells(&self) -> Vec<Option<crate::faults::Spells>> {
        crate::faults::spells(&self.flaky, self.file.seed)
    }
}

fn need(problems: &mut Vec<(String, String)>, ok: bool, key: &str, message: String) {
    if !ok {
        problems.push((key.to_string(), message));
    }
}
