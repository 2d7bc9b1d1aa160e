//! The discrete-event core: one clock, one pending-event queue, one seeded RNG.
//!
//! A [`Model`] owns all simulated state and reacts to its own closed set of events; the engine
//! only orders them by (time, insertion sequence) and advances the clock. The public loop is
//! three verbs: [`Simulation::step`], [`Simulation::step_until`] and [`Simulation::run`]. The
//! engine must never look at wall-clock time or iterate a hash map: a run is a function of the
//! model and the seed alone.

mod queue;

pub use queue::EventQueue;

use crate::time::{SimDuration, SimTime};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The random number generator every run uses: seeded once, portable across platforms.
pub type SimRng = ChaCha8Rng;

/// Simulated state and its reaction to events.
pub trait Model {
    /// The closed set of events this model schedules for itself.
    type Event;

    /// Schedules the first events; called once, at time zero, before the first step.
    fn start(&mut self, ctx: &mut Context<'_, Self::Event>);

    /// Reacts to one event at `ctx.now()`.
    fn handle(&mut self, event: Self::Event, ctx: &mut Context<'_, Self::Event>);

    /// True once the run has reached its goal; the loop stops even if events remain.
    fn finished(&self) -> bool {
        false
    }
}

/// What a model may do while it handles an event: read the clock, schedule, draw random numbers.
pub struct Context<'a, E> {
    now: SimTime,
    queue: &'a mut EventQueue<E>,
    rng: &'a mut SimRng,
}

impl<E> Context<'_, E> {
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Schedules `event` at `time`; a time in the past is clamped to now, so causality holds.
    pub fn schedule_at(&mut self, time: SimTime, event: E) {
        self.queue.push(time.max(self.now), event);
    }

    pub fn schedule_in(&mut self, delay: SimDuration, event: E) {
        self.queue.push(self.now + delay, event);
    }

    pub fn rng(&mut self) -> &mut SimRng {
        self.rng
    }
}

/// A model, its clock, its pending events and its RNG.
pub struct Simulation<M: Model> {
    model: M,
    queue: EventQueue<M::Event>,
    now: SimTime,
    rng: SimRng,
    started: bool,
    events_handled: u64,
}

impl<M: Model> Simulation<M> {
    pub fn new(model: M, seed: u64) -> Self {
        Self {
            model,
            queue: EventQueue::default(),
            now: SimTime::ZERO,
            rng: SimRng::seed_from_u64(seed),
            started: false,
            events_handled: 0,
        }
    }

    fn ensure_started(&mut self) {
        if !self.started {
            self.started = true;
            let mut ctx = Context {
                now: self.now,
                queue: &mut self.queue,
                rng: &mut self.rng,
            };
            self.model.start(&mut ctx);
        }
    }

    /// Handles the next event. Returns false when nothing is left to do (queue empty or model
    /// finished).
    pub fn step(&mut self) -> bool {
        self.ensure_started();
        if self.model.finished() {
            return false;
        }
        let Some((time, event)) = self.queue.pop() else {
            return false;
        };
        self.now = time;
        self.events_handled += 1;
        let mut ctx = Context {
            now: time,
            queue: &mut self.queue,
            rng: &mut self.rng,
        };
        self.model.handle(event, &mut ctx);
        true
    }

    /// Handles every event scheduled at or before `deadline`, then sets the clock to the
    /// deadline unless the model finished first.
    pub fn step_until(&mut self, deadline: SimTime) {
        self.ensure_started();
        while !self.model.finished() && self.queue.peek_time().is_some_and(|t| t <= deadline) {
            self.step();
        }
        if !self.model.finished() {
            self.now = self.now.max(deadline);
        }
    }

    /// Runs until the model is finished or no event is left.
    pub fn run(&mut self) {
        while self.step() {}
    }

    pub fn now(&self) -> SimTime {
        self.now
    }

    pub fn events_handled(&self) -> u64 {
        self.events_handled
    }

    pub fn model(&self) -> &M {
        &self.model
    }

    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    pub fn into_model(self) -> M {
        self.model
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Records the order events are handled in; each event may schedule a follow-up.
    struct Recorder {
        seen: Vec<(u64, u32)>,
        draws: Vec<u32>,
    }

    impl Model for Recorder {
        type Event = u32;
        fn start(&mut self, ctx: &mut Context<'_, u32>) {
            for id in 0..5 {
                ctx.schedule_at(SimTime::from_nanos(10), id);
            }
            ctx.schedule_at(SimTime::from_nanos(5), 99);
        }
        fn handle(&mut self, event: u32, ctx: &mut Context<'_, u32>) {
            self.seen.push((ctx.now().as_nanos(), event));
            self.draws.push(ctx.rng().random());
            if event == 99 {
                // Scheduled later than the five at t=10 but for the same time: must come last.
                ctx.schedule_in(SimDuration::from_nanos(5), 100);
            }
        }
    }

    fn run(seed: u64) -> Recorder {
        let mut sim = Simulation::new(
            Recorder {
                seen: vec![],
                draws: vec![],
            },
            seed,
        );
        sim.run();
        sim.into_model()
    }

    #[test]
    fn ties_are_fifo_and_runs_repeat() {
        let a = run(42);
        assert_eq!(
            a.seen,
            vec![
                (5, 99),
                (10, 0),
                (10, 1),
                (10, 2),
                (10, 3),
                (10, 4),
                (10, 100)
            ]
        );
        let b = run(42);
        assert_eq!(a.draws, b.draws);
        assert_ne!(a.draws, run(43).draws);
    }

    #[test]
    fn step_until_stops_at_deadline() {
        let mut sim = Simulation::new(
            Recorder {
                seen: vec![],
                draws: vec![],
            },
            1,
        );
        sim.step_until(SimTime::from_nanos(7));
        assert_eq!(sim.model().seen, vec![(5, 99)]);
        assert_eq!(sim.now(), SimTime::from_nanos(7));
        sim.run();
        assert_eq!(sim.model().seen.len(), 7);
    }
}
