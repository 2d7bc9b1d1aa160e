//! Rank 0: the rendezvous, then the run's shared state. It accepts every other rank's hello
//! and answers its pings with its clock, sends the learners the shards' addresses, and starts
//! the run once every link is up. During the run it answers each learner's calls of
//! [`Control`] with the same `runtime::Shared` the threads backend's learners share (one
//! thread per learner link), and watches every shard's link. When the learners are done it
//! tells the shards, collects their slices and epoch snapshots, and assembles the outcome as
//! the threads backend does (`runtime::finish`). A link that breaks before its rank handed in
//! is the run's fault, which halts every other rank at its next call.

use super::super::control::{Control, Local};
use super::super::runtime::{
    Job, LearnerEnd, POLL, RealRun, ServerEnd, ShardEnd, Shared, Start, finish,
};
use super::super::ssgd::{LearnerEnd as HandIn, ring_parameters};
use super::wire::{Conn, Kept, Msg, unexpected};
use super::{Launch, PINGS, ProcessesError, RENDEZVOUS, Role, World};
use crate::observe::Observer;
use crate::scenario::Scenario;
use crate::setup::RealParts;
use std::net::{SocketAddr, TcpListener};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a rank started here may take to end after the run before it is killed.
const REAP: Duration = Duration::from_secs(10);

pub(super) struct Coordinator<'a> {
    pub scenario: &'a Scenario,
    pub world: World,
    pub parts: &'a RealParts,
    pub digest: String,
    pub stop: &'a AtomicBool,
    pub launch: &'a Launch,
}

/// A shard's hand-in: its end and its epoch snapshots.
type ShardHandIn = Result<(ShardEnd, Vec<Kept>), String>;

impl Coordinator<'_> {
    pub fn run<O: Observer + Send>(self, observer: O) -> Result<(RealRun, O), ProcessesError> {
        let listener = TcpListener::bind(self.launch.coordinator).map_err(|e| {
            ProcessesError::Rendezvous(format!(
                "the coordinator cannot listen on {}: {e}",
                self.launch.coordinator
            ))
        })?;
        let at = listener
            .local_addr()
            .map_err(|e| ProcessesError::Rendezvous(format!("the coordinator's address: {e}")))?;
        let mut ranks = Ranks::start(self.launch, self.world, at)?;
        let base = Instant::now();
        let met = self.meet(&listener, base, &mut ranks);
        let (learners, shards) = match met {
            Ok(links) => links,
            Err(e) => {
                ranks.kill();
                return Err(e);
            }
        };
        let out = self.serve(observer, base, learners, shards);
        ranks.reap();
        Ok(out)
    }

    /// Takes every rank's hello and pings, sends the directory, waits for every rank to be
    /// ready. Returns the learners' and the shards' links, in order.
    fn meet(
        &self,
        listener: &TcpListener,
        base: Instant,
        ranks: &mut Ranks,
    ) -> Result<(Vec<Conn>, Vec<Conn>), ProcessesError> {
        let w = self.world;
        let n = w.size();
        let mut links: Vec<Option<Conn>> = (0..n).map(|_| None).collect();
        let mut shards: Vec<Option<SocketAddr>> = vec![None; w.shards];
        let mut ring: Vec<Option<SocketAddr>> = vec![None; if w.ring { w.learners } else { 0 }];
        let until = Instant::now() + RENDEZVOUS;
        let fail = |m: String| ProcessesError::Rendezvous(m);
        listener
            .set_nonblocking(true)
            .map_err(|e| fail(format!("the coordinator's listener: {e}")))?;
        let mut met = 0;
        while met + 1 < n {
            if self.stop.load(Ordering::Relaxed) {
                return Err(fail("interrupted while the ranks were meeting".into()));
            }
            ranks.check()?;
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= until {
                        let missing: Vec<String> = (1..n)
                            .filter(|&r| links[r].is_none())
                            .map(|r| format!("{r} ({})", w.role(r)))
                            .collect();
                        return Err(fail(format!(
                            "only {met} of the {} other ranks reached the coordinator at {} \
                             within {} s; missing ranks: {}",
                            n - 1,
                            self.launch.coordinator,
                            RENDEZVOUS.as_secs(),
                            missing.join(", ")
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(e) => return Err(fail(format!("the coordinator's listener: {e}"))),
            };
            let hello = (|| -> std::io::Result<Conn> {
                stream.set_nonblocking(false)?;
                Conn::new(stream)
            })()
            .and_then(|mut c| {
                c.patience(Some(Duration::from_secs(10)))?;
                let m = c.recv()?;
                Ok((c, m))
            });
            let (mut c, m) = hello.map_err(|e| fail(format!("a rank's hello: {e}")))?;
            let Msg::Hello {
                rank,
                world,
                scenario,
                listen,
            } = m
            else {
                return Err(fail(format!("a rank's hello: {}", unexpected("Hello", &m))));
            };
            let rank = rank as usize;
            let refuse = |c: &mut Conn, why: String| {
                let _ = c.send(&Msg::Refused { why: why.clone() });
                fail(why)
            };
            if world as usize != n || rank == 0 || rank >= n {
                return Err(refuse(
                    &mut c,
                    format!(
                        "rank {rank} of {world} said hello, but the scenario runs as {n} ranks \
                         (1 coordinator, {} shards, {} learners)",
                        w.shards, w.learners
                    ),
                ));
            }
            if links[rank].is_some() {
                return Err(refuse(&mut c, format!("rank {rank} said hello twice")));
            }
            if scenario != self.digest {
                return Err(refuse(
                    &mut c,
                    format!(
                        "rank {rank} read a different scenario (digest {scenario}, the \
                         coordinator's {}): every rank must run the same file with the same \
                         --set overrides",
                        self.digest
                    ),
                ));
            }
            for _ in 0..PINGS {
                let ping = c
                    .recv()
                    .map_err(|e| fail(format!("rank {rank}'s pings: {e}")))?;
                if !matches!(ping, Msg::Ping) {
                    return Err(fail(format!("rank {rank}: {}", unexpected("Ping", &ping))));
                }
                let ns = base.elapsed().as_nanos() as u64;
                c.send(&Msg::Pong { ns })
                    .map_err(|e| fail(format!("rank {rank}'s pings: {e}")))?;
            }
            match w.role(rank) {
                Role::Shard(k) => shards[k] = listen,
                Role::Learner(l) if w.ring => ring[l] = listen,
                _ => {}
            }
            links[rank] = Some(c);
            met += 1;
        }
        let shards: Vec<SocketAddr> = shards.into_iter().flatten().collect();
        if shards.len() != w.shards {
            return Err(fail("a shard said hello without an address".into()));
        }
        let ring: Vec<SocketAddr> = ring.into_iter().flatten().collect();
        if w.ring && ring.len() != w.learners {
            return Err(fail(
                "a ring's learner said hello without an address".into(),
            ));
        }
        let mut links: Vec<Conn> = links.into_iter().skip(1).flatten().collect();
        for (i, c) in links.iter_mut().enumerate() {
            let rank = i + 1;
            let lost = |e: std::io::Error| fail(format!("rank {rank} ({}): {e}", w.role(rank)));
            c.send(&Msg::Directory {
                shards: shards.clone(),
                ring: ring.clone(),
            })
            .map_err(lost)?;
        }
        for (i, c) in links.iter_mut().enumerate() {
            let rank = i + 1;
            let lost = |e: std::io::Error| {
                fail(format!(
                    "rank {rank} ({}) did not get ready: {e}",
                    w.role(rank)
                ))
            };
            c.patience(Some(RENDEZVOUS)).map_err(lost)?;
            match c.recv().map_err(lost)? {
                Msg::Ready => {}
                other => return Err(lost(unexpected("Ready", &other))),
            }
            c.patience(None).map_err(lost)?;
        }
        let learners = links.split_off(w.shards);
        Ok((learners, links))
    }

    /// Runs the run: starts it, answers the learners, watches the shards, and assembles what
    /// they handed in.
    fn serve<O: Observer + Send>(
        &self,
        observer: O,
        base: Instant,
        mut learners: Vec<Conn>,
        mut shards: Vec<Conn>,
    ) -> (RealRun, O) {
        let parts = self.parts;
        let job = Job {
            setup: &parts.setup,
            objective: &parts.objective,
            dataset: &parts.dataset,
            iterations_per_epoch: self.scenario.iterations_per_epoch,
            epochs: self.scenario.file.workload.epochs,
            stop: self.stop,
        };
        let (_, init, mut shared, sampler, observer) = Start::new(&job, observer).parts();
        let start_ns = base.elapsed().as_nanos() as u64;
        shared.start = base + Duration::from_nanos(start_ns);
        for c in learners.iter_mut().chain(shards.iter_mut()) {
            // A rank that is already gone shows as a broken link below.
            let _ = c.send(&Msg::Go { start_ns });
        }
        let w = self.world;
        let shard_writers: Vec<Option<Conn>> = shards.iter().map(|c| c.split().ok()).collect();
        let control = Local::new(&shared, &sampler, &observer);
        let control = &control;
        let learners_done = AtomicBool::new(false);
        let (ends, hand_ins, end_ns) = std::thread::scope(|s| {
            // When the learners are done, or the run halts first (a rank lost, Ctrl-C, a
            // diverged loss), the shards close their learners' links: a learner waiting at a
            // synchronous shard's barrier for a round that cannot complete wakes and ends.
            let (done, shared) = (&learners_done, &shared);
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) && !shared.halted() {
                    std::thread::sleep(POLL);
                }
                for mut c in shard_writers.into_iter().flatten() {
                    let _ = c.send(&Msg::Halt);
                }
            });
            let watched: Vec<_> = shards
                .into_iter()
                .enumerate()
                .map(|(k, c)| s.spawn(move || watch_shard(k, w, c, control)))
                .collect();
            let answered: Vec<_> = learners
                .into_iter()
                .enumerate()
                .map(|(l, c)| s.spawn(move || answer(l, w, c, control)))
                .collect();
            let ends: Vec<Option<(HandIn, u64)>> = answered
                .into_iter()
                .map(|h| h.join().ok().flatten())
                .collect();
            // The run ends when its last learner is done; a learner lost ends it now.
            let end_ns = ends
                .iter()
                .map(|e| e.as_ref().map(|(_, at)| *at))
                .collect::<Option<Vec<u64>>>()
                .and_then(|at| at.into_iter().max())
                .unwrap_or_else(|| shared.now())
                .min(shared.now());
            let ends: Vec<HandIn> = ends
                .into_iter()
                .map(|e| e.map(|(end, _)| end).unwrap_or_default())
                .collect();
            learners_done.store(true, Ordering::Relaxed);
            let hand_ins: Vec<ShardHandIn> = watched
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("lost".into())))
                .collect();
            (ends, hand_ins, end_ns)
        });
        let (parameters, server) = if w.ring {
            (ring_parameters(&ends, init), ServerEnd::default())
        } else {
            let ranges = &parts.setup.shard_ranges;
            let mut slices = vec![];
            let mut kept = vec![];
            for h in hand_ins {
                match h {
                    Ok((end, snaps)) => {
                        slices.push(Ok(end));
                        kept.push(Some(snaps));
                    }
                    Err(why) => {
                        slices.push(Err(why));
                        kept.push(None);
                    }
                }
            }
            fill_snapshots(&shared, ranges, &kept);
            let mut parameters = init;
            let server = ServerEnd::of_shards(ranges, &slices, &mut parameters);
            (parameters, server)
        };
        let ends: Vec<LearnerEnd> = ends.into_iter().map(HandIn::into_end).collect();
        let (setup, objective, dataset) = (&parts.setup, &parts.objective, &parts.dataset);
        finish(
            setup, objective, dataset, shared, observer, end_ns, parameters, &ends, server,
        )
    }
}

/// Epochs ended so far.
fn epochs(shared: &Shared) -> u64 {
    let done = shared.completed.load(Ordering::Relaxed);
    (done / shared.per_epoch).min(shared.total / shared.per_epoch)
}

/// Answers learner `l`'s calls until it hands in what it measured (returned, with when it
/// finished on the run's clock); a link that breaks first is the run's fault.
fn answer<O: Observer>(
    l: usize,
    w: World,
    mut c: Conn,
    control: &Local<'_, O>,
) -> Option<(HandIn, u64)> {
    let rank = w.rank(Role::Learner(l));
    let lost = |why: String| {
        control.fail(format!("learner {l} (rank {rank}) was lost: {why}"));
        None
    };
    loop {
        let msg = match c.recv() {
            Ok(m) => m,
            Err(e) => return lost(e.to_string()),
        };
        let reply = match msg {
            Msg::Claim => Msg::Claimed {
                ok: control.claim(),
                epochs: epochs(control.shared),
            },
            Msg::Complete { k } => {
                let (ended, done) = control.complete(l, k);
                Msg::Completed {
                    from: ended.start,
                    to: ended.end,
                    done,
                    halted: control.shared.halted(),
                }
            }
            Msg::WaitFor { iterations } => {
                control.wait_for(iterations);
                Msg::Released {
                    halted: control.shared.halted(),
                    epochs: epochs(control.shared),
                }
            }
            // Once the run has halted, a learner's complaint is what the halt did to it (the
            // shards closed its links), not the reason to report.
            Msg::Fail { why } => {
                if !control.halted() {
                    control.fail(why);
                }
                continue;
            }
            Msg::LearnerFault { l, down, unclaim } => {
                control.learner_fault(l, down, unclaim);
                continue;
            }
            Msg::Diverged => {
                control.diverge();
                continue;
            }
            Msg::EpochEnd {
                epoch,
                at_ns,
                iterations,
                params,
            } => {
                let params = (!params.is_empty()).then_some(params);
                control.end_epoch(epoch, at_ns, iterations, params);
                continue;
            }
            Msg::LearnerDone {
                measured,
                rounds,
                params,
                finished_ns,
            } => {
                let end = HandIn {
                    measured,
                    rounds,
                    params,
                };
                return Some((end, finished_ns));
            }
            other => return lost(unexpected("a learner's call", &other).to_string()),
        };
        if let Err(e) = c.send(&reply) {
            return lost(e.to_string());
        }
    }
}

/// Waits for shard `k` to hand in; a link that breaks first is the run's fault.
fn watch_shard(k: usize, w: World, mut c: Conn, control: &Local<'_, impl Observer>) -> ShardHandIn {
    let rank = w.rank(Role::Shard(k));
    let why = match c.recv() {
        Ok(Msg::ShardDone {
            slice,
            ledger,
            busy_ns,
            snapshots,
            faults,
        }) => {
            let end = ShardEnd {
                slice,
                ledger,
                busy_ns,
                faults,
            };
            return Ok((end, snapshots));
        }
        Ok(other) => unexpected("ShardDone", &other).to_string(),
        Err(e) => e.to_string(),
    };
    let why = format!("shard {k} (rank {rank}) was lost: {why}");
    control.fail(why.clone());
    Err(why)
}

/// Puts the shards' epoch slices into the snapshots the learners marked; an epoch some shard
/// did not keep (it was lost) leaves no snapshot to evaluate.
fn fill_snapshots(shared: &Shared, ranges: &[std::ops::Range<usize>], kept: &[Option<Vec<Kept>>]) {
    let Ok(mut snaps) = shared.snapshots.lock() else {
        return;
    };
    let n = ranges.last().map_or(0, |r| r.end);
    snaps.retain_mut(|s| {
        if s.epoch == 0 || !s.params.is_empty() {
            return true;
        }
        let mut params = vec![0.0f32; n];
        for (k, r) in ranges.iter().enumerate() {
            let slice = kept[k]
                .as_ref()
                .and_then(|v| v.iter().find(|kept| kept.epoch == s.epoch));
            match slice {
                Some(kept) if kept.slice.len() == r.len() => {
                    params[r.clone()].copy_from_slice(&kept.slice)
                }
                _ => return false,
            }
        }
        s.params = params;
        true
    });
}

/// The ranks this coordinator started on this host (none under a launcher).
struct Ranks {
    children: Vec<(usize, Child)>,
    world: World,
}

impl Ranks {
    /// Starts ranks 1 and up, if the launch says this process starts them.
    fn start(launch: &Launch, world: World, at: SocketAddr) -> Result<Ranks, ProcessesError> {
        let mut ranks = Ranks {
            children: vec![],
            world,
        };
        let Some(spawn) = &launch.spawn else {
            return Ok(ranks);
        };
        for rank in 1..world.size() {
            let mut cmd = spawn(rank, world.size(), at);
            match cmd.spawn() {
                Ok(child) => ranks.children.push((rank, child)),
                Err(e) => {
                    ranks.kill();
                    return Err(ProcessesError::Rendezvous(format!(
                        "cannot start rank {rank} ({}): {e}",
                        world.role(rank)
                    )));
                }
            }
        }
        Ok(ranks)
    }

    /// A rank that ended before the run began is an error.
    fn check(&mut self) -> Result<(), ProcessesError> {
        for (rank, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ProcessesError::Rendezvous(format!(
                    "rank {rank} ({}) ended before the run began ({status})",
                    self.world.role(*rank)
                )));
            }
        }
        Ok(())
    }

    /// Waits for the ranks to end, killing any that outlive the run by [`REAP`].
    fn reap(&mut self) {
        let until = Instant::now() + REAP;
        for (_, child) in &mut self.children {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.kill();
    }

    fn kill(&mut self) {
        for (_, child) in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Ranks {
    fn drop(&mut self) {
        self.kill();
    }
}
