//! The stage registry: every `uses:` kind a pipeline may name.

use exmap_stage::Registry;

pub fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register(exmap_ingest::IngestStage)
        .register(exmap_erm::Erm)
        .register(exmap_embed::Embed)
        .register(exmap_explain::ExplainStage)
        .register(exmap_cluster::ClusterStage)
        .register(exmap_cluster::ClusterEmbeddingsStage)
        .register(exmap_dfr::DfrStage)
        .register(exmap_eval::EvaluateStage)
        .register(exmap_report::ReportStage);
    registry
}
