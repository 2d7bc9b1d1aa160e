//! Parameter sweeps: a base scenario, fixed overrides and axes whose cartesian product gives the
//! points; every point is one simulator run (or, with `backend = "real"`, one real run on this
//! host) with its own result directory. A sweep can be cut
//! into shards (one per Slurm array task), stopped at any moment and started again: finished
//! points are never run twice and a result directory is either whole or absent.
//!
//! This module decides what to run and runs it. Reading results back and drawing them is
//! `report::sweep`'s job.

pub mod record;
pub mod runner;
pub mod slurm;
pub mod spec;

pub use runner::{SweepOptions, SweepOutcome, run};
pub use spec::{Axis, Backend, Point, Shard, SweepSpec};
