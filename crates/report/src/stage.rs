//! The `report` stage: gathers results, diagnostics, heatmaps, pseudo groups and the ERM
//! training log into a Markdown report, a self-contained HTML report and a Parquet results
//! table.
//!
//! Only the results are needed; every other input adds a section when it is connected. An
//! input that is present but cannot be drawn (heatmaps without matching rows, say) becomes a
//! note in the report rather than a failure, while unreadable files fail with their path.

use std::path::Path;

use exmap_artefact::{hash_file, write_table};
use exmap_stage::{types, ArtefactType, Port, Stage, StageContext, StageError};
use tracing::{info, warn};

use crate::diagnostics::read_diagnostics;
use crate::document::{Figure, InputDigest, Provenance, Report, Section};
use crate::heatmaps::{cluster_grid, read_heatmaps, read_pseudo_groups};
use crate::html::render_html;
use crate::markdown::render_markdown;
use crate::params::ReportParams;
use crate::plots::{eigenvalue_plot, training_plot};
use crate::results::{gap_baseline, read_result, result_rows, results_table};
use crate::training::read_training_log;

/// The last stage of every pipeline: the report a researcher reads.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReportStage;

/// The input ports, in the order their digests are listed.
const INPUTS: [(&str, ArtefactType); 6] = [
    ("results", types::RETRAIN_RESULT),
    ("diagnostics", types::CLUSTER_DIAGNOSTICS),
    ("log", types::TRAINING_LOG),
    ("heatmaps", types::HEATMAPS),
    ("pseudo_groups", types::PSEUDO_GROUPS),
    ("manifest", types::MANIFEST),
];

impl Stage for ReportStage {
    type Params = ReportParams;

    fn kind(&self) -> &'static str {
        "report"
    }

    fn code_fingerprint(&self) -> &'static str {
        env!("EXMAP_CODE_FINGERPRINT")
    }

    fn describe(&self) -> &'static str {
        "render results, pseudo-group quality, plots and provenance as Markdown, HTML and Parquet"
    }

    fn inputs(&self, _params: &ReportParams) -> Vec<Port> {
        vec![
            Port::many("results", types::RETRAIN_RESULT),
            Port::many("diagnostics", types::CLUSTER_DIAGNOSTICS),
            Port::optional("log", types::TRAINING_LOG),
            Port::many("heatmaps", types::HEATMAPS),
            Port::many("pseudo_groups", types::PSEUDO_GROUPS),
            Port::optional("manifest", types::MANIFEST),
        ]
    }

    fn outputs(&self, _params: &ReportParams) -> Vec<Port> {
        vec![
            Port::required("markdown", types::REPORT_MD),
            Port::required("html", types::REPORT_HTML),
            Port::required("table", types::RESULTS),
        ]
    }

    fn validate(&self, params: &ReportParams) -> Result<(), String> {
        if params.examples_per_cluster > 64 {
            return Err(format!(
                "`examples_per_cluster` is {}; at most 64 examples fit a row",
                params.examples_per_cluster
            ));
        }
        if params.heatmap_side > 4096 {
            return Err(format!("`heatmap_side` {} is too large", params.heatmap_side));
        }
        Ok(())
    }

    fn run(&self, params: &ReportParams, ctx: &StageContext) -> Result<(), StageError> {
        let report = build_report(params, ctx)?;
        write_text(ctx.output("markdown")?, &render_markdown(&report))?;
        write_text(ctx.output("html")?, &render_html(&report))?;
        let table = results_table(&report.rows, report.baseline);
        write_table(ctx.output("table")?, &table)?;
        info!(
            rows = report.rows.len(),
            figures = report.figures.len(),
            notes = report.notes.len(),
            "report written"
        );
        Ok(())
    }
}

/// Reads every connected input and assembles the report.
pub fn build_report(params: &ReportParams, ctx: &StageContext) -> Result<Report, StageError> {
    let mut results =
        ctx.inputs("results").iter().map(|p| read_result(p)).collect::<Result<Vec<_>, _>>()?;
    // In a sweep, rows (and clusterings) are told apart by the cell of the node behind them.
    for (result, source) in results.iter_mut().zip(ctx.sources("results")) {
        if let Some(cell) = sweep_cell(source) {
            result.label = format!("{} [{cell}]", result.label);
        }
    }
    let rows = result_rows(&results);
    let baseline = gap_baseline(&rows);
    let mut notes = Vec::new();
    if rows.is_empty() {
        notes.push("No results were connected to input `results`.".to_string());
    }

    let mut diagnostics = ctx
        .inputs("diagnostics")
        .iter()
        .enumerate()
        .map(|(i, p)| read_diagnostics(p, i))
        .collect::<Result<Vec<_>, _>>()?;
    for (doc, source) in diagnostics.iter_mut().zip(ctx.sources("diagnostics")) {
        if let Some(cell) = sweep_cell(source) {
            doc.title = format!("{} [{cell}]", doc.title);
        }
    }
    let mut figures = Vec::new();
    for doc in &diagnostics {
        for partition in &doc.partitions {
            if let Some(png) = eigenvalue_plot(&doc.title, partition)? {
                let caption = format!(
                    "{}, partition {}: smallest eigenvalues of the normalised graph Laplacian{}.",
                    doc.title,
                    partition.name,
                    partition
                        .k
                        .map(|k| format!("; the red line marks the chosen k = {k}"))
                        .unwrap_or_default()
                );
                figures.push(Figure { section: Section::Eigenvalues, caption, png });
            }
        }
    }
    ctx.progress("figures", 1, 3);

    heatmap_figures(params, ctx, &mut figures, &mut notes)?;
    ctx.progress("figures", 2, 3);

    if let Some(path) = ctx.optional_input("log") {
        let curves = read_training_log(path)?;
        if curves.is_empty() {
            notes.push("The training log has no rows.".to_string());
        } else {
            let caption = "ERM training: loss (left) and accuracy (right, unweighted) per epoch, \
                           one line per split."
                .to_string();
            figures.push(Figure {
                section: Section::Training,
                caption,
                png: training_plot(&curves)?,
            });
        }
    }
    ctx.progress("figures", 3, 3);

    Ok(Report {
        title: params.title.clone(),
        rows,
        baseline,
        diagnostics,
        figures,
        notes,
        provenance: provenance(ctx)?,
    })
}

/// Grids of heatmaps per local and global pseudo group. The i-th pseudo-groups table is
/// joined with the i-th heatmaps file (the last one when there are fewer heatmaps files).
fn heatmap_figures(
    params: &ReportParams,
    ctx: &StageContext,
    figures: &mut Vec<Figure>,
    notes: &mut Vec<String>,
) -> Result<(), StageError> {
    let heatmap_paths = ctx.inputs("heatmaps");
    let group_paths = ctx.inputs("pseudo_groups");
    if heatmap_paths.is_empty() || group_paths.is_empty() {
        if heatmap_paths.len() + group_paths.len() > 0 {
            notes.push("Heatmap grids need both `heatmaps` and `pseudo_groups`.".to_string());
        }
        return Ok(());
    }
    let mut loaded = Vec::new();
    for path in heatmap_paths {
        loaded.push(read_heatmaps(path, params.heatmap_side)?);
    }
    for (i, path) in group_paths.iter().enumerate() {
        let heatmaps = &loaded[i.min(loaded.len() - 1)];
        let pseudo = read_pseudo_groups(path)?;
        let name = artefact_name(path)?;
        for (partition, groups) in
            [("local", &pseudo.local_group), ("global", &pseudo.global_group)]
        {
            let Some(grid) = cluster_grid(heatmaps, &pseudo, groups, params.examples_per_cluster)?
            else {
                warn!(file = %path.display(), "no pseudo-group row has a heatmap");
                notes.push(format!(
                    "Pseudo groups {} ({name}): no row has a heatmap, so no grid is drawn.",
                    i + 1
                ));
                break;
            };
            if grid.unmatched > 0 && partition == "local" {
                notes.push(format!(
                    "Pseudo groups {} ({name}): {} rows have no heatmap and are left out of the grids.",
                    i + 1,
                    grid.unmatched
                ));
            }
            let caption = format!(
                "Pseudo groups {} ({name}), {partition} groups, one per row ({}). First column: \
                 the group's mean heatmap; then up to {} examples spread over its rows. Channels \
                 summed; each tile scaled to its own largest magnitude: red positive, blue \
                 negative, white zero.",
                i + 1,
                grid.rows.join("; "),
                params.examples_per_cluster
            );
            figures.push(Figure { section: Section::Heatmaps, caption, png: grid.png });
        }
    }
    Ok(())
}

/// The sweep cell of a node id (`exmap_local@lrp-kmeans` is in cell `lrp-kmeans`).
fn sweep_cell(node: &str) -> Option<&str> {
    node.split_once('@').map(|(_, cell)| cell).filter(|cell| !cell.is_empty())
}

/// Stage id, seed, version and the digest of every input artefact.
fn provenance(ctx: &StageContext) -> Result<Provenance, StageError> {
    let mut inputs = Vec::new();
    for (port, artefact) in INPUTS {
        for (index, path) in ctx.inputs(port).iter().enumerate() {
            inputs.push(InputDigest {
                port: port.to_string(),
                index,
                artefact: artefact.name.to_string(),
                digest: hash_file(path)?.to_hex(),
            });
        }
    }
    Ok(Provenance {
        stage_id: ctx.stage_id.clone(),
        seed: ctx.seed,
        version: env!("CARGO_PKG_VERSION").to_string(),
        code_fingerprint: ReportStage.code_fingerprint().to_string(),
        inputs,
    })
}

/// An artefact named by its short digest: unlike its path, a function of its bytes alone.
fn artefact_name(path: &Path) -> Result<String, StageError> {
    Ok(format!("blake3 {}", hash_file(path)?.short()))
}

fn write_text(path: &Path, text: &str) -> Result<(), StageError> {
    std::fs::write(path, text).map_err(|e| StageError::io(path, e))
}
