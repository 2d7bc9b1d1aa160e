//! What a sweep writes about itself: `sweep.json` beside the points (the definition and the full
//! list of points, so a report can tell which are missing) and `point.json` in each point's
//! directory. Plain data, the same bytes for the same sweep wherever and whenever it runs.

use serde::{Deserialize, Serialize};

pub const SWEEP_FILE: &str = "sweep.json";
pub const POINT_FILE: &str = "point.json";
pub const POINTS_DIR: &str = "points";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AxisRecord {
    pub key: String,
    pub values: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AxisValue {
    pub key: String,
    pub value: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    pub index: usize,
    pub name: String,
    pub values: Vec<AxisValue>,
    /// Every override that made the point's scenario, `key=value`, fixed ones first.
    pub overrides: Vec<String>,
    /// "real" where the real backend ran it (absent: the simulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    pub name: String,
    /// The base scenario as the sweep named it.
    pub scenario: String,
    /// The base scenario's own name and text, shown in the report.
    pub scenario_name: String,
    pub scenario_text: String,
    pub fixed: Vec<String>,
    pub axes: Vec<AxisRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_accuracy: Option<f64>,
    pub points: Vec<PointRecord>,
}

impl PointRecord {
    /// The value of axis `key` at this point, if `key` is an axis.
    pub fn value(&self, key: &str) -> Option<&serde_json::Value> {
        self.values.iter().find(|v| v.key == key).map(|v| &v.value)
    }
}

impl SweepRecord {
    pub fn to_json(&self) -> String {
        pretty(self)
    }
}

pub fn pretty<T: Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}
