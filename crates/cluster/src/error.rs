//! The error type of the clustering library.

use exmap_stage::StageError;

/// Why a partition could not be clustered.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A row holds NaN or an infinity; clustering it would poison every distance.
    #[error("row {row} (`{sample}`) has a non-finite value in column {column}")]
    NonFinite { row: usize, sample: String, column: usize },
    /// Inputs that cannot be clustered as asked (no rows, mismatched lengths).
    #[error("{0}")]
    Input(String),
    /// A numerical routine failed (an eigensolver that did not converge).
    #[error("{0}")]
    Compute(String),
}

impl From<ClusterError> for StageError {
    fn from(error: ClusterError) -> Self {
        match error {
            ClusterError::Compute(message) => StageError::Compute(message),
            other => StageError::Data(other.to_string()),
        }
    }
}
