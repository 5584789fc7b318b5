//! The built-in synthetic scenes through the whole stage: counts, group proportions,
//! determinism and independence from the thread count.

mod common;

use serde_json::json;

#[test]
fn synthetic_default_counts_and_groups() {
    let run = common::run(json!({"n_train": 400, "n_val": 120, "n_test": 120}), 7);
    run.result.clone().unwrap();
    let manifest = run.manifest();
    assert_eq!(manifest.num_rows(), 640);
    assert_eq!(manifest.i64("row").unwrap(), (0..640).collect::<Vec<_>>());

    let groups = run.groups();
    let rows: Vec<String> = (0..groups.num_rows())
        .map(|i| {
            format!(
                "{} {} {} {}",
                groups.str("split").unwrap()[i],
                groups.i64("group").unwrap()[i],
                groups.str("name").unwrap()[i],
                groups.i64("count").unwrap()[i]
            )
        })
        .collect();
    // 400 train: 93 of class 1 (share 1113/4795), 95% on the agreeing background;
    // 120 val/test: 27 of class 1 (shares 266/1199 and 1284/5794), 50% agreeing.
    let expected = [
        "train 0 y=0,place=0 292",
        "train 1 y=0,place=1 15",
        "train 2 y=1,place=0 5",
        "train 3 y=1,place=1 88",
        "val 0 y=0,place=0 47",
        "val 1 y=0,place=1 46",
        "val 2 y=1,place=0 13",
        "val 3 y=1,place=1 14",
        "test 0 y=0,place=0 47",
        "test 1 y=0,place=1 46",
        "test 2 y=1,place=0 13",
        "test 3 y=1,place=1 14",
    ];
    assert_eq!(rows, expected);

    let images = run.images();
    assert_eq!(images.info("images").unwrap().1, &[640, 3, 64, 64]);
    assert_eq!(images.metadata("classes"), Some("2"));
}

#[test]
fn synthetic_is_deterministic_and_seeded() {
    let params = json!({"n_train": 60, "n_val": 30, "n_test": 30, "image_size": 32});
    let a = common::run(params.clone(), 3);
    let b = common::run(params.clone(), 3);
    let c = common::run(params, 4);
    for name in ["manifest.parquet", "groups.parquet", "images.safetensors"] {
        assert_eq!(a.bytes(name), b.bytes(name), "{name} differs between equal runs");
    }
    assert_ne!(a.bytes("images.safetensors"), c.bytes("images.safetensors"));
}

#[test]
fn synthetic_bytes_do_not_depend_on_the_thread_count() {
    let params = json!({"n_train": 60, "n_val": 30, "n_test": 30, "image_size": 32});
    let in_pool = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let run = pool.install(|| common::run(params.clone(), 11));
        run.bytes("images.safetensors")
    };
    assert_eq!(in_pool(1), in_pool(3));
}

#[test]
fn exported_folder_ingests_as_waterbirds_to_the_same_artefacts() {
    let export = tempfile::tempdir().unwrap();
    let folder = export.path().join("scenes");
    let params = json!({"n_train": 60, "n_val": 30, "n_test": 30, "image_size": 32,
                        "export_dir": folder});
    let generated = common::run(params, 5);
    generated.result.clone().unwrap();
    assert!(folder.join("metadata.csv").is_file());
    let read = common::run(json!({"format": "waterbirds", "root": folder, "image_size": 32}), 0);
    read.result.clone().unwrap();
    for name in ["manifest.parquet", "groups.parquet", "images.safetensors"] {
        assert_eq!(generated.bytes(name), read.bytes(name), "{name}");
    }
}
