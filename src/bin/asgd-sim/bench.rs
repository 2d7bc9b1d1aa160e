//! `bench` and `predict-lr`: the simulator's speed, and the learning rate of the analysis.

use super::*;

/// Simulates `spec` timing-only `repeat` times and prints the best wall time as events per
/// second and as wall time per simulated iteration (one mini-batch of one learner).
pub(crate) fn bench(
    spec: &str,
    learners: Option<usize>,
    epochs: Option<u64>,
    set: &[String],
    repeat: usize,
) -> anyhow::Result<()> {
    let mut overrides = vec![Override::parse("workload.gradients=timing-only")?];
    // The paper machine's run is short: three epochs make a measurement of a few ms.
    let epoch_override = epochs.or((spec == "builtin:paper-cifar10").then_some(3));
    if let Some(p) = learners {
        overrides.push(Override::parse(&format!("cluster.learners={p}"))?);
    }
    if let Some(e) = epoch_override {
        overrides.push(Override::parse(&format!("workload.epochs={e}"))?);
    }
    for s in set {
        overrides.push(Override::parse(s)?);
    }
    let sc = scenario::load(spec, &overrides)?;
    let t = Instant::now();
    let res = run::simulate(&sc, ())?;
    let mut best = t.elapsed().as_secs_f64();
    for _ in 1..repeat {
        let t = Instant::now();
        run::simulate(&sc, ())?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    let epochs = sc.file.workload.epochs;
    let iterations = sc.iterations_per_epoch * epochs;
    let rate = res.events as f64 / best;
    let rate = if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else {
        format!("{:.1} k", rate / 1e3)
    };
    emit(&format!(
        "timing-only {}, {}, p = {}, {epochs} epoch{} ({iterations} iterations): {} events in {best:.4} s = {rate} events/s, {:.1} us per iteration (best of {repeat})\n",
        sc.file.algorithm.kind.name(),
        sc.file.name,
        sc.placement.learner_gpus.len(),
        if epochs == 1 { "" } else { "s" },
        res.events,
        best / iterations.max(1) as f64 * 1e6,
    ))
}

pub(crate) fn bench_numerics(steps: usize, threads: usize) -> anyhow::Result<()> {
    use asgd_sim::data::{Batch, BatchInputs};
    use asgd_sim::numerics::{Net, Objective, Scratch};
    use rand::{Rng, SeedableRng};
    const BATCH: usize = 128;
    let model = workload::model::cifar10_cnn();
    let net = Net::new(&model)?.with_threads(threads);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let len = model.input.len();
    let batch = Batch {
        inputs: BatchInputs::Dense {
            x: (0..BATCH * len)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect(),
            sample_len: len,
        },
        labels: (0..BATCH).map(|_| rng.random_range(0..10)).collect(),
    };
    let params = net.init_params(1);
    let mut grad = vec![0.0; params.len()];
    let mut scratch = Scratch::default();
    for step in 0..2 {
        net.loss_grad(&params, &batch, step, &mut grad, &mut scratch);
    }
    let mut times: Vec<f64> = (0..steps.max(1))
        .map(|step| {
            let start = Instant::now();
            net.loss_grad(&params, &batch, step as u64, &mut grad, &mut scratch);
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let gflop = model.train_flops_per_sample() * BATCH as f64 / 1e9;
    emit(&format!(
        "cifar10-cnn training step, batch {BATCH}, {threads} thread(s): median {:.1} ms (best {:.1} ms) = {:.0} samples/s ({:.0} best), {:.0} GFLOP/s\n",
        median * 1e3,
        times[0] * 1e3,
        BATCH as f64 / median,
        BATCH as f64 / times[0],
        gflop / median
    ))
}

pub(crate) fn bench_overhead(spec: &str, set: &[String], threads: usize) -> anyhow::Result<()> {
    let mut overrides = vec![Override::parse("workload.gradients=real")?];
    for s in set {
        overrides.push(Override::parse(s)?);
    }
    let sc = scenario::load(spec, &overrides)?;
    let start = Instant::now();
    let res = run::simulate_with(&sc, (), threads)?;
    let run_s = start.elapsed().as_secs_f64();
    let parts = asgd_sim::setup::real_parts(&sc, threads)?;
    let alone = asgd_sim::training::replay::arithmetic_only(
        parts.objective,
        parts.dataset,
        &parts.setup,
        res.gradients,
        res.curve.len(),
    )
    .as_secs_f64();
    emit(&format!(
        "{}: {} gradients and {} evaluations; simulated run {run_s:.3} s wall, the same arithmetic alone {alone:.3} s: overhead {:+.1}%\n",
        sc.name(),
        res.gradients,
        res.curve.len(),
        100.0 * (run_s / alone - 1.0)
    ))
}

pub(crate) fn predict_lr(
    spec: &str,
    set: &[String],
    (json, apply, within_condition): (Option<PathBuf>, Option<PathBuf>, bool),
    (probes, samples): (usize, Option<u64>),
    threads: Option<usize>,
) -> anyhow::Result<()> {
    use asgd_sim::predict::{self, PredictOptions};
    if apply.is_some() && spec.starts_with("builtin:") {
        return Err(InputError::UnknownBuiltin {
            what: "scenario file for --apply (a builtin has no file to copy)",
            name: spec.into(),
            available: "a path to a scenario file".into(),
        }
        .into());
    }
    let mut overrides = vec![Override::parse("workload.gradients=real")?];
    for s in set {
        overrides.push(Override::parse(s)?);
    }
    let sc = scenario::load(spec, &overrides)?;
    let opts = PredictOptions {
        probes,
        samples,
        threads: threads.unwrap_or_else(asgd_sim::setup::default_threads),
        ..Default::default()
    };
    let pred = predict::predict(&sc, &opts)?;
    if let Some(path) = &json {
        let mut text = serde_json::to_string_pretty(&pred)?;
        text.push('\n');
        write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &apply {
        let text = std::fs::read_to_string(spec).with_context(|| format!("cannot read {spec}"))?;
        let rate = if within_condition {
            pred.learning_rate_within_condition
        } else {
            pred.learning_rate
        };
        let new = predict::apply_to_scenario_text(&text, rate)?;
        write_atomic(path, new.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut text = pred.to_text();
    if let Some(path) = &apply {
        text.push_str(&format!("wrote {}\n", path.display()));
    }
    emit(&text)
}
