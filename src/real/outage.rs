//! A learner's failure from `[faults]` carried out for real: the learner records it, gives its
//! claimed iteration back, and sleeps out its time down before it starts again.

use super::control::Control;
use super::runtime::{LearnerEnd, SLOWDOWN_STEP};
use crate::outcome::{Activity, FaultRecord};
use std::time::{Duration, Instant};

/// A learner's failure from `[faults]`, on the run's clock.
#[derive(Clone, Copy, Debug)]
pub(super) struct Outage {
    pub at_ns: u64,
    /// None: it never comes back.
    pub down_ns: Option<u64>,
    /// The run's iterations: once they are all done, nobody waits for the learner.
    pub total: u64,
}

impl Outage {
    /// Learner `l`'s failure in `setup`, if it has one.
    pub fn of(setup: &crate::training::real::RealSetup, l: usize) -> Option<Outage> {
        let f = setup.failures.iter().find(|f| f.learner == l)?;
        let ns = |s: f64| (s * 1e9).round() as u64;
        Some(Outage {
            at_ns: ns(f.at_s),
            down_ns: f.down_for_s.map(ns),
            total: setup.iterations,
        })
    }

    /// The learner's failure happens now, through `control`: it records it (with `lost`
    /// gradients computed and never pushed), gives back the iteration it had claimed
    /// (`claimed`) for the others to do, and, if it comes back, stays down for its time (or
    /// until the run halts or its iterations are all done), counted as wait. True if it is
    /// back.
    pub fn happen(
        &self,
        l: usize,
        control: &impl Control,
        end: &mut LearnerEnd,
        lost: u64,
        claimed: bool,
    ) -> bool {
        let failed = control.now();
        end.faults.push(FaultRecord {
            learner: l,
            failed_at_s: failed as f64 * 1e-9,
            back_at_s: None,
            lost_gradients: lost,
        });
        control.learner_fault(l, true, claimed);
        let Some(down) = self.down_ns else {
            return false;
        };
        let until = Instant::now()
            + Duration::from_nanos(down.saturating_sub(failed - self.at_ns.min(failed)));
        loop {
            // Completing nothing asks how many iterations are done in all.
            if control.halted() || control.complete(l, 0).1 >= self.total {
                end.did(Activity::Wait, failed, control.now());
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(SLOWDOWN_STEP));
        }
        let back = control.now();
        end.did(Activity::Wait, failed, back);
        control.learner_fault(l, false, false);
        if let Some(f) = end.faults.last_mut() {
            f.back_at_s = Some(back as f64 * 1e-9);
        }
        !control.halted()
    }
}
