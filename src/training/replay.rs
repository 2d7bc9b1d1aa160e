//! The gradient arithmetic of a real-gradient run without the simulation around it: the same
//! number of gradients of the same model on batches of the same size, each applied to one
//! parameter vector as sequential SGD would, with the same workers and threads and at most one
//! gradient per learner in flight, plus the same evaluations. Its wall time is what a run's wall
//! time is measured against to state the simulator's overhead (`asgd-sim bench --overhead`).
//! Never used by a run.

use super::pool::Pool;
use super::real::{RealSetup, evaluate, gradient_job};
use crate::data::{Dataset, Split};
use crate::numerics::Objective;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Computes `gradients` gradients and `evaluations` evaluations of the initial parameters (each
/// of `eval_train_samples` training samples and the whole test split) and returns the wall
/// time taken.
pub fn arithmetic_only(
    objective: Arc<dyn Objective>,
    dataset: Arc<Dataset>,
    setup: &RealSetup,
    gradients: u64,
    evaluations: usize,
) -> Duration {
    let pool = Pool::new(setup.workers);
    let params = objective.init_params(setup.seed);
    let mut server = params.clone();
    let lr = setup.learning_rate;
    let mut apply = |g: &Vec<f32>| {
        for (x, &g) in server.iter_mut().zip(g) {
            *x -= lr * g;
        }
    };
    let n = dataset.len(Split::Train);
    let m = setup.batch_size;
    let start = Instant::now();
    let shared = Arc::new(params.clone());
    let k = setup.eval_train_samples.min(n);
    let n_test = dataset.len(Split::Test);
    for _ in 0..evaluations {
        evaluate(&pool, &objective, &dataset, &shared, Split::Train, k);
        evaluate(&pool, &objective, &dataset, &shared, Split::Test, n_test);
    }
    // One buffer pair per learner, recycled as its gradients complete.
    let mut free: Vec<(Vec<f32>, Vec<f32>)> = (0..setup.learners.max(1))
        .map(|_| (params.clone(), vec![0.0; params.len()]))
        .collect();
    let mut in_flight: VecDeque<super::pool::Ticket<super::real::JobResult>> = VecDeque::new();
    for i in 0..gradients {
        if free.is_empty()
            && let Some(t) = in_flight.pop_front()
            && let Some(done) = super::pool::Ticket::wait(t)
        {
            apply(&done.grad);
            free.push((done.params, done.grad));
        }
        let Some((p, g)) = free.pop() else { break };
        let indices = (0..m).map(|j| (i as usize * m + j) % n.max(1)).collect();
        in_flight.push_back(pool.submit(gradient_job(
            Arc::clone(&objective),
            Arc::clone(&dataset),
            indices,
            i,
            p,
            g,
        )));
    }
    for t in in_flight {
        if let Some(done) = t.wait() {
            apply(&done.grad);
        }
    }
    let took = start.elapsed();
    std::hint::black_box(&server);
    took
}
