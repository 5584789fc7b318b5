//! Fixtures shared by the integration tests.

use exmap_cluster::Rows;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `sizes.len()` Gaussian blobs in `d` dimensions, centres 10 apart on the axes, spread 0.3;
/// returns the rows (blob by blob, then shuffled when `shuffle_seed` is given) and the truth.
pub fn blobs(sizes: &[usize], d: usize, seed: u64) -> (Rows, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::new();
    let mut truth = Vec::new();
    for (c, &size) in sizes.iter().enumerate() {
        for _ in 0..size {
            for j in 0..d {
                let centre = if j == c % d { 10.0 } else { 0.0 };
                let noise: f32 =
                    rng.random::<f32>() + rng.random::<f32>() + rng.random::<f32>() - 1.5;
                values.push(centre + 0.6 * noise);
            }
            truth.push(c as i64);
        }
    }
    (Rows::new(truth.len(), d, values).unwrap(), truth)
}
