//! Uneven learners, as the scenario's `[faults]` table gives them: how many times longer each
//! learner's gradient takes than its device's. The drivers apply the factors (the simulator
//! stretches the drawn compute time, the real backend makes the learner wait out the
//! difference after each gradient), so both backends see the same learners. This module only
//! reads and checks the table; it never touches time or numbers.

use serde::{Deserialize, Serialize};

/// The largest slowdown taken: past it a run would not end in any useful time.
pub const MAX_SLOWDOWN: f64 = 1000.0;

/// The `[faults]` table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsSection {
    /// How many learners are slow: the last ones (default 1 where `slowdown` is given).
    pub slow_learners: Option<usize>,
    /// How many times longer a slow learner's gradient takes (at least 1).
    pub slowdown: Option<f64>,
    /// Or every learner's factor, in order (each at least 1).
    pub learner_slowdowns: Option<Vec<f64>>,
}

impl FaultsSection {
    /// Each of `p` learners' slowdown factor (1 where nothing is said), or every problem as
    /// (key, message).
    pub fn slowdowns(&self, p: usize) -> Result<Vec<f64>, Vec<(String, String)>> {
        let mut problems = vec![];
        let mut factors = vec![1.0; p];
        let fit = |f: f64| f.is_finite() && (1.0..=MAX_SLOWDOWN).contains(&f);
        let what = |f: f64| {
            format!(
                "must be a factor from 1 to {MAX_SLOWDOWN} (how many times longer the gradient \
                 takes; to make a learner faster, slow the others), got {f}"
            )
        };
        match (&self.learner_slowdowns, self.slowdown, self.slow_learners) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => problems.push((
                "faults.learner_slowdowns".to_string(),
                "give either learner_slowdowns or slowdown (with slow_learners), not both".into(),
            )),
            (Some(list), None, None) => {
                if list.len() != p {
                    problems.push((
                        "faults.learner_slowdowns".to_string(),
                        format!(
                            "has {} factors for {p} learners; give one per learner",
                            list.len()
                        ),
                    ));
                }
                for (i, &f) in list.iter().enumerate() {
                    if !fit(f) {
                        problems.push((format!("faults.learner_slowdowns[{i}]"), what(f)));
                    }
                }
                if problems.is_empty() {
                    factors.clone_from(list);
                }
            }
            (None, None, Some(k)) => problems.push((
                "faults.slowdown".to_string(),
                format!("is needed to say how slow the {k} slow learners are"),
            )),
            (None, Some(f), k) => {
                let k = k.unwrap_or(1);
                if !fit(f) {
                    problems.push(("faults.slowdown".to_string(), what(f)));
                }
                if k > p {
                    problems.push((
                        "faults.slow_learners".to_string(),
                        format!("is {k}, but the run has {p} learners"),
                    ));
                }
                if problems.is_empty() {
                    for x in &mut factors[p - k..] {
                        *x = f;
                    }
                }
            }
            (None, None, None) => {}
        }
        if problems.is_empty() {
            Ok(factors)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> FaultsSection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn nothing_said_is_every_learner_at_its_devices_speed() {
        assert_eq!(section("").slowdowns(3), Ok(vec![1.0; 3]));
    }

    #[test]
    fn the_last_k_learners_are_the_slow_ones() {
        let s = section("slow_learners = 2\nslowdown = 3.0");
        assert_eq!(s.slowdowns(4), Ok(vec![1.0, 1.0, 3.0, 3.0]));
        assert_eq!(section("slowdown = 8").slowdowns(2), Ok(vec![1.0, 8.0]));
    }

    #[test]
    fn a_list_gives_every_learner_its_factor() {
        let s = section("learner_slowdowns = [1.0, 2.5]");
        assert_eq!(s.slowdowns(2), Ok(vec![1.0, 2.5]));
    }

    #[test]
    fn bad_specifications_name_their_key() {
        let keys = |text: &str, p: usize| -> Vec<String> {
            section(text)
                .slowdowns(p)
                .unwrap_err()
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(keys("slowdown = -2", 4), ["faults.slowdown"]);
        assert_eq!(keys("slowdown = 0.5", 4), ["faults.slowdown"]);
        assert_eq!(keys("slowdown = 1e9", 4), ["faults.slowdown"]);
        assert_eq!(
            keys("slowdown = 2\nslow_learners = 5", 4),
            ["faults.slow_learners"]
        );
        assert_eq!(keys("slow_learners = 1", 4), ["faults.slowdown"]);
        assert_eq!(
            keys("learner_slowdowns = [1.0, -1.0, 2.0]", 2),
            ["faults.learner_slowdowns", "faults.learner_slowdowns[1]"]
        );
        assert_eq!(
            keys("learner_slowdowns = [1.0]\nslowdown = 2", 1),
            ["faults.learner_slowdowns"]
        );
    }
}
