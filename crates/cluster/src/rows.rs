//! The matrix being clustered: one row per sample, row-major `f32`, with the sample names
//! that error messages use.

use crate::ClusterError;

/// A dense row-major matrix of samples.
#[derive(Clone, Debug)]
pub struct Rows {
    pub n: usize,
    pub d: usize,
    pub values: Vec<f32>,
}

/// How rows are scaled before clustering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalise {
    /// Each row divided by its largest absolute value; an all-zero row stays zero.
    MaxAbs,
    /// Rows as they are.
    None,
    /// Each column shifted to mean 0 and scaled to standard deviation 1 (a constant column
    /// becomes 0).
    Standardise,
}

impl Rows {
    /// Wraps `values` (`n * d`, row-major).
    pub fn new(n: usize, d: usize, values: Vec<f32>) -> Result<Self, ClusterError> {
        if values.len() != n * d {
            return Err(ClusterError::Input(format!(
                "matrix of {n} x {d} needs {} values, got {}",
                n * d,
                values.len()
            )));
        }
        Ok(Self { n, d, values })
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.d..(i + 1) * self.d]
    }

    /// Fails on the first row with a NaN or an infinity; `name(i)` names row `i`.
    pub fn check_finite(&self, name: impl Fn(usize) -> String) -> Result<(), ClusterError> {
        for i in 0..self.n {
            if let Some(column) = self.row(i).iter().position(|v| !v.is_finite()) {
                return Err(ClusterError::NonFinite { row: i, sample: name(i), column });
            }
        }
        Ok(())
    }

    /// The rows listed in `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Rows {
        let mut values = Vec::with_capacity(indices.len() * self.d);
        for &i in indices {
            values.extend_from_slice(self.row(i));
        }
        Rows { n: indices.len(), d: self.d, values }
    }

    /// Applies `how` in place; returns the number of all-zero rows met by `MaxAbs`.
    pub fn normalise(&mut self, how: Normalise) -> usize {
        match how {
            Normalise::None => 0,
            Normalise::MaxAbs => {
                let d = self.d.max(1);
                let mut zero_rows = 0;
                for row in self.values.chunks_mut(d) {
                    let scale = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    if scale == 0.0 {
                        zero_rows += 1;
                    } else {
                        row.iter_mut().for_each(|v| *v /= scale);
                    }
                }
                zero_rows
            }
            Normalise::Standardise => {
                self.standardise();
                0
            }
        }
    }

    fn standardise(&mut self) {
        if self.n == 0 {
            return;
        }
        let mut mean = vec![0.0f64; self.d];
        let mut square = vec![0.0f64; self.d];
        for i in 0..self.n {
            for (j, &v) in self.row(i).iter().enumerate() {
                mean[j] += v as f64;
                square[j] += (v as f64) * (v as f64);
            }
        }
        let n = self.n as f64;
        let scale: Vec<f64> = (0..self.d)
            .map(|j| {
                mean[j] /= n;
                let variance = (square[j] / n - mean[j] * mean[j]).max(0.0);
                if variance > 0.0 {
                    1.0 / variance.sqrt()
                } else {
                    0.0
                }
            })
            .collect();
        let d = self.d;
        for row in self.values.chunks_mut(d) {
            for j in 0..d {
                row[j] = ((row[j] as f64 - mean[j]) * scale[j]) as f32;
            }
        }
    }
}
