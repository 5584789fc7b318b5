//! The symmetric kNN affinity graph and its normalised adjacency.
//!
//! The connectivity matrix `C` has a 1 where row `j` is among the neighbours of row `i`; the
//! affinity is `(C + C^T) / 2`, as scikit-learn's spectral clustering builds it, so a mutual
//! neighbour pair weighs 1 and a one-sided one 0.5. The normalised Laplacian, as scipy's
//! `csgraph.laplacian(normed=True)` computes it, ignores the diagonal (every row is its own
//! neighbour) and treats an isolated vertex as having degree 1; its diagonal is 1. We keep
//! `A_n = D^-1/2 A D^-1/2` without the diagonal, so that `L = I - A_n`.

use crate::knn::Neighbours;

/// A symmetric sparse matrix in compressed-row form, without diagonal entries.
#[derive(Clone, Debug)]
pub struct Graph {
    pub n: usize,
    pub row_start: Vec<usize>,
    pub columns: Vec<usize>,
    pub weights: Vec<f64>,
}

impl Graph {
    /// The symmetrised kNN affinity of `neighbours`, self-loops dropped.
    pub fn from_neighbours(n: usize, neighbours: &Neighbours) -> Self {
        let mut edges: Vec<(usize, usize)> = Vec::with_capacity(2 * n * neighbours.k);
        for i in 0..n {
            for &j in neighbours.of(i) {
                if i != j {
                    edges.push((i, j));
                    edges.push((j, i));
                }
            }
        }
        edges.sort_unstable();

        let mut row_start = vec![0usize; n + 1];
        let mut columns = Vec::with_capacity(edges.len());
        let mut weights: Vec<f64> = Vec::with_capacity(edges.len());
        let mut previous = None;
        for (i, j) in edges {
            if previous == Some((i, j)) {
                *weights.last_mut().expect("an edge was pushed") += 0.5;
            } else {
                columns.push(j);
                weights.push(0.5);
                row_start[i + 1] = columns.len();
                previous = Some((i, j));
            }
        }
        for i in 1..=n {
            row_start[i] = row_start[i].max(row_start[i - 1]);
        }
        Self { n, row_start, columns, weights }
    }

    pub fn neighbours(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let range = self.row_start[i]..self.row_start[i + 1];
        self.columns[range.clone()].iter().copied().zip(self.weights[range].iter().copied())
    }

    pub fn nnz(&self) -> usize {
        self.columns.len()
    }

    /// Square roots of the degrees, with 1 for an isolated vertex (scipy's convention).
    pub fn sqrt_degrees(&self) -> Vec<f64> {
        (0..self.n)
            .map(|i| {
                let degree: f64 = self.neighbours(i).map(|(_, w)| w).sum();
                if degree > 0.0 {
                    degree.sqrt()
                } else {
                    1.0
                }
            })
            .collect()
    }

    /// `D^-1/2 A D^-1/2` with `sqrt_degrees` from [`Graph::sqrt_degrees`].
    pub fn normalised(&self, sqrt_degrees: &[f64]) -> Graph {
        let mut weights = self.weights.clone();
        for i in 0..self.n {
            for e in self.row_start[i]..self.row_start[i + 1] {
                weights[e] /= sqrt_degrees[i] * sqrt_degrees[self.columns[e]];
            }
        }
        Graph { weights, ..self.clone() }
    }

    /// `y = self * x` for one column.
    pub fn apply(&self, x: &[f64], y: &mut [f64]) {
        for (i, out) in y.iter_mut().enumerate() {
            *out = self.neighbours(i).map(|(j, w)| w * x[j]).sum();
        }
    }

    /// The number of connected components.
    pub fn components(&self) -> usize {
        let mut parent: Vec<usize> = (0..self.n).collect();
        fn find(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for i in 0..self.n {
            for (j, _) in self.neighbours(i) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
        (0..self.n).filter(|&i| find(&mut parent, i) == i).count()
    }
}
