//! Exact k-nearest neighbours under the Euclidean distance, computed block by block.
//!
//! A block of rows is multiplied with the whole matrix in `f32` (one GEMM), which ranks every
//! other row by `|x|^2 + |y|^2 - 2 x.y`. That ranking can be off by rounding, so each row keeps
//! a few more candidates than it needs, recomputes their distances exactly in `f64` and keeps
//! the `k` smallest, ties broken by the lower row index. Memory is one block of
//! `rows_per_block x N` scores, never `N x N`.
//!
//! Like scikit-learn's `kneighbors_graph(include_self=True)`, a row counts as its own nearest
//! neighbour: the `k` neighbours of a row include the row itself.

use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use crate::Rows;

/// Extra candidates per row that are re-ranked with exact distances.
const EXTRA_CANDIDATES: usize = 8;
/// Upper bound on the scores of one block, in bytes.
const BLOCK_BYTES: usize = 256 << 20;

/// The `k` nearest rows of every row (the row itself included), nearest first.
#[derive(Clone, Debug)]
pub struct Neighbours {
    pub k: usize,
    /// `n * k` row indices, row-major.
    pub indices: Vec<usize>,
}

impl Neighbours {
    pub fn of(&self, i: usize) -> &[usize] {
        &self.indices[i * self.k..(i + 1) * self.k]
    }
}

/// The dot products of every pair of rows of a matrix, computed once (one GEMM) and shared by
/// the partitions clustered from it: each class's products are a sub-block of the whole
/// set's.
#[derive(Clone, Debug)]
pub struct Gram {
    products: Mat<f32>,
}

impl Gram {
    /// Bytes a Gram matrix of `n` rows takes.
    pub fn bytes(n: usize) -> usize {
        4 * n * n
    }

    pub fn new(rows: &Rows) -> Self {
        let (n, d) = (rows.n, rows.d);
        let all = MatRef::from_row_major_slice(&rows.values, n, d);
        let mut products = Mat::<f32>::zeros(n, n);
        matmul_products(products.as_mut(), all, all);
        Self { products }
    }

    fn get(&self, i: usize, j: usize) -> f32 {
        self.products[(i, j)]
    }
}

/// The rows of a partition as rows of a [`Gram`] matrix: row `i` of the partition is row
/// `members[i]` of the Gram's matrix.
#[derive(Clone, Copy, Debug)]
pub struct GramView<'a> {
    pub gram: &'a Gram,
    pub members: &'a [usize],
}

/// Exact k-nearest neighbours of every row of `rows`; `k` is clamped to `rows.n`.
pub fn nearest_neighbours(rows: &Rows, k: usize) -> Neighbours {
    nearest_neighbours_with(rows, k, None)
}

/// [`nearest_neighbours`], ranking candidates by the products of `shared` when given (its
/// members must be the rows of `rows`, in order) instead of multiplying the rows again.
pub fn nearest_neighbours_with(rows: &Rows, k: usize, shared: Option<GramView<'_>>) -> Neighbours {
    let (n, d) = (rows.n, rows.d);
    let k = k.min(n);
    let candidates = (k + EXTRA_CANDIDATES).min(n);
    let norms: Vec<f32> = match shared {
        Some(view) => view.members.iter().map(|&m| view.gram.get(m, m)).collect(),
        None => (0..n).into_par_iter().map(|i| rows.row(i).iter().map(|v| v * v).sum()).collect(),
    };
    let all = MatRef::from_row_major_slice(&rows.values, n, d);
    let block = (BLOCK_BYTES / (4 * n.max(1))).clamp(1, 4096);

    let mut indices = vec![0usize; n * k];
    // Column r of a block holds the products of its row r with every row: contiguous, as the
    // ranking reads it.
    let mut scores = Mat::<f32>::zeros(n, block.min(n));
    for start in (0..n).step_by(block) {
        let end = (start + block).min(n);
        let mut out = scores.as_mut().subcols_mut(0, end - start);
        match shared {
            Some(view) => {
                for r in 0..end - start {
                    let i = view.members[start + r];
                    for (j, &m) in view.members.iter().enumerate() {
                        out[(j, r)] = view.gram.get(i, m);
                    }
                }
            }
            None => matmul_products(out.as_mut(), all, all.subrows(start, end - start)),
        }
        let out = out.as_ref();
        indices[start * k..end * k].par_chunks_mut(k.max(1)).enumerate().for_each(|(r, slot)| {
            if k == 0 {
                return;
            }
            let i = start + r;
            let order: Vec<usize> = if candidates < n {
                // Rank by |x_j|^2 - 2 x_i.x_j (|x_i|^2 is the same for every j), packed with
                // the index into one integer key: order-preserving bits of the score above,
                // the index below, so ties go to the lower index.
                let products = out.col(r).try_as_col_major().expect("a column-major block");
                let mut keys: Vec<u64> = products
                    .as_slice()
                    .iter()
                    .zip(&norms)
                    .enumerate()
                    .map(|(j, (&p, &norm))| (ordered_bits(norm - 2.0 * p) << 32) | j as u64)
                    .collect();
                keys.select_nth_unstable(candidates - 1);
                keys.truncate(candidates);
                let mut order: Vec<usize> =
                    keys.iter().map(|&key| (key & 0xffff_ffff) as usize).collect();
                if !order.contains(&i) {
                    order.push(i);
                }
                order
            } else {
                (0..n).collect()
            };
            let mut exact: Vec<(f64, usize)> = order
                .into_iter()
                .map(|j| (squared_distance(rows.row(i), rows.row(j)), j))
                .collect();
            exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for (slot, (_, j)) in slot.iter_mut().zip(exact) {
                *slot = j;
            }
        });
    }
    Neighbours { k, indices }
}

/// The bits of `x` as an unsigned integer that sorts like `x` (negative values below positive
/// ones, NaN above everything).
fn ordered_bits(x: f32) -> u64 {
    let bits = x.to_bits();
    u64::from(if bits >> 31 == 1 { !bits } else { bits | 0x8000_0000 })
}

/// Squared Euclidean distance accumulated in `f64`, in eight independent partial sums (so
/// the compiler can keep them in vector registers) added up at the end.
pub fn squared_distance(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0f64; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(&x, &y)| {
            let t = x as f64 - y as f64;
            t * t
        })
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            let t = x[lane] as f64 - y[lane] as f64;
            lanes[lane] += t * t;
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// `out = lhs * rhs^T`.
fn matmul_products(out: faer::MatMut<'_, f32>, lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>) {
    faer::linalg::matmul::matmul(out, Accum::Replace, lhs, rhs.transpose(), 1.0, Par::rayon(0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_bits_sort_like_the_floats() {
        let values = [f32::NEG_INFINITY, -3.5, -1e-30, -0.0, 0.0, 1e-30, 2.0, 7.25, f32::INFINITY];
        for pair in values.windows(2) {
            assert!(ordered_bits(pair[0]) <= ordered_bits(pair[1]), "{pair:?}");
        }
        assert!(ordered_bits(-0.0) < ordered_bits(1e-30));
        assert!(ordered_bits(f32::NAN) > ordered_bits(f32::INFINITY));
    }
}
