//! `ssgd-ps`, run by the threads backend's `super::super::sharded::run` and by the processes
//! backend's learners: the learners loop pull every shard slice -> compute -> push every
//! gradient slice -> wait for every shard's answer. A shard thread offers each gradient to its
//! round (`algorithm::ssgd::SyncRound`, the simulator's too); with the last the round needs it
//! takes one step by their mean summed in learner order (`mean_in_order`, then
//! `update::apply`, exactly the simulator's `apply_round`), moves to its next version, records
//! staleness 0 for each gradient of the step and acknowledges them all; a gradient the round
//! drops (backup workers) is answered at once. A learner's time after its
//! gradient is classified by [`classify`] with the instant each shard took its gradient in as
//! the arrival: until then (and while the ack is on its way back) push, from then to the step
//! wait (the barrier), the step itself server update.

use super::{Common, LearnerEnd};
use crate::algorithm::role::{Act, Happened};
use crate::algorithm::ssgd::SyncRound;
use crate::outcome::Activity;
use crate::real::control::Control;
use crate::real::learner::Reach;
use crate::real::outage::Outage;
use crate::real::shard::{Answer, Apply, Push};
use crate::real::sharded::Gradient;
use crate::training::real::RealSetup;
use crate::training::update;

/// A synchronous shard's round: one step by the mean of the round's gradients, summed in
/// learner order (`mean_in_order`, then `update::apply`, exactly the simulator's `apply_round`).
pub(in crate::real) struct MeanStep<'a> {
    setup: &'a RealSetup,
    learners: usize,
    velocity: Vec<f32>,
    mean: Vec<f32>,
}

impl<'a> MeanStep<'a> {
    pub fn new(setup: &'a RealSetup, learners: usize, len: usize) -> Self {
        MeanStep {
            setup,
            learners,
            velocity: setup.velocity(len),
            mean: Vec::with_capacity(len),
        }
    }
}

impl Apply for MeanStep<'_> {
    /// Never called: every push waits for its round.
    fn apply(&mut self, _learner: usize, _slice: &mut [f32], _data: &[f32], _staleness: u64) {}

    fn round(&self) -> Option<SyncRound> {
        let round = self.setup.algorithm.sync_round(self.learners);
        Some(round.until(self.setup.iterations))
    }

    fn step(&mut self, slice: &mut [f32], round: &[Option<Push>]) {
        let grads = round
            .iter()
            .filter_map(|g| g.as_ref().map(|g| g.data.as_slice()));
        update::mean_in_order(&mut self.mean, grads);
        update::apply(
            slice,
            &mut self.velocity,
            &self.mean,
            self.setup.learning_rate,
            self.setup.momentum,
            self.setup.weight_decay,
        );
    }

    fn state(&mut self) -> &mut [f32] {
        &mut self.velocity
    }
}

/// Runs learner `c.l`'s role (Downpour's cycle) until the plan's rounds are stepped: its pulls
/// and pushes through the shards by `reach` (the barrier is theirs), its gradient after the
/// epoch gate of the round it pulled, and each round it took part in counted. A gradient its
/// round dropped (backup workers) counts for nothing, and the learner pulls the next round.
pub(in crate::real) fn ps_learner<C: Control>(c: &Common<C>, mut reach: impl Reach) -> LearnerEnd {
    let control = c.control;
    let shards = c.setup.shard_ranges.len();
    let mut work = Gradient::new(c.objective, c.dataset);
    let mut end = LearnerEnd::default();
    let mut role = c.setup.algorithm.learner(c.l, shards);
    let mut then = role.on(Happened::Start).then;
    let rounds = c.plan.rounds();
    // The round the deciding shard's slice was pulled at (where the gradient counts, if it
    // does), and the oldest of every shard's: the learner stops once every slice it pulled
    // has taken the run's last step.
    let (mut round, mut oldest) = (0, 0);
    let mut answer = Answer::default();
    let mut outage = Outage::of(c.setup, c.l);
    while oldest < rounds && !control.halted() {
        // A failure takes effect between acts: a gradient computed and not pushed is lost; a
        // learner that comes back pulls the round the shards are in.
        if let Some(o) = outage.filter(|o| control.now() >= o.at_ns) {
            outage = None;
            let lost = u64::from(matches!(then, Act::Push { .. }));
            if !o.happen(c.l, control, &mut end.measured, lost, false) {
                break;
            }
            then = role.on(Happened::Start).then;
        }
        let mark = control.now();
        let happened = match &then {
            Act::Pull => reach.pull(&mut work, &mut end.measured).map(|()| {
                end.measured
                    .breakdown
                    .add(Activity::Pull, control.now() - mark);
                (round, oldest) = reach.versions();
                Happened::Pulled
            }),
            // Every round is stepped: nothing left to compute for.
            Act::Compute if oldest >= rounds => break,
            Act::Compute => {
                let (params, grad, scratch) = work.parts();
                c.gradient(round, params, grad, scratch, &mut end)
                    .then_some(Happened::Computed)
            }
            Act::Push { targets } => reach
                .push(&mut work, targets.clone(), mark, &mut end.measured)
                .map(|a| {
                    answer = a;
                    a.happened()
                }),
            // A round's barrier is the shards'; its learners never wait for each other.
            Act::WaitFor { .. } => Some(Happened::Released),
        };
        let Some(happened) = happened else { break };
        let step = role.on(happened);
        if step.completed > 0 {
            c.round_done(round, answer.slot, &mut end, |epoch| reach.snapshot(epoch));
        }
        if happened == Happened::Dropped {
            end.measured.dropped += 1;
        }
        if matches!(happened, Happened::Pushed | Happened::Dropped) {
            // The slices move on only by steps: the next round is a later one.
            oldest += 1;
        }
        then = step.then;
    }
    end
}
