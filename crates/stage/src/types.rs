//! The artefact types that ExMap stages exchange, with the layout each one promises.
//!
//! A stage that writes a type writes this layout; a stage that reads it may rely on it and
//! checks it once at its boundary. Row order: `manifest` rows are the sample order of the
//! dataset; every per-sample artefact carries a `row` column or tensor of manifest row
//! indices, so nothing is ever joined by position alone.

use crate::{ArtefactType, Format};

/// Table, one row per sample: `row` (i64, 0..N), `id` (utf8, unique), `path` (utf8, relative
/// image path or empty), `y` (i64 class), `spurious` (i64), `group` (i64 true group id),
/// `split` (utf8: `train`, `val` or `test`).
pub const MANIFEST: ArtefactType = ArtefactType { name: "manifest", format: Format::Table };

/// Table of group names and sizes: `split`, `group`, `y`, `spurious`, `name`, `count`.
pub const GROUPS: ArtefactType = ArtefactType { name: "groups", format: Format::Table };

/// Tensors: `images` u8 [N, 3, H, W] in manifest row order. Metadata `classes` (the number of
/// classes) and `mean`/`std` (comma-separated per-channel normalisation, or absent).
pub const IMAGES: ArtefactType = ArtefactType { name: "images", format: Format::Tensors };

/// Tensors: a model state dict with torchvision parameter names (BN buffers included).
/// Metadata `arch` (`resnet18` ...), `stem` (`imagenet` or `small`), `classes`, `mean` and
/// `std` (comma-separated per-channel normalisation, empty for none), and the evaluation
/// transform every consumer applies: `resize` (square side, 0 for none) then `crop` (centre
/// crop side, 0 for none).
pub const MODEL: ArtefactType = ArtefactType { name: "model", format: Format::Tensors };

/// Table, one row per epoch and split: `epoch`, `split`, `loss`, `accuracy`, and
/// `group_<g>_accuracy` columns (reporting only).
pub const TRAINING_LOG: ArtefactType = ArtefactType { name: "training_log", format: Format::Table };

/// Tensors, for each split `s` embedded: `s.features` f32 [N_s, D], `s.logits` f32
/// [N_s, C], `s.rows` i64 [N_s] (manifest rows).
pub const EMBEDDINGS: ArtefactType = ArtefactType { name: "embeddings", format: Format::Tensors };

/// Tensors: `heatmaps` f32 [N, D], `rows` i64 [N] (manifest rows), `pred` i64 [N].
/// Metadata `method`, `channels`, `size`.
pub const HEATMAPS: ArtefactType = ArtefactType { name: "heatmaps", format: Format::Tensors };

/// Table, one row per clustered sample: `row`, `id`, `y`, `local_cluster`, `local_group`,
/// `global_cluster`, `global_group` (all i64; groups contiguous from 0).
pub const PSEUDO_GROUPS: ArtefactType =
    ArtefactType { name: "pseudo_groups", format: Format::Table };

/// JSON: per partition, eigenvalues, chosen k, components, cluster sizes, and purity, ARI and
/// NMI against true groups where they exist.
pub const CLUSTER_DIAGNOSTICS: ArtefactType =
    ArtefactType { name: "cluster_diagnostics", format: Format::Json };

/// JSON: one robust-retraining result: method, group source, chosen hyperparameters, tuning
/// scores, and per-repeat test metrics with their mean and standard deviation.
pub const RETRAIN_RESULT: ArtefactType =
    ArtefactType { name: "retrain_result", format: Format::Json };

/// Table of final results, one row per method: `method`, `groups`, `worst_group_accuracy`,
/// `worst_group_accuracy_std`, `mean_accuracy` (train-weighted), `mean_accuracy_std`,
/// `accuracy`, `balanced_accuracy`.
pub const RESULTS: ArtefactType = ArtefactType { name: "results", format: Format::Table };

/// Markdown report.
pub const REPORT_MD: ArtefactType =
    ArtefactType { name: "report_md", format: Format::Document("md") };

/// Self-contained HTML report with inline images.
pub const REPORT_HTML: ArtefactType =
    ArtefactType { name: "report_html", format: Format::Document("html") };
