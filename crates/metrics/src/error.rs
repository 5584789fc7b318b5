//! The error type of metric computation.

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    #[error("`{what}` has {found} entries where {expected} are expected")]
    Length { what: &'static str, expected: usize, found: usize },
    #[error("no samples to score")]
    Empty,
}
