//! The DFR procedure on in-memory features: tuning C, then averaged balanced refits.
//!
//! Tuning runs `tune_rounds` rounds. Each shuffles the validation samples and splits them in
//! half: the second half (after the first `n / 2`) is balanced and fitted, the first half is
//! scored by its worst group accuracy under the same groups. As in the reference, only the
//! groups whose id is at most the largest id in the fitted half are scored. The C with the
//! highest score summed over rounds wins; ties go to the C listed first in the grid.
//!
//! The final step standardises on the whole validation split, fits `refits` times on fresh
//! balanced subsets (redrawing up to 20 times while a class is missing), and averages the
//! coefficients and intercepts into one classifier; it runs `repeats` times.
//!
//! Every random draw (shuffles, subsets) is made up front from one ChaCha stream in a fixed
//! order; the fits then run in parallel and are collected in order, so the result depends on
//! the seed and never on the thread count.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::balance::{balanced_subset, BalanceError};
use crate::model::{LinearModel, Standardiser, TrainingSet};
use crate::solver::SolverOptions;

/// How many times a final subset is redrawn while it lacks a class.
const REDRAWS: usize = 20;

/// The settings of one DFR run.
#[derive(Clone, Debug, PartialEq)]
pub struct DfrConfig {
    pub c_grid: Vec<f64>,
    pub tune_rounds: usize,
    pub refits: usize,
    pub repeats: usize,
    pub min_group_size: usize,
    pub standardise: bool,
    pub solver: SolverOptions,
}

impl Default for DfrConfig {
    fn default() -> Self {
        Self {
            c_grid: vec![1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01],
            tune_rounds: 5,
            refits: 20,
            repeats: 5,
            min_group_size: 5,
            standardise: true,
            solver: SolverOptions::default(),
        }
    }
}

/// Validation features with their classes and balancing groups.
#[derive(Clone, Copy, Debug)]
pub struct ValidationSet<'a> {
    /// Row-major, `dim` values per sample.
    pub features: &'a [f64],
    pub dim: usize,
    pub y: &'a [i64],
    pub groups: &'a [i64],
}

impl ValidationSet<'_> {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    fn classes(&self) -> Vec<i64> {
        let mut classes = self.y.to_vec();
        classes.sort_unstable();
        classes.dedup();
        classes
    }
}

/// Why the procedure failed.
#[derive(Debug, thiserror::Error)]
pub enum DfrError {
    #[error("{context}: {source}")]
    Balance { context: String, source: BalanceError },
    #[error("{context}: the balanced subset has no sample of class {classes:?}")]
    MissingClass { context: String, classes: Vec<i64> },
    #[error("the validation split needs at least two classes, found {0:?}")]
    OneClass(Vec<i64>),
}

/// The summed worst-group score of every C and the winner.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuning {
    /// `(C, summed score)` in grid order.
    pub scores: Vec<(f64, f64)>,
    pub best_c: f64,
}

/// What a whole run produced: the tuning and one averaged classifier per repeat.
#[derive(Clone, Debug)]
pub struct DfrOutcome {
    pub tuning: Tuning,
    pub models: Vec<LinearModel>,
    /// Binary problems that stopped before the tolerance was reached.
    pub unconverged_fits: usize,
}

/// Reports `done` of `total` units of a named step.
pub type ProgressFn<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

/// Runs tuning (skipped when the grid has one value or there are no rounds) and the final
/// averaged refits.
pub fn run_dfr(
    data: &ValidationSet,
    config: &DfrConfig,
    seed: u64,
    progress: ProgressFn,
) -> Result<DfrOutcome, DfrError> {
    let classes = data.classes();
    if classes.len() < 2 {
        return Err(DfrError::OneClass(classes));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let unconverged = AtomicU64::new(0);
    let tuning = if config.c_grid.len() > 1 && config.tune_rounds > 0 {
        tune(data, config, &classes, &mut rng, &unconverged, progress)?
    } else {
        Tuning { scores: vec![(config.c_grid[0], 0.0)], best_c: config.c_grid[0] }
    };
    let models =
        final_fits(data, config, &classes, tuning.best_c, &mut rng, &unconverged, progress)?;
    Ok(DfrOutcome { tuning, models, unconverged_fits: unconverged.into_inner() as usize })
}

fn tune(
    data: &ValidationSet,
    config: &DfrConfig,
    classes: &[i64],
    rng: &mut ChaCha8Rng,
    unconverged: &AtomicU64,
    progress: ProgressFn,
) -> Result<Tuning, DfrError> {
    let mut rounds = Vec::with_capacity(config.tune_rounds);
    for round in 0..config.tune_rounds {
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(rng);
        let half = data.len() / 2;
        let (score_rows, fit_rows) = order.split_at(half);
        let subset = balanced_subset(rng, fit_rows, data.groups, config.min_group_size).map_err(
            |source| DfrError::Balance { context: format!("tuning round {round}"), source },
        )?;
        let highest_fitted = fit_rows.iter().map(|&i| data.groups[i]).max().unwrap_or(i64::MIN);
        rounds.push((subset, score_rows.to_vec(), highest_fitted));
    }

    // Warm starts follow the grid from the strongest regularisation to the weakest.
    let mut path: Vec<usize> = (0..config.c_grid.len()).collect();
    path.sort_by(|&a, &b| config.c_grid[a].total_cmp(&config.c_grid[b]));
    let done = AtomicU64::new(0);
    let total = (config.tune_rounds * config.c_grid.len()) as u64;
    let round_scores: Vec<Result<Vec<f64>, DfrError>> = rounds
        .par_iter()
        .enumerate()
        .map(|(round, (subset, score_rows, highest_fitted))| {
            let standardiser = standardiser(data, config, subset);
            let set =
                TrainingSet::new(data.features, data.y, subset, classes.to_vec(), standardiser);
            let missing = set.missing_classes();
            if !missing.is_empty() {
                let context = format!("tuning round {round}");
                return Err(DfrError::MissingClass { context, classes: missing });
            }
            let scored: Vec<usize> =
                score_rows.iter().copied().filter(|&i| data.groups[i] <= *highest_fitted).collect();
            let mut scores = vec![0.0; config.c_grid.len()];
            let mut previous: Option<LinearModel> = None;
            for &k in &path {
                let outcome = set.fit(config.c_grid[k], previous.as_ref(), &config.solver);
                if !outcome.converged {
                    unconverged.fetch_add(1, Ordering::Relaxed);
                }
                scores[k] = worst_group_score(data, &outcome.model, &scored);
                previous = Some(outcome.model);
                progress("dfr tuning", done.fetch_add(1, Ordering::Relaxed) + 1, total);
            }
            Ok(scores)
        })
        .collect();

    let mut summed = vec![0.0; config.c_grid.len()];
    for scores in round_scores {
        summed.iter_mut().zip(scores?).for_each(|(sum, s)| *sum += s);
    }
    let best = (0..summed.len()).fold(0, |best, k| if summed[k] > summed[best] { k } else { best });
    let scores = config.c_grid.iter().copied().zip(summed).collect();
    Ok(Tuning { scores, best_c: config.c_grid[best] })
}

fn final_fits(
    data: &ValidationSet,
    config: &DfrConfig,
    classes: &[i64],
    c: f64,
    rng: &mut ChaCha8Rng,
    unconverged: &AtomicU64,
    progress: ProgressFn,
) -> Result<Vec<LinearModel>, DfrError> {
    let all: Vec<usize> = (0..data.len()).collect();
    let standardiser = standardiser(data, config, &all);
    let mut subsets = Vec::with_capacity(config.repeats * config.refits);
    for repeat in 0..config.repeats {
        for refit in 0..config.refits {
            let context = || format!("final repeat {repeat}, refit {refit}");
            let mut subset = Vec::new();
            for _ in 0..REDRAWS {
                subset = balanced_subset(rng, &all, data.groups, config.min_group_size)
                    .map_err(|source| DfrError::Balance { context: context(), source })?;
                if has_every_class(data, &subset, classes) {
                    break;
                }
            }
            if !has_every_class(data, &subset, classes) {
                let missing = classes
                    .iter()
                    .copied()
                    .filter(|c| !subset.iter().any(|&i| data.y[i] == *c))
                    .collect();
                return Err(DfrError::MissingClass { context: context(), classes: missing });
            }
            subsets.push(subset);
        }
    }

    let done = AtomicU64::new(0);
    let total = subsets.len() as u64;
    let fits: Vec<LinearModel> = subsets
        .par_iter()
        .map(|subset| {
            let set = TrainingSet::new(
                data.features,
                data.y,
                subset,
                classes.to_vec(),
                standardiser.clone(),
            );
            let outcome = set.fit(c, None, &config.solver);
            if !outcome.converged {
                unconverged.fetch_add(1, Ordering::Relaxed);
            }
            progress("dfr final fits", done.fetch_add(1, Ordering::Relaxed) + 1, total);
            outcome.model
        })
        .collect();
    Ok(fits.chunks(config.refits.max(1)).map(LinearModel::average).collect())
}

fn standardiser(data: &ValidationSet, config: &DfrConfig, rows: &[usize]) -> Standardiser {
    if config.standardise {
        Standardiser::fit(data.features, data.dim, rows)
    } else {
        Standardiser::identity(data.dim)
    }
}

fn has_every_class(data: &ValidationSet, subset: &[usize], classes: &[i64]) -> bool {
    classes.iter().all(|c| subset.iter().any(|&i| data.y[i] == *c))
}

/// The lowest per-group accuracy of `model` on `rows`, by the balancing groups.
fn worst_group_score(data: &ValidationSet, model: &LinearModel, rows: &[usize]) -> f64 {
    let pred = model.predict(data.features, rows.iter().copied());
    let y: Vec<i64> = rows.iter().map(|&i| data.y[i]).collect();
    let groups: Vec<i64> = rows.iter().map(|&i| data.groups[i]).collect();
    match exmap_metrics::group_accuracies(&pred, &y, &groups) {
        Ok(accuracies) => exmap_metrics::worst_group_accuracy(&accuracies),
        Err(_) => 0.0,
    }
}
