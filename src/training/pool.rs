//! A fixed pool of worker threads for gradient jobs, so numeric work runs ahead of the event
//! loop, which waits only when it needs a value.
//!
//! Jobs are pure functions of their inputs; the pool decides only where and when they run,
//! never what they return, so results are bit-identical whatever the number of workers. With
//! zero workers a job runs on the caller's thread when its result is first needed.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Worker threads taking jobs from one queue in submission order.
pub struct Pool {
    queue: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

/// The promise of a job's result.
pub enum Ticket<R> {
    Pending(Receiver<R>),
    /// Not started yet: runs on the thread that waits (pool without workers).
    Deferred(Box<dyn FnOnce() -> R + Send>),
}

impl<R> Ticket<R> {
    /// Blocks until the job is done and returns its result, or None if its worker died.
    pub fn wait(self) -> Option<R> {
        match self {
            Ticket::Pending(rx) => rx.recv().ok(),
            Ticket::Deferred(f) => Some(f()),
        }
    }
}

impl Pool {
    /// A pool of `workers` threads (0: run jobs on the waiting thread).
    pub fn new(workers: usize) -> Self {
        if workers == 0 {
            return Self {
                queue: None,
                workers: vec![],
            };
        }
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..workers)
            .map(|_| {
                let rx = Arc::clone(&rx);
                std::thread::spawn(move || {
                    loop {
                        // Hold the lock only to take a job, not to run it.
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        Self {
            queue: Some(tx),
            workers,
        }
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Queues `job`; its result comes back through the ticket.
    pub fn submit<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> Ticket<R> {
        match &self.queue {
            None => Ticket::Deferred(Box::new(job)),
            Some(queue) => {
                let (tx, rx) = channel();
                let task: Job = Box::new(move || {
                    let _ = tx.send(job());
                });
                match queue.send(task) {
                    Ok(()) => Ticket::Pending(rx),
                    // All workers gone: nothing will run it; the ticket reports None.
                    Err(_) => Ticket::Pending(rx),
                }
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends every worker after its current job.
        self.queue.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_do_not_depend_on_the_number_of_workers() {
        let run = |workers| {
            let pool = Pool::new(workers);
            let tickets: Vec<_> = (0u64..50)
                .map(|i| pool.submit(move || (0..1000u64).fold(i, |a, b| a.wrapping_mul(31) ^ b)))
                .collect();
            tickets
                .into_iter()
                .map(|t| t.wait().unwrap())
                .collect::<Vec<_>>()
        };
        let inline = run(0);
        assert_eq!(run(1), inline);
        assert_eq!(run(3), inline);
    }
}
