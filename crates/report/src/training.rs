//! ERM training curves from the `training_log` table (`epoch`, `split`, `loss`, `accuracy`).

use std::collections::BTreeMap;
use std::path::Path;

use exmap_artefact::read_table;
use exmap_stage::StageError;

/// One split's curve per epoch; `train` and `val` first, then any other split by name.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingCurves {
    pub splits: Vec<SplitCurve>,
}

/// The points of one split, in epoch order.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitCurve {
    pub split: String,
    pub points: Vec<EpochPoint>,
}

/// Loss and unweighted accuracy after one epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochPoint {
    pub epoch: f64,
    pub loss: f64,
    pub accuracy: f64,
}

impl TrainingCurves {
    /// Every point of every split.
    pub fn points(&self) -> impl Iterator<Item = &EpochPoint> {
        self.splits.iter().flat_map(|curve| curve.points.iter())
    }

    pub fn is_empty(&self) -> bool {
        self.points().next().is_none()
    }
}

/// Reads the training log at `path`.
pub fn read_training_log(path: &Path) -> Result<TrainingCurves, StageError> {
    let table = read_table(path)?;
    let epoch = table.f64("epoch")?;
    let split = table.str("split")?;
    let loss = table.f64("loss")?;
    let accuracy = table.f64("accuracy")?;

    let mut by_split: BTreeMap<String, Vec<EpochPoint>> = BTreeMap::new();
    for i in 0..table.num_rows() {
        let point = EpochPoint { epoch: epoch[i], loss: loss[i], accuracy: accuracy[i] };
        by_split.entry(split[i].clone()).or_default().push(point);
    }
    let rank = |name: &str| match name {
        "train" => 0,
        "val" => 1,
        _ => 2,
    };
    let mut splits: Vec<SplitCurve> = by_split
        .into_iter()
        .map(|(split, mut points)| {
            points.sort_by(|a, b| a.epoch.total_cmp(&b.epoch));
            SplitCurve { split, points }
        })
        .collect();
    splits.sort_by(|a, b| rank(&a.split).cmp(&rank(&b.split)).then_with(|| a.split.cmp(&b.split)));
    Ok(TrainingCurves { splits })
}

#[cfg(test)]
mod tests {
    use exmap_artefact::{write_table, Table};

    use super::*;

    #[test]
    fn splits_are_grouped_and_sorted_by_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.parquet");
        let table = Table::builder()
            .i64("epoch", vec![1, 0, 0, 1, 0])
            .str("split", &["train", "train", "val", "val", "test"])
            .f64("loss", vec![0.5, 0.9, 1.0, 0.7, 1.1])
            .f64("accuracy", vec![0.8, 0.6, 0.5, 0.7, 0.4])
            .build();
        write_table(&path, &table).unwrap();
        let curves = read_training_log(&path).unwrap();
        let names: Vec<&str> = curves.splits.iter().map(|s| s.split.as_str()).collect();
        assert_eq!(names, ["train", "val", "test"]);
        let train: Vec<(f64, f64, f64)> =
            curves.splits[0].points.iter().map(|p| (p.epoch, p.loss, p.accuracy)).collect();
        assert_eq!(train, vec![(0.0, 0.9, 0.6), (1.0, 0.5, 0.8)]);
    }

    #[test]
    fn missing_column_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.parquet");
        write_table(&path, &Table::builder().i64("epoch", vec![0]).build()).unwrap();
        let err = read_training_log(&path).unwrap_err().to_string();
        assert!(err.contains("log.parquet") && err.contains("`split`"), "{err}");
    }
}
