//! The real backend across processes: every learner and every parameter-server shard is its
//! own process, and they exchange parameters and gradients over TCP, on one host or across
//! machines. It drives the same learner role (`algorithm::role`) through the same learner
//! loop (`super::learner`) and serves the same shard loop (`super::shard`) as the threads
//! backend; only the transport differs: the learner's reach is a set of sockets
//! ([`learner::Sockets`]), its view of the run ([`super::control::Control`]) is a socket to
//! the coordinator, which holds the one `runtime::Shared` every learner thread would share.
//!
//! Synchronous SGD's learners are the threads backend's too (`super::ssgd`): through the
//! shards, whose barrier is the same shard loop's; or in a ring, where each learner also
//! listens for its predecessor and connects to its successor, and there are no shards.
//!
//! Ranks: 0 is the coordinator (the rendezvous, the run's clock, the iteration count, the
//! outputs), 1 to S the shards, S + 1 to S + p the learners (a ring: 1 to p). The ranks come
//! from the launcher ([`Launch::from_env`]: Slurm, an MPI launcher, or asgd-sim itself, which
//! starts every rank on this host) and the coordinator's address from `ASGD_SIM_COORDINATOR` (or
//! `MASTER_ADDR` and `MASTER_PORT`), as `torch.distributed`'s `env://` rendezvous does.
//!
//! A rank that dies ends the run: its links close, whoever was waiting on them tells the
//! coordinator, the coordinator halts everyone else (it tells the shards, which close their
//! learners' links, so no learner waits at a barrier that cannot open) and writes what was
//! measured. Nothing
//! waits for a peer that is gone, and no rank outlives the coordinator.

mod coordinator;
mod launch;
mod learner;
pub mod sbatch;
mod shard;
mod wire;

pub use launch::{Launch, Spawn};

use super::RealResult;
use super::runtime::Clock;
use super::ssgd::Plan;
use crate::algorithm::Server;
use crate::observe::Observer;
use crate::outcome::RunError;
use crate::scenario::Scenario;
use crate::setup::real_parts;
use sha2::{Digest, Sha256};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use wire::{Conn, Msg};

/// How long the ranks of a run may take to find each other.
const RENDEZVOUS: Duration = Duration::from_secs(120);
/// Pings each rank times against the coordinator's clock; the fastest one sets its offset.
const PINGS: usize = 16;

/// Why a run across processes could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProcessesError {
    /// The launch environment or the scenario does not make a run across processes (the
    /// user's to mend: exit status 2).
    #[error("{0}")]
    Launch(String),
    /// The ranks did not find each other, or one broke the protocol before the run began.
    #[error("{0}")]
    Rendezvous(String),
    /// A rank lost its links during the run (the coordinator, or a peer, was gone).
    #[error("{0}")]
    Lost(String),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// What a rank is, by its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Coordinator,
    Shard(usize),
    Learner(usize),
}

/// The processes of a run: one coordinator, `shards` shards, `learners` learners; in a ring
/// (all-reduce, no shards) every learner listens for its predecessor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct World {
    pub shards: usize,
    pub learners: usize,
    pub ring: bool,
}

impl World {
    /// The processes `scenario` runs as; an algorithm that cannot run across processes is
    /// an error that says why.
    pub fn of(scenario: &Scenario) -> Result<World, ProcessesError> {
        let kind = scenario.algorithm().name();
        let shards = scenario.placement.shard_ranges.len();
        let learners = scenario.placement.learner_gpus.len();
        match scenario.spec().server() {
            Server::Async | Server::Elastic | Server::Synchronous => Ok(World {
                shards,
                learners,
                ring: false,
            }),
            Server::Ring => Ok(World {
                shards: 0,
                learners,
                ring: true,
            }),
            Server::LockFree => Err(ProcessesError::Launch(format!(
                "{}: algorithm `{kind}` shares one vector in memory and cannot run across \
                 processes; run it with the threads backend (`real` without --processes, \
                 `validate --backend threads`)",
                scenario.name()
            ))),
        }
    }

    /// Processes in all.
    pub fn size(&self) -> usize {
        1 + self.shards + self.learners
    }

    pub fn role(&self, rank: usize) -> Role {
        if rank == 0 {
            Role::Coordinator
        } else if rank <= self.shards {
            Role::Shard(rank - 1)
        } else {
            Role::Learner(rank - 1 - self.shards)
        }
    }

    pub fn rank(&self, role: Role) -> usize {
        match role {
            Role::Coordinator => 0,
            Role::Shard(k) => 1 + k,
            Role::Learner(l) => 1 + self.shards + l,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Coordinator => write!(f, "the coordinator"),
            Role::Shard(k) => write!(f, "shard {k}"),
            Role::Learner(l) => write!(f, "learner {l}"),
        }
    }
}

/// A digest of the scenario as read, to check that every rank runs the same one.
fn digest(scenario: &Scenario) -> String {
    let text = serde_json::to_string(&scenario.file).unwrap_or_default();
    let hash = Sha256::digest(text.as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Set (to 1) by the testbed for the ranks it starts: its ports carry the scenario's slow
/// links, so a run with them is real.
pub const LINKS_SHAPED: &str = "ASGD_SIM_LINKS_SHAPED";

/// Runs this process's rank of `scenario` across processes, as `launch` says. The
/// coordinator (rank 0) returns what the run measured (`summary.backend` is "processes");
/// every other rank returns None once its part is done. `stop` (Ctrl-C) is the coordinator's
/// to heed: it halts every rank; the other ranks end when the coordinator says so or is gone.
pub fn run<O: Observer + Send>(
    scenario: &Scenario,
    observer: O,
    stop: &AtomicBool,
    launch: &Launch,
) -> Result<Option<RealResult<O>>, ProcessesError> {
    let world = World::of(scenario)?;
    let shaped = std::env::var_os(LINKS_SHAPED).is_some_and(|v| v == "1");
    if let Some(why) = super::refusal_with(scenario, shaped) {
        return Err(ProcessesError::Launch(format!(
            "{}: {why}",
            scenario.name()
        )));
    }
    if launch.world != world.size() && launch.spawn.is_none() {
        return Err(ProcessesError::Launch(format!(
            "{}: the scenario runs as {} processes (1 coordinator, {} shards, {} learners), \
             but {} started {}: launch {} tasks (e.g. srun -n {})",
            scenario.name(),
            world.size(),
            world.shards,
            world.learners,
            launch.from,
            launch.world,
            world.size(),
            world.size()
        )));
    }
    let parts = real_parts(scenario, world.learners)?;
    let digest = digest(scenario);
    let role = world.role(launch.rank);
    match role {
        Role::Coordinator => {
            let run = coordinator::Coordinator {
                scenario,
                world,
                parts: &parts,
                digest,
                stop,
                launch,
            };
            let (run, observer) = run.run(observer)?;
            Ok(Some(super::result(scenario, run, observer, "processes")))
        }
        _ => {
            let mut joined = join(launch, world, role, &digest)?;
            match role {
                Role::Shard(k) => shard::run(&mut joined, k, world, &parts)?,
                Role::Learner(l) => {
                    let f = &scenario.file.workload;
                    let (a, p) = (parts.setup.algorithm, world.learners);
                    let plan = Plan::new(a, p, scenario.iterations_per_epoch, f.epochs);
                    learner::run(&mut joined, l, world, &parts, plan)?
                }
                Role::Coordinator => {}
            }
            Ok(None)
        }
    }
}

/// The run's clock in a rank other than the coordinator: nanoseconds since the run's start on
/// the coordinator's clock, from this host's monotonic clock and the offset the pings found.
struct RunClock {
    base: Instant,
    /// Coordinator's clock minus this rank's, in ns.
    offset: i64,
    /// The run's start on the coordinator's clock.
    start: i64,
}

impl Clock for RunClock {
    fn now(&self) -> u64 {
        let local = self.base.elapsed().as_nanos() as i64;
        (local + self.offset - self.start).max(0) as u64
    }
}

/// A rank other than the coordinator, joined to the run: its link to the coordinator, its
/// listener (a shard's, a ring learner's), the shards' or the ring's addresses (a learner's)
/// and the clock.
struct Joined {
    pub rank: usize,
    pub coordinator: Conn,
    pub listener: Option<std::net::TcpListener>,
    pub shards: Vec<std::net::SocketAddr>,
    /// Every learner's address, in learner order, in a ring.
    pub ring: Vec<std::net::SocketAddr>,
    pub clock: RunClock,
}

impl Joined {
    /// Tells the coordinator this rank's links are up and waits for the run's start.
    pub fn ready(&mut self) -> std::io::Result<()> {
        self.coordinator.send(&Msg::Ready)?;
        self.coordinator.patience(None)?;
        match self.coordinator.recv()? {
            Msg::Go { start_ns } => {
                self.clock.start = start_ns as i64;
                Ok(())
            }
            other => Err(wire::unexpected("Go", &other)),
        }
    }
}

/// Takes the next connection to `listener`, waiting at most `patience`.
fn accept_one(listener: &std::net::TcpListener, patience: Duration) -> std::io::Result<Conn> {
    listener.set_nonblocking(true)?;
    let until = Instant::now() + patience;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Conn::new(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= until {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no connection within {} s", patience.as_secs()),
                    ));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Says hello to the coordinator, times the pings, and takes the shards' addresses.
fn join(launch: &Launch, world: World, role: Role, digest: &str) -> Result<Joined, ProcessesError> {
    let failed = |what: &str, e: std::io::Error| {
        ProcessesError::Rendezvous(format!(
            "rank {} ({role}): {what} the coordinator at {}: {e}",
            launch.rank, launch.coordinator
        ))
    };
    let mut c =
        Conn::connect(launch.coordinator, RENDEZVOUS).map_err(|e| failed("cannot reach", e))?;
    c.patience(Some(RENDEZVOUS))
        .map_err(|e| failed("cannot talk to", e))?;
    // A shard, or a ring's learner, listens on the interface that reaches the coordinator.
    let listens = match role {
        Role::Shard(_) => true,
        Role::Learner(_) => world.ring,
        Role::Coordinator => false,
    };
    let listener = if listens {
        let ip = c
            .local_addr()
            .map_err(|e| failed("cannot talk to", e))?
            .ip();
        let l = std::net::TcpListener::bind((ip, 0)).map_err(|e| {
            ProcessesError::Rendezvous(format!(
                "rank {} ({role}): cannot listen on {ip}: {e}",
                launch.rank
            ))
        })?;
        Some(l)
    } else {
        None
    };
    let listen = match &listener {
        Some(l) => Some(l.local_addr().map_err(|e| failed("cannot talk to", e))?),
        None => None,
    };
    let hello = Msg::Hello {
        rank: launch.rank as u32,
        world: world.size() as u32,
        scenario: digest.to_string(),
        listen,
    };
    let talk = |c: &mut Conn| -> std::io::Result<RunClock> {
        c.send(&hello)?;
        let base = Instant::now();
        let mut best = (u64::MAX, 0i64);
        for _ in 0..PINGS {
            let t0 = base.elapsed().as_nanos() as u64;
            c.send(&Msg::Ping)?;
            let ns = match c.recv()? {
                Msg::Pong { ns } => ns,
                Msg::Refused { why } => return Err(std::io::Error::other(why)),
                other => return Err(wire::unexpected("Pong", &other)),
            };
            let t1 = base.elapsed().as_nanos() as u64;
            if t1 - t0 < best.0 {
                best = (t1 - t0, ns as i64 - (t0 + (t1 - t0) / 2) as i64);
            }
        }
        Ok(RunClock {
            base,
            offset: best.1,
            start: 0,
        })
    };
    let clock = talk(&mut c).map_err(|e| failed("turned away by", e))?;
    let (shards, ring) = match c.recv().map_err(|e| failed("lost", e))? {
        Msg::Directory { shards, ring } => (shards, ring),
        Msg::Refused { why } => return Err(failed("turned away by", std::io::Error::other(why))),
        other => return Err(failed("lost", wire::unexpected("Directory", &other))),
    };
    Ok(Joined {
        rank: launch.rank,
        coordinator: c,
        listener,
        shards,
        ring,
        clock,
    })
}
