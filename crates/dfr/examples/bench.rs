//! Times the full DFR procedure at Waterbirds scale on generated features.
//!
//! 1,199 validation samples in Waterbirds' validation group sizes (467 / 466 / 133 / 133) and
//! 2,000 balanced test samples, 2,048 non-negative features (like a ResNet-50's pooled
//! activations) where a few hundred carry the class, a few hundred the spurious attribute
//! (more strongly), and all carry noise. The defaults run the reference grid: 7 C values,
//! 5 tuning rounds, 5 repeats of 20 refits, with true groups.
//!
//! ```text
//! cargo run --release -p exmap-dfr --example bench -- [--threads N] [--seed S] [--out DIR]
//! ```
//!
//! `--out DIR` also writes `embeddings.safetensors` (`val`, `test`: f32) and `meta.parquet`
//! (`y`, `group`, `split` as 0/1/2, train rows included) so that scikit-learn can run the same
//! procedure on the same features for comparison.
#![expect(clippy::print_stdout, reason = "a benchmark reports to the terminal")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use exmap_artefact::{write_table, Table, Tensor, TensorWriter};
use exmap_dfr::{run_dfr, DfrConfig, ValidationSet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 2048;
const VAL_GROUPS: [usize; 4] = [467, 466, 133, 133];
const TEST_GROUPS: [usize; 4] = [500, 500, 500, 500];
const TRAIN_GROUPS: [usize; 4] = [3498, 184, 56, 1057];

struct Split {
    features: Vec<f64>,
    y: Vec<i64>,
    group: Vec<i64>,
}

fn generate(sizes: [usize; 4], rng: &mut ChaCha8Rng) -> Split {
    let mut split = Split { features: Vec::new(), y: Vec::new(), group: Vec::new() };
    for (g, n) in sizes.into_iter().enumerate() {
        let (y, spurious) = ((g / 2) as f64 * 2.0 - 1.0, (g % 2) as f64 * 2.0 - 1.0);
        for _ in 0..n {
            for j in 0..DIM {
                let signal = match j % 8 {
                    0 => 0.35 * y,
                    1 => 0.7 * spurious,
                    _ => 0.0,
                };
                let noise: f64 = (0..3).map(|_| rng.random::<f64>() - 0.5).sum::<f64>() * 1.2;
                split.features.push((signal + noise + 0.2).max(0.0));
            }
            split.y.push((g / 2) as i64);
            split.group.push(g as i64);
        }
    }
    split
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut threads = 2usize;
    let mut seed = 1u64;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("`{arg}` needs a value"))?;
        match arg.as_str() {
            "--threads" => threads = value.parse()?,
            "--seed" => seed = value.parse()?,
            "--out" => out = Some(PathBuf::from(value)),
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let val = generate(VAL_GROUPS, &mut rng);
    let test = generate(TEST_GROUPS, &mut rng);
    if let Some(dir) = &out {
        write_inputs(dir, &val, &test)?;
    }

    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let data = ValidationSet { features: &val.features, dim: DIM, y: &val.y, groups: &val.group };
    let config = DfrConfig::default();
    let started = Instant::now();
    let outcome = pool.install(|| run_dfr(&data, &config, seed, &|_, _, _| {}))?;
    let seconds = started.elapsed().as_secs_f64();

    let train: Vec<i64> = TRAIN_GROUPS
        .iter()
        .enumerate()
        .flat_map(|(g, n)| std::iter::repeat_n(g as i64, *n))
        .collect();
    let shares = exmap_metrics::group_shares(&train);
    let repeats = outcome
        .models
        .iter()
        .map(|model| {
            let pred = model.predict(&test.features, 0..test.y.len());
            exmap_metrics::evaluate(&pred, &test.y, &test.group, &shares)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let summary = exmap_metrics::summarise(&repeats);
    let scores: BTreeMap<String, f64> =
        outcome.tuning.scores.iter().map(|(c, s)| (c.to_string(), *s)).collect();
    println!("threads {threads}, seed {seed}: {seconds:.2} s");
    println!("chosen C {} (tuning scores {scores:?})", outcome.tuning.best_c);
    println!(
        "test worst-group accuracy {:.4} +- {:.4}, train-weighted mean {:.4}",
        summary["worst_group_accuracy"].mean,
        summary["worst_group_accuracy"].std,
        summary["mean_accuracy"].mean
    );
    println!(
        "non-zero weights per averaged model: {:?}; unconverged fits: {}",
        outcome.models.iter().map(|m| m.nonzero_weights()).collect::<Vec<_>>(),
        outcome.unconverged_fits
    );
    Ok(())
}

fn write_inputs(
    dir: &std::path::Path,
    val: &Split,
    test: &Split,
) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let as_f32 = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
    let mut writer = TensorWriter::new();
    writer
        .add("val", Tensor::from_f32(vec![val.y.len(), DIM], &as_f32(&val.features)))
        .add("test", Tensor::from_f32(vec![test.y.len(), DIM], &as_f32(&test.features)));
    writer.write(&dir.join("embeddings.safetensors"))?;

    // Metadata rows in the order train, val, test, as the embeddings' rows follow it.
    let (mut y, mut group, mut split) = (Vec::new(), Vec::new(), Vec::new());
    for (g, n) in TRAIN_GROUPS.iter().enumerate() {
        y.extend(std::iter::repeat_n(g as i64 / 2, *n));
        group.extend(std::iter::repeat_n(g as i64, *n));
        split.extend(std::iter::repeat_n(0i64, *n));
    }
    for (code, part) in [(1i64, val), (2, test)] {
        y.extend_from_slice(&part.y);
        group.extend_from_slice(&part.group);
        split.extend(std::iter::repeat_n(code, part.y.len()));
    }
    let table = Table::builder().i64("y", y).i64("group", group).i64("split", split).build();
    write_table(&dir.join("meta.parquet"), &table)?;
    Ok(())
}
