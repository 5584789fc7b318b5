//! The `report` stage: what a researcher reads at the end of an ExMap pipeline.
//!
//! It turns the results of the other stages into three artefacts: a Markdown report, a
//! self-contained HTML report with inline PNG figures, and a Parquet results table that
//! pandas or polars read directly. The report holds the paper-style results table (worst-group
//! and train-weighted mean accuracy as mean ± std, plain and balanced accuracy, the groups
//! each row balanced on, chosen C) with the share of the ERM-to-oracle worst-group gap that
//! each pseudo-group row recovers; pseudo-group quality per partition; eigenvalue plots, heatmap
//! grids per pseudo group and ERM training curves; and the provenance of every input.
//!
//! Output bytes are a function of the parameters, the input bytes, the stage id and the seed
//! alone: nothing reads a clock, and tables, figures and maps are built in a fixed order.

mod diagnostics;
mod document;
mod heatmaps;
mod html;
mod markdown;
mod params;
mod plots;
mod results;
mod stage;
mod training;

pub use diagnostics::{parse_diagnostics, read_diagnostics, DiagnosticsDoc, PartitionQuality};
pub use document::{Figure, InputDigest, Provenance, Report, Section};
pub use heatmaps::{diverging, heatmap_layout};
pub use html::render_html;
pub use markdown::render_markdown;
pub use params::ReportParams;
pub use results::{
    default_label, gap_baseline, gap_recovered, group_rank, result_rows, results_table,
    GapBaseline, ResultRow,
};
pub use stage::{build_report, ReportStage};
