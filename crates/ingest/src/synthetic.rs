//! Built-in synthetic scenes: a generator that writes a Waterbirds-format folder.
//!
//! The class is decided by a small foreground object: class 0 is a round shape (a disc or an
//! ellipse) usually in a warm colour, class 1 an angular one (a triangle or a rectangle)
//! usually in violet to magenta, each with a random size, position, rotation and aspect; a
//! share of objects (`1 - colour_cue`) take any colour, so that the outline matters too. The
//! background is one of two textures: "land" (vertical stripes in greens and browns) or
//! "water" (horizontal waves in blues). The background agrees with the class (land for class
//! 0, water for class 1) in 95% of training images and 50% of validation and test images by
//! default, with the class shares of the real Waterbirds splits, which reproduces its group
//! proportions.
//!
//! The background is a large, high-contrast cue that differs in both colour and orientation,
//! while the object covers a few percent of the image. A small network trained by ERM learns
//! the background first and leans on it for the minority groups, which is the situation ExMap
//! is built for, while its features still carry the object, as a pretrained network's do on
//! the real Waterbirds, so that last-layer retraining with the right groups can recover.
//!
//! Every image is drawn from its own ChaCha stream (the seed, stream = image index + 1), and
//! the split plan from stream 0, so the bytes depend on the seed only, never on the number of
//! threads that draw them.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::IngestError;

/// What the generator makes.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticSpec {
    pub seed: u64,
    /// Side of the square images in pixels.
    pub size: u32,
    pub n_train: usize,
    pub n_val: usize,
    pub n_test: usize,
    /// Share of training images whose background agrees with their class.
    pub train_agreement: f64,
    /// Share of validation images whose background agrees with their class.
    pub val_agreement: f64,
    /// Share of test images whose background agrees with their class.
    pub test_agreement: f64,
    /// Probability that the object's colour comes from its class's palette (warm hues for
    /// class 0, violet to magenta for class 1) rather than from the whole colour cube.
    pub colour_cue: f64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        Self {
            seed: 0,
            size: 64,
            n_train: 2000,
            n_val: 600,
            n_test: 600,
            train_agreement: 0.95,
            val_agreement: 0.5,
            test_agreement: 0.5,
            colour_cue: 0.9,
        }
    }
}

/// Class-1 share of each split of the real Waterbirds metadata (train, val, test):
/// 1113 of 4795, 266 of 1199 and 1284 of 5794 images are waterbirds.
const CLASS_ONE_SHARE: [f64; 3] = [1113.0 / 4795.0, 266.0 / 1199.0, 1284.0 / 5794.0];

/// One planned image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Planned {
    split: u8,
    y: u8,
    place: u8,
}

/// Writes `metadata.csv` and `images/<id>.png` for `spec` into `folder` (created if needed),
/// returning the number of images. `progress(done, total)` follows the drawing.
pub fn generate(
    spec: &SyntheticSpec,
    folder: &Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<usize, IngestError> {
    let plan = plan(spec);
    let images = folder.join("images");
    std::fs::create_dir_all(&images).map_err(|e| IngestError::io(&images, e))?;

    let total = plan.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    plan.par_iter().enumerate().try_for_each(|(index, planned)| {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        rng.set_stream(index as u64 + 1);
        let pixels = draw(&mut rng, planned, spec);
        let path = images.join(file_name(index));
        image::save_buffer(&path, &pixels, spec.size, spec.size, image::ExtendedColorType::Rgb8)
            .map_err(|e| IngestError::file(&path, format!("cannot write image: {e}")))?;
        let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if finished & 0xff == 0 || finished == total {
            progress(finished, total);
        }
        Ok::<(), IngestError>(())
    })?;

    let mut csv = String::from("img_id,img_filename,y,split,place,place_filename\n");
    for (index, planned) in plan.iter().enumerate() {
        let place = if planned.place == 0 { "land" } else { "water" };
        csv.push_str(&format!(
            "{},images/{},{},{},{},/{place}/{}\n",
            index + 1,
            file_name(index),
            planned.y,
            planned.split,
            planned.place,
            index + 1
        ));
    }
    let metadata = folder.join("metadata.csv");
    std::fs::write(&metadata, csv).map_err(|e| IngestError::io(&metadata, e))?;
    Ok(plan.len())
}

fn file_name(index: usize) -> String {
    format!("{:06}.png", index + 1)
}

/// The split, class and background of every image: exact counts per group (rounded), rows
/// shuffled within each split, splits in the order train, val, test.
fn plan(spec: &SyntheticSpec) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let splits = [
        (spec.n_train, spec.train_agreement),
        (spec.n_val, spec.val_agreement),
        (spec.n_test, spec.test_agreement),
    ];
    let mut plan = Vec::new();
    for (split, &(n, agreement)) in splits.iter().enumerate() {
        let n_one = (n as f64 * CLASS_ONE_SHARE[split]).round() as usize;
        let mut rows = Vec::with_capacity(n);
        for (y, n_class) in [(0u8, n - n_one), (1u8, n_one)] {
            let agree = (n_class as f64 * agreement).round() as usize;
            for i in 0..n_class {
                let place = if i < agree { y } else { 1 - y };
                rows.push(Planned { split: split as u8, y, place });
            }
        }
        for i in (1..rows.len()).rev() {
            rows.swap(i, rng.random_range(0..=i));
        }
        plan.extend(rows);
    }
    plan
}

/// Draws one image as interleaved RGB bytes.
fn draw(rng: &mut ChaCha8Rng, planned: &Planned, spec: &SyntheticSpec) -> Vec<u8> {
    let side = spec.size as usize;
    let scale = spec.size as f32 / 64.0;
    let mut canvas = vec![[0f32; 3]; side * side];
    background(rng, planned.place, side, scale, &mut canvas);
    let colour = if rng.random_bool(spec.colour_cue) {
        palette_colour(rng, planned.y)
    } else {
        std::array::from_fn(|_| rng.random_range(20.0..236.0))
    };
    foreground(rng, planned.y, colour, side, &mut canvas);
    canvas
        .iter()
        .flat_map(|p| p.map(|v| (v + rng.random_range(-6.0f32..6.0)).clamp(0.0, 255.0) as u8))
        .collect()
}

/// Land: vertical stripes alternating a dark green and a brown; water: horizontal waves
/// alternating a deep and a light blue. Colours, period, phase and wobble vary per image.
fn background(rng: &mut ChaCha8Rng, place: u8, side: usize, scale: f32, canvas: &mut [[f32; 3]]) {
    let (dark, light) = if place == 0 {
        ([40.0, 95.0, 35.0], [150.0, 115.0, 60.0])
    } else {
        ([25.0, 60.0, 150.0], [120.0, 185.0, 230.0])
    };
    let jitter: [f32; 3] = std::array::from_fn(|_| rng.random_range(-18.0..18.0));
    let period = rng.random_range(6.0..12.0) * scale;
    let phase = rng.random_range(0.0..std::f32::consts::TAU);
    let wobble_period = rng.random_range(16.0..32.0) * scale;
    let wobble_phase = rng.random_range(0.0..std::f32::consts::TAU);
    let wobble = rng.random_range(0.5..2.0) * scale;
    for row in 0..side {
        for col in 0..side {
            let (along, across) =
                if place == 0 { (row as f32, col as f32) } else { (col as f32, row as f32) };
            let shift =
                wobble * (std::f32::consts::TAU * along / wobble_period + wobble_phase).sin();
            let t = 0.5 + 0.5 * (std::f32::consts::TAU * (across + shift) / period + phase).sin();
            canvas[row * side + col] =
                std::array::from_fn(|c| dark[c] + t * (light[c] - dark[c]) + jitter[c]);
        }
    }
}

/// A colour from the class's palette: hue 0-50 degrees (red to amber) for class 0 and
/// 270-330 degrees (violet to magenta) for class 1, saturated and bright, so that neither
/// palette resembles the green, brown or blue backgrounds.
fn palette_colour(rng: &mut ChaCha8Rng, y: u8) -> [f32; 3] {
    let hue = if y == 0 { rng.random_range(0.0..50.0) } else { rng.random_range(270.0..330.0) };
    let saturation = rng.random_range(0.55f32..1.0);
    let value = rng.random_range(0.75f32..1.0);
    hsv_to_rgb(hue, saturation, value).map(|c| 255.0 * c)
}

/// HSV (hue in degrees, saturation and value in [0, 1]) to RGB in [0, 1].
fn hsv_to_rgb(hue: f32, saturation: f32, value: f32) -> [f32; 3] {
    let chroma = value * saturation;
    let sector = (hue / 60.0).rem_euclid(6.0);
    let x = chroma * (1.0 - (sector % 2.0 - 1.0).abs());
    let (r, g, b) = match sector as u32 {
        0 => (chroma, x, 0.0),
        1 => (x, chroma, 0.0),
        2 => (0.0, chroma, x),
        3 => (0.0, x, chroma),
        4 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    let m = value - chroma;
    [r + m, g + m, b + m]
}

/// The object: a disc or ellipse for class 0, a triangle or rectangle for class 1, all of
/// equal area, drawn with 4x4 supersampled edges in one colour.
fn foreground(rng: &mut ChaCha8Rng, y: u8, colour: [f32; 3], side: usize, canvas: &mut [[f32; 3]]) {
    let s = side as f32;
    let radius = rng.random_range(0.09..0.15) * s;
    let margin = REACH * radius + 1.0;
    let cx = rng.random_range(margin..s - margin);
    let cy = rng.random_range(margin..s - margin);
    let angle = rng.random_range(0.0..std::f32::consts::TAU);
    let aspect = rng.random_range(0.55..1.0);
    let shape = match (y, rng.random_bool(0.5)) {
        (0, true) => Shape::Ellipse { aspect: 1.0 },
        (0, false) => Shape::Ellipse { aspect },
        (_, true) => Shape::Triangle,
        (_, false) => Shape::Rectangle { aspect },
    };
    let (sin, cos) = angle.sin_cos();

    let low = |v: f32| (v - REACH * radius - 1.0).floor().max(0.0) as usize;
    let high = |v: f32| ((v + REACH * radius + 1.0).ceil() as usize).min(side);
    for row in low(cy)..high(cy) {
        for col in low(cx)..high(cx) {
            let mut inside = 0u32;
            for sub in 0..16 {
                let px = col as f32 + 0.125 + 0.25 * (sub % 4) as f32 - cx;
                let py = row as f32 + 0.125 + 0.25 * (sub / 4) as f32 - cy;
                let u = (cos * px + sin * py) / radius;
                let v = (-sin * px + cos * py) / radius;
                inside += u32::from(shape.contains(u, v));
            }
            if inside > 0 {
                let alpha = inside as f32 / 16.0;
                let pixel = &mut canvas[row * side + col];
                for c in 0..3 {
                    pixel[c] = (1.0 - alpha) * pixel[c] + alpha * colour[c];
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    Ellipse { aspect: f32 },
    Triangle,
    Rectangle { aspect: f32 },
}

/// How far, in units of the radius, the largest shape reaches from its centre (the
/// triangle's circumradius, below).
const REACH: f32 = 1.56;

impl Shape {
    /// Whether the point (u, v), in units of the object's radius, lies inside the shape. All
    /// shapes have the area of the unit disc, so that size says nothing about the class.
    fn contains(self, u: f32, v: f32) -> bool {
        match self {
            Shape::Ellipse { aspect } => {
                let (a, b) = (1.0 / aspect.sqrt(), aspect.sqrt());
                (u / a) * (u / a) + (v / b) * (v / b) <= 1.0
            }
            Shape::Rectangle { aspect } => {
                let half_width = (std::f32::consts::PI / (4.0 * aspect)).sqrt();
                u.abs() <= half_width && v.abs() <= aspect * half_width
            }
            // Equilateral, centred on its centroid, apex at v = -R: side 2.693 for area pi,
            // circumradius R = side / sqrt(3), base at v = R / 2.
            Shape::Triangle => {
                let circumradius = 2.6935 / 3f32.sqrt();
                let half_width = (v + circumradius) / 3f32.sqrt();
                (-circumradius..=circumradius / 2.0).contains(&v) && u.abs() <= half_width
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_matches_the_real_waterbirds_group_proportions() {
        let spec = SyntheticSpec { n_train: 4795, n_val: 1199, n_test: 5794, ..Default::default() };
        let plan = plan(&spec);
        let count = |split: u8, y: u8, place: u8| {
            plan.iter().filter(|p| *p == &Planned { split, y, place }).count()
        };
        let counts: Vec<[usize; 4]> = (0..3)
            .map(|s| [count(s, 0, 0), count(s, 0, 1), count(s, 1, 0), count(s, 1, 1)])
            .collect();
        // Every planned count is within one image of the real file's (SOURCES.md table).
        let real = [[3498, 184, 56, 1057], [467, 466, 133, 133], [2255, 2255, 642, 642]];
        for (split, (ours, theirs)) in counts.iter().zip(real).enumerate() {
            for (a, b) in ours.iter().zip(theirs) {
                assert!(a.abs_diff(b) <= 1, "split {split}: {ours:?} vs {theirs:?}");
            }
        }
    }

    #[test]
    fn validation_and_test_agreement_are_set_separately() {
        let spec = SyntheticSpec {
            n_train: 100,
            n_val: 1000,
            n_test: 1000,
            val_agreement: 0.8,
            test_agreement: 0.5,
            ..Default::default()
        };
        let plan = plan(&spec);
        let agreeing =
            |split: u8| plan.iter().filter(|p| p.split == split && p.y == p.place).count();
        // Rounded per class, so within one image per class of the share.
        assert!(agreeing(1).abs_diff(800) <= 2, "{}", agreeing(1));
        assert!(agreeing(2).abs_diff(500) <= 2, "{}", agreeing(2));
        assert!(agreeing(0).abs_diff(95) <= 2, "{}", agreeing(0));
    }

    #[test]
    fn hsv_conversion_hits_the_primaries_and_greys() {
        let close = |a: [f32; 3], b: [f32; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(hsv_to_rgb(0.0, 1.0, 1.0), [1.0, 0.0, 0.0]));
        assert!(close(hsv_to_rgb(120.0, 1.0, 1.0), [0.0, 1.0, 0.0]));
        assert!(close(hsv_to_rgb(240.0, 1.0, 1.0), [0.0, 0.0, 1.0]));
        assert!(close(hsv_to_rgb(300.0, 1.0, 0.5), [0.5, 0.0, 0.5]));
        assert!(close(hsv_to_rgb(77.0, 0.0, 0.25), [0.25, 0.25, 0.25]));
    }

    #[test]
    fn palettes_keep_the_classes_apart_in_hue() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let [r, g, b] = palette_colour(&mut rng, 0);
            assert!(r >= g && g >= b, "class 0 colour {r} {g} {b} is not a warm hue");
            let [r, g, b] = palette_colour(&mut rng, 1);
            assert!(b > g && r > g, "class 1 colour {r} {g} {b} is not violet to magenta");
        }
    }

    #[test]
    fn shapes_have_the_area_of_the_unit_disc_and_stay_within_reach() {
        let shapes = [
            Shape::Ellipse { aspect: 1.0 },
            Shape::Ellipse { aspect: 0.55 },
            Shape::Triangle,
            Shape::Rectangle { aspect: 0.55 },
            Shape::Rectangle { aspect: 1.0 },
        ];
        // Area by counting a 800 x 800 grid over [-2, 2]^2; the grid error is well under 1%.
        let step = 4.0 / 800.0;
        for shape in shapes {
            let mut inside = 0usize;
            for i in 0..800 {
                for j in 0..800 {
                    let (u, v) = (-2.0 + (i as f32 + 0.5) * step, -2.0 + (j as f32 + 0.5) * step);
                    if shape.contains(u, v) {
                        inside += 1;
                        assert!(u.hypot(v) <= REACH, "{shape:?} reaches ({u}, {v})");
                    }
                }
            }
            let area = inside as f32 * step * step;
            assert!((area - std::f32::consts::PI).abs() < 0.03, "{shape:?}: area {area}");
        }
    }
}
