//! The sbatch script that runs a scenario across processes under Slurm: one task per rank,
//! spread over the nodes asked for, meeting at the first node (where srun puts rank 0).
//! Only prints; submits nothing.

use super::World;
use crate::shell::word as quote;
use std::path::Path;

pub struct SbatchOptions<'a> {
    /// The scenario as every node will read it (an absolute path, or builtin:NAME).
    pub scenario: &'a str,
    /// The `--set` overrides, as given.
    pub sets: &'a [String],
    pub nodes: usize,
    /// Cores per task.
    pub cpus_per_task: usize,
    /// Where rank 0 writes, an absolute path.
    pub out: &'a Path,
    /// The asgd-sim program, an absolute path (a job's PATH need not have it).
    pub program: &'a Path,
}

/// The script, ready for `sbatch`, for a scenario of `name` that runs as `world`.
pub fn script(name: &str, world: World, o: &SbatchOptions) -> String {
    let tasks = world.size();
    let nodes = o.nodes.clamp(1, tasks);
    let out = o.out.display();
    // The job's log sits beside the run directory, not in it: rank 0 replaces that
    // directory whole when it writes the results.
    let log = format!("{out}-slurm-%j.out");
    let log_dir = o.out.parent().unwrap_or(Path::new("/")).display();
    let mut args = vec![quote(o.scenario), "--processes".into()];
    args.push(format!("--out {}", quote(&out.to_string())));
    for s in o.sets {
        args.push(format!("--set {}", quote(s)));
    }
    format!(
        r#"#!/bin/bash
# asgd-sim real `{name}` across processes: {tasks} tasks (1 coordinator, {shards} shards,
# {learners} learners) on {nodes} node(s), {cpus} core(s) each.
# Submit:  sbatch this-script.sh   ({log_dir} was created when this script was written,
# since Slurm opens the job's --output file there before the script runs.)
#SBATCH --job-name=asgd-{job}
#SBATCH --nodes={nodes}
#SBATCH --ntasks={tasks}
#SBATCH --cpus-per-task={cpus}
#SBATCH --output={log}
set -euo pipefail
ASGD_SIM=${{ASGD_SIM:-{program}}}
# srun puts rank 0, the coordinator, on the allocation's first node; every rank meets it
# there, on a port of the job's own.
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export ASGD_SIM_COORDINATOR=${{ASGD_SIM_COORDINATOR:-$head:$((20000 + SLURM_JOB_ID % 20000))}}
srun --kill-on-bad-exit=1 "$ASGD_SIM" real {args}
"#,
        job = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            })
            .collect::<String>(),
        shards = world.shards,
        learners = world.learners,
        cpus = o.cpus_per_task.max(1),
        program = quote(&o.program.display().to_string()),
        args = args.join(" \\\n    "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_starts_one_task_per_rank_and_quotes_what_the_shell_would_split() {
        let world = World {
            shards: 2,
            learners: 4,
            ring: false,
        };
        let sets = ["cluster.learners=4".to_string(), "name=a b's".to_string()];
        let s = script(
            "quick",
            world,
            &SbatchOptions {
                scenario: "/home/u/quick.toml",
                sets: &sets,
                nodes: 2,
                cpus_per_task: 1,
                out: Path::new("/scratch/u/q"),
                program: Path::new("/opt/asgd/bin/asgd-sim"),
            },
        );
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(s.contains("#SBATCH --ntasks=7\n"), "{s}");
        assert!(s.contains("#SBATCH --nodes=2\n"), "{s}");
        assert!(
            s.contains("#SBATCH --output=/scratch/u/q-slurm-%j.out\n"),
            "the log is not in the directory rank 0 replaces: {s}"
        );
        assert!(
            s.contains("ASGD_SIM=${ASGD_SIM:-/opt/asgd/bin/asgd-sim}"),
            "{s}"
        );
        assert!(
            s.contains("real /home/u/quick.toml \\\n    --processes"),
            "{s}"
        );
        assert!(s.contains(r"--set 'name=a b'\''s'"), "{s}");
        assert!(s.contains("--set cluster.learners=4"), "{s}");
        let one = script(
            "q",
            World {
                shards: 1,
                learners: 1,
                ring: false,
            },
            &SbatchOptions {
                scenario: "builtin:quick",
                sets: &[],
                nodes: 9,
                cpus_per_task: 0,
                out: Path::new("/o"),
                program: Path::new("/a"),
            },
        );
        assert!(
            one.contains("#SBATCH --nodes=3\n"),
            "no more nodes than tasks: {one}"
        );
        assert!(one.contains("#SBATCH --cpus-per-task=1\n"), "{one}");
    }
}
