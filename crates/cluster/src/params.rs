//! Parameters of the clustering stages, with the reference's defaults.

use serde::{Deserialize, Serialize};

use crate::Normalise;

/// Which clusterer runs on a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// Spectral clustering on the kNN graph (the reference).
    #[serde(rename = "spectral")]
    Spectral,
    /// k-means directly on the (normalised) rows.
    #[serde(rename = "kmeans")]
    KMeans,
    /// k-means on a 2-D spectral embedding of the kNN graph (stands in for the reference's
    /// 2-D UMAP + k-means on CelebA; it is not UMAP).
    #[serde(rename = "spectral2d-kmeans")]
    Spectral2dKMeans,
}

/// How labels are read off a spectral embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assign {
    #[serde(rename = "cluster_qr")]
    ClusterQr,
    #[serde(rename = "kmeans")]
    KMeans,
}

/// A rule named by a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KRule {
    #[serde(rename = "eigengap")]
    Eigengap,
}

/// The number of clusters: the eigengap rule or a fixed number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KChoice {
    Fixed(usize),
    Rule(KRule),
}

/// A rule named by a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NeighbourRule {
    /// `floor(ln N)`.
    #[serde(rename = "ln")]
    Ln,
}

/// The number of neighbours in the kNN graph (the sample itself included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NeighbourChoice {
    Fixed(usize),
    Rule(NeighbourRule),
}

/// How one partition is clustered; shared by both stages.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSettings {
    pub method: Method,
    pub k: KChoice,
    pub k_min: usize,
    pub k_max: usize,
    pub n_eigenvalues: usize,
    pub neighbors: NeighbourChoice,
    pub assign: Assign,
    pub kmeans_restarts: usize,
    pub min_cluster_size: usize,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            method: Method::Spectral,
            k: KChoice::Rule(KRule::Eigengap),
            k_min: 2,
            k_max: 10,
            n_eigenvalues: 13,
            neighbors: NeighbourChoice::Rule(NeighbourRule::Ln),
            assign: Assign::ClusterQr,
            kmeans_restarts: 10,
            min_cluster_size: 0,
        }
    }
}

impl ClusterSettings {
    /// Range and combination checks serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.k_min < 1 || self.k_min > self.k_max {
            return Err(format!(
                "`k_min` ({}) must be at least 1 and at most `k_max` ({})",
                self.k_min, self.k_max
            ));
        }
        if self.n_eigenvalues < self.k_max + 1 {
            return Err(format!(
                "`n_eigenvalues` ({}) must exceed `k_max` ({}): the eigengap above k needs the \
                 (k+1)-th eigenvalue",
                self.n_eigenvalues, self.k_max
            ));
        }
        if self.k == KChoice::Fixed(0) {
            return Err("`k` must be at least 1".into());
        }
        if self.neighbors == NeighbourChoice::Fixed(0) {
            return Err("`neighbors` must be at least 1".into());
        }
        if self.kmeans_restarts == 0 {
            return Err("`kmeans_restarts` must be at least 1".into());
        }
        Ok(())
    }
}

/// Parameters of the `cluster` stage (heatmaps). See [`ClusterSettings`] for the shared keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterParams {
    pub method: Method,
    pub k: KChoice,
    pub k_min: usize,
    pub k_max: usize,
    pub n_eigenvalues: usize,
    pub neighbors: NeighbourChoice,
    pub assign: Assign,
    pub kmeans_restarts: usize,
    pub min_cluster_size: usize,
    pub normalise: Normalise,
}

impl Default for ClusterParams {
    fn default() -> Self {
        let s = ClusterSettings::default();
        Self {
            method: s.method,
            k: s.k,
            k_min: s.k_min,
            k_max: s.k_max,
            n_eigenvalues: s.n_eigenvalues,
            neighbors: s.neighbors,
            assign: s.assign,
            kmeans_restarts: s.kmeans_restarts,
            min_cluster_size: s.min_cluster_size,
            normalise: Normalise::MaxAbs,
        }
    }
}

impl ClusterParams {
    pub fn settings(&self) -> ClusterSettings {
        ClusterSettings {
            method: self.method,
            k: self.k,
            k_min: self.k_min,
            k_max: self.k_max,
            n_eigenvalues: self.n_eigenvalues,
            neighbors: self.neighbors,
            assign: self.assign,
            kmeans_restarts: self.kmeans_restarts,
            min_cluster_size: self.min_cluster_size,
        }
    }
}

/// Parameters of the `cluster-embeddings` stage (GEORGE-style baseline): the keys of
/// [`ClusterParams`], no normalisation by default, and the split whose features are clustered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterEmbeddingsParams {
    pub method: Method,
    pub k: KChoice,
    pub k_min: usize,
    pub k_max: usize,
    pub n_eigenvalues: usize,
    pub neighbors: NeighbourChoice,
    pub assign: Assign,
    pub kmeans_restarts: usize,
    pub min_cluster_size: usize,
    pub normalise: Normalise,
    pub split: String,
}

impl Default for ClusterEmbeddingsParams {
    fn default() -> Self {
        let p = ClusterParams::default();
        Self {
            method: p.method,
            k: p.k,
            k_min: p.k_min,
            k_max: p.k_max,
            n_eigenvalues: p.n_eigenvalues,
            neighbors: p.neighbors,
            assign: p.assign,
            kmeans_restarts: p.kmeans_restarts,
            min_cluster_size: p.min_cluster_size,
            normalise: Normalise::None,
            split: "val".into(),
        }
    }
}

impl ClusterEmbeddingsParams {
    pub fn settings(&self) -> ClusterSettings {
        ClusterSettings {
            method: self.method,
            k: self.k,
            k_min: self.k_min,
            k_max: self.k_max,
            n_eigenvalues: self.n_eigenvalues,
            neighbors: self.neighbors,
            assign: self.assign,
            kmeans_restarts: self.kmeans_restarts,
            min_cluster_size: self.min_cluster_size,
        }
    }
}
