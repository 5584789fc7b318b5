//! DFR (deep feature reweighting) last-layer retraining, as ExMap uses it.
//!
//! On the validation split's penultimate features, an L1-regularised logistic regression is
//! tuned over a grid of strengths by the worst balancing-group accuracy on held-out halves,
//! then refitted on group-balanced subsets and averaged into one linear classifier. The
//! balancing groups are the true groups, the classes, or ExMap's local or global pseudo
//! groups. Test metrics always use the true groups.
//!
//! [`solver`] solves liblinear's L1 logistic problem; [`model`] turns it into (multi-class)
//! classifiers; [`balance`] draws balanced subsets; [`procedure`] runs tuning and refits on
//! in-memory features; [`DfrStage`] is the pipeline stage around it.

pub mod balance;
mod inputs;
pub mod model;
pub mod procedure;
pub mod solver;
mod stage;

pub use procedure::{run_dfr, DfrConfig, DfrError, DfrOutcome, Tuning, ValidationSet};
pub use stage::{DfrParams, DfrStage, GroupSource};
