//! The solver against scikit-learn's liblinear on committed fixtures.
//!
//! `tests/goldens/make_goldens.py` drew the fixtures and fitted scikit-learn's
//! `LogisticRegression(l1_ratio=1, solver="liblinear", tol=1e-8)` (one-vs-rest for three
//! classes) for every C of the DFR grid; see the script for the exact recipe. We solve the same
//! problems and require, with the solver's default stopping rule (liblinear's, at scikit-learn's
//! `tol=1e-4`): the objective within 1e-4 relative of liblinear's optimum and the same training
//! accuracy within one sample. Solved to a relative tolerance of 1e-7, every coefficient and
//! intercept must also be within 2e-3 of liblinear's (absolute; the largest weights are about
//! 3). At the default tolerance weights along flat directions of the objective may differ by
//! up to about 1e-2, as two solvers stopped early do.

use std::path::Path;

use exmap_artefact::TensorFile;
use exmap_dfr::model::{Standardiser, TrainingSet};
use exmap_dfr::solver::{objective, Design, SolverOptions};
use serde::Deserialize;

#[derive(Deserialize)]
struct Goldens {
    binary: Vec<GoldenFit>,
    multiclass: Vec<GoldenFit>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
struct GoldenFit {
    #[serde(rename = "C")]
    c: f64,
    coef: Vec<Vec<f64>>,
    intercept: Vec<f64>,
    objective: Vec<f64>,
    accuracy: f64,
}

const OBJECTIVE_TOLERANCE: f64 = 1e-4;
const WEIGHT_TOLERANCE: f64 = 2e-3;

fn goldens_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/goldens"))
}

fn fixture(file: &TensorFile, name: &str) -> (Vec<f64>, usize, Vec<i64>) {
    let (_, shape) = file.info(&format!("{name}.x")).unwrap();
    let (rows, dim) = (shape[0], shape[1]);
    let x = file
        .bytes(&format!("{name}.x"))
        .unwrap()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect::<Vec<_>>();
    let (_, y) = file.i64(&format!("{name}.y"), Some(1)).unwrap();
    assert_eq!(x.len(), rows * dim);
    (x, dim, y)
}

/// How tightly to solve, and whether the weights are held to [`WEIGHT_TOLERANCE`] too.
struct Setting {
    options: SolverOptions,
    weight_tolerance: Option<f64>,
}

fn check(name: &str, fits: &[GoldenFit], setting: &Setting) {
    let file = TensorFile::open(&goldens_dir().join("fixtures.safetensors")).unwrap();
    let (x, dim, y) = fixture(&file, name);
    let n = y.len();
    let mut classes = y.clone();
    classes.sort_unstable();
    classes.dedup();
    let all: Vec<usize> = (0..n).collect();
    // The goldens are fitted on raw features, so the standardiser is the identity.
    let set = TrainingSet::new(&x, &y, &all, classes.clone(), Standardiser::identity(dim));
    let design = Design::from_rows(&x, n, dim);
    let positives = if classes.len() == 2 { vec![classes[1]] } else { classes.clone() };

    for golden in fits {
        let outcome = set.fit(golden.c, None, &setting.options);
        assert!(outcome.converged, "{name} C={} tol={}", golden.c, setting.options.tolerance);
        let model = &outcome.model;
        for (k, positive) in positives.iter().enumerate() {
            let signs: Vec<f64> =
                y.iter().map(|v| if v == positive { 1.0 } else { -1.0 }).collect();
            let mut w = model.coef[k].clone();
            w.push(model.intercept[k]);
            let ours = objective(&design, &signs, golden.c, &w);
            let theirs = golden.objective[k];
            assert!(
                (ours - theirs).abs() <= OBJECTIVE_TOLERANCE * theirs,
                "{name} C={} class {positive}: objective {ours} vs liblinear {theirs}",
                golden.c
            );
            let worst = model.coef[k]
                .iter()
                .zip(&golden.coef[k])
                .map(|(a, b)| (a - b).abs())
                .fold((model.intercept[k] - golden.intercept[k]).abs(), f64::max);
            if let Some(tolerance) = setting.weight_tolerance {
                assert!(
                    worst <= tolerance,
                    "{name} C={} class {positive}: weight diff {worst}",
                    golden.c
                );
            }
        }
        let pred = model.predict(&x, 0..n);
        let accuracy = pred.iter().zip(&y).filter(|(p, t)| p == t).count() as f64 / n as f64;
        assert!(
            (accuracy - golden.accuracy).abs() <= 1.0 / n as f64 + 1e-12,
            "{name} C={}: accuracy {accuracy} vs liblinear {}",
            golden.c,
            golden.accuracy
        );
    }
}

fn goldens() -> Goldens {
    let text = std::fs::read_to_string(goldens_dir().join("liblinear.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn default_setting() -> Setting {
    Setting { options: SolverOptions::default(), weight_tolerance: None }
}

fn tight_setting() -> Setting {
    let options =
        SolverOptions { tolerance: 1e-7, max_newton_steps: 1000, ..SolverOptions::default() };
    Setting { options, weight_tolerance: Some(WEIGHT_TOLERANCE) }
}

#[test]
fn binary_fits_match_liblinear_over_the_grid() {
    check("binary", &goldens().binary, &default_setting());
    check("binary", &goldens().binary, &tight_setting());
}

#[test]
fn one_vs_rest_fits_match_liblinear_over_the_grid() {
    check("multiclass", &goldens().multiclass, &default_setting());
    check("multiclass", &goldens().multiclass, &tight_setting());
}
