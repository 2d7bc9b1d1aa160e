//! `asgd-sim calibrate`: measures this host the way the real backend uses it, and writes a
//! topology file describing it, so that the simulator can model the host and be checked against
//! real runs on it. What it measures, each on the code the real backend runs:
//!
//! - the cores this process may run on;
//! - the one-way latency of a channel message to a blocked thread (send and wake-up), and how
//!   much of it is core time (the process's CPU clock over the same messages);
//! - one thread's memory copy rate on a message the size of a shard's slice, and a shard's
//!   update `x <- x - gamma g` of its slice (written as the memory bandwidth a core draws on
//!   when it streams the slice's three passes: read x, read g, write x), both measured in place:
//!   a learner thread pulls the slice from a shard thread and pushes gradients to it, as in a
//!   real run, so the data moves between the cores' caches as it does there; the copy out of
//!   each pull is timed alone, and the update is what is left of a push once the message
//!   latencies and the copy are taken off;
//! - the scheduler's time slice: how long a busy thread runs before a waiting one gets its core,
//!   from the uninterrupted stretches of one more spinning thread than there are cores;
//! - for each scenario, one thread's mini-batch gradient time (sampling and gathering the batch
//!   included), with the model, its parameter count and the batch size; and for the first, how
//!   many times longer it takes while every core computes one (shared caches, memory
//!   bandwidth, the hypervisor's sibling threads).
//!
//! Every figure is a mean over repetitions long enough to dwarf the clock's resolution, taken
//! after as many again for warm-up. Nothing here simulates; it reads the wall clock on purpose.

use crate::data::Split;
use crate::machine::device::UPDATE_MEMORY_PASSES;
use crate::numerics::Scratch;
use crate::outcome::RunError;
use crate::scenario::Scenario;
use crate::setup::real_parts;
use crate::training::sampler::{Sampler, gradient_seed};
use crate::training::update;
use crate::workload::model::BYTES_PER_PARAM;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Channel round trips timed for the message latency, after a quarter as many for warm-up.
const ROUND_TRIPS: usize = 2_000;
/// How long the sender works before each timed round trip, so that the receiver sleeps.
const PARKED: Duration = Duration::from_micros(200);
/// Least number of gradients timed per scenario, and about how long to keep timing.
const GRADIENTS: usize = 20;
const GRADIENT_TIME: Duration = Duration::from_millis(1_500);
/// How long the spinning threads of the time-slice measurement run, and the least gap in a
/// thread's clock readings that means it lost its core.
const SPIN: Duration = Duration::from_millis(600);
const PREEMPTED: Duration = Duration::from_micros(20);

/// One scenario's measured gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientTime {
    pub scenario: String,
    pub model: String,
    pub dataset: String,
    pub params: u64,
    pub batch_size: u64,
    pub seconds: f64,
    /// The standard deviation of one gradient's time over those timed: how unevenly a
    /// learner's iterations come out on this host.
    pub spread_s: f64,
    pub timed: usize,
}

/// What `calibrate` measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    pub cpu: String,
    pub cores: usize,
    /// Bytes of the slice the copy and update were measured on.
    pub slice_bytes: u64,
    /// Seconds of one thread's copy of the slice, and of a shard's update of it.
    pub copy_s: f64,
    pub update_s: f64,
    pub message_latency_ns: f64,
    pub message_cpu_ns: f64,
    pub time_slice_ns: f64,
    /// The first scenario's gradient time with every core computing one, over its time alone.
    pub busy_slowdown: f64,
    pub gradients: Vec<GradientTime>,
    /// Calibrations averaged into this one.
    pub rounds: usize,
}

/// Measures this host for `scenarios` (at least one; the first sets the slice size).
pub fn measure(scenarios: &[&Scenario]) -> Result<Calibration, RunError> {
    measure_with(scenarios, |_: &Stage| {})
}

/// A stage of a calibration as it starts: what it times, and where it stands in the whole
/// by the stages' nominal durations (the timing budgets; a loaded host takes longer).
pub struct Stage {
    pub what: String,
    pub done: Duration,
    pub total: Duration,
}

/// [`measure`], telling `stage` as each stage starts and once more (`done == total`) at the end.
pub fn measure_with(
    scenarios: &[&Scenario],
    mut stage: impl FnMut(&Stage),
) -> Result<Calibration, RunError> {
    let Some(first) = scenarios.first() else {
        return Err(RunError::NoScenario);
    };
    // Scenarios that differ only in what a gradient does not depend on are timed once.
    let same = |a: &Scenario, b: &Scenario| {
        a.file.workload.model == b.file.workload.model
            && a.model.params() == b.model.params()
            && a.file.algorithm.batch_size == b.file.algorithm.batch_size
    };
    let timed: Vec<&Scenario> = scenarios
        .iter()
        .enumerate()
        .filter(|&(i, sc)| !scenarios[..i].iter().any(|o| same(o, sc)))
        .map(|(_, sc)| *sc)
        .collect();
    let latency = PARKED * ROUND_TRIPS as u32;
    let total = latency + GRADIENT_TIME * (timed.len() as u32 + 1) + SPIN;
    let mut done = Duration::ZERO;
    let mut next = |what: String, takes: Duration| {
        stage(&Stage { what, done, total });
        done += takes;
    };
    let slice_params = first.placement.shard_ranges[0].len().max(1);
    next("timing messages between threads".into(), latency);
    let (message_latency_ns, message_cpu_ns) = time_message_latency();
    let cores = crate::setup::default_threads();
    let mut gradients = vec![];
    let (mut copy_s, mut update_s) = (f64::NAN, f64::NAN);
    for (i, sc) in timed.iter().enumerate() {
        next(
            format!("timing the learner loop of {}", sc.name()),
            GRADIENT_TIME,
        );
        let (g, copy, update) = time_learner_loop(sc, message_latency_ns * 1e-9, GRADIENT_TIME)?;
        if i == 0 {
            (copy_s, update_s) = (copy, update);
        }
        gradients.push(g);
    }
    let slice_bytes = slice_params as u64 * BYTES_PER_PARAM;
    next(
        format!("timing gradients on all {cores} cores"),
        GRADIENT_TIME,
    );
    let busy_slowdown = match scenarios.first() {
        Some(sc) if cores > 1 => {
            let alone = time_gradient(sc, GRADIENT_TIME / 2)?;
            let all = std::thread::scope(|s| {
                let handles: Vec<_> = (0..cores)
                    .map(|_| s.spawn(|| time_gradient(sc, GRADIENT_TIME / 2)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().map_err(|_| ()))
                    .collect::<Vec<_>>()
            });
            let times: Vec<f64> = all
                .into_iter()
                .filter_map(|r| r.ok().and_then(Result::ok))
                .map(|g| g.seconds)
                .collect();
            let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
            (mean / alone.seconds).max(1.0)
        }
        _ => 1.0,
    };
    next("timing the scheduler's time slice".into(), SPIN);
    let time_slice_ns = time_slice(cores);
    next("done".into(), Duration::ZERO);
    Ok(Calibration {
        cpu: cpu_name(),
        cores,
        slice_bytes,
        copy_s,
        update_s,
        message_latency_ns,
        message_cpu_ns,
        time_slice_ns,
        busy_slowdown,
        gradients,
        rounds: 1,
    })
}

/// The processor's name as the kernel reports it, for the file's description.
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown processor".into())
}

/// What a learner sends a shard in the exchange measurement.
enum Ask {
    Pull(Vec<f32>),
    Push(Vec<f32>),
}

/// A shard thread owning the slice `x`: it copies the slice into each pull's buffer and applies
/// each pushed gradient with learning rate `lr`, replying to both, until its channel closes.
fn shard_thread(mut x: Vec<f32>, lr: f32) -> (Sender<Ask>, Receiver<Vec<f32>>, JoinHandle<()>) {
    let (to_shard, shard_rx) = channel::<Ask>();
    let (to_learner, learner_rx) = channel::<Vec<f32>>();
    let handle = std::thread::spawn(move || {
        while let Ok(ask) = shard_rx.recv() {
            let reply = match ask {
                Ask::Pull(mut buf) => {
                    buf.clear();
                    buf.extend_from_slice(&x);
                    buf
                }
                Ask::Push(g) => {
                    update::apply(&mut x, &mut [], &g, lr, 0.0, 0.0);
                    g
                }
            };
            if to_learner.send(reply).is_err() {
                break;
            }
        }
    });
    (to_shard, learner_rx, handle)
}

/// One learner's loop as the real backend runs it, against one shard thread holding the
/// scenario's first slice and training it: pull the slice, compute a gradient, push the
/// gradient's slice, each timed. The gradient is timed where it really runs, between copies
/// and wake-ups. The learner's copy of the pulled slice out of the reply is one copy, timed
/// alone; a push is two messages, a copy and an update, which with the latency and the copy
/// taken off gives the update's time.
fn time_learner_loop(
    scenario: &Scenario,
    latency_s: f64,
    at_least: Duration,
) -> Result<(GradientTime, f64, f64), RunError> {
    let learners = scenario.placement.learner_gpus.len();
    // As many threads as learners: each learner's gradient runs on one.
    let parts = real_parts(scenario, learners)?;
    let (objective, dataset, setup) = (parts.objective, parts.dataset, parts.setup);
    let range = setup.shard_ranges[0].clone();
    let mut params = objective.init_params(setup.seed);
    // The slice trains as in a real run, so the gradient sees weights like a real run's.
    let (to_shard, replies, shard) =
        shard_thread(params[range.clone()].to_vec(), setup.learning_rate);
    let mut grad = vec![0.0f32; params.len()];
    let mut scratch = Scratch::default();
    let mut sampler = Sampler::for_run(dataset.len(Split::Train), 1, setup.seed);
    let mut spare: Vec<f32> = Vec::with_capacity(range.len());
    let (mut copy, mut compute, mut push) = (0.0, 0.0, 0.0);
    let mut squares = 0.0;
    let mut step = |i: u64| -> Option<()> {
        to_shard.send(Ask::Pull(std::mem::take(&mut spare))).ok()?;
        let data = replies.recv_timeout(Duration::from_secs(5)).ok()?;
        let tc = Instant::now();
        params[range.clone()].copy_from_slice(&data);
        let t1 = Instant::now();
        let indices = sampler.next_batch(0, setup.batch_size);
        let batch = dataset.gather(Split::Train, &indices);
        let seed = gradient_seed(setup.seed, 0, i);
        black_box(objective.loss_grad(&params, &batch, seed, &mut grad, &mut scratch));
        let t2 = Instant::now();
        let mut buf = data;
        buf.clear();
        buf.extend_from_slice(&grad[range.clone()]);
        to_shard.send(Ask::Push(buf)).ok()?;
        spare = replies.recv_timeout(Duration::from_secs(5)).ok()?;
        let t3 = Instant::now();
        if i >= 3 {
            copy += (t1 - tc).as_secs_f64();
            let g = (t2 - t1).as_secs_f64();
            compute += g;
            squares += g * g;
            push += (t3 - t2).as_secs_f64();
        }
        Some(())
    };
    let mut ok = (0..3).all(|i| step(i).is_some());
    let start = Instant::now();
    let mut timed = 0;
    while ok && (timed < GRADIENTS || start.elapsed() < at_least) {
        ok = step(3 + timed as u64).is_some();
        timed += 1;
    }
    drop(to_shard);
    let _ = shard.join();
    let n = timed.max(1) as f64;
    // The copy is timed itself: a small slice's pull is mostly the two messages' latency, and
    // what is left of it after subtracting them is noise. Never below a nanosecond.
    let copy = (copy / n).max(1e-9);
    let update = (push / n - 2.0 * latency_s - copy).max(1e-9);
    let f = &scenario.file;
    let gradient = GradientTime {
        scenario: scenario.name().to_string(),
        model: f.workload.model.clone(),
        dataset: f.workload.dataset.kind().to_string(),
        params: objective.num_params() as u64,
        batch_size: f.algorithm.batch_size,
        seconds: compute / n,
        spread_s: spread(compute, squares, timed),
        timed,
    };
    Ok((gradient, copy, update))
}

/// The mean uninterrupted stretch of `cores + 1` threads spinning on the clock: each time one
/// of them is preempted for another, its stretch ends.
fn time_slice(cores: usize) -> f64 {
    let stretches: Vec<(f64, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..=cores)
            .map(|_| {
                s.spawn(|| {
                    let start = Instant::now();
                    let (mut last, mut resumed) = (start, start);
                    let (mut total, mut count) = (0.0, 0usize);
                    while start.elapsed() < SPIN {
                        let now = Instant::now();
                        if now - last > PREEMPTED {
                            // The first stretch began with the thread, not with a slice.
                            if resumed != start {
                                total += (last - resumed).as_secs_f64();
                                count += 1;
                            }
                            resumed = now;
                        }
                        last = now;
                    }
                    (total, count)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let total: f64 = stretches.iter().map(|s| s.0).sum();
    let count: usize = stretches.iter().map(|s| s.1).sum();
    if count == 0 {
        // Never preempted in the whole measurement: the slice is at least that long.
        SPIN.as_secs_f64() * 1e9
    } else {
        total / count as f64 * 1e9
    }
}

/// The CPU time this process has used so far, seconds; None where the clock is not available.
fn process_cpu_s() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        (rc == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Half the mean round trip of a message to a thread blocked on its channel and back, over the
/// same channels and calls the real backend's threads use, and the process's CPU time per
/// one-way message over the same round trips (at most the latency), both in ns. Before each
/// round trip the sender works for [`PARKED`], so that the receiver has stopped spinning and
/// sleeps, as a real run's threads do between their messages; that work is not counted.
fn time_message_latency() -> (f64, f64) {
    let (to_echo, echo_rx) = channel::<u64>();
    let (to_main, main_rx) = channel::<u64>();
    let echo = std::thread::spawn(move || {
        while let Ok(v) = echo_rx.recv() {
            if to_main.send(v).is_err() {
                break;
            }
        }
    });
    let round = |n: usize| -> Option<(f64, Option<f64>)> {
        let (mut wall, mut cpu) = (0.0, Some(0.0));
        for i in 0..n as u64 {
            let idle = Instant::now();
            while idle.elapsed() < PARKED {
                std::hint::spin_loop();
            }
            let (start, c0) = (Instant::now(), process_cpu_s());
            to_echo.send(i).ok()?;
            main_rx.recv_timeout(Duration::from_secs(5)).ok()?;
            wall += start.elapsed().as_secs_f64();
            cpu = match (cpu, c0, process_cpu_s()) {
                (Some(c), Some(a), Some(b)) => Some(c + (b - a)),
                _ => None,
            };
        }
        let per = |s: f64| s * 1e9 / n as f64 / 2.0;
        Some((per(wall), cpu.map(per)))
    };
    let _ = round(ROUND_TRIPS / 4);
    let (latency, cpu) = round(ROUND_TRIPS).unwrap_or((0.0, None));
    drop(to_echo);
    let _ = echo.join();
    (latency, cpu.unwrap_or(0.0).clamp(0.0, latency))
}

/// One learner's gradient on one thread, as the real backend's learner computes it.
fn time_gradient(scenario: &Scenario, at_least: Duration) -> Result<GradientTime, RunError> {
    let learners = scenario.placement.learner_gpus.len();
    // As many threads as learners: each learner's gradient runs on one.
    let parts = real_parts(scenario, learners)?;
    let (objective, dataset, setup) = (parts.objective, parts.dataset, parts.setup);
    let params = objective.init_params(setup.seed);
    let mut grad = vec![0.0f32; params.len()];
    let mut scratch = Scratch::default();
    let mut sampler = Sampler::for_run(dataset.len(Split::Train), 1, setup.seed);
    let (mut sum, mut squares) = (0.0, 0.0);
    let mut step = |i: u64| {
        let t = Instant::now();
        let indices = sampler.next_batch(0, setup.batch_size);
        let batch = dataset.gather(Split::Train, &indices);
        let seed = gradient_seed(setup.seed, 0, i);
        black_box(objective.loss_grad(&params, &batch, seed, &mut grad, &mut scratch));
        let g = t.elapsed().as_secs_f64();
        if i >= 3 {
            sum += g;
            squares += g * g;
        }
    };
    for i in 0..3 {
        step(i);
    }
    let start = Instant::now();
    let mut timed = 0;
    while timed < GRADIENTS || start.elapsed() < at_least {
        step(3 + timed as u64);
        timed += 1;
    }
    let f = &scenario.file;
    Ok(GradientTime {
        scenario: scenario.name().to_string(),
        model: f.workload.model.clone(),
        dataset: f.workload.dataset.kind().to_string(),
        params: objective.num_params() as u64,
        batch_size: f.algorithm.batch_size,
        seconds: start.elapsed().as_secs_f64() / timed as f64,
        spread_s: spread(sum, squares, timed),
        timed,
    })
}

/// The sample standard deviation of `n` values with the given sum and sum of squares.
fn spread(sum: f64, squares: f64, n: usize) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let n = n as f64;
    ((squares - sum * sum / n) / (n - 1.0)).max(0.0).sqrt()
}

impl Calibration {
    /// One thread's copy rate, GB/s.
    pub fn copy_gb_per_s(&self) -> f64 {
        self.slice_bytes as f64 / self.copy_s * 1e-9
    }

    /// The update as memory bandwidth: three passes over the slice per update, GB/s.
    pub fn update_memory_gb_per_s(&self) -> f64 {
        UPDATE_MEMORY_PASSES * self.slice_bytes as f64 / self.update_s * 1e-9
    }

    /// The mean of calibrations of the same scenarios (None if there are none).
    pub fn mean(all: &[Calibration]) -> Option<Calibration> {
        let first = all.first()?;
        let n = all.len() as f64;
        let avg = |f: &dyn Fn(&Calibration) -> f64| all.iter().map(f).sum::<f64>() / n;
        let mut m = first.clone();
        m.copy_s = avg(&|c| c.copy_s);
        m.update_s = avg(&|c| c.update_s);
        m.message_latency_ns = avg(&|c| c.message_latency_ns);
        m.message_cpu_ns = avg(&|c| c.message_cpu_ns);
        m.time_slice_ns = avg(&|c| c.time_slice_ns);
        m.busy_slowdown = avg(&|c| c.busy_slowdown);
        for (i, g) in m.gradients.iter_mut().enumerate() {
            g.seconds = avg(&|c| c.gradients.get(i).map_or(g.seconds, |x| x.seconds));
            g.spread_s = avg(&|c| c.gradients.get(i).map_or(g.spread_s, |x| x.spread_s));
            g.timed = all
                .iter()
                .map(|c| c.gradients.get(i).map_or(0, |x| x.timed))
                .sum();
        }
        m.rounds = all.len();
        Some(m)
    }

    /// The topology file describing this host: one socket, its cores, and the `[host]` table.
    pub fn topology_toml(&self, name: &str) -> String {
        let kb = self.slice_bytes as f64 / 1e3;
        let mut t = String::new();
        let _ = writeln!(
            t,
            "# This host as measured by `asgd-sim calibrate` (asgd-sim {}): {} cores of {}.",
            env!("CARGO_PKG_VERSION"),
            self.cores,
            self.cpu
        );
        let _ = writeln!(
            t,
            "# Learner and shard threads share the cores as the scheduler does. Run calibrate again\n\
             # after a change of machine or load; every figure below is a measured mean{}.\n",
            if self.rounds > 1 {
                format!(" over {} rounds", self.rounds)
            } else {
                String::new()
            }
        );
        let _ = writeln!(t, "name = {}", quote(name));
        let _ = writeln!(
            t,
            "description = {}\n",
            quote(&format!("{} cores of {}, measured", self.cores, self.cpu))
        );
        t.push_str("nodes = [\n  { id = \"socket0\", class = \"socket\" },\n");
        for c in 0..self.cores {
            let _ = writeln!(t, "  {{ id = \"core{c}\", class = \"core\" }},");
        }
        t.push_str("]\n\n# Each core to the socket's memory (for display: threads copy, links carry nothing).\nlinks = [\n");
        for c in 0..self.cores {
            let _ = writeln!(
                t,
                "  {{ between = [\"socket0\", \"core{c}\"], class = \"memory\" }},"
            );
        }
        t.push_str("]\n\n[node_class.socket]\nkind = \"cpu-socket\"\n\n[node_class.core]\nkind = \"cpu-core\"\n");
        let _ = writeln!(
            t,
            "# A shard's update of a {kb:.1} kB slice took {:.2} us on one thread: {} passes over the\n\
             # slice (read x, read g, write x) at this rate.\n\
             memory_bandwidth_gb_per_s = {:.3}\n",
            self.update_s * 1e6,
            UPDATE_MEMORY_PASSES,
            self.update_memory_gb_per_s()
        );
        let _ = writeln!(
            t,
            "[link_class.memory]\nbandwidth_gb_per_s = {:.3}\nlatency_ns = {:.0}\n",
            self.copy_gb_per_s(),
            self.message_latency_ns
        );
        t.push_str("[host]\n");
        let _ = writeln!(
            t,
            "# One thread copying a {kb:.1} kB message into a reused buffer: {:.2} us.\n\
             copy_gb_per_s = {:.3}\n\
             # Half the mean round trip of {ROUND_TRIPS} channel messages to a sleeping thread and back.\n\
             message_latency_ns = {:.0}\n\
             # Of which core time: the process's CPU clock over the same messages.\n\
             message_cpu_ns = {:.0}\n\
             # Mean uninterrupted run of {} spinning threads on {} cores.\n\
             time_slice_ns = {:.0}\n\
             # A gradient with every core computing one, over its time alone.\n\
             busy_slowdown = {:.4}",
            self.copy_s * 1e6,
            self.copy_gb_per_s(),
            self.message_latency_ns,
            self.message_cpu_ns,
            self.cores + 1,
            self.cores,
            self.time_slice_ns,
            self.busy_slowdown
        );
        t.push_str("# One thread's mini-batch gradient, sampling and gathering the batch included.\ngradients = [\n");
        for g in &self.gradients {
            let _ = writeln!(
                t,
                "  # {}: {} on {}, mean of {} after warm-up.\n  {{ model = {}, params = {}, batch_size = {}, seconds = {:.6e} }},",
                g.scenario,
                g.model,
                g.dataset,
                g.timed,
                quote(&g.model),
                g.params,
                g.batch_size,
                g.seconds
            );
        }
        t.push_str("]\n");
        t
    }

    /// What was measured, for the terminal.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "host             {} cores of {}", self.cores, self.cpu);
        let _ = writeln!(
            t,
            "copy             {:.2} GB/s  ({:.1} kB slice in {:.2} us)",
            self.copy_gb_per_s(),
            self.slice_bytes as f64 / 1e3,
            self.copy_s * 1e6
        );
        let _ = writeln!(
            t,
            "update           {:.2} us per slice  ({:.2} GB/s over 3 passes)",
            self.update_s * 1e6,
            self.update_memory_gb_per_s()
        );
        let _ = writeln!(
            t,
            "message latency  {:.2} us one way, {:.2} us of it core time",
            self.message_latency_ns * 1e-3,
            self.message_cpu_ns * 1e-3
        );
        let _ = writeln!(t, "time slice       {:.2} ms", self.time_slice_ns * 1e-6);
        let _ = writeln!(
            t,
            "busy slowdown    {:.3}x  (a gradient with all {} cores computing)",
            self.busy_slowdown, self.cores
        );
        for g in &self.gradients {
            let _ = writeln!(
                t,
                "gradient         {:.3} ms, sd {:.3} ms  ({} on {}, {} parameters, batch {})",
                g.seconds * 1e3,
                g.spread_s * 1e3,
                g.model,
                g.dataset,
                g.params,
                g.batch_size
            );
        }
        t
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A calibration of a 3-core host that timed mlp (1,234 parameters, batch 32) at `gradient_s`
/// a gradient, for tests here and in validation's.
#[cfg(test)]
pub(crate) fn fixture(gradient_s: f64) -> Calibration {
    Calibration {
        cpu: "Test \"CPU\"".into(),
        cores: 3,
        slice_bytes: 400_000,
        copy_s: 4e-5,
        update_s: 6e-5,
        message_latency_ns: 5_000.0,
        message_cpu_ns: 4_000.0,
        time_slice_ns: 3e6,
        busy_slowdown: 1.25,
        rounds: 1,
        gradients: vec![GradientTime {
            scenario: "quick".into(),
            model: "mlp".into(),
            dataset: "synthetic-image".into(),
            params: 1234,
            batch_size: 32,
            seconds: gradient_s,
            spread_s: gradient_s / 10.0,
            timed: 20,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::topology::file::TopologyFile;

    #[test]
    fn the_written_file_reads_back_as_a_host() {
        let c = fixture(1.5e-3);
        let text = c.topology_toml("localhost");
        let file: TopologyFile = toml::from_str(&text).unwrap();
        let t = file.build().unwrap();
        assert_eq!(t.cores().len(), 3);
        let h = t.host().unwrap();
        // 400 kB in 40 us; three passes of it in 60 us.
        assert!((h.copy_gb_per_s - 10.0).abs() < 1e-3);
        assert_eq!(h.message_latency_ns, 5_000);
        assert_eq!(h.message_cpu_ns, 4_000);
        assert_eq!(h.time_slice_ns, 3_000_000);
        assert_eq!(h.busy_slowdown, 1.25);
        assert_eq!(h.gradient_seconds("mlp", 1234, 32), Some(1.5e-3));
        assert_eq!(h.gradient_seconds("mlp", 1234, 64), None);
        let core = t.node(t.cores()[0]).core.as_ref().unwrap();
        assert!((core.memory_bandwidth_gb_per_s - 20.0).abs() < 1e-3);
    }
}
