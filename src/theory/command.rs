//! The `theory` command's three subcommands (`ratio`, `samples`, `workers`) as functions that
//! return the text to print, either a readable table or JSON. The binary only parses flags,
//! calls these, prints the string, and maps a [`TheoryError`] to exit status 2.
//!
//! This module formats; it must never print, write files, or exit the process.

use serde_json::json;

use super::bound::{Problem, guarantee_ratio};
use super::samples::samples_ratio;
use super::spec::{parse_alphas, parse_ps};
use super::workers::worker_limits;
use super::{TheoryError, positive};

/// How a subcommand's answer is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// `theory ratio`: guarantee ratios for alpha and p specs (lists or `start:stop:count` grids).
pub fn ratio(alpha_spec: &str, p_spec: &str, format: Format) -> Result<String, TheoryError> {
    let (alphas, ps) = (parse_alphas(alpha_spec)?, parse_ps(p_spec)?);
    Ok(match format {
        Format::Text => ratio_table(&alphas, &ps),
        Format::Json => ratio_json(&alphas, &ps),
    })
}

/// Rows alpha, columns p, cells `guarantee_ratio(alpha, p)`.
pub fn ratio_table(alphas: &[f64], ps: &[u32]) -> String {
    let mut out = String::from(
        "ratio of optimal LHL15 guarantees, p learners / 1 learner (Bhardwaj & Cong: ~ p/alpha \
         when alpha <= p)\n",
    );
    out.push_str(&format!("{:>10}", "alpha \\ p"));
    for p in ps {
        out.push_str(&format!(" {p:>9}"));
    }
    out.push('\n');
    for &a in alphas {
        out.push_str(&format!("{a:>10}"));
        for &p in ps {
            out.push_str(&format!(" {:>9.4}", guarantee_ratio(a, p)));
        }
        out.push('\n');
    }
    out
}

/// `{"alpha": [...], "p": [...], "ratio": [[...]]}` with `ratio[i][j]` for `alpha[i]`, `p[j]`.
pub fn ratio_json(alphas: &[f64], ps: &[u32]) -> String {
    let ratio: Vec<Vec<f64>> = alphas
        .iter()
        .map(|&a| ps.iter().map(|&p| guarantee_ratio(a, p)).collect())
        .collect();
    json!({ "alpha": alphas, "p": ps, "ratio": ratio }).to_string()
}

/// The one-learner budget of `theory samples`: alpha alone, or the constants with `k` = K_1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    Alpha(f64),
    Problem(Problem),
}

impl Budget {
    /// From the subcommand's optional flags: `--alpha`, or all of `--d-f --l --sigma2 --m --k1`.
    pub fn from_options(
        alpha: Option<f64>,
        d_f: Option<f64>,
        l: Option<f64>,
        sigma2: Option<f64>,
        m: Option<f64>,
        k1: Option<f64>,
    ) -> Result<Self, TheoryError> {
        match (alpha, d_f, l, sigma2, m, k1) {
            (Some(a), None, None, None, None, None) => Ok(Self::Alpha(positive("alpha", a)?)),
            (None, Some(d_f), Some(l), Some(s), Some(m), Some(k)) => {
                Ok(Self::Problem(Problem::new(d_f, l, s, m, k)?))
            }
            (Some(_), ..) => Err(TheoryError::Budget("--alpha given with problem constants")),
            _ => Err(TheoryError::Budget("some problem constants missing")),
        }
    }

    fn alpha(&self) -> f64 {
        match self {
            Self::Alpha(a) => *a,
            Self::Problem(pr) => pr.alpha(),
        }
    }
}

/// `theory samples`: K_p / K_1 for each p (and K_p, M K_p when the constants are given).
pub fn samples(budget: &Budget, p_spec: &str, format: Format) -> Result<String, TheoryError> {
    let ps = parse_ps(p_spec)?;
    let alpha_1 = budget.alpha();
    let ratios = ps
        .iter()
        .map(|&p| samples_ratio(alpha_1, p))
        .collect::<Result<Vec<f64>, _>>()?;
    let (k1, m) = match budget {
        Budget::Problem(pr) => (Some(pr.k), Some(pr.m)),
        Budget::Alpha(_) => (None, None),
    };
    Ok(match format {
        Format::Json => {
            let k_p: Option<Vec<f64>> = k1.map(|k| ratios.iter().map(|r| r * k).collect());
            json!({ "alpha_1": alpha_1, "k_1": k1, "m": m, "p": ps, "k_ratio": ratios, "k_p": k_p })
                .to_string()
        }
        Format::Text => {
            let mut out = format!(
                "samples for p learners to match 1 learner's optimal LHL15 guarantee \
                 (alpha_1 = {alpha_1:.6})\n{:>6} {:>12}",
                "p", "K_p/K_1"
            );
            if k1.is_some() {
                out.push_str(&format!(" {:>14} {:>14}", "K_p", "M K_p"));
            }
            out.push('\n');
            for (p, r) in ps.iter().zip(&ratios) {
                out.push_str(&format!("{p:>6} {r:>12.6}"));
                if let (Some(k), Some(m)) = (k1, m) {
                    out.push_str(&format!(" {:>14.1} {:>14.1}", r * k, r * k * m));
                }
                out.push('\n');
            }
            out
        }
    })
}

fn workers_word(n: u64) -> &'static str {
    if n == 1 { "worker" } else { "workers" }
}

/// `theory workers`: the largest worker counts for linear speedup, constants stated.
pub fn workers(k: f64, m: f64, format: Format) -> Result<String, TheoryError> {
    let w = worker_limits(k, m)?;
    let (lhl, wsz) = w.counts();
    Ok(match format {
        Format::Json => json!({
            "k": w.k, "m": w.m,
            "lhl15": { "limit": w.lhl15, "workers": lhl, "formula": "1 * sqrt(K/M)",
                       "note": "O-constant taken as 1" },
            "wsz19": { "limit": w.wsz19, "workers": wsz, "formula": "1 * (K/M)^(1/3)",
                       "note": "O~-constant taken as 1, log factors dropped" },
        })
        .to_string(),
        Format::Text => format!(
            "largest worker counts for linear speedup, K = {k} updates, M = {m}\n\
             LHL15, T = O(sqrt(K/M)):               1 * sqrt(K/M)   = {:.3} -> {lhl} {} \
             (constant taken as 1)\n\
             Wang-Shen-Zhao 2019, O~(K^1/3 M^-1/3): 1 * (K/M)^(1/3) = {:.3} -> {wsz} {} \
             (constant taken as 1, log factors dropped)\n",
            w.lhl15,
            workers_word(lhl),
            w.wsz19,
            workers_word(wsz)
        ),
    })
}
