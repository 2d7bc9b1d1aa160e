//! What a learner's driver asks of the run around it, whichever way the run is spread: claim
//! an iteration, count completed ones, wait for the slowest, draw a mini-batch, hand in an
//! epoch's parameters, say that something went wrong. [`Local`] answers from the memory its
//! threads share (`runtime::Shared`); the processes backend answers the same calls by
//! messages to its coordinator, which holds that same `Shared`.

use super::runtime::{Shared, end_epoch};
use crate::observe::Observer;
use crate::training::sampler::Sampler;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

/// The run as one learner sees it.
pub(super) trait Control {
    /// Nanoseconds since the run's start, on the run's one clock.
    fn now(&self) -> u64;
    /// Whether the run must end, as far as this learner knows.
    fn halted(&self) -> bool;
    /// Records why the run must end; the first fault is the one reported.
    fn fail(&self, why: String);
    /// A loss that is not finite: the run diverged.
    fn diverge(&self);
    /// Claims one iteration of the run's total; false when none is left or the run halted.
    fn claim(&self) -> bool;
    /// Learner `l` failed (`down`; giving back the iteration it had claimed, `unclaim`) or is
    /// back.
    fn learner_fault(&self, l: usize, down: bool, unclaim: bool);
    /// Learner `l` completed `k` iterations: the epochs (1-based) they ended and the
    /// iterations completed in all with them.
    fn complete(&self, l: usize, k: u64) -> (Range<u64>, u64);
    /// Waits until every learner has completed `iterations` (or none is left to start, or the
    /// run halts).
    fn wait_for(&self, iterations: u64);
    /// Waits until `epochs` epoch ends are handled, so that the next batch is drawn from the
    /// data as dealt out after them (synchronous SGD's epoch gate); false if the run halted.
    fn await_epochs(&self, epochs: u64) -> bool;
    /// Learner `l`'s next `m` sample indices; None if the run must end.
    fn next_batch(&self, l: usize, m: usize) -> Option<Vec<usize>>;
    /// Epoch `epoch` ended at `at_ns` with `iterations` done: `params` are the server's
    /// parameters then, or None where the shards keep them for the run's end.
    fn end_epoch(&self, epoch: u64, at_ns: u64, iterations: u64, params: Option<Vec<f32>>);
}

/// A learner thread's view of a run on one host: the shared state, sampler and observer.
pub(super) struct Local<'a, O> {
    pub shared: &'a Shared<'a>,
    pub sampler: &'a Mutex<Sampler>,
    pub observer: &'a Mutex<O>,
}

impl<'a, O> Local<'a, O> {
    pub fn new(
        shared: &'a Shared<'a>,
        sampler: &'a Mutex<Sampler>,
        observer: &'a Mutex<O>,
    ) -> Self {
        Local {
            shared,
            sampler,
            observer,
        }
    }
}

impl<O: Observer> Control for Local<'_, O> {
    fn now(&self) -> u64 {
        self.shared.now()
    }

    fn halted(&self) -> bool {
        self.shared.halted()
    }

    fn fail(&self, why: String) {
        self.shared.fail(why);
    }

    fn diverge(&self) {
        self.shared.diverged.store(true, Ordering::Relaxed);
    }

    fn claim(&self) -> bool {
        let sh = self.shared;
        !sh.halted() && sh.claimed.fetch_add(1, Ordering::Relaxed) < sh.total
    }

    fn learner_fault(&self, l: usize, down: bool, unclaim: bool) {
        self.shared.learner_fault(l, down, unclaim);
    }

    fn complete(&self, l: usize, k: u64) -> (Range<u64>, u64) {
        let (epochs, done) = self.shared.complete(l, k);
        if let Ok(mut o) = self.observer.lock() {
            o.iterations(done);
        }
        (epochs, done)
    }

    fn wait_for(&self, iterations: u64) {
        self.shared.wait_for(iterations);
    }

    fn await_epochs(&self, epochs: u64) -> bool {
        self.shared.await_epochs(epochs)
    }

    fn next_batch(&self, l: usize, m: usize) -> Option<Vec<usize>> {
        Some(self.sampler.lock().ok()?.next_batch(l, m))
    }

    fn end_epoch(&self, epoch: u64, at_ns: u64, iterations: u64, params: Option<Vec<f32>>) {
        let params = params.unwrap_or_default();
        let (sh, sampler, observer) = (self.shared, self.sampler, self.observer);
        end_epoch(sh, sampler, observer, epoch, at_ns, iterations, params);
    }
}
