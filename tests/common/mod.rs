//! What several integration tests share: the quick scenario made small.

// Each test file that includes this module uses only part of it.
#![allow(dead_code)]

use asgd_sim::input::Override;
use asgd_sim::scenario::{self, Scenario};
use std::path::Path;

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
