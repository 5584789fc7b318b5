//! The `evaluate` stage on small hand-made artefacts whose metrics are worked out by hand.

use std::path::Path;

use exmap_artefact::{read_json, write_table, Table, Tensor, TensorWriter};
use exmap_eval::{EvaluateParams, EvaluateStage};
use exmap_metrics::RetrainResult;
use exmap_stage::{SilentProgress, Stage, StageContext};

/// Manifest: 4 train rows (groups 0, 0, 0, 3), then 6 test rows listed below. Rows are
/// numbered from 100 so that nothing can line up by position by accident.
fn write_manifest(path: &Path) {
    let splits =
        ["train", "train", "train", "train", "test", "test", "test", "test", "test", "test"];
    let y = vec![0, 0, 0, 1, 0, 0, 1, 1, 1, 0];
    let group = vec![0, 0, 0, 3, 0, 1, 2, 3, 3, 1];
    let rows: Vec<i64> = (100..110).collect();
    let ids: Vec<String> = rows.iter().map(|r| format!("img{r}")).collect();
    let table = Table::builder()
        .i64("row", rows)
        .str("id", &ids)
        .str("path", &[""; 10])
        .i64("y", y)
        .i64("spurious", vec![0; 10])
        .i64("group", group)
        .str("split", &splits)
        .build();
    write_table(path, &table).unwrap();
}

/// Test logits in a shuffled row order: predictions row 104 -> 0, 105 -> 1 (wrong),
/// 106 -> 1, 107 -> 0 (wrong), 108 -> 1, 109 -> 0.
fn write_embeddings(path: &Path, rows: Vec<i64>) {
    let logit = |row: i64| match row {
        104 | 107 | 109 => [2.0f32, -1.0],
        _ => [-0.5f32, 0.5],
    };
    let logits: Vec<f32> = rows.iter().flat_map(|r| logit(*r)).collect();
    let mut writer = TensorWriter::new();
    writer
        .add("test.logits", Tensor::from_f32(vec![rows.len(), 2], &logits))
        .add("test.rows", Tensor::from_i64(vec![rows.len()], &rows))
        .add("test.features", Tensor::from_f32(vec![rows.len(), 1], &vec![0.0; rows.len()]));
    writer.write(path).unwrap();
}

fn run(rows: Vec<i64>) -> Result<RetrainResult, String> {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, embeddings, out) = (
        dir.path().join("manifest.parquet"),
        dir.path().join("emb.safetensors"),
        dir.path().join("r.json"),
    );
    write_manifest(&manifest);
    write_embeddings(&embeddings, rows);
    let progress = SilentProgress;
    let ctx = StageContext::new("evaluate", 0, dir.path().to_path_buf(), &progress)
        .with_input("embeddings", vec![embeddings])
        .with_input("manifest", vec![manifest])
        .with_output("result", out.clone());
    EvaluateStage.run(&EvaluateParams::default(), &ctx).map_err(|e| e.to_string())?;
    Ok(read_json(&out).unwrap())
}

#[test]
fn erm_row_scores_argmax_predictions_on_true_groups() {
    let result = run(vec![109, 104, 107, 105, 108, 106]).unwrap();
    assert_eq!(
        (result.method.as_str(), result.groups.as_str(), result.label.as_str()),
        ("erm", "none", "ERM")
    );
    assert_eq!(result.repeats.len(), 1);
    let m = &result.repeats[0];
    // Group 0: row 104 right. Group 1: 105 wrong, 109 right. Group 2: 106 right.
    // Group 3: 107 wrong, 108 right.
    assert_eq!(m.worst_group_accuracy, 0.5);
    // Train shares: group 0 3/4, group 3 1/4 -> 0.75 * 1 + 0.25 * 0.5.
    assert!((m.mean_accuracy - 0.875).abs() < 1e-12);
    assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
    // Class 0 (104, 105, 109): 2/3 right; class 1 (106, 107, 108): 2/3 right.
    assert!((m.balanced_accuracy - 2.0 / 3.0).abs() < 1e-12);
    assert!(result.summary.values().all(|s| s.std == 0.0));
    assert_eq!(result.summary["worst_group_accuracy"].mean, 0.5);
}

#[test]
fn unknown_test_row_is_an_error_naming_the_row() {
    let err = run(vec![104, 999]).unwrap_err();
    assert!(err.contains("manifest row 999") && err.contains("emb.safetensors"), "{err}");
}
