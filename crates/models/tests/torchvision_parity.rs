//! Parity with torchvision: the same weights and inputs give the same logits, penultimate
//! features and evaluation transform.
//!
//! The fixtures are written on the fly by `tests/goldens/make_goldens.py` (torchvision
//! 0.28.0, random weights with torch seed 0 and randomised batch norms; see its docstring)
//! with the interpreter named by `EXMAP_PYTHON`, or the project venv at
//! `~/.cache/exmap/torch-2.13.0/bin/python`. Without Python and torchvision the tests print a
//! note and pass without checking. Tolerance: max abs difference 1e-4 on logits and features
//! (f32 convolutions, summation order differs); the transform within one u8 level.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use exmap_artefact::TensorFile;
use exmap_models::{
    load_weights, Arch, LoadOptions, ModelInfo, ResNet, ResNetConfig, Stem, IMAGENET_MEAN,
    IMAGENET_STD,
};
use tch::{nn, Device, Kind, Tensor};

const TOLERANCE: f64 = 1e-4;

/// The fixture folder, generated once per test binary; `None` when Python is unavailable.
fn fixtures() -> Option<&'static Path> {
    static DIR: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    DIR.get_or_init(|| {
        let python = std::env::var_os("EXMAP_PYTHON").map(PathBuf::from).or_else(|| {
            let home = std::env::var_os("HOME")?;
            let venv = Path::new(&home).join(".cache/exmap/torch-2.13.0/bin/python");
            venv.exists().then_some(venv)
        });
        let Some(python) = python else {
            eprintln!("note: no Python found (set EXMAP_PYTHON); torchvision parity not checked");
            return None;
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/make_goldens.py");
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new(&python).arg(&script).arg(dir.path()).status();
        match status {
            Ok(status) if status.success() => Some(dir),
            other => {
                eprintln!(
                    "note: `{}` could not write fixtures ({other:?}); parity not checked",
                    python.display()
                );
                None
            }
        }
    })
    .as_ref()
    .map(|dir| dir.path())
}

fn read(file: &TensorFile, name: &str) -> Tensor {
    let (shape, values) = file.f32(name, None).expect("fixture tensor");
    let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(&values).view(shape.as_slice())
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn check_case(case: &str, config: ResNetConfig) {
    let Some(dir) = fixtures() else { return };
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = ResNet::new(&vs.root(), config);
    let weights = dir.join(format!("{case}.weights.safetensors"));
    let report = load_weights(&mut vs, &weights, LoadOptions::default()).unwrap();
    assert!(!report.replaced_fc);
    assert_eq!(report.loaded, vs.variables().len());

    let expected = TensorFile::open(&dir.join(format!("{case}.expected.safetensors"))).unwrap();
    let xs = read(&expected, "x");
    let (logits, features) =
        tch::no_grad(|| (model.forward_t(&xs, false), model.features_t(&xs, false)));
    let logits_diff = max_abs_diff(&logits, &read(&expected, "logits"));
    let features_diff = max_abs_diff(&features, &read(&expected, "features"));
    assert!(logits_diff < TOLERANCE, "{case}: logits differ by {logits_diff}");
    assert!(features_diff < TOLERANCE, "{case}: features differ by {features_diff}");
    assert_eq!(features.size()[1], model.feature_dim());
}

#[test]
fn resnet18_matches_torchvision() {
    let config = ResNetConfig { arch: Arch::ResNet18, stem: Stem::ImageNet, num_classes: 3 };
    check_case("resnet18", config);
}

#[test]
fn small_stem_resnet18_matches_torchvision() {
    let config = ResNetConfig { arch: Arch::ResNet18, stem: Stem::Small, num_classes: 2 };
    check_case("resnet18_small", config);
}

#[test]
fn resnet50_matches_torchvision() {
    let config = ResNetConfig { arch: Arch::ResNet50, stem: Stem::ImageNet, num_classes: 3 };
    check_case("resnet50", config);
}

#[test]
fn eval_transform_matches_torchvision_resize_crop_normalise() {
    let Some(dir) = fixtures() else { return };
    let file = TensorFile::open(&dir.join("transform.safetensors")).unwrap();
    let images =
        Tensor::from_data_size(file.bytes("images").unwrap(), &[2, 3, 21, 18], Kind::Uint8);
    let info = ModelInfo {
        config: ResNetConfig { arch: Arch::ResNet18, stem: Stem::ImageNet, num_classes: 2 },
        mean: Some(IMAGENET_MEAN),
        std: Some(IMAGENET_STD),
        resize: 16,
        crop: 13,
    };
    let ours = info.eval_transform(&images);
    let expected = read(&file, "transformed");
    // torchvision resizes u8 tensors with its own fixed-point kernel, which lands on the
    // neighbouring intensity for about a fifth of the pixels compared with rounding the float
    // interpolation (measured: max 1 level, mean 0.196 levels): allow one level
    // (1 / 255 / std) anywhere and a mean under a third of a level.
    let one_level = 1.0 / 255.0 / 0.224 + 1e-5;
    let diff = max_abs_diff(&ours, &expected);
    let mean_diff = (&ours - &expected).abs().mean(Kind::Float).double_value(&[]);
    assert!(diff <= one_level, "transform differs by {diff}");
    assert!(mean_diff < one_level / 3.0, "transform differs by {mean_diff} on average");
}

#[test]
fn weights_with_other_class_count_replace_fc_only_when_allowed() {
    let Some(dir) = fixtures() else { return };
    let weights = dir.join("resnet18.weights.safetensors");
    let config = ResNetConfig { arch: Arch::ResNet18, stem: Stem::ImageNet, num_classes: 5 };

    let mut vs = nn::VarStore::new(Device::Cpu);
    let _model = ResNet::new(&vs.root(), config);
    let err = load_weights(&mut vs, &weights, LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("`fc.weight` has shape [3, 512] where the model has [5, 512]"), "{err}");
    assert!(err.contains("`fc.bias`"), "{err}");

    let options = LoadOptions { replace_fc_if_classes_differ: true };
    let report = load_weights(&mut vs, &weights, options).unwrap();
    assert!(report.replaced_fc);
    assert_eq!(report.loaded, vs.variables().len() - 2);
}
