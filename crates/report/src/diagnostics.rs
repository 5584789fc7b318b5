//! Clustering diagnostics, read leniently: every field the report shows is optional, so a
//! diagnostics document from an older or newer `cluster` stage still renders.
//!
//! The document is an object with `source` and `method` and a `partitions` map from a
//! partition name (`global`, `y0`, ...) to its `n`, `k`, `k_rule`, `components`,
//! `eigenvalues`, `cluster_sizes`, `purity`, `adjusted_rand_index` and `nmi`. A `partitions`
//! array of objects with a `name` field reads the same way.

use std::path::Path;

use serde_json::Value;

use exmap_stage::StageError;

/// One diagnostics document.
#[derive(Clone, Debug, PartialEq)]
pub struct DiagnosticsDoc {
    /// Shown above the document's partitions, e.g. `heatmaps (spectral)`.
    pub title: String,
    pub partitions: Vec<PartitionQuality>,
}

/// The quality of one partition's pseudo groups.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartitionQuality {
    pub name: String,
    pub n: Option<usize>,
    pub k: Option<usize>,
    pub k_rule: Option<String>,
    pub components: Option<usize>,
    pub eigenvalues: Vec<f64>,
    pub cluster_sizes: Vec<usize>,
    pub purity: Option<f64>,
    pub adjusted_rand_index: Option<f64>,
    pub nmi: Option<f64>,
}

/// Reads diagnostics file `path`, the `index`-th of its port. Only unreadable or malformed
/// JSON is an error.
pub fn read_diagnostics(path: &Path, index: usize) -> Result<DiagnosticsDoc, StageError> {
    let text = std::fs::read_to_string(path).map_err(|e| StageError::io(path, e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        StageError::data(format!("`{}`: not valid diagnostics JSON: {e}", path.display()))
    })?;
    Ok(parse_diagnostics(&value, index))
}

/// The diagnostics in `value`, with whatever fields it has.
pub fn parse_diagnostics(value: &Value, index: usize) -> DiagnosticsDoc {
    let text = |key: &str| value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    let title = match (text("source"), text("method")) {
        (Some(source), Some(method)) => format!("{source} ({method})"),
        (Some(one), None) | (None, Some(one)) => one.to_string(),
        (None, None) => format!("clustering {}", index + 1),
    };
    let partitions = match value.get("partitions") {
        Some(Value::Object(map)) => {
            map.iter().map(|(name, entry)| partition(name.clone(), entry)).collect()
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let name = entry.get("name").and_then(Value::as_str);
                partition(
                    name.map_or_else(|| format!("partition {}", i + 1), str::to_string),
                    entry,
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    DiagnosticsDoc { title, partitions }
}

fn partition(name: String, entry: &Value) -> PartitionQuality {
    let count = |key: &str| entry.get(key).and_then(Value::as_u64).map(|v| v as usize);
    let number = |key: &str| entry.get(key).and_then(Value::as_f64);
    let list = |key: &str| {
        entry.get(key).and_then(Value::as_array).map(|items| items.as_slice()).unwrap_or(&[])
    };
    PartitionQuality {
        name,
        n: count("n"),
        k: count("k"),
        k_rule: entry.get("k_rule").and_then(Value::as_str).map(str::to_string),
        components: count("components"),
        eigenvalues: list("eigenvalues").iter().filter_map(Value::as_f64).collect(),
        cluster_sizes: list("cluster_sizes")
            .iter()
            .filter_map(Value::as_u64)
            .map(|v| v as usize)
            .collect(),
        purity: number("purity"),
        adjusted_rand_index: number("adjusted_rand_index").or_else(|| number("ari")),
        nmi: number("nmi"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn full_document_reads_every_field() {
        let value = json!({
            "source": "heatmaps", "method": "spectral",
            "partitions": {
                "global": {"n": 6, "k": 2, "k_rule": "eigengap", "components": 1,
                    "eigenvalues": [0.0, 0.1, 0.9], "cluster_sizes": [4, 2],
                    "purity": 0.75, "adjusted_rand_index": 0.5, "nmi": 0.25},
                "y0": {"n": 3}
            }
        });
        let doc = parse_diagnostics(&value, 0);
        assert_eq!(doc.title, "heatmaps (spectral)");
        let global = &doc.partitions[0];
        assert_eq!((global.name.as_str(), global.n, global.k), ("global", Some(6), Some(2)));
        assert_eq!(global.cluster_sizes, vec![4, 2]);
        assert_eq!(global.eigenvalues, vec![0.0, 0.1, 0.9]);
        assert_eq!(
            (global.purity, global.adjusted_rand_index, global.nmi),
            (Some(0.75), Some(0.5), Some(0.25))
        );
        assert_eq!(
            doc.partitions[1],
            PartitionQuality { name: "y0".into(), n: Some(3), ..Default::default() }
        );
    }

    #[test]
    fn missing_fields_and_nulls_do_not_fail() {
        let doc = parse_diagnostics(&json!({"partitions": [{"name": "a", "purity": null}, {}]}), 2);
        assert_eq!(doc.title, "clustering 3");
        assert_eq!(doc.partitions[0].name, "a");
        assert_eq!(doc.partitions[0].purity, None);
        assert_eq!(doc.partitions[1].name, "partition 2");
        assert!(parse_diagnostics(&json!([1, 2]), 0).partitions.is_empty());
    }

    #[test]
    fn malformed_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("diag.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = read_diagnostics(&path, 0).unwrap_err().to_string();
        assert!(err.contains("diag.json"), "{err}");
    }
}
