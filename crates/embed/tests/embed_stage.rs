//! The `embed` stage on a tiny generated dataset and a randomly initialised model artefact.
//!
//! Expected values are recomputed here with the models crate directly (whole split in one
//! batch); the stage must agree within 1e-5 (f32, different batch sizes) and keep manifest
//! order.

use std::path::PathBuf;

use exmap_artefact::{write_table, Table, TensorFile, TensorWriter};
use exmap_embed::{Embed, EmbedParams};
use exmap_models::{
    load_model_artefact, save_weights, Arch, ModelInfo, ResNet, ResNetConfig, Stem, IMAGENET_MEAN,
    IMAGENET_STD,
};
use exmap_stage::{SilentProgress, Stage, StageContext, StageError};
use tch::{nn, Device, Kind, Tensor};

const SPLITS: [&str; 10] =
    ["val", "train", "test", "val", "val", "test", "train", "val", "test", "val"];

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    model: PathBuf,
    manifest: PathBuf,
    images: PathBuf,
    pixels: Vec<u8>,
}

fn fixture(rows: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    tch::manual_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    let config = ResNetConfig { arch: Arch::ResNet18, stem: Stem::Small, num_classes: 3 };
    let _net = ResNet::new(&vs.root(), config);
    let info = ModelInfo {
        config,
        mean: Some(IMAGENET_MEAN),
        std: Some(IMAGENET_STD),
        resize: 10,
        crop: 8,
    };
    let model = root.join("model.safetensors");
    save_weights(&vs, &model, &info.to_metadata()).unwrap();

    let ids: Vec<String> = (0..rows).map(|i| format!("s{i}")).collect();
    let zeros = vec![0i64; rows];
    let table = Table::builder()
        .i64("row", (0..rows as i64).collect())
        .str("id", &ids)
        .str("path", &ids)
        .i64("y", zeros.clone())
        .i64("spurious", zeros.clone())
        .i64("group", zeros)
        .str("split", &SPLITS[..rows])
        .build();
    let manifest = root.join("manifest.parquet");
    write_table(&manifest, &table).unwrap();

    let n = SPLITS.len();
    let pixels: Vec<u8> = (0..n * 3 * 12 * 12).map(|i| ((i * 37 + i / 7) % 256) as u8).collect();
    let images = root.join("images.safetensors");
    TensorWriter::new()
        .add("images", exmap_artefact::Tensor::from_u8(vec![n, 3, 12, 12], pixels.clone()))
        .write(&images)
        .unwrap();
    Fixture { _dir: dir, root, model, manifest, images, pixels }
}

fn run(f: &Fixture, params: &EmbedParams, name: &str) -> Result<PathBuf, StageError> {
    let out = f.root.join(name);
    let progress = SilentProgress;
    let ctx = StageContext::new("embed", 0, f.root.clone(), &progress)
        .with_input("model", vec![f.model.clone()])
        .with_input("manifest", vec![f.manifest.clone()])
        .with_input("images", vec![f.images.clone()])
        .with_output("embeddings", out.clone());
    Embed.run(params, &ctx)?;
    Ok(out)
}

fn read(file: &TensorFile, name: &str) -> Tensor {
    let (shape, values) = file.f32(name, Some(2)).unwrap();
    Tensor::from_slice(&values).view([shape[0] as i64, shape[1] as i64])
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn embeddings_match_the_model_in_manifest_order() {
    let f = fixture(SPLITS.len());
    let out =
        run(&f, &EmbedParams { batch_size: 2, ..EmbedParams::default() }, "e.safetensors").unwrap();
    let file = TensorFile::open(&out).unwrap();
    assert_eq!(
        file.names(),
        ["test.features", "test.logits", "test.rows", "val.features", "val.logits", "val.rows"]
    );

    let (_vs, model, info) = load_model_artefact(&f.model, Device::Cpu).unwrap();
    let all = Tensor::from_data_size(&f.pixels, &[SPLITS.len() as i64, 3, 12, 12], Kind::Uint8);
    for split in ["val", "test"] {
        let rows: Vec<i64> =
            (0..SPLITS.len() as i64).filter(|&i| SPLITS[i as usize] == split).collect();
        assert_eq!(file.i64(&format!("{split}.rows"), Some(1)).unwrap().1, rows);
        let xs = info.eval_transform(&all.index_select(0, &Tensor::from_slice(&rows)));
        let (features, logits) =
            tch::no_grad(|| (model.features_t(&xs, false), model.forward_t(&xs, false)));
        let got_features = read(&file, &format!("{split}.features"));
        assert_eq!(got_features.size(), [rows.len() as i64, 512]);
        assert!(max_diff(&got_features, &features) < 1e-5, "{split} features");
        assert!(
            max_diff(&read(&file, &format!("{split}.logits")), &logits) < 1e-5,
            "{split} logits"
        );
    }
}

#[test]
fn reruns_give_identical_bytes() {
    let f = fixture(SPLITS.len());
    let params = EmbedParams { splits: vec!["train".into()], batch_size: 3 };
    let a = run(&f, &params, "a.safetensors").unwrap();
    let b = run(&f, &params, "b.safetensors").unwrap();
    assert!(std::fs::read(a).unwrap() == std::fs::read(b).unwrap());
}

#[test]
fn manifest_and_images_of_different_length_are_an_error() {
    let f = fixture(6);
    let err = run(&f, &EmbedParams::default(), "e.safetensors").unwrap_err().to_string();
    assert!(err.contains("has 6 rows but") && err.contains("holds 10 images"), "{err}");
}

#[test]
fn bad_split_names_and_unknown_keys_are_rejected() {
    let params = EmbedParams { splits: vec!["val".into(), "dev".into()], batch_size: 4 };
    assert!(Embed.validate(&params).unwrap_err().contains("`dev`"));
    let raw = serde_json::json!({"split": ["val"]});
    let err = exmap_stage::resolve_params::<EmbedParams>(&raw).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("split"));
}
