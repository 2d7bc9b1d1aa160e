//! The sbatch script that spreads a sweep over a Slurm job array: task I of N runs
//! `asgd-sim sweep FILE --shard I/N` into its own directory; `asgd-sim report` merges them.
//! Only prints; submits nothing.

use super::spec::SweepSpec;
use crate::shell::word;
use std::path::Path;

pub struct SlurmOptions<'a> {
    /// Array tasks [default: one per point].
    pub tasks: Option<usize>,
    /// Cores per task.
    pub cpus_per_task: usize,
    /// The sweep file as an absolute path, and the directory the shards write under.
    pub sweep_file: &'a Path,
    pub out: &'a Path,
    /// The asgd-sim program, as an absolute path (a job's PATH need not have it).
    pub program: &'a Path,
    /// The `--set` overrides given with the sweep, passed on to every task.
    pub sets: &'a [String],
}

/// The script, ready for `sbatch`.
pub fn script(spec: &SweepSpec, opts: &SlurmOptions) -> String {
    let points = spec.points().len();
    let tasks = opts.tasks.unwrap_or(points).clamp(1, points.max(1));
    let out = opts.out.display();
    let file = word(&opts.sweep_file.display().to_string());
    let out_word = word(&out.to_string());
    let cpus = opts.cpus_per_task.max(1);
    let sets: String = opts
        .sets
        .iter()
        .map(|s| format!("    --set {} \\\n", word(s)))
        .collect();
    format!(
        r#"#!/bin/bash
# asgd-sim sweep `{name}`: {points} {point_word} over {tasks} array {task_word} of {cpus} {core_word}.
# Submit:  sbatch this-script.sh ({out} was created when this script was written, since Slurm
# opens each task's --output file there before the script runs).
# Merge when all tasks are done (e.g. as a job with --dependency=afterok:<array job id>):
#   asgd-sim report {out}/shard-* --out {out}/report
# A task that is cancelled or times out can be resubmitted as it is: finished points are kept.
#SBATCH --job-name=asgd-{name}
#SBATCH --array=1-{tasks}
#SBATCH --cpus-per-task={cpus}
#SBATCH --ntasks=1
#SBATCH --output={out}/slurm-%A_%a.out
set -euo pipefail
mkdir -p {out_word}
ASGD_SIM=${{ASGD_SIM:-{program}}}
"$ASGD_SIM" sweep {file} \
{sets}    --shard "${{SLURM_ARRAY_TASK_ID}}/{tasks}" \
    --out {out_word}/shard-"${{SLURM_ARRAY_TASK_ID}}" \
    --threads "${{SLURM_CPUS_PER_TASK:-{cpus}}}" \
    --quiet
"#,
        name = spec.name,
        program = word(&opts.program.display().to_string()),
        point_word = plural(points, "point"),
        task_word = plural(tasks, "task"),
        core_word = plural(cpus, "core"),
    )
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_has_one_task_per_point_and_the_shard_flag() {
        let spec = SweepSpec::from_command_line(
            "builtin:quick",
            "q",
            vec![],
            &["cluster.learners=1,2,4".into(), "seed=1,2".into()],
        )
        .unwrap();
        let s = script(
            &spec,
            &SlurmOptions {
                tasks: None,
                cpus_per_task: 4,
                sweep_file: Path::new("/home/u/s.toml"),
                out: Path::new("/scratch/u/q"),
                program: Path::new("/opt/bin/asgd-sim"),
                sets: &["training.epochs=2".into()],
            },
        );
        assert!(s.contains("--set training.epochs=2 \\\n"), "{s}");
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(s.contains("#SBATCH --array=1-6\n"), "{s}");
        assert!(s.contains("--shard \"${SLURM_ARRAY_TASK_ID}/6\""), "{s}");
        assert!(s.contains("sweep /home/u/s.toml"), "{s}");
        assert!(s.contains("ASGD_SIM=${ASGD_SIM:-/opt/bin/asgd-sim}"), "{s}");
        assert!(s.contains("asgd-sim report /scratch/u/q/shard-*"), "{s}");
        let s = script(
            &spec,
            &SlurmOptions {
                tasks: Some(100),
                cpus_per_task: 1,
                sweep_file: Path::new("/s.toml"),
                out: Path::new("/o"),
                program: Path::new("/opt/bin/asgd-sim"),
                sets: &[],
            },
        );
        assert!(
            s.contains("#SBATCH --array=1-6\n"),
            "more tasks than points: {s}"
        );
    }
}
