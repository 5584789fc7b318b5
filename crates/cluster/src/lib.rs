//! Clustering of explanation heatmaps (or embeddings) into pseudo groups, as ExMap does.
//!
//! Each class ("local") and the whole set ("global") is clustered on its own. The reference
//! path is spectral clustering: an exact kNN graph with `floor(ln N)` neighbours made
//! symmetric ([`knn`], [`graph`]), the smallest eigenpairs of the normalised Laplacian
//! ([`spectrum`]), the number of clusters from the eigengap ([`partition::eigengap`]) and
//! labels by column-pivoted QR ([`assign::cluster_qr`]). k-means on the rows or on a 2-D
//! spectral embedding are the ablations ([`kmeans`]). [`groups`] turns clusters into
//! contiguous group ids, [`scores`] measures them against the true groups for reporting, and
//! [`stage`] wraps it all as the `cluster` and `cluster-embeddings` pipeline stages.

pub mod assign;
mod error;
pub mod graph;
pub mod groups;
pub mod kmeans;
pub mod knn;
pub mod params;
pub mod partition;
mod rows;
pub mod scores;
pub mod spectrum;
mod stage;

pub use error::ClusterError;
pub use knn::{Gram, GramView};
pub use params::{
    Assign, ClusterEmbeddingsParams, ClusterParams, ClusterSettings, KChoice, KRule, Method,
    NeighbourChoice, NeighbourRule,
};
pub use partition::{
    cluster_partition, cluster_partition_shared, eigengap, needs_graph, PartitionReport,
    PartitionResult,
};
pub use rows::{Normalise, Rows};
pub use spectrum::Solver;
pub use stage::{ClusterEmbeddingsStage, ClusterStage};
