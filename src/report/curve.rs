//! `curve.csv`: the convergence curve of a real-gradient run, one row per evaluation (the
//! starting point, then every epoch). Numbers are written in Rust's shortest round-trip form,
//! so the same run gives the same bytes.

use crate::outcome::CurvePoint;
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

/// Reads back what [`to_csv`] wrote. The error names the line and what is wrong with it.
pub fn from_csv(text: &str) -> Result<Vec<CurvePoint>, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == HEADER => {}
        _ => return Err(format!("line 1: expected the header `{HEADER}`")),
    }
    let mut out = vec![];
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}", i + 1);
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 7 {
            return Err(bad(&format!("expected 7 fields, found {}", f.len())));
        }
        let int = |s: &str| s.parse::<u64>().map_err(|e| bad(&format!("`{s}`: {e}")));
        let num = |s: &str| s.parse::<f64>().map_err(|e| bad(&format!("`{s}`: {e}")));
        out.push(CurvePoint {
            epoch: int(f[0])?,
            samples: int(f[1])?,
            sim_time_s: num(f[2])?,
            train_loss: num(f[3])?,
            train_accuracy: num(f[4])?,
            test_loss: num(f[5])?,
            test_accuracy: num(f[6])?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_including_non_finite_losses() {
        let curve = vec![
            CurvePoint {
                epoch: 0,
                samples: 0,
                sim_time_s: 0.0,
                train_loss: 2.25,
                train_accuracy: 0.1,
                test_loss: 2.30,
                test_accuracy: 0.0999,
            },
            CurvePoint {
                epoch: 1,
                samples: 50_000,
                sim_time_s: 0.756_123_456_789,
                train_loss: f64::NAN,
                train_accuracy: 0.1,
                test_loss: f64::INFINITY,
                test_accuracy: 0.1,
            },
        ];
        let back = from_csv(&to_csv(&curve)).unwrap();
        assert_eq!(to_csv(&back), to_csv(&curve));
        assert!(back[1].train_loss.is_nan());
        assert!(from_csv("epoch\n").unwrap_err().contains("line 1"));
        let broken = format!("{HEADER}\n1,2,3\n");
        assert!(from_csv(&broken).unwrap_err().contains("line 2"));
    }
}
