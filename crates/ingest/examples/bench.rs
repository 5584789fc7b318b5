//! Times ingest of a Waterbirds-sized folder of JPEGs to the stored form at 256 x 256.
//!
//! Generates COUNT (default 12,000) JPEGs of about 500 x 400 pixels with a Waterbirds
//! `metadata.csv` in a temporary folder, then runs the `ingest` stage on it and reports the
//! wall time, images per second and peak resident memory of the ingest alone.
//!
//! Usage: `cargo run --release -p exmap-ingest --example bench -- [COUNT] [SIZE]`

use std::path::Path;
use std::time::Instant;

use exmap_ingest::IngestStage;
use exmap_stage::{DynStage, SilentProgress, StageContext};
use image::{codecs::jpeg::JpegEncoder, RgbImage};
use rayon::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(12_000);
    let size: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(256);
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");

    let start = Instant::now();
    write_folder(&data, count)?;
    let bytes: u64 = std::fs::read_dir(data.join("images"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "generated {count} JPEGs ({:.0} MB) in {:.1} s",
        bytes as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );

    reset_peak_rss();
    let before = peak_rss_mb();
    let progress = SilentProgress;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let ctx = StageContext::new("bench", 0, dir.path().join("scratch"), &progress)
        .with_output("manifest", out.join("manifest.parquet"))
        .with_output("groups", out.join("groups.parquet"))
        .with_output("images", out.join("images.safetensors"));
    let params = serde_json::json!({"format": "waterbirds", "root": data, "image_size": size});
    let resolved = IngestStage.resolve(&params)?;
    let start = Instant::now();
    IngestStage.run(&resolved, &ctx)?;
    let seconds = start.elapsed().as_secs_f64();
    let stored = std::fs::metadata(out.join("images.safetensors"))?.len();
    eprintln!(
        "ingest: {count} images to {size}x{size} in {seconds:.1} s ({:.0} images/s) on {} \
         threads; images.safetensors {:.0} MB; peak RSS {:.0} MB (was {:.0} MB before ingest)",
        count as f64 / seconds,
        rayon::current_num_threads(),
        stored as f64 / 1e6,
        peak_rss_mb(),
        before,
    );
    Ok(())
}

/// Writes `count` JPEGs of 480-520 x 380-420 pixels and a Waterbirds `metadata.csv` with
/// the real split sizes' proportions and every group in every split.
fn write_folder(folder: &Path, count: usize) -> Result<(), Box<dyn std::error::Error>> {
    let images = folder.join("images");
    std::fs::create_dir_all(&images)?;
    (0..count)
        .into_par_iter()
        .try_for_each(|index| {
            let width = 480 + (index * 7 % 41) as u32;
            let height = 380 + (index * 13 % 41) as u32;
            let image = RgbImage::from_fn(width, height, |x, y| {
                let noise = hash(index as u32, x, y);
                let wave = ((x as f32 / 17.0 + index as f32).sin() * 60.0) as i32;
                image::Rgb([
                    (x * 255 / width) as u8 ^ (noise & 15) as u8,
                    (y * 255 / height) as u8 ^ ((noise >> 4) & 15) as u8,
                    (128 + wave) as u8 ^ ((noise >> 8) & 31) as u8,
                ])
            });
            let file = std::fs::File::create(images.join(format!("{index:06}.jpg")))?;
            let mut writer = std::io::BufWriter::new(file);
            JpegEncoder::new_with_quality(&mut writer, 90).encode_image(&image)?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .map_err(|e| e.to_string())?;

    let mut csv = String::from("img_id,img_filename,y,split,place,place_filename\n");
    for index in 0..count {
        // Splits 40/10/50 percent, groups cycling so that every split has all four.
        let split = match index % 10 {
            0..=3 => 0,
            4 => 1,
            _ => 2,
        };
        let group = index / 10 % 4;
        csv.push_str(&format!(
            "{},images/{index:06}.jpg,{},{split},{},/p/{index}\n",
            index + 1,
            group / 2,
            group % 2
        ));
    }
    std::fs::write(folder.join("metadata.csv"), csv)?;
    Ok(())
}

fn hash(a: u32, b: u32, c: u32) -> u32 {
    let mut h =
        a.wrapping_mul(0x9E37_79B9) ^ b.wrapping_mul(0x85EB_CA6B) ^ c.wrapping_mul(0xC2B2_AE35);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^ (h >> 12)
}

/// Resets the kernel's peak-RSS counter of this process (Linux; ignored elsewhere).
fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM to the current RSS; where unsupported the reported
    // peak covers the generation too, which only overstates it.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory in MB from /proc/self/status (0 where unavailable).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
