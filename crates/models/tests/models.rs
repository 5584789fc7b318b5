//! Shapes, names, weight round trips and metadata of the model crate, without Python.

use std::collections::BTreeMap;

use exmap_artefact::{TensorFile, TensorWriter};
use exmap_models::{
    load_weights, save_weights, Arch, LoadOptions, ModelError, ModelInfo, ResNet, ResNetConfig,
    Stem,
};
use tch::{nn, Device, Kind, Tensor};

fn build(arch: Arch, stem: Stem, num_classes: i64) -> (nn::VarStore, ResNet) {
    let vs = nn::VarStore::new(Device::Cpu);
    let model = ResNet::new(&vs.root(), ResNetConfig { arch, stem, num_classes });
    (vs, model)
}

#[test]
fn parameter_names_and_counts_match_torchvision() {
    // Counts of parameters + batch-norm buffers, from torchvision 0.28's state_dict() without
    // the `num_batches_tracked` entries: resnet18 102 (122 - 20), resnet34 182 (218 - 36),
    // resnet50 267 (320 - 53).
    for (arch, count, parameters) in [
        (Arch::ResNet18, 102, 11_689_512),
        (Arch::ResNet34, 182, 21_797_672),
        (Arch::ResNet50, 267, 25_557_032),
    ] {
        tch::manual_seed(0);
        let (vs, _model) = build(arch, Stem::ImageNet, 1000);
        let variables = vs.variables();
        assert_eq!(variables.len(), count, "{arch:?}");
        let trainable: i64 =
            vs.trainable_variables().iter().map(Tensor::numel).map(|n| n as i64).sum();
        assert_eq!(trainable, parameters, "{arch:?} parameter count");
        for name in ["conv1.weight", "bn1.running_var", "layer4.0.downsample.1.weight", "fc.bias"] {
            assert!(variables.contains_key(name), "{arch:?} lacks `{name}`");
        }
    }
}

#[test]
fn activations_follow_layer_names_and_shapes() {
    tch::manual_seed(0);
    let (_vs, model) = build(Arch::ResNet18, Stem::Small, 4);
    let xs = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
    let (logits, activations) = tch::no_grad(|| model.forward_with_activations(&xs, false));
    let names: Vec<String> = activations.iter().map(|(name, _)| name.clone()).collect();
    assert_eq!(names, model.layer_names());
    assert_eq!(names[..4], ["conv1", "layer1.0", "layer1.1", "layer1"]);
    assert_eq!(logits.size(), [2, 4]);
    let shape = |name: &str| activations.iter().find(|(n, _)| n == name).unwrap().1.size();
    assert_eq!(shape("conv1"), [2, 64, 16, 16]);
    assert_eq!(shape("layer4"), [2, 512, 2, 2]);
    let direct = tch::no_grad(|| model.forward_t(&xs, false));
    assert_eq!((direct - &logits).abs().max().double_value(&[]), 0.0);
}

#[test]
fn imagenet_stem_resnet50_gives_2048_features() {
    tch::manual_seed(0);
    let (_vs, model) = build(Arch::ResNet50, Stem::ImageNet, 2);
    let xs = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
    let features = tch::no_grad(|| model.features_t(&xs, false));
    assert_eq!(features.size(), [1, 2048]);
    assert_eq!(model.feature_dim(), 2048);
}

#[test]
fn saved_weights_load_back_exactly_and_bytes_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(3);
    let (vs, model) = build(Arch::ResNet18, Stem::Small, 3);
    let metadata = BTreeMap::from([("arch".to_string(), "resnet18".to_string())]);
    let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
    save_weights(&vs, &a, &metadata).unwrap();
    save_weights(&vs, &b, &metadata).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let file = TensorFile::open(&a).unwrap();
    assert_eq!(file.metadata("arch"), Some("resnet18"));
    assert!(file.contains("layer1.0.bn1.num_batches_tracked"));

    tch::manual_seed(4);
    let (mut other_vs, other) = build(Arch::ResNet18, Stem::Small, 3);
    let report = load_weights(&mut other_vs, &a, LoadOptions::default()).unwrap();
    assert_eq!(report.loaded, 102);
    let xs = Tensor::randn([2, 3, 12, 12], (Kind::Float, Device::Cpu));
    let diff =
        tch::no_grad(|| (model.forward_t(&xs, false) - other.forward_t(&xs, false)).abs().max());
    assert_eq!(diff.double_value(&[]), 0.0);
}

#[test]
fn one_error_lists_missing_unexpected_and_misshaped_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let (vs, _model) = build(Arch::ResNet18, Stem::ImageNet, 2);
    let full = dir.path().join("full.safetensors");
    save_weights(&vs, &full, &BTreeMap::new()).unwrap();

    let file = TensorFile::open(&full).unwrap();
    let mut writer = TensorWriter::new();
    for name in file.names() {
        if name != "layer2.1.bn2.running_mean" && name != "conv1.weight" {
            writer.add(name.clone(), file.tensor(&name).unwrap());
        }
    }
    writer.add("conv1.weight", exmap_artefact::Tensor::from_f32(vec![64, 3, 3, 3], &[0.0; 1728]));
    writer.add("head.weight", exmap_artefact::Tensor::from_f32(vec![1], &[0.0]));
    let broken = dir.path().join("broken.safetensors");
    writer.write(&broken).unwrap();

    let mut target = nn::VarStore::new(Device::Cpu);
    let _model = ResNet::new(
        &target.root(),
        ResNetConfig { arch: Arch::ResNet18, stem: Stem::ImageNet, num_classes: 2 },
    );
    let err = load_weights(&mut target, &broken, LoadOptions::default()).unwrap_err();
    let ModelError::Mismatch { problems, .. } = &err else { panic!("{err}") };
    assert_eq!(problems.len(), 3, "{err}");
    let message = err.to_string();
    assert!(message.contains("broken.safetensors"), "{message}");
    assert!(message.contains("missing `layer2.1.bn2.running_mean`"), "{message}");
    assert!(message.contains("unexpected `head.weight`"), "{message}");
    assert!(
        message
            .contains("`conv1.weight` has shape [64, 3, 3, 3] where the model has [64, 3, 7, 7]"),
        "{message}"
    );
}

#[test]
fn model_metadata_round_trips_and_bad_values_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let info = ModelInfo {
        config: ResNetConfig { arch: Arch::ResNet34, stem: Stem::Small, num_classes: 7 },
        mean: Some([0.5, 0.25, 0.125]),
        std: Some([1.0, 2.0, 3.0]),
        resize: 32,
        crop: 28,
    };
    let write = |name: &str, metadata: &BTreeMap<String, String>| {
        let path = dir.path().join(name);
        let mut writer = TensorWriter::new();
        writer.add("x", exmap_artefact::Tensor::from_f32(vec![1], &[0.0]));
        for (k, v) in metadata {
            writer.metadata(k.clone(), v.clone());
        }
        writer.write(&path).unwrap();
        TensorFile::open(&path).unwrap()
    };
    let file = write("good", &info.to_metadata());
    assert_eq!(ModelInfo::from_metadata(&file).unwrap(), info);

    for (key, value, expected) in [
        ("arch", "resnet99", "metadata `arch` `resnet99` is not resnet18"),
        ("mean", "0.1,0.2", "metadata `mean` `0.1,0.2` is not three numbers"),
        ("classes", "-2", "metadata `classes` `-2` is not a count"),
    ] {
        let mut metadata = info.to_metadata();
        metadata.insert(key.to_string(), value.to_string());
        let err = ModelInfo::from_metadata(&write(key, &metadata)).unwrap_err().to_string();
        assert!(err.contains(expected) && err.contains(key), "{err}");
    }
}

#[test]
fn eval_transform_without_resize_or_normalisation_only_scales() {
    let info = ModelInfo {
        config: ResNetConfig { arch: Arch::ResNet18, stem: Stem::Small, num_classes: 2 },
        mean: None,
        std: None,
        resize: 0,
        crop: 0,
    };
    let images = Tensor::from_slice(&[0u8, 51, 255, 102]).view([1, 1, 2, 2]).repeat([1, 3, 1, 1]);
    let out = info.eval_transform(&images);
    let values = Vec::<f32>::try_from(&out.view(-1)).unwrap();
    assert_eq!(&values[..4], &[0.0, 0.2, 1.0, 0.4]);
}
