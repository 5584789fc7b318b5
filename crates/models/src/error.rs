//! The error type of model construction and weight loading.

use std::path::PathBuf;

use exmap_artefact::ArtefactError;

/// Why a model or its weights could not be built, read or written.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Artefact(#[from] ArtefactError),
    /// The weights file does not fit the model; every problem is listed.
    #[error("`{path}` does not fit the model: {}", problems.join("; "))]
    Mismatch { path: PathBuf, problems: Vec<String> },
    /// A metadata entry of a model artefact is missing or malformed.
    #[error("`{path}`: metadata `{key}` {reason}")]
    Metadata { path: PathBuf, key: String, reason: String },
    #[error("libtorch failed on `{path}`: {source}")]
    Torch { path: PathBuf, source: tch::TchError },
}

impl ModelError {
    pub(crate) fn metadata(path: &std::path::Path, key: &str, reason: impl Into<String>) -> Self {
        Self::Metadata { path: path.to_path_buf(), key: key.to_string(), reason: reason.into() }
    }
}
