//! What a newcomer meets on the command line, pinned through the real binary: what a run says
//! about itself, and inputs that must be refused before any work starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn asgd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_asgd-sim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cannot start asgd-sim")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_real_gradient_run_reports_no_engine_event_rate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let quick = repo("scenarios/quick.toml");
    let small = ["--set", "workload.epochs=1"];
    let o = asgd(&[&["run", path(&quick), "--out", path(&out)][..], &small].concat());
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(!stdout.contains("events/s"), "{stdout}");
    assert!(stdout.contains("real gradients"), "{stdout}");
    let timing = ["--set", "workload.gradients=timing-only"];
    let o = asgd(
        &[
            &["run", path(&quick), "--out", path(&out)][..],
            &small,
            &timing,
        ]
        .concat(),
    );
    let (stdout, _) = text(&o);
    assert!(stdout.contains("M events/s"), "{stdout}");
}

#[test]
fn the_real_backend_says_it_ran_on_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("real");
    let quick = repo("scenarios/quick.toml");
    let o = asgd(&[
        "real",
        path(&quick),
        "--out",
        path(&out),
        "--set",
        "workload.epochs=1",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.contains("downpour on this host"), "{first}");
    assert!(!first.contains("power8-k80"), "{first}");
    assert!(stdout.contains("1 epoch of"), "{stdout}");
}
