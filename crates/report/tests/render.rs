//! The report stage end to end on tiny hand-made inputs: every row label and section appears,
//! figures decode as PNGs, the results table round-trips through Parquet, and two renders are
//! byte-identical.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use exmap_artefact::{read_table, write_json, write_table, Table, Tensor, TensorWriter};
use exmap_metrics::{MetricSummary, RepeatMetrics, RetrainResult};
use exmap_report::{ReportParams, ReportStage};
use exmap_stage::{SilentProgress, Stage, StageContext};
use serde_json::json;

/// The six rows of the paper's table, shuffled: (groups, label, worst-group accuracy).
const ROWS: [(&str, &str, f64); 6] = [
    ("global", "ExMap global", 0.84),
    ("none", "ERM", 0.60),
    ("local", "ExMap local", 0.78),
    ("true", "DFR (true groups)", 0.90),
    ("embedding-clusters", "GEORGE-style", 0.66),
    ("classes", "DFR (classes)", 0.72),
];

fn record(groups: &str, label: &str, wga: f64) -> RetrainResult {
    let repeats: Vec<RepeatMetrics> = [-0.01, 0.01]
        .iter()
        .map(|d| RepeatMetrics {
            worst_group_accuracy: wga + d,
            mean_accuracy: 0.92 + d,
            accuracy: 0.91,
            balanced_accuracy: 0.89,
            group_accuracy: BTreeMap::from([("0".to_string(), 0.95), ("1".to_string(), wga + d)]),
        })
        .collect();
    let summary = BTreeMap::from([
        ("worst_group_accuracy".to_string(), MetricSummary { mean: wga, std: 0.01 }),
        ("mean_accuracy".to_string(), MetricSummary { mean: 0.92, std: 0.01 }),
        ("accuracy".to_string(), MetricSummary { mean: 0.91, std: 0.0 }),
        ("balanced_accuracy".to_string(), MetricSummary { mean: 0.89, std: 0.0 }),
    ]);
    let erm = groups == "none";
    RetrainResult {
        method: if erm { "erm" } else { "dfr" }.to_string(),
        groups: groups.to_string(),
        label: label.to_string(),
        group_source: if erm { String::new() } else { format!("{groups}-stage") },
        n_groups: if erm { 0 } else { 4 },
        chosen: if erm { BTreeMap::new() } else { BTreeMap::from([("C".to_string(), 0.3)]) },
        tuning: Vec::new(),
        repeats,
        summary,
        seconds: 2.5,
    }
}

/// Writes every input into `dir` and returns the connected context's input map.
fn write_inputs(dir: &Path, results: &[RetrainResult]) -> BTreeMap<&'static str, Vec<PathBuf>> {
    let mut inputs: BTreeMap<&'static str, Vec<PathBuf>> = BTreeMap::new();
    for (i, result) in results.iter().enumerate() {
        let path = dir.join(format!("result{i}.json"));
        write_json(&path, result).unwrap();
        inputs.entry("results").or_default().push(path);
    }

    let diagnostics = dir.join("diagnostics.json");
    let partition = |k: usize, sizes: Vec<usize>| {
        json!({"n": sizes.iter().sum::<usize>(), "k": k, "k_rule": "eigengap", "components": 1,
               "eigenvalues": [0.0, 0.02, 0.61, 0.7, 0.74], "cluster_sizes": sizes,
               "purity": 0.875, "adjusted_rand_index": 0.5, "nmi": 0.625})
    };
    let doc = json!({"source": "heatmaps", "method": "spectral", "partitions": {
        "global": partition(2, vec![5, 3]), "y0": partition(2, vec![3, 1]), "y1": {"n": 4}}});
    write_json(&diagnostics, &doc).unwrap();
    inputs.insert("diagnostics", vec![diagnostics]);

    let log = dir.join("log.parquet");
    let table = Table::builder()
        .i64("epoch", vec![0, 0, 1, 1, 2, 2])
        .str("split", &["train", "val", "train", "val", "train", "val"])
        .f64("loss", vec![0.9, 1.0, 0.5, 0.7, 0.3, 0.6])
        .f64("accuracy", vec![0.6, 0.55, 0.8, 0.7, 0.9, 0.75])
        .f64("group_0_accuracy", vec![0.5; 6])
        .build();
    write_table(&log, &table).unwrap();
    inputs.insert("log", vec![log]);

    // Eight 4x4 single-channel heatmaps for manifest rows 10..18, signed.
    let heatmaps = dir.join("heatmaps.safetensors");
    let values: Vec<f32> =
        (0..8 * 16).map(|i| ((i % 16) as f32 - 7.5) * (1 + i / 16) as f32).collect();
    TensorWriter::new()
        .add("heatmaps", Tensor::from_f32(vec![8, 16], &values))
        .add("rows", Tensor::from_i64(vec![8], &(10..18).collect::<Vec<_>>()))
        .add("pred", Tensor::from_i64(vec![8], &[0, 0, 0, 0, 1, 1, 1, 1]))
        .metadata("method", "lrp")
        .metadata("channels", "1")
        .metadata("size", "4")
        .write(&heatmaps)
        .unwrap();
    inputs.insert("heatmaps", vec![heatmaps]);

    // Row 99 has no heatmap: it is left out of the grids with a note.
    let groups = dir.join("pseudo_groups.parquet");
    let rows: Vec<i64> = (10..18).chain([99]).collect();
    let ids: Vec<String> = rows.iter().map(|r| format!("s{r}")).collect();
    let table = Table::builder()
        .i64("row", rows)
        .str("id", &ids)
        .i64("y", vec![0, 0, 0, 0, 1, 1, 1, 1, 1])
        .i64("local_cluster", vec![0, 0, 1, 1, 0, 0, 0, 1, 1])
        .i64("local_group", vec![0, 0, 1, 1, 2, 2, 2, 3, 3])
        .i64("global_cluster", vec![0, 1, 0, 1, 0, 1, 0, 1, 1])
        .i64("global_group", vec![0, 1, 0, 1, 2, 3, 2, 3, 3])
        .build();
    write_table(&groups, &table).unwrap();
    inputs.insert("pseudo_groups", vec![groups]);
    inputs
}

struct Rendered {
    markdown: String,
    html: String,
    table_bytes: Vec<u8>,
    table_path: PathBuf,
    _dir: tempfile::TempDir,
}

fn render(results: &[RetrainResult], params: &ReportParams) -> Rendered {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path(), results);
    let mut ctx = StageContext::new("report", 7, dir.path().to_path_buf(), &SilentProgress);
    for (name, paths) in inputs {
        ctx = ctx.with_input(name, paths);
    }
    let out = |name: &str| dir.path().join(name);
    let ctx = ctx
        .with_output("markdown", out("report.md"))
        .with_output("html", out("report.html"))
        .with_output("table", out("results.parquet"));
    ReportStage.run(params, &ctx).unwrap();
    Rendered {
        markdown: std::fs::read_to_string(out("report.md")).unwrap(),
        html: std::fs::read_to_string(out("report.html")).unwrap(),
        table_bytes: std::fs::read(out("results.parquet")).unwrap(),
        table_path: out("results.parquet"),
        _dir: dir,
    }
}

fn paper_results() -> Vec<RetrainResult> {
    ROWS.iter().map(|&(g, l, w)| record(g, l, w)).collect()
}

/// The base64 PNGs inlined in `html`, decoded.
fn inline_images(html: &str) -> Vec<image::DynamicImage> {
    html.split("data:image/png;base64,")
        .skip(1)
        .map(|rest| {
            let data = &rest[..rest.find('"').unwrap()];
            let bytes = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
            image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap()
        })
        .collect()
}

#[test]
fn report_shows_every_row_label_and_section() {
    let rendered = render(&paper_results(), &ReportParams::default());
    for text in [&rendered.markdown, &rendered.html] {
        for (_, label, _) in ROWS {
            assert!(text.contains(label), "missing row `{label}`");
        }
        for section in [
            "ExMap report",
            "Results",
            "Pseudo-group quality",
            "Eigenvalues",
            "Heatmaps per cluster",
            "ERM training",
            "Provenance",
            "Worst-group accuracy (%)",
            "Mean accuracy, train-weighted (%)",
            "Balanced accuracy, mean class recall (%)",
        ] {
            assert!(text.contains(section), "missing section `{section}`");
        }
        // Worst-group accuracy of ExMap global as mean ± std in percent.
        assert!(text.contains("84.00 ± 1.00"), "no ExMap global cell");
        // The quality table: sizes, ARI, NMI, purity of the global partition.
        assert!(text.contains("5, 3") && text.contains("0.500") && text.contains("0.625"));
        assert!(text.contains("0.875"));
        assert!(text.contains("1 rows have no heatmap"), "no note on the unmatched row");
    }

    // The paper's order, whatever the input order.
    let md = &rendered.markdown;
    let at = |label: &str| md.find(&format!("| {label} |")).unwrap();
    let positions: Vec<usize> = [
        "ERM",
        "DFR (true groups)",
        "DFR (classes)",
        "GEORGE-style",
        "ExMap local",
        "ExMap global",
    ]
    .iter()
    .map(|l| at(l))
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");

    // Eigenvalue plots of `global` and `y0` (`y1` has no eigenvalues), the local and global
    // heatmap grids, and the training curves.
    let images = inline_images(&rendered.html);
    assert_eq!(images.len(), 5);
    assert!(images.iter().all(|i| i.width() >= 100 && i.height() >= 50));
    // For looking at a rendered report by eye: set the variable to a folder.
    if let Some(dir) = std::env::var_os("EXMAP_REPORT_SAMPLE_DIR") {
        let dir = PathBuf::from(dir);
        std::fs::write(dir.join("sample.md"), &rendered.markdown).unwrap();
        std::fs::write(dir.join("sample.html"), &rendered.html).unwrap();
        std::fs::write(dir.join("results.parquet"), &rendered.table_bytes).unwrap();
        for (i, image) in images.iter().enumerate() {
            image.save(dir.join(format!("figure{i}.png"))).unwrap();
        }
    }
}

#[test]
fn gap_recovered_line_has_the_hand_computed_shares() {
    // ERM 0.60, DFR (true groups) 0.90: ExMap global 0.84 recovers 0.24 / 0.30 = 80.0%,
    // ExMap local 0.78 recovers 60.0%, GEORGE-style 0.66 20.0%, DFR (classes) 0.72 40.0%.
    let rendered = render(&paper_results(), &ReportParams::default());
    let line = rendered
        .markdown
        .lines()
        .find(|l| l.starts_with("Worst-group gap recovered"))
        .expect("gap line");
    for part in [
        "ERM at 60.00%",
        "DFR (true groups) at 90.00%",
        "DFR (classes) 40.0%",
        "GEORGE-style 20.0%",
        "ExMap local 60.0%",
        "ExMap global 80.0%",
    ] {
        assert!(line.contains(part), "`{part}` not in: {line}");
    }
}

#[test]
fn results_table_round_trips_through_parquet() {
    let rendered = render(&paper_results(), &ReportParams::default());
    let table = read_table(&rendered.table_path).unwrap();
    let expected = [
        "method",
        "groups",
        "worst_group_accuracy",
        "worst_group_accuracy_std",
        "mean_accuracy",
        "mean_accuracy_std",
        "accuracy",
        "balanced_accuracy",
        "label",
        "group_source",
        "n_groups",
        "chosen_c",
        "accuracy_std",
        "balanced_accuracy_std",
        "repeats",
        "gap_recovered",
    ];
    assert_eq!(table.column_names(), expected);
    let groups = table.str("groups").unwrap();
    assert_eq!(groups, ["none", "true", "classes", "embedding-clusters", "local", "global"]);
    assert_eq!(table.str("method").unwrap()[..2], ["erm", "dfr"]);
    assert_eq!(table.i64("n_groups").unwrap(), [0, 4, 4, 4, 4, 4]);
    assert_eq!(table.i64("repeats").unwrap(), [2; 6]);
    let wga = table.f64("worst_group_accuracy").unwrap();
    assert_eq!(wga, [0.60, 0.90, 0.72, 0.66, 0.78, 0.84]);
    let c = table.f64("chosen_c").unwrap();
    assert!(c[0].is_nan() && c[1..].iter().all(|&v| v == 0.3));
    // Tolerance 1e-12: (wga - 0.6) / 0.3 in double precision.
    let gap = table.f64("gap_recovered").unwrap();
    assert!(gap[0].is_nan() && gap[1].is_nan());
    for (got, want) in gap[2..].iter().zip([0.4, 0.2, 0.6, 0.8]) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    let first = render(&paper_results(), &ReportParams::default());
    let second = render(&paper_results(), &ReportParams::default());
    assert_eq!(first.markdown, second.markdown);
    assert_eq!(first.html, second.html);
    assert_eq!(first.table_bytes, second.table_bytes);
}

#[test]
fn sweep_cells_of_one_group_source_share_one_table() {
    let mut results = paper_results();
    let mut cell = record("global", "ExMap global, k=4", 0.81);
    cell.group_source = "cluster-k4".to_string();
    results.push(cell);
    let rendered = render(&results, &ReportParams { title: "Sweep".into(), ..Default::default() });
    assert!(rendered.markdown.starts_with("# Sweep\n"));
    let table = read_table(&rendered.table_path).unwrap();
    let labels = table.str("label").unwrap();
    assert_eq!(labels[5..], ["ExMap global", "ExMap global, k=4"]);
    assert_eq!(table.str("group_source").unwrap()[6], "cluster-k4");
    assert!(rendered.markdown.contains("| ExMap global, k=4 | global | cluster-k4 |"));
}

#[test]
fn provenance_lists_every_input_digest_and_the_seed() {
    let rendered = render(&paper_results(), &ReportParams::default());
    let md = &rendered.markdown;
    assert!(md.contains("- Seed: `7`") && md.contains("- Stage: `report`"));
    assert!(md.contains(&format!("`{}`", env!("CARGO_PKG_VERSION"))));
    let is_digest = |c: &str| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit());
    let digests = md.lines().filter(|l| l.split('|').any(|c| is_digest(c.trim()))).count();
    // Six results, one diagnostics, one log, one heatmaps, one pseudo-groups file.
    assert_eq!(digests, 10);
}

#[test]
fn unreadable_result_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken_result.json");
    std::fs::write(&bad, "{\"method\": 3}").unwrap();
    let ctx = StageContext::new("report", 0, dir.path().to_path_buf(), &SilentProgress)
        .with_input("results", vec![bad])
        .with_output("markdown", dir.path().join("r.md"))
        .with_output("html", dir.path().join("r.html"))
        .with_output("table", dir.path().join("r.parquet"));
    let err = ReportStage.run(&ReportParams::default(), &ctx).unwrap_err().to_string();
    assert!(err.contains("broken_result.json"), "{err}");
}
