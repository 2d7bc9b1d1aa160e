//! A run's progress, counted the same way by every model: the iterations completed across all
//! learners, the epochs they end, and when the run ended.

use crate::cluster::learner::Learner;
use crate::observe::Observer;
use crate::outcome::Outcome;
use crate::time::SimTime;
use crate::training::Gradients;

#[derive(Clone, Debug)]
pub struct Progress {
    per_epoch: u64,
    epochs: u64,
    completed: u64,
    pub epoch_ends: Vec<SimTime>,
    finished_at: Option<SimTime>,
}

impl Progress {
    pub fn new(per_epoch: u64, epochs: u64) -> Self {
        Progress {
            per_epoch,
            epochs,
            completed: 0,
            epoch_ends: vec![],
            finished_at: None,
        }
    }

    /// Iterations the run is to complete.
    pub fn target(&self) -> u64 {
        self.epochs * self.per_epoch
    }

    /// Counts `k` iterations completed at `now`, telling the numerics and the observer of
    /// every epoch they end. Returns whether the run is over: the target reached, or the
    /// numerics diverged.
    pub fn count(
        &mut self,
        k: u64,
        now: SimTime,
        gradients: &mut impl Gradients,
        observer: &mut impl Observer,
    ) -> bool {
        self.completed += k;
        observer.iterations(self.completed);
        while self.completed >= (self.epoch_ends.len() as u64 + 1) * self.per_epoch
            && (self.epoch_ends.len() as u64) < self.epochs
        {
            self.epoch_ends.push(now);
            let epoch = self.epoch_ends.len() as u64;
            gradients.epoch_end(epoch, now);
            observer.epoch_end(epoch, now);
        }
        self.completed >= self.target() || gradients.diverged()
    }

    /// Starts the run at `now`: whether there is anything to do. A run of no iterations ends
    /// at once.
    pub fn start(
        &mut self,
        now: SimTime,
        learners: &mut [Learner],
        observer: &mut impl Observer,
    ) -> bool {
        if self.target() == 0 {
            self.finish(now, learners, observer);
            return false;
        }
        true
    }

    /// Ends the run at `now`, closing every learner's last stretch of activity.
    pub fn finish(&mut self, now: SimTime, learners: &mut [Learner], observer: &mut impl Observer) {
        self.finished_at = Some(now);
        for (l, learner) in learners.iter_mut().enumerate() {
            if let Some(seg) = learner.close(now) {
                observer.learner_activity(l, seg);
            }
        }
    }

    pub fn finished(&self) -> bool {
        self.finished_at.is_some()
    }

    /// When the run ended: at its last iteration, or `now` if it was cut short.
    pub fn end(&self, now: SimTime) -> SimTime {
        self.finished_at.unwrap_or(now)
    }

    /// What every model measures the same way at `now`: the end, the epochs' ends, each
    /// learner's breakdown and iterations, and whether the numerics `diverged`. The server's
    /// side (staleness, shards) and the fabric's bytes are left empty for the model to fill.
    pub fn outcome(&self, now: SimTime, learners: &[Learner], diverged: bool) -> Outcome {
        Outcome {
            end: self.end(now),
            epoch_ends: self.epoch_ends.clone(),
            breakdowns: learners.iter().map(|l| *l.breakdown()).collect(),
            learner_iterations: learners.iter().map(|l| l.iterations).collect(),
            learner_dropped: learners.iter().map(|l| l.dropped).collect(),
            staleness: Default::default(),
            shard_busy_ns: vec![],
            shard_updates: vec![],
            bytes_moved: 0,
            diverged,
            faults: vec![],
            shard_faults: vec![],
            stalled: None,
        }
    }
}
