//! Training augmentation: torchvision's `RandomResizedCrop` and horizontal flip, drawn from
//! our own seeded generator so that a seed fixes every crop and flip.

use exmap_models::{normalise, ModelInfo};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use crate::RandomResizedCrop;

/// A crop window: top, left, height, width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub top: i64,
    pub left: i64,
    pub height: i64,
    pub width: i64,
}

/// Draws a crop window for an `height` x `width` image the way `RandomResizedCrop` does:
/// up to ten tries of an area share and a log-uniform aspect ratio, then a centre crop with
/// the ratio clamped into range.
pub(crate) fn crop_window(
    rng: &mut ChaCha8Rng,
    rrc: &RandomResizedCrop,
    height: i64,
    width: i64,
) -> Window {
    let area = (height * width) as f64;
    let (log_low, log_high) = (rrc.ratio[0].ln(), rrc.ratio[1].ln());
    for _ in 0..10 {
        let target = area * uniform(rng, rrc.scale[0], rrc.scale[1]);
        let aspect = uniform(rng, log_low, log_high).exp();
        let w = (target * aspect).sqrt().round() as i64;
        let h = (target / aspect).sqrt().round() as i64;
        if 0 < w && w <= width && 0 < h && h <= height {
            let top = rng.gen_range(0..=height - h);
            let left = rng.gen_range(0..=width - w);
            return Window { top, left, height: h, width: w };
        }
    }

    let in_ratio = width as f64 / height as f64;
    let (w, h) = if in_ratio < rrc.ratio[0] {
        (width, (width as f64 / rrc.ratio[0]).round() as i64)
    } else if in_ratio > rrc.ratio[1] {
        ((height as f64 * rrc.ratio[1]).round() as i64, height)
    } else {
        (width, height)
    };
    Window { top: (height - h) / 2, left: (width - w) / 2, height: h, width: w }
}

/// Turns a u8 batch [B, 3, H, W] into the normalised f32 training input: a random resized
/// crop per image (or the evaluation resize and crop when none is configured), then a flip
/// of each image with probability one half when `hflip` is set.
pub(crate) fn train_batch(
    images_u8: &Tensor,
    info: &ModelInfo,
    rrc: Option<&RandomResizedCrop>,
    hflip: bool,
    rng: &mut ChaCha8Rng,
) -> Tensor {
    let size = images_u8.size();
    let batch = size[0];
    let xs = match rrc {
        Some(rrc) => {
            let images = images_u8.to_kind(Kind::Float);
            let crops: Vec<Tensor> = (0..batch)
                .map(|b| {
                    let window = crop_window(rng, rrc, size[2], size[3]);
                    images
                        .get(b)
                        .narrow(1, window.top, window.height)
                        .narrow(2, window.left, window.width)
                        .unsqueeze(0)
                        .upsample_bilinear2d([rrc.size, rrc.size], false, None::<f64>, None::<f64>)
                })
                .collect();
            let xs = Tensor::cat(&crops, 0).round().clamp(0.0, 255.0) / 255.0;
            normalise(&xs, info.mean, info.std)
        }
        None => info.eval_transform(images_u8),
    };
    if !hflip {
        return xs;
    }

    let flips: Vec<bool> = (0..batch).map(|_| rng.gen_bool(0.5)).collect();
    let mask = Tensor::from_slice(&flips).view([batch, 1, 1, 1]).to_device(xs.device());
    xs.flip([3]).where_self(&mask, &xs)
}

fn uniform(rng: &mut ChaCha8Rng, low: f64, high: f64) -> f64 {
    if high > low {
        rng.gen_range(low..high)
    } else {
        low
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn crop_windows_stay_inside_and_respect_scale_and_ratio() {
        let rrc = RandomResizedCrop { size: 8, scale: [0.7, 1.0], ratio: [0.75, 4.0 / 3.0] };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..500 {
            let w = crop_window(&mut rng, &rrc, 40, 30);
            assert!(w.top >= 0 && w.left >= 0 && w.top + w.height <= 40 && w.left + w.width <= 30);
            let share = (w.height * w.width) as f64 / 1200.0;
            // Rounding of the sides can move the share a little past the range.
            assert!((0.64..=1.0).contains(&share), "{w:?}");
        }
    }

    #[test]
    fn impossible_ratio_falls_back_to_a_centre_crop() {
        let rrc = RandomResizedCrop { size: 8, scale: [0.9, 1.0], ratio: [3.0, 4.0] };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let w = crop_window(&mut rng, &rrc, 20, 20);
        assert_eq!(w, Window { top: 6, left: 0, height: 7, width: 20 });
    }
}
