//! The `dfr` stage end to end on generated artefacts.
//!
//! Features: column 0 carries the class (+-1 plus noise), column 1 the spurious attribute
//! (+-2 plus noise, so it is the easier cue), the rest is noise. Validation groups are skewed
//! towards the majority groups (spurious attribute agrees with the class); the test split is
//! balanced. Rows are numbered out of position order so that any positional join would fail.

use std::path::{Path, PathBuf};

use exmap_artefact::{read_json, write_table, Table, Tensor, TensorWriter};
use exmap_dfr::{DfrParams, DfrStage, GroupSource};
use exmap_metrics::RetrainResult;
use exmap_stage::{SilentProgress, Stage, StageContext};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 12;

struct Sample {
    row: i64,
    y: i64,
    spurious: i64,
    split: &'static str,
}

/// Group sizes per split, for groups (y, spurious) = (0,0), (0,1), (1,0), (1,1).
fn samples() -> Vec<Sample> {
    let plan =
        [("train", [300, 20, 20, 300]), ("val", [120, 20, 20, 120]), ("test", [50, 50, 50, 50])];
    let mut out = Vec::new();
    for (split, sizes) in plan {
        for (g, n) in sizes.into_iter().enumerate() {
            for _ in 0..n {
                let row = (out.len() as i64 * 7919) % 1000 + 1000 * out.len() as i64;
                out.push(Sample { row, y: g as i64 / 2, spurious: g as i64 % 2, split });
            }
        }
    }
    out
}

fn features(sample: &Sample, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut x: Vec<f32> = (0..DIM).map(|_| rng.random::<f32>() - 0.5).collect();
    x[0] += (2 * sample.y - 1) as f32 * 0.8;
    x[1] += (2 * sample.spurious - 1) as f32 * 2.0;
    x
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let samples = samples();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let table = Table::builder()
        .i64("row", samples.iter().map(|s| s.row).collect())
        .str("id", &samples.iter().map(|s| format!("img{}", s.row)).collect::<Vec<_>>())
        .str("path", &vec![""; samples.len()])
        .i64("y", samples.iter().map(|s| s.y).collect())
        .i64("spurious", samples.iter().map(|s| s.spurious).collect())
        .i64("group", samples.iter().map(|s| 2 * s.y + s.spurious).collect())
        .str("split", &samples.iter().map(|s| s.split).collect::<Vec<_>>())
        .build();
    write_table(&root.join("manifest.parquet"), &table).unwrap();

    let mut writer = TensorWriter::new();
    for split in ["val", "test"] {
        // Reverse order: embeddings need not follow the manifest order.
        let chosen: Vec<&Sample> = samples.iter().filter(|s| s.split == split).rev().collect();
        let values: Vec<f32> = chosen.iter().flat_map(|s| features(s, &mut rng)).collect();
        let rows: Vec<i64> = chosen.iter().map(|s| s.row).collect();
        writer.add(format!("{split}.features"), Tensor::from_f32(vec![chosen.len(), DIM], &values));
        writer.add(format!("{split}.rows"), Tensor::from_i64(vec![chosen.len()], &rows));
    }
    writer.write(&root.join("embeddings.safetensors")).unwrap();

    // Pseudo groups that equal the true groups, but only for the first `val` rows given.
    let val: Vec<&Sample> = samples.iter().filter(|s| s.split == "val").collect();
    write_pseudo(&root.join("pseudo.parquet"), &val);
    write_pseudo(&root.join("pseudo_short.parquet"), &val[..val.len() - 3]);
    Fixture { _dir: dir, root }
}

fn write_pseudo(path: &Path, rows: &[&Sample]) {
    let groups: Vec<i64> = rows.iter().map(|s| 2 * s.y + s.spurious).collect();
    let table = Table::builder()
        .i64("row", rows.iter().map(|s| s.row).collect())
        .str("id", &rows.iter().map(|s| format!("img{}", s.row)).collect::<Vec<_>>())
        .i64("y", rows.iter().map(|s| s.y).collect())
        .i64("local_cluster", groups.iter().map(|g| g % 2).collect())
        .i64("local_group", groups.clone())
        .i64("global_cluster", groups.iter().map(|g| g % 2).collect())
        .i64("global_group", groups)
        .build();
    write_table(path, &table).unwrap();
}

fn small_params(groups: GroupSource) -> DfrParams {
    DfrParams { groups, tune_rounds: 2, refits: 4, repeats: 2, ..DfrParams::default() }
}

fn run(
    fx: &Fixture,
    params: &DfrParams,
    pseudo: Option<&str>,
    out: &str,
) -> Result<PathBuf, String> {
    let progress = SilentProgress;
    let mut ctx = StageContext::new("dfr", 5, fx.root.clone(), &progress)
        .with_input("embeddings", vec![fx.root.join("embeddings.safetensors")])
        .with_input("manifest", vec![fx.root.join("manifest.parquet")])
        .with_output("result", fx.root.join(out));
    if let Some(name) = pseudo {
        ctx = ctx.with_input("pseudo_groups", vec![fx.root.join(name)]);
    }
    ctx.threads = 2;
    DfrStage.run(params, &ctx).map_err(|e| e.to_string())?;
    Ok(fx.root.join(out))
}

#[test]
fn true_groups_give_a_robust_classifier_and_a_complete_record() {
    let fx = fixture();
    let path = run(&fx, &small_params(GroupSource::True), None, "true.json").unwrap();
    let result: RetrainResult = read_json(&path).unwrap();
    assert_eq!((result.method.as_str(), result.groups.as_str()), ("dfr", "true"));
    assert_eq!(result.label, "DFR (true groups)");
    assert_eq!(result.n_groups, 4);
    assert_eq!(result.repeats.len(), 2);
    assert_eq!(result.tuning.len(), 7);
    assert!(result.tuning.iter().any(|t| t.c == result.chosen["C"]));
    // Balanced on true groups, the class feature wins over the spurious one: every test
    // group is well above chance (the noise leaves about 90% separable).
    let wga = result.summary["worst_group_accuracy"].mean;
    assert!(wga > 0.75, "worst-group accuracy {wga}");
    assert_eq!(result.repeats[0].group_accuracy.len(), 4);
}

#[test]
fn identical_runs_write_identical_bytes() {
    let fx = fixture();
    let a = run(&fx, &small_params(GroupSource::Classes), None, "a.json").unwrap();
    let b = run(&fx, &small_params(GroupSource::Classes), None, "b.json").unwrap();
    assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
}

#[test]
fn pseudo_groups_are_joined_by_row() {
    let fx = fixture();
    let params = DfrParams { label: Some("mine".into()), ..small_params(GroupSource::Global) };
    let pseudo = run(&fx, &params, Some("pseudo.parquet"), "global.json").unwrap();
    let truth = run(&fx, &small_params(GroupSource::True), None, "true.json").unwrap();
    let (pseudo, truth): (RetrainResult, RetrainResult) =
        (read_json(&pseudo).unwrap(), read_json(&truth).unwrap());
    // The pseudo table holds the true groups, so the whole procedure must agree.
    assert_eq!(pseudo.repeats, truth.repeats);
    assert_eq!(
        (pseudo.label.as_str(), pseudo.group_source.as_str()),
        ("mine", "pseudo_groups.global_group")
    );
}

#[test]
fn pseudo_groups_that_miss_validation_rows_are_an_error_naming_them() {
    let fx = fixture();
    let err = run(&fx, &small_params(GroupSource::Local), Some("pseudo_short.parquet"), "x.json")
        .unwrap_err();
    assert!(
        err.contains("pseudo_short.parquet") && err.contains("3 of 280 validation rows"),
        "{err}"
    );
    assert!(err.contains("(`img"), "{err}");
    let err = run(&fx, &small_params(GroupSource::Local), None, "y.json").unwrap_err();
    assert!(err.contains("`pseudo_groups`"), "{err}");
}

#[test]
fn unknown_parameters_and_bad_grids_are_rejected() {
    use exmap_stage::DynStage;
    let err = DynStage::resolve(&DfrStage, &serde_json::json!({"c": [1.0]})).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("c"));
    let err =
        DynStage::resolve(&DfrStage, &serde_json::json!({"c_grid": [1.0, -0.5]})).unwrap_err();
    assert!(err.message.contains("-0.5"), "{}", err.message);
    let resolved = DynStage::resolve(&DfrStage, &serde_json::json!({"groups": "local"})).unwrap();
    assert_eq!(resolved["refits"], 20);
    let ports = DynStage::inputs(&DfrStage, &resolved);
    assert!(ports.iter().any(|p| p.name == "pseudo_groups" && !p.optional));
}
