//! Agreement between pseudo labels and true groups: purity, adjusted Rand index and
//! normalised mutual information (arithmetic mean of the entropies, scikit-learn's default).
//! Used only for reporting; no decision reads them.

use std::collections::BTreeMap;

/// The contingency table of two labelings of the same samples.
struct Contingency {
    n: f64,
    cells: BTreeMap<(i64, i64), f64>,
    rows: BTreeMap<i64, f64>,
    columns: BTreeMap<i64, f64>,
}

impl Contingency {
    fn new(predicted: &[i64], truth: &[i64]) -> Self {
        let mut cells = BTreeMap::new();
        let mut rows = BTreeMap::new();
        let mut columns = BTreeMap::new();
        for (&p, &t) in predicted.iter().zip(truth) {
            *cells.entry((p, t)).or_insert(0.0) += 1.0;
            *rows.entry(p).or_insert(0.0) += 1.0;
            *columns.entry(t).or_insert(0.0) += 1.0;
        }
        Self { n: predicted.len() as f64, cells, rows, columns }
    }
}

/// Share of samples whose true group is the majority group of their cluster.
pub fn purity(predicted: &[i64], truth: &[i64]) -> f64 {
    let table = Contingency::new(predicted, truth);
    if table.n == 0.0 {
        return 1.0;
    }
    let mut best: BTreeMap<i64, f64> = BTreeMap::new();
    for (&(p, _), &count) in &table.cells {
        let slot = best.entry(p).or_insert(0.0);
        *slot = slot.max(count);
    }
    best.values().sum::<f64>() / table.n
}

/// Adjusted Rand index; 1 for identical partitions (also when both have one cluster).
pub fn adjusted_rand_index(predicted: &[i64], truth: &[i64]) -> f64 {
    let table = Contingency::new(predicted, truth);
    let pairs = |x: f64| x * (x - 1.0) / 2.0;
    let index: f64 = table.cells.values().map(|&c| pairs(c)).sum();
    let a: f64 = table.rows.values().map(|&c| pairs(c)).sum();
    let b: f64 = table.columns.values().map(|&c| pairs(c)).sum();
    let total = pairs(table.n);
    if total == 0.0 {
        return 1.0;
    }
    let expected = a * b / total;
    let maximum = (a + b) / 2.0;
    if maximum == expected {
        return 1.0;
    }
    (index - expected) / (maximum - expected)
}

/// Normalised mutual information with the arithmetic-mean normaliser.
pub fn normalised_mutual_information(predicted: &[i64], truth: &[i64]) -> f64 {
    let table = Contingency::new(predicted, truth);
    let n = table.n;
    let entropy =
        |counts: &BTreeMap<i64, f64>| -counts.values().map(|&c| c / n * (c / n).ln()).sum::<f64>();
    let (hp, ht) = (entropy(&table.rows), entropy(&table.columns));
    if table.rows.len() == table.columns.len() && table.rows.len() <= 1 {
        return 1.0;
    }
    let mutual: f64 = table
        .cells
        .iter()
        .map(|(&(p, t), &c)| c / n * (c * n / (table.rows[&p] * table.columns[&t])).ln())
        .sum();
    let normaliser = (hp + ht) / 2.0;
    if normaliser <= 0.0 {
        return 0.0;
    }
    (mutual / normaliser).clamp(0.0, 1.0)
}
