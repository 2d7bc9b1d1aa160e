//! Real gradients through simulated staleness. The server's parameters live here as one flat
//! vector whose shard slices move exactly when the simulation says: a pull copies a shard's
//! slice into the learner's own parameters, a learner's gradient is computed on exactly the
//! parameters it pulled (a sharded read may mix versions), and a shard applies its slice of the
//! gradient at the simulated moment its update completes.
//!
//! Gradients run ahead on a worker pool: a job is submitted when the learner starts computing
//! and waited for only when a shard first applies it. Jobs are pure functions of (parameters,
//! batch, seed), applied in event order, so the trajectory is bit-identical whatever the number
//! of threads. Nothing here decides when anything happens.

use super::Gradients;
use super::elastic::{LocalRule, absorb, difference, local_steps};
use super::pool::{Pool, Ticket};
use super::sampler::{Sampler, gradient_seed};
use super::update::{Rates, apply, apply_rule, mean_in_order};
use crate::algorithm::Algorithm;
use crate::data::{Dataset, Split};
use crate::numerics::{Objective, Scratch};
use crate::outcome::CurvePoint;
use crate::time::SimTime;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

/// Samples per evaluation job.
const EVAL_CHUNK: usize = 500;

thread_local! {
    /// Each thread's reusable numeric buffers, so a warm gradient step allocates nothing.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch buffers.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| f(&mut s.borrow_mut()))
}

/// Optimiser and run settings of the numeric side.
#[derive(Clone, Debug)]
pub struct RealSetup {
    pub learners: usize,
    pub shard_ranges: Vec<Range<usize>>,
    pub batch_size: usize,
    pub learning_rate: f32,
    /// Heavy-ball momentum applied by the server, per shard (0: plain SGD).
    pub momentum: f32,
    /// L2 weight decay added to the gradient by the server.
    pub weight_decay: f32,
    /// The algorithm whose numerics these are (its update rule, its local steps).
    pub algorithm: crate::algorithm::Algorithm,
    pub seed: u64,
    /// Worker threads for gradient and evaluation jobs (0: on the event loop's thread).
    pub workers: usize,
    /// Training samples evaluated at each epoch end for the train loss and accuracy.
    pub eval_train_samples: usize,
    /// Each learner's slowdown factor (`[faults]`; 1: as fast as its device).
    pub slowdowns: Vec<f64>,
    /// Iterations (mini-batches) the run trains for: epochs x iterations per epoch.
    pub iterations: u64,
    /// The learners' failures (`[faults]`).
    pub failures: Vec<crate::faults::Failure>,
    /// Each learner's slow spells (`[faults]`), None where it has none.
    pub flaky: Vec<Option<crate::faults::Flaky>>,
    /// The shards' failures and checkpoints (`[faults]`).
    pub shard_faults: crate::faults::ShardFaults,
}

impl RealSetup {
    /// How many times its device's time learner `l`'s gradient begun `t_s` seconds into the
    /// run takes: its constant slowdown times its slow spell's factor then (the spells drawn
    /// again from the run's start, as the simulator draws them).
    pub fn slowdown_at(&self, l: usize, t_s: f64) -> f64 {
        let constant = self.slowdowns.get(l).copied().unwrap_or(1.0);
        let spell = self.flaky.get(l).copied().flatten();
        let spell = spell.map_or(1.0, |f| {
            crate::faults::Spells::new(f, self.seed, l).factor_at(t_s)
        });
        constant * spell
    }

    /// The server's step sizes.
    pub fn rates(&self) -> Rates {
        Rates {
            lr: self.learning_rate,
            mu: self.momentum,
            wd: self.weight_decay,
        }
    }

    /// A heavy-ball velocity for `len` parameters: zeros with momentum, empty without (the
    /// update rules then skip it).
    pub fn velocity(&self, len: usize) -> Vec<f32> {
        if self.momentum != 0.0 {
            vec![0.0; len]
        } else {
            vec![]
        }
    }
}

/// A finished job: its loss, the gradient buffer, and the learner's parameters and velocity
/// (elastic averaging's local steps change them).
pub struct JobResult {
    pub loss: f32,
    pub grad: Vec<f32>,
    pub params: Vec<f32>,
    pub velocity: Vec<f32>,
}

pub struct RealGradients {
    setup: RealSetup,
    objective: Arc<dyn Objective>,
    dataset: Arc<Dataset>,
    pool: Pool,
    sampler: Sampler,
    server: Vec<f32>,
    velocity: Vec<f32>,
    /// Parameters each learner pulled (elastic averaging: the learner's own variable); lent
    /// to its gradient job while that runs.
    learner_params: Vec<Vec<f32>>,
    /// Elastic averaging: each learner's momentum (EAMSGD) and the centre as it last read it.
    learner_velocity: Vec<Vec<f32>>,
    centre_read: Vec<Vec<f32>>,
    /// Mini-batches each learner has started.
    iterations: Vec<u64>,
    pending: Vec<Option<Ticket<JobResult>>>,
    /// A learner's finished gradient, kept until its iteration is done.
    ready: Vec<Option<Vec<f32>>>,
    spare: Vec<Vec<f32>>,
    /// Scratch for synchronous means and elastic differences.
    sum: Vec<f32>,
    applied_updates: u64,
    curve: Vec<CurvePoint>,
    diverged: bool,
    /// Each shard's last checkpoint: its slice of the parameters and of the velocity.
    checkpoints: Vec<Option<(Vec<f32>, Vec<f32>)>>,
}

impl RealGradients {
    /// Initialises the parameters from the seed and evaluates the starting point (epoch 0).
    pub fn new(setup: RealSetup, objective: Arc<dyn Objective>, dataset: Arc<Dataset>) -> Self {
        let server = objective.init_params(setup.seed);
        let n = server.len();
        let p = setup.learners;
        let mut me = Self {
            pool: Pool::new(setup.workers),
            sampler: Sampler::for_run(dataset.len(Split::Train), p, setup.seed),
            velocity: setup.velocity(n),
            // Elastic averaging's learners start at the centre; the others pull first.
            learner_params: vec![server.clone(); p],
            learner_velocity: vec![vec![]; p],
            centre_read: match setup.algorithm {
                Algorithm::Elastic { .. } => vec![server.clone(); p],
                _ => vec![],
            },
            iterations: vec![0; p],
            pending: (0..p).map(|_| None).collect(),
            ready: vec![None; p],
            spare: vec![],
            sum: vec![],
            applied_updates: 0,
            curve: vec![],
            diverged: false,
            checkpoints: vec![],
            server,
            setup,
            objective,
            dataset,
        };
        me.record(0, SimTime::ZERO);
        me
    }

    /// Waits for the jobs still running, and evaluates the end point if the run stopped
    /// between epochs (it diverged).
    pub fn finish(&mut self, time: SimTime) {
        for l in 0..self.pending.len() {
            self.gradient_of(l);
        }
        let last_time = self.curve.last().map(|c| c.sim_time_s);
        if last_time != Some(time.as_secs_f64()) {
            let epoch = self.curve.last().map_or(0, |c| c.epoch);
            self.record(epoch, time);
        }
    }

    pub fn curve(&self) -> &[CurvePoint] {
        &self.curve
    }

    /// Gradients started so far (all of them are computed, even those still in flight at the
    /// end of a run).
    pub fn gradients_started(&self) -> u64 {
        self.iterations.iter().sum()
    }

    pub fn parameters(&self) -> &[f32] {
        &self.server
    }

    /// Waits for learner `l`'s gradient if it is still running.
    fn gradient_of(&mut self, l: usize) {
        if self.ready[l].is_some() {
            return;
        }
        let Some(ticket) = self.pending[l].take() else {
            return;
        };
        match ticket.wait() {
            Some(done) => {
                if !done.loss.is_finite() {
                    self.diverged = true;
                }
                self.learner_params[l] = done.params;
                self.learner_velocity[l] = done.velocity;
                self.ready[l] = Some(done.grad);
            }
            None => self.diverged = true,
        }
    }

    /// Evaluates the server's parameters and appends a curve point.
    fn record(&mut self, epoch: u64, time: SimTime) {
        let params = Arc::new(self.server.clone());
        let k = self
            .setup
            .eval_train_samples
            .min(self.dataset.len(Split::Train));
        let (train_loss, train_accuracy) = self.evaluate(&params, Split::Train, k);
        let n_test = self.dataset.len(Split::Test);
        let (test_loss, test_accuracy) = self.evaluate(&params, Split::Test, n_test);
        if !train_loss.is_finite() || (n_test > 0 && !test_loss.is_finite()) {
            self.diverged = true;
        }
        self.curve.push(CurvePoint {
            epoch,
            samples: self.applied_updates * self.setup.batch_size as u64,
            sim_time_s: time.as_secs_f64(),
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
        });
    }

    fn evaluate(&self, params: &Arc<Vec<f32>>, split: Split, n: usize) -> (f64, f64) {
        evaluate(&self.pool, &self.objective, &self.dataset, params, split, n)
    }
}

/// Mean loss and accuracy of `params` over the first `n` samples of a split, in parallel chunks
/// summed in order (NaN for no samples).
pub fn evaluate(
    pool: &Pool,
    objective: &Arc<dyn Objective>,
    dataset: &Arc<Dataset>,
    params: &Arc<Vec<f32>>,
    split: Split,
    n: usize,
) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let tickets: Vec<_> = (0..n)
        .step_by(EVAL_CHUNK)
        .map(|start| {
            let (obj, data, params) = (
                Arc::clone(objective),
                Arc::clone(dataset),
                Arc::clone(params),
            );
            let end = (start + EVAL_CHUNK).min(n);
            pool.submit(move || {
                let idx: Vec<usize> = (start..end).collect();
                let batch = data.gather(split, &idx);
                with_scratch(|scratch| obj.evaluate(&params, &batch, scratch))
            })
        })
        .collect();
    let (mut loss, mut correct) = (0.0, 0usize);
    for t in tickets {
        match t.wait() {
            Some((l, c)) => {
                loss += l;
                correct += c;
            }
            None => return (f64::NAN, f64::NAN),
        }
    }
    (loss / n as f64, correct as f64 / n as f64)
}

/// One gradient job: gathers the batch, computes the gradient into `grad`; hands back the
/// loss, the gradient and the parameters.
pub fn gradient_job(
    objective: Arc<dyn Objective>,
    dataset: Arc<Dataset>,
    indices: Vec<usize>,
    seed: u64,
    params: Vec<f32>,
    mut grad: Vec<f32>,
) -> impl FnOnce() -> JobResult + Send + 'static {
    move || {
        let batch = dataset.gather(Split::Train, &indices);
        let loss =
            with_scratch(|scratch| objective.loss_grad(&params, &batch, seed, &mut grad, scratch));
        JobResult {
            loss,
            grad,
            params,
            velocity: vec![],
        }
    }
}

/// Elastic averaging's local steps as a job: one step per (batch, seed) on the learner's
/// parameters and velocity, handed back changed.
pub fn local_steps_job(
    objective: Arc<dyn Objective>,
    dataset: Arc<Dataset>,
    batches: Vec<(Vec<usize>, u64)>,
    rule: LocalRule,
    mut params: Vec<f32>,
    mut velocity: Vec<f32>,
    mut grad: Vec<f32>,
) -> impl FnOnce() -> JobResult + Send + 'static {
    move || {
        let loss = with_scratch(|scratch| {
            local_steps(
                &*objective,
                &dataset,
                &batches,
                rule,
                &mut params,
                &mut velocity,
                &mut grad,
                scratch,
            )
        });
        JobResult {
            loss,
            grad,
            params,
            velocity,
        }
    }
}

impl RealGradients {
    /// The learner's finished gradient (waiting for its job), or None if the run diverged.
    fn gradient(&mut self, l: usize) -> Option<&[f32]> {
        self.gradient_of(l);
        if self.ready[l].is_none() {
            self.diverged = true;
        }
        self.ready[l].as_deref()
    }

    /// Applies `g` (a slice of the whole gradient, over range `r`) to the server by the
    /// update rule, with `read` the learner's copy of the slice.
    fn step(&mut self, r: Range<usize>, g: &[f32], read_of: Option<usize>, staleness: u64) {
        let (rule, rates) = (self.setup.algorithm.rule(), self.setup.rates());
        let v = if rates.mu == 0.0 {
            &mut [][..]
        } else {
            &mut self.velocity[r.clone()]
        };
        let read = read_of.map_or(&[][..], |l| &self.learner_params[l][r.clone()]);
        apply_rule(rule, (&mut self.server[r], v), g, read, staleness, rates);
    }

    /// After [`RealGradients::finish`]: learner `l`'s own parameters (elastic averaging's
    /// local variable; for the other algorithms, what it last read) and the mini-batches it
    /// started, those of a computation still running at the end included.
    pub fn learner_parameters(&self, l: usize) -> (&[f32], u64) {
        (&self.learner_params[l], self.iterations[l])
    }
}

impl Gradients for RealGradients {
    fn pull(&mut self, l: usize, s: usize) {
        let r = self.setup.shard_ranges[s].clone();
        let into = match self.setup.algorithm {
            // The learner keeps its own variable and reads the centre beside it.
            Algorithm::Elastic { .. } => &mut self.centre_read[l],
            _ => &mut self.learner_params[l],
        };
        into[r.clone()].copy_from_slice(&self.server[r]);
    }

    fn pull_partial(&mut self, l: usize, s: usize, in_flight: &[(usize, f64)]) {
        self.pull(l, s);
        let r = self.setup.shard_ranges[s].clone();
        let (lr, mu, wd) = (
            self.setup.learning_rate,
            self.setup.momentum,
            self.setup.weight_decay,
        );
        for &(j, fraction) in in_flight {
            let k = ((fraction.clamp(0.0, 1.0) * r.len() as f64) as usize).min(r.len());
            if k == 0 || self.gradient(j).is_none() {
                continue;
            }
            // The first k coordinates of the slice already hold j's update.
            let written = r.start..r.start + k;
            let mut v = if mu == 0.0 {
                vec![]
            } else {
                self.velocity[written.clone()].to_vec()
            };
            let (params, ready) = (&mut self.learner_params, &self.ready);
            if let Some(g) = ready[j].as_deref() {
                apply(
                    &mut params[l][written.clone()],
                    &mut v,
                    &g[written],
                    lr,
                    mu,
                    wd,
                );
            }
        }
    }

    fn compute(&mut self, l: usize) {
        if let Algorithm::Elastic { .. } = self.setup.algorithm {
            // The previous local step must be in: its parameters are this one's.
            self.gradient_of(l);
            if let Some(buf) = self.ready[l].take() {
                self.spare.push(buf);
            }
        }
        let params = std::mem::take(&mut self.learner_params[l]);
        let mut grad = self.spare.pop().unwrap_or_default();
        grad.resize(params.len(), 0.0);
        let (objective, dataset) = (Arc::clone(&self.objective), Arc::clone(&self.dataset));
        let ticket = match self.setup.algorithm {
            Algorithm::Elastic { delta, .. } => {
                let idx = self.sampler.next_batch(l, self.setup.batch_size);
                let seed = gradient_seed(self.setup.seed, l, self.iterations[l]);
                self.iterations[l] += 1;
                let batches = vec![(idx, seed)];
                let rule = LocalRule {
                    learning_rate: self.setup.learning_rate,
                    weight_decay: self.setup.weight_decay,
                    delta,
                };
                let velocity = std::mem::take(&mut self.learner_velocity[l]);
                self.pool.submit(local_steps_job(
                    objective, dataset, batches, rule, params, velocity, grad,
                ))
            }
            _ => {
                let indices = self.sampler.next_batch(l, self.setup.batch_size);
                let seed = gradient_seed(self.setup.seed, l, self.iterations[l]);
                self.iterations[l] += 1;
                self.pool.submit(gradient_job(
                    objective, dataset, indices, seed, params, grad,
                ))
            }
        };
        self.pending[l] = Some(ticket);
    }

    fn apply(&mut self, l: usize, s: usize, staleness: u64) {
        let r = self.setup.shard_ranges[s].clone();
        if let Algorithm::Elastic { alpha, .. } = self.setup.algorithm {
            // The local steps must be done: the learner's variable is theirs until then.
            if self.gradient(l).is_none() {
                return;
            }
            let mut e = std::mem::take(&mut self.sum);
            difference(
                &mut self.learner_params[l][r.clone()],
                &self.centre_read[l][r.clone()],
                alpha,
                &mut e,
            );
            absorb(&mut self.server[r], &e);
            self.sum = e;
            return;
        }
        if self.gradient(l).is_none() {
            return;
        }
        let Some(grad) = self.ready[l].take() else {
            return;
        };
        // The learner's parameters are still the ones it read: it reads again only once its
        // iteration is done.
        self.step(r.clone(), &grad[r], Some(l), staleness);
        // Parameters that overflow show up in the next loss, which is checked when it comes
        // back; scanning the slice here would double the server's memory traffic.
        self.ready[l] = Some(grad);
    }

    fn apply_round(&mut self, s: usize, order: &[usize]) {
        for &l in order {
            if self.gradient(l).is_none() {
                return;
            }
        }
        let r = self.setup.shard_ranges[s].clone();
        let mut mean = std::mem::take(&mut self.sum);
        mean_in_order(
            &mut mean,
            order
                .iter()
                .filter_map(|&l| self.ready[l].as_deref().map(|g| &g[r.clone()])),
        );
        self.step(r, &mean, None, 0);
        self.sum = mean;
    }

    fn computed(&mut self, _l: usize) {
        // A local step of elastic averaging is trained when it is computed.
        if let Algorithm::Elastic { .. } = self.setup.algorithm {
            self.applied_updates += 1;
        }
    }

    fn iteration_done(&mut self, l: usize) {
        if !matches!(self.setup.algorithm, Algorithm::Elastic { .. }) {
            self.applied_updates += 1;
        }
        if let Some(buf) = self.ready[l].take() {
            self.spare.push(buf);
        }
    }

    fn checkpoint(&mut self, s: usize) {
        let r = self.setup.shard_ranges[s].clone();
        if self.checkpoints.len() <= s {
            self.checkpoints.resize(s + 1, None);
        }
        let velocity = self.velocity.get(r.clone()).unwrap_or(&[]).to_vec();
        self.checkpoints[s] = Some((self.server[r].to_vec(), velocity));
    }

    fn restore(&mut self, s: usize) {
        let r = self.setup.shard_ranges[s].clone();
        if let Some(Some((params, velocity))) = self.checkpoints.get(s) {
            self.server[r.clone()].copy_from_slice(params);
            if let Some(v) = self.velocity.get_mut(r) {
                v.copy_from_slice(velocity);
            }
        }
    }

    fn dropped(&mut self, l: usize) {
        // Its parameters come back with the gradient, which goes unused.
        self.gradient_of(l);
        if let Some(buf) = self.ready[l].take() {
            self.spare.push(buf);
        }
    }

    fn epoch_end(&mut self, epoch: u64, time: SimTime) {
        self.sampler.repartition();
        self.record(epoch, time);
    }

    fn diverged(&self) -> bool {
        self.diverged
    }
}
