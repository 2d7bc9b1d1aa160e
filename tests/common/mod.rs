//! What several integration tests share: the quick scenario made small.

// Each test file that includes this module uses only part of it.
#![allow(dead_code)]

use asgd_sim::input::Override;
use asgd_sim::scenario::{self, Scenario};
use std::path::Path;
use std::process::Output;

/// The quick scenario on 512 training images in batches of 16 (32 iterations an epoch), two
/// epochs, evaluated on 64 images.
pub const SMALL: [&str; 5] = [
    "workload.dataset.train_samples=512",
    "workload.dataset.test_samples=64",
    "workload.eval_train_samples=64",
    "workload.epochs=2",
    "algorithm.batch_size=16",
];

/// `scenarios/quick.toml` with [`SMALL`], then `sets`.
pub fn quick(sets: &[&str]) -> Scenario {
    let overrides: Vec<Override> = SMALL
        .iter()
        .chain(sets)
        .map(|s| Override::parse(s).unwrap())
        .collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
    scenario::load(path.to_str().unwrap(), &overrides).unwrap()
}

/// Entries of `dir` left by an interrupted write (`.NAME.partial-PID`).
pub fn partial_entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.') && n.contains(".partial-"))
            .collect(),
        Err(_) => vec![],
    }
}

/// Asserts the contract for bad input: exit status 2, every needle in stderr, and nothing
/// written at or next to `out`.
pub fn assert_bad_input(o: &Output, out: &Path, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(2),
        "expected exit status 2 for bad input, got {:?}\nstderr:\n{err}",
        o.status
    );
    assert!(err.starts_with("error: "), "stderr:\n{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks `{n}`:\n{err}");
    }
    assert!(
        !out.exists(),
        "bad input left an output directory {}",
        out.display()
    );
    let parent = out.parent().unwrap();
    assert_eq!(
        partial_entries(parent),
        Vec::<String>::new(),
        "bad input left partial output in {}",
        parent.display()
    );
}

/// A run directory's summary.json.
pub fn json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A run directory's curve.csv without its time column: what was learned, not when.
pub fn learning(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("curve.csv")).unwrap();
    text.lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(2);
            f.join(",")
        })
        .collect()
}

/// Whether this test runs as root (effective uid 0, from /proc/self/status).
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        == Some("0")
}
