//! CelebA (both dialects, zipped or not), generic metadata and Colored MNIST.

mod common;

use std::io::Write;
use std::path::Path;

use serde_json::json;

/// Writes an original-dialect CelebA folder with four images per split covering the four
/// (Blond_Hair, Male) groups; the attribute file goes into a zip when `zipped`.
fn celeba_folder(zipped: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut attributes = String::from("image_id,Attractive,Blond_Hair,Male,Young\r\n");
    let mut partition = String::from("image_id,partition\r\n");
    for index in 0..12 {
        let id = format!("{:06}.jpg", index + 1);
        let (blond, male) = (index % 4 / 2, index % 2);
        let value = |v: usize| if v == 1 { "1" } else { "-1" };
        attributes.push_str(&format!("{id},1,{},{},-1\r\n", value(blond), value(male)));
        partition.push_str(&format!("{id},{}\r\n", index / 4));
        let image = image::RgbImage::from_pixel(20, 24, image::Rgb([index as u8 * 20, 5, 9]));
        let path = dir.path().join("img_align_celeba").join(&id);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image.save(&path).unwrap();
    }
    std::fs::write(dir.path().join("list_eval_partition.csv"), partition).unwrap();
    if zipped {
        let file = std::fs::File::create(dir.path().join("celeba.zip")).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("celeba/list_attr_celeba.csv", options).unwrap();
        zip.write_all(attributes.as_bytes()).unwrap();
        zip.finish().unwrap();
    } else {
        std::fs::write(dir.path().join("list_attr_celeba.csv"), attributes).unwrap();
    }
    dir
}

fn column_summary(run: &common::Run) -> Vec<String> {
    let manifest = run.manifest();
    let (ids, ys, spurious, groups, splits) = (
        manifest.str("id").unwrap(),
        manifest.i64("y").unwrap(),
        manifest.i64("spurious").unwrap(),
        manifest.i64("group").unwrap(),
        manifest.str("split").unwrap(),
    );
    (0..ids.len())
        .map(|i| format!("{} {} {} {} {}", ids[i], ys[i], spurious[i], groups[i], splits[i]))
        .collect()
}

#[test]
fn celeba_original_dialect_plain_and_zipped_agree() {
    let plain = celeba_folder(false);
    let zipped = celeba_folder(true);
    let run_plain =
        common::run(json!({"format": "celeba", "root": plain.path(), "image_size": 16}), 0);
    let run_zipped =
        common::run(json!({"format": "celeba", "root": zipped.path(), "image_size": 16}), 0);
    run_plain.result.clone().unwrap();
    run_zipped.result.clone().unwrap();
    let rows = column_summary(&run_plain);
    assert_eq!(rows, column_summary(&run_zipped));
    assert_eq!(
        rows[..4],
        [
            "000001.jpg 0 0 0 train",
            "000002.jpg 0 1 1 train",
            "000003.jpg 1 0 2 train",
            "000004.jpg 1 1 3 train"
        ]
    );
    let groups = run_plain.groups();
    assert_eq!(
        groups.str("name").unwrap()[..4],
        ["y=0,Male=0", "y=0,Male=1", "y=1,Male=0", "y=1,Male=1"]
    );
    assert_eq!(run_plain.manifest().str("path").unwrap()[0], "img_align_celeba/000001.jpg");
    assert_eq!(run_plain.images().info("images").unwrap().1, &[12, 3, 16, 16]);
}

#[test]
fn celeba_target_attribute_is_a_parameter_and_bad_values_are_named() {
    let folder = celeba_folder(false);
    let run = common::run(
        json!({"format": "celeba", "root": folder.path(), "target_attribute": "Male",
               "spurious_attribute": "Blond_Hair", "image_size": 8}),
        0,
    );
    run.result.clone().unwrap();
    assert_eq!(column_summary(&run)[1], "000002.jpg 1 0 2 train");

    let path = folder.path().join("list_attr_celeba.csv");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "000003.jpg,1,1,-1",
        "000003.jpg,1,0,-1",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let run = common::run(json!({"format": "celeba", "root": folder.path()}), 0);
    let message = run.error();
    assert!(message.contains("list_attr_celeba.csv` line 4"), "{message}");
    assert!(message.contains("`Blond_Hair` value `0` is neither 1 nor -1"), "{message}");
}

#[test]
fn celeba_six_column_dialect_reads_metadata_csv() {
    let rows = common::balanced_rows();
    let folder = common::waterbirds_folder(&common::borrow(&rows), "\n");
    let run = common::run(json!({"format": "celeba", "root": folder.path(), "image_size": 8}), 0);
    run.result.clone().unwrap();
    assert_eq!(run.groups().str("name").unwrap()[3], "y=1,Male=1");
}

/// Writes a generic folder whose attribute column is `attribute`.
fn generic_folder(attribute: &str, values: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("split,y,img_filename,{attribute}\n");
    for (index, (split, y, value)) in values.iter().enumerate() {
        let file = format!("x/{index}.png");
        common::write_png(&dir.path().join(&file), [index as u8, 0, 0]);
        text.push_str(&format!("{split},{y},{file},{value}\n"));
    }
    std::fs::write(dir.path().join("metadata.csv"), text).unwrap();
    dir
}

#[test]
fn generic_metadata_with_spurious_or_group_columns() {
    let values = [
        ("train", "0", "1"),
        ("train", "2", "0"),
        ("val", "0", "1"),
        ("val", "2", "0"),
        ("test", "1", "1"),
        ("test", "2", "1"),
    ];
    let folder = generic_folder("spurious", &values);
    let run = common::run(
        json!({"format": "generic", "root": folder.path(), "classes": 3, "image_size": 8}),
        0,
    );
    run.result.clone().unwrap();
    assert_eq!(
        column_summary(&run),
        [
            "x/0.png 0 1 1 train",
            "x/1.png 2 0 4 train",
            "x/2.png 0 1 1 val",
            "x/3.png 2 0 4 val",
            "x/4.png 1 1 3 test",
            "x/5.png 2 1 5 test"
        ]
    );

    let folder = generic_folder("group", &values);
    let run = common::run(
        json!({"format": "generic", "root": folder.path(), "classes": 3, "image_size": 8}),
        0,
    );
    run.result.clone().unwrap();
    assert_eq!(column_summary(&run)[1], "x/1.png 2 -1 0 train");
    assert_eq!(run.groups().str("name").unwrap()[0], "y=2,group=0");
}

#[test]
fn generic_metadata_without_an_attribute_column_is_an_error() {
    let folder =
        generic_folder("colour", &[("train", "0", "1"), ("val", "0", "1"), ("test", "0", "1")]);
    let run = common::run(json!({"format": "generic", "root": folder.path()}), 0);
    let message = run.error();
    assert!(message.contains("one of `place`, `spurious` or `group` is needed"), "{message}");
}

#[test]
fn real_colored_mnist_has_the_recipe_counts_and_correlation() {
    let Some(folder) = common::shared_data("mnist") else { return };
    let run = common::run(json!({"format": "cmnist", "root": folder}), 1);
    run.result.clone().unwrap();
    let manifest = run.manifest();
    let (ys, colours, groups, splits) = (
        manifest.i64("y").unwrap(),
        manifest.i64("spurious").unwrap(),
        manifest.i64("group").unwrap(),
        manifest.str("split").unwrap(),
    );
    let images = run.images();
    assert_eq!(images.info("images").unwrap().1, &[10_000, 3, 28, 28]);
    assert_eq!(images.metadata("mean"), None);
    let pixels = images.bytes("images").unwrap();
    for (split, expected) in [("train", 6000), ("val", 2000), ("test", 2000)] {
        let rows: Vec<usize> = (0..ys.len()).filter(|&i| splits[i] == split).collect();
        assert_eq!(rows.len(), expected, "{split}");
        // Majority colour: green (1) for class 0, red (0) for class 1. With 0.99 and n >=
        // 2000 the agreement lies within 0.98..1.0 (more than 4 standard deviations).
        let agree = rows.iter().filter(|&&i| colours[i] == 1 - ys[i]).count();
        let share = agree as f64 / rows.len() as f64;
        assert!((0.98..=1.0).contains(&share), "{split}: agreement {share}");
        assert!(agree < rows.len(), "{split}: no minority images at all");
        for &i in &rows {
            assert_eq!(groups[i], 2 * ys[i] + colours[i]);
            // The digit sits in the colour's channel only; the blue channel is always empty.
            let image = &pixels[i * 2352..(i + 1) * 2352];
            let lit = |c: usize| image[c * 784..(c + 1) * 784].iter().any(|&v| v > 0);
            assert!(
                lit(colours[i] as usize) && !lit(1 - colours[i] as usize) && !lit(2),
                "row {i}"
            );
        }
    }
    // Class 1 is digits 5-9: 892 + 958 + 1028 + 974 + 1009 of the 10,000 (SOURCES.md).
    assert_eq!(ys.iter().sum::<i64>(), 4861);
}

#[test]
fn colored_mnist_from_a_small_idx_pair_is_seeded() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(&dir.path().join("t10k-images-idx3-ubyte"), &[40, 28, 28], |i| (i % 251) as u8);
    write_idx(&dir.path().join("t10k-labels-idx1-ubyte"), &[40], |i| (i % 10) as u8);
    let params = json!({"format": "cmnist", "root": dir.path(), "n_train": 20, "n_val": 10,
                        "n_test": 10, "correlation": 0.5});
    let a = common::run(params.clone(), 1);
    let b = common::run(params.clone(), 1);
    let c = common::run(params, 2);
    a.result.clone().unwrap();
    assert_eq!(a.bytes("manifest.parquet"), b.bytes("manifest.parquet"));
    assert_eq!(a.bytes("images.safetensors"), b.bytes("images.safetensors"));
    assert_ne!(a.bytes("manifest.parquet"), c.bytes("manifest.parquet"));

    let too_many = json!({"format": "cmnist", "root": dir.path(), "n_train": 40});
    let message = common::run(too_many, 1).error();
    assert!(message.contains("has 40 digits, fewer than the 4040 asked for"), "{message}");
}

/// Writes an uncompressed IDX file of unsigned bytes.
fn write_idx(path: &Path, dims: &[u32], value: impl Fn(usize) -> u8) {
    let rank = dims.len() as u8;
    let mut bytes = vec![0, 0, 8, rank];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    let count: u32 = dims.iter().product();
    bytes.extend((0..count as usize).map(value));
    std::fs::write(path, bytes).unwrap();
}
