//! A shard's process: it takes one link from every learner, then serves them with the same
//! shard loop as the threads backend (`real::shard::shard_loop`), fed by one reader thread
//! per link in arrival order and answering through one writer thread per link. It keeps the
//! slice at every epoch end a learner marks, and hands in its slice, ledger and snapshots
//! when the coordinator says the run is over (or when every learner has gone). A coordinator
//! that is gone closes every link, so the shard never outlives the run.

use super::super::shard::{FromShard, ToShard};
use super::super::sharded::serve_slice;
use super::wire::{Conn, Kept, Msg, unexpected};
use super::{Joined, ProcessesError, RENDEZVOUS, World, accept_one};
use crate::setup::RealParts;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

/// Epoch snapshots asked for, each answered by the shard loop when it reaches it.
type Pending = Mutex<Vec<(u64, Receiver<(usize, Vec<f32>)>)>>;

pub(super) fn run(
    j: &mut Joined,
    k: usize,
    w: World,
    parts: &RealParts,
) -> Result<(), ProcessesError> {
    let who = format!("rank {} (shard {k})", j.rank);
    let links = accept(j, w.learners).map_err(|e| {
        ProcessesError::Rendezvous(format!("{who}: its learners did not all connect: {e}"))
    })?;
    j.ready()
        .map_err(|e| ProcessesError::Rendezvous(format!("{who}: the coordinator: {e}")))?;
    let setup = &parts.setup;
    let range = setup.shard_ranges[k].clone();
    let slice = parts.objective.init_params(setup.seed)[range].to_vec();
    let closers: Vec<Conn> = links.iter().filter_map(|c| c.split().ok()).collect();
    let mut watch = j
        .coordinator
        .split()
        .map_err(|e| ProcessesError::Lost(format!("{who}: the coordinator: {e}")))?;
    let pending: Pending = Mutex::new(vec![]);
    let (tx, rx) = channel();
    let (replies, outboxes): (Vec<Sender<FromShard>>, Vec<_>) =
        (0..w.learners).map(|_| channel()).unzip();
    let clock = &j.clock;
    let coordinator = &mut j.coordinator;
    std::thread::scope(|s| {
        // The coordinator's word (or its loss) ends the run: close every learner's link.
        s.spawn(move || {
            let _ = watch.recv();
            for c in &closers {
                c.close();
            }
        });
        for (l, (link, outbox)) in links.into_iter().zip(outboxes).enumerate() {
            let (tx, pending) = (tx.clone(), &pending);
            if let Ok(out) = link.split() {
                s.spawn(move || write(out, outbox));
            }
            s.spawn(move || read(l, link, tx, pending));
        }
        drop(tx);
        let end = serve_slice(k, slice, rx, &replies, clock, setup);
        drop(replies);
        let end = end.map_err(|why| {
            let _ = coordinator.send(&Msg::Fail { why: why.clone() });
            ProcessesError::Lost(format!("{who}: {why}"))
        })?;
        let mut snapshots = vec![];
        let asked = std::mem::take(&mut *pending.lock().unwrap_or_else(|p| p.into_inner()));
        for (epoch, answer) in asked {
            if let Ok((_, slice)) = answer.try_recv() {
                snapshots.push(Kept { epoch, slice });
            }
        }
        let done = Msg::ShardDone {
            slice: end.slice,
            ledger: end.ledger,
            busy_ns: end.busy_ns,
            snapshots,
            faults: end.faults,
        };
        coordinator.send(&done).map_err(|e| {
            ProcessesError::Lost(format!("{who}: cannot hand in to the coordinator: {e}"))
        })
    })
}

/// Takes one link from each of the `learners` learners, in learner order.
fn accept(j: &mut Joined, learners: usize) -> std::io::Result<Vec<Conn>> {
    let listener = j
        .listener
        .take()
        .ok_or_else(|| std::io::Error::other("no listener"))?;
    let mut links: Vec<Option<Conn>> = (0..learners).map(|_| None).collect();
    for got in 0..learners {
        let mut c = accept_one(&listener, RENDEZVOUS)
            .map_err(|e| std::io::Error::other(format!("{got} of {learners}: {e}")))?;
        c.patience(Some(Duration::from_secs(10)))?;
        let l = match c.recv()? {
            Msg::Learner { learner } => learner as usize,
            other => return Err(unexpected("Learner", &other)),
        };
        c.patience(None)?;
        match links.get_mut(l) {
            Some(slot @ None) => *slot = Some(c),
            _ => {
                return Err(std::io::Error::other(format!(
                    "learner {l} connected twice or is not one of the {learners}"
                )));
            }
        }
    }
    Ok(links.into_iter().flatten().collect())
}

/// Turns learner `l`'s messages into the shard loop's, in the order they arrive.
fn read(l: usize, mut link: Conn, tx: Sender<ToShard>, pending: &Pending) {
    loop {
        let msg = match link.recv() {
            Ok(Msg::Pull) => ToShard::Pull {
                learner: l,
                buf: vec![],
            },
            Ok(Msg::Push {
                read_version,
                arrived,
                data,
            }) => ToShard::Push {
                learner: l,
                read_version,
                data,
                arrived,
            },
            Ok(Msg::Snapshot { epoch }) => {
                let (reply, answer) = channel();
                if let Ok(mut p) = pending.lock() {
                    p.push((epoch, answer));
                }
                ToShard::Snapshot { reply }
            }
            // A link that ends, or says what a learner never says, is closed; the learner
            // sees it and tells the coordinator.
            _ => break,
        };
        if tx.send(msg).is_err() {
            break;
        }
    }
    link.close();
}

/// Sends a learner the shard loop's answers.
fn write(mut link: Conn, outbox: Receiver<FromShard>) {
    for m in outbox {
        let msg = match m {
            FromShard::Slice { version, data, .. } => Msg::Slice { version, data },
            FromShard::Applied { span, answer, .. } => Msg::Applied {
                arrived: span.arrived,
                started: span.started,
                finished: span.finished,
                dropped: answer.dropped,
                slot: answer.slot,
            },
        };
        if link.send(&msg).is_err() {
            break;
        }
    }
}
