//! `curve.csv`: the convergence curve of a real-gradient run, one row per evaluation (the
//! starting point, then every epoch). Numbers are written in Rust's shortest round-trip form,
//! so the same run gives the same bytes.

use crate::training::real::CurvePoint;
use std::fmt::Write as _;

pub const HEADER: &str =
    "epoch,samples,sim_time_s,train_loss,train_accuracy,test_loss,test_accuracy";

pub fn to_csv(curve: &[CurvePoint]) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for c in curve {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            c.epoch,
            c.samples,
            c.sim_time_s,
            c.train_loss,
            c.train_accuracy,
            c.test_loss,
            c.test_accuracy
        );
    }
    out
}
