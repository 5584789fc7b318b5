//! Behaviour of one-partition clustering: k, labels, edge cases, determinism.

mod common;

use exmap_cluster::scores::{adjusted_rand_index, purity};
use exmap_cluster::spectrum::Solver;
use exmap_cluster::{
    cluster_partition, eigengap, partition::cluster_partition_with, ClusterSettings, KChoice,
    Method, Rows,
};

fn as_i64(labels: &[usize]) -> Vec<i64> {
    labels.iter().map(|&l| l as i64).collect()
}

#[test]
fn three_separated_blobs_give_three_perfect_clusters() {
    let (rows, truth) = common::blobs(&[60, 45, 80], 8, 1);
    let result = cluster_partition(&rows, &ClusterSettings::default(), 1).unwrap();
    assert_eq!(result.report.k, 3, "{:?}", result.report.eigenvalues);
    assert_eq!(adjusted_rand_index(&as_i64(&result.labels), &truth), 1.0);
    assert_eq!(result.report.cluster_sizes, vec![60, 45, 80]);
    assert_eq!(result.report.components, Some(3));
}

#[test]
fn eigengap_skips_the_first_gap_and_clamps_to_the_bounds() {
    let check = |values: &[f64], k_min, k_max, expected: Option<usize>| {
        assert_eq!(eigengap(values, k_min, k_max), expected, "{values:?} in [{k_min}, {k_max}]");
    };
    let mut values = vec![0.0, 0.0, 0.01, 0.5, 0.6];
    values.extend((0..8).map(|i| 0.61 + 0.01 * i as f64));
    // Gaps for k = 2, 3, 4, ...: 0.01, 0.49, 0.1, 0.01, ...; the largest is above k = 3.
    check(&values, 2, 10, Some(3));
    // The first gap (k = 1) is never a candidate with the default bounds, however large.
    check(&[0.0, 0.9, 0.91, 0.95, 0.96], 2, 10, Some(3));
    check(&[0.0, 0.9, 0.91, 0.95, 0.96], 1, 10, Some(1));
    // Ties go to the smaller k; the upper bound is clamped to the eigenvalues there are.
    check(&[0.0, 0.1, 0.2, 0.3], 2, 10, Some(2));
    check(&values, 4, 10, Some(4));
    check(&[0.0, 0.5], 2, 10, None);
    // With 13 eigenvalues rising ever more steeply, k_max = 10 wins.
    let steep: Vec<f64> = (0..13).map(|i| (i * i) as f64 / 1000.0).collect();
    check(&steep, 2, 10, Some(10));
}

#[test]
fn tiny_partitions_give_a_clear_result() {
    for n in [1usize, 2, 3, 12] {
        let (rows, _) = common::blobs(&[n], 5, n as u64);
        let result = cluster_partition(&rows, &ClusterSettings::default(), 1).unwrap();
        assert_eq!(result.labels.len(), n);
        assert_eq!(result.report.cluster_sizes.iter().sum::<usize>(), n);
        assert!(
            result.report.k >= 1 && result.report.k <= n.max(1),
            "n = {n}: {:?}",
            result.report
        );
        if n <= 2 {
            assert_eq!(result.report.k, 1, "n = {n}");
            assert!(!result.report.notes.is_empty(), "n = {n} says why it is one cluster");
        }
    }
}

#[test]
fn identical_rows_do_not_crash_and_stay_together() {
    let rows = Rows::new(40, 6, vec![0.25; 240]).unwrap();
    let result = cluster_partition(&rows, &ClusterSettings::default(), 3).unwrap();
    assert_eq!(result.labels.len(), 40);
    assert!(result.report.eigenvalues.iter().all(|v| v.is_finite()));
    let (mut twins, truth) = common::blobs(&[30, 30], 4, 9);
    let copy = twins.row(0).to_vec();
    for i in 1..10 {
        twins.values[i * 4..(i + 1) * 4].copy_from_slice(&copy);
    }
    let result = cluster_partition(&twins, &ClusterSettings::default(), 3).unwrap();
    // The ten copies share one label (they may form a cluster of their own) and no cluster
    // mixes the two blobs.
    assert!(result.labels[..10].iter().all(|&l| l == result.labels[0]));
    assert_eq!(purity(&as_i64(&result.labels), &truth), 1.0, "{:?}", result.report);
}

#[test]
fn non_finite_values_are_rejected_with_the_row_named() {
    let (mut rows, _) = common::blobs(&[10], 4, 2);
    rows.values[7 * 4 + 2] = f32::NAN;
    let err = rows.check_finite(|i| format!("sample-{i}")).unwrap_err().to_string();
    assert!(err.contains("row 7") && err.contains("sample-7") && err.contains("column 2"), "{err}");
}

#[test]
fn labels_repeat_exactly_with_the_same_seed() {
    let (rows, _) = common::blobs(&[70, 50, 40, 60], 6, 4);
    for method in [Method::Spectral, Method::KMeans, Method::Spectral2dKMeans] {
        let settings = ClusterSettings { method, ..Default::default() };
        let a = cluster_partition(&rows, &settings, 11).unwrap();
        let b = cluster_partition(&rows, &settings, 11).unwrap();
        assert_eq!(a.labels, b.labels, "{method:?}");
        assert_eq!(a.report.eigenvalues, b.report.eigenvalues, "{method:?}");
    }
}

#[test]
fn labels_do_not_depend_on_row_order() {
    let (rows, _) = common::blobs(&[70, 50, 40, 60], 6, 5);
    let order: Vec<usize> = (0..rows.n).map(|i| (i * 37) % rows.n).collect();
    let shuffled = rows.select(&order);
    let settings = ClusterSettings::default();
    let a = cluster_partition(&rows, &settings, 1).unwrap();
    let b = cluster_partition(&shuffled, &settings, 1).unwrap();
    let a_in_shuffled_order: Vec<i64> = order.iter().map(|&i| a.labels[i] as i64).collect();
    assert_eq!(a.report.k, b.report.k);
    assert_eq!(adjusted_rand_index(&a_in_shuffled_order, &as_i64(&b.labels)), 1.0);
    for (x, y) in a.report.eigenvalues.iter().zip(&b.report.eigenvalues) {
        assert!((x - y).abs() < 1e-9, "{x} vs {y}");
    }
}

#[test]
fn lanczos_agrees_with_the_dense_solver() {
    // Overlapping blobs so that the spectrum has no trivially separated structure.
    let (mut rows, _) = common::blobs(&[300, 250, 200, 150], 5, 6);
    rows.values.iter_mut().enumerate().for_each(|(i, v)| *v *= 0.5 + (i % 7) as f32 * 0.1);
    let settings = ClusterSettings::default();
    let dense = cluster_partition_with(&rows, &settings, 2, Solver::Dense).unwrap();
    let lanczos = cluster_partition_with(&rows, &settings, 2, Solver::Lanczos).unwrap();
    assert_eq!(lanczos.report.solver, "lanczos");
    for (x, y) in dense.report.eigenvalues.iter().zip(&lanczos.report.eigenvalues) {
        assert!((x - y).abs() < 1e-8, "dense {x} vs lanczos {y}");
    }
    assert_eq!(dense.report.k, lanczos.report.k);
    let ari = adjusted_rand_index(&as_i64(&dense.labels), &as_i64(&lanczos.labels));
    assert!(ari > 0.999, "ari {ari}");
}

#[test]
fn fixed_k_and_small_cluster_merging() {
    let (rows, truth) = common::blobs(&[80, 70, 6], 6, 7);
    let settings = ClusterSettings { k: KChoice::Fixed(3), ..Default::default() };
    let result = cluster_partition(&rows, &settings, 1).unwrap();
    assert_eq!(adjusted_rand_index(&as_i64(&result.labels), &truth), 1.0);
    let settings = ClusterSettings { min_cluster_size: 8, ..settings };
    let merged = cluster_partition(&rows, &settings, 1).unwrap();
    assert_eq!(merged.report.cluster_sizes.len(), 2, "{:?}", merged.report);
    assert!(merged.report.cluster_sizes.iter().all(|&s| s >= 8));
}

#[test]
fn kmeans_methods_separate_blobs() {
    let (rows, truth) = common::blobs(&[50, 60, 70], 6, 8);
    for method in [Method::KMeans, Method::Spectral2dKMeans] {
        let settings = ClusterSettings { method, k: KChoice::Fixed(3), ..Default::default() };
        let result = cluster_partition(&rows, &settings, 5).unwrap();
        let ari = adjusted_rand_index(&as_i64(&result.labels), &truth);
        assert!(ari > 0.99, "{method:?}: ari {ari}");
    }
}

#[test]
fn a_shared_gram_matrix_gives_each_partition_the_neighbours_and_labels_of_its_own_products() {
    let (rows, truth) = common::blobs(&[50, 40, 70], 16, 5);
    let gram = exmap_cluster::Gram::new(&rows);
    // A partition of every other row (as a class is a scattered subset of the whole set).
    let members: Vec<usize> = (0..rows.n).filter(|i| i % 2 == 1).collect();
    let subset = rows.select(&members);
    let view = exmap_cluster::GramView { gram: &gram, members: &members };
    let own = exmap_cluster::knn::nearest_neighbours(&subset, 6);
    let shared = exmap_cluster::knn::nearest_neighbours_with(&subset, 6, Some(view));
    assert_eq!(own.indices, shared.indices);

    let settings = ClusterSettings::default();
    let alone = cluster_partition(&subset, &settings, 3).unwrap();
    let together =
        exmap_cluster::cluster_partition_shared(&subset, &settings, 3, Solver::Auto, Some(view))
            .unwrap();
    assert_eq!(alone.labels, together.labels);
    assert_eq!(alone.report.k, 3);
    let subset_truth: Vec<i64> = members.iter().map(|&i| truth[i]).collect();
    assert_eq!(adjusted_rand_index(&as_i64(&together.labels), &subset_truth), 1.0);
}
