//! Pseudo groups from per-partition clusters.
//!
//! Local groups: the clusters of each class, numbered after those of the lower classes.
//! Global groups: the (class, global cluster) pairs that occur. In both cases the ids are
//! the rank of the (class, cluster) pair among the pairs that occur, so they are contiguous
//! from 0 and no group is empty.

use std::collections::BTreeMap;

/// Group ids for samples with class `y[i]` and cluster `cluster[i]`.
pub fn pair_groups(y: &[i64], cluster: &[usize]) -> Vec<i64> {
    let mut ids: BTreeMap<(i64, usize), i64> =
        y.iter().copied().zip(cluster.iter().copied()).map(|p| (p, 0)).collect();
    for (rank, id) in ids.values_mut().enumerate() {
        *id = rank as i64;
    }
    y.iter().zip(cluster).map(|(&c, &l)| ids[&(c, l)]).collect()
}
