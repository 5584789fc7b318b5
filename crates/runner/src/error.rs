//! Runner errors.

use std::path::PathBuf;

use exmap_artefact::ArtefactError;

/// Why the runner could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("failed to access `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Artefact(#[from] ArtefactError),
    #[error("failed to encode a record: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("no stage or node `{0}` in this pipeline")]
    UnknownNode(String),
    #[error("{0}")]
    Other(String),
}

impl RunnerError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}
