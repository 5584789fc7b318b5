//! The results table: one row per `retrain_result`, in the paper's order, with the share of
//! the ERM-to-oracle worst-group gap that each pseudo-group row recovers.
//!
//! Rows are ordered by where their balancing groups came from (`none`, `true`, `classes`,
//! `embedding-clusters`, `local`, `global`, then any other source by name), then by label and
//! group source, so that the cells of a sweep line up under each other. A record without a
//! summary entry for a metric is summarised from its repeats.

use std::path::Path;

use exmap_artefact::{read_json, Table};
use exmap_metrics::{summarise, MetricSummary, RetrainResult};
use exmap_stage::StageError;

/// The group sources in the order the paper's table lists them.
const GROUP_ORDER: [&str; 6] = ["none", "true", "classes", "embedding-clusters", "local", "global"];

/// One row of the results table.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    pub method: String,
    pub groups: String,
    pub label: String,
    pub group_source: String,
    pub n_groups: usize,
    /// The chosen inverse regularisation strength `C`, when the method tuned one.
    pub chosen_c: Option<f64>,
    pub worst_group_accuracy: MetricSummary,
    /// Per-group test accuracy weighted by the training split's group shares.
    pub mean_accuracy: MetricSummary,
    pub accuracy: MetricSummary,
    pub balanced_accuracy: MetricSummary,
    pub repeats: usize,
}

/// The worst-group accuracies that bound the gap: ERM (no groups) and DFR with true groups.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GapBaseline {
    pub erm: f64,
    pub truth: f64,
    /// How many rows were averaged for each end (more than one in a sweep).
    pub erm_rows: usize,
    pub truth_rows: usize,
}

impl GapBaseline {
    /// The share of the gap that a worst-group accuracy `wga` recovers; `None` when the gap
    /// is empty or a value is not finite.
    pub fn recovered(&self, wga: f64) -> Option<f64> {
        gap_recovered(wga, self.erm, self.truth)
    }
}

/// `(wga - wga_erm) / (wga_true - wga_erm)`; `None` when the gap is below 1e-12 or a value
/// is not finite.
pub fn gap_recovered(wga: f64, erm: f64, truth: f64) -> Option<f64> {
    let gap = truth - erm;
    let finite = wga.is_finite() && erm.is_finite() && truth.is_finite();
    (finite && gap.abs() > 1e-12).then(|| (wga - erm) / gap)
}

/// Reads one `retrain_result` JSON file.
pub fn read_result(path: &Path) -> Result<RetrainResult, StageError> {
    Ok(read_json(path)?)
}

/// The rows of `results` in table order.
pub fn result_rows(results: &[RetrainResult]) -> Vec<ResultRow> {
    let mut rows: Vec<ResultRow> = results.iter().map(result_row).collect();
    rows.sort_by(|a, b| {
        group_rank(&a.groups)
            .cmp(&group_rank(&b.groups))
            .then_with(|| a.label.cmp(&b.label))
            .then_with(|| a.group_source.cmp(&b.group_source))
    });
    rows
}

/// Where a group source sorts: its place in the paper's order, or after all of them (ties
/// among unknown sources are broken by name).
pub fn group_rank(groups: &str) -> (usize, String) {
    match GROUP_ORDER.iter().position(|&g| g == groups) {
        Some(rank) => (rank, String::new()),
        None => (GROUP_ORDER.len(), groups.to_string()),
    }
}

/// The row label a report shows for a record without one.
pub fn default_label(method: &str, groups: &str) -> String {
    match groups {
        "none" => "ERM".to_string(),
        "true" => "DFR (true groups)".to_string(),
        "classes" => "DFR (classes)".to_string(),
        "embedding-clusters" => "GEORGE-style".to_string(),
        "local" => "ExMap local".to_string(),
        "global" => "ExMap global".to_string(),
        other => format!("{} ({other})", method.to_uppercase()),
    }
}

/// The mean worst-group accuracy of the ERM rows and of the true-group rows, when both exist.
pub fn gap_baseline(rows: &[ResultRow]) -> Option<GapBaseline> {
    let mean_wga = |groups: &str| {
        let values: Vec<f64> = rows
            .iter()
            .filter(|r| r.groups == groups)
            .map(|r| r.worst_group_accuracy.mean)
            .collect();
        (!values.is_empty())
            .then(|| (values.iter().sum::<f64>() / values.len() as f64, values.len()))
    };
    let (erm, erm_rows) = mean_wga("none")?;
    let (truth, truth_rows) = mean_wga("true")?;
    Some(GapBaseline { erm, truth, erm_rows, truth_rows })
}

/// Whether a row balances on pseudo groups (or classes): every row but ERM and the oracle.
pub fn is_pseudo_group_row(row: &ResultRow) -> bool {
    row.groups != "none" && row.groups != "true"
}

/// The `results` Parquet table: the columns of `exmap_stage::types::RESULTS` then `label`,
/// `group_source`, `n_groups`, `chosen_c` (NaN when none), `accuracy_std`,
/// `balanced_accuracy_std`, `repeats` and `gap_recovered` (NaN where undefined). Accuracies
/// are fractions in [0, 1].
pub fn results_table(rows: &[ResultRow], baseline: Option<GapBaseline>) -> Table {
    let text = |get: fn(&ResultRow) -> &str| rows.iter().map(get).collect::<Vec<_>>();
    let number = |get: &dyn Fn(&ResultRow) -> f64| rows.iter().map(get).collect::<Vec<_>>();
    let gap = |r: &ResultRow| {
        baseline
            .filter(|_| is_pseudo_group_row(r))
            .and_then(|b| b.recovered(r.worst_group_accuracy.mean))
            .unwrap_or(f64::NAN)
    };
    Table::builder()
        .str("method", &text(|r| &r.method))
        .str("groups", &text(|r| &r.groups))
        .f64("worst_group_accuracy", number(&|r| r.worst_group_accuracy.mean))
        .f64("worst_group_accuracy_std", number(&|r| r.worst_group_accuracy.std))
        .f64("mean_accuracy", number(&|r| r.mean_accuracy.mean))
        .f64("mean_accuracy_std", number(&|r| r.mean_accuracy.std))
        .f64("accuracy", number(&|r| r.accuracy.mean))
        .f64("balanced_accuracy", number(&|r| r.balanced_accuracy.mean))
        .str("label", &text(|r| &r.label))
        .str("group_source", &text(|r| &r.group_source))
        .i64("n_groups", rows.iter().map(|r| r.n_groups as i64).collect())
        .f64("chosen_c", number(&|r| r.chosen_c.unwrap_or(f64::NAN)))
        .f64("accuracy_std", number(&|r| r.accuracy.std))
        .f64("balanced_accuracy_std", number(&|r| r.balanced_accuracy.std))
        .i64("repeats", rows.iter().map(|r| r.repeats as i64).collect())
        .f64("gap_recovered", number(&gap))
        .build()
}

fn result_row(result: &RetrainResult) -> ResultRow {
    let from_repeats = summarise(&result.repeats);
    let metric = |name: &str| {
        result
            .summary
            .get(name)
            .or_else(|| from_repeats.get(name).filter(|_| !result.repeats.is_empty()))
            .copied()
            .unwrap_or(MetricSummary { mean: f64::NAN, std: f64::NAN })
    };
    let label = if result.label.trim().is_empty() {
        default_label(&result.method, &result.groups)
    } else {
        result.label.clone()
    };
    ResultRow {
        method: result.method.clone(),
        groups: result.groups.clone(),
        label,
        group_source: result.group_source.clone(),
        n_groups: result.n_groups,
        chosen_c: result.chosen.get("C").or_else(|| result.chosen.get("c")).copied(),
        worst_group_accuracy: metric("worst_group_accuracy"),
        mean_accuracy: metric("mean_accuracy"),
        accuracy: metric("accuracy"),
        balanced_accuracy: metric("balanced_accuracy"),
        repeats: result.repeats.len(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use exmap_metrics::RepeatMetrics;

    use super::*;

    fn record(groups: &str, label: &str, wga: f64) -> RetrainResult {
        let repeat = RepeatMetrics {
            worst_group_accuracy: wga,
            mean_accuracy: 0.9,
            accuracy: 0.8,
            balanced_accuracy: 0.85,
            group_accuracy: BTreeMap::new(),
        };
        RetrainResult {
            method: if groups == "none" { "erm" } else { "dfr" }.to_string(),
            groups: groups.to_string(),
            label: label.to_string(),
            group_source: String::new(),
            n_groups: 4,
            chosen: BTreeMap::from([("C".to_string(), 0.3)]),
            tuning: Vec::new(),
            repeats: vec![repeat],
            summary: BTreeMap::new(),
            seconds: 1.0,
        }
    }

    #[test]
    fn gap_recovered_on_a_hand_example() {
        // ERM 0.60, oracle 0.90: a gap of 0.30. 0.84 recovers 0.24 / 0.30 = 0.8 of it.
        let cases = [(0.84, Some(0.8)), (0.60, Some(0.0)), (0.90, Some(1.0)), (0.45, Some(-0.5))];
        for (wga, expected) in cases {
            let got = gap_recovered(wga, 0.60, 0.90);
            assert!((got.unwrap() - expected.unwrap()).abs() < 1e-12, "{wga}: {got:?}");
        }
        assert_eq!(gap_recovered(0.7, 0.8, 0.8), None);
        assert_eq!(gap_recovered(f64::NAN, 0.6, 0.9), None);
    }

    #[test]
    fn rows_follow_the_paper_order_then_unknown_sources_by_name() {
        let results = [
            record("global", "ExMap global", 0.8),
            record("zeta", "", 0.5),
            record("none", "ERM", 0.6),
            record("alpha", "", 0.5),
            record("local", "ExMap local", 0.8),
            record("true", "DFR (true groups)", 0.9),
            record("embedding-clusters", "", 0.7),
            record("classes", "DFR (classes)", 0.7),
        ];
        let order: Vec<String> = result_rows(&results).into_iter().map(|r| r.groups).collect();
        let expected =
            ["none", "true", "classes", "embedding-clusters", "local", "global", "alpha", "zeta"];
        assert_eq!(order, expected);
    }

    #[test]
    fn missing_summary_is_computed_from_repeats_and_labels_are_filled_in() {
        let rows = result_rows(&[record("embedding-clusters", "", 0.7)]);
        assert_eq!(rows[0].label, "GEORGE-style");
        assert_eq!(rows[0].worst_group_accuracy, MetricSummary { mean: 0.7, std: 0.0 });
        assert_eq!(rows[0].chosen_c, Some(0.3));
    }

    #[test]
    fn baseline_averages_the_rows_of_a_sweep() {
        let results = [
            record("none", "ERM a", 0.5),
            record("none", "ERM b", 0.7),
            record("true", "DFR", 0.9),
        ];
        let baseline = gap_baseline(&result_rows(&results)).unwrap();
        assert!((baseline.erm - 0.6).abs() < 1e-12 && baseline.erm_rows == 2);
        assert!((baseline.recovered(0.75).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(gap_baseline(&result_rows(&results[..2])), None);
    }
}
