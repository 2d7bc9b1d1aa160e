//! A run of the processes backend with its ranks on the testbed's hosts: the coordinator and
//! every shard on the hosts of their cores, every learner on the host of its device, each
//! started with `ip netns exec` and told its rank, the world size and the coordinator's
//! address, as a launcher would. The run is bounded in time; a stop request or a rank that
//! fails ends every rank.

use super::net::address;
use super::{Testbed, TestbedError};
use crate::report::progress_file::{self, ProgressFile};
use crate::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The coordinator's port on its host.
const COORDINATOR_PORT: u16 = 29400;

/// The host of each rank: 0 the coordinator, then the shards, then the learners.
#[derive(Clone, Debug, PartialEq)]
pub struct RankHosts(pub Vec<usize>);

impl RankHosts {
    /// Where `sc`'s roles run on `tb`: by the nodes its placement puts them on, which must
    /// be the testbed topology's; the coordinator beside the first shard (in a ring, which has
    /// none, beside the first learner).
    pub fn of(tb: &Testbed, sc: &Scenario) -> Result<Self, TestbedError> {
        let host = |n: petgraph::graph::NodeIndex, what: &str| {
            let id = &sc.topology.node(n).id;
            tb.plan.host_of(id).ok_or_else(|| {
                TestbedError::Unfit(format!(
                    "{}: {what} is placed on `{id}`, which is on no host of the testbed `{}`",
                    sc.name(),
                    tb.plan.topology
                ))
            })
        };
        let world = crate::real::processes::World::of(sc)
            .map_err(|e| TestbedError::Unfit(e.to_string()))?;
        let mut shards = vec![];
        for (k, &core) in sc
            .placement
            .shard_cores
            .iter()
            .enumerate()
            .take(world.shards)
        {
            shards.push(host(core, &format!("shard {k}"))?);
        }
        let mut learners = vec![];
        for (l, &gpu) in sc.placement.learner_gpus.iter().enumerate() {
            learners.push(host(gpu, &format!("learner {l}"))?);
        }
        let coordinator = shards.first().or(learners.first()).copied().unwrap_or(0);
        let hosts = std::iter::once(coordinator).chain(shards).chain(learners);
        Ok(RankHosts(hosts.collect()))
    }
}

/// What a run on the testbed left: rank 0's output directory, and what its ranks printed.
pub struct Ranked {
    pub out: PathBuf,
    pub stderr: Vec<String>,
}

/// Runs `program real ARGS --processes --out OUT -q` with its ranks on `hosts`. Waits at most
/// `limit`; on a stop request rank 0 is interrupted (it stops every rank and writes what it
/// measured), and on a rank's failure or the limit every rank is killed. `done` hears the
/// iterations completed as rank 0 reports them (in a progress file beside OUT).
#[allow(clippy::too_many_arguments)]
pub fn run(
    tb: &Testbed,
    program: &Path,
    args: &[String],
    out: &Path,
    hosts: &RankHosts,
    stop: &AtomicBool,
    limit: Duration,
    done: &mut dyn FnMut(u64),
) -> Result<Ranked, TestbedError> {
    let world = hosts.0.len();
    let progress = out.with_extension("progress");
    let _ = std::fs::remove_file(&progress);
    let coordinator = format!("{}:{COORDINATOR_PORT}", address(hosts.0[0]));
    let mut ranks = Ranks(vec![]);
    let mut said = vec![];
    for (rank, &h) in hosts.0.iter().enumerate() {
        let mut c = tb.command(h, program);
        c.arg("real")
            .args(args)
            .arg("--processes")
            .arg("--out")
            .arg(out)
            .arg("-q")
            .env("ASGD_SIM_RANK", rank.to_string())
            .env("ASGD_SIM_WORLD", world.to_string())
            .env("ASGD_SIM_COORDINATOR", &coordinator)
            .env(crate::real::processes::LINKS_SHAPED, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if rank == 0 {
            c.env(progress_file::ENV, &progress);
        }
        for k in [
            "SLURM_PROCID",
            "SLURM_NTASKS",
            "OMPI_COMM_WORLD_RANK",
            "PMI_RANK",
        ] {
            c.env_remove(k);
        }
        let child = c.spawn().map_err(|e| TestbedError::System {
            command: format!("ip netns exec {} {}", tb.namespace(h), program.display()),
            cause: e.to_string(),
        })?;
        ranks.0.push(child);
        let pipe = ranks.0[rank].stderr.take();
        said.push(std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = std::io::Read::read_to_string(&mut p, &mut text);
            }
            text
        }));
    }
    let start = Instant::now();
    let mut heard = start;
    let mut interrupted = false;
    let mut status = vec![None; world];
    while status.iter().any(Option::is_none) {
        for (r, child) in ranks.0.iter_mut().enumerate() {
            if status[r].is_none() {
                status[r] = child.try_wait().ok().flatten();
            }
        }
        if stop.load(Ordering::Relaxed) && !interrupted {
            interrupted = true;
            signal(&ranks.0[0], libc::SIGINT);
        }
        if start.elapsed() > limit {
            break;
        }
        if heard.elapsed() >= progress_file::EVERY {
            heard = Instant::now();
            done(ProgressFile::read(&progress));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(&progress);
    if status.iter().any(Option::is_none) {
        drop(ranks);
        drop(said);
        return Err(TestbedError::Probe(format!(
            "the run on the testbed did not end within {} s; every rank was killed",
            limit.as_secs()
        )));
    }
    let stderr: Vec<String> = said
        .into_iter()
        .map(|t| t.join().unwrap_or_default())
        .collect();
    if let Some(r) = status.iter().position(|s| !s.is_some_and(|s| s.success())) {
        // Rank 0's message says what happened to the run; else the failed rank's.
        let said = if stderr[0].trim().is_empty() {
            &stderr[r]
        } else {
            &stderr[0]
        };
        if interrupted {
            return Err(TestbedError::Interrupted);
        }
        return Err(TestbedError::Probe(format!(
            "rank {r} on {} failed: {}",
            tb.plan.hosts[hosts.0[r]].name,
            said.trim()
        )));
    }
    Ok(Ranked {
        out: out.to_path_buf(),
        stderr,
    })
}

/// The ranks' processes; any still running when this is dropped is killed.
struct Ranks(Vec<Child>);

impl Drop for Ranks {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

fn signal(c: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child we have not yet reaped.
    unsafe {
        libc::kill(c.id() as libc::pid_t, sig);
    }
}
