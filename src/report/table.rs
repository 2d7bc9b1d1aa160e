//! The short table `asgd-sim run` prints.

use super::summary::Summary;
use crate::outcome::Activity;
use std::fmt::Write as _;

/// Formats a run's summary for the terminal.
pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let real = s.backend == "real";
    // The real backend runs on the host it is started on, whatever machine the scenario names.
    let machine = if real { "this host" } else { &s.machine };
    let _ = writeln!(
        out,
        "{}: {} on {machine}, {} learners, {} shards, {} ({} params), batch {}",
        s.scenario, s.algorithm, s.learners, s.shards, s.model, s.params, s.batch_size
    );
    let measured = if real {
        "measured on this host"
    } else {
        "simulated"
    };
    let epochs = if s.epochs == 1 { "epoch" } else { "epochs" };
    let _ = match s.completed_epochs {
        Some(done) => writeln!(
            out,
            "cut short: {done:.2} of {} {epochs} of {} iterations in {:.6} s {measured}: {:.6} s per \
             completed epoch",
            s.epochs, s.iterations_per_epoch, s.sim_time_s, s.epoch_time_s
        )
        .and_then(|()| match &s.cut_short {
            Some(why) => writeln!(out, "  {why}"),
            None => Ok(()),
        }),
        None => writeln!(
            out,
            "{} {epochs} of {} iterations in {:.6} s {measured}: {:.6} s per epoch",
            s.epochs, s.iterations_per_epoch, s.sim_time_s, s.epoch_time_s
        ),
    };
    let _ = writeln!(
        out,
        "  {:<14} {:>12} {:>7}",
        "per epoch", "seconds", "share"
    );
    let total = s.breakdown.total().max(f64::MIN_POSITIVE);
    for a in Activity::ALL {
        let v = s.breakdown.get(a);
        let _ = writeln!(
            out,
            "  {:<14} {:>12.6} {:>6.1}%",
            a.name(),
            v,
            100.0 * v / total
        );
    }
    let _ = writeln!(
        out,
        "communication share {:.1}%; staleness mean {:.2}, max {}",
        100.0 * s.communication_share,
        s.staleness.mean,
        s.staleness.max
    );
    if let Some(f) = &s.final_metrics {
        let _ = writeln!(
            out,
            "final: train loss {:.4}, train accuracy {:.2}%, test loss {:.4}, test accuracy {:.2}%",
            f.train_loss,
            100.0 * f.train_accuracy,
            f.test_loss,
            100.0 * f.test_accuracy
        );
    }
    if s.diverged {
        let _ = writeln!(
            out,
            "diverged: a loss or parameter became NaN or infinite; the run stopped"
        );
    }
    out
}
