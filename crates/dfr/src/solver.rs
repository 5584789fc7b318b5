//! L1-regularised binary logistic regression, solved to liblinear's optimum.
//!
//! The problem is liblinear's `L1R_LR` as scikit-learn calls it with `intercept_scaling=1`:
//!
//! ```text
//! min_w  ||w||_1 + C * sum_i log(1 + exp(-y_i w.x_i)),   y_i in {-1, +1}
//! ```
//!
//! where every `x_i` carries a trailing constant-1 feature whose weight is the intercept and is
//! regularised like any other weight. The solver is a proximal Newton method in the style of
//! newGLMNET: each outer step builds the quadratic model of the loss at `w` (gradient and the
//! diagonal-weighted Gram matrix, never formed), minimises model plus L1 term by cyclic
//! coordinate descent, and takes an Armijo line search along the resulting direction.
//! Coordinates that sit at zero with a gradient well inside `[-1, 1]` are shrunk out of both
//! loops and brought back for a final full check, so the work follows the sparse support.
//!
//! Convergence is the same test liblinear uses: the 1-norm of the minimum-norm subgradient
//! falls below `tolerance` times its value at `w = 0`. The coordinate order is fixed (liblinear
//! shuffles it), so a fit is a deterministic function of its inputs.

/// A dense design matrix stored feature by feature, with the constant-1 intercept column last.
#[derive(Clone, Debug)]
pub struct Design {
    rows: usize,
    columns: usize,
    values: Vec<f64>,
}

impl Design {
    /// Builds the design from `rows` samples given row by row (`features` values each) and
    /// appends the intercept column.
    pub fn from_rows(data: &[f64], rows: usize, features: usize) -> Self {
        assert_eq!(data.len(), rows * features, "data is not rows x features");
        let mut values = vec![0.0; rows * (features + 1)];
        for (i, row) in data.chunks_exact(features.max(1)).enumerate().take(rows) {
            for (j, v) in row.iter().enumerate() {
                values[j * rows + i] = *v;
            }
        }
        values[features * rows..].fill(1.0);
        Self { rows, columns: features + 1, values }
    }

    /// Builds the design column by column from a closure `value(sample, feature)`.
    pub fn from_fn(rows: usize, features: usize, value: impl Fn(usize, usize) -> f64) -> Self {
        let mut values = Vec::with_capacity(rows * (features + 1));
        for j in 0..features {
            values.extend((0..rows).map(|i| value(i, j)));
        }
        values.extend(std::iter::repeat_n(1.0, rows));
        Self { rows, columns: features + 1, values }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of weights, the intercept included.
    pub fn columns(&self) -> usize {
        self.columns
    }

    fn column(&self, j: usize) -> &[f64] {
        &self.values[j * self.rows..(j + 1) * self.rows]
    }

    /// `X w` for a full weight vector.
    fn times(&self, w: &[f64]) -> Vec<f64> {
        let mut z = vec![0.0; self.rows];
        for (j, wj) in w.iter().enumerate().filter(|(_, wj)| **wj != 0.0) {
            axpy(*wj, self.column(j), &mut z);
        }
        z
    }
}

/// Stopping rule and iteration limits of the solver.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolverOptions {
    /// Relative tolerance on the 1-norm of the minimum-norm subgradient (liblinear's `eps`;
    /// the default is scikit-learn's `tol=1e-4`).
    pub tolerance: f64,
    /// Outer step limit (the default is scikit-learn's `max_iter=100`); a fit that reaches it
    /// reports `converged: false`.
    pub max_newton_steps: usize,
    pub max_inner_passes: usize,
}

impl Default for SolverOptions {
    fn default() -> Self {
        Self { tolerance: 1e-4, max_newton_steps: 100, max_inner_passes: 100 }
    }
}

/// A solution and how it was reached.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryFit {
    /// Weights, the intercept last.
    pub weights: Vec<f64>,
    pub newton_steps: usize,
    pub converged: bool,
}

/// The objective `||w||_1 + C * sum log(1 + exp(-y w.x))` at `weights`.
pub fn objective(design: &Design, labels: &[f64], c: f64, weights: &[f64]) -> f64 {
    let z = design.times(weights);
    let l1: f64 = weights.iter().map(|w| w.abs()).sum();
    l1 + c * z.iter().zip(labels).map(|(z, y)| log1p_exp(-y * z)).sum::<f64>()
}

/// The order in which the inner coordinate descent visits coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// A fresh pseudo-random permutation every pass, as liblinear does.
    Shuffled,
    /// Feature order.
    Cyclic,
}

/// Solves the problem for labels in {-1, +1}, starting from `start` (zeros when `None`).
///
/// The inner coordinate descent visits coordinates in a shuffled order, which converges in a
/// handful of Newton steps where feature order can need the whole step limit (nearly
/// separable classes at large C). On the rare problem where the shuffled order stalls (its
/// quadratic model so flat along some coordinate that no step passes the line search), the
/// fit is repeated in feature order, and the better of the two is kept.
pub fn fit_binary(
    design: &Design,
    labels: &[f64],
    c: f64,
    start: Option<&[f64]>,
    options: &SolverOptions,
) -> BinaryFit {
    let shuffled = fit_binary_in(design, labels, c, start, options, Order::Shuffled);
    if shuffled.converged {
        return shuffled;
    }
    let mut cyclic = fit_binary_in(design, labels, c, start, options, Order::Cyclic);
    cyclic.newton_steps += shuffled.newton_steps;
    if cyclic.converged
        || objective(design, labels, c, &cyclic.weights)
            <= objective(design, labels, c, &shuffled.weights)
    {
        cyclic
    } else {
        BinaryFit { newton_steps: cyclic.newton_steps, ..shuffled }
    }
}

fn fit_binary_in(
    design: &Design,
    labels: &[f64],
    c: f64,
    start: Option<&[f64]>,
    options: &SolverOptions,
    order: Order,
) -> BinaryFit {
    let (n, p) = (design.rows, design.columns);
    assert_eq!(labels.len(), n, "one label per row");
    let mut w = start.map_or_else(|| vec![0.0; p], <[f64]>::to_vec);
    let mut z = design.times(&w);

    // The reference scale of the stopping rule: the subgradient norm at w = 0, where every
    // sample's loss derivative is -y / 2.
    let half: Vec<f64> = labels.iter().map(|y| -0.5 * c * y).collect();
    let norm_at_zero: f64 =
        (0..p).map(|j| (dot(&half, design.column(j)).abs() - 1.0).max(0.0)).sum();
    if norm_at_zero == 0.0 {
        return BinaryFit { weights: vec![0.0; p], newton_steps: 0, converged: true };
    }

    let mut active: Vec<usize> = (0..p).collect();
    let mut bound_old = f64::INFINITY;
    let mut inner_tolerance = 1.0;
    let mut gradient = vec![0.0; p];
    let mut curvature = vec![0.0; p];
    let mut slope = vec![0.0; n];
    let mut weight = vec![0.0; n];
    let mut direction = vec![0.0; p];
    let mut x_direction = vec![0.0; n];

    for step in 0..options.max_newton_steps {
        for i in 0..n {
            let margin = sigmoid(labels[i] * z[i]);
            slope[i] = -c * labels[i] * (1.0 - margin);
            weight[i] = c * margin * (1.0 - margin);
        }

        // Gradient, curvature and the subgradient norm over the active set, shrinking
        // coordinates that are at zero and comfortably optimal.
        let shrink_margin = bound_old / n as f64;
        let (mut bound_new, mut norm) = (0.0f64, 0.0);
        let mut kept = Vec::with_capacity(active.len());
        for &j in &active {
            let column = design.column(j);
            gradient[j] = dot(&slope, column);
            curvature[j] = weighted_square(&weight, column) + 1e-12;
            let g = gradient[j];
            let Some(violation) = l1_violation(w[j], g, shrink_margin) else { continue };
            bound_new = bound_new.max(violation);
            norm += violation;
            kept.push(j);
        }
        if norm <= options.tolerance * norm_at_zero {
            if active.len() == p {
                return BinaryFit { weights: w, newton_steps: step, converged: true };
            }
            active = (0..p).collect();
            bound_old = f64::INFINITY;
            continue;
        }
        bound_old = bound_new;
        active = kept;

        let passes = solve_quadratic_model(
            design,
            &active,
            QuadraticModel { w: &w, gradient: &gradient, curvature: &curvature, weight: &weight },
            InnerLimits {
                order,
                tolerance: inner_tolerance * norm_at_zero,
                max_passes: options.max_inner_passes,
            },
            &mut direction,
            &mut x_direction,
        );
        if passes <= 1 {
            inner_tolerance *= 0.25;
        }

        // Armijo line search on the true objective along the direction.
        let decrease: f64 = active
            .iter()
            .map(|&j| gradient[j] * direction[j] + (w[j] + direction[j]).abs() - w[j].abs())
            .sum();
        let loss_old: f64 = z.iter().zip(labels).map(|(z, y)| log1p_exp(-y * z)).sum();
        let mut alpha = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            let l1_change: f64 =
                active.iter().map(|&j| (w[j] + alpha * direction[j]).abs() - w[j].abs()).sum();
            let loss_new: f64 = z
                .iter()
                .zip(&x_direction)
                .zip(labels)
                .map(|((z, xd), y)| log1p_exp(-y * (z + alpha * xd)))
                .sum();
            if c * (loss_new - loss_old) + l1_change <= 0.01 * alpha * decrease {
                accepted = true;
                break;
            }
            alpha *= 0.5;
        }
        if !accepted {
            return BinaryFit { weights: w, newton_steps: step + 1, converged: false };
        }
        for &j in &active {
            w[j] += alpha * direction[j];
        }
        axpy(alpha, &x_direction, &mut z);
    }
    BinaryFit { weights: w, newton_steps: options.max_newton_steps, converged: false }
}

/// The quadratic model of the loss at `w`: gradient, curvature diagonal and sample weights.
struct QuadraticModel<'a> {
    w: &'a [f64],
    gradient: &'a [f64],
    curvature: &'a [f64],
    weight: &'a [f64],
}

/// How the inner coordinate descent runs: its visiting order, the subgradient norm at which it
/// stops, and its pass limit.
struct InnerLimits {
    order: Order,
    tolerance: f64,
    max_passes: usize,
}

/// Minimises the quadratic model plus the L1 term over `active` by coordinate descent in
/// `order`.
/// Writes the step into `direction` (zero outside `active`) and `X direction` into
/// `x_direction`; returns the number of passes made.
fn solve_quadratic_model(
    design: &Design,
    active: &[usize],
    model: QuadraticModel,
    limits: InnerLimits,
    direction: &mut [f64],
    x_direction: &mut [f64],
) -> usize {
    let InnerLimits { order, tolerance, max_passes } = limits;
    let n = design.rows;
    direction.fill(0.0);
    x_direction.fill(0.0);
    let mut working = active.to_vec();
    let mut bound_old = f64::INFINITY;
    let mut passes = 0;
    // A shuffled order is drawn by a generator seeded the same way in every call, so fits
    // stay deterministic.
    let mut state = 0x853c_49e6_748f_ea9b_u64;
    while passes < max_passes {
        passes += 1;
        for i in (1..working.len()).rev().filter(|_| order == Order::Shuffled) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            working.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let shrink_margin = bound_old / n as f64;
        let (mut bound_new, mut norm) = (0.0f64, 0.0);
        let mut kept = Vec::with_capacity(working.len());
        for &j in &working {
            let column = design.column(j);
            let h = model.curvature[j];
            let g = model.gradient[j] + weighted_dot(model.weight, column, x_direction);
            let u = model.w[j] + direction[j];
            let Some(violation) = l1_violation(u, g, shrink_margin) else { continue };
            bound_new = bound_new.max(violation);
            norm += violation;
            kept.push(j);

            // The exact minimiser of g d + h d^2 / 2 + |u + d| over d.
            let delta = if g + 1.0 <= h * u {
                -(g + 1.0) / h
            } else if g - 1.0 >= h * u {
                -(g - 1.0) / h
            } else {
                -u
            };
            if delta.abs() > 1e-12 {
                direction[j] += delta;
                axpy(delta, column, x_direction);
            }
        }
        if norm <= tolerance {
            if working.len() == active.len() {
                break;
            }
            working = active.to_vec();
            bound_old = f64::INFINITY;
            continue;
        }
        bound_old = bound_new;
        working = kept;
    }
    passes
}

fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// `log(1 + exp(t))` without overflow.
fn log1p_exp(t: f64) -> f64 {
    if t > 0.0 {
        t + (-t).exp().ln_1p()
    } else {
        t.exp().ln_1p()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

fn weighted_dot(weight: &[f64], a: &[f64], b: &[f64]) -> f64 {
    weight.iter().zip(a).zip(b).map(|((w, a), b)| w * a * b).sum()
}

fn weighted_square(weight: &[f64], a: &[f64]) -> f64 {
    weight.iter().zip(a).map(|(w, a)| w * a * a).sum()
}

fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// How far coordinate value `w` with loss gradient `g` is from the L1 optimality conditions,
/// or `None` when `w` is zero and comfortably optimal, so the coordinate can be shrunk.
fn l1_violation(w: f64, g: f64, shrink_margin: f64) -> Option<f64> {
    if w > 0.0 {
        Some((g + 1.0).abs())
    } else if w < 0.0 {
        Some((g - 1.0).abs())
    } else if g > -1.0 + shrink_margin && g < 1.0 - shrink_margin {
        None
    } else {
        Some((g - 1.0).max(-1.0 - g).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small separable-ish problem: y = sign(x0 - x1 + noise) from a fixed sequence.
    fn problem() -> (Design, Vec<f64>) {
        let (n, d) = (60, 5);
        let data: Vec<f64> = (0..n * d).map(|k| ((k * 7919 % 101) as f64 / 50.0) - 1.0).collect();
        let labels = (0..n)
            .map(|i| {
                let noise = ((i * 31 % 17) as f64 - 8.0) / 20.0;
                if data[i * d] - data[i * d + 1] + noise > 0.0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        (Design::from_rows(&data, n, d), labels)
    }

    /// The minimum-norm subgradient of the objective at `w`, by brute force.
    fn subgradient_norm(design: &Design, labels: &[f64], c: f64, w: &[f64]) -> f64 {
        let z = design.times(w);
        (0..design.columns)
            .map(|j| {
                let g: f64 = (0..design.rows)
                    .map(|i| {
                        -c * labels[i] * (1.0 - sigmoid(labels[i] * z[i])) * design.column(j)[i]
                    })
                    .sum();
                if w[j] != 0.0 {
                    (g + w[j].signum()).abs()
                } else {
                    (g.abs() - 1.0).max(0.0)
                }
            })
            .sum()
    }

    #[test]
    fn solution_satisfies_the_optimality_conditions() {
        let (design, labels) = problem();
        let options = SolverOptions { tolerance: 1e-6, ..SolverOptions::default() };
        for c in [0.01, 0.1, 1.0, 10.0] {
            let fit = fit_binary(&design, &labels, c, None, &options);
            assert!(fit.converged, "C = {c}");
            let norm = subgradient_norm(&design, &labels, c, &fit.weights);
            // The stopping rule is relative to the norm at zero, which is below n * C * 6 here.
            assert!(norm <= 1e-6 * 60.0 * c * 6.0 + 1e-9, "C = {c}: subgradient norm {norm}");
        }
    }

    #[test]
    fn shuffled_and_feature_order_reach_the_same_optimum() {
        let (design, labels) = problem();
        let options = SolverOptions::default();
        let mut compared = 0;
        for c in [0.1, 0.3, 1.0, 3.0, 10.0] {
            let shuffled = fit_binary_in(&design, &labels, c, None, &options, Order::Shuffled);
            assert!(shuffled.converged, "C={c}");
            // Feature order can stall on this problem (the reason for the shuffle); where it
            // converges, it agrees.
            let cyclic = fit_binary_in(&design, &labels, c, None, &options, Order::Cyclic);
            if cyclic.converged {
                let a = objective(&design, &labels, c, &shuffled.weights);
                let b = objective(&design, &labels, c, &cyclic.weights);
                assert!((a - b).abs() <= 1e-4 * b, "C={c}: {a} vs {b}");
                compared += 1;
            }
        }
        assert!(compared >= 2, "feature order converged for only {compared} values of C");
    }

    #[test]
    fn warm_start_reaches_the_same_optimum() {
        let (design, labels) = problem();
        let options = SolverOptions { tolerance: 1e-8, ..SolverOptions::default() };
        let cold = fit_binary(&design, &labels, 1.0, None, &options);
        let previous = fit_binary(&design, &labels, 0.1, None, &options);
        let warm = fit_binary(&design, &labels, 1.0, Some(&previous.weights), &options);
        let (a, b) = (
            objective(&design, &labels, 1.0, &cold.weights),
            objective(&design, &labels, 1.0, &warm.weights),
        );
        assert!((a - b).abs() <= 1e-9 * a, "{a} vs {b}");
    }

    #[test]
    fn tiny_c_gives_all_zero_weights() {
        let (design, labels) = problem();
        let fit = fit_binary(&design, &labels, 1e-4, None, &SolverOptions::default());
        assert!(fit.weights.iter().all(|w| *w == 0.0));
    }
}
