//! Accuracy metrics over predictions, class labels and group ids.
//!
//! Labels and groups are plain `i64` ids, so any number of classes and groups works. A group
//! or class that has no sample in the scored set has no accuracy: it is left out of every
//! minimum and mean here rather than counted as zero or one.

use std::collections::BTreeMap;

use crate::{MetricsError, RepeatMetrics};

/// Correct and total predictions of one group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupAccuracy {
    pub correct: usize,
    pub total: usize,
}

impl GroupAccuracy {
    /// The fraction correct; a group is only created with at least one sample.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.total as f64
    }
}

/// Plain accuracy: the fraction of `pred` equal to `y`.
pub fn accuracy(pred: &[i64], y: &[i64]) -> Result<f64, MetricsError> {
    check_lengths(pred, y, None)?;
    let correct = pred.iter().zip(y).filter(|(p, t)| p == t).count();
    Ok(correct as f64 / y.len() as f64)
}

/// Correct and total counts of every group that has at least one sample.
pub fn group_accuracies(
    pred: &[i64],
    y: &[i64],
    group: &[i64],
) -> Result<BTreeMap<i64, GroupAccuracy>, MetricsError> {
    check_lengths(pred, y, Some(group))?;
    let mut groups: BTreeMap<i64, GroupAccuracy> = BTreeMap::new();
    for ((p, t), g) in pred.iter().zip(y).zip(group) {
        let entry = groups.entry(*g).or_default();
        entry.total += 1;
        entry.correct += usize::from(p == t);
    }
    Ok(groups)
}

/// The lowest accuracy among the groups (those with samples); NaN when there are none.
pub fn worst_group_accuracy(groups: &BTreeMap<i64, GroupAccuracy>) -> f64 {
    groups.values().map(GroupAccuracy::accuracy).reduce(f64::min).unwrap_or(f64::NAN)
}

/// Each group's share of `groups`: its count over the total.
pub fn group_shares(groups: &[i64]) -> BTreeMap<i64, f64> {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for g in groups {
        *counts.entry(*g).or_default() += 1;
    }
    let total = groups.len() as f64;
    counts.into_iter().map(|(g, c)| (g, c as f64 / total)).collect()
}

/// Per-group accuracies weighted by the training split's group shares.
///
/// A training group with no scored sample contributes nothing, as in the reference (which
/// sums with NaNs dropped); shares are not renormalised.
pub fn train_weighted_mean_accuracy(
    groups: &BTreeMap<i64, GroupAccuracy>,
    train_shares: &BTreeMap<i64, f64>,
) -> f64 {
    train_shares
        .iter()
        .filter_map(|(g, share)| groups.get(g).map(|acc| share * acc.accuracy()))
        .sum()
}

/// The mean over the classes present in `y` of each class's recall.
pub fn balanced_accuracy(pred: &[i64], y: &[i64]) -> Result<f64, MetricsError> {
    let per_class = group_accuracies(pred, y, y)?;
    let sum: f64 = per_class.values().map(GroupAccuracy::accuracy).sum();
    Ok(sum / per_class.len() as f64)
}

/// Every test metric of one classifier's predictions, on the true groups.
pub fn evaluate(
    pred: &[i64],
    y: &[i64],
    group: &[i64],
    train_shares: &BTreeMap<i64, f64>,
) -> Result<RepeatMetrics, MetricsError> {
    let groups = group_accuracies(pred, y, group)?;
    Ok(RepeatMetrics {
        worst_group_accuracy: worst_group_accuracy(&groups),
        mean_accuracy: train_weighted_mean_accuracy(&groups, train_shares),
        accuracy: accuracy(pred, y)?,
        balanced_accuracy: balanced_accuracy(pred, y)?,
        group_accuracy: groups.iter().map(|(g, acc)| (g.to_string(), acc.accuracy())).collect(),
    })
}

fn check_lengths(pred: &[i64], y: &[i64], group: Option<&[i64]>) -> Result<(), MetricsError> {
    if y.is_empty() {
        return Err(MetricsError::Empty);
    }
    if pred.len() != y.len() {
        return Err(MetricsError::Length { what: "pred", expected: y.len(), found: pred.len() });
    }
    match group {
        Some(group) if group.len() != y.len() => {
            Err(MetricsError::Length { what: "group", expected: y.len(), found: group.len() })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waterbirds training group sizes (landbird/land, landbird/water, waterbird/land,
    /// waterbird/water), from the dataset's metadata.
    const WATERBIRDS_TRAIN: [(i64, usize); 4] = [(0, 3498), (1, 184), (2, 56), (3, 1057)];

    fn train_groups() -> Vec<i64> {
        WATERBIRDS_TRAIN.iter().flat_map(|&(g, n)| std::iter::repeat_n(g, n)).collect()
    }

    /// A test set of `n` samples per group (y = g / 2) whose first `correct[g]` samples of
    /// group `g` are predicted right and the rest wrong.
    fn test_set(n: usize, correct: [usize; 4]) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
        let (mut pred, mut y, mut group) = (Vec::new(), Vec::new(), Vec::new());
        for g in 0..4i64 {
            for i in 0..n {
                let label = g / 2;
                y.push(label);
                group.push(g);
                pred.push(if i < correct[g as usize] { label } else { 1 - label });
            }
        }
        (pred, y, group)
    }

    #[test]
    fn train_weighted_mean_uses_waterbirds_train_shares() {
        let shares = group_shares(&train_groups());
        let (pred, y, group) = test_set(100, [98, 75, 60, 95]);
        let metrics = evaluate(&pred, &y, &group, &shares).unwrap();

        // By hand: (3498 * 0.98 + 184 * 0.75 + 56 * 0.60 + 1057 * 0.95) / 4795
        //        = (3428.04 + 138 + 33.6 + 1004.15) / 4795 = 4603.79 / 4795.
        let expected = 4603.79 / 4795.0;
        assert!((metrics.mean_accuracy - expected).abs() < 1e-12, "{}", metrics.mean_accuracy);
        assert!((metrics.worst_group_accuracy - 0.60).abs() < 1e-12);
        // Plain accuracy counts every test sample once: (98 + 75 + 60 + 95) / 400.
        assert!((metrics.accuracy - 328.0 / 400.0).abs() < 1e-12);
        // Class 0 recall (98 + 75) / 200, class 1 recall (60 + 95) / 200.
        assert!((metrics.balanced_accuracy - (173.0 / 200.0 + 155.0 / 200.0) / 2.0).abs() < 1e-12);
        assert_eq!(metrics.group_accuracy["1"], 0.75);
    }

    #[test]
    fn constant_predictor_has_zero_worst_group_accuracy() {
        let (_, y, group) = test_set(10, [0; 4]);
        let pred = vec![0; y.len()];
        let metrics = evaluate(&pred, &y, &group, &group_shares(&train_groups())).unwrap();
        assert_eq!(metrics.worst_group_accuracy, 0.0);
        assert_eq!(metrics.balanced_accuracy, 0.5);
        // Groups 0 and 1 (class 0) are all right: their train shares sum to 3682 / 4795.
        assert!((metrics.mean_accuracy - 3682.0 / 4795.0).abs() < 1e-12);
    }

    #[test]
    fn many_classes_and_groups_are_scored() {
        // Three classes, five groups; group 4 is entirely wrong.
        let y = [0, 1, 2, 0, 1, 2, 2];
        let group = [0, 1, 2, 3, 3, 4, 4];
        let pred = [0, 1, 2, 0, 0, 1, 0];
        let groups = group_accuracies(&pred, &y, &group).unwrap();
        assert_eq!(groups.len(), 5);
        assert_eq!(groups[&3], GroupAccuracy { correct: 1, total: 2 });
        assert_eq!(worst_group_accuracy(&groups), 0.0);
        // Recalls: class 0 2/2, class 1 1/2, class 2 1/3.
        let expected = (1.0 + 0.5 + 1.0 / 3.0) / 3.0;
        assert!((balanced_accuracy(&pred, &y).unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn groups_missing_from_the_test_set_are_left_out() {
        let shares: BTreeMap<i64, f64> = [(0, 0.5), (1, 0.3), (2, 0.2)].into();
        let groups = group_accuracies(&[0, 1], &[0, 0], &[0, 1]).unwrap();
        assert_eq!(worst_group_accuracy(&groups), 0.0);
        assert!((train_weighted_mean_accuracy(&groups, &shares) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn mismatched_lengths_and_empty_inputs_are_errors() {
        let check = |result: Result<f64, MetricsError>, message: &str| {
            assert_eq!(result.unwrap_err().to_string(), message);
        };
        check(accuracy(&[0], &[0, 1]), "`pred` has 1 entries where 2 are expected");
        check(accuracy(&[], &[]), "no samples to score");
        let err = group_accuracies(&[0, 1], &[0, 1], &[0]).unwrap_err();
        assert_eq!(err.to_string(), "`group` has 1 entries where 2 are expected");
    }
}
