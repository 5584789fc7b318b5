//! The smallest eigenpairs of the symmetric normalised Laplacian `L = I - A_n`.
//!
//! Small graphs take a dense self-adjoint eigendecomposition of `L`. Larger ones run a block
//! Lanczos iteration on `A_n` (whose largest eigenpairs are `L`'s smallest) with full
//! reorthogonalisation and thick restarts: the projected matrix is formed exactly as
//! `Q^T A_n Q`, convergence is judged on Ritz residual norms, and a block makes repeated
//! eigenvalues (a graph with several components) come out with their multiplicity. A vector
//! that deflates is replaced by a fresh random one. The start block is seeded normal noise
//! whose first column is the square root of the degrees, as the reference's LOBPCG start is,
//! so that the result is a pure function of the graph and the seed.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::graph::Graph;
use crate::ClusterError;

/// Graphs up to this many vertices are solved densely.
pub const DENSE_LIMIT: usize = 800;
/// Ritz residual norm below which an eigenpair counts as converged.
const TOLERANCE: f64 = 1e-8;
/// A block vector shorter than this after orthogonalisation has deflated.
const DEFLATION: f64 = 1e-10;

/// How the eigenpairs are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Solver {
    /// Dense up to [`DENSE_LIMIT`] vertices, block Lanczos above.
    Auto,
    Dense,
    Lanczos,
}

/// The smallest eigenvalues of `L` in ascending order and their eigenvectors (columns).
#[derive(Clone, Debug)]
pub struct Spectrum {
    pub values: Vec<f64>,
    pub vectors: Mat<f64>,
    /// Matrix-block products used by the iterative solver (0 for dense).
    pub products: usize,
}

/// The `want` smallest eigenpairs of `I - normalised` (clamped to the number of vertices).
pub fn smallest_eigenpairs(
    normalised: &Graph,
    sqrt_degrees: &[f64],
    want: usize,
    seed: u64,
    solver: Solver,
) -> Result<Spectrum, ClusterError> {
    let n = normalised.n;
    let want = want.min(n);
    let dense = match solver {
        Solver::Dense => true,
        Solver::Lanczos => n < 4 * want + 8,
        Solver::Auto => n <= DENSE_LIMIT || n < 4 * want + 8,
    };
    if dense {
        dense_eigenpairs(normalised, want)
    } else {
        BlockLanczos::new(normalised, want, seed).run(sqrt_degrees)
    }
}

fn dense_eigenpairs(normalised: &Graph, want: usize) -> Result<Spectrum, ClusterError> {
    let n = normalised.n;
    let mut laplacian = Mat::<f64>::identity(n, n);
    for i in 0..n {
        for (j, w) in normalised.neighbours(i) {
            laplacian[(i, j)] -= w;
        }
    }
    let evd = laplacian
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| ClusterError::Compute(format!("dense eigensolver failed: {e:?}")))?;
    let values = evd.S().column_vector().iter().take(want).copied().collect();
    let vectors = evd.U().subcols(0, want).to_owned();
    Ok(Spectrum { values, vectors, products: 0 })
}

struct BlockLanczos<'a> {
    a: &'a Graph,
    want: usize,
    block: usize,
    keep: usize,
    max_dim: usize,
    rng: ChaCha8Rng,
}

impl<'a> BlockLanczos<'a> {
    fn new(a: &'a Graph, want: usize, seed: u64) -> Self {
        let n = a.n;
        let block = want.max(1);
        let keep = (2 * want).min(n / 4).max(want);
        let max_dim = (20 * block).max(keep + 4 * block).min(n / 2).max(keep + block);
        Self { a, want, block, keep, max_dim, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    fn run(mut self, start: &[f64]) -> Result<Spectrum, ClusterError> {
        let (n, b) = (self.a.n, self.block);
        let mut basis = Mat::<f64>::zeros(n, self.max_dim + b);
        let mut t = Mat::<f64>::zeros(self.max_dim + b, self.max_dim + b);

        let mut first = Mat::<f64>::from_fn(n, b, |_, _| 0.0);
        for c in 0..b {
            for i in 0..n {
                first[(i, c)] = if c == 0 { start[i] } else { normal(&mut self.rng) };
            }
        }
        let (q0, _) = self.orthonormalise(first, basis.as_ref().subcols(0, 0));
        basis.as_mut().subcols_mut(0, b).copy_from(&q0);

        let (mut current, mut dim, mut products) = (0usize, b, 0usize);
        let limit = 400 * n.max(1000);
        loop {
            let w = self.apply_block(basis.as_ref().subcols(current, b));
            products += 1;
            let q = basis.as_ref().subcols(0, dim);
            let (w, h) = project_out(q, w);
            for r in 0..dim {
                for c in 0..b {
                    t[(r, current + c)] = h[(r, c)];
                    t[(current + c, r)] = h[(r, c)];
                }
            }
            let (next, coupling) = self.orthonormalise(w, q);

            let projected = t.as_ref().submatrix(0, 0, dim, dim).to_owned();
            let evd = projected.self_adjoint_eigen(Side::Lower).map_err(|e| {
                ClusterError::Compute(format!("projected eigensolver failed: {e:?}"))
            })?;
            let (theta, s) = (evd.S().column_vector(), evd.U());
            let top: Vec<usize> = (0..dim).rev().take(self.keep.min(dim)).collect();
            let converged = top.iter().take(self.want).all(|&i| {
                let tail = s.col(i).subrows(current, b);
                let residual = &coupling * tail;
                residual.norm_l2() <= TOLERANCE
            });
            if converged || products * b >= limit {
                if !converged {
                    return Err(ClusterError::Compute(format!(
                        "block Lanczos did not converge within {products} block products on \
                         {n} vertices"
                    )));
                }
                let chosen: Vec<usize> = top.iter().take(self.want).copied().collect();
                let values = chosen.iter().map(|&i| 1.0 - theta[i]).collect();
                let selection = Mat::<f64>::from_fn(dim, chosen.len(), |r, c| s[(r, chosen[c])]);
                let mut vectors = Mat::<f64>::zeros(n, chosen.len());
                matmul(vectors.as_mut(), Accum::Replace, q, selection.as_ref(), 1.0, Par::Seq);
                return Ok(Spectrum { values, vectors, products });
            }

            if dim + b > self.max_dim {
                let p = top.len();
                let selection = Mat::<f64>::from_fn(dim, p, |r, c| s[(r, top[c])]);
                let mut kept = Mat::<f64>::zeros(n, p);
                matmul(kept.as_mut(), Accum::Replace, q, selection.as_ref(), 1.0, Par::Seq);
                let tails = Mat::<f64>::from_fn(b, p, |r, c| s[(current + r, top[c])]);
                let coupled = &coupling * &tails;
                basis.as_mut().subcols_mut(0, p).copy_from(&kept);
                basis.as_mut().subcols_mut(p, b).copy_from(&next);
                t.fill(0.0);
                for c in 0..p {
                    t[(c, c)] = theta[top[c]];
                    for r in 0..b {
                        t[(p + r, c)] = coupled[(r, c)];
                        t[(c, p + r)] = coupled[(r, c)];
                    }
                }
                current = p;
                dim = p + b;
            } else {
                basis.as_mut().subcols_mut(dim, b).copy_from(&next);
                for r in 0..b {
                    for c in 0..b {
                        t[(dim + r, current + c)] = coupling[(r, c)];
                        t[(current + c, dim + r)] = coupling[(r, c)];
                    }
                }
                current = dim;
                dim += b;
            }
        }
    }

    /// `A_n * x` for each column of `x`, columns in parallel.
    fn apply_block(&self, x: MatRef<'_, f64>) -> Mat<f64> {
        let n = self.a.n;
        let columns: Vec<Vec<f64>> = (0..x.ncols())
            .into_par_iter()
            .map(|c| {
                let input: Vec<f64> = x.col(c).iter().copied().collect();
                let mut output = vec![0.0; n];
                self.a.apply(&input, &mut output);
                output
            })
            .collect();
        Mat::from_fn(n, x.ncols(), |i, c| columns[c][i])
    }

    /// Orthonormalises the columns of `w` (already orthogonal to `q`) among themselves:
    /// `w = next * coupling` with `coupling` upper triangular. A deflated column is replaced
    /// by random noise made orthogonal to `q` and the earlier columns.
    fn orthonormalise(&mut self, mut w: Mat<f64>, q: MatRef<'_, f64>) -> (Mat<f64>, Mat<f64>) {
        let (n, b) = (w.nrows(), w.ncols());
        let mut coupling = Mat::<f64>::zeros(b, b);
        for c in 0..b {
            for _ in 0..2 {
                for r in 0..c {
                    let dot = column_dot(w.as_ref(), r, c);
                    coupling[(r, c)] += dot;
                    for i in 0..n {
                        w[(i, c)] -= dot * w[(i, r)];
                    }
                }
            }
            let mut norm = w.col(c).norm_l2();
            if norm <= DEFLATION {
                coupling[(c, c)] = 0.0;
                for attempt in 0.. {
                    let noise = Mat::<f64>::from_fn(n, 1, |_, _| normal(&mut self.rng));
                    let (mut noise, _) = project_out(q, noise);
                    for _ in 0..2 {
                        for r in 0..c {
                            let dot: f64 = (0..n).map(|i| noise[(i, 0)] * w[(i, r)]).sum();
                            for i in 0..n {
                                noise[(i, 0)] -= dot * w[(i, r)];
                            }
                        }
                    }
                    norm = noise.col(0).norm_l2();
                    if norm > 1e-3 || attempt > 8 {
                        w.as_mut().col_mut(c).copy_from(noise.col(0));
                        break;
                    }
                }
            } else {
                coupling[(c, c)] = norm;
            }
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            for i in 0..n {
                w[(i, c)] *= scale;
            }
        }
        (w, coupling)
    }
}

/// Removes from `w` its components along the orthonormal columns of `q`, twice for
/// stability; returns the rest and the coefficients `q^T w`.
fn project_out(q: MatRef<'_, f64>, mut w: Mat<f64>) -> (Mat<f64>, Mat<f64>) {
    let mut total = Mat::<f64>::zeros(q.ncols(), w.ncols());
    if q.ncols() == 0 {
        return (w, total);
    }
    for _ in 0..2 {
        let mut h = Mat::<f64>::zeros(q.ncols(), w.ncols());
        matmul(h.as_mut(), Accum::Replace, q.transpose(), w.as_ref(), 1.0, Par::Seq);
        matmul(w.as_mut(), Accum::Add, q, h.as_ref(), -1.0, Par::Seq);
        total += &h;
    }
    (w, total)
}

fn column_dot(w: MatRef<'_, f64>, a: usize, b: usize) -> f64 {
    w.col(a).iter().zip(w.col(b).iter()).map(|(x, y)| x * y).sum()
}

/// A standard normal draw (Box-Muller).
pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random::<f64>();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}
