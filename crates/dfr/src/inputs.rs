//! Reading the stage's inputs: embedding splits, the manifest and pseudo-group tables, all
//! joined by manifest `row`, never by position.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use exmap_artefact::{read_table, TensorFile};
use exmap_stage::StageError;

/// One embedded split: features as `f64`, row-major, and the manifest row of every sample.
#[derive(Clone, Debug)]
pub struct EmbeddedSplit {
    pub features: Vec<f64>,
    pub dim: usize,
    pub rows: Vec<i64>,
}

/// Reads `<split>.features` and `<split>.rows` from an embeddings file.
pub fn read_split(file: &TensorFile, split: &str) -> Result<EmbeddedSplit, StageError> {
    let (shape, values) = file.f32(&format!("{split}.features"), Some(2))?;
    let (_, rows) = file.i64(&format!("{split}.rows"), Some(1))?;
    if rows.len() != shape[0] {
        return Err(StageError::data(format!(
            "`{}`: `{split}.rows` has {} entries but `{split}.features` has {} rows",
            file.path().display(),
            rows.len(),
            shape[0]
        )));
    }
    let features = values.into_iter().map(f64::from).collect();
    Ok(EmbeddedSplit { features, dim: shape[1], rows })
}

/// The manifest columns DFR and evaluation need, indexed by `row`.
#[derive(Clone, Debug)]
pub struct Manifest {
    index: HashMap<i64, usize>,
    pub ids: Vec<String>,
    pub y: Vec<i64>,
    pub group: Vec<i64>,
    pub split: Vec<String>,
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Self, StageError> {
        let table = read_table(path)?;
        let rows = table.i64("row")?;
        let mut index = HashMap::with_capacity(rows.len());
        for (position, row) in rows.iter().enumerate() {
            if index.insert(*row, position).is_some() {
                return Err(StageError::data(format!(
                    "`{}`: row {row} appears more than once",
                    path.display()
                )));
            }
        }
        Ok(Self {
            index,
            ids: table.str("id")?,
            y: table.i64("y")?,
            group: table.i64("group")?,
            split: table.str("split")?,
        })
    }

    /// The positions in the manifest of manifest rows `rows`; `source` names the artefact
    /// that lists them.
    pub fn positions(&self, rows: &[i64], source: &Path) -> Result<Vec<usize>, StageError> {
        rows.iter()
            .map(|row| {
                self.index.get(row).copied().ok_or_else(|| {
                    StageError::data(format!(
                        "`{}` refers to manifest row {row}, which the manifest does not have",
                        source.display()
                    ))
                })
            })
            .collect()
    }

    /// Each true group's share of the training split.
    pub fn train_shares(&self, path: &Path) -> Result<BTreeMap<i64, f64>, StageError> {
        let train: Vec<i64> = self
            .split
            .iter()
            .zip(&self.group)
            .filter(|(split, _)| *split == "train")
            .map(|(_, g)| *g)
            .collect();
        if train.is_empty() {
            return Err(StageError::data(format!(
                "`{}` has no `train` rows to weight the mean accuracy by",
                path.display()
            )));
        }
        Ok(exmap_metrics::group_shares(&train))
    }
}

/// Column `column` of a pseudo-groups table for the manifest rows `rows`, in that order.
/// Every row must be present; the error lists the first missing ones with their ids.
pub fn pseudo_groups(
    path: &Path,
    column: &str,
    rows: &[i64],
    manifest: &Manifest,
) -> Result<Vec<i64>, StageError> {
    let table = read_table(path)?;
    let by_row: HashMap<i64, i64> = table.i64("row")?.into_iter().zip(table.i64(column)?).collect();
    let mut missing = Vec::new();
    let groups: Vec<i64> = rows
        .iter()
        .map(|row| {
            by_row.get(row).copied().unwrap_or_else(|| {
                missing.push(*row);
                -1
            })
        })
        .collect();
    if !missing.is_empty() {
        let named: Vec<String> = missing
            .iter()
            .take(5)
            .map(|row| match manifest.index.get(row) {
                Some(&p) => format!("{row} (`{}`)", manifest.ids[p]),
                None => row.to_string(),
            })
            .collect();
        return Err(StageError::data(format!(
            "`{}` has no `{column}` for {} of {} validation rows, e.g. rows {}",
            path.display(),
            missing.len(),
            rows.len(),
            named.join(", ")
        )));
    }
    Ok(groups)
}
