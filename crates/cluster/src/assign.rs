//! Deterministic label assignment from a spectral embedding by column-pivoted QR
//! ("cluster_qr", Damle, Minden and Ying 2019, as scikit-learn's `cluster_qr` applies it).
//!
//! Greedy column pivoting on `V^T` picks the `k` rows of the embedding `V` that are furthest
//! from the span of the rows picked before; the orthogonal polar factor of those `k` rows
//! rotates the embedding so that each picked row lies on one axis, and each sample takes the
//! axis of its largest absolute coordinate. The result does not depend on the sign or on any
//! rotation of the eigenvectors, only on the subspace they span.

use faer::Mat;

/// Cluster labels in `0..k` from an `n x k` embedding (`k` = number of columns).
pub fn cluster_qr(embedding: &Mat<f64>) -> Vec<usize> {
    let (n, k) = (embedding.nrows(), embedding.ncols());
    if k <= 1 || n == 0 {
        return vec![0; n];
    }
    let pivots = pivot_rows(embedding, k);
    let picked = Mat::<f64>::from_fn(k, k, |r, c| embedding[(pivots[c], r)]);
    let rotation = match picked.svd() {
        Ok(svd) => svd.U() * svd.V().transpose(),
        Err(_) => Mat::<f64>::identity(k, k),
    };
    let rotated = embedding * &rotation;
    (0..n)
        .map(|i| {
            let mut best = 0;
            for c in 1..k {
                if rotated[(i, c)].abs() > rotated[(i, best)].abs() {
                    best = c;
                }
            }
            best
        })
        .collect()
}

/// The first `count` pivots of a column-pivoted QR of `embedding^T`: greedily, the row with
/// the largest norm after removing the directions of the rows picked before (lowest index on
/// ties).
fn pivot_rows(embedding: &Mat<f64>, count: usize) -> Vec<usize> {
    let (n, k) = (embedding.nrows(), embedding.ncols());
    let mut residual: Vec<Vec<f64>> =
        (0..n).map(|i| (0..k).map(|c| embedding[(i, c)]).collect()).collect();
    let mut pivots = Vec::with_capacity(count);
    for _ in 0..count.min(n) {
        let norm = |row: &Vec<f64>| row.iter().map(|v| v * v).sum::<f64>();
        let mut best = None;
        let mut best_norm = -1.0;
        for (i, row) in residual.iter().enumerate() {
            if pivots.contains(&i) {
                continue;
            }
            let value = norm(row);
            if value > best_norm {
                best_norm = value;
                best = Some(i);
            }
        }
        let Some(pivot) = best else { break };
        pivots.push(pivot);
        let length = best_norm.sqrt();
        if length == 0.0 {
            continue;
        }
        let direction: Vec<f64> = residual[pivot].iter().map(|v| v / length).collect();
        for row in residual.iter_mut() {
            let dot: f64 = row.iter().zip(&direction).map(|(a, b)| a * b).sum();
            row.iter_mut().zip(&direction).for_each(|(a, b)| *a -= dot * b);
        }
    }
    pivots
}
