//! Times the whole partition clustering (class 0, class 1, all) on generated structured
//! heatmaps and prints seconds and peak RSS.
//!
//! ```text
//! cargo run --release --example bench -p exmap-cluster -- N D [OUT_DIR]
//! ```
//!
//! Rows are one of 8 smooth prototypes times a random amplitude plus white noise; 22% of rows
//! are class 1. With OUT_DIR, the heatmaps (`heatmaps` f32 [N, D]) and labels (`y`) are also
//! written there as `heatmaps.safetensors` and `labels.parquet`, for the scikit-learn side.
#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]

use std::time::Instant;

use exmap_artefact::{write_table, Table, Tensor, TensorWriter};
use exmap_cluster::{
    cluster_partition_shared, ClusterSettings, Gram, GramView, Normalise, Rows, Solver,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1199);
    let d: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(37632);
    let out = args.get(3);

    let (values, y) = generate(n, d, 7);
    if let Some(folder) = out {
        let folder = std::path::Path::new(folder);
        std::fs::create_dir_all(folder).expect("output folder");
        TensorWriter::new()
            .add("heatmaps", Tensor::from_f32(vec![n, d], &values))
            .write(&folder.join("heatmaps.safetensors"))
            .expect("write heatmaps");
        write_table(&folder.join("labels.parquet"), &Table::builder().i64("y", y.clone()).build())
            .expect("write labels");
    }

    let started = Instant::now();
    let mut rows = Rows::new(n, d, values).expect("shape");
    rows.normalise(Normalise::MaxAbs);
    let settings = ClusterSettings::default();
    // As the stage does: one Gram matrix for every partition when it fits in 256 MiB.
    let gram = (Gram::bytes(n) <= 256 << 20).then(|| Gram::new(&rows));
    let gram_seconds = started.elapsed().as_secs_f64();
    let mut line = vec![format!("gram {gram_seconds:.2}s")];
    for (name, class) in [("y0", Some(0)), ("y1", Some(1)), ("all", None)] {
        let members: Vec<usize> = (0..n).filter(|&i| class.is_none_or(|c| y[i] == c)).collect();
        let subset = rows.select(&members);
        let shared = gram.as_ref().map(|gram| GramView { gram, members: &members });
        let result = cluster_partition_shared(&subset, &settings, 1, Solver::Auto, shared)
            .expect("clustering");
        let r = &result.report;
        line.push(format!("{name}: n={} k={} {} {:.2}s", r.n, r.k, r.solver, r.seconds));
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "N={n} D={d} threads={} total_s={seconds:.2} peak_rss_mib={:.0}",
        rayon::current_num_threads(),
        peak_rss_mib()
    );
    println!("{}", line.join(" | "));
}

/// Structured rows and classes.
fn generate(n: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let prototypes: Vec<Vec<f32>> = (0..8)
        .map(|_| {
            let (f1, f2, phase) = (
                rng.random_range(1.0..6.0f32),
                rng.random_range(1.0..6.0f32),
                rng.random_range(0.0..std::f32::consts::TAU),
            );
            (0..d)
                .map(|j| {
                    let t = j as f32 / d as f32;
                    (std::f32::consts::TAU * f1 * t + phase).sin()
                        * (std::f32::consts::TAU * f2 * t).cos()
                })
                .collect()
        })
        .collect();
    let mut values = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let which = rng.random_range(0..prototypes.len());
        let amplitude = rng.random_range(0.5..1.5f32);
        for &p in &prototypes[which] {
            let noise = rng.random::<f32>() + rng.random::<f32>() + rng.random::<f32>() - 1.5;
            values.push(amplitude * p + 0.8 * noise);
        }
        y.push(i64::from(rng.random::<f64>() < 0.22));
    }
    (values, y)
}

/// Peak resident set size of this process, from `/proc/self/status`.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}
