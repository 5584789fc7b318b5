//! The Waterbirds reader: the real metadata file, line endings, BOM, quoting, row order, and
//! the joining of rows to images by file name.

mod common;

use std::collections::BTreeMap;

use exmap_ingest::{finish_records, read_metadata, MetadataOptions, Split};
use serde_json::json;

#[test]
fn real_waterbirds_metadata_has_the_published_group_counts() {
    let Some(path) = common::shared_data("waterbirds/metadata.csv") else { return };
    let records = read_metadata(&path, &MetadataOptions::default()).unwrap();
    let records = finish_records(records, &path).unwrap();
    let mut counts: BTreeMap<(Split, i64), usize> = BTreeMap::new();
    for record in &records {
        assert_eq!(record.group, 2 * record.y + record.spurious);
        *counts.entry((record.split, record.group)).or_default() += 1;
    }
    // The table in shared/data/SOURCES.md, (y, place) = (0,0) / (0,1) / (1,0) / (1,1).
    let expected = [
        (Split::Train, [3498, 184, 56, 1057]),
        (Split::Val, [467, 466, 133, 133]),
        (Split::Test, [2255, 2255, 642, 642]),
    ];
    for (split, groups) in expected {
        for (group, count) in groups.into_iter().enumerate() {
            assert_eq!(counts[&(split, group as i64)], count, "{split:?} group {group}");
        }
    }
    assert_eq!(records.len(), 11_788);
}

#[test]
fn crlf_bom_and_quoted_fields_parse_like_plain_lf() {
    let rows = common::balanced_rows();
    let plain = common::waterbirds_folder(&common::borrow(&rows), "\n");
    let crlf = common::waterbirds_folder(&common::borrow(&rows), "\r\n");
    let crlf_path = crlf.path().join("metadata.csv");
    let text = std::fs::read_to_string(&crlf_path).unwrap();
    let quoted =
        text.replace("birds/001.png", "\"birds/001.png\"").replace(",/p/2", ",\"/p/2, quoted\"");
    std::fs::write(&crlf_path, format!("\u{feff}{quoted}")).unwrap();

    let options = MetadataOptions::default();
    let a = read_metadata(&plain.path().join("metadata.csv"), &options).unwrap();
    let b = read_metadata(&crlf_path, &options).unwrap();
    let strip = |records: Vec<exmap_ingest::Record>| {
        records.into_iter().map(|r| (r.id, r.path, r.y, r.spurious, r.split)).collect::<Vec<_>>()
    };
    assert_eq!(strip(a), strip(b));
}

#[test]
fn shuffling_metadata_rows_changes_no_sample_and_no_artefact() {
    let rows = common::balanced_rows();
    let mut shuffled = rows.clone();
    shuffled.reverse();
    shuffled.swap(1, 7);
    let a = common::waterbirds_folder(&common::borrow(&rows), "\n");
    let b = common::waterbirds_folder(&common::borrow(&shuffled), "\n");
    let run_a = common::run(json!({"format": "waterbirds", "root": a.path(), "image_size": 8}), 0);
    let run_b = common::run(json!({"format": "waterbirds", "root": b.path(), "image_size": 8}), 0);
    run_a.result.clone().unwrap();
    run_b.result.clone().unwrap();
    for name in ["manifest.parquet", "groups.parquet", "images.safetensors"] {
        assert_eq!(run_a.bytes(name), run_b.bytes(name), "{name} depends on the row order");
    }

    // Each manifest row carries its own labels and its own image (colour encodes the id).
    let manifest = run_b.manifest();
    let (ids, ys, places) = (
        manifest.str("id").unwrap(),
        manifest.i64("y").unwrap(),
        manifest.i64("spurious").unwrap(),
    );
    let images = run_b.images();
    let pixels = images.bytes("images").unwrap();
    for (row, id) in ids.iter().enumerate() {
        let source = rows.iter().find(|r| &r.0 == id).unwrap();
        assert_eq!(ys[row].to_string(), source.2, "label of id {id}");
        assert_eq!(places[row].to_string(), source.4, "place of id {id}");
        let colour = common::id_colour(id);
        for channel in 0..3 {
            // A one-colour image stays that colour when resized: exact equality.
            assert_eq!(pixels[row * 192 + channel * 64], colour[channel], "image of id {id}");
        }
    }
}

#[test]
fn waterbirds_folder_ingests_with_imagenet_metadata_and_sorted_rows() {
    let rows = common::balanced_rows();
    let folder = common::waterbirds_folder(&common::borrow(&rows), "\n");
    let run = common::run(json!({"format": "waterbirds", "root": folder.path()}), 0);
    run.result.clone().unwrap();
    let manifest = run.manifest();
    assert_eq!(manifest.str("split").unwrap()[..4], ["train"; 4]);
    assert_eq!(manifest.str("id").unwrap()[..3], ["1", "2", "3"]);
    assert_eq!(manifest.str("path").unwrap()[0], "birds/001.png");
    let images = run.images();
    assert_eq!(images.info("images").unwrap().1, &[12, 3, 64, 64]);
    assert_eq!(images.metadata("mean"), Some("0.485,0.456,0.406"));
    assert_eq!(images.metadata("std"), Some("0.229,0.224,0.225"));
}
