//! The `explain` stage end to end on a random small-stem ResNet-18 saved as a `model`
//! artefact, a six-row manifest and 16 x 16 images.

mod common;

use std::path::{Path, PathBuf};

use exmap_artefact::{write_table, Table, Tensor as ArtefactTensor, TensorFile, TensorWriter};
use exmap_explain::heatmap::{Channels, Normalise, PostProcess};
use exmap_explain::{Composite, ExplainParams, ExplainStage, LrpResNet, Method};
use exmap_models::{save_weights, Arch, ModelInfo, ResNet, ResNetConfig, Stem};
use exmap_stage::{SilentProgress, Stage, StageContext, StageError};
use tch::{nn, Device, Kind, Tensor};

const SIDE: i64 = 16;
/// Manifest rows 1, 2, 4 and 5 are in `val`.
const VAL_ROWS: [i64; 4] = [1, 2, 4, 5];

struct Fixture {
    dir: tempfile::TempDir,
    info: ModelInfo,
    images: Tensor,
}

fn fixture() -> Fixture {
    fixture_with(|_| {})
}

/// The fixture with the model's final layer set by `edit` (given `fc.weight` and `fc.bias`).
fn fixture_with(edit: impl Fn(&mut [Tensor])) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(11);
    let vs = nn::VarStore::new(Device::Cpu);
    let config = ResNetConfig { arch: Arch::ResNet18, stem: Stem::Small, num_classes: 2 };
    let _model = ResNet::new(&vs.root(), config);
    let variables = vs.variables();
    let mut fc = [variables["fc.weight"].shallow_clone(), variables["fc.bias"].shallow_clone()];
    tch::no_grad(|| edit(&mut fc));
    let info = ModelInfo {
        config,
        mean: Some([0.5, 0.5, 0.5]),
        std: Some([0.25, 0.25, 0.25]),
        resize: 0,
        crop: 0,
    };
    save_weights(&vs, &dir.path().join("model.safetensors"), &info.to_metadata()).unwrap();

    let images = Tensor::randint(256, [6, 3, SIDE, SIDE], (Kind::Uint8, Device::Cpu));
    let bytes = Vec::<u8>::try_from(&images.flatten(0, -1)).unwrap();
    TensorWriter::new()
        .add("images", ArtefactTensor::from_u8(vec![6, 3, SIDE as usize, SIDE as usize], bytes))
        .metadata("classes", "2")
        .write(&dir.path().join("images.safetensors"))
        .unwrap();
    let manifest = Table::builder()
        .i64("row", (0..6).collect())
        .str("id", &["a", "b", "c", "d", "e", "f"])
        .str("path", &[""; 6])
        .i64("y", vec![0, 1, 0, 1, 1, 0])
        .i64("spurious", vec![0; 6])
        .i64("group", vec![0, 2, 0, 2, 2, 0])
        .str("split", &["train", "val", "val", "test", "val", "val"])
        .build();
    write_table(&dir.path().join("manifest.parquet"), &manifest).unwrap();
    Fixture { dir, info, images }
}

fn run(fixture: &Fixture, params: &ExplainParams, out: &str) -> Result<PathBuf, StageError> {
    let dir = fixture.dir.path();
    let out = dir.join(out);
    let progress = SilentProgress;
    let ctx = StageContext::new("explain", 0, dir.to_path_buf(), &progress)
        .with_input("model", vec![dir.join("model.safetensors")])
        .with_input("manifest", vec![dir.join("manifest.parquet")])
        .with_input("images", vec![dir.join("images.safetensors")])
        .with_output("heatmaps", out.clone());
    ExplainStage.run(params, &ctx).map(|()| out)
}

fn read(path: &Path) -> (Vec<usize>, Vec<f32>, Vec<i64>, Vec<i64>) {
    let file = TensorFile::open(path).unwrap();
    let (shape, heatmaps) = file.f32("heatmaps", Some(2)).unwrap();
    (shape, heatmaps, file.i64("rows", Some(1)).unwrap().1, file.i64("pred", Some(1)).unwrap().1)
}

#[test]
fn default_lrp_heatmaps_match_the_engine_on_the_val_rows() {
    let fixture = fixture();
    let params = ExplainParams { size: 8, batch_size: 3, ..ExplainParams::default() };
    let out = run(&fixture, &params, "h.safetensors").unwrap();
    let (shape, heatmaps, rows, pred) = read(&out);
    assert_eq!(shape, vec![4, 3 * 8 * 8]);
    assert_eq!(rows, VAL_ROWS);

    // The same computation done by hand: eval transform, engine, post-processing.
    let (_vs, model, _) = exmap_models::load_model_artefact(
        &fixture.dir.path().join("model.safetensors"),
        Device::Cpu,
    )
    .unwrap();
    let xs = fixture
        .info
        .eval_transform(&fixture.images.index_select(0, &Tensor::from_slice(&VAL_ROWS)));
    let relevance = LrpResNet::new(&model).relevance(&Composite::reference(4.0, 1e-6), &xs, None);
    let post = PostProcess { channels: Channels::Signed3, size: 8, normalise: Normalise::MaxAbs };
    let expected = Vec::<f32>::try_from(&post.apply(&relevance.input).flatten(0, -1)).unwrap();
    let max_diff =
        heatmaps.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max_diff < 1e-5, "stage and engine differ by {max_diff}");
    assert_eq!(pred, Vec::<i64>::try_from(&relevance.logits.argmax(1, false)).unwrap());
    for row in heatmaps.chunks(3 * 64) {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!((max - 1.0).abs() < 1e-6, "a heatmap's max |value| is {max}");
    }
}

#[test]
fn two_runs_write_identical_bytes() {
    let fixture = fixture();
    let params = ExplainParams::default();
    let a = run(&fixture, &params, "a.safetensors").unwrap();
    let b = run(&fixture, &params, "b.safetensors").unwrap();
    assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
}

#[test]
fn every_method_writes_finite_heatmaps_of_the_promised_shape() {
    let fixture = fixture();
    let cases = [
        (Method::Gradcam, 1),
        (Method::InputXGradient, 3),
        (Method::Saliency, 3),
        (Method::IntegratedGradients, 3),
    ];
    for (method, channels) in cases {
        let params = ExplainParams { method, steps: 4, ..ExplainParams::default() };
        let out = run(&fixture, &params, "m.safetensors").unwrap();
        let (shape, heatmaps, rows, _) = read(&out);
        assert_eq!(shape, vec![4, channels * (SIDE * SIDE) as usize], "{method:?}");
        assert_eq!(rows, VAL_ROWS);
        assert!(heatmaps.iter().all(|v| v.is_finite()), "{method:?}");
    }
    let params = ExplainParams { channels: Channels::Sum, size: 4, ..ExplainParams::default() };
    let (shape, ..) = read(&run(&fixture, &params, "s.safetensors").unwrap());
    assert_eq!(shape, vec![4, 16]);
}

#[test]
fn unknown_gradcam_layer_lists_the_valid_ones() {
    let fixture = fixture();
    let params = ExplainParams {
        method: Method::Gradcam,
        layer: "layer9".into(),
        ..ExplainParams::default()
    };
    let err = run(&fixture, &params, "g.safetensors").unwrap_err().to_string();
    assert!(err.contains("`layer9`") && err.contains("layer4.1") && err.contains("conv1"), "{err}");
}

#[test]
fn empty_split_is_an_error_naming_the_manifest() {
    let fixture = fixture();
    let params = ExplainParams { split: "holdout".into(), ..ExplainParams::default() };
    let err = run(&fixture, &params, "e.safetensors").unwrap_err().to_string();
    assert!(err.contains("manifest.parquet") && err.contains("`holdout`"), "{err}");
}

#[test]
fn parameters_reject_unknown_keys_and_bad_values() {
    let bad_key = exmap_stage::resolve_params::<ExplainParams>(&serde_json::json!({"gama": 4}));
    assert_eq!(bad_key.unwrap_err().key.as_deref(), Some("gama"));
    let (params, resolved) = exmap_stage::resolve_params::<ExplainParams>(
        &serde_json::json!({"composite": "alpha2beta1"}),
    )
    .unwrap();
    assert_eq!(resolved["method"], "lrp");
    assert_eq!(resolved["channels"], "signed3");
    assert!(ExplainStage.validate(&params).is_ok());
    let bad = ExplainParams { steps: 0, ..ExplainParams::default() };
    assert!(ExplainStage.validate(&bad).unwrap_err().contains("`steps`"));
}

#[test]
fn a_nan_heatmap_is_an_error_naming_the_sample() {
    let fixture = fixture_with(|fc| {
        let _ = fc[0].fill_(f64::NAN);
    });
    let params = ExplainParams { size: 8, ..ExplainParams::default() };
    let err = run(&fixture, &params, "h.safetensors").unwrap_err().to_string();
    // `b` is the first validation row.
    assert!(err.contains("`b`") && err.contains("NaN"), "{err}");
    assert!(!fixture.dir.path().join("h.safetensors").exists(), "nothing may be written");
}

#[test]
fn an_all_zero_relevance_stays_an_all_zero_heatmap() {
    let fixture = fixture_with(|fc| {
        let _ = fc[0].zero_();
        let _ = fc[1].zero_();
    });
    let params = ExplainParams { size: 8, ..ExplainParams::default() };
    let out = run(&fixture, &params, "h.safetensors").unwrap();
    let (shape, heatmaps, _, _) = read(&out);
    assert_eq!(shape, vec![4, 3 * 8 * 8]);
    assert!(heatmaps.iter().all(|&v| v == 0.0), "a zero model gave a non-zero heatmap");
}
