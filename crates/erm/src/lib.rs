//! The `erm` stage: trains a ResNet classifier on the training split with class labels only.
//!
//! Plain empirical risk minimisation as in the reference: SGD with momentum and weight decay,
//! cross-entropy, a cosine (or constant) learning rate over the epochs, random resized crops
//! and horizontal flips for training, and the checkpoint with the best overall validation
//! accuracy kept. True groups are measured per epoch for the log only and never steer a
//! decision. Images stream from the memory-mapped `images` artefact one batch at a time.

mod augment;
mod data;
mod init;
mod params;
mod stage;
mod train;

pub use params::{ErmParams, Normalise, RandomResizedCrop, Schedule};
pub use stage::Erm;
