//! Elastic averaging (EASGD, and EAMSGD with Nesterov momentum in the local steps) for real on
//! this host: every learner is an OS thread that keeps its own parameters (and, EAMSGD, its
//! own velocity), takes `tau` local steps on them, then pulls the centre variable's slices from
//! the shard threads, computes the elastic difference `e = alpha (x - centre)` slice by slice,
//! moves its own parameters by `-e` and pushes `e` to each shard, which adds it to its slice of
//! the centre and acknowledges. Shards serve one message at a time in arrival order, as in
//! Downpour (`super::downpour`), and record each exchange's staleness the same way (the shard's
//! version when it adds the difference minus the version the learner read).
//!
//! The arithmetic is the simulator's (`training::elastic`): the same local steps on the same
//! batches and seeds, the same differences, in the same order for one learner. The centre is
//! what is evaluated at epoch ends (on snapshots, after the run) and returned.
//!
//! A panicking learner or shard, a diverged loss, or the stop flag ends the run cleanly with
//! what was measured so far; no thread ever waits for a message that cannot come.

use super::runtime::{
    Job, LearnerEnd, RealRun, ServerEnd, Shared, Start, end_epoch, finish, serve,
};
use super::shard::{Apply, FromShard, ToShard, shard_loop};
use super::timeline::classify;
use crate::algorithm::Algorithm;
use crate::data::Dataset;
use crate::numerics::{Objective, Scratch};
use crate::observe::Observer;
use crate::outcome::{Activity, Breakdown};
use crate::stats::Histogram;
use crate::training::elastic::{LocalRule, absorb, difference, local_steps};
use crate::training::real::RealSetup;
use crate::training::sampler::{Sampler, gradient_seed};
use crate::workload::model::BYTES_PER_PARAM;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, channel};

/// Runs EASGD or EAMSGD (`setup.algorithm` is `Algorithm::Elastic`) with `setup.learners`
/// learner threads and one thread per shard range of the centre variable until
/// `epochs * iterations_per_epoch` mini-batches are done (or the run is stopped). Learners
/// claim `tau` mini-batches at a time, so the run may end up to `p (tau - 1)` mini-batches past
/// the total, as the simulator's does.
pub fn run<O: Observer + Send>(job: &Job, observer: O) -> (RealRun, O) {
    let (setup, objective, dataset) = (job.setup, job.objective, job.dataset);
    let (p, init, shared, sampler, observer) = Start::new(job, observer).parts();
    let ranges = &setup.shard_ranges;
    let (learners, shards) = serve(
        &shared,
        p,
        &init,
        ranges,
        |k, slice, rx, replies| Ok(shard_loop(k, slice, rx, replies, &shared, Absorb)),
        |l, to_shards, replies| {
            let ctx = LearnerCtx {
                l,
                setup,
                ranges,
                shared: &shared,
                sampler: &sampler,
                observer: &observer,
                objective: &**objective,
                dataset,
                to_shards,
                replies,
            };
            ctx.run(init.clone())
        },
    );
    let end_ns = shared.now();
    let mut parameters = init;
    let server = ServerEnd::of_shards(ranges, &shards, &mut parameters);
    // Every exchange pulls the whole centre and pushes a whole difference.
    let per_exchange = BYTES_PER_PARAM * parameters.len() as u64 * 2;
    let learners: Vec<LearnerEnd> = learners
        .into_iter()
        .map(|(breakdown, iterations, exchanges)| LearnerEnd {
            breakdown,
            iterations,
            gradients: iterations,
            bytes: per_exchange * exchanges,
            staleness: Histogram::default(),
        })
        .collect();
    finish(
        setup, objective, dataset, shared, observer, end_ns, parameters, &learners, server,
    )
}

/// An elastic averaging shard's update: the centre moves by the learner's difference.
struct Absorb;

impl Apply for Absorb {
    fn apply(&mut self, _learner: usize, centre: &mut [f32], diff: &[f32], _staleness: u64) {
        absorb(centre, diff);
    }
}

struct LearnerCtx<'a, O> {
    l: usize,
    setup: &'a RealSetup,
    ranges: &'a [Range<usize>],
    shared: &'a Shared<'a>,
    sampler: &'a Mutex<Sampler>,
    observer: &'a Mutex<O>,
    objective: &'a dyn Objective,
    dataset: &'a Dataset,
    to_shards: &'a [Sender<ToShard>],
    replies: &'a Receiver<FromShard>,
}

impl<O: Observer> LearnerCtx<'_, O> {
    fn reply(&self) -> Option<FromShard> {
        self.shared.receive(self.replies)
    }

    fn send(&self, k: usize, msg: ToShard) -> Option<()> {
        self.shared.send_to_shard(self.to_shards, k, msg)
    }

    /// The learner's loop from its own copy `x` of the initial parameters (the centre's
    /// start). Returns its breakdown, its mini-batches and its exchanges with the centre.
    fn run(&self, mut x: Vec<f32>) -> (Breakdown, u64, u64) {
        let sh = self.shared;
        let (tau, alpha, delta) = match self.setup.algorithm {
            Algorithm::Elastic { tau, alpha, delta } => (tau.max(1), alpha, delta),
            // Not elastic averaging: nothing to run (the dispatcher never gets here).
            _ => return (Breakdown::default(), 0, 0),
        };
        let rule = LocalRule {
            learning_rate: self.setup.learning_rate,
            weight_decay: self.setup.weight_decay,
            delta,
        };
        let n = x.len();
        let mut velocity: Vec<f32> = vec![];
        let mut grad = vec![0.0f32; n];
        let mut read = vec![0.0f32; n];
        let mut versions = vec![0u64; self.ranges.len()];
        let mut spares: Vec<Vec<f32>> = vec![];
        let mut scratch = Scratch::default();
        let mut breakdown = Breakdown::default();
        let (mut iterations, mut exchanges) = (0u64, 0u64);
        while !sh.halted() && sh.claimed.fetch_add(tau, Ordering::Relaxed) < sh.total {
            // Local steps on the learner's own variable, on tau batches drawn one after another.
            let t0 = sh.now();
            let batches: Vec<(Vec<usize>, u64)> = match self.sampler.lock() {
                Ok(mut s) => (0..tau)
                    .map(|t| {
                        let idx = s.next_batch(self.l, self.setup.batch_size);
                        (idx, gradient_seed(self.setup.seed, self.l, iterations + t))
                    })
                    .collect(),
                Err(_) => return (breakdown, iterations, exchanges),
            };
            let loss = local_steps(
                self.objective,
                self.dataset,
                &batches,
                rule,
                &mut x,
                &mut velocity,
                &mut grad,
                &mut scratch,
            );
            let t1 = sh.now();
            breakdown.add(Activity::Compute, t1 - t0);
            iterations += tau;
            if !loss.is_finite() {
                sh.diverged.store(true, Ordering::Relaxed);
                return (breakdown, iterations, exchanges);
            }

            // Pull the centre's slices.
            for k in 0..self.ranges.len() {
                let pull = ToShard::Pull {
                    learner: self.l,
                    buf: spares.pop().unwrap_or_default(),
                };
                if self.send(k, pull).is_none() {
                    return (breakdown, iterations, exchanges);
                }
            }
            for _ in 0..self.ranges.len() {
                match self.reply() {
                    Some(FromShard::Slice {
                        shard,
                        version,
                        data,
                    }) => {
                        read[self.ranges[shard].clone()].copy_from_slice(&data);
                        versions[shard] = version;
                        spares.push(data);
                    }
                    _ => return (breakdown, iterations, exchanges),
                }
            }
            let t2 = sh.now();
            breakdown.add(Activity::Pull, t2 - t1);

            // The elastic difference, slice by slice: the learner moves by -e, the shard by +e.
            for (k, r) in self.ranges.iter().enumerate() {
                let mut e = spares.pop().unwrap_or_default();
                difference(&mut x[r.clone()], &read[r.clone()], alpha, &mut e);
                let msg = ToShard::Push {
                    learner: self.l,
                    read_version: versions[k],
                    data: e,
                    arrived: sh.now(),
                };
                if self.send(k, msg).is_none() {
                    return (breakdown, iterations, exchanges);
                }
            }
            let mut spans = Vec::with_capacity(self.ranges.len());
            for _ in 0..self.ranges.len() {
                match self.reply() {
                    Some(FromShard::Applied { mut span, spare }) => {
                        span.received = sh.now();
                        spans.push(span);
                        spares.push(spare);
                    }
                    _ => return (breakdown, iterations, exchanges),
                }
            }
            let t3 = sh.now();
            let (push, server, wait) = classify(t2, t3, &spans);
            breakdown.add(Activity::Push, push);
            breakdown.add(Activity::ServerUpdate, server);
            breakdown.add(Activity::Wait, wait);
            exchanges += 1;

            // The round's tau mini-batches are done; every epoch end they carry the count
            // past is reported (the simulator's rule).
            let done = sh.completed.fetch_add(tau, Ordering::Relaxed) + tau;
            let epochs = sh.total / sh.per_epoch;
            for epoch in (done - tau) / sh.per_epoch + 1..=(done / sh.per_epoch).min(epochs) {
                self.end_epoch(epoch, done);
            }
        }
        (breakdown, iterations, exchanges)
    }

    /// The learner whose exchange ends an epoch snapshots the centre for evaluation after the
    /// run, deals the data out again and reports the epoch.
    fn end_epoch(&self, epoch: u64, done: u64) {
        let sh = self.shared;
        let at = sh.now();
        let (tx, rx) = channel();
        let mut snapshot = vec![0.0f32; self.objective.num_params()];
        for k in 0..self.ranges.len() {
            if self
                .send(k, ToShard::Snapshot { reply: tx.clone() })
                .is_none()
            {
                return;
            }
        }
        drop(tx);
        for (k, data) in rx.iter() {
            snapshot[self.ranges[k].clone()].copy_from_slice(&data);
        }
        end_epoch(sh, self.sampler, self.observer, epoch, at, done, snapshot);
    }
}

#[cfg(test)]
mod tests {
    use crate::input::Override;
    use crate::scenario::{self, Scenario};
    use std::path::Path;
    use std::sync::atomic::AtomicBool;

    fn quick(sets: &[&str]) -> Scenario {
        let overrides: Vec<Override> = [
            "workload.dataset.train_samples=600",
            "workload.dataset.test_samples=200",
            "workload.eval_train_samples=200",
            "workload.epochs=1",
        ]
        .iter()
        .chain(sets)
        .filter_map(|s| Override::parse(s).ok())
        .collect();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
        scenario::load(path.to_str().unwrap_or_default(), &overrides)
            .unwrap_or_else(|e| panic!("quick.toml: {e:?}"))
    }

    /// With one learner the order of events is fixed: the real run's centre is the
    /// simulator's, bit for bit, and so is every curve point's evaluation.
    fn one_learner_matches_the_simulator(kind: &str) {
        // tau = 4 does not divide the epoch's iterations: exchanges carry the count past
        // epoch ends, as in the simulator.
        let sc = quick(&[
            &format!("algorithm.kind={kind}"),
            "cluster.learners=1",
            "cluster.shards=2",
            "algorithm.tau=4",
            "algorithm.alpha=0.3",
            "workload.epochs=2",
        ]);
        assert!(!sc.iterations_per_epoch.is_multiple_of(4));
        let stop = AtomicBool::new(false);
        let real = crate::real::run(&sc, (), &stop).unwrap_or_else(|e| panic!("{e:?}"));
        let sim = crate::run::simulate(&sc, ()).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(real.stopped.is_none());
        assert_eq!(real.parameters, sim.parameters, "{kind}");
        assert_eq!(real.curve.len(), 3, "{kind}: the start and two epochs");
        assert_eq!(real.curve.len(), sim.curve.len(), "{kind}");
        for (r, s) in real.curve.iter().zip(&sim.curve) {
            assert_eq!((r.epoch, r.samples), (s.epoch, s.samples), "{kind}");
            assert_eq!(r.test_loss, s.test_loss, "{kind}");
        }
        let total = 2 * sc.iterations_per_epoch;
        let rounds = total.div_ceil(4);
        assert_eq!(real.gradients, 4 * rounds);
        let s = &real.summary;
        assert_eq!(s.backend, "real");
        assert!(s.per_shard.iter().all(|sh| sh.updates == rounds));
        assert_eq!(s.staleness.max, 0, "one learner is never stale");
        assert_eq!(s.epoch_ends_s.len(), 2);
        assert!(s.breakdown.compute > 0.0 && s.breakdown.pull > 0.0);
        assert!(real.curve[2].test_accuracy > real.curve[0].test_accuracy);
    }

    #[test]
    fn easgd_with_one_learner_is_the_simulators() {
        one_learner_matches_the_simulator("easgd");
    }

    #[test]
    fn eamsgd_with_one_learner_is_the_simulators() {
        one_learner_matches_the_simulator("eamsgd");
    }

    #[test]
    fn easgd_with_three_learners_exchanges_with_staleness() {
        let sc = quick(&[
            "algorithm.kind=easgd",
            "cluster.learners=3",
            "cluster.shards=2",
            "algorithm.tau=2",
        ]);
        let stop = AtomicBool::new(false);
        let r = crate::real::run(&sc, (), &stop).unwrap_or_else(|e| panic!("{e:?}"));
        let s = &r.summary;
        assert!(r.stopped.is_none());
        let exchanges: u64 = s.per_learner.iter().map(|l| l.iterations).sum::<u64>() / 2;
        assert!(r.gradients >= sc.iterations_per_epoch);
        assert!(s.per_shard.iter().all(|sh| sh.updates == exchanges));
        assert_eq!(
            s.staleness.histogram.iter().sum::<u64>(),
            exchanges * s.per_shard.len() as u64
        );
        assert_eq!(s.epoch_ends_s.len(), 1);
        assert_eq!(r.curve.len(), 2);
        assert!(r.curve[1].test_accuracy > r.curve[0].test_accuracy);
    }

    /// Sets the stop flag at the first epoch end, as Ctrl-C would.
    struct StopAtFirstEpoch<'a>(&'a AtomicBool);

    impl crate::observe::Observer for StopAtFirstEpoch<'_> {
        fn epoch_end(&mut self, _epoch: u64, _time: crate::time::SimTime) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn a_stop_ends_the_run_with_what_it_measured() {
        let sc = quick(&[
            "algorithm.kind=easgd",
            "cluster.learners=2",
            "algorithm.tau=3",
            "workload.epochs=3",
        ]);
        let stop = AtomicBool::new(false);
        let r = crate::real::run(&sc, StopAtFirstEpoch(&stop), &stop)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let why = r.stopped.unwrap_or_default();
        assert!(why.starts_with("interrupted after"), "{why}");
        assert!(r.gradients >= sc.iterations_per_epoch);
        assert!(r.gradients < 3 * sc.iterations_per_epoch);
        assert_eq!(r.summary.epoch_ends_s.len(), 1);
        assert!((2..=3).contains(&r.curve.len()));
        assert!(r.parameters.iter().all(|x| x.is_finite()));
    }
}
