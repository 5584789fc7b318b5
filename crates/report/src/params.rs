//! Parameters of the `report` stage.

use serde::{Deserialize, Serialize};

/// What the report shows and how figures are drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportParams {
    /// The report's heading.
    pub title: String,
    /// Example heatmaps drawn beside each cluster's mean heatmap.
    pub examples_per_cluster: usize,
    /// Side of a flattened heatmap in pixels; 0 reads it from the heatmaps' `size` and
    /// `channels` metadata (or, without them, from a square `D` or `D / 3`).
    pub heatmap_side: usize,
}

impl Default for ReportParams {
    fn default() -> Self {
        Self { title: "ExMap report".to_string(), examples_per_cluster: 6, heatmap_side: 0 }
    }
}
