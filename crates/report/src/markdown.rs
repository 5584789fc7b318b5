//! The Markdown report: the same sections as the HTML one, with each figure named by its
//! caption (the pictures themselves are in the HTML report, which is self-contained).

use std::fmt::Write;

use crate::document::{
    gap_sentence, input_rows, provenance_facts, quality_rows, result_cells, Report, Section,
    INPUT_HEADERS, QUALITY_HEADERS, RESULT_HEADERS,
};

/// The report as Markdown text.
pub fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", inline(&report.title));

    out.push_str("## Results\n\n");
    out.push_str(
        "Test split, true groups. Accuracies in percent as mean ± standard deviation over \
         repeats; mean accuracy weights each group's accuracy by its share of the training \
         split.\n\n",
    );
    let cells: Vec<Vec<String>> =
        report.rows.iter().map(|r| result_cells(r, report.baseline)).collect();
    table(&mut out, &RESULT_HEADERS, &cells);
    let _ = writeln!(out, "{}\n", inline(&gap_sentence(&report.rows, report.baseline)));

    out.push_str("## Pseudo-group quality\n\n");
    let quality = quality_rows(&report.diagnostics);
    if quality.is_empty() {
        out.push_str("No clustering diagnostics were given.\n\n");
    } else {
        out.push_str("ARI, NMI and purity against the true groups, where they exist.\n\n");
        table(&mut out, &QUALITY_HEADERS, &quality);
    }

    for (section, heading, missing) in [
        (Section::Eigenvalues, "Eigenvalues", "No eigenvalues were given."),
        (Section::Heatmaps, "Heatmaps per cluster", "No heatmaps with pseudo groups were given."),
        (Section::Training, "ERM training", "No training log was given."),
    ] {
        let _ = writeln!(out, "## {heading}\n");
        let captions: Vec<&str> = report
            .figures
            .iter()
            .filter(|f| f.section == section)
            .map(|f| f.caption.as_str())
            .collect();
        if captions.is_empty() {
            let _ = writeln!(out, "{missing}\n");
            continue;
        }
        for caption in captions {
            let _ = writeln!(out, "- Figure (in the HTML report): {}", inline(caption));
        }
        out.push('\n');
    }

    if !report.notes.is_empty() {
        out.push_str("## Notes\n\n");
        for note in &report.notes {
            let _ = writeln!(out, "- {}", inline(note));
        }
        out.push('\n');
    }

    out.push_str("## Provenance\n\n");
    for (name, value) in provenance_facts(&report.provenance) {
        let _ = writeln!(out, "- {name}: `{}`", value.replace('`', "'"));
    }
    out.push('\n');
    table(&mut out, &INPUT_HEADERS, &input_rows(&report.provenance));
    out
}

fn table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    out.push_str(&line(headers.iter().map(|h| inline(h)).collect()));
    out.push_str(&line(headers.iter().map(|_| "---".to_string()).collect()));
    for row in rows {
        out.push_str(&line(row.iter().map(|c| inline(c)).collect()));
    }
    out.push('\n');
}

/// Text safe inside a table cell or a line: pipes escaped, line breaks flattened.
fn inline(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}
