//! Small statistics kept during a run: integer histograms (staleness) and summaries of samples.

use serde::{Deserialize, Serialize};
use statrs::statistics::Statistics;

/// Counts of non-negative integer values; `counts[v]` is how often `v` was seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    counts: Vec<u64>,
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        let i = v as usize;
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn mean(&self) -> f64 {
        let n = self.total();
        if n == 0 {
            return 0.0;
        }
        self.counts
            .iter()
            .enumerate()
            .map(|(v, &c)| v as f64 * c as f64)
            .sum::<f64>()
            / n as f64
    }

    pub fn max(&self) -> u64 {
        self.counts.iter().rposition(|&c| c > 0).unwrap_or(0) as u64
    }

    /// The most frequent value (the smallest of equals).
    pub fn mode(&self) -> u64 {
        let mut best = (0, 0);
        for (v, &c) in self.counts.iter().enumerate() {
            if c > best.1 {
                best = (v, c);
            }
        }
        best.0 as u64
    }
}

/// Mean and sample standard deviation of a slice (0 for fewer than two values).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mean = values.mean();
    let std = if values.len() > 1 {
        values.std_dev()
    } else {
        0.0
    };
    (mean, std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_summary() {
        let mut h = Histogram::default();
        for v in [0, 3, 3, 1] {
            h.record(v);
        }
        assert_eq!(h.counts(), &[1, 1, 0, 2]);
        assert_eq!(h.max(), 3);
        assert_eq!(h.mode(), 3);
        assert!((h.mean() - 1.75).abs() < 1e-12);
        assert_eq!(mean_std(&[1.0, 3.0]), (2.0, 2f64.sqrt()));
    }
}
