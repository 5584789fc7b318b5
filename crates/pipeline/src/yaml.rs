//! The YAML form of a pipeline, and locating keys in its text for error messages.
//!
//! ```yaml
//! name: quickstart
//! seed: 1
//! stages:
//!   - id: data
//!     uses: ingest
//!     params: { format: synthetic }
//!   - id: explain
//!     uses: explain
//!     inputs: { model: erm.model, images: data.images, manifest: data }
//!     matrix: { method: [lrp, gradcam] }
//! ```
//!
//! An input names an earlier stage (`data`, when it has exactly one output of the port's
//! type) or one of its outputs (`data.images`); a gathering port takes a list.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::{PipelineError, PipelineErrorKind};

/// A parsed pipeline file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub stages: Vec<StageSpec>,
    /// The file it came from.
    #[serde(skip)]
    pub path: std::path::PathBuf,
    /// The text it was parsed from, for locating keys in error messages.
    #[serde(skip)]
    pub source: String,
}

/// One stage of a pipeline file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub id: String,
    pub uses: String,
    #[serde(default)]
    pub params: Value,
    #[serde(default)]
    pub inputs: BTreeMap<String, InputRef>,
    /// Parameter values to sweep: the stage and everything downstream fan out into cells.
    #[serde(default)]
    pub matrix: BTreeMap<String, Vec<Value>>,
    /// Overrides the pipeline seed for this stage.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// The artefacts an input port is connected to.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum InputRef {
    One(String),
    Many(Vec<String>),
}

impl InputRef {
    pub fn targets(&self) -> Vec<&str> {
        match self {
            InputRef::One(target) => vec![target.as_str()],
            InputRef::Many(targets) => targets.iter().map(String::as_str).collect(),
        }
    }
}

fn default_seed() -> u64 {
    1
}

/// Reads and parses a pipeline file.
pub fn parse_pipeline(path: &Path) -> Result<PipelineFile, PipelineError> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| PipelineError::new(path, PipelineErrorKind::Read(e)))?;
    parse_pipeline_text(path, &source)
}

/// Parses pipeline text; `path` is used in messages. `${NAME}` and `${NAME:-default}` are
/// replaced by environment variables first, so data folders and weights files can default
/// to a variable a user sets once.
pub fn parse_pipeline_text(path: &Path, source: &str) -> Result<PipelineFile, PipelineError> {
    let expanded = expand_variables(path, source)?;
    let mut file: PipelineFile = serde_yaml::from_str(&expanded).map_err(|e| {
        let location = e.location().map(|l| (l.line(), l.column()));
        PipelineError::new(path, PipelineErrorKind::Syntax(e.to_string())).at(location)
    })?;
    for stage in &mut file.stages {
        if stage.params.is_null() {
            stage.params = Value::Object(Default::default());
        }
    }
    file.path = path.to_path_buf();
    file.source = source.to_string();
    Ok(file)
}

fn expand_variables(path: &Path, source: &str) -> Result<String, PipelineError> {
    let mut out = String::with_capacity(source.len());
    for (number, line) in source.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            let Some(length) = rest[start..].find('}') else { break };
            let inner = &rest[start + 2..start + length];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            let value = match (std::env::var(name), default) {
                (Ok(value), _) if !value.is_empty() => value,
                (_, Some(default)) => default.to_string(),
                _ => {
                    let kind = PipelineErrorKind::Syntax(format!(
                        "environment variable `{name}` is not set and `${{{inner}}}` has no \
                         default (write `${{{name}:-default}}`)"
                    ));
                    return Err(PipelineError::new(path, kind).at(Some((number + 1, start + 1))));
                }
            };
            out.push_str(&rest[..start]);
            out.push_str(&value);
            rest = &rest[start + length + 1..];
        }
        out.push_str(rest);
        out.push('\n');
    }
    Ok(out)
}

/// Line and column (1-based) of the `id: <stage>` line of a stage.
pub(crate) fn locate_stage(source: &str, stage: &str) -> Option<(usize, usize)> {
    source.lines().enumerate().find_map(|(i, line)| {
        let trimmed = line.trim_start().trim_start_matches("- ").trim_start();
        let value = trimmed.strip_prefix("id:")?.trim().trim_matches(['"', '\'']);
        (value == stage).then(|| (i + 1, line.len() - trimmed.len() + 1))
    })
}

/// Line and column of `key:` inside the block of a stage (params, inputs or matrix keys),
/// falling back to the stage's own line.
pub(crate) fn locate_key(source: &str, stage: &str, key: &str) -> Option<(usize, usize)> {
    let (start, _) = locate_stage(source, stage)?;
    let lines: Vec<&str> = source.lines().collect();
    let mut found = None;
    for (i, line) in lines.iter().enumerate().skip(start) {
        let trimmed = line.trim_start();
        if trimmed.starts_with("- id:") || trimmed.starts_with("-  id:") {
            break;
        }
        for pattern in [format!("{key}:"), format!("{key} :")] {
            if let Some(column) = find_key(line, &pattern) {
                found = Some((i + 1, column + 1));
                break;
            }
        }
        if found.is_some() {
            break;
        }
    }
    found.or(Some((start, 1)))
}

fn find_key(line: &str, pattern: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = line[from..].find(pattern) {
        let at = from + offset;
        let before = line[..at].chars().last();
        if before.is_none_or(|c| c == ' ' || c == '{' || c == ',' || c == '-') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name: t\nstages:\n  - id: data\n    uses: ingest\n    params:\n      \
                        format: synthetic\n  - id: erm\n    uses: erm\n    params: { epochs: 2, lr: 0.1 }\n";

    #[test]
    fn keys_are_located_inside_their_stage() {
        assert_eq!(locate_stage(TEXT, "erm"), Some((7, 5)));
        assert_eq!(locate_key(TEXT, "data", "format"), Some((6, 7)));
        assert_eq!(locate_key(TEXT, "erm", "lr"), Some((9, 26)));
        assert_eq!(locate_key(TEXT, "erm", "format"), Some((7, 1)));
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = parse_pipeline_text(Path::new("p.yaml"), "name: t\nstages: [\n").unwrap_err();
        assert!(err.location.is_some(), "{err}");
        assert!(err.to_string().starts_with("p.yaml:"), "{err}");
    }

    #[test]
    fn environment_variables_expand_with_defaults() {
        std::env::set_var("EXMAP_TEST_ROOT", "/data/x");
        let text = "name: t\nstages:\n  - id: a\n    uses: s\n    params: { root: \"${EXMAP_TEST_ROOT}\", \
                    w: \"${EXMAP_TEST_UNSET_VAR:-none}\" }\n";
        let file = parse_pipeline_text(Path::new("p.yaml"), text).unwrap();
        assert_eq!(file.stages[0].params["root"], "/data/x");
        assert_eq!(file.stages[0].params["w"], "none");
        let err = parse_pipeline_text(Path::new("p.yaml"), "name: \"${EXMAP_TEST_UNSET_VAR}\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.yaml:1:8") && err.contains("EXMAP_TEST_UNSET_VAR"), "{err}");
    }

    #[test]
    fn unknown_top_level_keys_are_rejected_with_location() {
        let err = parse_pipeline_text(Path::new("p.yaml"), "name: t\nsed: 3\nstages: []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("p.yaml:2:1") && err.contains("sed"), "{err}");
    }
}
