//! Bad input: each case is a clear error naming the file and row, with nothing written.

mod common;

use serde_json::json;

/// Builds a balanced Waterbirds folder, lets `edit` change its metadata text (and folder),
/// runs the stage and returns the error message (checking that no output was left behind).
fn failure(edit: impl FnOnce(&std::path::Path, String) -> String) -> String {
    let rows = common::balanced_rows();
    let folder = common::waterbirds_folder(&common::borrow(&rows), "\n");
    let metadata = folder.path().join("metadata.csv");
    let text = std::fs::read_to_string(&metadata).unwrap();
    std::fs::write(&metadata, edit(folder.path(), text)).unwrap();
    let run =
        common::run(json!({"format": "waterbirds", "root": folder.path(), "image_size": 8}), 0);
    run.error()
}

/// Checks that `message` names the metadata file and contains every fragment.
fn check(message: &str, fragments: &[&str]) {
    for fragment in fragments {
        assert!(message.contains(fragment), "`{fragment}` not in: {message}");
    }
}

#[test]
fn missing_column_is_named() {
    let message = failure(|_, text| text.replacen("place,", "location,", 1));
    check(&message, &["metadata.csv", "missing column `place`"]);
}

#[test]
fn unknown_split_code_names_the_line() {
    let message = failure(|_, text| text.replacen("birds/005.png,0,1,", "birds/005.png,0,7,", 1));
    check(&message, &["metadata.csv` line 6", "unknown split code `7`"]);
}

#[test]
fn label_outside_the_classes_names_the_line() {
    let message = failure(|_, text| text.replacen("birds/003.png,1,", "birds/003.png,2,", 1));
    check(
        &message,
        &["metadata.csv` line 4", "label `y` = 2 is outside the declared classes 0..2"],
    );
}

#[test]
fn duplicate_id_names_both_lines() {
    let message = failure(|_, text| text.replacen("\n4,birds/004.png", "\n2,birds/004.png", 1));
    check(&message, &["metadata.csv` line 5", "duplicate id `2` (first on line 3)"]);
}

#[test]
fn missing_image_names_the_file_and_line() {
    let message = failure(|folder, text| {
        std::fs::remove_file(folder.join("birds/006.png")).unwrap();
        text
    });
    check(&message, &["metadata.csv` line 7", "birds/006.png", "id `6`", "listed but missing"]);
}

#[test]
fn undecodable_image_names_the_file() {
    let message = failure(|folder, text| {
        std::fs::write(folder.join("birds/011.png"), b"not a png at all").unwrap();
        text
    });
    check(&message, &["birds/011.png", "id `11` (line 12)", "does not decode"]);
}

#[test]
fn empty_split_is_named() {
    let message = failure(|_, text| {
        text.lines().filter(|line| !line.contains(",2,")).collect::<Vec<_>>().join("\n")
    });
    check(&message, &["metadata.csv", "split `test` has no samples"]);
}

#[test]
fn group_in_train_but_not_in_val_is_named() {
    // Line 8 is the only validation sample of group 3 (y=1, place=1).
    let message = failure(|_, text| {
        text.lines().filter(|line| !line.starts_with("8,")).collect::<Vec<_>>().join("\n")
    });
    check(
        &message,
        &["metadata.csv", "group(s) 3 present in split `train` but not in split `val`"],
    );
}

#[test]
fn non_integer_label_names_the_line() {
    let message = failure(|_, text| text.replacen("birds/001.png,0,", "birds/001.png,zero,", 1));
    check(&message, &["metadata.csv` line 2", "`y` value `zero` is not an integer"]);
}

#[test]
fn unknown_parameter_and_missing_root_are_rejected() {
    let run = common::run(json!({"format": "waterbirds"}), 0);
    check(&run.error(), &["`root` is required"]);
    let run = common::run(json!({"format": "synthetic", "imagesize": 32}), 0);
    check(&run.error(), &["unknown field `imagesize`"]);
}

#[test]
fn line_numbers_survive_crlf_a_bom_and_quoted_line_breaks() {
    let message = failure(|_, text| {
        let text = text.replacen("birds/005.png,0,1,", "birds/005.png,0,7,", 1);
        let text = text.replacen(",/p/2", ",\"/p/2\nsecond line\"", 1);
        format!("\u{feff}{}", text.replace('\n', "\r\n"))
    });
    // Line 6 of the original file moved to line 7 with the quoted line break above it.
    check(&message, &["metadata.csv` line 7", "unknown split code `7`"]);
}
