//! The value specs of the `theory` command: a comma list (`1,2,4`) or a log-spaced grid
//! (`start:stop:count`, `count` values from `start` to `stop` inclusive, equal ratios between
//! neighbours). For learner counts p the grid's values are rounded to the nearest integer and
//! repeats are dropped, so `1:16:5` is `1,2,4,8,16` and `1:4:10` is `1,2,3,4`.
//!
//! This module parses; it must never panic on what a user typed, and never accept a value the
//! formulas cannot use (alpha must be finite and > 0, p a whole number >= 1).

use super::TheoryError;

/// More values than any table or figure needs; guards against `1:2:1e9`.
const MAX_VALUES: usize = 100_000;

/// Parses alpha values: finite and > 0.
pub fn parse_alphas(spec: &str) -> Result<Vec<f64>, TheoryError> {
    let what = "alpha";
    let number = |t: &str| -> Result<f64, TheoryError> {
        match t.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
            _ => Err(TheoryError::BadNumber {
                what,
                text: t.trim().to_string(),
                expected: "a finite number > 0",
            }),
        }
    };
    match grid_parts(what, spec)? {
        Some((start, stop, count)) => Ok(log_grid(number(start)?, number(stop)?, count)),
        None => spec.split(',').map(number).collect(),
    }
}

/// Parses learner counts p: whole numbers >= 1.
pub fn parse_ps(spec: &str) -> Result<Vec<u32>, TheoryError> {
    let what = "p";
    let number = |t: &str| -> Result<u32, TheoryError> {
        match t.trim().parse::<u32>() {
            Ok(v) if v >= 1 => Ok(v),
            _ => Err(TheoryError::BadNumber {
                what,
                text: t.trim().to_string(),
                expected: "a whole number >= 1",
            }),
        }
    };
    match grid_parts(what, spec)? {
        Some((start, stop, count)) => {
            let (start, stop) = (number(start)?, number(stop)?);
            let mut ps: Vec<u32> = Vec::new();
            for v in log_grid(f64::from(start), f64::from(stop), count) {
                // Rounded values stay within [start, stop], so they fit a u32.
                let p = v.round() as u32;
                if ps.last() != Some(&p) {
                    ps.push(p);
                }
            }
            Ok(ps)
        }
        None => spec.split(',').map(number).collect(),
    }
}

/// `Some((start, stop, count))` when `spec` is a grid, `None` when it is a list.
fn grid_parts<'a>(
    what: &'static str,
    spec: &'a str,
) -> Result<Option<(&'a str, &'a str, usize)>, TheoryError> {
    if !spec.contains(':') {
        return Ok(None);
    }
    let bad = |reason: &str| TheoryError::BadGrid {
        what,
        text: spec.to_string(),
        reason: reason.to_string(),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let [start, stop, count] = parts[..] else {
        return Err(bad("it needs exactly three fields"));
    };
    let count = match count.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_VALUES).contains(&n) => n,
        _ => {
            return Err(bad(&format!(
                "count must be a whole number in 1..={MAX_VALUES}"
            )));
        }
    };
    Ok(Some((start, stop, count)))
}

/// `count` log-spaced values from `start` to `stop` inclusive; both ends exact.
fn log_grid(start: f64, stop: f64, count: usize) -> Vec<f64> {
    if count == 1 {
        return vec![start];
    }
    let last = count - 1;
    (0..count)
        .map(|i| match i {
            0 => start,
            i if i == last => stop,
            i => start * (stop / start).powf(i as f64 / last as f64),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_grids() {
        assert_eq!(parse_alphas("0.5, 1,2"), Ok(vec![0.5, 1.0, 2.0]));
        let g = parse_alphas("1:100:3").expect("grid");
        assert_eq!(g.len(), 3);
        assert!((g[1] - 10.0).abs() < 1e-12 && g[2] == 100.0);
        assert_eq!(parse_ps("1:16:5"), Ok(vec![1, 2, 4, 8, 16]));
        assert_eq!(parse_ps("1:4:10"), Ok(vec![1, 2, 3, 4]));
        assert_eq!(parse_ps("3"), Ok(vec![3]));
    }

    #[test]
    fn bad_specs_are_errors() {
        for s in [
            "", "0", "-1", "x", "1,,2", "nan", "inf", "1:2", "1:2:0", "1:2:x", "0:2:3",
        ] {
            assert!(parse_alphas(s).is_err(), "alpha `{s}`");
        }
        for s in [
            "",
            "0",
            "1.5",
            "-2",
            "1:0:3",
            "1:16",
            "1:16:2:1",
            "99999999999",
        ] {
            assert!(parse_ps(s).is_err(), "p `{s}`");
        }
    }
}
