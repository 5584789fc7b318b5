//! Parity with the reference's scikit-learn/scipy spectral clustering on small fixtures.
//!
//! The golden files in `tests/goldens/` were written by `tests/goldens/make_goldens.py`, which
//! runs the reference procedure (the peer harness's `spectral_partition`: scikit-learn 1.9.1
//! kNN affinity, scipy 1.17.1 lobpcg eigenvalues, eigengap, `SpectralClustering` with
//! `cluster_qr`, seed 1) on max-abs normalised rows. We require the same number of
//! neighbours, graph components and eigengap k, eigenvalues within 1e-5 absolute (lobpcg runs
//! with its default tolerance, about sqrt(machine epsilon) * N on the residual, so its values
//! carry errors near 1e-6), and labels with adjusted Rand index at least 0.95.

use std::path::PathBuf;

use exmap_artefact::{read_json, TensorFile};
use exmap_cluster::scores::adjusted_rand_index;
use exmap_cluster::{cluster_partition, ClusterSettings, Normalise, Rows};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    n_neighbors: usize,
    eigenvalues: Vec<f64>,
    k: usize,
    components: usize,
    labels: Vec<i64>,
}

const EIGENVALUE_TOLERANCE: f64 = 1e-5;
const MIN_ARI: f64 = 0.95;

fn check(name: &str) {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/goldens");
    let golden: Golden = read_json(&folder.join(format!("{name}.json"))).unwrap();
    let file = TensorFile::open(&folder.join(format!("{name}.safetensors"))).unwrap();
    let (shape, values) = file.f32("x", Some(2)).unwrap();
    let mut rows = Rows::new(shape[0], shape[1], values).unwrap();
    rows.normalise(Normalise::MaxAbs);

    let result = cluster_partition(&rows, &ClusterSettings::default(), 1).unwrap();
    let report = &result.report;
    assert_eq!(report.n_neighbors, golden.n_neighbors, "{name}: neighbours");
    assert_eq!(report.components, Some(golden.components), "{name}: components");
    assert_eq!(report.k, golden.k, "{name}: eigengap k, ours {:?}", report.eigenvalues);
    assert_eq!(report.eigenvalues.len(), golden.eigenvalues.len(), "{name}");
    for (i, (ours, theirs)) in report.eigenvalues.iter().zip(&golden.eigenvalues).enumerate() {
        assert!(
            (ours - theirs).abs() <= EIGENVALUE_TOLERANCE,
            "{name}: eigenvalue {i}: ours {ours} vs reference {theirs}"
        );
    }
    let ours: Vec<i64> = result.labels.iter().map(|&l| l as i64).collect();
    let ari = adjusted_rand_index(&ours, &golden.labels);
    assert!(ari >= MIN_ARI, "{name}: adjusted Rand index {ari} against the reference");
}

#[test]
fn four_blobs_match_the_reference() {
    check("blobs4");
}

#[test]
fn seven_blobs_match_the_reference() {
    check("blobs7");
}

#[test]
fn six_prototypes_match_the_reference() {
    check("prototypes6");
}

#[test]
fn thousand_rows_through_lanczos_match_the_reference() {
    check("prototypes5_large");
}
