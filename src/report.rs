//! Turning a run's measurements into things people read: `summary.json`, a Chrome trace, a
//! terminal table, and the output directory that holds them, written so that no half-written
//! result is ever left behind.

pub mod curve;
pub mod figures;
pub mod html;
pub mod output;
pub mod progress_file;
pub mod record;
pub mod results;
pub mod summary;
pub mod sweep;
pub mod table;
pub mod trace;
