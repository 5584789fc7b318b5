//! Group-balanced subsets, by the reference rule.
//!
//! Every group is cut to `m`, the size of the smallest group with more than
//! `min_group_size` members; groups with at most `min_group_size` members are kept whole.
//! Members are drawn by shuffling each group, so a subset is a function of the random state.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::Rng;

/// No group is large enough to set the balancing size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no balancing group has more than {min_group_size} members (group sizes: {sizes})")]
pub struct BalanceError {
    pub min_group_size: usize,
    pub sizes: String,
}

/// A balanced subset of `candidates` (sample indices) by `group[sample]`, listed group by
/// group in increasing group id.
pub fn balanced_subset<R: Rng + ?Sized>(
    rng: &mut R,
    candidates: &[usize],
    group: &[i64],
    min_group_size: usize,
) -> Result<Vec<usize>, BalanceError> {
    let mut members: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for &i in candidates {
        members.entry(group[i]).or_default().push(i);
    }
    let Some(size) = members.values().map(Vec::len).filter(|n| *n > min_group_size).min() else {
        let sizes = members.iter().map(|(g, m)| format!("{g}: {}", m.len())).collect::<Vec<_>>();
        return Err(BalanceError { min_group_size, sizes: sizes.join(", ") });
    };
    let mut subset = Vec::with_capacity(size * members.len());
    for group_members in members.values_mut() {
        group_members.shuffle(rng);
        subset.extend_from_slice(&group_members[..size.min(group_members.len())]);
    }
    Ok(subset)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn count(subset: &[usize], group: &[i64]) -> BTreeMap<i64, usize> {
        let mut counts = BTreeMap::new();
        for &i in subset {
            *counts.entry(group[i]).or_default() += 1;
        }
        counts
    }

    #[test]
    fn groups_are_cut_to_the_smallest_group_above_the_threshold() {
        // Sizes: group 0 has 50, group 1 has 12, group 2 has 3 (kept whole), group 3 has 20.
        let sizes = [(0, 50), (1, 12), (2, 3), (3, 20)];
        let group: Vec<i64> = sizes.iter().flat_map(|&(g, n)| std::iter::repeat_n(g, n)).collect();
        let all: Vec<usize> = (0..group.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let subset = balanced_subset(&mut rng, &all, &group, 5).unwrap();
        assert_eq!(count(&subset, &group), [(0, 12), (1, 12), (2, 3), (3, 12)].into());
        let mut unique = subset.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), subset.len(), "no sample drawn twice");
    }

    #[test]
    fn balanced_subsets_never_draw_an_empty_group() {
        // Many random group layouts, including groups of one to six members, and random
        // halves of them as candidates (as the tuning rounds use).
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for case in 0..500 {
            let n_groups = rng.random_range(1..8);
            let group: Vec<i64> = (0..n_groups)
                .flat_map(|g| {
                    let n = if rng.random_bool(0.4) {
                        rng.random_range(1..7)
                    } else {
                        rng.random_range(1..80)
                    };
                    std::iter::repeat_n(g as i64, n)
                })
                .collect();
            let mut candidates: Vec<usize> = (0..group.len()).collect();
            candidates.shuffle(&mut rng);
            candidates.truncate(group.len().div_ceil(2));
            let present = count(&candidates, &group);
            match balanced_subset(&mut rng, &candidates, &group, 5) {
                Ok(subset) => {
                    let drawn = count(&subset, &group);
                    assert_eq!(
                        drawn.keys().collect::<Vec<_>>(),
                        present.keys().collect::<Vec<_>>(),
                        "case {case}"
                    );
                    assert!(drawn.values().all(|n| *n > 0), "case {case}");
                }
                Err(err) => assert!(present.values().all(|n| *n <= 5), "case {case}: {err}"),
            }
        }
    }

    #[test]
    fn no_group_above_the_threshold_is_an_error_that_lists_sizes() {
        let group = [0, 0, 1];
        let err =
            balanced_subset(&mut ChaCha8Rng::seed_from_u64(0), &[0, 1, 2], &group, 5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no balancing group has more than 5 members (group sizes: 0: 2, 1: 1)"
        );
    }
}
