//! Uneven and failing learners, as the scenario's `[faults]` table gives them: how many times
//! longer each learner's gradient takes than its device's, and which learners fail when (and
//! come back how much later). The drivers apply them (the simulator stretches the drawn
//! compute time and stops a failed learner's work, the real backend makes the learner wait
//! out the difference after each gradient), so both backends see the same learners. This
//! module only reads and checks the table; it never touches time or numbers. Slow links
//! (`links`) are the machine's: they are set in the topology itself, so the simulator's
//! network and a testbed's ports carry them without knowing they are faults.

mod links;
mod shards;
pub use links::{LinkFaults, SlowLink, slow_links};
pub use shards::{ShardFailure, ShardFaults};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
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
    /// How many learners fail: the last ones (default 1 where `fail_at_s` is given).
    pub failed_learners: Option<usize>,
    /// When they fail, seconds into the run.
    pub fail_at_s: Option<f64>,
    /// How long they stay down before they come back and pull fresh parameters (absent:
    /// they never come back).
    pub down_for_s: Option<f64>,
    /// Or each failure on its own.
    pub learner_failures: Option<Vec<FailureKeys>>,
    /// How many learners slow down now and then: the last ones (default 1 where
    /// `flaky_slowdown` is given).
    pub flaky_learners: Option<usize>,
    /// How many times longer their gradients take during a slow spell (1 to 1000).
    pub flaky_slowdown: Option<f64>,
    /// Mean length of a slow spell, seconds.
    pub flaky_slow_s: Option<f64>,
    /// Mean time between slow spells, seconds.
    pub flaky_fast_s: Option<f64>,
    /// How many learners' own links are slow: the last ones (default 1 where `link_slowdown`
    /// is given).
    pub slow_links: Option<usize>,
    /// How many times slower a slow link carries data: its bandwidth divided by it (1 to 1000).
    pub link_slowdown: Option<f64>,
    /// Or links named by their two ends, each with its factor.
    pub link_slowdowns: Option<Vec<links::LinkKeys>>,
    /// Shards that fail and come back from their last checkpoint.
    pub shard_failures: Option<Vec<shards::ShardFailureKeys>>,
    /// How often a shard checkpoints its slice, seconds (absent: never after the start).
    pub checkpoint_every_s: Option<f64>,
}

/// Slowdowns that come and go, checked: a two-state process, fast and slow, whose stays are
/// exponential with means `mean_fast_s` and `mean_slow_s`; a gradient begun in a slow spell
/// takes `factor` times as long.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flaky {
    pub factor: f64,
    pub mean_slow_s: f64,
    pub mean_fast_s: f64,
}

/// One learner's slow spells ([`Flaky`]), starting fast, drawn from a stream of their own
/// seeded by the run's seed and the learner, so that both backends (and any number of
/// threads) see the same spells whatever else draws from the run's RNG.
#[derive(Clone, Debug)]
pub struct Spells {
    flaky: Flaky,
    rng: ChaCha8Rng,
    slow: bool,
    /// When the current stay ends, seconds into the run.
    until_s: f64,
}

impl Spells {
    pub fn new(flaky: Flaky, seed: u64, learner: usize) -> Self {
        let stream = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(learner as u64 + 1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ stream);
        let until_s = exponential(&mut rng, flaky.mean_fast_s);
        Spells {
            flaky,
            rng,
            slow: false,
            until_s,
        }
    }

    /// The factor of a gradient begun `t_s` seconds into the run (asked in time order).
    pub fn factor_at(&mut self, t_s: f64) -> f64 {
        while self.until_s <= t_s {
            self.slow = !self.slow;
            let mean = if self.slow {
                self.flaky.mean_slow_s
            } else {
                self.flaky.mean_fast_s
            };
            self.until_s += exponential(&mut self.rng, mean);
        }
        if self.slow { self.flaky.factor } else { 1.0 }
    }
}

/// The most spells a [`SpellRecord`] lists; it counts them all.
pub const MAX_LISTED_SPELLS: usize = 100;

/// A learner's slow spells over a run, as they happened: how many, how long in all, and the
/// first [`MAX_LISTED_SPELLS`] of them (from, to, seconds into the run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpellRecord {
    pub learner: usize,
    pub factor: f64,
    pub spells: u64,
    pub slow_s: f64,
    pub first: Vec<[f64; 2]>,
}

impl Spells {
    /// The slow spells that begin before `end_s`, each cut at `end_s`.
    pub fn record(mut self, learner: usize, end_s: f64) -> SpellRecord {
        let mut r = SpellRecord {
            learner,
            factor: self.flaky.factor,
            spells: 0,
            slow_s: 0.0,
            first: vec![],
        };
        // Stays alternate fast, slow, fast, ...: each slow one starts where a fast one ends.
        while self.until_s < end_s {
            let from = self.until_s;
            self.factor_at(from);
            let to = self.until_s.min(end_s);
            r.spells += 1;
            r.slow_s += to - from;
            if r.first.len() < MAX_LISTED_SPELLS {
                r.first.push([from, to]);
            }
            self.factor_at(self.until_s);
        }
        r
    }
}

/// Each learner's slow spells from the start of a run with `seed`.
pub fn spells(flaky: &[Option<Flaky>], seed: u64) -> Vec<Option<Spells>> {
    (flaky.iter().enumerate())
        .map(|(l, f)| f.map(|f| Spells::new(f, seed, l)))
        .collect()
}

/// An exponential draw with mean `mean` (inverse of its distribution function).
fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    let u: f64 = rng.random();
    -mean * (1.0 - u).ln()
}

/// One entry of `learner_failures`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureKeys {
    pub learner: usize,
    pub at_s: f64,
    pub down_for_s: Option<f64>,
}

/// A learner's failure, checked: learner `learner` stops at `at_s` and, with `down_for_s`,
/// comes back that much later.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub learner: usize,
    pub at_s: f64,
    pub down_for_s: Option<f64>,
}

/// A problem with `key`, where `t` is not a time from 0 to [`MAX_FAIL_AT_S`] into the run.
fn time_problem(key: String, t: f64) -> Option<(String, String)> {
    (!(t.is_finite() && (0.0..=MAX_FAIL_AT_S).contains(&t))).then(|| {
        let what =
            format!("must be a time from 0 to {MAX_FAIL_AT_S} seconds into the run, got {t}");
        (key, what)
    })
}

/// A problem with `key`, where `i` is not one of the run's `n` `what` (learners, shards).
fn index_problem(key: String, i: usize, n: usize, what: &str) -> Option<(String, String)> {
    (i >= n).then(|| {
        (
            key,
            format!("is {i}, but the run has {what} 0 to {}", n.max(1) - 1),
        )
    })
}

/// The latest failure time taken, seconds (about 11.6 days of simulated time).
pub const MAX_FAIL_AT_S: f64 = 1e6;

/// Every learner's faults from a checked `[faults]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    pub slowdowns: Vec<f64>,
    pub flaky: Vec<Option<Flaky>>,
    pub failures: Vec<Failure>,
    pub links: LinkFaults,
}

impl FaultsSection {
    /// The faults of `p` learners, adding every problem to `problems` (with nothing in place
    /// of what is wrong).
    pub fn check(&self, p: usize, problems: &mut Vec<(String, String)>) -> Checked {
        fn take<T>(r: Result<T, Vec<(String, String)>>, or: T, p: &mut Vec<(String, String)>) -> T {
            r.unwrap_or_else(|e| {
                p.extend(e);
                or
            })
        }
        Checked {
            slowdowns: take(self.slowdowns(p), vec![1.0; p], problems),
            flaky: take(self.flaky(p), vec![None; p], problems),
            failures: take(self.failures(p), vec![], problems),
            links: take(self.links(p), LinkFaults::default(), problems),
        }
    }

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

    /// Each of `p` learners' slow spells (None where it has none), or every problem as
    /// (key, message).
    pub fn flaky(&self, p: usize) -> Result<Vec<Option<Flaky>>, Vec<(String, String)>> {
        let mut problems = vec![];
        let mut out = vec![None; p];
        let Some(factor) = self.flaky_slowdown else {
            for (set, key) in [
                (self.flaky_learners.is_some(), "faults.flaky_learners"),
                (self.flaky_slow_s.is_some(), "faults.flaky_slow_s"),
                (self.flaky_fast_s.is_some(), "faults.flaky_fast_s"),
            ] {
                if set {
                    problems.push((
                        key.to_string(),
                        "needs faults.flaky_slowdown to say how slow a slow spell is".into(),
                    ));
                }
            }
            return if problems.is_empty() {
                Ok(out)
            } else {
                Err(problems)
            };
        };
        if !(factor.is_finite() && (1.0..=MAX_SLOWDOWN).contains(&factor)) {
            problems.push((
                "faults.flaky_slowdown".to_string(),
                format!("must be a factor from 1 to {MAX_SLOWDOWN}, got {factor}"),
            ));
        }
        let mut mean = |key: &str, v: Option<f64>| -> f64 {
            match v {
                Some(m) if m.is_finite() && m > 0.0 && m <= MAX_FAIL_AT_S => m,
                Some(m) => {
                    problems.push((
                        format!("faults.{key}"),
                        format!(
                            "must be a positive mean time up to {MAX_FAIL_AT_S} seconds, got {m}"
                        ),
                    ));
                    1.0
                }
                None => {
                    problems.push((
                        format!("faults.{key}"),
                        "is needed with flaky_slowdown: the mean length of a slow spell \
                         (flaky_slow_s) and of the time between spells (flaky_fast_s)"
                            .into(),
                    ));
                    1.0
                }
            }
        };
        let mean_slow_s = mean("flaky_slow_s", self.flaky_slow_s);
        let mean_fast_s = mean("flaky_fast_s", self.flaky_fast_s);
        let k = self.flaky_learners.unwrap_or(1);
        if k > p {
            problems.push((
                "faults.flaky_learners".to_string(),
                format!("is {k}, but the run has {p} learners"),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        for x in &mut out[p - k..] {
            *x = Some(Flaky {
                factor,
                mean_slow_s,
                mean_fast_s,
            });
        }
        Ok(out)
    }

    /// The failures of a run of `p` learners, in the order of their times (then learners), or
    /// every problem as (key, message). A learner fails at most once.
    pub fn failures(&self, p: usize) -> Result<Vec<Failure>, Vec<(String, String)>> {
        let mut problems = vec![];
        let mut out = vec![];
        let time = |key: String, t: f64, problems: &mut Vec<(String, String)>| {
            problems.extend(time_problem(key, t));
        };
        let down = |key: String, d: Option<f64>, problems: &mut Vec<(String, String)>| {
            if let Some(d) = d.filter(|d| !(d.is_finite() && *d > 0.0 && *d <= MAX_FAIL_AT_S)) {
                problems.push((
                    key,
                    format!(
                        "must be a positive time up to {MAX_FAIL_AT_S} seconds (the learner comes \
                         back after its failure, not before), got {d}; leave it out for a \
                         learner that never comes back"
                    ),
                ));
            }
        };
        match (&self.learner_failures, self.fail_at_s) {
            (Some(_), Some(_)) => problems.push((
                "faults.learner_failures".to_string(),
                "give either learner_failures or fail_at_s (with failed_learners, down_for_s), \
                 not both"
                    .into(),
            )),
            (Some(list), None) => {
                if self.failed_learners.is_some() || self.down_for_s.is_some() {
                    problems.push((
                        "faults.learner_failures".to_string(),
                        "failed_learners and down_for_s go with fail_at_s; each entry of \
                         learner_failures has its own down_for_s"
                            .into(),
                    ));
                }
                for (i, f) in list.iter().enumerate() {
                    let key = |k: &str| format!("faults.learner_failures[{i}].{k}");
                    if let Some(bad) = index_problem(key("learner"), f.learner, p, "learners") {
                        problems.push(bad);
                    } else if list[..i].iter().any(|g| g.learner == f.learner) {
                        problems.push((
                            key("learner"),
                            format!("learner {} fails twice; one failure per learner", f.learner),
                        ));
                    }
                    time(key("at_s"), f.at_s, &mut problems);
                    down(key("down_for_s"), f.down_for_s, &mut problems);
                    out.push(Failure {
                        learner: f.learner,
                        at_s: f.at_s,
                        down_for_s: f.down_for_s,
                    });
                }
            }
            (None, Some(t)) => {
                let k = self.failed_learners.unwrap_or(1);
                time("faults.fail_at_s".into(), t, &mut problems);
                down("faults.down_for_s".into(), self.down_for_s, &mut problems);
                if k > p {
                    problems.push((
                        "faults.failed_learners".to_string(),
                        format!("is {k}, but the run has {p} learners"),
                    ));
                }
                out.extend((p.saturating_sub(k)..p).map(|learner| Failure {
                    learner,
                    at_s: t,
                    down_for_s: self.down_for_s,
                }));
            }
            (None, None) => {
                for (set, key) in [
                    (self.failed_learners.is_some(), "faults.failed_learners"),
                    (self.down_for_s.is_some(), "faults.down_for_s"),
                ] {
                    if set {
                        problems.push((
                            key.to_string(),
                            "needs faults.fail_at_s to say when the learners fail".into(),
                        ));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        out.sort_by(|a, b| a.at_s.total_cmp(&b.at_s).then(a.learner.cmp(&b.learner)));
        Ok(out)
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
    fn failures_are_the_last_k_learners_or_a_list_in_time_order() {
        let s = section("fail_at_s = 10.0\ndown_for_s = 5.0\nfailed_learners = 2");
        let f = s.failures(4).unwrap();
        assert_eq!(f.iter().map(|f| f.learner).collect::<Vec<_>>(), [2, 3]);
        assert!(
            f.iter()
                .all(|f| f.at_s == 10.0 && f.down_for_s == Some(5.0))
        );
        let s = section(
            "learner_failures = [{ learner = 1, at_s = 3.0 }, { learner = 0, at_s = 1.0, down_for_s = 2.0 }]",
        );
        let f = s.failures(2).unwrap();
        assert_eq!((f[0].learner, f[0].down_for_s), (0, Some(2.0)));
        assert_eq!((f[1].learner, f[1].down_for_s), (1, None));
        assert_eq!(section("").failures(3), Ok(vec![]));
    }

    /// The two-state process spends mean_slow / (mean_slow + mean_fast) of its time slow
    /// (the alternating renewal process's long-run share), and the same seed draws the same
    /// spells.
    #[test]
    fn slow_spells_take_their_share_of_the_time_and_repeat_with_the_seed() {
        let flaky = Flaky {
            factor: 4.0,
            mean_slow_s: 1.0,
            mean_fast_s: 3.0,
        };
        let mut spells = Spells::new(flaky, 7, 2);
        let n = 400_000;
        let slow = (0..n)
            .filter(|&i| spells.factor_at(i as f64 * 0.05) == 4.0)
            .count();
        let share = slow as f64 / n as f64;
        assert!((share - 0.25).abs() < 0.01, "slow {share}");
        let mut again = Spells::new(flaky, 7, 2);
        let mut other = Spells::new(flaky, 7, 3);
        let a: Vec<f64> = (0..200).map(|i| again.factor_at(i as f64 * 0.1)).collect();
        let mut first = Spells::new(flaky, 7, 2);
        let b: Vec<f64> = (0..200).map(|i| first.factor_at(i as f64 * 0.1)).collect();
        let c: Vec<f64> = (0..200).map(|i| other.factor_at(i as f64 * 0.1)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    /// A spell record lists exactly the times at which the learner's gradients are slowed,
    /// and adds up to its share of the run.
    #[test]
    fn a_spell_record_is_when_the_learner_is_slow() {
        let flaky = Flaky {
            factor: 3.0,
            mean_slow_s: 0.5,
            mean_fast_s: 1.5,
        };
        let r = Spells::new(flaky, 11, 1).record(1, 40.0);
        assert_eq!((r.learner, r.factor), (1, 3.0));
        assert_eq!(r.first.len() as u64, r.spells.min(MAX_LISTED_SPELLS as u64));
        let listed: f64 = r.first.iter().map(|[a, b]| b - a).sum();
        assert!((listed - r.slow_s).abs() < 1e-9 || r.spells > MAX_LISTED_SPELLS as u64);
        assert!((r.slow_s / 40.0 - 0.25).abs() < 0.1, "{}", r.slow_s);
        let mut spells = Spells::new(flaky, 11, 1);
        for i in 0..4000 {
            let t = i as f64 * 0.01 + 0.005;
            let slow = r.first.iter().any(|[a, b]| (*a..*b).contains(&t));
            assert_eq!(spells.factor_at(t) == 3.0, slow, "at {t} s");
        }
        let long = Spells::new(flaky, 11, 1).record(1, 1000.0);
        assert_eq!(long.first.len(), MAX_LISTED_SPELLS);
        assert!(long.spells > MAX_LISTED_SPELLS as u64);
    }

    #[test]
    fn flaky_learners_are_the_last_k_and_bad_ones_name_their_key() {
        let s = section("flaky_slowdown = 3.0\nflaky_slow_s = 2.0\nflaky_fast_s = 10.0");
        let f = s.flaky(3).unwrap();
        assert_eq!(f[..2], [None, None]);
        assert_eq!(f[2].map(|f| f.factor), Some(3.0));
        let keys = |text: &str| -> Vec<String> {
            let e = section(text).flaky(4).unwrap_err();
            e.into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(
            keys("flaky_slowdown = 2\nflaky_slow_s = 1"),
            ["faults.flaky_fast_s"]
        );
        assert_eq!(
            keys("flaky_slowdown = 0.5\nflaky_slow_s = 1\nflaky_fast_s = -1"),
            ["faults.flaky_slowdown", "faults.flaky_fast_s"]
        );
        assert_eq!(keys("flaky_slow_s = 1"), ["faults.flaky_slow_s"]);
        assert_eq!(
            keys("flaky_slowdown = 2\nflaky_slow_s = 1\nflaky_fast_s = 1\nflaky_learners = 5"),
            ["faults.flaky_learners"]
        );
    }

    #[test]
    fn bad_failures_name_their_key() {
        let keys = |text: &str, p: usize| -> Vec<String> {
            section(text)
                .failures(p)
                .unwrap_err()
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(keys("fail_at_s = -1", 4), ["faults.fail_at_s"]);
        assert_eq!(
            keys("fail_at_s = 1\ndown_for_s = -2", 4),
            ["faults.down_for_s"]
        );
        assert_eq!(
            keys("fail_at_s = 1\nfailed_learners = 5", 4),
            ["faults.failed_learners"]
        );
        assert_eq!(keys("down_for_s = 3", 4), ["faults.down_for_s"]);
        assert_eq!(
            keys("learner_failures = [{ learner = 4, at_s = 1.0 }]", 4),
            ["faults.learner_failures[0].learner"]
        );
        assert_eq!(
            keys(
                "learner_failures = [{ learner = 1, at_s = 1.0 }, { learner = 1, at_s = 2.0 }]",
                4
            ),
            ["faults.learner_failures[1].learner"]
        );
        assert_eq!(
            keys(
                "learner_failures = [{ learner = 0, at_s = 1.0, down_for_s = 0.0 }]",
                4
            ),
            ["faults.learner_failures[0].down_for_s"]
        );
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
