//! Group-robustness metrics and the result record that retraining and evaluation stages
//! write and the report reads.
//!
//! Every accuracy figure here is labelled with its weighting, because the literature uses
//! several: worst-group accuracy (the minimum over the true test groups), mean accuracy as
//! each group's test accuracy weighted by that group's share of the *training* split (the
//! Waterbirds convention), plain test accuracy, and balanced accuracy (the mean of per-class
//! recalls).

mod accuracy;
mod error;
mod record;
mod summary;

pub use accuracy::{
    accuracy, balanced_accuracy, evaluate, group_accuracies, group_shares,
    train_weighted_mean_accuracy, worst_group_accuracy, GroupAccuracy,
};
pub use error::MetricsError;
pub use record::{MetricSummary, RepeatMetrics, RetrainResult, TuningScore};
pub use summary::{mean_std, summarise};
