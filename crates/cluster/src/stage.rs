//! The `cluster` and `cluster-embeddings` stages: read rows and the manifest, cluster each
//! class ("local") and all samples ("global"), write pseudo groups and diagnostics.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use exmap_artefact::{read_table, write_json, write_table, Table, TensorFile};
use exmap_stage::{types, Port, Stage, StageContext, StageError};
use serde::Serialize;

use crate::groups::pair_groups;
use crate::knn::{Gram, GramView};
use crate::params::{ClusterEmbeddingsParams, ClusterParams, ClusterSettings};
use crate::partition::{cluster_partition_shared, needs_graph, PartitionReport};
use crate::scores::{adjusted_rand_index, normalised_mutual_information, purity};
use crate::spectrum::Solver;
use crate::{Normalise, Rows};

/// Spectral (or other) clustering of explanation heatmaps into pseudo groups.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClusterStage;

/// The GEORGE-style baseline: the same clustering on penultimate-layer embeddings.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClusterEmbeddingsStage;

/// The diagnostics document.
#[derive(Debug, Serialize)]
struct Diagnostics {
    source: String,
    method: String,
    normalise: Normalise,
    all_zero_rows: usize,
    n_local_groups: usize,
    n_global_groups: usize,
    partitions: BTreeMap<String, PartitionReport>,
}

impl Stage for ClusterStage {
    type Params = ClusterParams;

    fn kind(&self) -> &'static str {
        "cluster"
    }

    fn code_fingerprint(&self) -> &'static str {
        env!("EXMAP_CODE_FINGERPRINT")
    }

    fn describe(&self) -> &'static str {
        "cluster heatmaps per class and over all samples into pseudo groups"
    }

    fn inputs(&self, _params: &ClusterParams) -> Vec<Port> {
        vec![
            Port::required("heatmaps", types::HEATMAPS),
            Port::required("manifest", types::MANIFEST),
        ]
    }

    fn outputs(&self, _params: &ClusterParams) -> Vec<Port> {
        output_ports()
    }

    fn validate(&self, params: &ClusterParams) -> Result<(), String> {
        params.settings().validate()
    }

    fn run(&self, params: &ClusterParams, ctx: &StageContext) -> Result<(), StageError> {
        let path = ctx.input("heatmaps")?;
        let file = TensorFile::open(path)?;
        let (shape, values) = file.f32("heatmaps", Some(2))?;
        let (_, rows) = file.i64("rows", Some(1))?;
        let matrix = Rows::new(shape[0], shape[1], values).map_err(|e| named(path, e))?;
        let source = Source { path, tensor: "heatmaps", matrix, rows };
        run_clustering(source, &params.settings(), params.normalise, ctx)
    }
}

impl Stage for ClusterEmbeddingsStage {
    type Params = ClusterEmbeddingsParams;

    fn kind(&self) -> &'static str {
        "cluster-embeddings"
    }

    fn code_fingerprint(&self) -> &'static str {
        env!("EXMAP_CODE_FINGERPRINT")
    }

    fn describe(&self) -> &'static str {
        "cluster penultimate-layer embeddings into pseudo groups (GEORGE-style baseline)"
    }

    fn inputs(&self, _params: &ClusterEmbeddingsParams) -> Vec<Port> {
        vec![
            Port::required("embeddings", types::EMBEDDINGS),
            Port::required("manifest", types::MANIFEST),
        ]
    }

    fn outputs(&self, _params: &ClusterEmbeddingsParams) -> Vec<Port> {
        output_ports()
    }

    fn validate(&self, params: &ClusterEmbeddingsParams) -> Result<(), String> {
        if params.split.is_empty() {
            return Err("`split` must name a split".into());
        }
        params.settings().validate()
    }

    fn run(&self, params: &ClusterEmbeddingsParams, ctx: &StageContext) -> Result<(), StageError> {
        let path = ctx.input("embeddings")?;
        let file = TensorFile::open(path)?;
        let features = format!("{}.features", params.split);
        let (shape, values) = file.f32(&features, Some(2))?;
        let (_, rows) = file.i64(&format!("{}.rows", params.split), Some(1))?;
        let matrix = Rows::new(shape[0], shape[1], values).map_err(|e| named(path, e))?;
        let source = Source { path, tensor: "embeddings", matrix, rows };
        run_clustering(source, &params.settings(), params.normalise, ctx)
    }
}

fn output_ports() -> Vec<Port> {
    vec![
        Port::required("groups", types::PSEUDO_GROUPS),
        Port::required("diagnostics", types::CLUSTER_DIAGNOSTICS),
    ]
}

fn named(path: &Path, error: crate::ClusterError) -> StageError {
    StageError::data(format!("`{}`: {error}", path.display()))
}

/// The rows to cluster and the manifest rows they belong to.
struct Source<'a> {
    path: &'a Path,
    tensor: &'static str,
    matrix: Rows,
    rows: Vec<i64>,
}

/// The manifest columns a clustering needs, looked up by manifest row.
struct Manifest {
    index: HashMap<i64, usize>,
    id: Vec<String>,
    y: Vec<i64>,
    group: Vec<i64>,
}

fn read_manifest(path: &Path) -> Result<Manifest, StageError> {
    let table = read_table(path)?;
    let rows = table.i64("row")?;
    let mut index = HashMap::with_capacity(rows.len());
    for (position, &row) in rows.iter().enumerate() {
        if index.insert(row, position).is_some() {
            return Err(StageError::data(format!(
                "`{}`: manifest row {row} appears twice",
                path.display()
            )));
        }
    }
    Ok(Manifest { index, id: table.str("id")?, y: table.i64("y")?, group: table.i64("group")? })
}

/// The largest Gram matrix computed once for all partitions (8,192 samples); larger sets
/// multiply each partition's rows on their own, in blocks.
const SHARED_GRAM_BYTES: usize = 256 << 20;

fn run_clustering(
    source: Source<'_>,
    settings: &ClusterSettings,
    normalise: Normalise,
    ctx: &StageContext,
) -> Result<(), StageError> {
    let manifest_path = ctx.input("manifest")?;
    let manifest = read_manifest(manifest_path)?;
    let Source { path, tensor, mut matrix, rows } = source;
    if rows.len() != matrix.n {
        return Err(StageError::data(format!(
            "`{}`: `{tensor}` has {} rows but `rows` has {}",
            path.display(),
            matrix.n,
            rows.len()
        )));
    }
    if matrix.n == 0 {
        return Err(StageError::data(format!("`{}`: `{tensor}` has no rows", path.display())));
    }
    let mut positions = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let position = manifest.index.get(row).copied().ok_or_else(|| {
            StageError::data(format!(
                "`{}`: row {i} refers to manifest row {row}, which `{}` does not have",
                path.display(),
                manifest_path.display()
            ))
        })?;
        positions.push(position);
    }
    matrix
        .check_finite(|i| format!("manifest row {}, id {}", rows[i], manifest.id[positions[i]]))
        .map_err(|e| named(path, e))?;
    let all_zero_rows = matrix.normalise(normalise);
    if all_zero_rows > 0 && normalise == Normalise::MaxAbs {
        tracing::warn!(rows = all_zero_rows, "all-zero rows left at zero");
    }

    let y: Vec<i64> = positions.iter().map(|&p| manifest.y[p]).collect();
    let truth: Vec<i64> = positions.iter().map(|&p| manifest.group[p]).collect();
    let classes: Vec<i64> =
        y.iter().copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let mut partitions: Vec<(String, Vec<usize>)> = classes
        .iter()
        .map(|&c| (format!("y{c}"), (0..y.len()).filter(|&i| y[i] == c).collect()))
        .collect();
    partitions.push(("all".into(), (0..y.len()).collect()));

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(ctx.threads.max(1))
        .build()
        .map_err(|e| StageError::compute(format!("cannot start worker threads: {e}")))?;
    // Every partition's dot products are a sub-block of the whole set's: one GEMM serves
    // them all, when it fits.
    let gram = (needs_graph(settings) && Gram::bytes(matrix.n) <= SHARED_GRAM_BYTES)
        .then(|| pool.install(|| Gram::new(&matrix)));
    let mut local = vec![0usize; y.len()];
    let mut global = vec![0usize; y.len()];
    let mut reports = BTreeMap::new();
    let total = partitions.len() as u64;
    for (done, (name, members)) in partitions.iter().enumerate() {
        let subset = matrix.select(members);
        let shared = gram.as_ref().map(|gram| GramView { gram, members });
        let result = pool
            .install(|| cluster_partition_shared(&subset, settings, ctx.seed, Solver::Auto, shared))
            .map_err(|e| StageError::from(e).with_partition(name))?;
        let mut report = result.report;
        let predicted: Vec<i64> = result.labels.iter().map(|&l| l as i64).collect();
        let true_groups: Vec<i64> = members.iter().map(|&i| truth[i]).collect();
        report.purity = Some(purity(&predicted, &true_groups));
        report.adjusted_rand_index = Some(adjusted_rand_index(&predicted, &true_groups));
        report.nmi = Some(normalised_mutual_information(&predicted, &true_groups));
        let target = if name == "all" { &mut global } else { &mut local };
        for (&i, &label) in members.iter().zip(&result.labels) {
            target[i] = label;
        }
        tracing::info!(
            partition = %name, n = report.n, k = report.k, solver = %report.solver,
            seconds = report.seconds, "clustered partition"
        );
        reports.insert(name.clone(), report);
        ctx.progress("cluster", done as u64 + 1, total);
    }

    let local_group = pair_groups(&y, &local);
    let global_group = pair_groups(&y, &global);
    let table = Table::builder()
        .i64("row", rows.clone())
        .str("id", &positions.iter().map(|&p| manifest.id[p].as_str()).collect::<Vec<_>>())
        .i64("y", y.clone())
        .i64("local_cluster", local.iter().map(|&l| l as i64).collect())
        .i64("local_group", local_group.clone())
        .i64("global_cluster", global.iter().map(|&l| l as i64).collect())
        .i64("global_group", global_group.clone())
        .build();
    write_table(ctx.output("groups")?, &table)?;

    let distinct = |g: &[i64]| g.iter().collect::<std::collections::BTreeSet<_>>().len();
    let diagnostics = Diagnostics {
        source: tensor.into(),
        method: serde_json::to_value(settings.method)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        normalise,
        all_zero_rows,
        n_local_groups: distinct(&local_group),
        n_global_groups: distinct(&global_group),
        partitions: reports,
    };
    write_json(ctx.output("diagnostics")?, &diagnostics)?;
    Ok(())
}

trait WithPartition {
    fn with_partition(self, name: &str) -> Self;
}

impl WithPartition for StageError {
    fn with_partition(self, name: &str) -> Self {
        match self {
            StageError::Data(m) => StageError::Data(format!("partition `{name}`: {m}")),
            StageError::Compute(m) => StageError::Compute(format!("partition `{name}`: {m}")),
            other => other,
        }
    }
}
