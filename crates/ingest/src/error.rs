//! The error type of ingest: every message names the file and, for data errors, the line.

use std::path::{Path, PathBuf};

use exmap_artefact::ArtefactError;
use exmap_stage::StageError;

/// Why a dataset could not be ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("failed to access `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A bad row of a metadata file; `line` counts from 1 with the header as line 1.
    #[error("`{file}` line {line}: {message}")]
    Row { file: PathBuf, line: u64, message: String },
    /// A problem with a whole file (a missing column, an unreadable image).
    #[error("`{file}`: {message}")]
    File { file: PathBuf, message: String },
    /// A problem with the dataset as a whole (an empty split, a group missing from a split).
    #[error("{0}")]
    Dataset(String),
    #[error(transparent)]
    Artefact(#[from] ArtefactError),
}

impl IngestError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn row(file: &Path, line: u64, message: impl Into<String>) -> Self {
        Self::Row { file: file.to_path_buf(), line, message: message.into() }
    }

    pub(crate) fn file(file: &Path, message: impl Into<String>) -> Self {
        Self::File { file: file.to_path_buf(), message: message.into() }
    }
}

impl From<IngestError> for StageError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Io { path, source } => StageError::Io { path, source },
            IngestError::Artefact(inner) => StageError::Artefact(inner),
            other => StageError::Data(other.to_string()),
        }
    }
}
