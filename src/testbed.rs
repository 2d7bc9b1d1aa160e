//! `asgd-sim testbed`: a network you can hold in your hand. From a topology of hosts on one
//! switch ([`plan`]) it builds, on this Linux machine as root, one network namespace per host
//! and one for the switch, joined by veth pairs, each port's rate set by tc ([`net`]); then
//! measures it ([`probe`]): each host's latency and goodput to a target host, and concurrent
//! TCP flows into that host against the finish times the simulator's max-min network gives
//! for the same flows at the measured rates. Everything it made is deleted when it ends, on
//! error and on Ctrl-C too.

pub mod net;
pub mod plan;
pub mod probe;
pub mod ranks;
pub mod validate;

pub use net::{Sharing, Testbed};
pub use plan::Plan;

/// Why a testbed could not be built or measured.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// The topology or the flows asked for do not make a testbed (bad input).
    #[error("{0}")]
    Unfit(String),
    /// This machine cannot build one (not root, no iproute2).
    #[error("{0}")]
    Cannot(String),
    /// A command that builds it failed.
    #[error("`{command}` failed: {cause}")]
    System { command: String, cause: String },
    /// Measuring it failed.
    #[error("measuring the testbed: {0}")]
    Probe(String),
    #[error("interrupted; the testbed was torn down")]
    Interrupted,
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    #[error(transparent)]
    Run(#[from] crate::outcome::RunError),
}

impl TestbedError {
    /// Whether the user can fix it by changing what they asked for (exit status 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            TestbedError::Unfit(_) | TestbedError::Cannot(_) | TestbedError::Input(_)
        )
    }
}
