//! How a sweep's definition becomes the records it writes (`sweep.json`, `point.json`); the
//! record types themselves live with the reports that read them.

use super::spec::{Backend, Point, SweepSpec};
pub use crate::report::record::{
    AxisRecord, AxisValue, POINT_FILE, POINTS_DIR, PointRecord, SWEEP_FILE, SweepRecord, pretty,
};

fn json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_else(|_| serde_json::Value::String(v.to_string()))
}

impl PointRecord {
    pub fn new(spec: &SweepSpec, point: &Point) -> Self {
        PointRecord {
            index: point.index,
            name: point.name.clone(),
            values: point
                .values
                .iter()
                .map(|(key, value)| AxisValue {
                    key: key.clone(),
                    value: json(value),
                })
                .collect(),
            overrides: spec
                .overrides(point)
                .iter()
                .map(|o| o.text.clone())
                .collect(),
            backend: (spec.backend != Backend::Simulator).then(|| spec.backend.name().into()),
        }
    }
}

impl SweepRecord {
    pub fn new(spec: &SweepSpec, scenario_name: &str, scenario_text: &str) -> Self {
        SweepRecord {
            name: spec.name.clone(),
            scenario: spec.scenario.clone(),
            scenario_name: scenario_name.to_string(),
            scenario_text: scenario_text.to_string(),
            fixed: spec.fixed.iter().map(|o| o.text.clone()).collect(),
            axes: spec
                .axes
                .iter()
                .map(|a| AxisRecord {
                    key: a.key.clone(),
                    values: a.values.iter().map(json).collect(),
                })
                .collect(),
            target_accuracy: spec.target_accuracy,
            points: spec
                .points()
                .iter()
                .map(|p| PointRecord::new(spec, p))
                .collect(),
        }
    }
}
