//! The `retrain_result` JSON record (see `exmap_stage::types::RETRAIN_RESULT`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One method's result on the test split, as written by the `dfr` and `evaluate` stages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetrainResult {
    /// The method: `erm`, `dfr`.
    pub method: String,
    /// Where the balancing groups came from: `none` (ERM), `true`, `classes`, `local`,
    /// `global`, `embedding-clusters` ...
    pub groups: String,
    /// The row label a report shows, e.g. `DFR (ExMap global)`.
    pub label: String,
    /// Which stage produced the groups, for provenance (empty when none).
    pub group_source: String,
    /// Number of distinct balancing groups used (0 for ERM).
    pub n_groups: usize,
    /// Chosen hyperparameters, e.g. `{"C": 0.3}`.
    pub chosen: BTreeMap<String, f64>,
    /// Tuning score of every candidate (summed worst-group accuracy over rounds).
    pub tuning: Vec<TuningScore>,
    /// Test metrics of every repeat of the final fit.
    pub repeats: Vec<RepeatMetrics>,
    /// Mean and standard deviation over the repeats.
    pub summary: BTreeMap<String, MetricSummary>,
    pub seconds: f64,
}

/// The tuning score of one hyperparameter value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuningScore {
    pub c: f64,
    pub score: f64,
}

/// Test metrics of one fitted classifier, all on the true test groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepeatMetrics {
    pub worst_group_accuracy: f64,
    /// Per-group accuracies weighted by the training split's group shares.
    pub mean_accuracy: f64,
    /// Plain accuracy over all test samples.
    pub accuracy: f64,
    /// Mean of per-class recalls.
    pub balanced_accuracy: f64,
    /// Accuracy of every true test group, keyed by group id.
    pub group_accuracy: BTreeMap<String, f64>,
}

/// Mean and (population) standard deviation of a metric over repeats.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    pub mean: f64,
    pub std: f64,
}
