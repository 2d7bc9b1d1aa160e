//! Throughput of real gradient computation: training steps (`loss_grad`) of the seed paper's
//! CIFAR-10 network at batch 128 on random data, in samples per second.
//!
//! `cargo run --release --example cnn_step [-- THREADS [STEPS]]` (defaults: 2 threads, 10
//! steps after 2 warm-up steps). The peer figure is PyTorch at ~530 samples/s on the 2-core
//! development machine (REFERENCE.md). Ends by asserting that the loss is finite.

use std::time::Instant;

use asgd_sim::data::{Batch, BatchInputs};
use asgd_sim::numerics::{Net, Objective, Scratch};
use asgd_sim::workload::model::cifar10_cnn;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BATCH: usize = 128;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let threads = args.next().and_then(Result::ok).unwrap_or(2);
    let steps = args.next().and_then(Result::ok).unwrap_or(10);
    let model = cifar10_cnn();
    let net = match Net::new(&model) {
        Ok(net) => net.with_threads(threads),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
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
    let mut loss = 0.0;
    for step in 0..2 {
        loss = net.loss_grad(&params, &batch, step, &mut grad, &mut scratch);
    }
    let mut times = vec![];
    for step in 0..steps {
        let start = Instant::now();
        loss = net.loss_grad(&params, &batch, step as u64, &mut grad, &mut scratch);
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let gflop = model.train_flops_per_sample() * BATCH as f64 / 1e9;
    println!(
        "cifar10-cnn, batch {BATCH}, {threads} thread(s): median step {:.1} ms (best {:.1}), \
         {:.0} samples/s, {:.0} GFLOP/s (3x forward FLOPs); loss {loss:.3}",
        median * 1e3,
        times[0] * 1e3,
        BATCH as f64 / median,
        gflop / median,
    );
    assert!(loss.is_finite());
}
