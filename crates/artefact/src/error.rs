//! The error type of artefact reading and writing.

use std::path::PathBuf;

/// Why an artefact could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArtefactError {
    #[error("failed to access `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("`{path}` is not a valid {format} file: {reason}")]
    Format { path: PathBuf, format: &'static str, reason: String },
    #[error("`{path}` has no {what} `{name}`{available}")]
    Missing { path: PathBuf, what: &'static str, name: String, available: String },
    #[error("`{path}`: {what} `{name}` {reason}")]
    Mismatch { path: PathBuf, what: &'static str, name: String, reason: String },
}

impl ArtefactError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn missing(
        path: &std::path::Path,
        what: &'static str,
        name: &str,
        available: &[String],
    ) -> Self {
        let available = if available.is_empty() {
            String::new()
        } else {
            format!(" (it has: {})", available.join(", "))
        };
        Self::Missing { path: path.to_path_buf(), what, name: name.to_string(), available }
    }

    pub(crate) fn mismatch(
        path: &std::path::Path,
        what: &'static str,
        name: &str,
        reason: impl Into<String>,
    ) -> Self {
        Self::Mismatch {
            path: path.to_path_buf(),
            what,
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}
