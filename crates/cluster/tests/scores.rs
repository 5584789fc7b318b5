//! Purity, adjusted Rand index and NMI against values computed by scikit-learn 1.9.1
//! (`adjusted_rand_score`, `normalized_mutual_info_score`), to 1e-12.

use exmap_cluster::scores::{adjusted_rand_index, normalised_mutual_information, purity};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn scores_match_scikit_learn() {
    let cases: [(&[i64], &[i64], f64, f64); 2] = [
        (
            &[0, 0, 1, 1, 1, 2, 2, 2],
            &[0, 0, 0, 1, 1, 1, 2, 2],
            0.23809523809523808,
            0.5588730382170324,
        ),
        (&[0, 0, 1, 2], &[0, 0, 1, 1], 0.5714285714285714, 0.7999999999999999),
    ];
    for (predicted, truth, ari, nmi) in cases {
        assert!(close(adjusted_rand_index(predicted, truth), ari), "ari {predicted:?}");
        assert!(close(normalised_mutual_information(predicted, truth), nmi), "nmi {predicted:?}");
    }
}

#[test]
fn relabelled_partitions_agree_perfectly() {
    let (a, b) = ([0, 0, 1, 1, 2], [5, 5, 3, 3, 9]);
    assert!(close(adjusted_rand_index(&a, &b), 1.0));
    assert!(close(normalised_mutual_information(&a, &b), 1.0));
    assert!(close(purity(&a, &b), 1.0));
    assert!(close(purity(&[0, 0, 0, 0], &[1, 1, 2, 3]), 0.5));
}
