//! Mean and population standard deviation of metrics over repeats.

use std::collections::BTreeMap;

use crate::{MetricSummary, RepeatMetrics};

/// A named scalar metric of one repeat.
type Metric = (&'static str, fn(&RepeatMetrics) -> f64);

/// Mean and population standard deviation (divided by n, as numpy's default) of `values`;
/// NaN for both when `values` is empty.
pub fn mean_std(values: &[f64]) -> MetricSummary {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    MetricSummary { mean, std: variance.sqrt() }
}

/// Summaries of every scalar metric of `repeats`, keyed `worst_group_accuracy`,
/// `mean_accuracy`, `accuracy`, `balanced_accuracy`.
pub fn summarise(repeats: &[RepeatMetrics]) -> BTreeMap<String, MetricSummary> {
    let metrics: [Metric; 4] = [
        ("worst_group_accuracy", |r| r.worst_group_accuracy),
        ("mean_accuracy", |r| r.mean_accuracy),
        ("accuracy", |r| r.accuracy),
        ("balanced_accuracy", |r| r.balanced_accuracy),
    ];
    metrics
        .iter()
        .map(|(name, get)| {
            let values: Vec<f64> = repeats.iter().map(get).collect();
            (name.to_string(), mean_std(&values))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_std_divides_by_n() {
        // Values 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations sum to 32, 32 / 8 = 4.
        let summary = mean_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(summary, MetricSummary { mean: 5.0, std: 2.0 });
        assert_eq!(mean_std(&[0.25]), MetricSummary { mean: 0.25, std: 0.0 });
    }

    #[test]
    fn summary_covers_every_scalar_metric() {
        let repeat = |wga: f64| RepeatMetrics {
            worst_group_accuracy: wga,
            mean_accuracy: 0.9,
            accuracy: 0.8,
            balanced_accuracy: 0.7,
            group_accuracy: BTreeMap::new(),
        };
        let summary = summarise(&[repeat(0.5), repeat(0.7)]);
        assert_eq!(summary.len(), 4);
        let wga = summary["worst_group_accuracy"];
        assert!((wga.mean - 0.6).abs() < 1e-12 && (wga.std - 0.1).abs() < 1e-12);
        assert_eq!(summary["accuracy"], MetricSummary { mean: 0.8, std: 0.0 });
    }
}
