//! asgd-sim's sbatch scripts on a real Slurm: a one-node cluster (munged, slurmctld and
//! slurmd from Debian's slurm-wlm and munge, started here in the foreground with a generated
//! slurm.conf, ports and state of their own) runs a two-point sweep's array script and a
//! processes run's script, and their results match the same runs made directly.
//!
//! Needs root and the Slurm and munge programs; without them it says that it skipped and why.
//! `ASGD_SIM_REQUIRE_SLURM=1` (as `.ci/run` sets after installing them) makes it required.

mod common;

use common::{SMALL, json, learning};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_asgd-sim");
/// Longest a submitted job may take, queueing included; both jobs run in seconds.
const JOB_LIMIT: Duration = Duration::from_secs(240);

/// A one-node Slurm cluster that lives as long as this value.
struct Slurm {
    dir: tempfile::TempDir,
    daemons: Vec<(&'static str, Child)>,
}

impl Slurm {
    /// Starts munged, slurmctld and slurmd, and waits until the node is idle; `Err` says why
    /// it cannot run here.
    fn up() -> Result<Self, String> {
        let root = common::is_root();
        if !root {
            return Err("slurmd must run as root to start jobs, and this is not root".into());
        }
        for tool in [
            "munged",
            "slurmctld",
            "slurmd",
            "sbatch",
            "scontrol",
            "sinfo",
            "scancel",
        ] {
            if which(tool).is_none() {
                return Err(format!(
                    "{tool} is not installed (Debian: apt-get install slurm-wlm munge)"
                ));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("asgd-slurm")
            .tempdir()
            .unwrap();
        let mut slurm = Slurm {
            dir,
            daemons: vec![],
        };
        let d = slurm.dir.path().to_path_buf();
        for sub in ["key", "state", "spool"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        set_mode(&d, 0o755);
        set_mode(&d.join("key"), 0o700);
        let mut key = [0u8; 128];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut key)
            .unwrap();
        std::fs::write(d.join("key/munge.key"), key).unwrap();
        set_mode(&d.join("key/munge.key"), 0o400);
        let socket = d.join("munge.socket");
        let host = String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let (ctld_port, node_port) = (free_port(), free_port());
        let conf = format!(
            "ClusterName=asgdtest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmUser=root\nSlurmdUser=root\n\
             AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={sock}\n\
             SlurmctldPort={ctld_port}\nSlurmdPort={node_port}\n\
             StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             SwitchType=switch/none\nMpiDefault=none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             SchedulerType=sched/backfill\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
             SlurmdParameters=config_overrides\nReturnToService=2\nMinJobAge=600\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs=16 State=UNKNOWN\n\
             PartitionName=asgd Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            sock = socket.display(),
            d = d.display(),
        );
        std::fs::write(d.join("slurm.conf"), conf).unwrap();
        slurm.start(
            "munged",
            Command::new("munged").args([
                "--foreground".into(),
                "--force".into(),
                format!("--socket={}", socket.display()),
                format!("--key-file={}", d.join("key/munge.key").display()),
                format!("--log-file={}", d.join("munged.log").display()),
                format!("--pid-file={}", d.join("munged.pid").display()),
                format!("--seed-file={}", d.join("munged.seed").display()),
            ]),
        )?;
        slurm.wait_until("munged's socket", || socket.exists())?;
        let conf = d.join("slurm.conf");
        slurm.start(
            "slurmctld",
            Command::new("slurmctld").arg("-D").arg("-f").arg(&conf),
        )?;
        slurm.start(
            "slurmd",
            Command::new("slurmd").arg("-D").arg("-f").arg(&conf),
        )?;
        let conf_env = conf.clone();
        slurm.wait_until("the node to be idle", move || {
            Command::new("sinfo")
                .args(["-h", "-o", "%t"])
                .env("SLURM_CONF", &conf_env)
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
        })?;
        Ok(slurm)
    }

    fn start(&mut self, name: &'static str, c: &mut Command) -> Result<(), String> {
        let child = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        self.daemons.push((name, child));
        Ok(())
    }

    fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) -> Result<(), String> {
        let start = Instant::now();
        while !ready() {
            let ended = self
                .daemons
                .iter_mut()
                .find_map(|(name, child)| Some((*name, child.try_wait().ok()??)));
            if let Some((name, status)) = ended {
                return Err(format!("{name} ended ({status}){}", self.logs()));
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!("no {what} after 30 s{}", self.logs()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for log in ["munged.log", "slurmctld.log", "slurmd.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(log)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            s.push_str(&format!("\n--- {log} (last lines)\n"));
            for l in tail.iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    /// A Slurm client command aimed at this cluster.
    fn client(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.dir.path().join("slurm.conf"));
        c
    }

    /// Submits `script` (written into the cluster's directory) and returns the job id.
    fn submit(&self, name: &str, script: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, script).unwrap();
        let o = self
            .client("sbatch")
            .arg("--parsable")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "sbatch {name}: {}{}",
            String::from_utf8_lossy(&o.stderr),
            self.logs()
        );
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    }

    /// Waits until every task of `job` has ended, and asserts that each completed.
    fn wait(&self, job: &str, log: &dyn Fn() -> String) {
        let start = Instant::now();
        loop {
            let o = self
                .client("scontrol")
                .args(["show", "job", "-o", job])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&o.stdout);
            let states: Vec<&str> = text
                .split_whitespace()
                .filter_map(|w| w.strip_prefix("JobState="))
                .collect();
            let ended =
                |s: &&str| !matches!(*s, "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING");
            if !states.is_empty() && states.iter().all(ended) {
                assert!(
                    states.iter().all(|s| *s == "COMPLETED"),
                    "job {job} ended {states:?}\n{text}\n--- job log\n{}{}",
                    log(),
                    self.logs()
                );
                return;
            }
            if start.elapsed() > JOB_LIMIT {
                let _ = self.client("scancel").arg(job).status();
                panic!(
                    "job {job} not done after {} s: {states:?}\n{text}\n--- job log\n{}{}",
                    JOB_LIMIT.as_secs(),
                    log(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Slurm {
    /// Cancels what is left of the cluster's jobs, then stops its daemons, slurmd first.
    fn drop(&mut self) {
        if let Ok(o) = self.client("squeue").args(["-h", "-o", "%i"]).output() {
            for job in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.client("scancel").arg(job).status();
            }
        }
        for (_, child) in self.daemons.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while matches!(child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// asgd-sim with `args`, from the repository root; asserts success and returns stdout.
fn asgd<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let o = Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "asgd-sim {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_one_node_slurm_runs_a_sweep_array_and_a_processes_job_to_the_direct_results() {
    let slurm = match Slurm::up() {
        Ok(s) => s,
        Err(why) if std::env::var_os("ASGD_SIM_REQUIRE_SLURM").is_none() => {
            eprintln!("skipped: no one-node Slurm here: {why}");
            return;
        }
        Err(why) => panic!("ASGD_SIM_REQUIRE_SLURM is set, but no one-node Slurm: {why}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let t = |name: &str| tmp.path().join(name).display().to_string();
    let quick = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
    std::fs::write(
        tmp.path().join("two.toml"),
        format!(
            "name = \"two\"\nscenario = \"{}\"\n[set]\nworkload.epochs = 1\n\
             [axes]\ncluster.learners = [1, 2]\n",
            quick.display()
        ),
    )
    .unwrap();
    let sweep = t("two.toml");
    // A --set given with the sweep reaches every array task.
    let set = "workload.eval_train_samples=500";
    let script = asgd(&[
        "sweep",
        &sweep,
        "--set",
        set,
        "--slurm",
        "--slurm-cpus",
        "1",
        "--out",
        &t("array"),
    ]);
    let array = slurm.submit("sweep.sh", &script);
    let real = |out: &str, extra: &[&str]| {
        let mut a: Vec<String> = vec!["real".into(), quick.display().to_string()];
        a.extend(["--out".into(), t(out)]);
        for s in SMALL.iter().chain(&["cluster.learners=1"]) {
            a.extend(["--set".into(), s.to_string()]);
        }
        a.extend(extra.iter().map(|e| e.to_string()));
        a
    };
    let script = asgd(&real(
        "srun",
        &["--processes", "--slurm", "--slurm-nodes", "1"],
    ));
    let job = slurm.submit("processes.sh", &script);

    // The same runs, made directly, while the jobs run.
    asgd(&["sweep", &sweep, "--set", set, "--out", &t("direct"), "-q"]);
    asgd(&real("threads", &["-q"]));

    let logs = |pattern: &str| {
        let mut s = String::new();
        for e in std::fs::read_dir(tmp.path()).unwrap().flatten() {
            let p = e.path();
            let mut paths = vec![p.clone()];
            if p.is_dir() {
                paths = std::fs::read_dir(&p)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
                    .collect();
            }
            for p in paths {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                if n.contains(pattern) && n.ends_with(".out") {
                    s.push_str(&format!(
                        "{}:\n{}",
                        p.display(),
                        String::from_utf8_lossy(&read(&p))
                    ));
                }
            }
        }
        s
    };
    slurm.wait(&array, &|| logs("slurm-"));
    slurm.wait(&job, &|| logs("srun-slurm-"));

    // Every point the array ran is the point the direct sweep ran, byte for byte.
    let mut shards = vec![];
    for i in 1..=2 {
        let dir = tmp.path().join(format!("array/shard-{i}"));
        assert!(dir.join("sweep.json").is_file(), "{}", logs("slurm-"));
        shards.push(dir.display().to_string());
    }
    for point in ["learners=1", "learners=2"] {
        let found: Vec<PathBuf> = shards
            .iter()
            .map(|s| Path::new(s).join("points").join(point))
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(found.len(), 1, "{point} ran in exactly one task: {found:?}");
        for file in ["summary.json", "curve.csv"] {
            assert!(
                read(&found[0].join(file))
                    == read(&tmp.path().join("direct/points").join(point).join(file)),
                "{point}/{file} differs between the Slurm array and the direct sweep"
            );
        }
        let summary = json(&found[0]);
        assert_eq!(summary["learners"], point[9..].parse::<u64>().unwrap());
    }
    let mut report: Vec<&str> = vec!["report"];
    report.extend(shards.iter().map(String::as_str));
    let merged = t("merged");
    report.extend(["--out", &merged]);
    asgd(&report);
    assert!(
        read(&tmp.path().join("merged/points.csv"))
            == read(&tmp.path().join("direct/report/points.csv")),
        "the merged report's points differ from the direct sweep's"
    );

    // The processes job, four tasks under srun, learned what the threads backend learned.
    let (srun, threads) = (tmp.path().join("srun"), tmp.path().join("threads"));
    assert_eq!(learning(&srun), learning(&threads));
    let (s, d) = (json(&srun), json(&threads));
    assert_eq!(s["backend"], "processes");
    assert_eq!(s["final"], d["final"]);
    assert!(s["cut_short"].is_null());
    let log = logs("srun-slurm-");
    assert!(
        log.contains("learner"),
        "the job's log has rank 0's table: {log}"
    );
}
