//! Data sets for training on real data: the in-memory [`Dataset`] with its mini-batch
//! gathering, loaders for the real formats ([`cifar10`], [`mnist`], [`libsvm`]), generators
//! of synthetic sets that need no download ([`synthetic`]), and the fetching of the official
//! archives ([`download`](mod@download)). Data flow one way: files or a seed -> `Dataset`
//! -> [`Batch`]. Nothing here knows about models, time or the simulation; it must never
//! touch the simulation's random stream.

pub mod batch;
pub mod cifar10;
pub mod dataset;
pub mod download;
pub mod libsvm;
pub mod mnist;
mod samples;
mod shape;
pub mod synthetic;

pub use batch::{Batch, BatchInputs};
pub use dataset::{ChannelStats, Dataset, DatasetError, ImageShape, InputKind, Samples, Split};
pub use download::{DownloadError, DownloadObserver, DownloadSpec, Downloaded, download, get};
