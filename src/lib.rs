//! asgd-sim: a discrete-event simulator of asynchronous SGD on HPC machines.
//!
//! Data flows one way: a [`scenario`] (checked input) names a [`machine`] (topology, network,
//! devices), a [`workload`] (model, data) and an [`algorithm`]; [`setup`] builds what both
//! backends need from it; the simulator ([`run`] driving the models of [`sim`] on the
//! [`engine`], with the [`cluster`] roles placed on the machine) and the real backend
//! ([`real`]) each produce an [`outcome`]; [`report`] turns outcomes into files and tables.

pub mod algorithm;
pub mod calibrate;
pub mod cluster;
pub mod data;
pub mod engine;
pub mod faults;
pub mod input;
pub mod machine;
pub mod numerics;
pub mod observe;
pub mod outcome;
pub mod predict;
pub mod real;
pub mod report;
pub mod run;
pub mod scenario;
pub mod setup;
pub mod shell;
pub mod sim;
pub mod stats;
pub mod sweep;
pub mod testbed;
pub mod theory;
pub mod time;
pub mod training;
pub mod validate;
pub mod workload;
