//! Errors of parameter resolution and stage execution.

use std::path::PathBuf;

use exmap_artefact::ArtefactError;

/// A parameter block that does not fit the stage's parameter type.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ParamError {
    /// The offending key, when serde names one.
    pub key: Option<String>,
    pub message: String,
}

/// Why a stage failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Artefact(#[from] ArtefactError),
    #[error("failed to access `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// Bad input data; the message names the file, row or key.
    #[error("{0}")]
    Data(String),
    /// Bad parameters that serde could not catch (a value out of range, an unknown layer).
    #[error("{0}")]
    Params(String),
    /// A failure inside the computation (a NaN loss, a solver that did not converge).
    #[error("{0}")]
    Compute(String),
    /// The stage was asked to stop.
    #[error("cancelled")]
    Cancelled,
}

impl StageError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }

    pub fn data(message: impl Into<String>) -> Self {
        Self::Data(message.into())
    }

    pub fn compute(message: impl Into<String>) -> Self {
        Self::Compute(message.into())
    }
}
