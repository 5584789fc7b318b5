//! The `erm` stage on tiny generated data: outputs, determinism and the errors it promises.
//!
//! Data: 48 images of 3 x 12 x 12 whose class decides a bright square's channel (red for
//! class 0, green for class 1) on noise; groups 2y + s with a spurious bit s. Small-stem
//! ResNet-18, batch 16, one or two epochs: each run takes a few seconds on one core.

use std::path::{Path, PathBuf};

use exmap_artefact::{read_table, write_table, Table, TensorFile, TensorWriter};
use exmap_erm::{Erm, ErmParams, Schedule};
use exmap_models::{load_model_artefact, Stem};
use exmap_stage::{Device, SilentProgress, Stage, StageContext, StageError};
use rand::{Rng, SeedableRng};

const SIDE: usize = 12;

/// Writes a manifest and an images artefact; `splits[i]` is row i's split, `classes` the
/// images' `classes` metadata.
fn write_dataset(dir: &Path, splits: &[&str], labels: &[i64], classes: i64) -> (PathBuf, PathBuf) {
    let n = splits.len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut pixels = vec![0u8; n * 3 * SIDE * SIDE];
    for (i, &y) in labels.iter().enumerate() {
        let image = &mut pixels[i * 3 * SIDE * SIDE..(i + 1) * 3 * SIDE * SIDE];
        image.iter_mut().for_each(|p| *p = rng.gen_range(0..60));
        let channel = (y as usize).min(2);
        for r in 3..9 {
            for c in 3..9 {
                image[channel * SIDE * SIDE + r * SIDE + c] = 250;
            }
        }
    }
    let spurious: Vec<i64> = (0..n as i64).map(|i| i % 2).collect();
    let group: Vec<i64> = labels.iter().zip(&spurious).map(|(y, s)| 2 * y + s).collect();
    let ids: Vec<String> = (0..n).map(|i| format!("img{i}")).collect();
    let table = Table::builder()
        .i64("row", (0..n as i64).collect())
        .str("id", &ids)
        .str("path", &ids)
        .i64("y", labels.to_vec())
        .i64("spurious", spurious)
        .i64("group", group)
        .str("split", splits)
        .build();
    let manifest = dir.join("manifest.parquet");
    write_table(&manifest, &table).unwrap();
    let images = dir.join("images.safetensors");
    TensorWriter::new()
        .add("images", exmap_artefact::Tensor::from_u8(vec![n, 3, SIDE, SIDE], pixels))
        .metadata("classes", classes.to_string())
        .write(&images)
        .unwrap();
    (manifest, images)
}

fn standard_dataset(dir: &Path) -> (PathBuf, PathBuf) {
    let splits: Vec<&str> = (0..48)
        .map(|i| {
            if i < 32 {
                "train"
            } else if i < 40 {
                "val"
            } else {
                "test"
            }
        })
        .collect();
    let labels: Vec<i64> = (0..48).map(|i| (i / 2) % 2).collect();
    write_dataset(dir, &splits, &labels, 2)
}

fn params(epochs: usize) -> ErmParams {
    ErmParams {
        stem: Stem::Small,
        epochs,
        batch_size: 16,
        eval_batch_size: 16,
        ..ErmParams::default()
    }
}

/// Runs the stage into `out`; returns the model and log paths.
fn run(
    params: &ErmParams,
    data: &(PathBuf, PathBuf),
    out: &Path,
    seed: u64,
    device: Device,
) -> Result<(PathBuf, PathBuf), StageError> {
    std::fs::create_dir_all(out).unwrap();
    let (model, log) = (out.join("model.safetensors"), out.join("log.parquet"));
    let progress = SilentProgress;
    let mut ctx = StageContext::new("erm", seed, out.to_path_buf(), &progress)
        .with_input("manifest", vec![data.0.clone()])
        .with_input("images", vec![data.1.clone()])
        .with_output("model", model.clone())
        .with_output("log", log.clone());
    ctx.device = device;
    Erm.run(params, &ctx)?;
    Ok((model, log))
}

#[test]
fn training_writes_a_loadable_model_and_a_per_epoch_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = standard_dataset(dir.path());
    let (model, log) = run(&params(2), &data, &dir.path().join("out"), 1, Device::Cpu).unwrap();

    let file = TensorFile::open(&model).unwrap();
    for (key, value) in
        [("arch", "resnet18"), ("stem", "small"), ("classes", "2"), ("resize", "0"), ("crop", "0")]
    {
        assert_eq!(file.metadata(key), Some(value), "metadata `{key}`");
    }
    assert_eq!(file.metadata("mean"), Some("0.485,0.456,0.406"));
    let (_vs, net, info) = load_model_artefact(&model, tch::Device::Cpu).unwrap();
    assert_eq!(info.config.num_classes, 2);
    assert_eq!(net.feature_dim(), 512);

    let table = read_table(&log).unwrap();
    assert_eq!(table.i64("epoch").unwrap(), vec![0, 0, 1, 1]);
    assert_eq!(table.str("split").unwrap(), vec!["train", "val", "train", "val"]);
    assert_eq!(
        table.column_names(),
        [
            "epoch",
            "split",
            "loss",
            "accuracy",
            "group_0_accuracy",
            "group_1_accuracy",
            "group_2_accuracy",
            "group_3_accuracy"
        ]
    );
    for value in table.f64("loss").unwrap().into_iter().chain(table.f64("accuracy").unwrap()) {
        assert!(value.is_finite() && value >= 0.0, "{value}");
    }
    // The kept checkpoint is the epoch with the best val accuracy.
    let val: Vec<f64> = table.f64("accuracy").unwrap().into_iter().skip(1).step_by(2).collect();
    let best = file.metadata("best_epoch").unwrap().parse::<usize>().unwrap();
    assert!(val.iter().all(|&a| a <= val[best]), "{val:?} best {best}");
}

#[test]
fn fixed_seed_reruns_are_bit_identical_and_other_seeds_differ() {
    let dir = tempfile::tempdir().unwrap();
    let data = standard_dataset(dir.path());
    let p = ErmParams { hflip: true, ..params(1) };
    let a = run(&p, &data, &dir.path().join("a"), 7, Device::Cpu).unwrap();
    let b = run(&p, &data, &dir.path().join("b"), 7, Device::Cpu).unwrap();
    let c = run(&p, &data, &dir.path().join("c"), 8, Device::Cpu).unwrap();
    let read = |path: &Path| std::fs::read(path).unwrap();
    assert!(read(&a.0) == read(&b.0), "model bytes differ between equal-seed runs");
    assert!(read(&a.1) == read(&b.1), "log bytes differ between equal-seed runs");
    assert!(read(&a.0) != read(&c.0), "another seed gave the same model");
}

#[test]
fn random_resized_crop_training_runs_at_its_own_size() {
    let dir = tempfile::tempdir().unwrap();
    let data = standard_dataset(dir.path());
    let crop = exmap_erm::RandomResizedCrop { size: 10, ..Default::default() };
    let p = ErmParams { random_resized_crop: Some(crop), resize: 12, crop: 10, ..params(1) };
    let (model, _) = run(&p, &data, &dir.path().join("out"), 1, Device::Cpu).unwrap();
    assert_eq!(TensorFile::open(&model).unwrap().metadata("crop"), Some("10"));
}

#[test]
fn diverging_loss_names_epoch_and_batch_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = standard_dataset(dir.path());
    let p = ErmParams { lr: 1e30, momentum: 0.0, schedule: Schedule::Constant, ..params(2) };
    let out = dir.path().join("out");
    let err = run(&p, &data, &out, 1, Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("at epoch 0 batch") || err.contains("at epoch 1 batch"), "{err}");
    assert!(!out.join("model.safetensors").exists());
}

#[test]
fn labels_outside_the_class_count_name_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let splits: Vec<&str> = (0..8).map(|i| if i < 6 { "train" } else { "val" }).collect();
    let data = write_dataset(dir.path(), &splits, &[0, 1, 0, 2, 0, 1, 0, 1], 2);
    let err =
        run(&params(1), &data, &dir.path().join("out"), 1, Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("row 3: class 2 is outside the 2 classes"), "{err}");
}

#[test]
fn empty_val_split_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let splits = ["train", "train", "test", "test"];
    let data = write_dataset(dir.path(), &splits, &[0, 1, 0, 1], 2);
    let err =
        run(&params(1), &data, &dir.path().join("out"), 1, Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("no `val` rows"), "{err}");
}

#[test]
fn cuda_device_that_does_not_exist_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = standard_dataset(dir.path());
    let err = run(&params(1), &data, &dir.path().join("out"), 1, Device::Cuda(99))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`cuda:99` was asked for"), "{err}");
}

#[test]
fn unknown_parameter_keys_are_rejected() {
    let raw = serde_json::json!({"epochs": 2, "learning_rate": 0.1});
    let err = exmap_stage::resolve_params::<ErmParams>(&raw).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("learning_rate"));
    assert!(Erm.validate(&ErmParams { epochs: 0, ..ErmParams::default() }).is_err());
}
