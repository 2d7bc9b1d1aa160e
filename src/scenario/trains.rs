//! What a scenario trains: the model it names, fitted to its data (or the quadratic, which
//! reads none), and the blocks a partitioned run cuts its parameters into.

use super::ScenarioFile;
use crate::workload::dataset::DatasetInfo;
use crate::workload::model::ModelSpec;
use crate::workload::{DatasetSpec, model};

impl ScenarioFile {
    /// The model the scenario names, fitted to its data; None (with problems) if it cannot be.
    pub(super) fn resolve_model(
        &self,
        data: Option<&DatasetInfo>,
        problems: &mut Vec<(String, String)>,
    ) -> Option<ModelSpec> {
        let w = &self.workload;
        if w.model == "quadratic" {
            if !matches!(w.dataset, DatasetSpec::None { .. }) {
                problems.push((
                    "workload.dataset.kind".into(),
                    format!(
                        "model `quadratic` reads no data; use kind = \"none\" (with train_samples), not `{}`",
                        w.dataset.kind()
                    ),
                ));
                return None;
            }
            let q = w.quadratic.clone().unwrap_or_default();
            let issues = q.check();
            if !issues.is_empty() {
                problems.extend(
                    issues
                        .into_iter()
                        .map(|(k, m)| (format!("workload.quadratic.{k}"), m)),
                );
                return None;
            }
            return Some(ModelSpec::Quadratic(q));
        }
        if w.quadratic.is_some() {
            problems.push((
                "workload.quadratic".into(),
                format!("only for model = \"quadratic\", not `{}`", w.model),
            ));
        }
        let info = data?;
        let Some(m) = model::builtin(&w.model, info.input, info.classes) else {
            problems.push((
                "workload.model".into(),
                format!(
                    "unknown model `{}`; built-in models: {}",
                    w.model,
                    model::NAMES.join(", ")
                ),
            ));
            return None;
        };
        match m.layer_stats() {
            Ok(_) => Some(ModelSpec::Layers(m)),
            Err(e) => {
                problems.push((
                    "workload.model".into(),
                    format!(
                        "model `{}` does not fit data set `{}`: {e}",
                        m.name,
                        w.dataset.kind()
                    ),
                ));
                None
            }
        }
    }
}

/// The partitioned model's blocks: `blocks` even ones, or one per layer with parameters.
pub(super) fn block_ranges(
    model: &ModelSpec,
    blocks: Option<usize>,
) -> Result<Vec<std::ops::Range<usize>>, String> {
    let n = model.params() as usize;
    if let Some(b) = blocks {
        if b > n {
            return Err(format!(
                "{b} blocks for a model of {n} parameters; at most one block per parameter"
            ));
        }
        return Ok(crate::cluster::split_even(n, b));
    }
    let Some(stats) = model.layers().and_then(|m| m.layer_stats().ok()) else {
        return Err(format!(
            "model `{}` has no layers to cut the blocks at; give the number of blocks",
            model.name()
        ));
    };
    let mut start = 0;
    Ok(stats
        .iter()
        .filter(|l| l.params > 0)
        .map(|l| {
            let r = start..start + l.params as usize;
            start = r.end;
            r
        })
        .collect())
}
