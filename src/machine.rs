//! The machine being simulated: its topology (what is connected to what), the network model that
//! shares link bandwidth among transfers, the devices that compute (GPUs) and serve (host
//! cores), and the time sharing of a shared-memory host's cores among its threads. Nothing
//! here knows about learners, shards or algorithms.

pub mod cpu;
pub mod device;
pub mod network;
pub mod threads;
pub mod topology;
