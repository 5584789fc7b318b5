//! The `evaluate` stage: the ERM baseline's row of the results table.
//!
//! It scores the ERM classifier's own predictions (the argmax of its test logits) on the true
//! test groups with the same metrics the retraining stages use, so the ERM row and the DFR
//! rows of a report are computed identically. Test samples are joined to the manifest by
//! `row`, and the mean accuracy is weighted by the training split's group shares.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use exmap_artefact::{read_table, write_json, TensorFile};
use exmap_metrics::RetrainResult;
use exmap_stage::{types, Port, Stage, StageContext, StageError};
use serde::{Deserialize, Serialize};

/// Parameters of the `evaluate` stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluateParams {
    /// The report's row label.
    pub label: String,
}

impl Default for EvaluateParams {
    fn default() -> Self {
        Self { label: "ERM".into() }
    }
}

/// Evaluation of the ERM classifier on the test split (`uses: evaluate`).
#[derive(Clone, Copy, Debug, Default)]
pub struct EvaluateStage;

impl Stage for EvaluateStage {
    type Params = EvaluateParams;

    fn kind(&self) -> &'static str {
        "evaluate"
    }

    fn code_fingerprint(&self) -> &'static str {
        env!("EXMAP_CODE_FINGERPRINT")
    }

    fn describe(&self) -> &'static str {
        "score the ERM classifier's test predictions on the true groups"
    }

    fn inputs(&self, _params: &EvaluateParams) -> Vec<Port> {
        vec![
            Port::required("embeddings", types::EMBEDDINGS),
            Port::required("manifest", types::MANIFEST),
        ]
    }

    fn outputs(&self, _params: &EvaluateParams) -> Vec<Port> {
        vec![Port::required("result", types::RETRAIN_RESULT)]
    }

    fn run(&self, params: &EvaluateParams, ctx: &StageContext) -> Result<(), StageError> {
        let embeddings_path = ctx.input("embeddings")?;
        let manifest_path = ctx.input("manifest")?;
        let (pred, rows) = test_predictions(embeddings_path)?;
        let truth = TestTruth::read(manifest_path, &rows, embeddings_path)?;

        let metrics =
            exmap_metrics::evaluate(&pred, &truth.y, &truth.group, &truth.train_shares)
                .map_err(|e| StageError::data(format!("`{}`: {e}", embeddings_path.display())))?;
        tracing::info!(
            worst_group_accuracy = metrics.worst_group_accuracy,
            mean_accuracy = metrics.mean_accuracy,
            samples = pred.len(),
            "erm evaluated"
        );
        let result = RetrainResult {
            method: "erm".into(),
            groups: "none".into(),
            label: params.label.clone(),
            group_source: String::new(),
            n_groups: 0,
            chosen: BTreeMap::new(),
            tuning: Vec::new(),
            summary: exmap_metrics::summarise(std::slice::from_ref(&metrics)),
            repeats: vec![metrics],
            // Wall time would make identical runs differ; the runner records timings.
            seconds: 0.0,
        };
        write_json(ctx.output("result")?, &result)?;
        Ok(())
    }
}

/// The argmax class of every test sample's logits (the first maximum on ties) and the
/// samples' manifest rows.
fn test_predictions(path: &Path) -> Result<(Vec<i64>, Vec<i64>), StageError> {
    let file = TensorFile::open(path)?;
    let (shape, logits) = file.f32("test.logits", Some(2))?;
    let (_, rows) = file.i64("test.rows", Some(1))?;
    if rows.len() != shape[0] || shape[1] == 0 {
        return Err(StageError::data(format!(
            "`{}`: `test.logits` has shape {shape:?} but `test.rows` has {} entries",
            path.display(),
            rows.len()
        )));
    }
    let pred = logits
        .chunks_exact(shape[1])
        .map(|scores| {
            let best = (0..scores.len()).fold(0, |b, k| if scores[k] > scores[b] { k } else { b });
            best as i64
        })
        .collect();
    Ok((pred, rows))
}

/// Classes and true groups of the test samples, and the training split's group shares.
struct TestTruth {
    y: Vec<i64>,
    group: Vec<i64>,
    train_shares: BTreeMap<i64, f64>,
}

impl TestTruth {
    fn read(manifest: &Path, rows: &[i64], embeddings: &Path) -> Result<Self, StageError> {
        let table = read_table(manifest)?;
        let (all_rows, y, group, split) =
            (table.i64("row")?, table.i64("y")?, table.i64("group")?, table.str("split")?);
        let index: HashMap<i64, usize> =
            all_rows.iter().enumerate().map(|(p, r)| (*r, p)).collect();
        let positions = rows
            .iter()
            .map(|row| {
                index.get(row).copied().ok_or_else(|| {
                    StageError::data(format!(
                        "`{}` refers to manifest row {row}, which `{}` does not have",
                        embeddings.display(),
                        manifest.display()
                    ))
                })
            })
            .collect::<Result<Vec<usize>, StageError>>()?;
        let train: Vec<i64> =
            split.iter().zip(&group).filter(|(s, _)| *s == "train").map(|(_, g)| *g).collect();
        if train.is_empty() {
            return Err(StageError::data(format!(
                "`{}` has no `train` rows to weight the mean accuracy by",
                manifest.display()
            )));
        }
        Ok(Self {
            y: positions.iter().map(|&p| y[p]).collect(),
            group: positions.iter().map(|&p| group[p]).collect(),
            train_shares: exmap_metrics::group_shares(&train),
        })
    }
}
