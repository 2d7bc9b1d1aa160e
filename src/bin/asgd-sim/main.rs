//! The `asgd-sim` command line: parse, run, print the error chain, return an exit code
//! (0 success, 1 failure while running or writing, 2 bad input).

mod bench;
mod cli;
mod host;
mod single;
mod sweep;
mod testbed;

use bench::*;
use cli::*;
use host::*;
use single::*;
use sweep::*;
use testbed::*;

use anyhow::Context as _;
use asgd_sim::input::{InputError, Override};
use asgd_sim::machine::topology::generators::Generator;
use asgd_sim::machine::topology::{Topology, file as topology_file};
use asgd_sim::observe::bar::IterationBar;
use asgd_sim::report::output::{OutputDir, write_atomic};
use asgd_sim::report::sweep as report_sweep;
use asgd_sim::report::{curve, table, trace::TraceRecorder};
use asgd_sim::{run, scenario, workload};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            // A cause its error already quotes (`{source}` in a message) is said once.
            let mut said = e.to_string();
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !said.contains(&cause) {
                    eprintln!("  caused by: {cause}");
                }
                said = cause;
            }
            if e.chain().any(is_bad_input) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Errors caused by what the user gave (exit status 2), as opposed to failures while running.
fn is_bad_input(e: &(dyn std::error::Error + 'static)) -> bool {
    use asgd_sim::report::results::ReportError;
    use asgd_sim::sweep::runner::SweepError;
    e.downcast_ref::<InputError>().is_some()
        || e.downcast_ref::<asgd_sim::theory::TheoryError>().is_some()
        || matches!(
            e.downcast_ref::<asgd_sim::real::processes::ProcessesError>(),
            Some(asgd_sim::real::processes::ProcessesError::Launch(_))
        )
        || matches!(
            e.downcast_ref::<SweepError>(),
            Some(SweepError::Input(_) | SweepError::Refused { .. })
        )
        || matches!(
            e.downcast_ref::<asgd_sim::outcome::RunError>(),
            Some(asgd_sim::outcome::RunError::Refused { .. })
        )
        || matches!(
            e.downcast_ref::<asgd_sim::predict::PredictError>(),
            Some(asgd_sim::predict::PredictError::Options(_))
        )
        || e.downcast_ref::<asgd_sim::testbed::TestbedError>()
            .is_some_and(|e| e.is_bad_input())
        || matches!(
            e.downcast_ref::<ReportError>(),
            Some(
                ReportError::Read { .. } | ReportError::Mismatch { .. } | ReportError::Empty { .. }
            )
        )
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            scenario,
            out,
            set,
            trace,
            quiet,
            threads,
            sweep,
            jobs,
            shard,
        } => {
            if sweep.is_empty() {
                return run_command(&scenario, out, &set, trace, quiet, threads);
            }
            let fixed = parse_overrides(&set)?;
            let base = scenario::load(&scenario, &fixed)?;
            let spec = asgd_sim::sweep::SweepSpec::from_command_line(
                &scenario,
                &format!("{}-sweep", base.name()),
                fixed,
                &sweep,
            )?;
            drop(base);
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&spec.name));
            sweep_command(&spec, &out, shard.as_deref(), jobs, threads, quiet)
        }
        Command::Sweep {
            sweep,
            out,
            set,
            parallel: Parallel { jobs, threads },
            shard,
            slurm,
            slurm_tasks,
            slurm_cpus,
            quiet,
        } => {
            let mut spec = asgd_sim::sweep::SweepSpec::read(&sweep)?;
            spec.fixed.extend(parse_overrides(&set)?);
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&spec.name));
            if slurm {
                let absolute = |p: &std::path::Path| {
                    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
                };
                let file = absolute(&sweep);
                let out = absolute(&out);
                // Slurm opens each task's --output file before the script runs, so the
                // directory must exist at submission.
                std::fs::create_dir_all(&out)
                    .with_context(|| format!("cannot create {}", out.display()))?;
                return emit(&asgd_sim::sweep::slurm::script(
                    &spec,
                    &asgd_sim::sweep::slurm::SlurmOptions {
                        tasks: slurm_tasks,
                        cpus_per_task: slurm_cpus,
                        sweep_file: &file,
                        out: &out,
                        program: &std::env::current_exe()
                            .context("cannot find this program's path")?,
                        sets: &set,
                    },
                ));
            }
            sweep_command(&spec, &out, shard.as_deref(), jobs, threads, quiet)
        }
        Command::Real {
            scenario,
            out,
            set,
            trace,
            quiet,
            processes,
            slurm,
            slurm_nodes,
            slurm_cpus,
        } => {
            if slurm {
                sbatch_command(&scenario, out, &set, slurm_nodes, slurm_cpus)
            } else {
                let a = RealArgs {
                    spec: scenario,
                    out,
                    set,
                    trace,
                    quiet,
                };
                if processes {
                    processes_command(a)
                } else {
                    real_command(a)
                }
            }
        }
        Command::Testbed {
            topology,
            sharing,
            to,
            megabytes,
            start_ms,
            out,
            quiet,
        } => testbed_command(
            &topology,
            sharing,
            to.as_deref(),
            &megabytes,
            &start_ms,
            out,
            quiet,
        ),
        Command::Calibrate {
            scenarios,
            out,
            set,
            quiet,
        } => calibrate_command(&scenarios, &out, &set, quiet),
        Command::Validate {
            scenario,
            set,
            host,
            out,
            repeats,
            backend,
            testbed,
            sharing,
            quiet,
        } => {
            check_backend_flags(backend, host.as_deref(), testbed.as_deref(), sharing)?;
            match backend {
                ValidateBackend::Threads => {
                    validate_command(&scenario, &set, host, out, repeats as usize, quiet)
                }
                ValidateBackend::Processes => validate_testbed_command(
                    &scenario,
                    &set,
                    testbed.as_deref().unwrap_or("builtin:testbed"),
                    sharing.unwrap_or(TestbedSharing::Fair),
                    out,
                    repeats as usize,
                    quiet,
                ),
            }
        }
        Command::Report { dirs, out } if is_validation(&dirs) => {
            redraw_validation(&dirs[0], out.as_deref())
        }
        Command::Report { dirs, out } => {
            let out = out.unwrap_or_else(|| dirs[0].join("report"));
            asgd_sim::report::output::check_target("--out", &out)?;
            let results = asgd_sim::report::results::gather(&dirs)?;
            let written = report_sweep::write(&results, &out)?;
            let mut text = format!(
                "report of {} ({} of {} points): {}\n",
                results.sweep.name,
                results.points.len(),
                results.sweep.points.len(),
                written.join("index.html").display()
            );
            if !results.missing.is_empty() {
                text.push_str(&format!("missing points: {}\n", results.missing.join(" ")));
            }
            emit(&text)
        }
        Command::Reproduce {
            out,
            runs,
            sweeps,
            set,
            parallel: Parallel { jobs, threads },
            quiet,
        } => reproduce(&out, &runs, &sweeps, &set, jobs, threads, quiet),
        Command::Topology { source, dot } => {
            let t = load_topology(&source)?;
            if dot {
                emit(&t.to_dot())
            } else {
                emit(&format!("{}\n{}\n", t.summary(), t.description()))
            }
        }
        Command::Models => {
            // Each model is shown on the data it was made for; its input layer and classes follow
            // the scenario's data set.
            let image = workload::Shape::Image { c: 3, h: 32, w: 32 };
            let text_bags = workload::Shape::Tokens {
                vocabulary: 100_000,
                tokens: 40,
            };
            let mut text = format!(
                "{:<12} {:<26} {:>12} {:>18}  description\n",
                "model", "shown on", "params", "train FLOP/sample"
            );
            for name in workload::model::NAMES {
                let (input, classes, data) = if *name == "nlc-text" {
                    (text_bags, 20, "100k-word bags, 20 classes")
                } else {
                    (image, 10, "3x32x32 images, 10 classes")
                };
                if *name == "quadratic" {
                    let q = workload::model::ModelSpec::Quadratic(Default::default());
                    text.push_str(&format!(
                        "{:<12} {:<26} {:>12} {:>18.3e}  {}\n",
                        q.name(),
                        "no data (kind = \"none\")",
                        q.params(),
                        q.train_flops_per_sample(),
                        "noisy quadratic 1/2 sum h_i x_i^2, [workload.quadratic]"
                    ));
                }
                if let Some(m) = workload::model::builtin(name, input, classes) {
                    text.push_str(&format!(
                        "{:<12} {:<26} {:>12} {:>18.3e}  {}\n",
                        m.name,
                        data,
                        m.params(),
                        m.train_flops_per_sample(),
                        m.description
                    ));
                }
            }
            emit(&text)
        }
        Command::Bench {
            scenario,
            numerics,
            overhead,
            learners,
            epochs,
            repeat,
            threads,
            set,
        } => {
            let threads = threads.unwrap_or_else(asgd_sim::setup::default_threads);
            match (numerics, overhead) {
                (true, _) => bench_numerics(repeat, threads),
                (false, Some(spec)) => bench_overhead(&spec, &set, threads),
                (false, None) => bench(&scenario, learners, epochs, &set, repeat),
            }
        }
        Command::Theory { command } => {
            use asgd_sim::theory::command::{self as th, Budget, Format};
            let fmt = |j: bool| if j { Format::Json } else { Format::Text };
            let text = match command {
                TheoryCommand::Ratio { alpha, p, json } => th::ratio(&alpha, &p, fmt(json))?,
                TheoryCommand::Samples {
                    p,
                    alpha,
                    d_f,
                    l,
                    sigma2,
                    m,
                    k1,
                    json,
                } => {
                    let budget = Budget::from_options(alpha, d_f, l, sigma2, m, k1)?;
                    th::samples(&budget, &p, fmt(json))?
                }
                TheoryCommand::Workers { k, m, json } => th::workers(k, m, fmt(json))?,
            };
            emit(&text)
        }
        Command::PredictLr {
            scenario,
            set,
            json,
            apply,
            probes,
            samples,
            within_condition,
            threads,
        } => predict_lr(
            &scenario,
            &set,
            (json, apply, within_condition),
            (probes, samples),
            threads,
        ),
        Command::Data {
            command: DataCommand::Get { name, dir },
        } => {
            let mut bar = DownloadBar(ProgressBar::no_length());
            let got = asgd_sim::data::download::get(&name, &dir, &mut bar)?;
            bar.0.finish_and_clear();
            emit(&format!(
                "{}: {}\n",
                name,
                if got.fetched {
                    format!(
                        "downloaded, verified and unpacked into {}",
                        got.path.display()
                    )
                } else {
                    format!("already present in {}", got.path.display())
                }
            ))
        }
    }
}

fn parse_overrides(set: &[String]) -> anyhow::Result<Vec<Override>> {
    Ok(set
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Writes to standard output; a reader that went away (`| head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to standard output"),
    }
}
