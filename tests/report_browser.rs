//! The report page opened from disk in headless Chromium: every figure must load. Chromium is
//! Debian's `chromium` package. On a machine without it the test says it skipped and why, and
//! passes; with ASGD_SIM_REQUIRE_BROWSER=1 (as `.ci/run` sets, after installing it) a missing
//! Chromium fails it instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_asgd-sim");

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .filter_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
        .next()
}

#[test]
fn every_figure_of_the_report_loads_in_headless_chromium() {
    let Some(browser) = chromium() else {
        let why = "no chromium, chromium-browser or google-chrome on PATH \
                   (Debian: apt-get install chromium)";
        assert!(
            std::env::var_os("ASGD_SIM_REQUIRE_BROWSER").is_none(),
            "ASGD_SIM_REQUIRE_BROWSER is set but there is {why}"
        );
        // Written past the test harness's capture, so that `cargo test` shows it.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED every_figure_of_the_report_loads_in_headless_chromium: {why}"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let quick = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
    let sweep = dir.path().join("page.toml");
    std::fs::write(
        &sweep,
        format!(
            "scenario = \"{}\"\n[set]\nworkload.epochs = 2\nworkload.eval_train_samples = 200\nworkload.dataset.train_samples = 500\nworkload.dataset.test_samples = 200\n[axes]\ncluster.learners = [1, 2]\nalgorithm.learning_rate = [0.05, 0.1]\n",
            quick.display()
        ),
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["sweep", sweep.to_str().unwrap(), "--out", "out", "-q"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = dir.path().join("out/report/index.html");
    let figures = std::fs::read_to_string(&page)
        .unwrap()
        .matches("<img class=\"figure\"")
        .count();
    assert_eq!(figures, 8, "the page shows every figure");

    let profile = tempfile::tempdir().unwrap();
    let o = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(
        dom.contains(&format!("data-figures-loaded=\"{figures}/{figures}\"")),
        "not every figure loaded; chromium said:\n{}\nDOM body tag: {:?}",
        String::from_utf8_lossy(&o.stderr),
        dom.lines().find(|l| l.contains("<body"))
    );
}
