//! The manifest's splits, checked against the images artefact.

use std::path::Path;

use exmap_artefact::read_table;
use exmap_models::ImageSource;
use exmap_stage::StageError;

/// The samples of one split, in manifest order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Split {
    /// Manifest rows (= image indices).
    pub rows: Vec<usize>,
    pub y: Vec<i64>,
    pub group: Vec<i64>,
}

/// Training and validation samples plus the class and group counts.
#[derive(Debug)]
pub(crate) struct Dataset {
    pub train: Split,
    pub val: Split,
    pub num_classes: i64,
    pub num_groups: i64,
}

/// Reads the manifest and checks it against `images`: one image per row, rows numbered in
/// order, labels inside the class count (the images' `classes` metadata when present).
pub(crate) fn load(manifest: &Path, images: &ImageSource) -> Result<Dataset, StageError> {
    let table = read_table(manifest)?;
    let rows = table.i64("row")?;
    let y = table.i64("y")?;
    let group = table.i64("group")?;
    let split = table.str("split")?;
    if rows.len() != images.len() {
        return Err(StageError::data(format!(
            "`{}` has {} rows but `{}` holds {} images",
            manifest.display(),
            rows.len(),
            images.path().display(),
            images.len()
        )));
    }
    if let Some(i) = rows.iter().enumerate().position(|(i, &r)| r != i as i64) {
        return Err(StageError::data(format!(
            "`{}` row {i}: `row` is {} where {i} is expected",
            manifest.display(),
            rows[i]
        )));
    }

    let num_classes = match images.metadata("classes") {
        Some(text) => text.trim().parse::<i64>().map_err(|_| {
            StageError::data(format!(
                "`{}`: metadata `classes` `{text}` is not a number",
                images.path().display()
            ))
        })?,
        None => y.iter().copied().max().unwrap_or(0) + 1,
    };
    if let Some(i) = y.iter().position(|&label| label < 0 || label >= num_classes) {
        return Err(StageError::data(format!(
            "`{}` row {i}: class {} is outside the {num_classes} classes of `{}`",
            manifest.display(),
            y[i],
            images.path().display()
        )));
    }
    if let Some(i) = group.iter().position(|&g| g < 0) {
        return Err(StageError::data(format!(
            "`{}` row {i}: negative group {}",
            manifest.display(),
            group[i]
        )));
    }
    let num_groups = group.iter().copied().max().unwrap_or(-1) + 1;

    let mut dataset =
        Dataset { train: Split::default(), val: Split::default(), num_classes, num_groups };
    for (i, name) in split.iter().enumerate() {
        let target = match name.as_str() {
            "train" => &mut dataset.train,
            "val" => &mut dataset.val,
            _ => continue,
        };
        target.rows.push(i);
        target.y.push(y[i]);
        target.group.push(group[i]);
    }
    for (name, part) in [("train", &dataset.train), ("val", &dataset.val)] {
        if part.rows.is_empty() {
            return Err(StageError::data(format!(
                "`{}` has no `{name}` rows: ERM needs both a train and a val split",
                manifest.display()
            )));
        }
    }
    Ok(dataset)
}
