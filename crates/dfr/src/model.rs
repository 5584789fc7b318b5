//! Standardisation and linear classifiers built from L1 logistic regressions.
//!
//! Two classes give one binary problem (the second class is the positive one, as in
//! scikit-learn); more give one problem per class against the rest, as liblinear does, and the
//! class with the highest score wins. Features are `f64` row-major slices of a matrix with
//! `dim` columns.

use crate::solver::{fit_binary, Design, SolverOptions};

/// Per-feature mean and scale (population standard deviation; 1 for a constant feature), as
/// scikit-learn's `StandardScaler` computes them.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardiser {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Standardiser {
    /// Fits on the rows `rows` of `features`.
    pub fn fit(features: &[f64], dim: usize, rows: &[usize]) -> Self {
        let n = rows.len() as f64;
        let mut mean = vec![0.0; dim];
        for &i in rows {
            for (m, x) in mean.iter_mut().zip(&features[i * dim..(i + 1) * dim]) {
                *m += x;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut variance = vec![0.0; dim];
        for &i in rows {
            for ((v, x), m) in variance.iter_mut().zip(&features[i * dim..(i + 1) * dim]).zip(&mean)
            {
                *v += (x - m) * (x - m);
            }
        }
        let scale = variance
            .iter()
            .map(|v| {
                let s = (v / n).sqrt();
                if s > 10.0 * f64::EPSILON {
                    s
                } else {
                    1.0
                }
            })
            .collect();
        Self { mean, scale }
    }

    /// The transform that leaves features unchanged.
    pub fn identity(dim: usize) -> Self {
        Self { mean: vec![0.0; dim], scale: vec![1.0; dim] }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The standardised value of feature `j` with raw value `x`.
    fn apply(&self, j: usize, x: f64) -> f64 {
        (x - self.mean[j]) / self.scale[j]
    }
}

/// A linear classifier on standardised features: one score row per binary problem.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearModel {
    /// Sorted class labels.
    pub classes: Vec<i64>,
    /// `coef[k]` has one weight per feature (1 row for two classes, one per class otherwise).
    pub coef: Vec<Vec<f64>>,
    pub intercept: Vec<f64>,
    pub standardiser: Standardiser,
}

impl LinearModel {
    /// The predicted class of every row of `features`.
    pub fn predict(&self, features: &[f64], rows: impl IntoIterator<Item = usize>) -> Vec<i64> {
        let dim = self.standardiser.dim();
        let mut standardised = vec![0.0; dim];
        rows.into_iter()
            .map(|i| {
                for (j, x) in features[i * dim..(i + 1) * dim].iter().enumerate() {
                    standardised[j] = self.standardiser.apply(j, *x);
                }
                let scores: Vec<f64> = self
                    .coef
                    .iter()
                    .zip(&self.intercept)
                    .map(|(w, b)| w.iter().zip(&standardised).map(|(w, x)| w * x).sum::<f64>() + b)
                    .collect();
                if scores.len() == 1 {
                    self.classes[usize::from(scores[0] > 0.0)]
                } else {
                    // The first maximum wins, as numpy's argmax.
                    let best =
                        scores
                            .iter()
                            .enumerate()
                            .fold(0, |best, (k, s)| if *s > scores[best] { k } else { best });
                    self.classes[best]
                }
            })
            .collect()
    }

    /// Number of non-zero weights, intercepts excluded.
    pub fn nonzero_weights(&self) -> usize {
        self.coef.iter().flatten().filter(|w| **w != 0.0).count()
    }

    /// The average of `models` (same classes and standardiser): mean coefficients and
    /// intercepts, in the order given.
    pub fn average(models: &[LinearModel]) -> LinearModel {
        let first = &models[0];
        let n = models.len() as f64;
        let mut coef = vec![vec![0.0; first.standardiser.dim()]; first.coef.len()];
        let mut intercept = vec![0.0; first.intercept.len()];
        for model in models {
            for (sum, row) in coef.iter_mut().zip(&model.coef) {
                sum.iter_mut().zip(row).for_each(|(s, w)| *s += w);
            }
            intercept.iter_mut().zip(&model.intercept).for_each(|(s, b)| *s += b);
        }
        coef.iter_mut().flatten().for_each(|w| *w /= n);
        intercept.iter_mut().for_each(|b| *b /= n);
        LinearModel {
            classes: first.classes.clone(),
            coef,
            intercept,
            standardiser: first.standardiser.clone(),
        }
    }
}

/// The training set of one fit: standardised rows of a feature matrix and their labels.
#[derive(Clone, Debug)]
pub struct TrainingSet {
    design: Design,
    labels: Vec<i64>,
    classes: Vec<i64>,
    standardiser: Standardiser,
}

impl TrainingSet {
    /// Rows `rows` of `features` (row-major, `standardiser.dim()` columns) with their labels
    /// `y[i]`, standardised by `standardiser`. `classes` are the sorted classes to fit.
    pub fn new(
        features: &[f64],
        y: &[i64],
        rows: &[usize],
        classes: Vec<i64>,
        standardiser: Standardiser,
    ) -> Self {
        let dim = standardiser.dim();
        let design = Design::from_fn(rows.len(), dim, |i, j| {
            standardiser.apply(j, features[rows[i] * dim + j])
        });
        let labels = rows.iter().map(|&i| y[i]).collect();
        Self { design, labels, classes, standardiser }
    }

    /// Classes of `classes` with no sample in this set.
    pub fn missing_classes(&self) -> Vec<i64> {
        self.classes.iter().copied().filter(|c| !self.labels.contains(c)).collect()
    }

    /// Fits the L1 logistic regression with strength `c`, warm-started from `start` (a model
    /// of the same classes and dimension) when given.
    pub fn fit(&self, c: f64, start: Option<&LinearModel>, options: &SolverOptions) -> FitOutcome {
        let positives: Vec<i64> =
            if self.classes.len() == 2 { vec![self.classes[1]] } else { self.classes.clone() };
        let mut outcome = FitOutcome {
            model: LinearModel {
                classes: self.classes.clone(),
                coef: Vec::with_capacity(positives.len()),
                intercept: Vec::with_capacity(positives.len()),
                standardiser: self.standardiser.clone(),
            },
            newton_steps: 0,
            converged: true,
        };
        for (k, positive) in positives.iter().enumerate() {
            let signs: Vec<f64> =
                self.labels.iter().map(|y| if y == positive { 1.0 } else { -1.0 }).collect();
            let warm: Option<Vec<f64>> = start.map(|model| {
                let mut w = model.coef[k].clone();
                w.push(model.intercept[k]);
                w
            });
            let fit = fit_binary(&self.design, &signs, c, warm.as_deref(), options);
            let mut weights = fit.weights;
            outcome.model.intercept.push(weights.pop().expect("intercept weight"));
            outcome.model.coef.push(weights);
            outcome.newton_steps += fit.newton_steps;
            outcome.converged &= fit.converged;
        }
        outcome
    }
}

/// A fitted model and whether every binary problem converged.
#[derive(Clone, Debug)]
pub struct FitOutcome {
    pub model: LinearModel,
    pub newton_steps: usize,
    pub converged: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardiser_uses_population_std_and_keeps_constant_features() {
        // Feature 0: 1, 3 (mean 2, std 1); feature 1: constant 5.
        let features = [1.0, 5.0, 3.0, 5.0];
        let s = Standardiser::fit(&features, 2, &[0, 1]);
        assert_eq!(s.mean, vec![2.0, 5.0]);
        assert_eq!(s.scale, vec![1.0, 1.0]);
    }

    #[test]
    fn three_classes_are_fitted_one_against_the_rest() {
        // Each class sits on its own axis.
        let rows = 30;
        let features: Vec<f64> = (0..rows)
            .flat_map(|i| {
                let mut x = [0.0; 3];
                x[i % 3] = 2.0 + (i as f64) / 30.0;
                x
            })
            .collect();
        let y: Vec<i64> = (0..rows as i64).map(|i| i % 3).collect();
        let all: Vec<usize> = (0..rows).collect();
        let set = TrainingSet::new(
            &features,
            &y,
            &all,
            vec![0, 1, 2],
            Standardiser::fit(&features, 3, &all),
        );
        let outcome = set.fit(1.0, None, &SolverOptions::default());
        assert_eq!(outcome.model.coef.len(), 3);
        assert_eq!(outcome.model.predict(&features, 0..rows), y);
    }
}
