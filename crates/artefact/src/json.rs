//! Small JSON documents: metrics, diagnostics, reports.

use std::path::Path;

use serde::{de::DeserializeOwned, Serialize};

use crate::ArtefactError;

/// Writes `value` as pretty-printed JSON with a trailing newline. Map keys of
/// `serde_json::Value` are sorted, so equal values give equal bytes.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ArtefactError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| ArtefactError::Format {
        path: path.to_path_buf(),
        format: "JSON",
        reason: e.to_string(),
    })?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| ArtefactError::io(path, e))
}

/// Reads a JSON document into `T`, naming the file and the position of any error.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ArtefactError> {
    let text = std::fs::read_to_string(path).map_err(|e| ArtefactError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ArtefactError::Format {
        path: path.to_path_buf(),
        format: "JSON",
        reason: e.to_string(),
    })
}
