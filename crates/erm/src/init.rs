//! Seeded weight initialisation that does not touch libtorch's global generator.
//!
//! libtorch's generator is process-wide: two stages training in one process (cells of a
//! sweep, parallel tests) would draw from it in an interleaved order and lose determinism.
//! So every random tensor of a fresh model is redrawn here from a ChaCha generator seeded by
//! the stage seed, with torchvision's distributions: convolutions Kaiming-normal over the
//! fan-out, `fc` uniform in +-1/sqrt(fan_in); batch norms stay at their constant 1 and 0.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{nn, Tensor};

/// Redraws every convolution and `fc` tensor of `vs` from `seed`, in name order.
pub(crate) fn initialise(vs: &nn::VarStore, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x696e_6974);
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (name, variable) in &variables {
            let size = variable.size();
            let count: i64 = size.iter().product();
            let values: Vec<f32> = if size.len() == 4 {
                let std = (2.0 / (size[0] * size[2] * size[3]) as f64).sqrt();
                (0..count).map(|_| (normal(&mut rng) * std) as f32).collect()
            } else if name == "fc.weight" || name == "fc.bias" {
                let fan_in = vs.variables()["fc.weight"].size()[1];
                let bound = 1.0 / (fan_in as f64).sqrt();
                (0..count).map(|_| rng.gen_range(-bound..bound) as f32).collect()
            } else {
                continue;
            };
            let value = Tensor::from_slice(&values).view(size.as_slice());
            variable.shallow_clone().copy_(&value.to_device(variable.device()));
        }
    });
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}
