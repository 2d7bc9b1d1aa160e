//! Every algorithm whose server is asynchronous shards, for real on this host: Downpour and its
//! variants, the partitioned model, SSP and elastic averaging. Every learner is an OS thread
//! running its role (`super::learner`), every parameter-server shard a thread that owns its
//! slice and serves one message at a time in arrival order (`super::shard`). Pulls and pushes
//! copy the slices into buffers sent over channels, as a network would. What differs between
//! the kinds is only what their learners' numbers are ([`Gradient`], [`Elastic`]) and what a
//! push does at a shard ([`RuleApply`], [`Absorb`]); each is the same arithmetic the simulator
//! uses (`training::update`, `training::elastic`).
//!
//! Times are measured with the monotonic clock. Evaluation of the parameters at epoch ends is
//! done after training, on snapshots taken at the epoch ends, so it costs the run no time.
//! A panicking learner or shard, a diverged loss, or the stop flag (Ctrl-C) ends the run
//! cleanly with what was measured so far; no thread ever waits for a message that cannot come.

use super::control::{Control, Local};
use super::learner::{Learner, Reach, Shards, Work};
use super::runtime::{Clock, Job, LearnerEnd, RealRun, ServerEnd, ShardEnd, Start, finish, serve};
use super::shard::{Apply, FromShard, Outage, ToShard, shard_loop};
use super::ssgd::{Common, MeanStep, Plan, ps_learner};
use crate::algorithm::{Algorithm, Rule, Server};
use crate::data::{Dataset, Split};
use crate::numerics::{Objective, Scratch};
use crate::observe::Observer;
use crate::training::elastic::{LocalRule, absorb, difference, local_steps};
use crate::training::real::RealSetup;
use crate::training::update;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender};

/// Runs the scenario's algorithm with `setup.learners` learner threads and one thread per
/// shard range until `epochs * iterations_per_epoch` mini-batches are done (or the run is
/// stopped). Elastic learners count each local step as it ends, so the run ends on the
/// epoch's last step, as the simulator's does; synchronous SGD's learners run in whole rounds
/// (`super::ssgd::ps_learner`), the barrier the shards'.
pub fn run<O: Observer + Send>(job: &Job, observer: O) -> (RealRun, O) {
    let (setup, objective, dataset) = (job.setup, job.objective, job.dataset);
    let (p, init, shared, sampler, observer) = Start::new(job, observer).parts();
    let ranges = &setup.shard_ranges;
    let (learners, shards) = serve(
        &shared,
        p,
        &init,
        ranges,
        |k, slice, rx, replies| serve_slice(k, slice, rx, replies, &shared, setup),
        |l, to_shards, replies| {
            let control = Local::new(&shared, &sampler, &observer);
            let n = objective.num_params();
            let reach = Shards::new(l, ranges, &shared, to_shards, replies, n);
            if setup.algorithm.server() == Server::Synchronous {
                let c = Common {
                    l,
                    setup,
                    plan: Plan::new(setup.algorithm, p, job.iterations_per_epoch, job.epochs),
                    control: &control,
                    objective: &**objective,
                    dataset,
                };
                return ps_learner(&c, reach).into_end();
            }
            let learner = Learner {
                l,
                setup,
                control: &control,
            };
            learn(&learner, reach, &**objective, dataset, &init)
        },
    );
    let end_ns = shared.now();
    let mut parameters = init;
    let server = ServerEnd::of_shards(ranges, &shards, &mut parameters);
    finish(
        setup, objective, dataset, shared, observer, end_ns, parameters, &learners, server,
    )
}

/// Serves shard `k` of the scenario's algorithm until its queue closes: elastic averaging's
/// centre absorbs differences, synchronous SGD's slice takes one step per round of the
/// learners' gradients (`replies` has one per learner), every other kind's slice takes the
/// algorithm's update rule.
pub(super) fn serve_slice(
    k: usize,
    slice: Vec<f32>,
    rx: Receiver<ToShard>,
    replies: &[Sender<FromShard>],
    clock: &impl Clock,
    setup: &RealSetup,
) -> Result<ShardEnd, String> {
    let outage = Outage::of(&setup.shard_faults, k);
    match setup.algorithm.server() {
        Server::Elastic => shard_loop(k, slice, rx, replies, clock, Absorb, outage),
        Server::Synchronous => {
            let rule = MeanStep::new(setup, replies.len(), slice.len());
            shard_loop(k, slice, rx, replies, clock, rule, outage)
        }
        _ => {
            let rule = RuleApply::new(setup, slice.len());
            shard_loop(k, slice, rx, replies, clock, rule, outage)
        }
    }
}

/// Runs `learner`'s role with the numbers of the scenario's algorithm (an elastic learner's
/// own parameters and centre, or a gradient learner's), reaching the server through `reach`,
/// starting from `init`.
pub(super) fn learn<C: Control>(
    learner: &Learner<'_, C>,
    reach: impl Reach,
    objective: &dyn Objective,
    dataset: &Dataset,
    init: &[f32],
) -> LearnerEnd {
    let setup = learner.setup;
    let shards = setup.shard_ranges.len();
    match setup.algorithm {
        Algorithm::Elastic { alpha, delta, .. } => {
            let x = init.to_vec();
            let work = Elastic::new(objective, dataset, setup, alpha, delta, x);
            learner.run(work, reach, shards)
        }
        _ => learner.run(Gradient::new(objective, dataset), reach, shards),
    }
}

/// A gradient learner's numbers: the parameters it pulled, the gradient it computed.
pub(super) struct Gradient<'a> {
    objective: &'a dyn Objective,
    dataset: &'a Dataset,
    params: Vec<f32>,
    grad: Vec<f32>,
    scratch: Scratch,
}

impl<'a> Gradient<'a> {
    /// Its parameters to read, its gradient and its scratch to write.
    pub(super) fn parts(&mut self) -> (&[f32], &mut [f32], &mut Scratch) {
        (&self.params, &mut self.grad, &mut self.scratch)
    }

    pub(super) fn new(objective: &'a dyn Objective, dataset: &'a Dataset) -> Self {
        let n = objective.num_params();
        Gradient {
            objective,
            dataset,
            params: vec![0.0; n],
            grad: vec![0.0; n],
            scratch: Scratch::default(),
        }
    }
}

impl Work for Gradient<'_> {
    fn destination(&mut self, range: Range<usize>) -> &mut [f32] {
        &mut self.params[range]
    }

    fn compute(&mut self, batches: &[(Vec<usize>, u64)]) -> f32 {
        let mut loss = 0.0;
        for (indices, seed) in batches {
            let batch = self.dataset.gather(Split::Train, indices);
            loss += self.objective.loss_grad(
                &self.params,
                &batch,
                *seed,
                &mut self.grad,
                &mut self.scratch,
            );
        }
        loss
    }

    fn message(&mut self, range: Range<usize>, buf: &mut Vec<f32>) {
        buf.clear();
        buf.extend_from_slice(&self.grad[range]);
    }

    fn gradient(&self) -> &[f32] {
        &self.grad
    }
}

/// An elastic learner's numbers: its own parameters (and, EAMSGD, velocity), which the local
/// steps move, and the centre it pulled, which the difference is taken against.
struct Elastic<'a> {
    objective: &'a dyn Objective,
    dataset: &'a Dataset,
    rule: LocalRule,
    alpha: f32,
    x: Vec<f32>,
    velocity: Vec<f32>,
    centre: Vec<f32>,
    grad: Vec<f32>,
    scratch: Scratch,
}

impl<'a> Elastic<'a> {
    /// Starts from `x`, its own copy of the initial parameters (the centre's start).
    fn new(
        objective: &'a dyn Objective,
        dataset: &'a Dataset,
        setup: &RealSetup,
        alpha: f32,
        delta: Option<f32>,
        x: Vec<f32>,
    ) -> Self {
        let n = x.len();
        Elastic {
            objective,
            dataset,
            rule: LocalRule {
                learning_rate: setup.learning_rate,
                weight_decay: setup.weight_decay,
                delta,
            },
            alpha,
            x,
            velocity: vec![],
            centre: vec![0.0; n],
            grad: vec![0.0; n],
            scratch: Scratch::default(),
        }
    }
}

impl Work for Elastic<'_> {
    fn destination(&mut self, range: Range<usize>) -> &mut [f32] {
        &mut self.centre[range]
    }

    fn compute(&mut self, batches: &[(Vec<usize>, u64)]) -> f32 {
        local_steps(
            self.objective,
            self.dataset,
            batches,
            self.rule,
            &mut self.x,
            &mut self.velocity,
            &mut self.grad,
            &mut self.scratch,
        )
    }

    /// The elastic difference over `range`: the learner moves by -e, the shard by +e.
    fn message(&mut self, range: Range<usize>, buf: &mut Vec<f32>) {
        difference(
            &mut self.x[range.clone()],
            &self.centre[range],
            self.alpha,
            buf,
        );
    }

    /// Its local steps' last gradient (an elastic push is a difference, never this).
    fn gradient(&self) -> &[f32] {
        &self.grad
    }
}

/// A gradient shard's update: the algorithm's rule with the shard's momentum and, for delay
/// compensation, the slice as each learner last read it.
struct RuleApply<'a> {
    setup: &'a RealSetup,
    rule: Rule,
    velocity: Vec<f32>,
    backups: Vec<Vec<f32>>,
}

impl<'a> RuleApply<'a> {
    fn new(setup: &'a RealSetup, len: usize) -> Self {
        let rule = setup.algorithm.rule();
        RuleApply {
            setup,
            rule,
            velocity: setup.velocity(len),
            // Delay compensation needs the slice as each learner last read it.
            backups: if rule.needs_backup() {
                vec![vec![]; setup.learners]
            } else {
                vec![]
            },
        }
    }
}

impl Apply for RuleApply<'_> {
    fn pulled(&mut self, learner: usize, slice: &[f32]) {
        if let Some(b) = self.backups.get_mut(learner) {
            b.clear();
            b.extend_from_slice(slice);
        }
    }

    fn apply(&mut self, learner: usize, slice: &mut [f32], grad: &[f32], staleness: u64) {
        let read = self.backups.get(learner).map_or(&[][..], Vec::as_slice);
        let x = (slice, &mut self.velocity[..]);
        update::apply_rule(self.rule, x, grad, read, staleness, self.setup.rates());
    }

    fn state(&mut self) -> &mut [f32] {
        &mut self.velocity
    }
}

/// An elastic averaging shard's update: the centre moves by the learner's difference.
struct Absorb;

impl Apply for Absorb {
    fn apply(&mut self, _learner: usize, centre: &mut [f32], diff: &[f32], _staleness: u64) {
        absorb(centre, diff);
    }
}

#[cfg(test)]
mod tests {
    use crate::real::testing::quick;
    use std::sync::atomic::AtomicBool;

    /// With one learner the order of events is fixed: the real run's centre is the
    /// simulator's, bit for bit, and so is every curve point's evaluation.
    fn one_learner_matches_the_simulator(kind: &str) {
        // tau = 4 does not divide the epoch's iterations: exchanges carry the count past
        // epoch ends, as in the simulator.
        let sc = quick(&[
            &format!("algorithm.kind={kind}"),
            "cluster.learners=1",
            "cluster.shards=2",
            "algorithm.elastic.tau=4",
            "algorithm.elastic.alpha=0.3",
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
        // Every local step counts toward the epochs; an exchange follows every fourth.
        let total = 2 * sc.iterations_per_epoch;
        let rounds = total / 4;
        assert_eq!(real.gradients, total);
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
            "algorithm.elastic.tau=2",
        ]);
        let stop = AtomicBool::new(false);
        let r = crate::real::run(&sc, (), &stop).unwrap_or_else(|e| panic!("{e:?}"));
        let s = &r.summary;
        assert!(r.stopped.is_none());
        // Each learner exchanges after every second local step it counts; the run ends when
        // the epoch's last step is counted, so each learner may have one exchange unmade.
        let iterations: Vec<u64> = s.per_learner.iter().map(|l| l.iterations).collect();
        let most: u64 = iterations.iter().map(|i| i / 2).sum();
        let exchanges = s.per_shard[0].updates;
        assert_eq!(r.gradients, sc.iterations_per_epoch, "{iterations:?}");
        assert!(
            (most.saturating_sub(3)..=most).contains(&exchanges),
            "{exchanges} exchanges, {iterations:?} steps"
        );
        assert!(s.per_shard.iter().all(|sh| sh.updates == exchanges));
        assert_eq!(
            s.staleness.histogram.iter().sum::<u64>(),
            exchanges * s.per_shard.len() as u64
        );
        assert_eq!(s.epoch_ends_s.len(), 1);
        assert_eq!(r.curve.len(), 2);
        assert!(r.curve[1].test_accuracy > r.curve[0].test_accuracy);
    }
}
