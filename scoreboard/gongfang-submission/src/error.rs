//! The one error type of the submission crate.

/// Why a submission server could not do its work. Team-caused problems are answers
/// ([`crate::Answer`]), not errors.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    /// The database refused or failed.
    #[error("storage failed: {0}")]
    Store(#[from] gongfang_store::StoreError),
    /// The storage layer answered a batch with the wrong number of outcomes.
    #[error("storage answered {got} outcomes for a batch of {expected}")]
    OutcomeCount { expected: usize, got: usize },
    /// Accepting a TCP connection or serving a socket failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The submission pipeline has shut down.
    #[error("the submission writer has shut down")]
    Closed,
}
