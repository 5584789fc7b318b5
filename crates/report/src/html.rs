//! The HTML report: one self-contained page, figures inlined as base64 PNG data URIs and the
//! style sheet in the head, so it opens anywhere without other files.

use std::fmt::Write;

use base64::Engine;

use crate::document::{
    gap_sentence, input_rows, provenance_facts, quality_rows, result_cells, Report, Section,
    INPUT_HEADERS, QUALITY_HEADERS, RESULT_HEADERS,
};

const STYLE: &str = "body{font-family:sans-serif;max-width:80em;margin:2em auto;padding:0 1em;\
color:#222}table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;\
padding:.3em .6em;text-align:left}th{background:#eee}td.num{text-align:right}\
figure{margin:1em 0}figcaption{font-size:.9em;color:#444;max-width:60em}\
code{font-size:.9em}";

/// The report as a self-contained HTML page.
pub fn render_html(report: &Report) -> String {
    let mut out = String::new();
    let title = escape(&report.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );

    out.push_str("<h2>Results</h2>\n");
    out.push_str(
        "<p>Test split, true groups. Accuracies in percent as mean ± standard deviation over \
         repeats; mean accuracy weights each group's accuracy by its share of the training \
         split.</p>\n",
    );
    let cells: Vec<Vec<String>> =
        report.rows.iter().map(|r| result_cells(r, report.baseline)).collect();
    table(&mut out, &RESULT_HEADERS, &cells, 3);
    let _ = writeln!(out, "<p>{}</p>", escape(&gap_sentence(&report.rows, report.baseline)));

    out.push_str("<h2>Pseudo-group quality</h2>\n");
    let quality = quality_rows(&report.diagnostics);
    if quality.is_empty() {
        out.push_str("<p>No clustering diagnostics were given.</p>\n");
    } else {
        out.push_str("<p>ARI, NMI and purity against the true groups, where they exist.</p>\n");
        table(&mut out, &QUALITY_HEADERS, &quality, 2);
    }

    for (section, heading, missing) in [
        (Section::Eigenvalues, "Eigenvalues", "No eigenvalues were given."),
        (Section::Heatmaps, "Heatmaps per cluster", "No heatmaps with pseudo groups were given."),
        (Section::Training, "ERM training", "No training log was given."),
    ] {
        let _ = writeln!(out, "<h2>{heading}</h2>");
        let mut any = false;
        for figure in report.figures.iter().filter(|f| f.section == section) {
            any = true;
            let data = base64::engine::general_purpose::STANDARD.encode(&figure.png);
            let caption = escape(&figure.caption);
            let _ = writeln!(
                out,
                "<figure><img src=\"data:image/png;base64,{data}\" alt=\"{caption}\">\
                 <figcaption>{caption}</figcaption></figure>"
            );
        }
        if !any {
            let _ = writeln!(out, "<p>{missing}</p>");
        }
    }

    if !report.notes.is_empty() {
        out.push_str("<h2>Notes</h2>\n<ul>\n");
        for note in &report.notes {
            let _ = writeln!(out, "<li>{}</li>", escape(note));
        }
        out.push_str("</ul>\n");
    }

    out.push_str("<h2>Provenance</h2>\n<ul>\n");
    for (name, value) in provenance_facts(&report.provenance) {
        let _ = writeln!(out, "<li>{name}: <code>{}</code></li>", escape(&value));
    }
    out.push_str("</ul>\n");
    table(&mut out, &INPUT_HEADERS, &input_rows(&report.provenance), 4);
    out.push_str("</body>\n</html>\n");
    out
}

/// An HTML table; cells from column `first_number` on are right-aligned.
fn table(out: &mut String, headers: &[&str], rows: &[Vec<String>], first_number: usize) {
    out.push_str("<table>\n<thead><tr>");
    for header in headers {
        let _ = write!(out, "<th>{}</th>", escape(header));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if i >= first_number { " class=\"num\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// Text safe inside an element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(escape("a<b> & \"c\" 'd'"), "a&lt;b&gt; &amp; &quot;c&quot; &#39;d&#39;");
    }
}
