//! The machine being simulated: its topology (what is connected to what), the network model that
//! shares link bandwidth among transfers, and the devices that compute (GPUs) and serve (host
//! cores). Nothing here knows about learners, shards or algorithms.

pub mod device;
pub mod network;
pub mod topology;
