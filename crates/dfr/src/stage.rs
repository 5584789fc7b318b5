//! The `dfr` stage: reads embeddings, the manifest and optionally pseudo groups, runs the DFR
//! procedure with the chosen balancing groups, and scores every repeat on the true test
//! groups.

use std::collections::BTreeMap;
use std::time::Instant;

use exmap_artefact::{write_json, TensorFile};
use exmap_metrics::{RepeatMetrics, RetrainResult, TuningScore};
use exmap_stage::{types, Port, Stage, StageContext, StageError};
use serde::{Deserialize, Serialize};

use crate::inputs::{pseudo_groups, read_split, Manifest};
use crate::procedure::{run_dfr, DfrConfig, ValidationSet};
use crate::solver::SolverOptions;

/// Where the balancing groups of the validation split come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupSource {
    /// The manifest's true `group` (the supervised oracle).
    True,
    /// The class `y` alone.
    Classes,
    /// `pseudo_groups.local_group`.
    Local,
    /// `pseudo_groups.global_group`.
    Global,
}

impl GroupSource {
    fn name(self) -> &'static str {
        match self {
            Self::True => "true",
            Self::Classes => "classes",
            Self::Local => "local",
            Self::Global => "global",
        }
    }

    fn default_label(self) -> &'static str {
        match self {
            Self::True => "DFR (true groups)",
            Self::Classes => "DFR (classes)",
            Self::Local => "DFR (ExMap local)",
            Self::Global => "DFR (ExMap global)",
        }
    }

    fn needs_pseudo_groups(self) -> bool {
        matches!(self, Self::Local | Self::Global)
    }
}

/// Parameters of the `dfr` stage; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DfrParams {
    pub groups: GroupSource,
    /// The report's row label; derived from `groups` when absent.
    pub label: Option<String>,
    pub c_grid: Vec<f64>,
    pub tune_rounds: usize,
    pub refits: usize,
    pub repeats: usize,
    /// Groups with more than this many members set the balancing size.
    pub min_group_size: usize,
    pub standardise: bool,
}

impl Default for DfrParams {
    fn default() -> Self {
        let config = DfrConfig::default();
        Self {
            groups: GroupSource::True,
            label: None,
            c_grid: config.c_grid,
            tune_rounds: config.tune_rounds,
            refits: config.refits,
            repeats: config.repeats,
            min_group_size: config.min_group_size,
            standardise: config.standardise,
        }
    }
}

/// DFR last-layer retraining (`uses: dfr`).
#[derive(Clone, Copy, Debug, Default)]
pub struct DfrStage;

impl Stage for DfrStage {
    type Params = DfrParams;

    fn kind(&self) -> &'static str {
        "dfr"
    }

    fn code_fingerprint(&self) -> &'static str {
        env!("EXMAP_CODE_FINGERPRINT")
    }

    fn describe(&self) -> &'static str {
        "retrain the last layer with L1 logistic regression on group-balanced validation subsets"
    }

    fn inputs(&self, params: &DfrParams) -> Vec<Port> {
        let pseudo = if params.groups.needs_pseudo_groups() {
            Port::required("pseudo_groups", types::PSEUDO_GROUPS)
        } else {
            Port::optional("pseudo_groups", types::PSEUDO_GROUPS)
        };
        vec![
            Port::required("embeddings", types::EMBEDDINGS),
            Port::required("manifest", types::MANIFEST),
            pseudo,
        ]
    }

    fn outputs(&self, _params: &DfrParams) -> Vec<Port> {
        vec![Port::required("result", types::RETRAIN_RESULT)]
    }

    fn validate(&self, params: &DfrParams) -> Result<(), String> {
        if params.c_grid.is_empty() {
            return Err("`c_grid` must list at least one value".into());
        }
        if let Some(c) = params.c_grid.iter().find(|c| !(c.is_finite() && **c > 0.0)) {
            return Err(format!("`c_grid` value {c} is not a positive number"));
        }
        if params.refits == 0 || params.repeats == 0 {
            return Err("`refits` and `repeats` must be at least 1".into());
        }
        Ok(())
    }

    fn run(&self, params: &DfrParams, ctx: &StageContext) -> Result<(), StageError> {
        self.validate(params).map_err(StageError::Params)?;
        let started = Instant::now();
        let embeddings_path = ctx.input("embeddings")?;
        let manifest_path = ctx.input("manifest")?;
        let embeddings = TensorFile::open(embeddings_path)?;
        let val = read_split(&embeddings, "val")?;
        let test = read_split(&embeddings, "test")?;
        if val.dim != test.dim {
            return Err(StageError::data(format!(
                "`{}`: `val.features` has {} columns but `test.features` has {}",
                embeddings_path.display(),
                val.dim,
                test.dim
            )));
        }
        let manifest = Manifest::read(manifest_path)?;
        let val_positions = manifest.positions(&val.rows, embeddings_path)?;
        let test_positions = manifest.positions(&test.rows, embeddings_path)?;
        let train_shares = manifest.train_shares(manifest_path)?;
        let y_val: Vec<i64> = val_positions.iter().map(|&p| manifest.y[p]).collect();

        let (groups, group_source) = match params.groups {
            GroupSource::True => (
                val_positions.iter().map(|&p| manifest.group[p]).collect(),
                "manifest.group".into(),
            ),
            GroupSource::Classes => (y_val.clone(), "manifest.y".to_string()),
            GroupSource::Local | GroupSource::Global => {
                let column = format!("{}_group", params.groups.name());
                let path = ctx.optional_input("pseudo_groups").ok_or_else(|| {
                    StageError::data(format!(
                        "`groups: {}` needs the `pseudo_groups` input connected",
                        params.groups.name()
                    ))
                })?;
                (
                    pseudo_groups(path, &column, &val.rows, &manifest)?,
                    format!("pseudo_groups.{column}"),
                )
            }
        };
        let n_groups = groups.iter().collect::<std::collections::BTreeSet<_>>().len();

        let config = DfrConfig {
            c_grid: params.c_grid.clone(),
            tune_rounds: params.tune_rounds,
            refits: params.refits,
            repeats: params.repeats,
            min_group_size: params.min_group_size,
            standardise: params.standardise,
            solver: SolverOptions::default(),
        };
        let data =
            ValidationSet { features: &val.features, dim: val.dim, y: &y_val, groups: &groups };
        let progress = |step: &str, done: u64, total: u64| ctx.progress(step, done, total);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(ctx.threads.max(1))
            .build()
            .map_err(|e| StageError::compute(format!("failed to start the thread pool: {e}")))?;
        let outcome = pool
            .install(|| run_dfr(&data, &config, ctx.seed, &progress))
            .map_err(|e| StageError::data(format!("`{}`: {e}", embeddings_path.display())))?;
        if outcome.unconverged_fits > 0 {
            tracing::warn!(fits = outcome.unconverged_fits, "some L1 logistic fits stopped early");
        }

        let y_test: Vec<i64> = test_positions.iter().map(|&p| manifest.y[p]).collect();
        let g_test: Vec<i64> = test_positions.iter().map(|&p| manifest.group[p]).collect();
        let repeats = outcome
            .models
            .iter()
            .map(|model| {
                let pred = model.predict(&test.features, 0..test.rows.len());
                exmap_metrics::evaluate(&pred, &y_test, &g_test, &train_shares).map_err(|e| {
                    StageError::data(format!("test split of `{}`: {e}", embeddings_path.display()))
                })
            })
            .collect::<Result<Vec<RepeatMetrics>, StageError>>()?;

        let result = RetrainResult {
            method: "dfr".into(),
            groups: params.groups.name().into(),
            label: params.label.clone().unwrap_or_else(|| params.groups.default_label().into()),
            group_source,
            n_groups,
            chosen: BTreeMap::from([("C".to_string(), outcome.tuning.best_c)]),
            tuning: outcome
                .tuning
                .scores
                .iter()
                .map(|&(c, score)| TuningScore { c, score })
                .collect(),
            summary: exmap_metrics::summarise(&repeats),
            repeats,
            // Wall time would make the artefact differ between identical runs; the runner
            // records timings in its run record instead.
            seconds: 0.0,
        };
        let wga = result.summary["worst_group_accuracy"];
        tracing::info!(
            groups = params.groups.name(),
            n_groups,
            c = outcome.tuning.best_c,
            worst_group_accuracy = wga.mean,
            std = wga.std,
            seconds = started.elapsed().as_secs_f64(),
            "dfr finished"
        );
        write_json(ctx.output("result")?, &result)?;
        Ok(())
    }
}
