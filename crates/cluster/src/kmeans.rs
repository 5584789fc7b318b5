//! k-means with k-means++ seeding and several seeded restarts (Lloyd iterations).
//!
//! Seeding follows the greedy k-means++ variant: every new centre is the best, by total
//! potential, of `2 + ln k` candidates drawn in proportion to the squared distance to the
//! nearest centre so far. Each restart draws from its own stream derived from the seed, and
//! the restart with the lowest inertia wins (the first one on ties), so the result is a pure
//! function of the data and the seed. Distances run in parallel over rows; every sum is taken
//! in row order, so the thread count never changes a result.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// A dense row-major `f64` matrix view: `n` rows of `d` values.
#[derive(Clone, Copy, Debug)]
pub struct Points<'a> {
    pub n: usize,
    pub d: usize,
    pub values: &'a [f64],
}

impl Points<'_> {
    fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.d..(i + 1) * self.d]
    }
}

/// The best of `restarts` k-means runs: labels in `0..k` and the inertia.
pub fn kmeans(points: Points<'_>, k: usize, restarts: usize, seed: u64) -> (Vec<usize>, f64) {
    let k = k.min(points.n).max(1);
    let mut best: Option<(Vec<usize>, f64)> = None;
    for restart in 0..restarts.max(1) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(restart as u64);
        let centres = seed_centres(points, k, &mut rng);
        let (labels, inertia) = lloyd(points, centres);
        if best.as_ref().is_none_or(|(_, b)| inertia < *b) {
            best = Some((labels, inertia));
        }
    }
    best.expect("at least one restart")
}

fn squared(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn seed_centres(points: Points<'_>, k: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let (n, d) = (points.n, points.d);
    let mut centres = Vec::with_capacity(k * d);
    centres.extend_from_slice(points.row(rng.random_range(0..n)));
    let mut closest: Vec<f64> =
        (0..n).into_par_iter().map(|i| squared(points.row(i), &centres[..d])).collect();
    let trials = 2 + (k as f64).ln().floor() as usize;
    for _ in 1..k {
        let total: f64 = closest.iter().sum();
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            let candidate = if total > 0.0 {
                let target = rng.random::<f64>() * total;
                let mut acc = 0.0;
                closest
                    .iter()
                    .position(|&c| {
                        acc += c;
                        acc > target
                    })
                    .unwrap_or(n - 1)
            } else {
                rng.random_range(0..n)
            };
            let row = points.row(candidate);
            let updated: Vec<f64> = (0..n)
                .into_par_iter()
                .map(|i| closest[i].min(squared(points.row(i), row)))
                .collect();
            let potential: f64 = updated.iter().sum();
            if best.as_ref().is_none_or(|(p, _, _)| potential < *p) {
                best = Some((potential, candidate, updated));
            }
        }
        let (_, chosen, updated) = best.expect("at least one trial");
        centres.extend_from_slice(points.row(chosen));
        closest = updated;
    }
    centres
}

fn lloyd(points: Points<'_>, mut centres: Vec<f64>) -> (Vec<usize>, f64) {
    let (n, d) = (points.n, points.d);
    let k = centres.len() / d.max(1);
    let variance = mean_variance(points);
    let tolerance = 1e-4 * variance;
    let mut labels = vec![0usize; n];
    for _ in 0..300 {
        let nearest = assign(points, &centres, k);
        labels = nearest.iter().map(|&(c, _)| c).collect();

        let mut sums = vec![0.0f64; k * d];
        let mut counts = vec![0usize; k];
        for (i, &c) in labels.iter().enumerate() {
            counts[c] += 1;
            sums[c * d..(c + 1) * d].iter_mut().zip(points.row(i)).for_each(|(s, v)| *s += v);
        }
        // An empty cluster takes the point furthest from its centre, as scikit-learn does.
        for c in 0..k {
            if counts[c] == 0 {
                let far = (0..n)
                    .max_by(|&a, &b| nearest[a].1.total_cmp(&nearest[b].1).then(b.cmp(&a)))
                    .unwrap_or(0);
                sums[c * d..(c + 1) * d].copy_from_slice(points.row(far));
                counts[c] = 1;
            }
        }
        let mut shift = 0.0;
        for c in 0..k {
            for j in 0..d {
                let updated = sums[c * d + j] / counts[c] as f64;
                shift += (updated - centres[c * d + j]).powi(2);
                centres[c * d + j] = updated;
            }
        }
        if shift <= tolerance {
            break;
        }
    }
    let nearest = assign(points, &centres, k);
    let inertia = nearest.iter().map(|&(_, dist)| dist).sum();
    (nearest.into_iter().map(|(c, _)| c).collect(), inertia)
}

fn assign(points: Points<'_>, centres: &[f64], k: usize) -> Vec<(usize, f64)> {
    let d = points.d;
    (0..points.n)
        .into_par_iter()
        .map(|i| {
            let row = points.row(i);
            let mut best = (0, f64::INFINITY);
            for c in 0..k {
                let dist = squared(row, &centres[c * d..(c + 1) * d]);
                if dist < best.1 {
                    best = (c, dist);
                }
            }
            best
        })
        .collect()
}

fn mean_variance(points: Points<'_>) -> f64 {
    let (n, d) = (points.n, points.d);
    if n == 0 || d == 0 {
        return 0.0;
    }
    let mut total = 0.0;
    for j in 0..d {
        let mean: f64 = (0..n).map(|i| points.values[i * d + j]).sum::<f64>() / n as f64;
        total += (0..n).map(|i| (points.values[i * d + j] - mean).powi(2)).sum::<f64>() / n as f64;
    }
    total / d as f64
}
