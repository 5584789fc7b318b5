//! The report as data: what the Markdown and HTML renderers lay out, and the text of every
//! table cell, so that both formats say exactly the same thing.
//!
//! Accuracies are shown in percent with two decimals as `mean ± std` over repeats (population
//! standard deviation); every column header names its weighting.

use crate::diagnostics::DiagnosticsDoc;
use crate::results::{is_pseudo_group_row, GapBaseline, ResultRow};

/// Everything a report shows.
#[derive(Clone, Debug)]
pub struct Report {
    pub title: String,
    pub rows: Vec<ResultRow>,
    pub baseline: Option<GapBaseline>,
    pub diagnostics: Vec<DiagnosticsDoc>,
    pub figures: Vec<Figure>,
    /// Inputs that could not be shown, and why.
    pub notes: Vec<String>,
    pub provenance: Provenance,
}

/// Where a figure belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Eigenvalues,
    Heatmaps,
    Training,
}

/// One PNG figure with its caption.
#[derive(Clone, Debug)]
pub struct Figure {
    pub section: Section,
    pub caption: String,
    pub png: Vec<u8>,
}

/// What produced the report from what.
#[derive(Clone, Debug)]
pub struct Provenance {
    pub stage_id: String,
    pub seed: u64,
    pub version: String,
    pub code_fingerprint: String,
    pub inputs: Vec<InputDigest>,
}

/// The blake3 digest of one input artefact.
#[derive(Clone, Debug)]
pub struct InputDigest {
    pub port: String,
    pub index: usize,
    pub artefact: String,
    pub digest: String,
}

/// Headers of the results table.
pub const RESULT_HEADERS: [&str; 11] = [
    "Method",
    "Groups used",
    "Group source",
    "Groups",
    "Chosen C",
    "Worst-group accuracy (%)",
    "Mean accuracy, train-weighted (%)",
    "Accuracy, unweighted (%)",
    "Balanced accuracy, mean class recall (%)",
    "WGA gap recovered (%)",
    "Repeats",
];

/// Headers of the pseudo-group quality table.
pub const QUALITY_HEADERS: [&str; 9] = [
    "Clustering",
    "Partition",
    "n",
    "k (rule)",
    "Components",
    "Cluster sizes",
    "ARI",
    "NMI",
    "Purity",
];

/// Headers of the provenance table.
pub const INPUT_HEADERS: [&str; 4] = ["Port", "#", "Artefact", "blake3"];

/// The cells of one results row.
pub fn result_cells(row: &ResultRow, baseline: Option<GapBaseline>) -> Vec<String> {
    let recovered = baseline
        .filter(|_| is_pseudo_group_row(row))
        .and_then(|b| b.recovered(row.worst_group_accuracy.mean));
    vec![
        row.label.clone(),
        row.groups.clone(),
        or_dash(&row.group_source),
        row.n_groups.to_string(),
        row.chosen_c.map_or_else(|| "-".to_string(), |c| format!("{c}")),
        percent_pm(row.worst_group_accuracy.mean, row.worst_group_accuracy.std),
        percent_pm(row.mean_accuracy.mean, row.mean_accuracy.std),
        percent_pm(row.accuracy.mean, row.accuracy.std),
        percent_pm(row.balanced_accuracy.mean, row.balanced_accuracy.std),
        recovered.map_or_else(|| "-".to_string(), |r| format!("{:.1}", 100.0 * r)),
        row.repeats.to_string(),
    ]
}

/// The sentence that states how much of the ERM-to-oracle gap each pseudo-group row closes.
pub fn gap_sentence(rows: &[ResultRow], baseline: Option<GapBaseline>) -> String {
    let Some(baseline) = baseline else {
        return "Worst-group gap recovered: not available (it needs an ERM row, groups `none`, \
                and a DFR row with true groups, groups `true`)."
            .to_string();
    };
    let parts: Vec<String> = rows
        .iter()
        .filter(|r| is_pseudo_group_row(r))
        .map(|r| match baseline.recovered(r.worst_group_accuracy.mean) {
            Some(share) => format!("{} {:.1}%", r.label, 100.0 * share),
            None => format!("{} n/a", r.label),
        })
        .collect();
    let averaged = if baseline.erm_rows > 1 || baseline.truth_rows > 1 {
        format!(
            " (means over {} ERM and {} true-group rows)",
            baseline.erm_rows, baseline.truth_rows
        )
    } else {
        String::new()
    };
    let listed =
        if parts.is_empty() { "no pseudo-group rows".to_string() } else { parts.join(", ") };
    format!(
        "Worst-group gap recovered, (WGA - WGA_ERM) / (WGA_true - WGA_ERM), with ERM at {} and \
         DFR (true groups) at {}{averaged}: {listed}.",
        percent(baseline.erm),
        percent(baseline.truth),
    )
}

/// The rows of the pseudo-group quality table.
pub fn quality_rows(docs: &[DiagnosticsDoc]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for doc in docs {
        for p in &doc.partitions {
            let k = match (p.k, &p.k_rule) {
                (Some(k), Some(rule)) => format!("{k} ({rule})"),
                (Some(k), None) => k.to_string(),
                (None, _) => "-".to_string(),
            };
            let sizes: Vec<String> = p.cluster_sizes.iter().map(usize::to_string).collect();
            rows.push(vec![
                doc.title.clone(),
                p.name.clone(),
                p.n.map_or_else(|| "-".to_string(), |n| n.to_string()),
                k,
                p.components.map_or_else(|| "-".to_string(), |c| c.to_string()),
                if sizes.is_empty() { "-".to_string() } else { sizes.join(", ") },
                score(p.adjusted_rand_index),
                score(p.nmi),
                score(p.purity),
            ]);
        }
    }
    rows
}

/// The rows of the provenance inputs table.
pub fn input_rows(provenance: &Provenance) -> Vec<Vec<String>> {
    provenance
        .inputs
        .iter()
        .map(|i| vec![i.port.clone(), i.index.to_string(), i.artefact.clone(), i.digest.clone()])
        .collect()
}

/// The provenance facts as (name, value) pairs.
pub fn provenance_facts(provenance: &Provenance) -> Vec<(&'static str, String)> {
    vec![
        ("Stage", provenance.stage_id.clone()),
        ("Seed", provenance.seed.to_string()),
        ("exmap-report version", provenance.version.clone()),
        ("Code fingerprint", provenance.code_fingerprint.clone()),
    ]
}

/// `mean ± std` in percent, or `n/a`.
pub fn percent_pm(mean: f64, std: f64) -> String {
    match (mean.is_finite(), std.is_finite()) {
        (true, true) => format!("{:.2} ± {:.2}", 100.0 * mean, 100.0 * std),
        (true, false) => format!("{:.2}", 100.0 * mean),
        _ => "n/a".to_string(),
    }
}

fn percent(value: f64) -> String {
    if value.is_finite() {
        format!("{:.2}%", 100.0 * value)
    } else {
        "n/a".to_string()
    }
}

fn score(value: Option<f64>) -> String {
    value.filter(|v| v.is_finite()).map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_have_two_decimals_and_missing_values_say_so() {
        assert_eq!(percent_pm(0.72361, 0.01234), "72.36 ± 1.23");
        assert_eq!(percent_pm(0.5, f64::NAN), "50.00");
        assert_eq!(percent_pm(f64::NAN, 0.1), "n/a");
    }
}
