//! The `cluster` and `cluster-embeddings` stages end to end on files written here.

mod common;

use std::path::{Path, PathBuf};

use exmap_artefact::{read_table, write_table, Table, Tensor, TensorWriter};
use exmap_cluster::{
    ClusterEmbeddingsParams, ClusterEmbeddingsStage, ClusterParams, ClusterStage, NeighbourChoice,
};
use exmap_stage::{SilentProgress, Stage, StageContext};

/// Two classes, each made of two blobs (true groups 2y + blob); manifest rows are offset by
/// 100 and heatmap rows run in reverse manifest order, so that nothing lines up by position.
fn write_inputs(dir: &Path, poison_row: Option<usize>) -> (PathBuf, PathBuf, PathBuf) {
    let (rows, blob) = common::blobs(&[40, 25, 30, 35], 6, 3);
    let n = rows.n;
    let y: Vec<i64> = blob.iter().map(|&b| b / 2).collect();
    let group: Vec<i64> = blob.clone();
    let manifest_rows: Vec<i64> = (0..n as i64).map(|i| 100 + i).collect();
    let ids: Vec<String> = (0..n).map(|i| format!("img-{i}")).collect();
    let manifest = Table::builder()
        .i64("row", manifest_rows.clone())
        .str("id", &ids)
        .str("path", &vec![""; n])
        .i64("y", y)
        .i64("spurious", blob.iter().map(|&b| b % 2).collect())
        .i64("group", group)
        .str("split", &vec!["val"; n])
        .build();
    let manifest_path = dir.join("manifest.parquet");
    write_table(&manifest_path, &manifest).unwrap();

    let order: Vec<usize> = (0..n).rev().collect();
    let mut values = rows.select(&order).values;
    if let Some(r) = poison_row {
        values[r * 6 + 1] = f32::NAN;
    }
    let heat_rows: Vec<i64> = order.iter().map(|&i| manifest_rows[i]).collect();
    let heatmaps_path = dir.join("heatmaps.safetensors");
    TensorWriter::new()
        .add("heatmaps", Tensor::from_f32(vec![n, 6], &values))
        .add("rows", Tensor::from_i64(vec![n], &heat_rows))
        .add("pred", Tensor::from_i64(vec![n], &vec![0; n]))
        .metadata("method", "lrp")
        .write(&heatmaps_path)
        .unwrap();
    let embeddings_path = dir.join("embeddings.safetensors");
    TensorWriter::new()
        .add("val.features", Tensor::from_f32(vec![n, 6], &values))
        .add("val.rows", Tensor::from_i64(vec![n], &heat_rows))
        .add("val.logits", Tensor::from_f32(vec![n, 2], &vec![0.0; 2 * n]))
        .write(&embeddings_path)
        .unwrap();
    (heatmaps_path, manifest_path, embeddings_path)
}

fn context<'a>(
    dir: &Path,
    input: (&str, &Path),
    manifest: &Path,
    tag: &str,
    progress: &'a SilentProgress,
) -> StageContext<'a> {
    StageContext::new("cluster", 1, dir.join("scratch"), progress)
        .with_input(input.0, vec![input.1.to_path_buf()])
        .with_input("manifest", vec![manifest.to_path_buf()])
        .with_output("groups", dir.join(format!("groups-{tag}.parquet")))
        .with_output("diagnostics", dir.join(format!("diagnostics-{tag}.json")))
}

#[test]
fn cluster_stage_writes_contiguous_groups_and_diagnostics_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let (heatmaps, manifest, _) = write_inputs(dir.path(), None);
    let progress = SilentProgress;
    // Ten neighbours keep each 25-40 point blob one tight piece of the graph, so that the
    // eigengap sees the blobs (with ln N neighbours the within-blob gaps compete).
    let params = ClusterParams { neighbors: NeighbourChoice::Fixed(10), ..Default::default() };
    for tag in ["a", "b"] {
        let ctx = context(dir.path(), ("heatmaps", &heatmaps), &manifest, tag, &progress);
        ClusterStage.run(&params, &ctx).unwrap();
    }
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    assert_eq!(read("groups-a.parquet"), read("groups-b.parquet"));
    assert_eq!(read("diagnostics-a.json"), read("diagnostics-b.json"));

    let table = read_table(&dir.path().join("groups-a.parquet")).unwrap();
    let rows = table.i64("row").unwrap();
    let ids = table.str("id").unwrap();
    assert_eq!(rows[0], 229, "rows keep the heatmap order");
    assert_eq!(ids[0], "img-129");
    let local = table.i64("local_group").unwrap();
    let global = table.i64("global_group").unwrap();
    let y = table.i64("y").unwrap();
    // Each class holds two separated blobs: two local groups per class, numbered by class.
    let mut pairs: Vec<(i64, i64)> = y.iter().copied().zip(local.iter().copied()).collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs, vec![(0, 0), (0, 1), (1, 2), (1, 3)]);
    let mut distinct = global.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct, (0..distinct.len() as i64).collect::<Vec<_>>(), "contiguous");

    let diagnostics: serde_json::Value =
        serde_json::from_slice(&read("diagnostics-a.json")).unwrap();
    for partition in ["y0", "y1", "all"] {
        let p = &diagnostics["partitions"][partition];
        assert_eq!(p["eigenvalues"].as_array().unwrap().len(), 13, "{partition}");
        assert!(p["adjusted_rand_index"].as_f64().unwrap() > 0.99, "{partition}: {p}");
        assert_eq!(p["purity"].as_f64().unwrap(), 1.0, "{partition}");
    }
    assert_eq!(diagnostics["partitions"]["y0"]["k"], 2);
    assert_eq!(diagnostics["partitions"]["all"]["k"], 4);
    assert_eq!(diagnostics["n_local_groups"], 4);
}

#[test]
fn a_nan_heatmap_is_rejected_naming_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let (heatmaps, manifest, _) = write_inputs(dir.path(), Some(5));
    let progress = SilentProgress;
    let ctx = context(dir.path(), ("heatmaps", &heatmaps), &manifest, "nan", &progress);
    let err = ClusterStage.run(&ClusterParams::default(), &ctx).unwrap_err().to_string();
    // Heatmap row 5 is manifest index 124, row 224.
    assert!(
        err.contains("row 5") && err.contains("img-124") && err.contains("heatmaps.safetensors"),
        "{err}"
    );
}

#[test]
fn embeddings_stage_clusters_the_named_split() {
    let dir = tempfile::tempdir().unwrap();
    let (_, manifest, embeddings) = write_inputs(dir.path(), None);
    let progress = SilentProgress;
    let ctx = context(dir.path(), ("embeddings", &embeddings), &manifest, "emb", &progress);
    ClusterEmbeddingsStage.run(&ClusterEmbeddingsParams::default(), &ctx).unwrap();
    let table = read_table(&dir.path().join("groups-emb.parquet")).unwrap();
    assert_eq!(table.num_rows(), 130);
    let params = ClusterEmbeddingsParams { split: "test".into(), ..Default::default() };
    let err = ClusterEmbeddingsStage.run(&params, &ctx).unwrap_err().to_string();
    assert!(err.contains("test.features"), "{err}");
}

#[test]
fn parameters_resolve_with_reference_defaults_and_reject_unknown_keys() {
    use exmap_stage::DynStage;
    let resolved = DynStage::resolve(&ClusterStage, &serde_json::Value::Null).unwrap();
    assert_eq!(resolved["k"], "eigengap");
    assert_eq!(resolved["neighbors"], "ln");
    assert_eq!(resolved["assign"], "cluster_qr");
    assert_eq!(resolved["normalise"], "max_abs");
    let fixed = DynStage::resolve(
        &ClusterStage,
        &serde_json::json!({"k": 8, "method": "spectral2d-kmeans"}),
    )
    .unwrap();
    assert_eq!(fixed["k"], 8);
    let err = DynStage::resolve(&ClusterStage, &serde_json::json!({"clusters": 3})).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("clusters"));
    assert!(DynStage::resolve(&ClusterStage, &serde_json::json!({"k_min": 5, "k_max": 3})).is_err());
}
