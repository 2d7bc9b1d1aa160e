//! A progress bar that moves with a run's iterations, not only at its epoch ends: a long epoch
//! (real gradients of a large model) still shows its work every second or two, and the ETA is
//! the bar's rate over iterations done.

use super::Observer;
use super::log_lines::LogLines;
use crate::time::SimTime;
use indicatif::{ProgressBar, ProgressStyle};

/// Draws `bar` over `iterations` iterations in `epochs` epochs; with [`IterationBar::feeding`]
/// it also advances a bar over many runs (a sweep's) by the same iterations.
pub struct IterationBar {
    bar: ProgressBar,
    total: Option<ProgressBar>,
    epochs: u64,
    length: u64,
    shown: u64,
    step: u64,
    /// Said once the last iteration is done.
    after: Option<String>,
    /// Plain lines for a log, where standard error is not a terminal.
    log: Option<LogLines>,
}

impl IterationBar {
    /// Sets `bar`'s length to `iterations` and its message to the epoch count.
    pub fn new(bar: ProgressBar, epochs: u64, iterations: u64) -> Self {
        bar.set_length(iterations);
        bar.set_message(format!("epoch 0/{epochs}"));
        IterationBar {
            bar,
            total: None,
            epochs,
            length: iterations,
            shown: 0,
            // A few hundred redraws a run at most, however short its iterations.
            step: (iterations / 500).max(1),
            after: None,
            log: None,
        }
    }

    /// Also writes the bar as plain lines labelled `label` where standard error is not a
    /// terminal (and the run is not `quiet`), until the run is over.
    pub fn logged(mut self, label: &str, quiet: bool) -> Self {
        self.log = LogLines::for_stderr(&self.bar, label, quiet);
        self
    }

    /// Says `before` until the first iteration ends (a starting point being evaluated) and
    /// `after` once the last has (epochs' parameters evaluated after the run), and ticks every
    /// second meanwhile so that the elapsed time moves.
    pub fn saying(mut self, before: Option<&str>, after: Option<&str>) -> Self {
        if let Some(b) = before {
            self.bar.set_message(b.to_string());
        }
        self.after = after.map(str::to_string);
        self.bar
            .enable_steady_tick(std::time::Duration::from_secs(1));
        self
    }

    /// Also advances `total` by each iteration done.
    pub fn feeding(mut self, total: ProgressBar) -> Self {
        self.total = Some(total);
        self
    }

    /// The run is over: the total bar takes the iterations it did not do (a run that stopped
    /// early), so that it measures runs left, not work skipped.
    pub fn finish(mut self) {
        drop(self.log.take());
        if let Some(t) = &self.total {
            t.inc(self.length.saturating_sub(self.shown));
        }
        self.bar.finish_and_clear();
    }

    /// The style of a single run's bar.
    pub fn style() -> ProgressStyle {
        ProgressStyle::with_template("{prefix} [{bar:25}] {percent:>3}% {msg} {elapsed}, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
    }
}

impl Observer for IterationBar {
    fn iterations(&mut self, done: u64) {
        let done = done.min(self.length);
        if self.shown == 0 || done >= self.shown + self.step || done == self.length {
            if let Some(t) = &self.total {
                t.inc(done.saturating_sub(self.shown));
            }
            if self.shown == 0 && done < self.length {
                self.bar.set_message(format!("epoch 0/{}", self.epochs));
            }
            self.bar.set_position(done);
            self.shown = done;
            if let (true, Some(a)) = (done == self.length, &self.after) {
                self.bar.set_message(a.clone());
            }
        }
    }
    fn epoch_end(&mut self, epoch: u64, _time: SimTime) {
        if self.after.is_some() && epoch >= self.epochs {
            return;
        }
        self.bar
            .set_message(format!("epoch {}/{}", epoch.min(self.epochs), self.epochs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_moves_with_iterations_within_an_epoch_and_the_total_counts_runs_left() {
        let total = ProgressBar::hidden();
        total.set_length(3_000);
        let mut b = IterationBar::new(ProgressBar::hidden(), 2, 1_000).feeding(total.clone());
        b.iterations(1);
        assert_eq!(b.bar.position(), 1, "the first iteration shows");
        b.iterations(2);
        assert_eq!(b.bar.position(), 1, "redrawn every length / 500 iterations");
        b.iterations(400);
        assert_eq!((b.bar.position(), total.position()), (400, 400));
        b.epoch_end(1, SimTime::ZERO);
        assert_eq!(b.bar.message(), "epoch 1/2");
        // Stopped at 600 of 1,000: the total moves on by the whole run.
        b.iterations(600);
        b.finish();
        assert_eq!(total.position(), 1_000);
    }
}
