//! Clustering one partition: graph, spectrum, number of clusters, labels, diagnostics.

use std::time::Instant;

use faer::Mat;
use serde::Serialize;

use crate::assign::cluster_qr;
use crate::graph::Graph;
use crate::kmeans::{kmeans, Points};
use crate::knn::{nearest_neighbours_with, squared_distance, GramView};
use crate::params::{Assign, ClusterSettings, KChoice, Method, NeighbourChoice};
use crate::spectrum::{smallest_eigenpairs, Solver, Spectrum};
use crate::{ClusterError, Rows};

/// What clustering one partition found, for the diagnostics JSON.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PartitionReport {
    pub n: usize,
    pub n_neighbors: usize,
    /// Smallest eigenvalues of the normalised Laplacian, ascending (empty when not needed).
    pub eigenvalues: Vec<f64>,
    pub gaps: Vec<f64>,
    pub k: usize,
    /// `eigengap`, `fixed`, or `single` for a partition too small to split.
    pub k_rule: String,
    /// Connected components of the kNN graph (absent when no graph was built).
    pub components: Option<usize>,
    pub solver: String,
    pub cluster_sizes: Vec<usize>,
    pub purity: Option<f64>,
    pub adjusted_rand_index: Option<f64>,
    pub nmi: Option<f64>,
    /// Wall time; logged, but kept out of the artefact so that its bytes are reproducible.
    #[serde(skip)]
    pub seconds: f64,
    pub notes: Vec<String>,
}

/// Labels (contiguous from 0, numbered by first appearance in row order) and the report.
#[derive(Clone, Debug)]
pub struct PartitionResult {
    pub labels: Vec<usize>,
    pub report: PartitionReport,
}

/// The eigengap rule: the `k` in `[k_min, k_max]` with the largest `lambda[k] - lambda[k-1]`
/// (ascending eigenvalues, 0-based, the first such k on ties). With the defaults (2, 10) this
/// is the reference's `argmax(diff(lambda)[1:10]) + 2`. `None` when too few eigenvalues.
pub fn eigengap(eigenvalues: &[f64], k_min: usize, k_max: usize) -> Option<usize> {
    let upper = k_max.min(eigenvalues.len().checked_sub(1)?);
    let mut best: Option<(usize, f64)> = None;
    for k in k_min.max(1)..=upper {
        let gap = eigenvalues[k] - eigenvalues[k - 1];
        if best.is_none_or(|(_, g)| gap > g) {
            best = Some((k, gap));
        }
    }
    best.map(|(k, _)| k)
}

/// The neighbour count for `n` rows: `floor(ln n)` or the fixed number, at least 2 (the
/// row itself and one other) and at most `n`.
pub fn neighbour_count(n: usize, rule: NeighbourChoice) -> usize {
    let raw = match rule {
        NeighbourChoice::Fixed(k) => k,
        NeighbourChoice::Rule(_) => (n as f64).ln().floor().max(0.0) as usize,
    };
    raw.max(2).min(n)
}

/// Clusters the rows of one partition.
pub fn cluster_partition(
    rows: &Rows,
    settings: &ClusterSettings,
    seed: u64,
) -> Result<PartitionResult, ClusterError> {
    cluster_partition_with(rows, settings, seed, Solver::Auto)
}

/// Whether `settings` build the kNN graph (every spectral method, and k-means with the
/// eigengap's k).
pub fn needs_graph(settings: &ClusterSettings) -> bool {
    settings.method != Method::KMeans || matches!(settings.k, KChoice::Rule(_))
}

/// [`cluster_partition`] with a chosen eigensolver.
pub fn cluster_partition_with(
    rows: &Rows,
    settings: &ClusterSettings,
    seed: u64,
    solver: Solver,
) -> Result<PartitionResult, ClusterError> {
    cluster_partition_shared(rows, settings, seed, solver, None)
}

/// [`cluster_partition_with`], taking the rows' dot products from a Gram matrix shared with
/// other partitions of the same samples (see [`crate::knn::Gram`]).
pub fn cluster_partition_shared(
    rows: &Rows,
    settings: &ClusterSettings,
    seed: u64,
    solver: Solver,
    shared: Option<GramView<'_>>,
) -> Result<PartitionResult, ClusterError> {
    let started = Instant::now();
    let n = rows.n;
    let mut report = PartitionReport { n, solver: "none".into(), ..Default::default() };
    if n == 0 {
        return Err(ClusterError::Input("cannot cluster an empty partition".into()));
    }
    if n == 1 {
        report.k = 1;
        report.k_rule = "single".into();
        report.cluster_sizes = vec![1];
        report.notes.push("one sample: a single cluster".into());
        return Ok(PartitionResult { labels: vec![0], report });
    }

    let mut spectrum = None;
    if needs_graph(settings) {
        report.n_neighbors = neighbour_count(n, settings.neighbors);
        let neighbours = nearest_neighbours_with(rows, report.n_neighbors, shared);
        let graph = Graph::from_neighbours(n, &neighbours);
        report.components = Some(graph.components());
        if report.components > Some(1) {
            report.notes.push(format!(
                "the kNN graph has {} connected components",
                report.components.unwrap_or(0)
            ));
        }
        let sqrt_degrees = graph.sqrt_degrees();
        let normalised = graph.normalised(&sqrt_degrees);
        let want = match (settings.method, settings.k) {
            (Method::Spectral, KChoice::Fixed(k)) => settings.n_eigenvalues.max(k),
            _ => settings.n_eigenvalues.max(3),
        };
        let found = smallest_eigenpairs(&normalised, &sqrt_degrees, want, seed, solver)?;
        report.solver = if found.products == 0 { "dense" } else { "lanczos" }.into();
        report.eigenvalues = found.values.iter().take(settings.n_eigenvalues).copied().collect();
        report.gaps = report.eigenvalues.windows(2).map(|w| w[1] - w[0]).collect();
        spectrum = Some((found, sqrt_degrees));
    }

    let k = match settings.k {
        KChoice::Fixed(k) => {
            report.k_rule = "fixed".into();
            if k > n {
                report.notes.push(format!("fixed k = {k} clamped to the {n} samples"));
            }
            k.min(n)
        }
        KChoice::Rule(_) => {
            report.k_rule = "eigengap".into();
            match eigengap(&report.eigenvalues, settings.k_min, settings.k_max) {
                Some(k) => k,
                None => {
                    report.notes.push(format!(
                        "{} eigenvalues are too few for the eigengap in [{}, {}]: one cluster",
                        report.eigenvalues.len(),
                        settings.k_min,
                        settings.k_max
                    ));
                    1
                }
            }
        }
    };
    report.k = k;

    let raw_labels = match settings.method {
        Method::Spectral => {
            let (found, sqrt_degrees) = spectrum.as_ref().expect("spectral needs the graph");
            let embedding = scaled_embedding(found, sqrt_degrees, 0, k);
            match settings.assign {
                Assign::ClusterQr => cluster_qr(&embedding),
                Assign::KMeans => kmeans_on(&embedding, k, settings.kmeans_restarts, seed),
            }
        }
        Method::Spectral2dKMeans => {
            let (found, sqrt_degrees) = spectrum.as_ref().expect("spectral2d needs the graph");
            let embedding = scaled_embedding(found, sqrt_degrees, 1, 2);
            kmeans_on(&embedding, k, settings.kmeans_restarts, seed)
        }
        Method::KMeans => {
            let values: Vec<f64> = rows.values.iter().map(|&v| v as f64).collect();
            let points = Points { n, d: rows.d, values: &values };
            kmeans(points, k, settings.kmeans_restarts, seed).0
        }
    };

    let mut labels = renumber(&raw_labels);
    if settings.min_cluster_size > 0 {
        let merged = merge_small_clusters(rows, &labels, settings.min_cluster_size);
        if merged.1 > 0 {
            report.notes.push(format!(
                "{} clusters under {} samples merged into their nearest cluster",
                merged.1, settings.min_cluster_size
            ));
        }
        labels = renumber(&merged.0);
    }
    let clusters = labels.iter().max().map_or(0, |m| m + 1);
    report.cluster_sizes = vec![0; clusters];
    labels.iter().for_each(|&l| report.cluster_sizes[l] += 1);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(PartitionResult { labels, report })
}

/// Eigenvectors `skip..skip+count` divided by the square-rooted degrees, as scikit-learn's
/// `spectral_embedding` returns them.
fn scaled_embedding(
    spectrum: &Spectrum,
    sqrt_degrees: &[f64],
    skip: usize,
    count: usize,
) -> Mat<f64> {
    let available = spectrum.vectors.ncols();
    let count = count.min(available.saturating_sub(skip));
    Mat::from_fn(spectrum.vectors.nrows(), count, |i, c| {
        spectrum.vectors[(i, skip + c)] / sqrt_degrees[i]
    })
}

fn kmeans_on(embedding: &Mat<f64>, k: usize, restarts: usize, seed: u64) -> Vec<usize> {
    let (n, d) = (embedding.nrows(), embedding.ncols());
    let mut values = Vec::with_capacity(n * d);
    for i in 0..n {
        for c in 0..d {
            values.push(embedding[(i, c)]);
        }
    }
    kmeans(Points { n, d, values: &values }, k, restarts, seed).0
}

/// Labels renumbered from 0 in order of first appearance.
pub fn renumber(labels: &[usize]) -> Vec<usize> {
    let mut map = std::collections::BTreeMap::new();
    labels
        .iter()
        .map(|&l| {
            let next = map.len();
            *map.entry(l).or_insert(next)
        })
        .collect()
}

/// Merges clusters smaller than `minimum` into the cluster with the nearest centroid, the
/// smallest first, until none is left or one cluster remains. Returns the labels and the
/// number of merges.
fn merge_small_clusters(rows: &Rows, labels: &[usize], minimum: usize) -> (Vec<usize>, usize) {
    let mut labels = labels.to_vec();
    let mut merges = 0;
    loop {
        let count = labels.iter().max().map_or(0, |m| m + 1);
        let mut sizes = vec![0usize; count];
        labels.iter().for_each(|&l| sizes[l] += 1);
        let alive: Vec<usize> = (0..count).filter(|&c| sizes[c] > 0).collect();
        if alive.len() <= 1 {
            return (labels, merges);
        }
        let Some(&small) =
            alive.iter().filter(|&&c| sizes[c] < minimum).min_by_key(|&&c| (sizes[c], c))
        else {
            return (labels, merges);
        };
        let centroids = centroids(rows, &labels, count);
        let target = alive
            .iter()
            .copied()
            .filter(|&c| c != small)
            .min_by(|&a, &b| {
                let da = squared_distance_f64(&centroids[small], &centroids[a]);
                let db = squared_distance_f64(&centroids[small], &centroids[b]);
                da.total_cmp(&db).then(a.cmp(&b))
            })
            .expect("another cluster is alive");
        labels.iter_mut().filter(|l| **l == small).for_each(|l| *l = target);
        merges += 1;
    }
}

fn centroids(rows: &Rows, labels: &[usize], count: usize) -> Vec<Vec<f32>> {
    let mut sums = vec![vec![0.0f64; rows.d]; count];
    let mut sizes = vec![0usize; count];
    for (i, &l) in labels.iter().enumerate() {
        sizes[l] += 1;
        sums[l].iter_mut().zip(rows.row(i)).for_each(|(s, &v)| *s += v as f64);
    }
    sums.into_iter()
        .zip(sizes)
        .map(|(s, size)| s.into_iter().map(|v| (v / size.max(1) as f64) as f32).collect())
        .collect()
}

fn squared_distance_f64(a: &[f32], b: &[f32]) -> f64 {
    squared_distance(a, b)
}
